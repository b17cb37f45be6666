import { Type } from 'typebox';
import type { FastifyRequest } from 'fastify';
import type { AppUpdates } from '../../engine/app-updates.ts';
import type { VppTokens } from '../../engine/vpp-tokens.ts';
import type { DistributionEngine } from '../../engine/engine.ts';
import { Refusal } from '../../core/refusal.ts';
import { tokenUsableIn } from '../../core/tokens.ts';
import type { AdminApp, AdminContext } from '../admin.ts';
import { pageOf } from '../pagination.ts';
import { scopeOf } from '../authz.ts';
import type { Scope } from '../authz.ts';

const TokenState = Type.Union([
  Type.Literal('active'),
  Type.Literal('expiring'),
  Type.Literal('expired'),
  Type.Literal('revoked'),
  Type.Literal('invalid'),
  Type.Literal('other_mdm'),
  Type.Literal('legacy_unmigrated'),
]);

export const Token = Type.Object({
  id: Type.String(),
  groupId: Type.String(),
  orgName: Type.String(),
  locationName: Type.Union([Type.String(), Type.Null()]),
  expiresAt: Type.String({ format: 'date-time' }),
  state: TokenState,
  daysLeft: Type.Integer(),
  expiryWarningDays: Type.Union([Type.Integer(), Type.Null()], {
    description: '30, 14, 7 or 1 once the token is that close to expiry',
  }),
  sharedTo: Type.Array(Type.String()),
  lastSyncedAt: Type.Union([Type.String(), Type.Null()]),
  lastError: Type.Unknown(),
});

const Asset = Type.Object({
  adamId: Type.String(),
  pricingParam: Type.String(),
  name: Type.Union([Type.String(), Type.Null()]),
  bundleId: Type.Union([Type.String(), Type.Null()]),
  productType: Type.Union([Type.String(), Type.Null()]),
  totalCount: Type.Integer(),
  assignedCount: Type.Integer(),
  availableCount: Type.Integer(),
  deviceAssignable: Type.Boolean(),
  revocable: Type.Boolean(),
  sizeBytes: Type.Union([Type.Integer(), Type.Null()]),
  minimumOsVersion: Type.Union([Type.String(), Type.Null()]),
});

const License = Type.Object({
  tokenId: Type.String(),
  adamId: Type.String(),
  serialNumber: Type.String(),
  state: Type.String(),
  origin: Type.Union([Type.Literal('auto'), Type.Literal('manual')]),
  viaGroupId: Type.Union([Type.String(), Type.Null()]),
  eventId: Type.Union([Type.String(), Type.Null()]),
  errorCode: Type.Union([Type.Integer(), Type.Null()]),
  updatedAt: Type.String(),
});

const LicenseChange = Type.Object({
  tokenId: Type.String(),
  adamId: Type.String(),
  serials: Type.Array(Type.String()),
  eventIds: Type.Array(Type.String()),
  failed: Type.Array(
    Type.Object({
      serials: Type.Array(Type.String()),
      kind: Type.String(),
      errorNumber: Type.Union([Type.Integer(), Type.Null()]),
    }),
  ),
});

const AutoAssign = Type.Object({
  groupId: Type.String(),
  tokenId: Type.Union([Type.String(), Type.Null()]),
  effectiveTokenId: Type.Union([Type.String(), Type.Null()]),
  inheritedFrom: Type.Union([Type.String(), Type.Null()]),
});

const IdParams = Type.Object({ id: Type.String({ minLength: 1 }) });
const SToken = Type.String({
  minLength: 1,
  maxLength: 20_000,
  description: 'the contents of the .vpptoken file',
});
const LicenseBody = Type.Object(
  {
    tokenId: Type.String({ minLength: 1 }),
    adamId: Type.String({ minLength: 1, pattern: '^[0-9]+$' }),
    serialNumbers: Type.Array(Type.String({ minLength: 1, maxLength: 64 }), {
      minItems: 1,
      maxItems: 100_000,
    }),
  },
  { additionalProperties: false },
);
const tags = ['vpp'];

export async function registerVppRoutes(
  app: AdminApp,
  ctx: AdminContext,
  tokens: VppTokens,
  engine: DistributionEngine,
  appUpdates?: AppUpdates,
): Promise<void> {
  const { store } = ctx;
  /** A token as a subtree's administrator sees it: the shares outside the subtree are not theirs to know. */
  const narrowed = <T extends { sharedTo: string[] }>(v: T, scope: Scope): T =>
    scope.all ? v : { ...v, sharedTo: v.sharedTo.filter((g) => scope.has(g)) };
  const view = async (id: string, req: FastifyRequest) =>
    narrowed(await tokens.view(await tokens.mustGet(id)), scopeOf(req));
  /**
   * After a sync, the token's apps are checked for new versions (decision 0018); a look-up that
   * fails leaves the sync done and is logged, the next scheduled check tries again.
   */
  const checkVersions = async (req: FastifyRequest, tokenId: string) => {
    if (!appUpdates) return [];
    try {
      return (await appUpdates.afterSync(tokenId)).changes;
    } catch (err) {
      req.log.warn({ err }, 'app update check after the token sync failed');
      return [];
    }
  };

  app.post(
    '/vpp-tokens',
    {
      config: { authz: { permission: 'manage', objects: [{ kind: 'group', at: 'body.groupId' }] } },
      schema: {
        tags,
        summary: 'Register a VPP token to a group: decoded, claimed at Apple with our mdmInfo, assets synced',
        body: Type.Object(
          { groupId: Type.String({ minLength: 1 }), sToken: SToken },
          { additionalProperties: false },
        ),
        response: { 201: Token },
      },
    },
    async (req, reply) => {
      const row = await tokens.register(req.body.groupId, req.body.sToken);
      await ctx.audit(req, 'token.register', 'vpp_token', row.id, {
        groupId: row.group_id,
        orgName: row.org_name,
        location: row.location_name,
      });
      await checkVersions(req, row.id);
      return reply.code(201).send(await tokens.view(row));
    },
  );

  app.get(
    '/vpp-tokens',
    {
      config: { authz: { permission: 'read', filtered: true } },
      schema: { tags, summary: 'List VPP tokens (never the secret)', response: { 200: pageOf(Token) } },
    },
    async (req) => {
      const scope = scopeOf(req);
      const shares = scope.all ? [] : await store.vpp.shares();
      // Registered in the scope, or shared into it (then usable there, never its secret).
      const visible = (await store.vpp.allTokens()).filter(
        (t) => scope.has(t.group_id) || shares.some((s) => s.token_id === t.id && scope.has(s.group_id)),
      );
      return {
        items: await Promise.all(visible.map(async (t) => narrowed(await tokens.view(t), scope))),
        nextCursor: null,
      };
    },
  );

  app.get(
    '/vpp-tokens/:id',
    {
      config: { authz: { permission: 'read', objects: [{ kind: 'vpp_token', at: 'params.id' }] } },
      schema: { tags, summary: 'One VPP token', params: IdParams, response: { 200: Token } },
    },
    async (req) => view(req.params.id, req),
  );

  app.put(
    '/vpp-tokens/:id',
    {
      config: {
        authz: { permission: 'manage', objects: [{ kind: 'vpp_token_registered', at: 'params.id' }] },
      },
      schema: {
        tags,
        summary: 'Renew: same location, later expiry, not claimed by another MDM (409 names the broken rule)',
        params: IdParams,
        body: Type.Object({ sToken: SToken }, { additionalProperties: false }),
        response: { 200: Token },
      },
    },
    async (req) => {
      const row = await tokens.renew(req.params.id, req.body.sToken);
      await ctx.audit(req, 'token.renew', 'vpp_token', row.id, { expiresAt: row.expires_at });
      return narrowed(await tokens.view(row), scopeOf(req));
    },
  );

  app.delete(
    '/vpp-tokens/:id',
    {
      config: {
        authz: { permission: 'manage', objects: [{ kind: 'vpp_token_registered', at: 'params.id' }] },
      },
      schema: {
        tags,
        summary: 'Delete a token; licences it auto-assigned are reclaimed first',
        params: IdParams,
        response: { 200: Type.Object({ reclaimed: Type.Array(LicenseChange) }) },
      },
    },
    async (req) => {
      const reclaimed = await tokens.delete(req.params.id);
      await ctx.audit(req, 'token.delete', 'vpp_token', req.params.id, {
        reclaimed: reclaimed.map((c) => ({ adamId: c.adamId, serials: c.serials.length })),
      });
      return { reclaimed };
    },
  );

  app.post(
    '/vpp-tokens/:id/sync',
    {
      config: { authz: { permission: 'operate', objects: [{ kind: 'vpp_token', at: 'params.id' }] } },
      schema: {
        tags,
        summary:
          'Sync assets and licence counts from Apple, then look the apps up for new versions (GET /apps shows which devices run an older one)',
        params: IdParams,
        response: {
          200: Type.Object({
            assets: Type.Integer(),
            syncedAt: Type.String(),
            newVersions: Type.Array(
              Type.Object({ adamId: Type.String(), from: Type.String(), to: Type.String() }),
              { description: 'apps whose App Store version changed since haishin last looked' },
            ),
          }),
        },
      },
    },
    async (req) => {
      const result = await tokens.sync(req.params.id);
      await ctx.audit(req, 'token.sync', 'vpp_token', req.params.id, result);
      return { ...result, newVersions: await checkVersions(req, req.params.id) };
    },
  );

  app.post(
    '/vpp-tokens/:id/takeover',
    {
      config: {
        authz: { permission: 'manage', objects: [{ kind: 'vpp_token_registered', at: 'params.id' }] },
      },
      schema: {
        tags,
        summary: 'Explicitly take the location over from another MDM server',
        params: IdParams,
        response: { 200: Token },
      },
    },
    async (req) => {
      const row = await tokens.takeOver(req.params.id);
      await ctx.audit(req, 'token.takeover', 'vpp_token', row.id);
      return narrowed(await tokens.view(row), scopeOf(req));
    },
  );

  app.get(
    '/vpp-tokens/:id/assets',
    {
      config: { authz: { permission: 'read', objects: [{ kind: 'vpp_token', at: 'params.id' }] } },
      schema: {
        tags,
        summary: 'Synced assets with licence counts',
        params: IdParams,
        response: { 200: pageOf(Asset) },
      },
    },
    async (req) => {
      await tokens.mustGet(req.params.id);
      const rows = await store.vpp.assets(req.params.id);
      return {
        items: rows.map((a) => ({
          adamId: a.adam_id,
          pricingParam: a.pricing_param,
          name: a.name,
          bundleId: a.bundle_id,
          productType: a.product_type,
          totalCount: a.total_count,
          assignedCount: a.assigned_count,
          availableCount: a.available_count,
          deviceAssignable: a.device_assignable === 1,
          revocable: a.revocable === 1,
          sizeBytes: a.size_bytes,
          minimumOsVersion: a.minimum_os_version,
        })),
        nextCursor: null,
      };
    },
  );

  app.post(
    '/vpp-tokens/:id/shares',
    {
      config: {
        authz: {
          permission: 'manage',
          objects: [
            { kind: 'vpp_token_registered', at: 'params.id' },
            { kind: 'group', at: 'body.groupId' },
            { kind: 'group', at: 'body.fromGroupId' },
          ],
        },
      },
      schema: {
        tags,
        summary: 'Share the token from its registered group to a descendant group',
        params: IdParams,
        body: Type.Object(
          {
            groupId: Type.String({ minLength: 1 }),
            fromGroupId: Type.Optional(Type.String({ minLength: 1 })),
          },
          { additionalProperties: false },
        ),
        response: { 201: Token },
      },
    },
    async (req, reply) => {
      await tokens.share(req.params.id, req.body.groupId, req.body.fromGroupId);
      await ctx.audit(req, 'token.share', 'vpp_token', req.params.id, { groupId: req.body.groupId });
      return reply.code(201).send(await view(req.params.id, req));
    },
  );

  app.delete(
    '/vpp-tokens/:id/shares/:groupId',
    {
      config: {
        authz: {
          permission: 'manage',
          objects: [
            { kind: 'vpp_token_registered', at: 'params.id' },
            { kind: 'group', at: 'params.groupId' },
          ],
        },
      },
      schema: {
        tags,
        summary: 'Remove a share; licences assigned through it are reclaimed',
        params: Type.Object({ id: Type.String({ minLength: 1 }), groupId: Type.String({ minLength: 1 }) }),
        response: { 200: Type.Object({ reclaimed: Type.Array(LicenseChange) }) },
      },
    },
    async (req) => {
      const reclaimed = await tokens.unshare(req.params.id, req.params.groupId);
      await ctx.audit(req, 'token.unshare', 'vpp_token', req.params.id, { groupId: req.params.groupId });
      return { reclaimed };
    },
  );

  const autoAssignView = async (groupId: string) => {
    const effective = await tokens.effectiveAutoAssign(groupId);
    const own = (await store.vpp.autoAssignSettings()).get(groupId) ?? null;
    return {
      groupId,
      tokenId: own,
      effectiveTokenId: effective.tokenId,
      inheritedFrom: effective.inheritedFrom,
    };
  };

  app.get(
    '/groups/:id/auto-assign-token',
    {
      config: { authz: { permission: 'read', objects: [{ kind: 'group', at: 'params.id' }] } },
      schema: {
        tags,
        summary:
          "The group's auto-assign token, and the effective one (inherited from an ancestor when unset)",
        params: IdParams,
        response: { 200: AutoAssign },
      },
    },
    async (req) => autoAssignView(req.params.id),
  );

  app.put(
    '/groups/:id/auto-assign-token',
    {
      config: {
        authz: {
          permission: 'manage',
          objects: [
            { kind: 'group', at: 'params.id' },
            { kind: 'vpp_token', at: 'body.tokenId' },
          ],
        },
      },
      schema: {
        tags,
        summary: 'Set (or clear with null) the auto-assign token of a group; descendants inherit it',
        params: IdParams,
        body: Type.Object(
          { tokenId: Type.Union([Type.String({ minLength: 1 }), Type.Null()]) },
          { additionalProperties: false },
        ),
        response: { 200: AutoAssign },
      },
    },
    async (req) => {
      await tokens.setAutoAssign(req.params.id, req.body.tokenId);
      await ctx.audit(req, 'group.auto_assign', 'group', req.params.id, { tokenId: req.body.tokenId });
      return autoAssignView(req.params.id);
    },
  );

  app.get(
    '/licenses',
    {
      config: { authz: { permission: 'read', filtered: true } },
      schema: {
        tags,
        summary: 'Licence records (state and origin)',
        querystring: Type.Object({
          tokenId: Type.Optional(Type.String()),
          adamId: Type.Optional(Type.String()),
          serialNumber: Type.Optional(Type.String()),
        }),
        response: { 200: pageOf(License) },
      },
    },
    async (req) => {
      let rows = await store.vpp.licenses({
        ...(req.query.tokenId ? { tokenId: req.query.tokenId } : {}),
        ...(req.query.adamId ? { adamId: req.query.adamId } : {}),
        ...(req.query.serialNumber ? { serialNumber: req.query.serialNumber } : {}),
      });
      // A subtree's administrator sees the licences of its devices only.
      const groupIds = scopeOf(req).groupIds;
      if (groupIds) {
        const serials = new Set(
          (await store.devices.list({ groupIds, limit: 10_000_000 })).map((d) => d.serial_number),
        );
        rows = rows.filter((l) => serials.has(l.serial_number));
      }
      return {
        items: rows.map((l) => ({
          tokenId: l.token_id,
          adamId: l.adam_id,
          serialNumber: l.serial_number,
          state: l.state,
          origin: l.origin,
          viaGroupId: l.via_group_id,
          eventId: l.event_id,
          errorCode: l.error_code,
          updatedAt: l.updated_at,
        })),
        nextCursor: null,
      };
    },
  );

  app.post(
    '/licenses/assign',
    {
      config: {
        authz: {
          permission: 'operate',
          objects: [
            { kind: 'vpp_token', at: 'body.tokenId' },
            { kind: 'serial', at: 'body.serialNumbers' },
          ],
        },
      },
      schema: {
        tags,
        summary: 'Assign device licences by serial (batched to Apple)',
        body: LicenseBody,
        response: { 202: LicenseChange },
      },
    },
    async (req, reply) => {
      const change = await tokens.assign(
        req.body.tokenId,
        req.body.adamId,
        req.body.serialNumbers,
        'manual',
        null,
      );
      await ctx.audit(req, 'license.assign', 'vpp_token', req.body.tokenId, {
        adamId: req.body.adamId,
        serials: req.body.serialNumbers.length,
      });
      return reply.code(202).send(change);
    },
  );

  app.post(
    '/licenses/reclaim',
    {
      config: {
        authz: {
          permission: 'operate',
          objects: [
            { kind: 'vpp_token', at: 'body.tokenId' },
            { kind: 'serial', at: 'body.serialNumbers' },
          ],
        },
      },
      schema: {
        tags,
        summary:
          'Reclaim device licences by serial. Note: licences are reclaimed automatically only on uninstall through haishin, deactivation, remote wipe, token deletion and unsharing — not when a user deletes the app on the device',
        body: LicenseBody,
        response: { 202: LicenseChange },
      },
    },
    async (req, reply) => {
      const change = await tokens.reclaim(req.body.tokenId, req.body.adamId, req.body.serialNumbers);
      await ctx.audit(req, 'license.reclaim', 'vpp_token', req.body.tokenId, {
        adamId: req.body.adamId,
        serials: req.body.serialNumbers.length,
      });
      return reply.code(202).send(change);
    },
  );

  const AutoDistribution = Type.Object({
    groupId: Type.String(),
    apps: Type.Array(
      Type.Object({
        adamId: Type.String(),
        tokenId: Type.String(),
        inheritedFrom: Type.Union([Type.String(), Type.Null()]),
      }),
    ),
  });
  const autoDistributionView = async (groupId: string) => ({
    groupId,
    apps: (await engine.autoDistributionFor(groupId)).map((a) => ({
      adamId: a.adamId,
      tokenId: a.tokenId,
      inheritedFrom: a.fromGroupId === groupId ? null : a.fromGroupId,
    })),
  });

  app.get(
    '/groups/:id/auto-distribution',
    {
      config: { authz: { permission: 'read', objects: [{ kind: 'group', at: 'params.id' }] } },
      schema: {
        tags,
        summary:
          'Apps installed automatically on devices that enroll into the group (own list and inherited)',
        params: IdParams,
        response: { 200: AutoDistribution },
      },
    },
    async (req) => {
      if (!(await store.groups.get(req.params.id)))
        throw new Refusal(404, 'group.not_found', { id: req.params.id });
      return autoDistributionView(req.params.id);
    },
  );

  app.put(
    '/groups/:id/auto-distribution',
    {
      config: {
        authz: {
          permission: 'manage',
          objects: [
            { kind: 'group', at: 'params.id' },
            { kind: 'vpp_token', at: 'body.apps.tokenId' },
          ],
        },
      },
      schema: {
        tags,
        summary: "Set the group's own auto-distribution list; subgroups inherit it",
        params: IdParams,
        body: Type.Object(
          {
            apps: Type.Array(
              Type.Object(
                { adamId: Type.String({ pattern: '^[0-9]+$' }), tokenId: Type.String({ minLength: 1 }) },
                { additionalProperties: false },
              ),
              { maxItems: 200 },
            ),
          },
          { additionalProperties: false },
        ),
        response: { 200: AutoDistribution },
      },
    },
    async (req) => {
      const groupId = req.params.id;
      if (!(await store.groups.get(groupId))) throw new Refusal(404, 'group.not_found', { id: groupId });
      for (const a of req.body.apps) {
        const row = await tokens.mustGet(a.tokenId);
        const placement = {
          tokenId: row.id,
          registeredGroupId: row.group_id,
          sharedGroupIds: await store.vpp.sharesOf(row.id),
        };
        if (!tokenUsableIn(placement, groupId))
          throw new Refusal(409, 'autoassign.token_not_usable', { id: row.id, group: groupId });
        if (!(await store.vpp.asset(row.id, a.adamId)))
          throw new Refusal(404, 'license.asset_not_found', { adamId: a.adamId, id: row.id });
      }
      await store.vpp.setAutoDistributions(groupId, req.body.apps, ctx.clock.now());
      await ctx.audit(req, 'group.auto_distribution', 'group', groupId, { apps: req.body.apps });
      return autoDistributionView(groupId);
    },
  );
}

import { Type } from 'typebox';
import type { FastifyRequest } from 'fastify';
import { parseDuration } from '../../core/duration.ts';
import type { AdminRow, AdminTokenRow } from '../../store/admin-repo.ts';
import type { AdminRole } from '../../store/schema.ts';
import type { AdminApp, AdminContext } from '../admin.ts';
import { callerOf, ROLE_PERMISSIONS, roleRank, scopeOf } from '../authz.ts';
import { ApiError } from '../errors.ts';

/**
 * Administrators and their API tokens (issue 18, decision 0029). Who may manage whom:
 * - an owner: everyone; an admin: the administrators whose scope is inside theirs, at or below
 *   their role (never an owner), giving only roles at or below theirs and scopes inside theirs;
 * - nobody changes their own role, scope or state (another administrator does), and the last
 *   enabled owner stays an enabled owner;
 * - everyone lists, creates and revokes their own tokens; managers those of whom they manage.
 * A token's secret is answered once, at creation; only its hash is stored.
 */

const Role = Type.Union([
  Type.Literal('owner'),
  Type.Literal('admin'),
  Type.Literal('operator'),
  Type.Literal('viewer'),
]);
const Iso = Type.String({ format: 'date-time' });
const Nullable = <T extends Parameters<typeof Type.Union>[0][number]>(t: T) => Type.Union([t, Type.Null()]);

export const Administrator = Type.Object({
  id: Type.String(),
  name: Type.String(),
  role: Role,
  scopeGroupId: Type.String({ description: 'the top group of the subtree the administrator acts in' }),
  wholeTree: Type.Boolean({ description: 'the scope is the root group: the whole tree' }),
  disabled: Type.Boolean(),
  disabledAt: Nullable(Iso),
  createdBy: Nullable(Type.String()),
  createdAt: Iso,
  updatedAt: Iso,
});

export const AdminToken = Type.Object({
  id: Type.String(),
  name: Type.String(),
  adminId: Type.String(),
  state: Type.Union([Type.Literal('active'), Type.Literal('expired'), Type.Literal('revoked')]),
  createdAt: Iso,
  lastUsedAt: Nullable(Iso),
  expiresAt: Nullable(Iso),
  revokedAt: Nullable(Iso),
});

const Name = Type.String({ minLength: 1, maxLength: 200 });
const IdParams = Type.Object({ id: Type.String({ minLength: 1 }) });
const tags = ['administrators'];

export async function registerAdministratorRoutes(app: AdminApp, ctx: AdminContext): Promise<void> {
  const { store, clock } = ctx;
  const rootId = async () => (await store.rootGroup())?.id ?? '';

  const adminToApi = (a: AdminRow, root: string) => ({
    id: a.id,
    name: a.name,
    role: a.role,
    scopeGroupId: a.scope_group_id ?? root,
    wholeTree: a.scope_group_id === null || a.scope_group_id === root,
    disabled: a.disabled_at !== null,
    disabledAt: a.disabled_at,
    createdBy: a.created_by,
    createdAt: a.created_at,
    updatedAt: a.updated_at,
  });

  const tokenToApi = (t: AdminTokenRow, now: Date) => ({
    id: t.id,
    name: t.name,
    adminId: t.admin_id ?? '',
    state:
      t.revoked_at !== null
        ? ('revoked' as const)
        : t.expires_at !== null && t.expires_at <= now.toISOString()
          ? ('expired' as const)
          : ('active' as const),
    createdAt: t.created_at,
    lastUsedAt: t.last_used_at,
    expiresAt: t.expires_at,
    revokedAt: t.revoked_at,
  });

  async function mustGetAdmin(id: string): Promise<AdminRow> {
    const a = await store.admin.getAdmin(id);
    if (!a) throw ApiError.of(404, 'admin.not_found', { id });
    return a;
  }

  /** The caller may manage `target`: an owner anyone, an admin those at or below its role (scope was checked by the rule). */
  function mayManage(req: FastifyRequest, target: AdminRow): boolean {
    const caller = callerOf(req).admin;
    if (!ROLE_PERMISSIONS[caller.role].includes('manage')) return false;
    return roleRank(target.role) <= roleRank(caller.role);
  }

  function mayGive(req: FastifyRequest, role: AdminRole): void {
    const caller = callerOf(req).admin;
    if (roleRank(role) > roleRank(caller.role))
      throw ApiError.of(403, 'admin.role_above_yours', { role: caller.role });
  }

  /** Own tokens: anyone; someone else's: who may manage them. */
  function mayHandleTokensOf(req: FastifyRequest, target: AdminRow): void {
    if (callerOf(req).admin.id === target.id) return;
    if (!mayManage(req, target))
      throw ApiError.of(403, 'auth.forbidden', { role: callerOf(req).admin.role, permission: 'manage' });
  }

  /** An owner's scope is the whole tree: a scope is stored as null then. */
  async function scopeToStore(role: AdminRole, groupId: string | undefined, req: FastifyRequest) {
    const root = await rootId();
    const chosen = groupId ?? scopeOf(req).topGroupId;
    if (role === 'owner' && chosen !== root) throw ApiError.of(409, 'admin.owner_scope');
    return chosen === root ? null : chosen;
  }

  app.get(
    '/me',
    {
      config: { authz: { permission: 'read', unscoped: 'the caller itself: who the token acts for' } },
      schema: {
        tags,
        summary: 'Who this token acts for: the administrator, the token, the permissions and the scope',
        response: {
          200: Type.Object({
            administrator: Administrator,
            token: Type.Object({ id: Type.String(), name: Type.String() }),
            permissions: Type.Array(Type.String()),
            scope: Type.Object({
              groupId: Type.String(),
              wholeTree: Type.Boolean(),
              path: Type.Array(Type.String(), { description: 'group names from the root down' }),
            }),
          }),
        },
      },
    },
    async (req) => {
      const caller = callerOf(req);
      const scope = scopeOf(req);
      const root = await rootId();
      const all = await store.groups.all();
      const byId = new Map(all.map((g) => [g.id, g]));
      const path: string[] = [];
      for (let g = byId.get(scope.topGroupId); g; g = g.parent_id ? byId.get(g.parent_id) : undefined)
        path.unshift(g.name);
      return {
        administrator: adminToApi(caller.admin, root),
        token: { id: caller.tokenId, name: caller.tokenName },
        permissions: [...ROLE_PERMISSIONS[caller.admin.role]],
        scope: { groupId: scope.topGroupId, wholeTree: scope.all, path },
      };
    },
  );

  app.get(
    '/admins',
    {
      config: { authz: { permission: 'manage', filtered: true } },
      schema: {
        tags,
        summary: 'Administrators whose scope is inside yours',
        response: { 200: Type.Object({ items: Type.Array(Administrator), nextCursor: Type.Null() }) },
      },
    },
    async (req) => {
      const scope = scopeOf(req);
      const root = await rootId();
      const rows = (await store.admin.listAdmins()).filter((a) => scope.has(a.scope_group_id ?? root));
      return { items: rows.map((a) => adminToApi(a, root)), nextCursor: null };
    },
  );

  app.post(
    '/admins',
    {
      config: { authz: { permission: 'manage', objects: [{ kind: 'group', at: 'body.scopeGroupId' }] } },
      schema: {
        tags,
        summary:
          'Create an administrator with a role and a scope (a group subtree; default: yours). Give them a token next (POST /admins/{id}/tokens)',
        body: Type.Object(
          { name: Name, role: Role, scopeGroupId: Type.Optional(Type.String({ minLength: 1 })) },
          { additionalProperties: false },
        ),
        response: { 201: Administrator },
      },
    },
    async (req, reply) => {
      const { name, role, scopeGroupId } = req.body;
      mayGive(req, role);
      const stored = await scopeToStore(role, scopeGroupId, req);
      const row = await store.admin.createAdmin(
        { name, role, scopeGroupId: stored, createdBy: callerOf(req).admin.id },
        clock.now(),
      );
      const root = await rootId();
      await ctx.audit(req, 'admin.create', 'admin', row.id, {
        name,
        role,
        scopeGroupId: row.scope_group_id ?? root,
      });
      return reply.code(201).send(adminToApi(row, root));
    },
  );

  app.get(
    '/admins/:id',
    {
      config: { authz: { permission: 'manage', objects: [{ kind: 'admin', at: 'params.id' }] } },
      schema: { tags, summary: 'One administrator', params: IdParams, response: { 200: Administrator } },
    },
    async (req) => adminToApi(await mustGetAdmin(req.params.id), await rootId()),
  );

  app.patch(
    '/admins/:id',
    {
      config: {
        authz: {
          permission: 'manage',
          objects: [
            { kind: 'admin', at: 'params.id' },
            { kind: 'group', at: 'body.scopeGroupId' },
          ],
        },
      },
      schema: {
        tags,
        summary:
          'Rename an administrator, change the role or the scope, disable or enable them (a disabled administrator’s tokens are refused)',
        params: IdParams,
        body: Type.Object(
          {
            name: Type.Optional(Name),
            role: Type.Optional(Role),
            scopeGroupId: Type.Optional(Type.String({ minLength: 1 })),
            disabled: Type.Optional(Type.Boolean()),
          },
          { additionalProperties: false },
        ),
        response: { 200: Administrator },
      },
    },
    async (req) => {
      const target = await mustGetAdmin(req.params.id);
      const caller = callerOf(req).admin;
      const { name, role, scopeGroupId, disabled } = req.body;
      if (!mayManage(req, target)) throw ApiError.of(403, 'admin.role_above_yours', { role: caller.role });
      const root = await rootId();
      const changesRole = role !== undefined && role !== target.role;
      const changesScope = scopeGroupId !== undefined && scopeGroupId !== (target.scope_group_id ?? root);
      const changesState = disabled !== undefined && disabled !== (target.disabled_at !== null);
      if (target.id === caller.id && (changesRole || changesScope || changesState))
        throw ApiError.of(403, 'admin.not_self');
      if (role !== undefined) mayGive(req, role);
      const newRole = role ?? target.role;
      const newScope =
        changesScope || changesRole
          ? await scopeToStore(newRole, scopeGroupId ?? target.scope_group_id ?? root, req)
          : undefined;
      const losesOwner =
        target.role === 'owner' && target.disabled_at === null && (newRole !== 'owner' || disabled === true);
      if (losesOwner && (await store.admin.activeOwners()) <= 1) throw ApiError.of(409, 'admin.last_owner');
      await store.admin.updateAdmin(
        target.id,
        {
          ...(name !== undefined ? { name } : {}),
          ...(role !== undefined ? { role } : {}),
          ...(newScope !== undefined ? { scopeGroupId: newScope } : {}),
          ...(disabled !== undefined ? { disabled } : {}),
        },
        clock.now(),
      );
      await ctx.audit(req, 'admin.update', 'admin', target.id, {
        from: {
          name: target.name,
          role: target.role,
          scopeGroupId: target.scope_group_id ?? root,
          disabled: target.disabled_at !== null,
        },
        to: req.body,
      });
      return adminToApi(await mustGetAdmin(target.id), root);
    },
  );

  app.get(
    '/admins/:id/tokens',
    {
      config: { authz: { permission: 'read', objects: [{ kind: 'admin', at: 'params.id' }] } },
      schema: {
        tags,
        summary: "An administrator's API tokens (never their secrets): your own, or those of whom you manage",
        params: IdParams,
        response: { 200: Type.Object({ items: Type.Array(AdminToken), nextCursor: Type.Null() }) },
      },
    },
    async (req) => {
      const target = await mustGetAdmin(req.params.id);
      mayHandleTokensOf(req, target);
      const now = clock.now();
      return {
        items: (await store.admin.listTokens(target.id)).map((t) => tokenToApi(t, now)),
        nextCursor: null,
      };
    },
  );

  app.post(
    '/admins/:id/tokens',
    {
      config: { authz: { permission: 'read', objects: [{ kind: 'admin', at: 'params.id' }] } },
      schema: {
        tags,
        summary:
          'A new API token for an administrator (yourself, or one you manage), optionally expiring; the secret is answered this once',
        params: IdParams,
        body: Type.Object(
          {
            name: Name,
            expiresAt: Type.Optional(Iso),
            expiresIn: Type.Optional(
              Type.String({ minLength: 1, maxLength: 20, description: '30d, 12h, …' }),
            ),
          },
          { additionalProperties: false },
        ),
        response: {
          201: Type.Object({
            ...AdminToken.properties,
            secret: Type.String({ description: 'the token to send as "Authorization: Bearer"; shown once' }),
          }),
        },
      },
    },
    async (req, reply) => {
      const target = await mustGetAdmin(req.params.id);
      mayHandleTokensOf(req, target);
      const now = clock.now();
      const { name, expiresAt, expiresIn } = req.body;
      if (expiresAt !== undefined && expiresIn !== undefined)
        throw ApiError.of(400, 'admin_token.expiry_invalid');
      let expires: Date | null = expiresAt !== undefined ? new Date(expiresAt) : null;
      if (expiresIn !== undefined) {
        try {
          expires = new Date(now.getTime() + parseDuration(expiresIn));
        } catch {
          throw ApiError.of(400, 'admin_token.expiry_invalid');
        }
      }
      if (expires && (Number.isNaN(expires.getTime()) || expires.getTime() <= now.getTime()))
        throw ApiError.of(400, 'admin_token.expiry_invalid');
      const { row, secret } = await store.admin.createAdminToken(target.id, name, expires, now);
      // Never the secret: the audit trail is read by more people than the token was meant for.
      await ctx.audit(req, 'admin_token.create', 'admin', target.id, {
        tokenId: row.id,
        name,
        expiresAt: row.expires_at,
      });
      return reply.code(201).send({ ...tokenToApi(row, now), secret });
    },
  );

  app.post(
    '/admins/:id/tokens/:tokenId/revoke',
    {
      config: {
        authz: {
          permission: 'read',
          objects: [
            { kind: 'admin', at: 'params.id' },
            { kind: 'admin_token', at: 'params.tokenId' },
          ],
        },
      },
      schema: {
        tags,
        summary: 'Revoke an API token: from now on it is refused (yours, or of one you manage)',
        params: Type.Object({ id: Type.String({ minLength: 1 }), tokenId: Type.String({ minLength: 1 }) }),
        response: { 200: AdminToken },
      },
    },
    async (req) => {
      const target = await mustGetAdmin(req.params.id);
      mayHandleTokensOf(req, target);
      const token = await store.admin.getToken(req.params.tokenId);
      if (!token || token.admin_id !== target.id)
        throw ApiError.of(404, 'admin_token.not_found', { id: req.params.tokenId });
      const now = clock.now();
      if (token.revoked_at === null) {
        await store.admin.revokeToken(token.id, now);
        await ctx.audit(req, 'admin_token.revoke', 'admin', target.id, {
          tokenId: token.id,
          name: token.name,
        });
      }
      return tokenToApi((await store.admin.getToken(token.id))!, now);
    },
  );
}

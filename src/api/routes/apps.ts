import { Type } from 'typebox';
import type { FastifyRequest } from 'fastify';
import { AppMetaError } from '../../apple/appmeta/client.ts';
import { Refusal } from '../../core/refusal.ts';
import type { AppUpdates, UpdateResult } from '../../engine/app-updates.ts';
import type { AdminApp, AdminContext } from '../admin.ts';
import { pageOf } from '../pagination.ts';

/** App updates (issue 14, item 5; decision 0018): versions, update distributions, "keep apps up to date". */

const AppVersionCount = Type.Object({
  version: Type.Union([Type.String(), Type.Null()], {
    description: 'ShortVersion as the devices report it; null: they report none',
  }),
  devices: Type.Integer(),
  outdated: Type.Boolean({ description: 'older than latestVersion' }),
});

export const AppUpdateView = Type.Object({
  adamId: Type.String(),
  name: Type.Union([Type.String(), Type.Null()]),
  bundleId: Type.Union([Type.String(), Type.Null()]),
  latestVersion: Type.Union([Type.String(), Type.Null()], {
    description: 'the newest version the App Store look-up reported; null until a check found the app',
  }),
  previousVersion: Type.Union([Type.String(), Type.Null()], {
    description: 'the version before latestVersion, once haishin saw it change',
  }),
  versionChangedAt: Type.Union([Type.String(), Type.Null()], {
    description: 'when haishin first saw latestVersion',
  }),
  checkedAt: Type.Union([Type.String(), Type.Null()]),
  minimumOsVersion: Type.Union([Type.String(), Type.Null()]),
  versions: Type.Array(AppVersionCount, {
    description:
      'devices (not deactivated) with the app in their last InstalledApplicationList, per version, newest first; refresh devices (POST /devices/:id/refresh) to update it',
  }),
  installedDevices: Type.Integer(),
  outdatedDevices: Type.Integer({ description: 'devices running a version older than latestVersion' }),
  updatableDevices: Type.Integer({
    description:
      'enrolled devices holding a licence for the app through haishin that run an older version (or have not reported their apps yet) and have no install of it running: what POST /apps/:adamId/update would target',
  }),
  updateAvailable: Type.Boolean({ description: 'outdatedDevices > 0' }),
});

const Skipped = Type.Object(
  {
    up_to_date: Type.Integer(),
    not_installed: Type.Integer(),
    not_enrolled: Type.Integer(),
    in_flight: Type.Integer(),
    already_tried: Type.Integer(),
  },
  { description: 'candidate devices (holding a licence for the app) left out, by reason' },
);

const UpdateAnswer = Type.Object({
  adamId: Type.String(),
  version: Type.String({ description: 'the version the jobs expect' }),
  distributions: Type.Array(
    Type.Object({
      id: Type.String(),
      tokenId: Type.String(),
      licenseMode: Type.Union([Type.Literal('auto'), Type.Literal('manual')]),
      jobCount: Type.Integer(),
    }),
    {
      description:
        'one install distribution per token and licence mode; follow them with GET /distributions/:id',
    },
  ),
  jobCount: Type.Integer(),
  skipped: Skipped,
});

const KeepUpdated = Type.Object({
  groupId: Type.String(),
  enabled: Type.Union([Type.Boolean(), Type.Null()], {
    description: "the group's own setting; null: none, it inherits",
  }),
  effective: Type.Boolean({ description: 'the setting in force for the group' }),
  inheritedFrom: Type.Union([Type.String(), Type.Null()], {
    description: 'the ancestor whose setting is in force; null when it is the group’s own (or none is set)',
  }),
});

const AdamParams = Type.Object({ adamId: Type.String({ pattern: '^[0-9]+$' }) });
const IdParams = Type.Object({ id: Type.String({ minLength: 1 }) });
const tags = ['apps'];

const keepUpdatedView = (v: Awaited<ReturnType<AppUpdates['keepUpdated']>>) => ({
  groupId: v.groupId,
  enabled: v.enabled,
  effective: v.effective.enabled,
  inheritedFrom: v.effective.fromGroupId === v.groupId ? null : v.effective.fromGroupId,
});

/** A POST without a body means "all": the body is optional, validated as `{}`. */
const emptyBodyIsObject = async (req: FastifyRequest) => {
  req.body ??= {};
};

const jobsOf = (results: readonly UpdateResult[]) => results.reduce((n, r) => n + r.jobCount, 0);

export async function registerAppRoutes(
  app: AdminApp,
  ctx: AdminContext,
  updates: AppUpdates,
): Promise<void> {
  app.get(
    '/apps',
    {
      config: { authz: { permission: 'read', global: true } },
      schema: {
        tags,
        summary:
          'The apps of the VPP tokens with their newest App Store version and how many devices run an older one',
        response: { 200: pageOf(AppUpdateView) },
      },
    },
    async () => ({ items: await updates.list(), nextCursor: null }),
  );

  app.get(
    '/apps/:adamId',
    {
      config: { authz: { permission: 'read', global: true } },
      schema: {
        tags,
        summary: 'One app: newest version, devices per installed version, devices an update would go to',
        params: AdamParams,
        response: { 200: AppUpdateView },
      },
    },
    async (req) => updates.get(req.params.adamId),
  );

  app.post(
    '/apps/check',
    {
      config: { authz: { permission: 'manage', global: true } },
      preValidation: emptyBodyIsObject,
      schema: {
        tags,
        summary:
          'Look the apps up in the App Store now (haishin does it every 6 hours and after each token sync); groups that keep their apps up to date get the updates found',
        body: Type.Object(
          { adamIds: Type.Optional(Type.Array(Type.String({ pattern: '^[0-9]+$' }), { maxItems: 1000 })) },
          { additionalProperties: false },
        ),
        response: {
          200: Type.Object({
            checkedAt: Type.String(),
            asked: Type.Integer(),
            found: Type.Integer(),
            newVersions: Type.Array(
              Type.Object({ adamId: Type.String(), from: Type.String(), to: Type.String() }),
            ),
            autoUpdates: Type.Array(UpdateAnswer, {
              description: 'updates the "keep apps up to date" setting distributed',
            }),
          }),
        },
      },
    },
    async (req) => {
      let result;
      try {
        result = await updates.check(req.body.adamIds ? { adamIds: req.body.adamIds } : {});
      } catch (err) {
        if (err instanceof AppMetaError) throw new Refusal(502, 'app.lookup_failed', { detail: err.message });
        throw err;
      }
      await ctx.audit(req, 'app.check', 'app', null, {
        newVersions: result.changes,
        autoUpdateJobs: jobsOf(result.autoUpdates),
      });
      return {
        checkedAt: result.checkedAt,
        asked: result.asked,
        found: result.found,
        newVersions: result.changes,
        autoUpdates: result.autoUpdates,
      };
    },
  );

  app.post(
    '/apps/:adamId/update',
    {
      config: {
        authz: {
          permission: 'operate',
          objects: [
            { kind: 'group', at: 'body.groupIds' },
            { kind: 'device', at: 'body.deviceIds' },
          ],
          global: 'unless_objects',
        },
      },
      preValidation: emptyBodyIsObject,
      schema: {
        tags,
        summary:
          'Distribute the newest version of an app to the devices that run an older one: InstallApplication over the managed app, verified by the version the device then reports',
        description:
          'Targets, when given, narrow the devices (groups with or without subgroups, devices); without them every device haishin can update gets it. Only devices holding a licence for the app through haishin are candidates; those already up to date, without the app, not enrolled or with an install of it still running are counted in `skipped`. One distribution per token (the token of the device’s licence) and licence mode.',
        params: AdamParams,
        body: Type.Object(
          {
            groupIds: Type.Optional(Type.Array(Type.String({ minLength: 1 }), { maxItems: 1000 })),
            includeSubgroups: Type.Optional(Type.Boolean()),
            deviceIds: Type.Optional(Type.Array(Type.String({ minLength: 1 }), { maxItems: 100_000 })),
          },
          { additionalProperties: false },
        ),
        response: { 202: UpdateAnswer },
      },
    },
    async (req, reply) => {
      const b = req.body;
      const targets = b.groupIds || b.deviceIds ? b : undefined;
      const result = await updates.distribute(req.params.adamId, targets, req.adminTokenId ?? 'unknown');
      await ctx.audit(req, 'app.update', 'app', req.params.adamId, {
        version: result.version,
        targets: targets ?? 'all',
        distributions: result.distributions.map((d) => d.id),
        jobCount: result.jobCount,
      });
      return reply.code(202).send(result);
    },
  );

  app.get(
    '/groups/:id/keep-apps-updated',
    {
      config: { authz: { permission: 'read', objects: [{ kind: 'group', at: 'params.id' }] } },
      schema: {
        tags: ['groups', ...tags],
        summary:
          '"Keep apps up to date": the group’s own setting and the one in force (inherited from the nearest ancestor that sets it, else off)',
        params: IdParams,
        response: { 200: KeepUpdated },
      },
    },
    async (req) => keepUpdatedView(await updates.keepUpdated(req.params.id)),
  );

  app.put(
    '/groups/:id/keep-apps-updated',
    {
      config: { authz: { permission: 'manage', objects: [{ kind: 'group', at: 'params.id' }] } },
      schema: {
        tags: ['groups', ...tags],
        summary:
          'Set "keep apps up to date" for a group (true, false, or null to inherit); descendants without their own inherit it. On, haishin distributes each new version it finds to the group’s devices that run an older one',
        params: IdParams,
        body: Type.Object(
          { enabled: Type.Union([Type.Boolean(), Type.Null()]) },
          { additionalProperties: false },
        ),
        response: {
          200: Type.Object({
            ...KeepUpdated.properties,
            updateJobs: Type.Integer({
              description: 'update jobs started at once for outdated devices it now covers',
            }),
          }),
        },
      },
    },
    async (req) => {
      const { view, autoUpdates } = await updates.setKeepUpdated(req.params.id, req.body.enabled);
      await ctx.audit(req, 'group.keep_apps_updated', 'group', req.params.id, {
        enabled: req.body.enabled,
        updateJobs: jobsOf(autoUpdates),
      });
      return { ...keepUpdatedView(view), updateJobs: jobsOf(autoUpdates) };
    },
  );
}

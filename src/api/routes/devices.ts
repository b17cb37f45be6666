import { Type } from 'typebox';
import { subtreeIds } from '../../core/groups.ts';
import type { DeviceActions } from '../../engine/device-actions.ts';
import type { DeviceRow } from '../../store/device-repo.ts';
import type { AdminApp, AdminContext } from '../admin.ts';
import { ApiError } from '../errors.ts';
import { scopeOf } from '../authz.ts';
import { decodeCursor, DEFAULT_PAGE_SIZE, page, pageOf, PageQuery } from '../pagination.ts';

const Status = Type.Union([
  Type.Literal('pending'),
  Type.Literal('enrolled'),
  Type.Literal('unenrolled'),
  Type.Literal('deactivated'),
]);
const Nullable = <T extends Parameters<typeof Type.Union>[0][number]>(t: T) => Type.Union([t, Type.Null()]);

export const Device = Type.Object({
  id: Type.String(),
  deviceNumber: Type.Integer(),
  udid: Type.String(),
  serialNumber: Nullable(Type.String()),
  groupId: Type.String(),
  status: Status,
  name: Nullable(Type.String()),
  model: Nullable(Type.String()),
  osVersion: Nullable(Type.String()),
  productName: Nullable(Type.String()),
  isSupervised: Nullable(Type.Boolean()),
  isSharedIPad: Type.Boolean(),
  lastSeenAt: Nullable(Type.String({ format: 'date-time' })),
  enrolledAt: Nullable(Type.String({ format: 'date-time' })),
  checkedOutAt: Nullable(Type.String({ format: 'date-time' })),
  identityNotAfter: Nullable(
    Type.String({
      format: 'date-time',
      description: 'when the identity the device signs with expires; renewed before (decision 0023)',
    }),
  ),
  identityRenewalAt: Nullable(
    Type.String({
      format: 'date-time',
      description:
        'when a renewed identity was sent that the device has not used yet; null when none is pending',
    }),
  ),
});

const tags = ['devices'];
const IdParams = Type.Object({ id: Type.String({ minLength: 1 }) });

export function deviceToApi(d: DeviceRow) {
  return {
    id: d.id,
    deviceNumber: d.device_number,
    udid: d.udid,
    serialNumber: d.serial_number,
    groupId: d.group_id,
    status: d.status,
    name: d.name,
    model: d.model,
    osVersion: d.os_version,
    productName: d.product_name,
    isSupervised: d.is_supervised === null ? null : d.is_supervised === 1,
    isSharedIPad: d.is_shared_ipad === 1,
    lastSeenAt: d.last_seen_at,
    enrolledAt: d.enrolled_at,
    checkedOutAt: d.checked_out_at,
    identityNotAfter: d.identity_not_after,
    identityRenewalAt: d.pending_cert_fingerprint !== null ? d.identity_renewal_at : null,
  };
}

const json = (text: string | null): unknown => (text === null ? null : JSON.parse(text));

export async function registerDeviceRoutes(
  app: AdminApp,
  ctx: AdminContext,
  actions: DeviceActions,
): Promise<void> {
  const { store, clock } = ctx;

  async function mustGet(id: string): Promise<DeviceRow> {
    const device = await store.devices.get(id);
    if (!device) throw ApiError.of(404, 'device.not_found', { id });
    return device;
  }

  app.get(
    '/devices',
    {
      config: { authz: { permission: 'read', filtered: true } },
      schema: {
        tags,
        summary: 'List devices by device number',
        querystring: Type.Object({
          ...PageQuery,
          groupId: Type.Optional(Type.String()),
          includeSubgroups: Type.Optional(Type.Boolean()),
          serialNumber: Type.Optional(Type.String()),
          status: Type.Optional(Status),
          identityExpired: Type.Optional(
            Type.Boolean({
              description:
                'true: only managed devices whose identity has expired (they must enroll again; decision 0023)',
            }),
          ),
        }),
        response: { 200: pageOf(Device) },
      },
    },
    async (req) => {
      const { groupId, includeSubgroups, serialNumber, status, identityExpired } = req.query;
      const limit = req.query.limit ?? DEFAULT_PAGE_SIZE;
      const after = decodeCursor(req.query.cursor, 1);
      let groupIds: string[] | undefined;
      if (groupId !== undefined) {
        if (includeSubgroups) {
          const all = await store.groups.all();
          groupIds = [
            ...subtreeIds(
              all.map((g) => ({ id: g.id, parentId: g.parent_id })),
              groupId,
            ),
          ];
        } else groupIds = [groupId];
      }
      // A subtree's administrator sees its devices only; a group outside it lists nothing.
      const inScope = scopeOf(req).groupIds;
      if (inScope) {
        const allowed = new Set(inScope);
        groupIds = groupIds ? groupIds.filter((id) => allowed.has(id)) : inScope;
      }
      const rows = await store.devices.list({
        ...(groupIds ? { groupIds } : {}),
        ...(serialNumber ? { serialNumber } : {}),
        ...(status ? { status } : {}),
        ...(identityExpired ? { identityExpiredAt: clock.now() } : {}),
        ...(after ? { afterDeviceNumber: Number(after[0]) } : {}),
        limit: limit + 1,
      });
      const result = page(rows, limit, (d) => [d.device_number]);
      return { items: result.items.map(deviceToApi), nextCursor: result.nextCursor };
    },
  );

  app.get(
    '/devices/:id',
    {
      config: { authz: { permission: 'read', objects: [{ kind: 'device', at: 'params.id' }] } },
      schema: {
        tags,
        summary:
          'One device with the facts haishin keeps (DeviceInformation, restrictions, users, app lists)',
        params: IdParams,
      },
    },
    async (req) => {
      const d = await mustGet(req.params.id);
      return {
        ...deviceToApi(d),
        facts: { value: json(d.facts), at: d.facts_at },
        restrictions: { value: json(d.restrictions), at: d.restrictions_at },
        sharedUsers: { value: json(d.shared_users), at: d.shared_users_at },
        installedApps: { value: json(d.installed_apps), at: d.installed_apps_at },
        managedApps: { value: json(d.managed_apps), at: d.managed_apps_at },
      };
    },
  );

  app.patch(
    '/devices/:id',
    {
      config: {
        authz: {
          permission: 'manage',
          objects: [
            { kind: 'device', at: 'params.id' },
            { kind: 'group', at: 'body.groupId' },
          ],
        },
      },
      schema: {
        tags,
        summary: 'Move a device to another group or change its device number',
        params: IdParams,
        body: Type.Object(
          {
            groupId: Type.Optional(Type.String({ minLength: 1 })),
            deviceNumber: Type.Optional(Type.Integer({ minimum: 1 })),
          },
          { additionalProperties: false },
        ),
        response: { 200: Device },
      },
    },
    async (req) => {
      const device = await mustGet(req.params.id);
      const { groupId, deviceNumber } = req.body;
      if (groupId !== undefined && !(await store.groups.get(groupId)))
        throw ApiError.of(404, 'group.not_found', { id: groupId });
      if (deviceNumber !== undefined && deviceNumber !== device.device_number) {
        const holder = await store.devices.byNumber(deviceNumber);
        if (holder) throw ApiError.of(409, 'device.number_taken', { number: deviceNumber });
      }
      await store.devices.update(device.id, req.body, clock.now());
      await ctx.audit(req, groupId !== undefined ? 'device.move' : 'device.update', 'device', device.id, {
        from: { groupId: device.group_id, deviceNumber: device.device_number },
        to: req.body,
      });
      return deviceToApi(await mustGet(device.id));
    },
  );

  app.post(
    '/devices/:id/refresh',
    {
      config: { authz: { permission: 'operate', objects: [{ kind: 'device', at: 'params.id' }] } },
      schema: {
        tags,
        summary:
          'Ask the device for fresh facts: DeviceInformation, Restrictions, InstalledApplicationList (and UserList on Shared iPad), then push',
        params: IdParams,
        response: {
          202: Type.Object({
            commands: Type.Array(Type.Object({ uuid: Type.String(), requestType: Type.String() })),
            push: Type.String({
              description: 'the push outcome: sent, not_pushable, unregistered or failed',
            }),
          }),
        },
      },
    },
    async (req, reply) => {
      const device = await mustGet(req.params.id);
      const { commands, push } = await actions.refresh(device.id);
      await ctx.audit(req, 'device.refresh', 'device', device.id, {
        commands: commands.map((c) => c.requestType),
        push,
      });
      return reply.code(202).send({ commands, push });
    },
  );

  app.post(
    '/devices/:id/deactivate',
    {
      config: { authz: { permission: 'manage', objects: [{ kind: 'device', at: 'params.id' }] } },
      schema: {
        tags,
        summary: 'Deactivate a device: its licences are reclaimed and no further commands are sent',
        params: IdParams,
        response: {
          200: Type.Object({
            device: Device,
            reclaimedLicenses: Type.Integer(),
            cancelledJobs: Type.Integer({
              description: 'its unfinished jobs, cancelled (reason device.deactivated)',
            }),
          }),
        },
      },
    },
    async (req) => {
      const device = await mustGet(req.params.id);
      const done = await actions.deactivate(device.id);
      await ctx.audit(req, 'device.deactivate', 'device', device.id, done);
      return { device: deviceToApi(await mustGet(device.id)), ...done };
    },
  );

  app.post(
    '/devices/:id/wipe',
    {
      config: { authz: { permission: 'manage', objects: [{ kind: 'device', at: 'params.id' }] } },
      schema: {
        tags,
        summary: 'Remote wipe (EraseDevice). Every licence the device holds is reclaimed',
        params: IdParams,
        response: {
          202: Type.Object({
            commandUuid: Type.String(),
            push: Type.String(),
            reclaimedLicenses: Type.Integer(),
            cancelledJobs: Type.Integer({
              description: 'its unfinished jobs, cancelled (reason device.wiped)',
            }),
          }),
        },
      },
    },
    async (req, reply) => {
      const device = await mustGet(req.params.id);
      const done = await actions.wipe(device.id);
      await ctx.audit(req, 'device.wipe', 'device', device.id, {
        commandUuid: done.commandUuid,
        reclaimedLicenses: done.reclaimedLicenses,
        cancelledJobs: done.cancelledJobs,
      });
      return reply.code(202).send(done);
    },
  );

  app.post(
    '/devices/:id/uninstall',
    {
      config: { authz: { permission: 'operate', objects: [{ kind: 'device', at: 'params.id' }] } },
      schema: {
        tags,
        summary:
          'Remove a managed app through haishin (RemoveApplication, as an uninstall distribution of one job); a licence haishin auto-assigned for it is reclaimed once the device acknowledged the removal',
        params: IdParams,
        body: Type.Object(
          { adamId: Type.String({ minLength: 1, pattern: '^[0-9]+$' }) },
          { additionalProperties: false },
        ),
        response: {
          202: Type.Object({
            distributionId: Type.String(),
            jobId: Type.String({ description: 'follow it at GET /jobs/{jobId}' }),
          }),
        },
      },
    },
    async (req, reply) => {
      const device = await mustGet(req.params.id);
      const created = await actions.uninstall(device.id, req.body.adamId, req.adminTokenId ?? 'unknown');
      await ctx.audit(req, 'device.uninstall', 'device', device.id, {
        adamId: req.body.adamId,
        ...created,
      });
      return reply.code(202).send(created);
    },
  );
}

import type { Kysely, Selectable } from 'kysely';
import type { Database, DevicesTable, DeviceStatus } from './schema.ts';
import { inChunks } from './chunks.ts';

export type DeviceRow = Selectable<DevicesTable>;
export type DeviceBrief = Pick<DeviceRow, 'id' | 'udid' | 'serial_number' | 'group_id' | 'status'>;

export interface DeviceFilter {
  groupIds?: readonly string[];
  serialNumber?: string;
  status?: DeviceStatus;
  /** Only managed devices (pending, enrolled) whose identity expired by then (decision 0023). */
  identityExpiredAt?: Date;
  afterDeviceNumber?: number;
  limit: number;
}

export class DeviceRepo {
  readonly #db: Kysely<Database>;

  constructor(db: Kysely<Database>) {
    this.#db = db;
  }

  /** Ordered by device number, the administrator's own key (端末番号). */
  list(f: DeviceFilter): Promise<DeviceRow[]> {
    let q = this.#db.selectFrom('devices').selectAll();
    if (f.groupIds) q = q.where('group_id', 'in', f.groupIds.length > 0 ? [...f.groupIds] : ['']);
    if (f.serialNumber) q = q.where('serial_number', '=', f.serialNumber);
    if (f.status) q = q.where('status', '=', f.status);
    if (f.identityExpiredAt)
      q = q
        .where('status', 'in', ['pending', 'enrolled'])
        .where('identity_not_after', '<=', f.identityExpiredAt.toISOString());
    if (f.afterDeviceNumber !== undefined) q = q.where('device_number', '>', f.afterDeviceNumber);
    return q.orderBy('device_number').limit(f.limit).execute();
  }

  /** How many devices are in each status, in one grouped query (the server status page). */
  async countByStatus(groupIds?: readonly string[]): Promise<Record<DeviceStatus, number>> {
    let q = this.#db.selectFrom('devices').select(['status', (eb) => eb.fn.countAll<number>().as('n')]);
    // An administrator's scope (decision 0029): the devices of these groups only.
    if (groupIds) q = q.where('group_id', 'in', groupIds.length > 0 ? [...groupIds] : ['']);
    const rows = await q.groupBy('status').execute();
    const out: Record<DeviceStatus, number> = { pending: 0, enrolled: 0, unenrolled: 0, deactivated: 0 };
    // Number(): PostgreSQL answers count(*) as a string unless the int8 parser is set (STACK G11).
    for (const r of rows) out[r.status] = Number(r.n);
    return out;
  }

  get(id: string): Promise<DeviceRow | undefined> {
    return this.#db.selectFrom('devices').selectAll().where('id', '=', id).executeTakeFirst();
  }

  /**
   * The few columns the engine's passes need, for a batch of devices in one query per thousand:
   * not the facts and app lists a full row carries.
   */
  async briefs(ids: readonly string[]): Promise<Map<string, DeviceBrief>> {
    const rows = await inChunks([...new Set(ids)], (chunk) =>
      this.#db
        .selectFrom('devices')
        .select(['id', 'udid', 'serial_number', 'group_id', 'status'])
        .where('id', 'in', chunk)
        .execute(),
    );
    return new Map(rows.flat().map((r) => [r.id, r]));
  }

  byNumber(deviceNumber: number): Promise<DeviceRow | undefined> {
    return this.#db
      .selectFrom('devices')
      .selectAll()
      .where('device_number', '=', deviceNumber)
      .executeTakeFirst();
  }

  /** Device channels that can be pushed: enabled, with a token from a TokenUpdate. */
  async pushTargets(
    deviceIds: readonly string[],
  ): Promise<{ deviceId: string; token: string; pushMagic: string; tokenUpdatedAt: string }[]> {
    const rows = (
      await inChunks(deviceIds, (ids) =>
        this.#db
          .selectFrom('enrollments')
          .select(['device_id', 'push_token', 'push_magic', 'updated_at'])
          .where('device_id', 'in', ids)
          .where('type', '=', 'device')
          .where('enabled', '=', 1)
          .where('push_token', 'is not', null)
          .execute(),
      )
    ).flat();
    return rows.map((r) => ({
      deviceId: r.device_id,
      token: r.push_token!,
      pushMagic: r.push_magic ?? '',
      tokenUpdatedAt: r.updated_at,
    }));
  }

  async recordPush(deviceId: string, result: unknown, at: Date): Promise<void> {
    await this.#db
      .updateTable('devices')
      .set({ last_push_at: at.toISOString(), last_push_result: JSON.stringify(result) })
      .where('id', '=', deviceId)
      .execute();
  }

  /** APNs said 410: the device removed its MDM profile without a CheckOut reaching us. */
  async markGone(deviceId: string, at: Date): Promise<void> {
    await this.#db
      .updateTable('devices')
      .set({ status: 'unenrolled', updated_at: at.toISOString() })
      .where('id', '=', deviceId)
      .where('status', 'in', ['enrolled', 'pending'])
      .execute();
  }

  /** Stops all commands to the device: its queue is emptied and it is marked deactivated. */
  async deactivate(id: string, at: Date): Promise<void> {
    await this.#db.transaction().execute(async (tx) => {
      const channels = await tx.selectFrom('enrollments').select('id').where('device_id', '=', id).execute();
      if (channels.length > 0) {
        await tx
          .deleteFrom('command_queue')
          .where(
            'enrollment_id',
            'in',
            channels.map((c) => c.id),
          )
          .execute();
      }
      await tx
        .updateTable('devices')
        .set({ status: 'deactivated', updated_at: at.toISOString() })
        .where('id', '=', id)
        .execute();
    });
  }

  async update(id: string, changes: { groupId?: string; deviceNumber?: number }, at: Date): Promise<void> {
    await this.#db
      .updateTable('devices')
      .set({
        ...(changes.groupId !== undefined ? { group_id: changes.groupId } : {}),
        ...(changes.deviceNumber !== undefined ? { device_number: changes.deviceNumber } : {}),
        updated_at: at.toISOString(),
      })
      .where('id', '=', id)
      .execute();
  }
}

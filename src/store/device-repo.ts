import type { Kysely, Selectable } from 'kysely';
import type { Database, DevicesTable, DeviceStatus } from './schema.ts';

export type DeviceRow = Selectable<DevicesTable>;

export interface DeviceFilter {
  groupIds?: readonly string[];
  serialNumber?: string;
  status?: DeviceStatus;
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
    if (f.afterDeviceNumber !== undefined) q = q.where('device_number', '>', f.afterDeviceNumber);
    return q.orderBy('device_number').limit(f.limit).execute();
  }

  get(id: string): Promise<DeviceRow | undefined> {
    return this.#db.selectFrom('devices').selectAll().where('id', '=', id).executeTakeFirst();
  }

  byNumber(deviceNumber: number): Promise<DeviceRow | undefined> {
    return this.#db.selectFrom('devices').selectAll().where('device_number', '=', deviceNumber).executeTakeFirst();
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

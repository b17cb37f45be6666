import { randomUUID } from 'node:crypto';
import type { Kysely, Selectable } from 'kysely';
import type { Database, GroupsTable } from './schema.ts';

export type GroupRow = Selectable<GroupsTable>;

export class GroupRepo {
  readonly #db: Kysely<Database>;

  constructor(db: Kysely<Database>) {
    this.#db = db;
  }

  /** The whole tree: groups number in the hundreds or thousands, and tree rules need all of them. */
  all(): Promise<GroupRow[]> {
    return this.#db.selectFrom('groups').selectAll().orderBy('created_at').orderBy('id').execute();
  }

  get(id: string): Promise<GroupRow | undefined> {
    return this.#db.selectFrom('groups').selectAll().where('id', '=', id).executeTakeFirst();
  }

  async create(name: string, parentId: string, at: Date): Promise<GroupRow> {
    const now = at.toISOString();
    const row = { id: randomUUID(), name, parent_id: parentId, created_at: now, updated_at: now };
    await this.#db.insertInto('groups').values(row).execute();
    return row;
  }

  async update(id: string, changes: { name?: string; parentId?: string }, at: Date): Promise<void> {
    await this.#db
      .updateTable('groups')
      .set({
        ...(changes.name !== undefined ? { name: changes.name } : {}),
        ...(changes.parentId !== undefined ? { parent_id: changes.parentId } : {}),
        updated_at: at.toISOString(),
      })
      .where('id', '=', id)
      .execute();
  }

  async contents(id: string): Promise<{ devices: number; groups: number }> {
    const devices = await this.#db
      .selectFrom('devices')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('group_id', '=', id)
      .executeTakeFirstOrThrow();
    const groups = await this.#db
      .selectFrom('groups')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('parent_id', '=', id)
      .executeTakeFirstOrThrow();
    return { devices: Number(devices.n), groups: Number(groups.n) };
  }

  /**
   * Deletes an empty group with the settings that name it (auto-assign token, apps on enrollment,
   * keep apps up to date, token shares into it, enrollment links): they mean nothing without it, and would keep the
   * group from being deleted. The caller unshares first, so licences assigned through a share are
   * reclaimed.
   */
  async delete(id: string): Promise<void> {
    await this.#db.transaction().execute(async (tx) => {
      await tx.deleteFrom('auto_assign_settings').where('group_id', '=', id).execute();
      await tx.deleteFrom('auto_distributions').where('group_id', '=', id).execute();
      await tx.deleteFrom('group_app_updates').where('group_id', '=', id).execute();
      await tx.deleteFrom('vpp_token_shares').where('group_id', '=', id).execute();
      await tx.deleteFrom('enrollment_links').where('group_id', '=', id).execute();
      await tx.deleteFrom('groups').where('id', '=', id).execute();
    });
  }
}

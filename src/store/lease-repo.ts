import type { Kysely } from 'kysely';
import type { Database } from './schema.ts';

export interface LeaseRow {
  name: string;
  holder: string;
  expires_at: string;
  acquired_at: string;
}

/**
 * Leases on named work, for several processes on one database (decision 0019): one statement
 * takes a free or expired lease, or renews one the caller holds — the same SQL on SQLite and
 * PostgreSQL, atomic on both (INSERT … ON CONFLICT DO UPDATE … WHERE).
 */
export class LeaseRepo {
  readonly #db: Kysely<Database>;

  constructor(db: Kysely<Database>) {
    this.#db = db;
  }

  /** Takes or renews `name` for `holder` until `now + ttlMs`; false when another holds it. */
  async acquire(name: string, holder: string, now: Date, ttlMs: number): Promise<boolean> {
    const at = now.toISOString();
    const until = new Date(now.getTime() + ttlMs).toISOString();
    const result = await this.#db
      .insertInto('leases')
      .values({ name, holder, expires_at: until, acquired_at: at })
      .onConflict((oc) =>
        oc
          .column('name')
          .doUpdateSet((eb) => ({
            holder: eb.ref('excluded.holder'),
            expires_at: eb.ref('excluded.expires_at'),
            // Kept while the same holder renews; a takeover starts anew.
            acquired_at: eb
              .case()
              .when('leases.holder', '=', holder)
              .then(eb.ref('leases.acquired_at'))
              .else(eb.ref('excluded.acquired_at'))
              .end(),
          }))
          .where((eb) => eb.or([eb('leases.holder', '=', holder), eb('leases.expires_at', '<', at)])),
      )
      .executeTakeFirst();
    return Number(result.numInsertedOrUpdatedRows ?? 0) > 0;
  }

  /** Gives `name` up at once (a clean stop), if `holder` holds it. */
  async release(name: string, holder: string): Promise<void> {
    await this.#db.deleteFrom('leases').where('name', '=', name).where('holder', '=', holder).execute();
  }

  all(): Promise<LeaseRow[]> {
    return this.#db.selectFrom('leases').selectAll().orderBy('name').execute();
  }
}

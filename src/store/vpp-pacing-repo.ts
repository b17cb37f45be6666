import { sql } from 'kysely';
import type { Kysely } from 'kysely';
import type { Database } from './schema.ts';

/**
 * The Apps and Books pacing per location, shared by every process on the database (decision
 * 0021). A location's row is the token bucket's "theoretical arrival time" (GCRA): each call
 * moves it forward by one interval from `max(tat, now)` and learns when it may go; a Retry-After
 * or a backoff moves it to at least the time given. Each is one statement, the same SQL on SQLite
 * and PostgreSQL (INSERT … ON CONFLICT DO UPDATE … RETURNING), atomic on both: two processes
 * never get the same slot.
 */
export class VppPacingRepo {
  readonly #db: Kysely<Database>;

  constructor(db: Kysely<Database>) {
    this.#db = db;
  }

  /**
   * Reserves the next slot of `location`: the bucket's new arrival time, `max(tat, nowMs) +
   * intervalMs` (the caller's slot is that minus the interval and its burst tolerance).
   */
  async advance(location: string, nowMs: number, intervalMs: number): Promise<number> {
    const row = await this.#db
      .insertInto('vpp_pacing')
      .values({ location, tat: nowMs + intervalMs })
      .onConflict((oc) =>
        oc.column('location').doUpdateSet({
          tat: sql<number>`(case when vpp_pacing.tat > ${nowMs} then vpp_pacing.tat else ${nowMs} end) + ${intervalMs}`,
        }),
      )
      .returning('tat')
      .executeTakeFirstOrThrow();
    return Number(row.tat);
  }

  /** No slot of `location` before `untilMs` (a Retry-After or a backoff, whoever saw it). */
  async holdUntil(location: string, untilMs: number): Promise<void> {
    await this.#db
      .insertInto('vpp_pacing')
      .values({ location, tat: untilMs })
      .onConflict((oc) =>
        oc.column('location').doUpdateSet({
          tat: sql<number>`case when vpp_pacing.tat > ${untilMs} then vpp_pacing.tat else ${untilMs} end`,
        }),
      )
      .execute();
  }

  /** The arrival time of `location`, if any call was paced there yet. */
  async get(location: string): Promise<number | null> {
    const row = await this.#db
      .selectFrom('vpp_pacing')
      .select('tat')
      .where('location', '=', location)
      .executeTakeFirst();
    return row ? Number(row.tat) : null;
  }
}

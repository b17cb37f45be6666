import type { Kysely } from 'kysely';
import type { Dialect } from './db.ts';
import type { Database } from './schema.ts';

export interface DiagnosisQueueRow {
  job_id: string;
  queued_at: string;
  claimed_by: string | null;
  claim_expires_at: string | null;
}

/**
 * Failed jobs waiting for their background diagnosis (decision 0021), as rows any process may
 * claim: a job failed on one process is diagnosed once, by whichever process claims it, and the
 * claims of a process that died lapse at their expiry. On PostgreSQL a claim skips the rows
 * another process is claiming (`FOR UPDATE SKIP LOCKED`); SQLite has one process and one writer,
 * so the same statement without it is already atomic.
 */
export class DiagnosisQueueRepo {
  readonly #db: Kysely<Database>;
  readonly #dialect: Dialect;

  constructor(db: Kysely<Database>, dialect: Dialect) {
    this.#db = db;
    this.#dialect = dialect;
  }

  /**
   * Queues a job. Queued again while claimed (the device answered the diagnosis's questions
   * meanwhile), it becomes claimable anew: the running diagnosis may have read the old facts.
   */
  async add(jobId: string, now: Date): Promise<void> {
    await this.#db
      .insertInto('diagnosis_queue')
      .values({ job_id: jobId, queued_at: now.toISOString(), claimed_by: null, claim_expires_at: null })
      .onConflict((oc) => oc.column('job_id').doUpdateSet({ claimed_by: null, claim_expires_at: null }))
      .execute();
  }

  /** Claims up to `limit` rows, oldest first, unclaimed or whose claim expired; their job ids. */
  async claim(holder: string, now: Date, limit: number, ttlMs: number): Promise<string[]> {
    if (limit <= 0) return [];
    const at = now.toISOString();
    const until = new Date(now.getTime() + ttlMs).toISOString();
    let claimable = this.#db
      .selectFrom('diagnosis_queue')
      .select('job_id')
      .where((eb) => eb.or([eb('claimed_by', 'is', null), eb('claim_expires_at', '<', at)]))
      .orderBy('queued_at')
      .orderBy('job_id')
      .limit(limit);
    if (this.#dialect === 'postgres') claimable = claimable.forUpdate().skipLocked();
    const rows = await this.#db
      .updateTable('diagnosis_queue')
      .set({ claimed_by: holder, claim_expires_at: until })
      .where('job_id', 'in', claimable)
      // Checked again on the row as updated: a row claimed meanwhile is not taken twice.
      .where((eb) => eb.or([eb('claimed_by', 'is', null), eb('claim_expires_at', '<', at)]))
      .returning('job_id')
      .execute();
    return rows.map((r) => r.job_id);
  }

  /** The diagnosis ran: the row goes, unless it was queued again meanwhile (then it is no longer ours). */
  async done(jobId: string, holder: string): Promise<void> {
    await this.#db
      .deleteFrom('diagnosis_queue')
      .where('job_id', '=', jobId)
      .where('claimed_by', '=', holder)
      .execute();
  }

  /** Gives back what `holder` claimed (a clean stop): another process claims it at once. */
  async release(holder: string): Promise<void> {
    await this.#db
      .updateTable('diagnosis_queue')
      .set({ claimed_by: null, claim_expires_at: null })
      .where('claimed_by', '=', holder)
      .execute();
  }

  /**
   * The queue's depth (`/metrics`): rows waiting for a claim (never claimed, or their claim lapsed)
   * and rows claimed by a live process, being diagnosed.
   */
  async depth(now: Date): Promise<{ waiting: number; claimed: number }> {
    const at = now.toISOString();
    const row = await this.#db
      .selectFrom('diagnosis_queue')
      .select((eb) => [
        eb.fn.countAll<number | string>().as('rows'),
        eb.fn
          .countAll<number | string>()
          .filterWhere((f) => f.and([f('claimed_by', 'is not', null), f('claim_expires_at', '>=', at)]))
          .as('claimed'),
      ])
      .executeTakeFirstOrThrow();
    const claimed = Number(row.claimed);
    return { waiting: Number(row.rows) - claimed, claimed };
  }

  all(): Promise<DiagnosisQueueRow[]> {
    return this.#db
      .selectFrom('diagnosis_queue')
      .selectAll()
      .orderBy('queued_at')
      .orderBy('job_id')
      .execute();
  }
}

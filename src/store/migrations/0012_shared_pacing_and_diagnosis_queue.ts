import type { Kysely } from 'kysely';

/**
 * Issue 16, item 3 (decision 0021): two pieces of state that were each process's memory move to
 * the database, so that several processes on one PostgreSQL database share them.
 *
 * `vpp_pacing`: the Apps and Books pacing per location — the "theoretical arrival time" of the
 * token bucket (GCRA), in milliseconds since the epoch. One row per location, moved forward
 * atomically by every call and by a Retry-After or a backoff, whichever process saw it.
 *
 * `diagnosis_queue`: failed jobs waiting for their background diagnosis, claimed a few at a time by
 * whichever process has room (`claimed_by`), the claim lapsing at `claim_expires_at` when its
 * process dies.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('vpp_pacing')
    /** A digest of the token (one per location), never the token itself. */
    .addColumn('location', 'text', (c) => c.primaryKey())
    /** Fractional milliseconds: an interval of 1000/13.5 ms is not a whole number. */
    .addColumn('tat', 'double precision', (c) => c.notNull())
    .execute();
  await db.schema
    .createTable('diagnosis_queue')
    .addColumn('job_id', 'text', (c) => c.primaryKey())
    .addColumn('queued_at', 'text', (c) => c.notNull())
    .addColumn('claimed_by', 'text')
    .addColumn('claim_expires_at', 'text')
    .execute();
  await db.schema.createIndex('diagnosis_queue_queued').on('diagnosis_queue').column('queued_at').execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('diagnosis_queue').execute();
  await db.schema.dropTable('vpp_pacing').execute();
}

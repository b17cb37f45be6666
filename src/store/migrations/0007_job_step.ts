import type { Kysely } from 'kysely';
import { sql } from 'kysely';

/**
 * Issue 14: the engine kept its place within a status in the job's `reason` ('submitted': the
 * licence was asked of Apple; 'retry' / 'retry pushed': the push after a retry was due / done).
 * That state moves to an explicit `step` column (JobStep in src/core/jobs.ts); `reason` is for
 * people. Jobs in flight when the database is migrated keep their place: the values are written
 * out here, not imported, because a migration must not change when the code does.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('jobs').addColumn('step', 'text').execute();
  await sql`update jobs set step = 'licence_requested' where status = 'license_assigning' and reason = 'submitted'`.execute(
    db,
  );
  await sql`update jobs set step = 'push_due' where status = 'push_sending' and reason = 'retry'`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  // The reasons the engine of 0006 read, back where it looks for them.
  await sql`update jobs set reason = 'submitted' where status = 'license_assigning' and step = 'licence_requested'`.execute(
    db,
  );
  await sql`update jobs set reason = 'retry' where status = 'push_sending' and step = 'push_due'`.execute(db);
  await db.schema.alterTable('jobs').dropColumn('step').execute();
}

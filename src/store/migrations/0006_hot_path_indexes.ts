import type { Kysely } from 'kysely';
import { sql } from 'kysely';

/**
 * Indexes the engine's per-tick queries need once a distribution has hundreds of thousands of
 * jobs (found with the 4,000- to 100,000-iPad demo): the next jobs of a status in order, and the
 * overdue jobs of each timeout. The deadline indexes are partial — only jobs in the statuses that
 * deadline watches — so most status changes do not touch them (full indexes on (status, deadline)
 * doubled the cost of a commit). The status lists are written out here, not imported, because a
 * migration must not change when the code does; test/store-plans.test.ts checks they match
 * `DEADLINE_WATCH` in core/jobs.ts and that the planner uses them.
 */
// NOT IN the other statuses (see deadlineWatchSql in job-repo.ts, which must produce the same text).
const WATCH = {
  push_deadline:
    "not in ('waiting', 'scheduled', 'license_assigning', 'awaiting_response', 'executing', 'success', 'push_timeout', 'request_timeout', 'session_timeout', 'cancelled', 'device_error', 'server_error', 'license_failed')",
  session_deadline:
    "not in ('waiting', 'scheduled', 'license_assigning', 'push_sending', 'retry_waiting', 'success', 'push_timeout', 'request_timeout', 'session_timeout', 'cancelled', 'device_error', 'server_error', 'license_failed')",
  request_deadline:
    "not in ('success', 'push_timeout', 'request_timeout', 'session_timeout', 'cancelled', 'device_error', 'server_error', 'license_failed')",
};

export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.createIndex('jobs_status_seq').on('jobs').columns(['status', 'seq']).execute();
  for (const [column, predicate] of Object.entries(WATCH)) {
    await db.schema
      .createIndex(`jobs_due_${column}`)
      .on('jobs')
      .column(column)
      .where(sql<boolean>`status ${sql.raw(predicate)}`)
      .execute();
  }
  await db.schema.createIndex('command_queue_command').on('command_queue').column('command_uuid').execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropIndex('command_queue_command').execute();
  for (const column of Object.keys(WATCH)) await db.schema.dropIndex(`jobs_due_${column}`).execute();
  await db.schema.dropIndex('jobs_status_seq').execute();
}

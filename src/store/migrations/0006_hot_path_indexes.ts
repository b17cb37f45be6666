import type { Kysely } from 'kysely';

/**
 * Indexes the engine's per-tick queries need once a distribution has hundreds of thousands of
 * jobs (found with the 10,000- and 100,000-iPad demo): the next jobs of a status in order, the
 * overdue jobs of each timeout, and the queue row of a command that timed out.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.createIndex('jobs_status_seq').on('jobs').columns(['status', 'seq']).execute();
  for (const column of ['push_deadline', 'session_deadline', 'request_deadline']) {
    await db.schema.createIndex(`jobs_status_${column}`).on('jobs').columns(['status', column]).execute();
  }
  await db.schema.createIndex('command_queue_command').on('command_queue').column('command_uuid').execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropIndex('command_queue_command').execute();
  for (const column of ['push_deadline', 'session_deadline', 'request_deadline'])
    await db.schema.dropIndex(`jobs_status_${column}`).execute();
  await db.schema.dropIndex('jobs_status_seq').execute();
}

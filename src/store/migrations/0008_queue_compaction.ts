import type { Kysely } from 'kysely';

/**
 * Issue 15: the queue's history tables are compacted on a schedule (src/store/queue-compaction.ts),
 * oldest rows first, so each needs an index on its age. `command_results` is also looked up by
 * command alone — the engine's restart recovery, and the compaction's "is this command still a
 * job's?" — which its (enrollment_id, command_uuid) key cannot serve.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createIndex('command_results_command')
    .on('command_results')
    .column('command_uuid')
    .execute();
  await db.schema
    .createIndex('command_results_received')
    .on('command_results')
    .column('received_at')
    .execute();
  await db.schema.createIndex('commands_created').on('commands').column('created_at').execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropIndex('commands_created').execute();
  await db.schema.dropIndex('command_results_received').execute();
  await db.schema.dropIndex('command_results_command').execute();
}

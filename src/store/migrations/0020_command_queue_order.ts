import type { Kysely } from 'kysely';

/**
 * The next command is the highest priority, then the oldest: `order by priority desc, seq asc`.
 * The index had both columns ascending, so every lookup sorted the channel's queue in a temporary
 * B-tree (issue 15: ~58 µs a lookup, 4 lookups per install job); in the query's own order it is a
 * walk of the index that stops at the first row.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropIndex('command_queue_next').execute();
  await db.schema
    .createIndex('command_queue_next')
    .on('command_queue')
    .columns(['enrollment_id', 'priority desc', 'seq'])
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropIndex('command_queue_next').execute();
  await db.schema
    .createIndex('command_queue_next')
    .on('command_queue')
    .columns(['enrollment_id', 'priority', 'seq'])
    .execute();
}

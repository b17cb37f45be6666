import type { Kysely } from 'kysely';

/**
 * Issue 16: work that one process does for all (the engine's tick, the Apps and Books event poll,
 * token upkeep, the app update check, queue compaction) is held by a lease that expires, so that
 * several processes on one PostgreSQL database do it once, and another takes over when the holder
 * dies (decision 0019).
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('leases')
    .addColumn('name', 'text', (c) => c.primaryKey())
    .addColumn('holder', 'text', (c) => c.notNull())
    .addColumn('expires_at', 'text', (c) => c.notNull())
    .addColumn('acquired_at', 'text', (c) => c.notNull())
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('leases').execute();
}

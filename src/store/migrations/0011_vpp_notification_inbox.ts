import type { Kysely } from 'kysely';

/**
 * Issue 16: Apple sends a token's notifications to one URL — with several processes behind a load
 * balancer, to any of them — while the events are followed by the process holding the Apps and
 * Books poll lease (decision 0019). A process that does not hold it keeps the notification here,
 * authenticated, and answers Apple; the holder applies it at its next poll.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('vpp_notification_inbox')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('token_id', 'text', (c) => c.notNull())
    /** The body as Apple sent it (UTF-8 JSON). */
    .addColumn('body', 'text', (c) => c.notNull())
    .addColumn('received_at', 'text', (c) => c.notNull())
    .execute();
  await db.schema
    .createIndex('vpp_notification_inbox_received')
    .on('vpp_notification_inbox')
    .column('received_at')
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('vpp_notification_inbox').execute();
}

import type { Kysely } from 'kysely';

/**
 * Issue 16, item 3 (decision 0026): the Apps and Books notification ids already applied, in the
 * database rather than in the memory of the process following the events. Apple may deliver a
 * notification twice, and behind a load balancer the copies reach different processes; after a
 * takeover (the holder of the poll's lease died) or a restart, a late copy must still be known.
 *
 * One row per (token, notificationId), written before the notification is applied: the insert
 * that finds the row absent decides who applies it. `claimed_by` / `claim_expires_at` name the
 * claim while it is being applied (a process that dies then loses it at the expiry); `applied_at`
 * is set once applied. Rows older than the retention are pruned by the token upkeep.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('vpp_notification_ids')
    .addColumn('token_id', 'text', (c) => c.notNull())
    .addColumn('notification_id', 'text', (c) => c.notNull())
    /** When the first copy was claimed; what the retention counts from. */
    .addColumn('received_at', 'text', (c) => c.notNull())
    .addColumn('claimed_by', 'text')
    .addColumn('claim_expires_at', 'text')
    .addColumn('applied_at', 'text')
    .addPrimaryKeyConstraint('vpp_notification_ids_pk', ['token_id', 'notification_id'])
    .execute();
  await db.schema
    .createIndex('vpp_notification_ids_received')
    .on('vpp_notification_ids')
    .column('received_at')
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('vpp_notification_ids').execute();
}

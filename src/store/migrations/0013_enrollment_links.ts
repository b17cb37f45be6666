import type { Kysely } from 'kysely';

/**
 * Issue 17 (decision 0022): enrollment needs a secret. Each link belongs to one group and carries a
 * random token, of which only the SHA-256 is kept; it may expire, may allow a number of uses, and
 * can be revoked. Revoked links stay for the audit trail.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('enrollment_links')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('group_id', 'text', (c) => c.notNull())
    .addColumn('token_hash', 'text', (c) => c.notNull().unique())
    .addColumn('label', 'text')
    .addColumn('created_at', 'text', (c) => c.notNull())
    /** The admin token that created it (audit_events has the rest). */
    .addColumn('created_by', 'text')
    .addColumn('expires_at', 'text')
    .addColumn('max_uses', 'integer')
    .addColumn('use_count', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('last_used_at', 'text')
    .addColumn('revoked_at', 'text')
    .execute();
  await db.schema.createIndex('enrollment_links_group').on('enrollment_links').column('group_id').execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('enrollment_links').execute();
}

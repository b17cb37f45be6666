import { sql } from 'kysely';
import type { Kysely } from 'kysely';

/**
 * Issue 18 (decision 0029): administrators with a role and a scope (a group subtree), each with
 * several named API tokens that expire and are revoked. Until now a token was the whole identity;
 * every token already stored becomes an owner of the whole tree (what it could do before), named
 * after the token. Distributions learn the group they belong to (the smallest group holding all
 * their targets), so a school's administrators see their own distributions only; older rows keep
 * null, which means the root: only administrators of the whole tree see them.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('admins')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('name', 'text', (c) => c.notNull())
    /** owner | admin | operator | viewer */
    .addColumn('role', 'text', (c) => c.notNull())
    /** The top of the subtree the administrator acts in; null: the root (the whole tree). */
    .addColumn('scope_group_id', 'text')
    .addColumn('disabled_at', 'text')
    .addColumn('created_by', 'text')
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('updated_at', 'text', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('admins_scope').on('admins').column('scope_group_id').execute();

  await db.schema.alterTable('admin_tokens').addColumn('admin_id', 'text').execute();
  await db.schema.alterTable('admin_tokens').addColumn('expires_at', 'text').execute();
  await db.schema.alterTable('admin_tokens').addColumn('revoked_at', 'text').execute();
  await db.schema.createIndex('admin_tokens_admin').on('admin_tokens').column('admin_id').execute();

  // Who acted: the administrator (actor) and the token they used (decision 0029).
  await db.schema.alterTable('audit_events').addColumn('actor_token_id', 'text').execute();

  // Each existing token becomes its own owner administrator: it could do everything before.
  const tokens = await sql<{ id: string; name: string; created_at: string }>`
    select id, name, created_at from admin_tokens`.execute(db);
  for (const t of tokens.rows) {
    const adminId = `adm-${t.id}`;
    await sql`insert into admins (id, name, role, scope_group_id, disabled_at, created_by, created_at, updated_at)
      values (${adminId}, ${t.name}, 'owner', null, null, null, ${t.created_at}, ${t.created_at})`.execute(
      db,
    );
    await sql`update admin_tokens set admin_id = ${adminId} where id = ${t.id}`.execute(db);
    await sql`update audit_events set actor = ${adminId}, actor_token_id = ${t.id} where actor = ${t.id}`.execute(
      db,
    );
  }

  await db.schema.alterTable('distributions').addColumn('group_id', 'text').execute();
  await db.schema.createIndex('distributions_group').on('distributions').column('group_id').execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropIndex('distributions_group').execute();
  await db.schema.alterTable('distributions').dropColumn('group_id').execute();
  await db.schema.alterTable('audit_events').dropColumn('actor_token_id').execute();
  await db.schema.dropIndex('admin_tokens_admin').execute();
  await db.schema.alterTable('admin_tokens').dropColumn('revoked_at').execute();
  await db.schema.alterTable('admin_tokens').dropColumn('expires_at').execute();
  await db.schema.alterTable('admin_tokens').dropColumn('admin_id').execute();
  await db.schema.dropTable('admins').execute();
}

import type { Kysely } from 'kysely';

export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('auto_distributions')
    .addColumn('group_id', 'text', (c) => c.notNull().references('groups.id'))
    .addColumn('adam_id', 'text', (c) => c.notNull())
    .addColumn('token_id', 'text', (c) => c.notNull().references('vpp_tokens.id'))
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addPrimaryKeyConstraint('auto_distributions_pk', ['group_id', 'adam_id'])
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('auto_distributions').execute();
}

import { sql, SqliteAdapter } from 'kysely';
import type { Kysely } from 'kysely';

/**
 * An identity keeps the id of the group its enrollment profile was made for: the profile's
 * PayloadIdentifier is made of it, and a renewal must send the same identifier (decision 0023).
 * That group may be deleted once its devices have moved away, or when a profile fetched from it
 * was never installed — the foreign key made both deletions fail. `identities.group_id` becomes a
 * plain value that outlives the group.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  if (!(db.getExecutor().adapter instanceof SqliteAdapter)) {
    await sql`alter table identities drop constraint if exists identities_group_id_fkey`.execute(db);
    return;
  }
  // SQLite cannot drop a constraint: the table is made again without it (nothing references it).
  await db.schema
    .createTable('identities_new')
    .addColumn('fingerprint', 'text', (c) => c.primaryKey())
    .addColumn('serial_hex', 'text', (c) => c.notNull())
    .addColumn('group_id', 'text', (c) => c.notNull())
    .addColumn('issued_at', 'text', (c) => c.notNull())
    .addColumn('not_after', 'text', (c) => c.notNull())
    .addColumn('device_id', 'text')
    .addColumn('bound_at', 'text')
    .execute();
  await sql`insert into identities_new (fingerprint, serial_hex, group_id, issued_at, not_after, device_id, bound_at)
    select fingerprint, serial_hex, group_id, issued_at, not_after, device_id, bound_at from identities`.execute(
    db,
  );
  await db.schema.dropTable('identities').execute();
  await db.schema.alterTable('identities_new').renameTo('identities').execute();
}

/** Back to the foreign key: only possible while every identity's group still exists. */
export async function down(db: Kysely<unknown>): Promise<void> {
  if (!(db.getExecutor().adapter instanceof SqliteAdapter)) {
    await sql`alter table identities add constraint identities_group_id_fkey foreign key (group_id) references groups (id)`.execute(
      db,
    );
    return;
  }
  await db.schema
    .createTable('identities_old')
    .addColumn('fingerprint', 'text', (c) => c.primaryKey())
    .addColumn('serial_hex', 'text', (c) => c.notNull())
    .addColumn('group_id', 'text', (c) => c.notNull().references('groups.id'))
    .addColumn('issued_at', 'text', (c) => c.notNull())
    .addColumn('not_after', 'text', (c) => c.notNull())
    .addColumn('device_id', 'text')
    .addColumn('bound_at', 'text')
    .execute();
  await sql`insert into identities_old (fingerprint, serial_hex, group_id, issued_at, not_after, device_id, bound_at)
    select fingerprint, serial_hex, group_id, issued_at, not_after, device_id, bound_at from identities`.execute(
    db,
  );
  await db.schema.dropTable('identities').execute();
  await db.schema.alterTable('identities_old').renameTo('identities').execute();
}

import type { Kysely } from 'kysely';

// Migrations take Kysely<unknown>: they must not depend on today's schema types.
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('settings')
    .addColumn('key', 'text', (c) => c.primaryKey())
    .addColumn('value', 'text', (c) => c.notNull())
    .addColumn('updated_at', 'text', (c) => c.notNull())
    .execute();

  await db.schema
    .createTable('counters')
    .addColumn('name', 'text', (c) => c.primaryKey())
    .addColumn('value', 'integer', (c) => c.notNull())
    .execute();

  await db.schema
    .createTable('groups')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('parent_id', 'text', (c) => c.references('groups.id'))
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('updated_at', 'text', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('groups_parent').on('groups').column('parent_id').execute();

  await db.schema
    .createTable('devices')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('device_number', 'integer', (c) => c.notNull().unique())
    .addColumn('udid', 'text', (c) => c.notNull().unique())
    .addColumn('serial_number', 'text')
    .addColumn('group_id', 'text', (c) => c.notNull().references('groups.id'))
    .addColumn('name', 'text')
    .addColumn('model', 'text')
    .addColumn('model_name', 'text')
    .addColumn('product_name', 'text')
    .addColumn('os_version', 'text')
    .addColumn('build_version', 'text')
    .addColumn('imei', 'text')
    .addColumn('meid', 'text')
    .addColumn('is_supervised', 'integer')
    .addColumn('is_shared_ipad', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('status', 'text', (c) => c.notNull())
    .addColumn('cert_fingerprint', 'text', (c) => c.notNull())
    .addColumn('enrolled_at', 'text')
    .addColumn('last_seen_at', 'text')
    .addColumn('checked_out_at', 'text')
    .addColumn('last_push_at', 'text')
    .addColumn('last_push_result', 'text')
    .addColumn('facts', 'text')
    .addColumn('facts_at', 'text')
    .addColumn('restrictions', 'text')
    .addColumn('restrictions_at', 'text')
    .addColumn('shared_users', 'text')
    .addColumn('shared_users_at', 'text')
    .addColumn('installed_apps', 'text')
    .addColumn('installed_apps_at', 'text')
    .addColumn('managed_apps', 'text')
    .addColumn('managed_apps_at', 'text')
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('updated_at', 'text', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('devices_serial').on('devices').column('serial_number').execute();
  await db.schema.createIndex('devices_group').on('devices').columns(['group_id', 'device_number']).execute();

  await db.schema
    .createTable('identities')
    .addColumn('fingerprint', 'text', (c) => c.primaryKey())
    .addColumn('serial_hex', 'text', (c) => c.notNull())
    .addColumn('group_id', 'text', (c) => c.notNull().references('groups.id'))
    .addColumn('issued_at', 'text', (c) => c.notNull())
    .addColumn('not_after', 'text', (c) => c.notNull())
    .addColumn('device_id', 'text')
    .addColumn('bound_at', 'text')
    .execute();

  await db.schema
    .createTable('enrollments')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('device_id', 'text', (c) => c.notNull().references('devices.id'))
    .addColumn('type', 'text', (c) => c.notNull())
    .addColumn('user_id', 'text')
    .addColumn('user_short_name', 'text')
    .addColumn('user_long_name', 'text')
    .addColumn('topic', 'text')
    .addColumn('push_token', 'text')
    .addColumn('push_magic', 'text')
    .addColumn('enabled', 'integer', (c) => c.notNull())
    .addColumn('token_update_count', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('last_seen_at', 'text')
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('updated_at', 'text', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('enrollments_device').on('enrollments').column('device_id').execute();

  await db.schema
    .createTable('commands')
    .addColumn('uuid', 'text', (c) => c.primaryKey())
    .addColumn('request_type', 'text', (c) => c.notNull())
    .addColumn('payload', 'text', (c) => c.notNull())
    .addColumn('created_at', 'text', (c) => c.notNull())
    .execute();

  await db.schema
    .createTable('command_queue')
    .addColumn('enrollment_id', 'text', (c) => c.notNull())
    .addColumn('command_uuid', 'text', (c) => c.notNull().references('commands.uuid'))
    .addColumn('priority', 'integer', (c) => c.notNull())
    .addColumn('seq', 'integer', (c) => c.notNull())
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('delivered_at', 'text')
    .addColumn('delivery_count', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('not_now_at', 'text')
    .addColumn('not_now_count', 'integer', (c) => c.notNull().defaultTo(0))
    .addPrimaryKeyConstraint('command_queue_pk', ['enrollment_id', 'command_uuid'])
    .execute();
  await db.schema
    .createIndex('command_queue_next')
    .on('command_queue')
    .columns(['enrollment_id', 'priority', 'seq'])
    .execute();

  await db.schema
    .createTable('command_results')
    .addColumn('enrollment_id', 'text', (c) => c.notNull())
    .addColumn('command_uuid', 'text', (c) => c.notNull())
    .addColumn('status', 'text', (c) => c.notNull())
    .addColumn('raw', 'text', (c) => c.notNull())
    .addColumn('error_chain', 'text')
    .addColumn('received_at', 'text', (c) => c.notNull())
    .addPrimaryKeyConstraint('command_results_pk', ['enrollment_id', 'command_uuid'])
    .execute();

  await db.schema
    .createTable('mdm_messages')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('udid', 'text')
    .addColumn('enrollment_id', 'text')
    .addColumn('endpoint', 'text', (c) => c.notNull())
    .addColumn('message_type', 'text', (c) => c.notNull())
    .addColumn('command_uuid', 'text')
    .addColumn('raw', 'text', (c) => c.notNull())
    .addColumn('received_at', 'text', (c) => c.notNull())
    .execute();
  await db.schema
    .createIndex('mdm_messages_udid')
    .on('mdm_messages')
    .columns(['udid', 'received_at'])
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  for (const table of [
    'mdm_messages',
    'command_results',
    'command_queue',
    'commands',
    'enrollments',
    'identities',
    'devices',
    'groups',
    'counters',
    'settings',
  ]) {
    await db.schema.dropTable(table).execute();
  }
}

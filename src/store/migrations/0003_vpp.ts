import type { Kysely } from 'kysely';

export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('vpp_tokens')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('group_id', 'text', (c) => c.notNull().references('groups.id'))
    .addColumn('org_name', 'text', (c) => c.notNull())
    .addColumn('location_name', 'text')
    .addColumn('location_id', 'text')
    .addColumn('expires_at', 'text', (c) => c.notNull())
    .addColumn('sealed_stoken', 'text', (c) => c.notNull())
    .addColumn('claim_state', 'text', (c) => c.notNull())
    .addColumn('apple_state', 'text')
    .addColumn('last_error', 'text')
    .addColumn('notification_auth_token', 'text', (c) => c.notNull())
    .addColumn('last_warning_days', 'integer')
    .addColumn('last_synced_at', 'text')
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('updated_at', 'text', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('vpp_tokens_group').on('vpp_tokens').column('group_id').execute();

  await db.schema
    .createTable('vpp_token_shares')
    .addColumn('token_id', 'text', (c) => c.notNull().references('vpp_tokens.id'))
    .addColumn('group_id', 'text', (c) => c.notNull().references('groups.id'))
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addPrimaryKeyConstraint('vpp_token_shares_pk', ['token_id', 'group_id'])
    .execute();

  await db.schema
    .createTable('auto_assign_settings')
    .addColumn('group_id', 'text', (c) => c.primaryKey().references('groups.id'))
    .addColumn('token_id', 'text', (c) => c.notNull().references('vpp_tokens.id'))
    .addColumn('updated_at', 'text', (c) => c.notNull())
    .execute();

  await db.schema
    .createTable('vpp_assets')
    .addColumn('token_id', 'text', (c) => c.notNull().references('vpp_tokens.id'))
    .addColumn('adam_id', 'text', (c) => c.notNull())
    .addColumn('pricing_param', 'text', (c) => c.notNull())
    .addColumn('product_type', 'text')
    .addColumn('name', 'text')
    .addColumn('bundle_id', 'text')
    .addColumn('total_count', 'integer', (c) => c.notNull())
    .addColumn('assigned_count', 'integer', (c) => c.notNull())
    .addColumn('available_count', 'integer', (c) => c.notNull())
    .addColumn('device_assignable', 'integer', (c) => c.notNull())
    .addColumn('revocable', 'integer', (c) => c.notNull())
    .addColumn('size_bytes', 'integer')
    .addColumn('minimum_os_version', 'text')
    .addColumn('supported_devices', 'text')
    .addColumn('content_rating', 'text')
    .addColumn('raw', 'text')
    .addColumn('synced_at', 'text', (c) => c.notNull())
    .addPrimaryKeyConstraint('vpp_assets_pk', ['token_id', 'adam_id', 'pricing_param'])
    .execute();

  await db.schema
    .createTable('licenses')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('token_id', 'text', (c) => c.notNull().references('vpp_tokens.id'))
    .addColumn('adam_id', 'text', (c) => c.notNull())
    .addColumn('pricing_param', 'text', (c) => c.notNull())
    .addColumn('serial_number', 'text', (c) => c.notNull())
    .addColumn('state', 'text', (c) => c.notNull())
    .addColumn('origin', 'text', (c) => c.notNull())
    .addColumn('via_group_id', 'text')
    .addColumn('event_id', 'text')
    .addColumn('error_code', 'integer')
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('updated_at', 'text', (c) => c.notNull())
    .execute();
  await db.schema
    .createIndex('licenses_token_asset_serial')
    .on('licenses')
    .columns(['token_id', 'adam_id', 'serial_number'])
    .unique()
    .execute();
  await db.schema.createIndex('licenses_serial').on('licenses').column('serial_number').execute();
  await db.schema.createIndex('licenses_event').on('licenses').column('event_id').execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  for (const table of ['licenses', 'vpp_assets', 'auto_assign_settings', 'vpp_token_shares', 'vpp_tokens']) {
    await db.schema.dropTable(table).execute();
  }
}

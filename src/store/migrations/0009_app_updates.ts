import type { Kysely } from 'kysely';

/**
 * Issue 14, item 5 — app updates (decision 0018):
 * - `app_versions`: the newest version of each app the look-up reported, the one before it and
 *   when it changed (per Adam ID: a version is the App Store's, not a token's);
 * - `device_apps`: each device's InstalledApplicationList as rows (bundle id, version), replaced
 *   with every answer, so that "how many devices run an older version" is one grouped query;
 * - `group_app_updates`: the per-group "keep apps up to date" setting (on or off; inherited like
 *   auto-assign);
 * - on jobs, the version an install must reach (`expected_version`), the version the device
 *   reported (`installed_version`) and whether the job updates an app the device already has
 *   (`is_update`); on distributions, whether it is an update.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('app_versions')
    .addColumn('adam_id', 'text', (c) => c.primaryKey())
    .addColumn('bundle_id', 'text')
    .addColumn('name', 'text')
    .addColumn('version', 'text', (c) => c.notNull())
    .addColumn('previous_version', 'text')
    .addColumn('minimum_os_version', 'text')
    .addColumn('checked_at', 'text', (c) => c.notNull())
    .addColumn('changed_at', 'text', (c) => c.notNull())
    .execute();
  await db.schema
    .createTable('device_apps')
    .addColumn('device_id', 'text', (c) => c.notNull().references('devices.id').onDelete('cascade'))
    .addColumn('bundle_id', 'text', (c) => c.notNull())
    .addColumn('version', 'text')
    .addColumn('installing', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('reported_at', 'text', (c) => c.notNull())
    .addPrimaryKeyConstraint('device_apps_pk', ['device_id', 'bundle_id'])
    .execute();
  // "Which devices have this app, at which version": the counts of GET /apps.
  await db.schema
    .createIndex('device_apps_bundle')
    .on('device_apps')
    .columns(['bundle_id', 'version'])
    .execute();
  await db.schema
    .createTable('group_app_updates')
    .addColumn('group_id', 'text', (c) => c.primaryKey())
    .addColumn('keep_updated', 'integer', (c) => c.notNull())
    .addColumn('updated_at', 'text', (c) => c.notNull())
    .execute();
  await db.schema.alterTable('jobs').addColumn('expected_version', 'text').execute();
  await db.schema.alterTable('jobs').addColumn('installed_version', 'text').execute();
  await db.schema
    .alterTable('jobs')
    .addColumn('is_update', 'integer', (c) => c.notNull().defaultTo(0))
    .execute();
  await db.schema
    .alterTable('distributions')
    .addColumn('is_update', 'integer', (c) => c.notNull().defaultTo(0))
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('distributions').dropColumn('is_update').execute();
  await db.schema.alterTable('jobs').dropColumn('is_update').execute();
  await db.schema.alterTable('jobs').dropColumn('installed_version').execute();
  await db.schema.alterTable('jobs').dropColumn('expected_version').execute();
  await db.schema.dropTable('group_app_updates').execute();
  await db.schema.dropIndex('device_apps_bundle').execute();
  await db.schema.dropTable('device_apps').execute();
  await db.schema.dropTable('app_versions').execute();
}

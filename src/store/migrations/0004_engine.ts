import type { Kysely } from 'kysely';

export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('distributions')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('kind', 'text', (c) => c.notNull())
    .addColumn('token_id', 'text', (c) => c.notNull())
    .addColumn('adam_ids', 'text', (c) => c.notNull())
    .addColumn('targets', 'text', (c) => c.notNull())
    .addColumn('license_mode', 'text', (c) => c.notNull())
    .addColumn('scheduled_at', 'text')
    .addColumn('created_by', 'text', (c) => c.notNull())
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('cancelled_at', 'text')
    .execute();

  await db.schema
    .createTable('jobs')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('distribution_id', 'text', (c) => c.notNull().references('distributions.id'))
    .addColumn('device_id', 'text', (c) => c.notNull().references('devices.id'))
    .addColumn('adam_id', 'text', (c) => c.notNull())
    .addColumn('kind', 'text', (c) => c.notNull())
    .addColumn('token_id', 'text', (c) => c.notNull())
    .addColumn('license_mode', 'text', (c) => c.notNull())
    .addColumn('status', 'text', (c) => c.notNull())
    .addColumn('reason', 'text')
    .addColumn('retry_count', 'integer', (c) => c.notNull())
    .addColumn('attempt', 'integer', (c) => c.notNull())
    .addColumn('seq', 'integer', (c) => c.notNull())
    .addColumn('bundle_id', 'text')
    .addColumn('command_uuid', 'text')
    .addColumn('next_at', 'text')
    .addColumn('push_deadline', 'text')
    .addColumn('session_deadline', 'text')
    .addColumn('request_deadline', 'text', (c) => c.notNull())
    .addColumn('error', 'text')
    .addColumn('diagnosis', 'text')
    .addColumn('scheduled_at', 'text')
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('updated_at', 'text', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('jobs_status_next').on('jobs').columns(['status', 'next_at']).execute();
  await db.schema.createIndex('jobs_device').on('jobs').columns(['device_id', 'status', 'seq']).execute();
  await db.schema
    .createIndex('jobs_distribution')
    .on('jobs')
    .columns(['distribution_id', 'status'])
    .execute();
  await db.schema.createIndex('jobs_command').on('jobs').column('command_uuid').execute();
  // Paging a distribution's jobs in order (lists, CSV export).
  await db.schema
    .createIndex('jobs_distribution_seq')
    .on('jobs')
    .columns(['distribution_id', 'seq'])
    .execute();

  await db.schema
    .createTable('job_history')
    .addColumn('job_id', 'text', (c) => c.notNull())
    .addColumn('seq', 'integer', (c) => c.notNull())
    .addColumn('from_status', 'text')
    .addColumn('to_status', 'text', (c) => c.notNull())
    .addColumn('at', 'text', (c) => c.notNull())
    .addColumn('reason', 'text')
    .addPrimaryKeyConstraint('job_history_pk', ['job_id', 'seq'])
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  for (const t of ['job_history', 'jobs', 'distributions']) await db.schema.dropTable(t).execute();
}

import type { Kysely } from 'kysely';

/**
 * Issue 17 (decision 0024): SCEP as the device identity source. Every enrollment profile with a
 * `com.apple.security.scep` payload carries a one-time challenge; only its SHA-256 is kept, with
 * what it is bound to (the group of the enrollment, and the device for a renewal), when it expires
 * and, once used, the SCEP transaction and the certificate issued (a client that lost the answer
 * and asks again with the same transaction gets the same certificate).
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('scep_challenges')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('challenge_hash', 'text', (c) => c.notNull().unique())
    .addColumn('group_id', 'text', (c) => c.notNull())
    .addColumn('device_id', 'text')
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('expires_at', 'text', (c) => c.notNull())
    .addColumn('used_at', 'text')
    .addColumn('transaction_id', 'text')
    .addColumn('public_key_sha256', 'text')
    .addColumn('cert_fingerprint', 'text')
    .addColumn('cert_pem', 'text')
    .execute();
  await db.schema
    .createIndex('scep_challenges_expires_at')
    .on('scep_challenges')
    .column('expires_at')
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('scep_challenges').execute();
}

import { sql } from 'kysely';
import type { Kysely } from 'kysely';

/**
 * Issue 17: device identities are renewed before they expire (decision 0023). A device keeps, besides
 * the certificate it authenticated with (`cert_fingerprint`):
 * - `identity_not_after`: when that certificate expires (copied from `identities`, so the renewal
 *   pass, the status count and the diagnosis read one column);
 * - `pending_cert_fingerprint`: the renewed identity sent in an InstallProfile and not yet seen —
 *   accepted for this device only, promoted on the acknowledgement or its first signed message;
 * - `previous_cert_fingerprint`: the identity it replaced, accepted until it expires;
 * - `identity_renewal_command` / `identity_renewal_at`: the InstallProfile in flight and when it was
 *   queued (the next pass retries when it failed or vanished).
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  for (const column of [
    'identity_not_after',
    'pending_cert_fingerprint',
    'previous_cert_fingerprint',
    'identity_renewal_command',
    'identity_renewal_at',
  ]) {
    await db.schema.alterTable('devices').addColumn(column, 'text').execute();
  }
  await sql`update devices set identity_not_after = (select i.not_after from identities i where i.fingerprint = devices.cert_fingerprint)`.execute(
    db,
  );
  await db.schema
    .createIndex('devices_identity_not_after')
    .on('devices')
    .column('identity_not_after')
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropIndex('devices_identity_not_after').execute();
  for (const column of [
    'identity_renewal_at',
    'identity_renewal_command',
    'previous_cert_fingerprint',
    'pending_cert_fingerprint',
    'identity_not_after',
  ]) {
    await db.schema.alterTable('devices').dropColumn(column).execute();
  }
}

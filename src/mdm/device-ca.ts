import { createDeviceCa } from './identity/ca.ts';
import type { CertAndKey } from './identity/ca.ts';

export interface SettingsPort {
  getSetting(key: string): Promise<string | null>;
  setSettingIfAbsent(key: string, value: string, at: Date): Promise<string>;
}

/** Encryption at rest for the CA key, so a copied database alone does not let anyone mint device identities. */
export interface Sealer {
  seal(plaintext: string): string;
  open(sealed: string): string;
}

const CERT_KEY = 'device_ca.cert';
const SEALED_KEY_KEY = 'device_ca.key';

/**
 * The device CA is created on first start and kept in the database (key sealed), so every
 * haishin process sharing the database verifies and issues with the same CA.
 */
export async function loadOrCreateDeviceCa(
  settings: SettingsPort,
  sealer: Sealer,
  now: Date,
): Promise<CertAndKey> {
  const existingCert = await settings.getSetting(CERT_KEY);
  if (existingCert === null) {
    const fresh = createDeviceCa({ now });
    // The key goes in first: a reader that finds the certificate always finds its key.
    const sealedKey = await settings.setSettingIfAbsent(SEALED_KEY_KEY, sealer.seal(fresh.keyPem), now);
    const keyPem = sealer.open(sealedKey);
    if (keyPem === fresh.keyPem) {
      await settings.setSettingIfAbsent(CERT_KEY, fresh.certPem, now);
      return fresh;
    }
    // Another process won the race: use what it stored.
  }
  const certPem = await settings.getSetting(CERT_KEY);
  const sealedKey = await settings.getSetting(SEALED_KEY_KEY);
  if (certPem === null || sealedKey === null) throw new Error('the device CA in the database is incomplete');
  return { certPem, keyPem: sealer.open(sealedKey) };
}

import { createHash, generateKeyPairSync, X509Certificate } from 'node:crypto';
import type { Sealer, SettingsPort } from '../device-ca.ts';
import { issueScepRaCertificate } from '../identity/ca.ts';
import type { CertAndKey } from '../identity/ca.ts';

/**
 * The SCEP service's certificate and key (decision 0024), one per issuing CA, kept in the database
 * like the CA (key sealed): every process sharing the database signs and decrypts with the same one,
 * so a client may fetch GetCACert from one process and send its PKIOperation to another.
 */
export async function loadOrCreateScepRa(
  settings: SettingsPort,
  sealer: Sealer,
  ca: CertAndKey,
  now: Date,
): Promise<CertAndKey> {
  const caCert = new X509Certificate(ca.certPem);
  const key = `scep.ra.${createHash('sha256').update(caCert.raw).digest('hex').slice(0, 32)}`;
  const stored = await settings.getSetting(key);
  if (stored === null) {
    const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const certPem = issueScepRaCertificate(ca, {
      now,
      spki: publicKey.export({ type: 'spki', format: 'der' }),
      // As long as the CA: the service certificate lives and rotates with its CA.
      notAfter: new Date(caCert.validTo),
    });
    const keyPem = privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
    // Another process may have stored its own first: the stored one wins.
    const kept = await settings.setSettingIfAbsent(
      key,
      JSON.stringify({ certPem, sealedKey: sealer.seal(keyPem) }),
      now,
    );
    return open(kept, sealer);
  }
  return open(stored, sealer);
}

function open(value: string, sealer: Sealer): CertAndKey {
  const { certPem, sealedKey } = JSON.parse(value) as { certPem: string; sealedKey: string };
  return { certPem, keyPem: sealer.open(sealedKey) };
}

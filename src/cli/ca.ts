import { X509Certificate } from 'node:crypto';
import { resolveSecretKey } from '../app/secret.ts';
import { redactUrl } from '../app/haishin.ts';
import { ConfigError, parseConfig } from '../core/config.ts';
import { loadDeviceCaSet, rotateDeviceCa } from '../mdm/device-ca.ts';
import { SecretBox } from '../store/secretbox.ts';
import { Store } from '../store/store.ts';

/** One line per CA: what it does, its name, its expiry and its SHA-256. */
function describeCa(pem: string, role: 'issuing' | 'verifying'): string {
  const cert = new X509Certificate(pem);
  const name = /CN=([^\n]+)/.exec(cert.subject)?.[1] ?? cert.subject;
  const sha256 = cert.fingerprint256.replace(/:/g, '').toLowerCase();
  return `${role.padEnd(9)}  ${name}  valid until ${new Date(cert.validTo).toISOString()}  SHA-256 ${sha256}`;
}

async function withStore<T>(
  env: NodeJS.ProcessEnv,
  work: (store: Store, box: SecretBox) => Promise<T>,
): Promise<T> {
  const config = parseConfig(env);
  const box = new SecretBox(resolveSecretKey(config.secretKey, config.dataDir).key);
  let store: Store;
  try {
    store = await Store.open(config.db, new Date());
  } catch (err) {
    throw new ConfigError(`HAISHIN_DB=${redactUrl(config.db)}: ${(err as Error).message}`);
  }
  try {
    return await work(store, box);
  } finally {
    await store.close();
  }
}

/**
 * `haishin ca ls`: the device CAs of the database (decision 0023), configured like `serve`
 * (HAISHIN_DB, HAISHIN_SECRET_KEY or HAISHIN_DATA_DIR).
 */
export async function listCas(env: NodeJS.ProcessEnv): Promise<void> {
  await withStore(env, async (store, box) => {
    const set = await loadDeviceCaSet(store, box, new Date());
    set.verifying.forEach((pem, i) => console.log(describeCa(pem, i === 0 ? 'issuing' : 'verifying')));
  });
}

/**
 * `haishin ca rotate`: a new device CA issues every identity from now on; the current one keeps
 * verifying the devices it issued identities to until renewal moves them over (decision 0023).
 */
export async function rotateCa(env: NodeJS.ProcessEnv, options: { years: string }): Promise<void> {
  const years = Number(options.years);
  if (!Number.isInteger(years) || years < 1 || years > 30)
    throw new ConfigError(`--years ${options.years}: a whole number of years from 1 to 30`);
  await withStore(env, async (store, box) => {
    const now = new Date();
    const { issuing, verifying } = await rotateDeviceCa(store, box, now, { validYears: years });
    console.log('device CA rotated: the new CA issues every identity from now on (enrollments and renewals)');
    console.log(describeCa(issuing.certPem, 'issuing'));
    for (const pem of verifying.slice(1)) console.log(describeCa(pem, 'verifying'));
    console.log(
      'restart every haishin serve process of this database: they read the CAs at start. Devices move to the new CA as their identities are renewed (HAISHIN_IDENTITY_RENEW_BEFORE before expiry).',
    );
  });
}

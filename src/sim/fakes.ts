import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { generateDemoPushIdentity, loadPushIdentity } from '../apple/apns/pushcert.ts';
import type { PushIdentity } from '../apple/apns/pushcert.ts';
import { FakeApns } from './apns/server.ts';
import type { FakeApnsOptions } from './apns/server.ts';
import { FakeAppMeta } from './appmeta/server.ts';
import type { FakeAppSeed } from './appmeta/server.ts';
import { FakeVppService } from './vpp/server.ts';
import type { FakeVppOptions } from './vpp/server.ts';

export interface FakesOptions {
  /** Where the push certificate, its key and the fake APNs CA are written (files, as in production). */
  dir: string;
  /** Apps the look-up knows. */
  apps?: FakeAppSeed[];
  vpp?: FakeVppOptions;
  apns?: Omit<FakeApnsOptions, 'accept' | 'onPush'>;
  onPush?: (tokenHex: string, pushMagic: string) => void;
}

/** Apple's side on 127.0.0.1 and the HAISHIN_* variables that point haishin at it. */
export interface Fakes {
  apns: FakeApns;
  vpp: FakeVppService;
  appMeta: FakeAppMeta;
  push: PushIdentity;
  /** HAISHIN_APNS_URL, _CERT, _KEY, _CA, HAISHIN_VPP_URL, HAISHIN_APPMETA_URL. */
  env: Record<string, string>;
  close(): Promise<void>;
}

/**
 * Starts the fake APNs (HTTP/2 over TLS with its own CA), the fake Apps and Books API and the fake
 * app look-up, and writes the push certificate and the CA as files: haishin is then configured
 * exactly as in production, only with other URLs. A push certificate already in `dir` is kept, so
 * devices enrolled in an earlier run keep their topic.
 */
export async function startFakes(o: FakesOptions): Promise<Fakes> {
  const dir = resolve(o.dir);
  mkdirSync(dir, { recursive: true });
  const push = pushIdentityIn(dir);
  const apns = new FakeApns({ ...o.apns, accept: [push.certPem], ...(o.onPush ? { onPush: o.onPush } : {}) });
  const vpp = new FakeVppService(o.vpp ?? { eventDelayMs: 50 });
  const appMeta = new FakeAppMeta();
  for (const app of o.apps ?? []) appMeta.add(app);
  try {
    await apns.listen();
    const vppUrl = await vpp.listen();
    const appMetaUrl = await appMeta.listen();
    const caFile = join(dir, 'apns-ca.pem');
    writeFileSync(caFile, apns.caPem);
    return {
      apns,
      vpp,
      appMeta,
      push,
      env: {
        HAISHIN_APNS_URL: apns.url,
        HAISHIN_APNS_CERT: join(dir, 'push.pem'),
        HAISHIN_APNS_KEY: join(dir, 'push.key'),
        HAISHIN_APNS_CA: caFile,
        HAISHIN_VPP_URL: vppUrl,
        HAISHIN_APPMETA_URL: appMetaUrl,
      },
      close: async () => {
        await apns.close();
        await vpp.close();
        await appMeta.close();
      },
    };
  } catch (err) {
    await Promise.allSettled([apns.close(), vpp.close(), appMeta.close()]);
    throw err;
  }
}

/** push.pem + push.key in `dir`, made once (a fake MDM push certificate with a topic UID). */
function pushIdentityIn(dir: string): PushIdentity {
  const certFile = join(dir, 'push.pem');
  const keyFile = join(dir, 'push.key');
  const now = new Date();
  if (existsSync(certFile) && existsSync(keyFile)) {
    try {
      return loadPushIdentity(
        { certPem: readFileSync(certFile, 'utf8'), keyPem: readFileSync(keyFile, 'utf8') },
        now,
      );
    } catch {
      // Expired or damaged: a new one below (devices enrolled with the old topic must enroll again).
    }
  }
  const identity = generateDemoPushIdentity(now);
  writeFileSync(certFile, identity.certPem);
  writeFileSync(keyFile, identity.keyPem, { mode: 0o600 });
  // As haishin will read it back (the certificate keeps whole seconds).
  return loadPushIdentity({ certPem: identity.certPem, keyPem: identity.keyPem }, now);
}

import { readFileSync } from 'node:fs';
import { loadPushIdentity } from '../apple/apns/pushcert.ts';
import type { PushIdentity } from '../apple/apns/pushcert.ts';
import { consoleUrl } from '../api/console.ts';
import { createHaishin } from '../api/server.ts';
import { systemClock } from '../core/clock.ts';
import { ConfigError, parseConfig } from '../core/config.ts';
import type { Config } from '../core/config.ts';
import { resolveSecretKey } from './secret.ts';

function readFile(path: string, variable: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    throw new ConfigError(`${variable}=${path} cannot be read: ${(err as Error).message}`);
  }
}

/** The MDM push certificate from HAISHIN_APNS_CERT/KEY (PEM) or a PKCS#12 file in HAISHIN_APNS_CERT. */
export function pushIdentityFromConfig(config: Config, env: NodeJS.ProcessEnv, now: Date): PushIdentity {
  const { certFile, keyFile } = config.apns;
  if (!certFile) {
    throw new ConfigError(
      'HAISHIN_APNS_CERT is not set: haishin needs your MDM push certificate (PEM with HAISHIN_APNS_KEY, or a .p12)',
    );
  }
  const cert = readFile(certFile, 'HAISHIN_APNS_CERT');
  if (/\.(p12|pfx)$/i.test(certFile)) {
    return loadPushIdentity({ pkcs12: cert, password: env.HAISHIN_APNS_CERT_PASSWORD ?? '' }, now);
  }
  if (!keyFile)
    throw new ConfigError('HAISHIN_APNS_KEY is not set: give the private key of the push certificate (PEM)');
  return loadPushIdentity(
    { certPem: cert.toString('utf8'), keyPem: readFile(keyFile, 'HAISHIN_APNS_KEY').toString('utf8') },
    now,
  );
}

export async function serve(env: NodeJS.ProcessEnv): Promise<void> {
  const config = parseConfig(env);
  const now = systemClock.now();
  const push = pushIdentityFromConfig(config, env, now);
  const secret = resolveSecretKey(config.secretKey, config.dataDir);
  const haishin = await createHaishin({
    config,
    clock: systemClock,
    secretKey: secret.key,
    pushTopic: push.topic,
    pushCertificate: { topic: push.topic, notAfter: push.notAfter },
    logger: { level: env.HAISHIN_LOG_LEVEL ?? 'info' },
  });
  await haishin.listen(config.listen.host, config.listen.port);
  const root = await haishin.store.rootGroup();
  console.log(
    `haishin listening on ${config.listen.host}:${config.listen.port} (public URL ${config.publicUrl})`,
  );
  console.log(`push topic ${push.topic}, certificate valid until ${push.notAfter.toISOString()}`);
  console.log(`enrollment link for the root group: ${config.publicUrl}/mdm/enroll?group=${root?.id}`);
  // A generated admin token is stored only hashed: this link is the one time it is shown.
  console.log(`admin console: ${consoleUrl(config.publicUrl, haishin.generatedAdminToken)}`);
  const stop = async () => {
    await haishin.close();
    process.exit(0);
  };
  process.once('SIGINT', () => void stop());
  process.once('SIGTERM', () => void stop());
}

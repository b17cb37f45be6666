import { readFileSync } from 'node:fs';
import { X509Certificate } from 'node:crypto';
import { ApnsClient } from '../apple/apns/client.ts';
import type { RetryPolicy } from '../apple/apns/client.ts';
import { loadPushIdentity, PushCertificateError } from '../apple/apns/pushcert.ts';
import type { PushIdentity } from '../apple/apns/pushcert.ts';
import type { Clock } from '../core/clock.ts';
import { ConfigError } from '../core/config.ts';
import type { Config } from '../core/config.ts';

/** A file a HAISHIN_* variable names; an unreadable one is a ConfigError naming the variable. */
export function readConfigured(path: string, variable: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    throw new ConfigError(`${variable}=${path} cannot be read: ${(err as Error).message}`);
  }
}

/**
 * The MDM push certificate from HAISHIN_APNS_CERT/KEY (PEM) or a PKCS#12 file in HAISHIN_APNS_CERT.
 * Without it haishin cannot wake a single device, so there is no server without it.
 */
export function pushIdentityFromConfig(
  config: Config,
  now: Date,
  o: { allowExpired?: boolean } = {},
): PushIdentity {
  const { certFile, keyFile } = config.apns;
  if (!certFile) {
    throw new ConfigError(
      'HAISHIN_APNS_CERT is not set: haishin needs your MDM push certificate (PEM with HAISHIN_APNS_KEY, or a .p12) to wake devices',
    );
  }
  const cert = readConfigured(certFile, 'HAISHIN_APNS_CERT');
  try {
    if (/\.(p12|pfx)$/i.test(certFile))
      return loadPushIdentity({ pkcs12: cert, password: config.apns.certPassword }, now, o);
    if (!keyFile)
      throw new ConfigError(
        'HAISHIN_APNS_KEY is not set: give the private key of the push certificate (PEM)',
      );
    return loadPushIdentity(
      {
        certPem: cert.toString('utf8'),
        keyPem: readConfigured(keyFile, 'HAISHIN_APNS_KEY').toString('utf8'),
      },
      now,
      o,
    );
  } catch (err) {
    // Each of these names its variable already; as a ConfigError it stops the server in one line.
    if (err instanceof PushCertificateError) throw new ConfigError(err.message);
    throw err;
  }
}

/** HAISHIN_APNS_CA: a PEM CA trusted for APNs in addition to the system roots (tests, proxies). */
export function apnsCaFromConfig(config: Config): string | undefined {
  const file = config.apns.caFile;
  if (!file) return undefined;
  const pem = readConfigured(file, 'HAISHIN_APNS_CA').toString('utf8');
  try {
    new X509Certificate(pem);
  } catch (err) {
    throw new ConfigError(
      `HAISHIN_APNS_CA=${file} holds no readable PEM certificate (${(err as Error).message})`,
    );
  }
  return pem;
}

/** The APNs client haishin pushes with: URL, push identity and extra CA all from configuration. */
export function apnsFromConfig(
  config: Config,
  identity: PushIdentity,
  clock: Clock,
  retry?: RetryPolicy,
): ApnsClient {
  const ca = apnsCaFromConfig(config);
  return new ApnsClient({
    url: config.apns.url,
    identity,
    clock,
    ...(ca ? { ca } : {}),
    ...(retry ? { retry } : {}),
  });
}

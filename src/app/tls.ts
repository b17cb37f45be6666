import { createPrivateKey, X509Certificate } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { ConfigError } from '../core/config.ts';
import type { Config } from '../core/config.ts';
import { readConfigured } from './apple.ts';

/** What Fastify's `https` option takes: the certificate chain (leaf first) and its key, PEM. */
export interface ServerTls {
  cert: string;
  key: string;
}

/**
 * HAISHIN_TLS_CERT/KEY, checked before anything listens: a file that cannot be read, a key that does
 * not belong to the certificate or a certificate out of its validity window would give a server
 * every device refuses, so each stops the start with one line naming its variable.
 * null when haishin serves plain HTTP behind a reverse proxy that terminates TLS.
 */
export function tlsFromConfig(config: Config, now: Date): ServerTls | null {
  if (!config.tls) return null;
  const { certFile, keyFile } = config.tls;
  const cert = readConfigured(certFile, 'HAISHIN_TLS_CERT');
  const key = readConfigured(keyFile, 'HAISHIN_TLS_KEY');
  let leaf: X509Certificate;
  try {
    // The first certificate of the file is the server's; intermediates may follow it.
    leaf = new X509Certificate(cert);
  } catch (err) {
    throw new ConfigError(
      `HAISHIN_TLS_CERT=${certFile} holds no readable PEM certificate (${(err as Error).message})`,
    );
  }
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey(key);
  } catch (err) {
    throw new ConfigError(
      `HAISHIN_TLS_KEY=${keyFile} holds no readable PEM private key (${(err as Error).message}); an encrypted key must be decrypted first`,
    );
  }
  if (!leaf.checkPrivateKey(privateKey))
    throw new ConfigError(
      `HAISHIN_TLS_KEY=${keyFile} does not belong to the certificate in HAISHIN_TLS_CERT=${certFile} (subject ${leaf.subject.replace(/\n/g, ', ')})`,
    );
  if (now.getTime() > Date.parse(leaf.validTo))
    throw new ConfigError(
      `HAISHIN_TLS_CERT=${certFile}: the server certificate expired on ${new Date(leaf.validTo).toISOString()}; devices refuse it — renew it`,
    );
  if (now.getTime() < Date.parse(leaf.validFrom))
    throw new ConfigError(
      `HAISHIN_TLS_CERT=${certFile}: the server certificate is valid only from ${new Date(leaf.validFrom).toISOString()} (check the machine's clock)`,
    );
  return { cert: cert.toString('utf8'), key: key.toString('utf8') };
}

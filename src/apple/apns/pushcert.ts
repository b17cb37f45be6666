import { createPrivateKey, generateKeyPairSync, randomBytes, randomUUID, X509Certificate } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import forge from 'node-forge';

/** The MDM push certificate as haishin uses it: the TLS client identity for APNs and the topic devices enrol with. */
export interface PushIdentity {
  /** Leaf first; any intermediates that came with it follow. */
  certPem: string;
  keyPem: string;
  /** The certificate's UID, `com.apple.mgmt.External.<uuid>`; enrollment profiles carry it as `Topic`. */
  topic: string;
  notAfter: Date;
  /** One line, RFC 4514 style, for logs and the console. */
  subject: string;
}

/** Where the material came from, so a message can name the file or variable to fix. */
export interface PushSourceLabels {
  cert?: string;
  key?: string;
}

export type PushIdentitySource =
  | { certPem: string; keyPem: string; labels?: PushSourceLabels }
  | { pkcs12: Uint8Array; password: string; labels?: PushSourceLabels };

/** The push certificate cannot be used; the message says what is wrong and what to do. */
export class PushCertificateError extends Error {
  constructor(
    message: string,
    readonly code: 'unreadable' | 'expired' | 'not_yet_valid' | 'no_topic' | 'key_mismatch' | 'bad_password',
  ) {
    super(message);
    this.name = 'PushCertificateError';
  }
}

/** userId (RFC 4519): Apple puts the push topic there. */
export const UID_OID = '0.9.2342.19200300.100.1.1';

const RENEW_HINT =
  'renew it at https://identity.apple.com/pushcert with the Apple ID that created it (renewing keeps the topic, so enrolled devices keep working)';

const P12_KEY_BAG = '1.2.840.113549.1.12.10.1.1';
const P12_SHROUDED_KEY_BAG = '1.2.840.113549.1.12.10.1.2';
const P12_CERT_BAG = '1.2.840.113549.1.12.10.1.3';

const PEM_CERT = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

/**
 * `allowExpired`: an expired certificate is returned instead of refused — at start, when an
 * uploaded certificate may replace it (decision 0022); the caller judges the expiry then.
 */
export function loadPushIdentity(
  source: PushIdentitySource,
  now: Date,
  o: { allowExpired?: boolean } = {},
): PushIdentity {
  const certLabel = source.labels?.cert ?? 'HAISHIN_APNS_CERT';
  if ('pkcs12' in source) {
    const fromP12 = unpackPkcs12(source.pkcs12, source.password, certLabel);
    return checkIdentity(fromP12.certPems, fromP12.keyPem, now, certLabel, certLabel, o.allowExpired);
  }
  const keyLabel = source.labels?.key ?? 'HAISHIN_APNS_KEY';
  const certPems = source.certPem.match(PEM_CERT) ?? [];
  if (certPems.length === 0) {
    throw new PushCertificateError(
      `${certLabel} holds no PEM certificate (no "-----BEGIN CERTIFICATE-----" block): give the MDM push certificate from Apple in PEM form (convert a .cer with "openssl x509 -inform der -in MDM_push.cer -out push.pem"), or a .p12 file`,
      'unreadable',
    );
  }
  return checkIdentity(certPems, source.keyPem, now, certLabel, keyLabel, o.allowExpired);
}

/** The refusal of an expired push certificate, naming where it came from. */
export function expiredPushCertificateMessage(certLabel: string, topic: string, notAfter: Date): string {
  return `${certLabel}: the push certificate for topic ${topic} expired on ${notAfter.toISOString()}; APNs refuses every push made with it — ${RENEW_HINT}, then replace the file`;
}

function checkIdentity(
  certPems: string[],
  keyPem: string,
  now: Date,
  certLabel: string,
  keyLabel: string,
  allowExpired = false,
): PushIdentity {
  const leafPem = certPems[0]!;
  let x509: X509Certificate;
  try {
    x509 = new X509Certificate(leafPem);
  } catch (err) {
    throw new PushCertificateError(
      `${certLabel}: the certificate cannot be read (${(err as Error).message}); check that the file is the PEM push certificate and was not truncated`,
      'unreadable',
    );
  }
  const topic = uidOf(leafPem, certLabel);
  const subject = oneLineSubject(x509.subject);
  const notBefore = new Date(x509.validFrom);
  const notAfter = new Date(x509.validTo);
  if (notAfter.getTime() < now.getTime() && !allowExpired) {
    throw new PushCertificateError(expiredPushCertificateMessage(certLabel, topic, notAfter), 'expired');
  }
  if (notBefore.getTime() > now.getTime()) {
    throw new PushCertificateError(
      `${certLabel}: the push certificate for topic ${topic} is not valid before ${notBefore.toISOString()}; check this machine's clock (now ${now.toISOString()}) or use the previous certificate until then`,
      'not_yet_valid',
    );
  }
  let key: KeyObject;
  try {
    key = createPrivateKey(keyPem);
  } catch (err) {
    throw new PushCertificateError(
      `${keyLabel}: the private key cannot be read (${(err as Error).message}); give the unencrypted PEM key that was used to request the push certificate (decrypt it with "openssl pkey -in key.pem -out key-plain.pem")`,
      'unreadable',
    );
  }
  if (!x509.checkPrivateKey(key)) {
    throw new PushCertificateError(
      `${keyLabel} does not belong to the certificate in ${certLabel} (topic ${topic}): use the key that signed the certificate request sent to Apple`,
      'key_mismatch',
    );
  }
  return {
    certPem: certPems.map((pem) => pem.trim() + '\n').join(''),
    keyPem: key.export({ type: 'pkcs8', format: 'pem' }).toString(),
    topic,
    notAfter,
    subject,
  };
}

function uidOf(certPem: string, certLabel: string): string {
  let cert: forge.pki.Certificate;
  try {
    cert = forge.pki.certificateFromPem(certPem);
  } catch (err) {
    throw new PushCertificateError(
      `${certLabel}: the certificate cannot be read (${(err as Error).message}); an MDM push certificate from Apple is an RSA certificate in PEM form`,
      'unreadable',
    );
  }
  const uid = cert.subject.getField({ type: UID_OID }) as { value?: unknown } | null;
  const value = typeof uid?.value === 'string' ? uid.value.trim() : '';
  if (value === '') {
    throw new PushCertificateError(
      `${certLabel}: the certificate's subject has no UID (${UID_OID}), so it carries no push topic — this is not an MDM push certificate; download the "MDM push certificate" from https://identity.apple.com/pushcert`,
      'no_topic',
    );
  }
  return value;
}

/** Node prints the subject one attribute per line; logs want one line. */
function oneLineSubject(multiline: string): string {
  return multiline
    .split('\n')
    .filter((line) => line !== '')
    .join(', ');
}

function unpackPkcs12(
  der: Uint8Array,
  password: string,
  label: string,
): { certPems: string[]; keyPem: string } {
  let p12: forge.pkcs12.Pkcs12Pfx;
  try {
    const asn1 = forge.asn1.fromDer(forge.util.createBuffer(Buffer.from(der).toString('binary')));
    p12 = forge.pkcs12.pkcs12FromAsn1(asn1, false, password);
  } catch (err) {
    const message = (err as Error).message;
    if (/password|MAC/i.test(message)) {
      throw new PushCertificateError(
        `${label}: the PKCS#12 password is wrong (${message}); set HAISHIN_APNS_CERT_PASSWORD to the password chosen when the .p12 was exported`,
        'bad_password',
      );
    }
    throw new PushCertificateError(
      `${label}: the file is not a readable PKCS#12 (.p12) archive (${message}); export the push certificate together with its private key from Keychain Access, or give PEM files`,
      'unreadable',
    );
  }
  const bags = (oid: string): forge.pkcs12.Bag[] => p12.getBags({ bagType: oid })[oid] ?? [];
  const keyBags = [...bags(P12_SHROUDED_KEY_BAG), ...bags(P12_KEY_BAG)];
  const certBags = bags(P12_CERT_BAG);
  const key = keyBags.find((bag) => bag.key)?.key;
  const certs = certBags.flatMap((bag) => (bag.cert ? [bag.cert] : []));
  if (!key || certs.length === 0) {
    throw new PushCertificateError(
      `${label}: the PKCS#12 archive holds ${certs.length} certificate(s) and ${key ? 'a' : 'no'} private key; it needs both — export the push certificate with its key from Keychain Access`,
      'unreadable',
    );
  }
  // The leaf is the certificate whose public key is the archive's key; the rest is chain.
  const publicPem = forge.pki.publicKeyToPem(
    forge.pki.setRsaPublicKey((key as forge.pki.rsa.PrivateKey).n, (key as forge.pki.rsa.PrivateKey).e),
  );
  const leafIndex = Math.max(
    0,
    certs.findIndex((cert) => forge.pki.publicKeyToPem(cert.publicKey) === publicPem),
  );
  const ordered = [certs[leafIndex]!, ...certs.filter((_, index) => index !== leafIndex)];
  return {
    certPems: ordered.map((cert) => forge.pki.certificateToPem(cert)),
    keyPem: forge.pki.privateKeyToPem(key),
  };
}

/**
 * A self-signed stand-in for Apple's MDM push certificate, shaped like the real one (UID topic,
 * `APSP:` common name, clientAuth). Only haishin's fake APNs trusts it: this is for `haishin demo`.
 */
export function generateDemoPushIdentity(
  now: Date,
  o: { topic?: string; validDays?: number } = {},
): PushIdentity {
  // A given topic is a renewal (Apple's portal keeps the topic); none is a new certificate.
  const uuid = o.topic?.replace(/^com\.apple\.mgmt\.External\./, '') ?? randomUUID().toUpperCase();
  const topic = o.topic ?? `com.apple.mgmt.External.${uuid}`;
  // node:crypto generates the key in native code; forge's pure-JS RSA keygen takes seconds.
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const keyPem = privateKey.export({ type: 'pkcs1', format: 'pem' }).toString();
  const forgeKey = forge.pki.privateKeyFromPem(keyPem) as forge.pki.rsa.PrivateKey;
  const cert = forge.pki.createCertificate();
  cert.publicKey = forge.pki.setRsaPublicKey(forgeKey.n, forgeKey.e);
  // A leading 0x01 keeps the DER integer positive without changing its length.
  cert.serialNumber = '01' + randomBytes(15).toString('hex');
  // A little slack so a device or fake APNs whose clock is slightly behind still accepts it.
  cert.validity.notBefore = new Date(now.getTime() - 5 * 60_000);
  cert.validity.notAfter = new Date(now.getTime() + (o.validDays ?? 365) * 24 * 3600_000);
  const attrs = [
    { type: UID_OID, value: topic },
    { name: 'commonName', value: `APSP:${uuid}` },
    // A renewal keeps the topic; self-signed, it needs a subject of its own, or a TLS peer that
    // trusts both would look the old one up by name and fail the signature check.
    ...(o.topic
      ? [{ name: 'organizationalUnitName', value: `renewal ${randomBytes(4).toString('hex')}` }]
      : []),
    { name: 'countryName', value: 'US' },
  ];
  cert.setSubject(attrs);
  cert.setIssuer(attrs);
  cert.setExtensions([
    { name: 'basicConstraints', cA: false, critical: true },
    { name: 'extKeyUsage', clientAuth: true },
    { name: 'subjectKeyIdentifier' },
  ]);
  cert.sign(forgeKey, forge.md.sha256.create());
  const certPem = forge.pki.certificateToPem(cert);
  return {
    certPem,
    keyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    topic,
    notAfter: cert.validity.notAfter,
    subject: oneLineSubject(new X509Certificate(certPem).subject),
  };
}

/**
 * haishin's device CA and the device identities it issues (delivered to devices as PKCS#12
 * inside the enrollment profile).
 *
 * node-forge lays out the TBSCertificate (names, validity, extensions); keys, signatures and
 * the SubjectPublicKeyInfo come from node:crypto, so any key type node supports (RSA, P-256) can
 * be certified, and signing costs ~1 ms instead of forge's ~70 ms of JavaScript RSA.
 */
import {
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  randomBytes,
  sign,
  X509Certificate,
} from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import forge from 'node-forge';
import { bitString, derNull, seq, toPem } from './der.ts';
import { OID, OID_DER } from './oids.ts';
import { decodePkcs12, encodePkcs12 } from './pkcs12.ts';
import { certFields, keyIdentifierOfSpki, pemToDer } from './x509.ts';

export interface CertAndKey {
  certPem: string;
  /** PKCS#8 PEM. */
  keyPem: string;
}

export interface IssuedIdentity extends CertAndKey {
  /** Lowercase hex SHA-256 of the certificate DER. */
  fingerprintSha256: string;
  serialHex: string;
  notAfter: Date;
}

const HOUR_MS = 3_600_000;
const DAY_MS = 86_400_000;

/** Certificates carry whole seconds; returning the same instant avoids off-by-milliseconds surprises. */
const wholeSeconds = (ms: number): Date => new Date(Math.floor(ms / 1000) * 1000);

/** A positive 16-byte serial with a non-zero first octet (so its DER INTEGER is exactly 16 bytes). */
function randomSerial(): Buffer {
  const serial = randomBytes(16);
  serial[0] = (serial[0]! & 0x7f) | 0x01;
  return serial;
}

// getTBSCertificate is public in node-forge but absent from @types/node-forge.
const pki = forge.pki as typeof forge.pki & {
  getTBSCertificate(cert: forge.pki.Certificate): forge.asn1.Asn1;
};

// forge needs *some* public key to lay out the TBSCertificate; the real SubjectPublicKeyInfo
// replaces it before anything is signed.
const PLACEHOLDER_KEY = forge.pki.setRsaPublicKey(
  new forge.jsbn.BigInteger('3'),
  new forge.jsbn.BigInteger('3'),
);

interface CertSpec {
  serial: Buffer;
  subjectCommonName: string;
  /** The issuer's subject Name DER; absent for a self-signed certificate. */
  issuerName?: Uint8Array;
  notBefore: Date;
  notAfter: Date;
  spki: Buffer;
  extensions: object[];
  signingKey: KeyObject;
}

function signatureAlgorithm(key: KeyObject): { algorithmId: Buffer; hash: string } {
  if (key.asymmetricKeyType === 'rsa')
    return { algorithmId: seq(OID_DER.sha256WithRSAEncryption, derNull()), hash: 'sha256' };
  // ECDSA AlgorithmIdentifiers carry no parameters (RFC 5758 §3.2).
  if (key.asymmetricKeyType === 'ec') return { algorithmId: seq(OID_DER.ecdsaWithSha256), hash: 'sha256' };
  throw new Error(`cannot sign certificates with a ${key.asymmetricKeyType ?? 'unknown'} key`);
}

function buildCertificate(spec: CertSpec): Buffer {
  const cert = forge.pki.createCertificate();
  cert.serialNumber = spec.serial.toString('hex');
  cert.validity.notBefore = spec.notBefore;
  cert.validity.notAfter = spec.notAfter;
  // forge reads valueTagClass as a universal type number (UTF8String here: the default PrintableString
  // cannot hold every name); its typings declare it as a tag class.
  const valueTagClass = forge.asn1.Type.UTF8 as unknown as forge.asn1.Class;
  const subject: forge.pki.CertificateField[] = [
    { name: 'commonName', value: spec.subjectCommonName, valueTagClass },
  ];
  cert.setSubject(subject);
  cert.setIssuer(subject);
  cert.publicKey = PLACEHOLDER_KEY;
  cert.setExtensions(spec.extensions);
  cert.siginfo.algorithmOid = OID.sha256WithRSAEncryption;

  const { algorithmId, hash } = signatureAlgorithm(spec.signingKey);
  const tbs = pki.getTBSCertificate(cert);
  const fromDer = (der: Uint8Array): forge.asn1.Asn1 =>
    forge.asn1.fromDer(Buffer.from(der).toString('binary'));
  // TBSCertificate: version, serial, signature, issuer, validity, subject, subjectPublicKeyInfo, extensions.
  const fields = tbs.value as forge.asn1.Asn1[];
  fields[2] = fromDer(algorithmId);
  if (spec.issuerName) fields[3] = fromDer(spec.issuerName);
  fields[6] = fromDer(spec.spki);
  const tbsDer = Buffer.from(forge.asn1.toDer(tbs).getBytes(), 'binary');
  const signature = sign(hash, tbsDer, spec.signingKey);
  return seq(tbsDer, algorithmId, bitString(signature));
}

export function createDeviceCa(opts: { now: Date; commonName?: string; validYears?: number }): CertAndKey {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const spki = publicKey.export({ type: 'spki', format: 'der' });
  const notAfter = new Date(opts.now.getTime());
  notAfter.setUTCFullYear(notAfter.getUTCFullYear() + (opts.validYears ?? 10));
  const der = buildCertificate({
    serial: randomSerial(),
    subjectCommonName: opts.commonName ?? 'haishin device CA',
    // An hour of slack so a device or server whose clock runs a little behind accepts it at once.
    notBefore: wholeSeconds(opts.now.getTime() - HOUR_MS),
    notAfter: wholeSeconds(notAfter.getTime()),
    spki,
    extensions: [
      { name: 'basicConstraints', cA: true, critical: true },
      { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true },
      { name: 'subjectKeyIdentifier', value: subjectKeyIdentifierValue(spki) },
    ],
    signingKey: privateKey,
  });
  return {
    certPem: toPem('CERTIFICATE', der),
    keyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }) as string,
  };
}

/**
 * The SCEP service's own certificate (an "RA" certificate, RFC 8894 §2.2), issued by the device CA:
 * it signs the answers and receives the requests. The CA certificate cannot do it — its key usage
 * is keyCertSign and cRLSign only, and OpenSSL-based clients refuse a signer without
 * digitalSignature. No extended key usage: S/MIME-style checks reject one without emailProtection.
 */
export function issueScepRaCertificate(
  ca: CertAndKey,
  opts: { now: Date; spki: Uint8Array; notAfter: Date; commonName?: string },
): string {
  const spki = Buffer.from(opts.spki);
  const issuer = issuerOf(ca);
  const authorityKeyId = issuer.fields.subjectKeyId ?? keyIdentifierOfSpki(issuer.fields.spki);
  const der = buildCertificate({
    serial: randomSerial(),
    subjectCommonName: opts.commonName ?? 'haishin SCEP service',
    issuerName: issuer.fields.subject,
    notBefore: wholeSeconds(opts.now.getTime() - HOUR_MS),
    notAfter: wholeSeconds(opts.notAfter.getTime()),
    spki,
    extensions: [
      { name: 'basicConstraints', cA: false, critical: true },
      { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
      { name: 'subjectKeyIdentifier', value: subjectKeyIdentifierValue(spki) },
      { name: 'authorityKeyIdentifier', keyIdentifier: Buffer.from(authorityKeyId).toString('binary') },
    ],
    signingKey: issuer.key,
  });
  return toPem('CERTIFICATE', der);
}

/**
 * A short-lived self-signed certificate for a key: what a SCEP client signs its request with before
 * it has an identity (RFC 8894 §2.3). The simulated iPads use it.
 */
export function selfSignedCertificate(opts: { key: KeyObject; commonName: string; now: Date }): string {
  const spki = createPublicKey(opts.key).export({ type: 'spki', format: 'der' });
  const der = buildCertificate({
    serial: randomSerial(),
    subjectCommonName: opts.commonName,
    notBefore: wholeSeconds(opts.now.getTime() - HOUR_MS),
    notAfter: wholeSeconds(opts.now.getTime() + DAY_MS),
    spki,
    extensions: [{ name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true }],
    signingKey: opts.key,
  });
  return toPem('CERTIFICATE', der);
}

function subjectKeyIdentifierValue(spki: Uint8Array): forge.asn1.Asn1 {
  return forge.asn1.create(
    forge.asn1.Class.UNIVERSAL,
    forge.asn1.Type.OCTETSTRING,
    false,
    keyIdentifierOfSpki(spki).toString('binary'),
  );
}

const ALLOWED_RSA_BITS = new Set([1024, 2048, 3072, 4096]);

/** Parsing the CA's PEM key and certificate costs more than signing a device certificate: once per CA. */
const issuerCache = new WeakMap<CertAndKey, { key: KeyObject; fields: ReturnType<typeof certFields> }>();
function issuerOf(ca: CertAndKey) {
  let cached = issuerCache.get(ca);
  if (!cached) {
    cached = { key: createPrivateKey(ca.keyPem), fields: certFields(pemToDer(ca.certPem)) };
    issuerCache.set(ca, cached);
  }
  return cached;
}

export function issueDeviceIdentity(
  ca: CertAndKey,
  opts: {
    now: Date;
    commonName: string;
    validDays?: number;
    /** Validity in milliseconds; wins over `validDays` (HAISHIN_DEVICE_IDENTITY_VALIDITY, decision 0023). */
    validMs?: number;
    /** RSA size; 1024 only for simulators and tests, where RSA-2048 key generation (~100–140 ms) dominates. */
    keyBits?: number;
    /** 'ec' makes a P-256 key, as some devices' SCEP identities have. */
    keyType?: 'rsa' | 'ec';
  },
): IssuedIdentity {
  const keyType = opts.keyType ?? 'rsa';
  const keyBits = opts.keyBits ?? 2048;
  if (keyType === 'rsa' && !ALLOWED_RSA_BITS.has(keyBits))
    throw new Error(`unsupported RSA key size ${keyBits}`);
  const { privateKey, publicKey } =
    keyType === 'ec'
      ? generateKeyPairSync('ec', { namedCurve: 'P-256' })
      : generateKeyPairSync('rsa', { modulusLength: keyBits });
  const spki = publicKey.export({ type: 'spki', format: 'der' });

  const cert = certifyPublicKey(ca, {
    now: opts.now,
    commonName: opts.commonName,
    spki,
    validMs: opts.validMs ?? (opts.validDays ?? 365) * DAY_MS,
  });
  return { ...cert, keyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }) as string };
}

/**
 * A device identity certificate for a public key the device made itself (SCEP, decision 0024): the
 * same profile of extensions as the PKCS#12 identities, so the MDM signature check treats both alike.
 */
export function certifyPublicKey(
  ca: CertAndKey,
  opts: { now: Date; commonName: string; spki: Uint8Array; validMs: number },
): Omit<IssuedIdentity, 'keyPem'> {
  const spki = Buffer.from(opts.spki);
  const keyType = createPublicKey({ key: spki, format: 'der', type: 'spki' }).asymmetricKeyType;
  const issuer = issuerOf(ca);
  const caFields = issuer.fields;
  // The authority key identifier must equal the CA's own subjectKeyIdentifier, or OpenSSL's
  // issuer check fails; compute one only for a CA certificate that has none.
  const authorityKeyId = caFields.subjectKeyId ?? keyIdentifierOfSpki(caFields.spki);
  const serial = randomSerial();
  const notAfter = wholeSeconds(opts.now.getTime() + opts.validMs);
  const der = buildCertificate({
    serial,
    subjectCommonName: opts.commonName,
    issuerName: caFields.subject,
    notBefore: wholeSeconds(opts.now.getTime() - HOUR_MS),
    notAfter,
    spki,
    extensions: [
      { name: 'basicConstraints', cA: false, critical: true },
      // keyEncipherment only means something for RSA keys.
      { name: 'keyUsage', digitalSignature: true, keyEncipherment: keyType === 'rsa', critical: true },
      { name: 'extKeyUsage', clientAuth: true },
      { name: 'subjectKeyIdentifier', value: subjectKeyIdentifierValue(spki) },
      { name: 'authorityKeyIdentifier', keyIdentifier: Buffer.from(authorityKeyId).toString('binary') },
    ],
    signingKey: issuer.key,
  });
  return {
    certPem: toPem('CERTIFICATE', der),
    fingerprintSha256: createHash('sha256').update(der).digest('hex'),
    serialHex: serial.toString('hex'),
    notAfter,
  };
}

/**
 * DER PKCS#12 for a `com.apple.security.pkcs12` payload: 3DES for the certificates and the key,
 * SHA-1 MAC, 2048 iterations (see pkcs12.ts for why this layout).
 */
export function identityToPkcs12(
  identity: CertAndKey,
  opts: { password: string; friendlyName?: string; caCertPem?: string; iterations?: number },
): Buffer {
  const keyPkcs8 = identity.keyPem.includes('-----BEGIN PRIVATE KEY-----')
    ? pemToDer(identity.keyPem, 'PRIVATE KEY')
    : createPrivateKey(identity.keyPem).export({ type: 'pkcs8', format: 'der' });
  return encodePkcs12({
    keyPkcs8,
    cert: pemToDer(identity.certPem),
    chain: opts.caCertPem ? [pemToDer(opts.caCertPem)] : [],
    password: opts.password,
    ...(opts.iterations !== undefined ? { iterations: opts.iterations } : {}),
    ...(opts.friendlyName !== undefined ? { friendlyName: opts.friendlyName } : {}),
  });
}

/** Reads the identity back: the private key and the certificate whose public key matches it. */
export function pkcs12ToIdentity(p12: Uint8Array, password: string): CertAndKey {
  const contents = decodePkcs12(p12, password);
  const [key, ...others] = contents.keys;
  if (!key) throw new Error('the PKCS#12 file holds no private key');
  if (others.length > 0) throw new Error('the PKCS#12 file holds several private keys');
  const privateKey = createPrivateKey({ key: key.pkcs8, format: 'der', type: 'pkcs8' });
  const publicDer = createPublicKey(privateKey).export({ type: 'spki', format: 'der' });
  const cert = contents.certs.find((c) => Buffer.from(certFields(c.der).spki).equals(publicDer));
  if (!cert) throw new Error('the PKCS#12 file holds no certificate for its private key');
  return {
    certPem: toPem('CERTIFICATE', cert.der),
    keyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }) as string,
  };
}

export function sha256FingerprintOfPem(certPem: string): string {
  return createHash('sha256').update(new X509Certificate(certPem).raw).digest('hex');
}

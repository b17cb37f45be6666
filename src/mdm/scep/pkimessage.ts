/**
 * SCEP's messages (RFC 8894 §3): a CMS SignedData whose signed attributes say what the message is
 * (messageType, transactionID, nonces, pkiStatus, failInfo) and whose content is an EnvelopedData
 * (the pkcsPKIEnvelope) encrypted to the other side.
 *
 * - SignedData is read with the offset-keeping reader of ../identity/der.ts and written with its
 *   writer: node-forge cannot verify PKCS#7 and writes only contentType, messageDigest and
 *   signingTime as signed attributes. Signatures are node:crypto's.
 * - EnvelopedData is node-forge's (`pkcs7.createEnvelopedData`, `messageFromAsn1().decrypt`):
 *   Node 20 refuses RSA PKCS#1 v1.5 private decryption (CVE-2023-46809) and every SCEP client
 *   encrypts the content key that way, so forge's RSA does it.
 *
 * The server and the simulated iPad (src/sim/device/scep-client.ts) share this file. Every input is
 * attacker-controlled: the readers throw `ScepError`, which the server turns into a FAILURE answer.
 */
import { createHash, createPublicKey, sign, verify, X509Certificate } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import forge from 'node-forge';
import {
  children,
  content,
  ctx,
  derNull,
  explicit,
  integer,
  octetString,
  octets,
  oid,
  oidHex,
  readTlv,
  seq,
  setOf,
  TAG,
  tlv,
  whole,
} from '../identity/der.ts';
import type { Tlv } from '../identity/der.ts';
import { DIGEST_BY_OID_HEX, OID_DER, OID_HEX } from '../identity/oids.ts';
import type { HashName } from '../identity/oids.ts';
import { certFields } from '../identity/x509.ts';

export class ScepError extends Error {
  /**
   * The message's signed attributes when they could be read but not trusted (digest or signature
   * wrong): enough to answer the transaction with a FAILURE badMessageCheck.
   */
  unverifiedAttributes: Map<string, Buffer> | null = null;

  constructor(
    message: string,
    /** RFC 8894 §3.2.1.4: what to answer when this stops a request. */
    readonly failInfo: FailInfo = 'badRequest',
  ) {
    super(message);
  }
}

export const SCEP_OID = {
  messageType: '2.16.840.1.113733.1.9.2',
  pkiStatus: '2.16.840.1.113733.1.9.3',
  failInfo: '2.16.840.1.113733.1.9.4',
  senderNonce: '2.16.840.1.113733.1.9.5',
  recipientNonce: '2.16.840.1.113733.1.9.6',
  transactionID: '2.16.840.1.113733.1.9.7',
  envelopedData: '1.2.840.113549.1.7.3',
  challengePassword: '1.2.840.113549.1.9.7',
  commonName: '2.5.4.3',
} as const;

const HEX = Object.fromEntries(
  Object.entries(SCEP_OID).map(([name, dotted]) => [name, oid(dotted).subarray(2).toString('hex')]),
) as Record<keyof typeof SCEP_OID, string>;

/** messageType values (RFC 8894 §3.2.1.2). */
export const MESSAGE_TYPE = {
  CertRep: '3',
  RenewalReq: '17',
  PKCSReq: '19',
  CertPoll: '20',
  GetCert: '21',
  GetCRL: '22',
} as const;

export type PkiStatus = 'SUCCESS' | 'FAILURE' | 'PENDING';
const PKI_STATUS: Record<PkiStatus, string> = { SUCCESS: '0', FAILURE: '2', PENDING: '3' };

export type FailInfo = 'badAlg' | 'badMessageCheck' | 'badRequest' | 'badTime' | 'badCertId';
const FAIL_INFO: Record<FailInfo, string> = {
  badAlg: '0',
  badMessageCheck: '1',
  badRequest: '2',
  badTime: '3',
  badCertId: '4',
};

// ---- reading -----------------------------------------------------------------------------

function need(tlvOrUndefined: Tlv | undefined, tag: number, what: string): Tlv {
  if (!tlvOrUndefined || tlvOrUndefined.tag !== tag) throw new ScepError(`malformed message: ${what}`);
  return tlvOrUndefined;
}

/** A verified SignedData: its content, certificates, and its one signer's attributes. */
export interface ReadSignedData {
  content: Buffer | null;
  certificates: Buffer[];
  signerCert: Buffer;
  /** Signed attributes, by dotted OID: the first value's DER (tag included). */
  attributes: Map<string, Buffer>;
  digest: HashName;
}

const SIGNATURE_HASH: ReadonlyMap<string, HashName | undefined> = new Map([
  [OID_HEX.rsaEncryption, undefined],
  [OID_HEX.sha1WithRSAEncryption, 'sha1'],
  [OID_HEX.sha256WithRSAEncryption, 'sha256'],
  [OID_HEX.sha384WithRSAEncryption, 'sha384'],
  [OID_HEX.sha512WithRSAEncryption, 'sha512'],
  [OID_HEX.ecPublicKey, undefined],
  [OID_HEX.ecdsaWithSha256, 'sha256'],
]);

const DOTTED_BY_HEX = new Map(
  Object.entries(SCEP_OID).map(([name, dotted]) => [HEX[name as keyof typeof HEX], dotted]),
);

/**
 * Reads a ContentInfo holding a SignedData with exactly one signer, and checks the signature: the
 * messageDigest attribute against the content, the signed attributes against the signer's key.
 * `signerCert` is the certificate that must have signed (the CA, for a CertRep); without it the
 * signer is the certificate the message carries (a client's self-signed one, for a request).
 */
export function readSignedData(der: Uint8Array, opts: { signerCert?: Uint8Array } = {}): ReadSignedData {
  try {
    return readSignedDataOrThrow(Buffer.from(der), opts);
  } catch (err) {
    if (err instanceof ScepError) throw err;
    throw new ScepError(`unreadable SignedData: ${(err as Error).message}`);
  }
}

function readSignedDataOrThrow(buf: Buffer, opts: { signerCert?: Uint8Array }): ReadSignedData {
  const info = need(readTlv(buf, 0), TAG.SEQUENCE, 'ContentInfo');
  const [type, wrapped] = children(buf, info);
  if (!type || type.tag !== TAG.OID || oidHex(buf, type) !== OID_HEX.signedData)
    throw new ScepError('the message is not a CMS SignedData');
  const sd = need(children(buf, need(wrapped, ctx(0), 'content'))[0], TAG.SEQUENCE, 'SignedData');
  const fields = children(buf, sd);
  const encap = need(fields[2], TAG.SEQUENCE, 'encapContentInfo');
  const signerInfos = need(fields[fields.length - 1], TAG.SET, 'signerInfos');
  const certSet = fields.slice(3, -1).find((f) => f.tag === ctx(0));
  const certificates = certSet ? children(buf, certSet).map((c) => Buffer.from(whole(buf, c))) : [];
  const [, eContentWrapper] = children(buf, encap);
  let eContent: Buffer | null = null;
  if (eContentWrapper) {
    const inner = children(buf, need(eContentWrapper, ctx(0), 'eContent'))[0];
    if (!inner) throw new ScepError('malformed message: empty eContent');
    eContent = Buffer.from(octets(buf, inner));
  }

  const signers = children(buf, signerInfos);
  if (signers.length !== 1) throw new ScepError(`expected one signer, found ${signers.length}`);
  const si = children(buf, signers[0]!);
  const sid = si[1];
  const digestAlgorithm = need(si[2], TAG.SEQUENCE, 'digestAlgorithm');
  const signedAttrs = need(si[3], ctx(0), 'signed attributes');
  const signatureAlgorithm = need(si[4], TAG.SEQUENCE, 'signatureAlgorithm');
  const signature = need(si[5], TAG.OCTET_STRING, 'signature');

  const digestOid = need(children(buf, digestAlgorithm)[0], TAG.OID, 'digest OID');
  const digest = DIGEST_BY_OID_HEX.get(oidHex(buf, digestOid));
  if (!digest) throw new ScepError('unsupported digest algorithm', 'badAlg');
  const sigOid = oidHex(buf, need(children(buf, signatureAlgorithm)[0], TAG.OID, 'signature OID'));
  if (!SIGNATURE_HASH.has(sigOid)) throw new ScepError('unsupported signature algorithm', 'badAlg');
  const hash = SIGNATURE_HASH.get(sigOid) ?? digest;

  // The signer: the certificate named by issuerAndSerialNumber.
  let signerCert: Buffer | undefined;
  if (opts.signerCert) signerCert = Buffer.from(opts.signerCert);
  else if (sid && sid.tag === TAG.SEQUENCE) {
    const [issuer, serial] = children(buf, sid);
    if (!issuer || !serial) throw new ScepError('malformed message: signer identifier');
    const issuerDer = whole(buf, issuer);
    const serialBytes = content(buf, serial);
    signerCert = certificates.find((c) => {
      const f = certFields(c);
      return Buffer.from(f.issuer).equals(issuerDer) && Buffer.from(f.serial).equals(serialBytes);
    });
  }
  if (!signerCert) throw new ScepError('the signer certificate is not in the message', 'badCertId');

  const attributes = new Map<string, Buffer>();
  for (const attr of children(buf, signedAttrs)) {
    const [attrType, values] = children(buf, attr);
    if (!attrType || attrType.tag !== TAG.OID || !values || values.tag !== TAG.SET) continue;
    const first = children(buf, values)[0];
    if (!first) continue;
    const hex = oidHex(buf, attrType);
    const key =
      DOTTED_BY_HEX.get(hex) ??
      (hex === OID_HEX.messageDigest ? 'messageDigest' : hex === OID_HEX.contentType ? 'contentType' : hex);
    attributes.set(key, Buffer.from(whole(buf, first)));
  }
  try {
    checkSignature(buf, { attributes, eContent, digest, hash, signerCert, signedAttrs, signature });
  } catch (err) {
    const refusal =
      err instanceof ScepError
        ? err
        : new ScepError(`unreadable signature: ${(err as Error).message}`, 'badMessageCheck');
    refusal.unverifiedAttributes = attributes;
    throw refusal;
  }
  return { content: eContent, certificates, signerCert, attributes, digest };
}

function checkSignature(
  buf: Buffer,
  o: {
    attributes: Map<string, Buffer>;
    eContent: Buffer | null;
    digest: HashName;
    hash: HashName;
    signerCert: Buffer;
    signedAttrs: Tlv;
    signature: Tlv;
  },
): void {
  const { attributes, eContent, digest, hash, signerCert, signedAttrs, signature } = o;
  const messageDigest = attributes.get('messageDigest');
  if (!messageDigest) throw new ScepError('no messageDigest attribute', 'badMessageCheck');
  const expected = createHash(digest)
    .update(eContent ?? Buffer.alloc(0))
    .digest();
  if (!Buffer.from(octets(messageDigest, readTlv(messageDigest, 0))).equals(expected))
    throw new ScepError('the messageDigest does not match the content', 'badMessageCheck');
  const signed = Buffer.from(whole(buf, signedAttrs));
  signed[0] = TAG.SET;
  const key = new X509Certificate(signerCert).publicKey;
  if (!verify(hash, signed, key, content(buf, signature)))
    throw new ScepError('the signature does not verify', 'badMessageCheck');
}

/** A PrintableString attribute's text. */
export function stringAttribute(attrs: Map<string, Buffer>, dotted: string): string | null {
  const value = attrs.get(dotted);
  if (!value) return null;
  const t = readTlv(value, 0);
  if (t.tag !== TAG.PRINTABLE_STRING && t.tag !== TAG.UTF8_STRING && t.tag !== 0x16) return null;
  return Buffer.from(content(value, t)).toString('latin1');
}

export function octetAttribute(attrs: Map<string, Buffer>, dotted: string): Buffer | null {
  const value = attrs.get(dotted);
  if (!value) return null;
  const t = readTlv(value, 0);
  return t.tag === TAG.OCTET_STRING ? Buffer.from(content(value, t)) : null;
}

// ---- EnvelopedData (forge) ----------------------------------------------------------------

const CIPHERS: ReadonlyMap<string, string> = new Map([
  [forge.pki.oids['aes128-CBC']!, 'aes128'],
  [forge.pki.oids['aes192-CBC']!, 'aes192'],
  [forge.pki.oids['aes256-CBC']!, 'aes256'],
  [forge.pki.oids['des-EDE3-CBC']!, 'des-ede3'],
]);

interface ForgeEnveloped {
  recipients: { issuer: unknown; serialNumber: string }[];
  encryptedContent: { algorithm: string };
  content?: forge.util.ByteStringBuffer;
  decrypt(recipient: unknown, key: forge.pki.rsa.PrivateKey): void;
}

const fromBinary = (bytes: Uint8Array): forge.asn1.Asn1 =>
  forge.asn1.fromDer(forge.util.createBuffer(Buffer.from(bytes).toString('binary')), true);
const toBuffer = (asn1: forge.asn1.Asn1): Buffer => Buffer.from(forge.asn1.toDer(asn1).getBytes(), 'binary');

/** Opens a pkcsPKIEnvelope (ContentInfo of EnvelopedData) with the recipient's RSA key. */
export function openEnvelope(
  der: Uint8Array,
  keyPems: string | readonly string[],
): { content: Buffer; cipherOid: string } {
  let message: ForgeEnveloped;
  try {
    message = forge.pkcs7.messageFromAsn1(fromBinary(der)) as unknown as ForgeEnveloped;
  } catch (err) {
    throw new ScepError(`unreadable pkcsPKIEnvelope: ${(err as Error).message}`);
  }
  if (!Array.isArray(message.recipients) || message.recipients.length === 0)
    throw new ScepError('the pkcsPKIEnvelope is not an EnvelopedData with a recipient');
  const cipherOid = message.encryptedContent.algorithm;
  if (!CIPHERS.has(cipherOid)) throw new ScepError('unsupported content encryption', 'badAlg');
  let lastError: unknown = null;
  for (const keyPem of typeof keyPems === 'string' ? [keyPems] : keyPems) {
    const key = forge.pki.privateKeyFromPem(keyPem) as forge.pki.rsa.PrivateKey;
    for (const recipient of message.recipients) {
      try {
        message.decrypt(recipient, key);
        if (message.content) return { content: Buffer.from(message.content.getBytes(), 'binary'), cipherOid };
      } catch (err) {
        lastError = err;
      }
    }
  }
  throw new ScepError(
    `the pkcsPKIEnvelope cannot be opened with this key${lastError ? `: ${(lastError as Error).message}` : ''}`,
    'badMessageCheck',
  );
}

/** A pkcsPKIEnvelope of `content` for the holder of `recipientCertDer` (an RSA key). */
export function sealEnvelope(content: Uint8Array, recipientCertDer: Uint8Array, cipherOid?: string): Buffer {
  const envelope = forge.pkcs7.createEnvelopedData();
  envelope.addRecipient(forge.pki.certificateFromAsn1(fromBinary(recipientCertDer)));
  envelope.content = forge.util.createBuffer(Buffer.from(content).toString('binary'));
  const cipher = cipherOid && CIPHERS.has(cipherOid) ? cipherOid : forge.pki.oids['aes256-CBC']!;
  // @types/node-forge declares encrypt() without its (key, cipher) parameters.
  (envelope as unknown as { encrypt(key?: unknown, cipher?: string): void }).encrypt(undefined, cipher);
  return toBuffer(envelope.toAsn1());
}

// ---- writing ------------------------------------------------------------------------------

const printable = (text: string): Buffer => tlv(TAG.PRINTABLE_STRING, Buffer.from(text, 'latin1'));
const attribute = (dotted: string, value: Buffer): Buffer => seq(oid(dotted), setOf(value));

export interface Signer {
  certDer: Uint8Array;
  key: KeyObject;
}

/** ContentInfo of a SignedData by `signer` over `content` (absent: no eContent). */
export function signedData(o: {
  content: Uint8Array | null;
  signer: Signer;
  certificates: Uint8Array[];
  attributes: Buffer[];
  digest?: HashName;
}): Buffer {
  const digest = o.digest ?? 'sha256';
  const digestAlgorithm = seq(OID_DER[digest]);
  const encap = o.content ? seq(OID_DER.data, explicit(0, octetString(o.content))) : seq(OID_DER.data);
  const messageDigest = createHash(digest)
    .update(o.content ?? Buffer.alloc(0))
    .digest();
  const signedAttrs = setOf(
    attribute('1.2.840.113549.1.9.3', OID_DER.data),
    attribute('1.2.840.113549.1.9.4', octetString(messageDigest)),
    ...o.attributes,
  );
  const signature = sign(digest, signedAttrs, o.signer.key);
  signedAttrs[0] = ctx(0);
  const cert = certFields(o.signer.certDer);
  const signatureAlgorithm =
    o.signer.key.asymmetricKeyType === 'ec'
      ? seq(OID_DER.ecdsaWithSha256)
      : seq(OID_DER.rsaEncryption, derNull());
  const signerInfo = seq(
    integer(1),
    seq(Buffer.from(cert.issuer), tlv(TAG.INTEGER, Buffer.from(cert.serial))),
    digestAlgorithm,
    signedAttrs,
    signatureAlgorithm,
    octetString(signature),
  );
  const body = seq(
    integer(1),
    setOf(digestAlgorithm),
    encap,
    ...(o.certificates.length > 0 ? [tlv(ctx(0), ...o.certificates)] : []),
    setOf(signerInfo),
  );
  return seq(OID_DER.signedData, explicit(0, body));
}

/** A "degenerate" PKCS#7: certificates only, no content, no signer (the CertRep's payload, GetCACert's RA form). */
export function certsOnly(certificates: Uint8Array[]): Buffer {
  const body = seq(integer(1), tlv(TAG.SET), seq(OID_DER.data), tlv(ctx(0), ...certificates), tlv(TAG.SET));
  return seq(OID_DER.signedData, explicit(0, body));
}

/** The certificates of a degenerate PKCS#7. */
export function certsOf(der: Uint8Array): Buffer[] {
  const buf = Buffer.from(der);
  try {
    const info = readTlv(buf, 0);
    const sd = children(buf, children(buf, info)[1]!)[0]!;
    const set = children(buf, sd)
      .slice(3)
      .find((f) => f.tag === ctx(0));
    return set ? children(buf, set).map((c) => Buffer.from(whole(buf, c))) : [];
  } catch (err) {
    throw new ScepError(`unreadable certificate list: ${(err as Error).message}`);
  }
}

/** The CertRep (RFC 8894 §3.3.2): signed by the CA, its envelope (on success) sealed to the requester. */
export function certRep(o: {
  /** The SCEP service's certificate and key. */
  signer: Signer;
  /** Sent with the answer: the signer's certificate and its CA. */
  certificates: Uint8Array[];
  status: PkiStatus;
  failInfo?: FailInfo;
  transactionId: string;
  recipientNonce: Buffer | null;
  senderNonce: Buffer;
  /** On SUCCESS: the pkcsPKIEnvelope. */
  envelope?: Buffer;
  digest?: HashName;
}): Buffer {
  const attributes = [
    attribute(SCEP_OID.messageType, printable(MESSAGE_TYPE.CertRep)),
    attribute(SCEP_OID.pkiStatus, printable(PKI_STATUS[o.status])),
    attribute(SCEP_OID.transactionID, printable(o.transactionId)),
    attribute(SCEP_OID.senderNonce, octetString(o.senderNonce)),
  ];
  if (o.recipientNonce) attributes.push(attribute(SCEP_OID.recipientNonce, octetString(o.recipientNonce)));
  if (o.status === 'FAILURE')
    attributes.push(attribute(SCEP_OID.failInfo, printable(FAIL_INFO[o.failInfo ?? 'badRequest'])));
  return signedData({
    // A FAILURE or PENDING carries no pkcsPKIEnvelope, but an empty content rather than none:
    // OpenSSL's PKCS7_verify (certmonger, sscep) refuses a SignedData without content.
    content: o.status === 'SUCCESS' ? (o.envelope ?? Buffer.alloc(0)) : Buffer.alloc(0),
    signer: o.signer,
    certificates: o.certificates,
    attributes,
    ...(o.digest ? { digest: o.digest } : {}),
  });
}

/** A PKCSReq (RFC 8894 §3.3.1) as a client sends it: the CSR sealed to the CA, signed by `signer`. */
export function pkcsReq(o: {
  csrDer: Uint8Array;
  caCertDer: Uint8Array;
  signer: Signer;
  transactionId: string;
  senderNonce: Buffer;
}): Buffer {
  const envelope = sealEnvelope(o.csrDer, o.caCertDer, forge.pki.oids['aes128-CBC']);
  return signedData({
    content: envelope,
    signer: o.signer,
    certificates: [o.signer.certDer],
    attributes: [
      attribute(SCEP_OID.messageType, printable(MESSAGE_TYPE.PKCSReq)),
      attribute(SCEP_OID.transactionID, printable(o.transactionId)),
      attribute(SCEP_OID.senderNonce, octetString(o.senderNonce)),
    ],
  });
}

export const PKI_STATUS_BY_VALUE = new Map(Object.entries(PKI_STATUS).map(([k, v]) => [v, k as PkiStatus]));
export const FAIL_INFO_BY_VALUE = new Map(Object.entries(FAIL_INFO).map(([k, v]) => [v, k as FailInfo]));

// ---- PKCS#10 ------------------------------------------------------------------------------

export interface CsrFields {
  /** SubjectPublicKeyInfo DER. */
  spki: Buffer;
  commonName: string | null;
  challengePassword: string | null;
}

/** Reads a PKCS#10 request and checks its self-signature (proof of possession of the key). */
export function readCsr(der: Uint8Array): CsrFields {
  const buf = Buffer.from(der);
  try {
    const req = need(readTlv(buf, 0), TAG.SEQUENCE, 'CertificationRequest');
    if (req.end !== buf.length) throw new ScepError('malformed CSR: trailing bytes');
    const [info, sigAlg, sig] = children(buf, req);
    const infoTlv = need(info, TAG.SEQUENCE, 'CertificationRequestInfo');
    const [, subject, spkiTlv, attrs] = children(buf, infoTlv);
    const spki = Buffer.from(whole(buf, need(spkiTlv, TAG.SEQUENCE, 'subjectPKInfo')));
    const algOid = oidHex(
      buf,
      need(children(buf, need(sigAlg, TAG.SEQUENCE, 'signature algorithm'))[0], TAG.OID, 'OID'),
    );
    const hash = SIGNATURE_HASH.get(algOid);
    if (!hash) throw new ScepError('unsupported CSR signature algorithm', 'badAlg');
    const sigBits = content(buf, need(sig, TAG.BIT_STRING, 'CSR signature')).subarray(1);
    const key = createPublicKey({ key: spki, format: 'der', type: 'spki' });
    if (!verify(hash, whole(buf, infoTlv), key, sigBits))
      throw new ScepError('the CSR signature does not verify', 'badMessageCheck');

    let commonName: string | null = null;
    for (const rdn of subject ? children(buf, need(subject, TAG.SEQUENCE, 'subject')) : []) {
      for (const atv of children(buf, rdn)) {
        const [type, value] = children(buf, atv);
        if (type && value && oidHex(buf, type) === oid(SCEP_OID.commonName).subarray(2).toString('hex'))
          commonName = Buffer.from(content(buf, value)).toString('utf8');
      }
    }
    let challengePassword: string | null = null;
    if (attrs && attrs.tag === ctx(0)) {
      for (const attr of children(buf, attrs)) {
        const [type, values] = children(buf, attr);
        if (!type || type.tag !== TAG.OID || oidHex(buf, type) !== HEX.challengePassword || !values) continue;
        const value = children(buf, values)[0];
        if (value) challengePassword = Buffer.from(content(buf, value)).toString('utf8');
      }
    }
    return { spki, commonName, challengePassword };
  } catch (err) {
    if (err instanceof ScepError) throw err;
    throw new ScepError(`unreadable CSR: ${(err as Error).message}`);
  }
}

/** A PKCS#10 request signed with `key` (SHA-256), with a challengePassword. */
export function buildCsr(o: {
  key: KeyObject;
  spki: Uint8Array;
  commonName: string;
  challenge: string;
}): Buffer {
  const name = seq(
    setOf(seq(oid(SCEP_OID.commonName), tlv(TAG.UTF8_STRING, Buffer.from(o.commonName, 'utf8')))),
  );
  const attrs = tlv(
    ctx(0),
    seq(oid(SCEP_OID.challengePassword), setOf(tlv(TAG.UTF8_STRING, Buffer.from(o.challenge, 'utf8')))),
  );
  const info = seq(integer(0), name, Buffer.from(o.spki), attrs);
  const alg =
    o.key.asymmetricKeyType === 'ec'
      ? seq(OID_DER.ecdsaWithSha256)
      : seq(OID_DER.sha256WithRSAEncryption, derNull());
  const signature = sign('sha256', info, o.key);
  return seq(info, alg, tlv(TAG.BIT_STRING, Buffer.from([0]), signature));
}

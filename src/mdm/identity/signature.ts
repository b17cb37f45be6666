/**
 * Verification of the `Mdm-Signature` header: base64 of a detached CMS SignedData (RFC 5652)
 * over the raw request body, carrying the device's certificate.
 *
 * This runs on every MDM request, so it parses with the offset-keeping reader in der.ts and
 * leaves the cryptography to node:crypto; pkijs (~180 checks/s) and OpenSSL serve as the test
 * oracles. The input is attacker-controlled: every path ends in a `SignatureCheck`, never an
 * exception.
 */
import { createHash, verify as cryptoVerify, X509Certificate } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import {
  children,
  ctx,
  ctxPrim,
  DerError,
  octets,
  oidHex,
  oidToDotted,
  readTlv,
  TAG,
  tlv,
  whole,
} from './der.ts';
import type { Tlv } from './der.ts';
import { DIGEST_BY_OID_HEX, OID, OID_HEX } from './oids.ts';
import type { HashName } from './oids.ts';
import { certFields } from './x509.ts';
import type { CertFields } from './x509.ts';

export type SignatureCheck =
  | { ok: true; fingerprintSha256: string; subject: string; certPem: string; notAfter: Date }
  | { ok: false; reason: string };

/** The fields a signer identifier is matched against (copies: nothing keeps a request's buffer). */
type SignerIds = Pick<CertFields, 'issuer' | 'serial' | 'subjectKeyId'>;

/** A signer certificate that chains to the device CA; cached by its DER bytes. */
interface TrustedSigner {
  ids: SignerIds;
  fingerprintSha256: string;
  publicKey: KeyObject;
  keyType: string | undefined;
  subject: string;
  certPem: string;
  notBefore: Date;
  notAfter: Date;
}

type SignatureKind = { kind: 'rsa' | 'ecdsa'; hash: HashName | undefined };

const SIGNATURE_ALGORITHMS: ReadonlyMap<string, SignatureKind> = new Map([
  [OID_HEX.rsaEncryption, { kind: 'rsa', hash: undefined }],
  [OID_HEX.sha1WithRSAEncryption, { kind: 'rsa', hash: 'sha1' }],
  [OID_HEX.sha256WithRSAEncryption, { kind: 'rsa', hash: 'sha256' }],
  [OID_HEX.sha384WithRSAEncryption, { kind: 'rsa', hash: 'sha384' }],
  [OID_HEX.sha512WithRSAEncryption, { kind: 'rsa', hash: 'sha512' }],
  // Some encoders name the key type instead of the signature algorithm for ECDSA.
  [OID_HEX.ecPublicKey, { kind: 'ecdsa', hash: undefined }],
  [OID_HEX.ecdsaWithSha1, { kind: 'ecdsa', hash: 'sha1' }],
  [OID_HEX.ecdsaWithSha256, { kind: 'ecdsa', hash: 'sha256' }],
  [OID_HEX.ecdsaWithSha384, { kind: 'ecdsa', hash: 'sha384' }],
  [OID_HEX.ecdsaWithSha512, { kind: 'ecdsa', hash: 'sha512' }],
]);

/** HTTP servers cap headers far below this; it only bounds the work on absurd input. */
const MAX_HEADER_LENGTH = 64 * 1024;
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

class Refused extends Error {}
const refuse = (reason: string): never => {
  throw new Refused(reason);
};

function child(buf: Uint8Array, parent: Tlv, index: number, tag: number, what: string): Tlv {
  const found = children(buf, parent)[index];
  if (!found || found.tag !== tag) return refuse(`malformed CMS: ${what} missing`);
  return found;
}

/**
 * A copy in memory of its own. `Buffer.from(bytes)` of a few bytes is carved from Node's shared
 * 8 KB pool, and a cache entry kept for months keeps the whole slab alive with it: 10,000 cached
 * signers held ~78 MB that way (bench/scale.bench.ts, heap snapshot).
 */
const ownCopy = (bytes: Uint8Array): Uint8Array => new Uint8Array(bytes);

const sameBytes = (a: Uint8Array, b: Uint8Array): boolean =>
  Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(b);

export class MdmSignatureVerifier {
  /** The CA that issues identities now and the earlier ones that still verify devices (decision 0023). */
  readonly #cas: readonly X509Certificate[];
  readonly #cacheSize: number;
  /**
   * Keyed by the certificate's DER bytes (as a latin1 string): a device's next message finds its
   * certificate here without parsing it, hashing it or checking its chain again.
   */
  readonly #trusted = new Map<string, TrustedSigner>();

  constructor(caCertPem: string | readonly string[], options?: { cacheSize?: number }) {
    const pems = typeof caCertPem === 'string' ? [caCertPem] : caCertPem;
    if (pems.length === 0) throw new Error('no device CA to verify signatures with');
    this.#cas = pems.map((pem) => new X509Certificate(pem));
    this.#cacheSize = Math.max(0, options?.cacheSize ?? 10_000);
  }

  verify(body: Uint8Array, mdmSignatureHeader: string | undefined, now: Date): SignatureCheck {
    try {
      const pending = this.#prepare(body, mdmSignatureHeader);
      const { hash, signed, signer, signature } = pending;
      return conclude(pending, cryptoVerify(hash, signed, signer.publicKey, signature), now);
    } catch (err) {
      return refusalOf(err);
    }
  }

  /**
   * The same check, with the public-key operation (RSA or ECDSA: most of a check's time) run in
   * libuv's thread pool, so the event loop serves other requests meanwhile and a second core does
   * the arithmetic. Parsing and the cached chain check stay on the calling thread.
   */
  verifyAsync(body: Uint8Array, mdmSignatureHeader: string | undefined, now: Date): Promise<SignatureCheck> {
    let pending: Pending;
    try {
      pending = this.#prepare(body, mdmSignatureHeader);
    } catch (err) {
      return Promise.resolve(refusalOf(err));
    }
    return new Promise((resolve) => {
      try {
        const { hash, signed, signer, signature } = pending;
        cryptoVerify(hash, signed, signer.publicKey, signature, (err, valid) => {
          resolve(err ? refusalOf(err) : conclude(pending, valid, now));
        });
      } catch (err) {
        resolve(refusalOf(err));
      }
    });
  }

  /** Everything but the public-key operation; throws the refusal. */
  #prepare(body: Uint8Array, header: string | undefined): Pending {
    if (header === undefined || header.trim() === '') return refuse('no Mdm-Signature header');
    if (header.length > MAX_HEADER_LENGTH) return refuse('Mdm-Signature header is too large');
    // Decoding and encoding again is cheaper than scanning ~3 KB with patterns; a header that does
    // not come back the same (whitespace, unusual padding bits, not base64 at all) takes the long way.
    let der = Buffer.from(header, 'base64');
    if (der.toString('base64') !== header) {
      const compact = header.replace(/\s+/g, '');
      if (compact.length % 4 !== 0 || !BASE64.test(compact))
        return refuse('Mdm-Signature is not valid base64');
      der = Buffer.from(compact, 'base64');
    }
    if (der.length === 0) return refuse('Mdm-Signature is not valid base64');

    // ContentInfo ::= SEQUENCE { contentType, [0] EXPLICIT content }
    const contentInfo = readTlv(der, 0);
    if (contentInfo.tag !== TAG.SEQUENCE) return refuse('Mdm-Signature is not a CMS ContentInfo');
    if (contentInfo.end !== der.length) return refuse('malformed CMS: trailing bytes after the ContentInfo');
    const contentType = child(der, contentInfo, 0, TAG.OID, 'contentType');
    if (oidHex(der, contentType) !== OID_HEX.signedData)
      return refuse('Mdm-Signature is not a CMS SignedData');
    const signedData = child(
      der,
      child(der, contentInfo, 1, ctx(0), 'content'),
      0,
      TAG.SEQUENCE,
      'SignedData',
    );

    // SignedData ::= SEQUENCE { version, digestAlgorithms SET, encapContentInfo, [0] certificates OPTIONAL,
    //                           [1] crls OPTIONAL, signerInfos SET }
    const sdFields = children(der, signedData);
    const encap = sdFields[2];
    const signerInfos = sdFields[sdFields.length - 1];
    if (
      !encap ||
      encap.tag !== TAG.SEQUENCE ||
      !signerInfos ||
      signerInfos.tag !== TAG.SET ||
      sdFields.length < 4
    ) {
      return refuse('malformed CMS: incomplete SignedData');
    }
    const certificates = sdFields.slice(3, -1).find((f) => f.tag === ctx(0));
    const [eContentTypeTlv, eContent] = children(der, encap);
    if (!eContentTypeTlv || eContentTypeTlv.tag !== TAG.OID)
      return refuse('malformed CMS: eContentType missing');
    const eContentType = oidHex(der, eContentTypeTlv);
    if (eContent) {
      // Devices send the detached form; an attached copy is acceptable only if it is the body itself.
      const [inner] = children(der, eContent);
      if (!inner || !sameBytes(octets(der, inner), body))
        return refuse('the signature carries content other than the body');
    }

    const signers = children(der, signerInfos);
    if (signers.length !== 1) return refuse(`expected one signer, found ${signers.length}`);
    const signerInfo = signers[0]!;
    // SignerInfo ::= SEQUENCE { version, sid, digestAlgorithm, [0] signedAttrs OPTIONAL,
    //                           signatureAlgorithm, signature, [1] unsignedAttrs OPTIONAL }
    const siFields = children(der, signerInfo);
    const sid = siFields[1];
    const digestAlgorithm = siFields[2];
    let next = 3;
    const signedAttrs = siFields[next]?.tag === ctx(0) ? siFields[next++] : undefined;
    const signatureAlgorithm = siFields[next++];
    const signatureValue = siFields[next];
    if (
      !sid ||
      !digestAlgorithm ||
      !signatureAlgorithm ||
      !signatureValue ||
      (signatureValue.tag !== TAG.OCTET_STRING && signatureValue.tag !== TAG.OCTET_STRING_CONSTRUCTED)
    ) {
      return refuse('malformed CMS: incomplete SignerInfo');
    }

    const digestOid = oidHex(der, child(der, digestAlgorithm, 0, TAG.OID, 'digestAlgorithm'));
    const digestName = DIGEST_BY_OID_HEX.get(digestOid);
    if (!digestName) return refuse(`unsupported digest algorithm ${oidToDotted(digestOid)}`);
    const sigOid = oidHex(der, child(der, signatureAlgorithm, 0, TAG.OID, 'signatureAlgorithm'));
    const sigKind = SIGNATURE_ALGORITHMS.get(sigOid);
    if (!sigKind) return refuse(`unsupported signature algorithm ${oidToDotted(sigOid)}`);

    const signerCert = this.#signerCertificate(der, certificates, sid);

    // What the signature covers: the signed attributes as a SET (RFC 5652 §5.4), or the body itself.
    let signed: Uint8Array;
    if (signedAttrs) {
      const digest = createHash(digestName).update(body).digest();
      this.#checkSignedAttributes(der, signedAttrs, digest, eContentType);
      signed = retagAsSet(der, signedAttrs);
    } else {
      if (eContentType !== OID_HEX.data)
        return refuse('signature without signed attributes over non-data content');
      signed = body;
    }

    const signer = this.#trustedSigner(signerCert);
    const expectedKey = sigKind.kind === 'rsa' ? 'rsa' : 'ec';
    if (signer.keyType !== expectedKey) {
      return refuse(
        `signature algorithm ${oidToDotted(sigOid)} does not match the signer's ${signer.keyType ?? 'unknown'} key`,
      );
    }
    return { hash: sigKind.hash ?? digestName, signed, signer, signature: octets(der, signatureValue) };
  }

  /**
   * The certificate the SignerInfo names (issuerAndSerialNumber or subjectKeyIdentifier) — never
   * simply the first one, since whoever builds the message chooses what else to include.
   */
  #signerCertificate(der: Buffer, certificates: Tlv | undefined, sid: Tlv): SignerCandidate {
    let matches: (c: SignerIds) => boolean;
    if (sid.tag === TAG.SEQUENCE) {
      const [issuer, serial] = children(der, sid);
      if (!issuer || issuer.tag !== TAG.SEQUENCE || !serial || serial.tag !== TAG.INTEGER) {
        return refuse('malformed CMS: issuerAndSerialNumber');
      }
      const issuerBytes = whole(der, issuer);
      const serialBytes = der.subarray(serial.contentStart, serial.contentEnd);
      matches = (c) => sameBytes(c.serial, serialBytes) && sameBytes(c.issuer, issuerBytes);
    } else if (sid.tag === ctxPrim(0) || sid.tag === ctx(0)) {
      const keyId = octets(der, sid);
      matches = (c) => c.subjectKeyId !== undefined && sameBytes(c.subjectKeyId, keyId);
    } else {
      return refuse('malformed CMS: unknown signer identifier');
    }
    const found: SignerCandidate[] = [];
    for (const entry of certificates ? children(der, certificates, 64) : []) {
      // Other CertificateChoices (attribute certificates, [3] other) cannot sign.
      if (entry.tag !== TAG.SEQUENCE) continue;
      const key = der.toString('latin1', entry.start, entry.end);
      const trusted = this.#trusted.get(key);
      const ids = trusted?.ids ?? certFields(der, entry.start, entry.end);
      if (matches(ids) && !found.some((f) => f.key === key))
        found.push({ key, der: der.subarray(entry.start, entry.end), trusted });
    }
    if (found.length === 0) return refuse('no certificate in the signature matches the signer');
    if (found.length > 1) return refuse('several certificates in the signature match the signer');
    return found[0]!;
  }

  #checkSignedAttributes(der: Buffer, signedAttrs: Tlv, digest: Buffer, eContentType: string): void {
    let messageDigest: Uint8Array | undefined;
    let contentType: string | undefined;
    for (const attribute of children(der, signedAttrs, 64)) {
      if (attribute.tag !== TAG.SEQUENCE) return refuse('malformed CMS: signed attribute');
      const [type, values] = children(der, attribute);
      if (!type || !values || values.tag !== TAG.SET) return refuse('malformed CMS: signed attribute');
      const id = oidHex(der, type);
      if (id !== OID_HEX.messageDigest && id !== OID_HEX.contentType) continue;
      const list = children(der, values);
      // RFC 5652 §11: each of these attributes has exactly one value and appears once.
      if (list.length !== 1) return refuse('malformed CMS: signed attribute must have exactly one value');
      const value = list[0]!;
      if (id === OID_HEX.messageDigest) {
        if (messageDigest !== undefined) return refuse('malformed CMS: repeated messageDigest attribute');
        if (value.tag !== TAG.OCTET_STRING)
          return refuse('malformed CMS: messageDigest is not an OCTET STRING');
        messageDigest = octets(der, value);
      } else {
        if (contentType !== undefined) return refuse('malformed CMS: repeated contentType attribute');
        contentType = oidHex(der, value);
      }
    }
    if (messageDigest === undefined) return refuse('signed attributes lack messageDigest');
    if (contentType === undefined) return refuse('signed attributes lack contentType');
    if (contentType !== eContentType) return refuse('contentType attribute does not match the content');
    if (!sameBytes(messageDigest, digest)) return refuse('message digest does not match the body');
  }

  #trustedSigner(cert: SignerCandidate): TrustedSigner {
    const cached = cert.trusted;
    if (cached) {
      // Re-insert so the map's iteration order is least-recently-used first.
      this.#trusted.delete(cert.key);
      this.#trusted.set(cert.key, cached);
      return cached;
    }
    const fingerprint = createHash('sha256').update(cert.der).digest('hex');
    let x509: X509Certificate;
    let fields: CertFields;
    try {
      x509 = new X509Certificate(cert.der);
      fields = certFields(cert.der);
    } catch {
      return refuse('signer certificate is unreadable');
    }
    if (!this.#cas.some((ca) => x509.checkIssued(ca) && x509.verify(ca.publicKey))) {
      return refuse('signer certificate not issued by the haishin device CA');
    }
    if (x509.ca) return refuse('signer certificate is a CA certificate');
    // `keyUsage` is Node 20's name for the extended key usage OIDs.
    if (!(x509.keyUsage ?? []).includes(OID.clientAuth)) return refuse('signer certificate lacks clientAuth');
    const notBefore = new Date(x509.validFrom);
    const notAfter = new Date(x509.validTo);
    if (Number.isNaN(notBefore.getTime()) || Number.isNaN(notAfter.getTime())) {
      return refuse('signer certificate has unreadable validity dates');
    }
    const trusted: TrustedSigner = {
      ids: {
        issuer: ownCopy(fields.issuer),
        serial: ownCopy(fields.serial),
        subjectKeyId: fields.subjectKeyId && ownCopy(fields.subjectKeyId),
      },
      fingerprintSha256: fingerprint,
      publicKey: x509.publicKey,
      keyType: x509.publicKey.asymmetricKeyType,
      subject: x509.subject,
      certPem: x509.toString(),
      notBefore,
      notAfter,
    };
    // Only certificates our CA issued enter the cache, so forged ones cannot push real devices out.
    if (this.#cacheSize > 0) {
      if (this.#trusted.size >= this.#cacheSize) {
        const oldest = this.#trusted.keys().next();
        if (!oldest.done) this.#trusted.delete(oldest.value);
      }
      this.#trusted.set(cert.key, trusted);
    }
    return trusted;
  }
}

/** The certificate a SignerInfo names: its DER, and what the cache knows of it. */
interface SignerCandidate {
  key: string;
  der: Uint8Array;
  trusted: TrustedSigner | undefined;
}

/** A parsed message whose signature is still to be checked with the (trusted) signer's key. */
interface Pending {
  hash: HashName;
  signed: Uint8Array;
  signer: TrustedSigner;
  signature: Uint8Array;
}

/** The outcome once the signature is checked: then the certificate's validity window. */
function conclude(pending: Pending, valid: boolean, now: Date): SignatureCheck {
  const { signer } = pending;
  if (!valid) return { ok: false, reason: 'signature does not verify with the signer certificate' };
  if (Number.isNaN(now.getTime()))
    return { ok: false, reason: 'no valid time to check the certificate against' };
  if (now.getTime() < signer.notBefore.getTime())
    return { ok: false, reason: `signer certificate not valid before ${signer.notBefore.toISOString()}` };
  if (now.getTime() > signer.notAfter.getTime())
    return { ok: false, reason: `signer certificate expired at ${signer.notAfter.toISOString()}` };
  return {
    ok: true,
    fingerprintSha256: signer.fingerprintSha256,
    subject: signer.subject,
    certPem: signer.certPem,
    notAfter: signer.notAfter,
  };
}

function refusalOf(err: unknown): SignatureCheck {
  if (err instanceof Refused) return { ok: false, reason: err.message };
  if (err instanceof DerError) return { ok: false, reason: `malformed CMS: ${err.message}` };
  // node:crypto rejecting a key or signature encoding lands here too: still a refusal.
  return {
    ok: false,
    reason: `unreadable Mdm-Signature (${err instanceof Error ? err.message : String(err)})`,
  };
}

/** The signed attributes re-encoded with the universal SET tag the signature was computed over. */
function retagAsSet(der: Buffer, signedAttrs: Tlv): Buffer {
  if (!signedAttrs.indefinite) {
    const copy = Buffer.from(der.subarray(signedAttrs.start, signedAttrs.end));
    copy[0] = TAG.SET;
    return copy;
  }
  // A streaming encoder may have used an indefinite length here; the signature is over DER.
  return tlv(TAG.SET, der.subarray(signedAttrs.contentStart, signedAttrs.contentEnd));
}

/**
 * PKCS#12 (RFC 7292) for device identities.
 *
 * Written here rather than with node-forge's `toPkcs12Asn1` because forge stores certificates in
 * an unencrypted bag, and Apple's importer has been seen rejecting exactly such files while
 * taking OpenSSL's (forge issues #53 and #985). The layout written is the one
 * `openssl pkcs12 -export -certpbe PBE-SHA1-3DES -keypbe PBE-SHA1-3DES -macalg sha1` produces:
 * the certificates in an EncryptedData and the key in a pkcs8ShroudedKeyBag, both
 * pbeWithSHAAnd3-KeyTripleDES-CBC, and a SHA-1 MAC — the combination iOS accepts in a
 * `com.apple.security.pkcs12` payload (it refuses AES/PBES2 and SHA-256 MACs on older releases).
 *
 * The reader also takes OpenSSL 3's default output (PBES2 with AES, SHA-256 MAC).
 */
import {
  createCipheriv,
  createDecipheriv,
  createHash,
  createHmac,
  pbkdf2Sync,
  randomBytes,
  timingSafeEqual,
} from 'node:crypto';
import {
  bmpString,
  children,
  content,
  ctx,
  ctxPrim,
  DerError,
  derNull,
  expectTlv,
  explicit,
  integer,
  octets,
  octetString,
  oidHex,
  readSmallInteger,
  seq,
  setOf,
  TAG,
  tlv,
  whole,
} from './der.ts';
import type { Tlv } from './der.ts';
import { DIGEST_BY_OID_HEX, OID_DER, OID_HEX } from './oids.ts';
import type { HashName } from './oids.ts';

export class Pkcs12Error extends Error {
  override name = 'Pkcs12Error';
}

const HASH_SIZES: Record<HashName, { u: number; v: number }> = {
  sha1: { u: 20, v: 64 },
  sha256: { u: 32, v: 64 },
  sha384: { u: 48, v: 128 },
  sha512: { u: 64, v: 128 },
};

/** Upper bound on any key-derivation iteration count read from a file. */
const MAX_ITERATIONS = 1_000_000;

/** RFC 7292 B.1: the password as a BMPString with a two-byte terminator. */
function bmpPassword(password: string): Buffer {
  const out = Buffer.alloc(password.length * 2 + 2);
  for (let i = 0; i < password.length; i++) out.writeUInt16BE(password.charCodeAt(i), i * 2);
  return out;
}

/**
 * SHA-1 applied `times` times to a 20-byte value. The PKCS#12 KDF spends all its time here, and
 * one node:crypto call per 20-byte hash costs ~0.9 µs of call overhead; an in-process
 * single-block SHA-1 is several times faster, which matters when a simulator opens thousands of
 * identities.
 */
function sha1Repeat(seed: Uint8Array, times: number): Buffer {
  const w = new Int32Array(80);
  let h0 = (seed[0]! << 24) | (seed[1]! << 16) | (seed[2]! << 8) | seed[3]!;
  let h1 = (seed[4]! << 24) | (seed[5]! << 16) | (seed[6]! << 8) | seed[7]!;
  let h2 = (seed[8]! << 24) | (seed[9]! << 16) | (seed[10]! << 8) | seed[11]!;
  let h3 = (seed[12]! << 24) | (seed[13]! << 16) | (seed[14]! << 8) | seed[15]!;
  let h4 = (seed[16]! << 24) | (seed[17]! << 16) | (seed[18]! << 8) | seed[19]!;
  for (let n = 0; n < times; n++) {
    w[0] = h0;
    w[1] = h1;
    w[2] = h2;
    w[3] = h3;
    w[4] = h4;
    w[5] = 0x80000000 | 0;
    for (let i = 6; i < 15; i++) w[i] = 0;
    w[15] = 160; // message length in bits
    for (let i = 16; i < 80; i++) {
      const x = w[i - 3]! ^ w[i - 8]! ^ w[i - 14]! ^ w[i - 16]!;
      w[i] = (x << 1) | (x >>> 31);
    }
    let a = 0x67452301;
    let b = 0xefcdab89 | 0;
    let c = 0x98badcfe | 0;
    let d = 0x10325476;
    let e = 0xc3d2e1f0 | 0;
    for (let i = 0; i < 80; i++) {
      let f: number;
      let k: number;
      if (i < 20) {
        f = (b & c) | (~b & d);
        k = 0x5a827999;
      } else if (i < 40) {
        f = b ^ c ^ d;
        k = 0x6ed9eba1;
      } else if (i < 60) {
        f = (b & c) | (b & d) | (c & d);
        k = 0x8f1bbcdc | 0;
      } else {
        f = b ^ c ^ d;
        k = 0xca62c1d6 | 0;
      }
      const t = (((a << 5) | (a >>> 27)) + f + e + k + w[i]!) | 0;
      e = d;
      d = c;
      c = (b << 30) | (b >>> 2);
      b = a;
      a = t;
    }
    h0 = (0x67452301 + a) | 0;
    h1 = ((0xefcdab89 | 0) + b) | 0;
    h2 = ((0x98badcfe | 0) + c) | 0;
    h3 = (0x10325476 + d) | 0;
    h4 = ((0xc3d2e1f0 | 0) + e) | 0;
  }
  const out = Buffer.alloc(20);
  out.writeInt32BE(h0, 0);
  out.writeInt32BE(h1, 4);
  out.writeInt32BE(h2, 8);
  out.writeInt32BE(h3, 12);
  out.writeInt32BE(h4, 16);
  return out;
}

function repeatTo(src: Uint8Array, length: number): Buffer {
  const out = Buffer.alloc(length);
  if (src.length > 0) for (let i = 0; i < length; i++) out[i] = src[i % src.length]!;
  return out;
}

/** RFC 7292 Appendix B.2 key derivation. `id`: 1 key, 2 IV, 3 MAC key. */
export function pkcs12Kdf(
  hash: HashName,
  password: string,
  salt: Uint8Array,
  id: 1 | 2 | 3,
  iterations: number,
  length: number,
): Buffer {
  if (!(iterations >= 1 && iterations <= MAX_ITERATIONS))
    throw new Pkcs12Error(`iteration count ${iterations} out of range`);
  const { u, v } = HASH_SIZES[hash];
  const pw = bmpPassword(password);
  const I = Buffer.concat([
    repeatTo(salt, v * Math.ceil(salt.length / v)),
    repeatTo(pw, v * Math.ceil(pw.length / v)),
  ]);
  const D = Buffer.alloc(v, id);
  const blocks: Buffer[] = [];
  for (let produced = 0; produced < length; produced += u) {
    let A: Buffer = createHash(hash).update(D).update(I).digest();
    if (hash === 'sha1') {
      A = sha1Repeat(A, iterations - 1);
    } else {
      for (let i = 1; i < iterations; i++) A = createHash(hash).update(A).digest();
    }
    blocks.push(A);
    if (produced + u >= length) break;
    const B = repeatTo(A, v);
    // I_j = (I_j + B + 1) mod 2^(8v) for each v-byte block of I.
    for (let j = 0; j < I.length; j += v) {
      let carry = 1;
      for (let k = v - 1; k >= 0; k--) {
        carry += I[j + k]! + B[k]!;
        I[j + k] = carry & 0xff;
        carry >>>= 8;
      }
    }
  }
  return Buffer.concat(blocks).subarray(0, length);
}

function tripleDesPbe(
  password: string,
  iterations: number,
  plaintext: Uint8Array,
): { algorithm: Buffer; ciphertext: Buffer } {
  const salt = randomBytes(8);
  const key = pkcs12Kdf('sha1', password, salt, 1, iterations, 24);
  const iv = pkcs12Kdf('sha1', password, salt, 2, iterations, 8);
  const cipher = createCipheriv('des-ede3-cbc', key, iv);
  const ciphertext = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return {
    algorithm: seq(OID_DER.pbeWithSha1And3KeyTripleDesCbc, seq(octetString(salt), integer(iterations))),
    ciphertext,
  };
}

export interface Pkcs12EncodeInput {
  /** PKCS#8 PrivateKeyInfo DER. */
  keyPkcs8: Uint8Array;
  /** The certificate of that key. */
  cert: Uint8Array;
  /** Further certificates (the issuing CA), stored without attributes. */
  chain?: Uint8Array[];
  password: string;
  friendlyName?: string;
  iterations?: number;
}

export function encodePkcs12(input: Pkcs12EncodeInput): Buffer {
  const iterations = input.iterations ?? 2048;
  // localKeyID = SHA-1 of the certificate, as OpenSSL does: it pairs the key with its certificate.
  const localKeyId = createHash('sha1').update(input.cert).digest();
  const attrs: Buffer[] = [seq(OID_DER.localKeyId, setOf(octetString(localKeyId)))];
  if (input.friendlyName !== undefined)
    attrs.push(seq(OID_DER.friendlyName, setOf(bmpString(input.friendlyName))));
  const bagAttributes = setOf(...attrs);

  const certBag = (der: Uint8Array, withAttributes: boolean): Buffer =>
    seq(
      OID_DER.certBag,
      explicit(0, seq(OID_DER.x509Certificate, explicit(0, octetString(der)))),
      ...(withAttributes ? [bagAttributes] : []),
    );
  const certSafeContents = seq(
    certBag(input.cert, true),
    ...(input.chain ?? []).map((der) => certBag(der, false)),
  );
  const certs = tripleDesPbe(input.password, iterations, certSafeContents);
  const certInfo = seq(
    OID_DER.encryptedData,
    explicit(0, seq(integer(0), seq(OID_DER.data, certs.algorithm, tlv(ctxPrim(0), certs.ciphertext)))),
  );

  const key = tripleDesPbe(input.password, iterations, input.keyPkcs8);
  const keyBag = seq(
    OID_DER.pkcs8ShroudedKeyBag,
    explicit(0, seq(key.algorithm, octetString(key.ciphertext))),
    bagAttributes,
  );
  const keyInfo = seq(OID_DER.data, explicit(0, octetString(seq(keyBag))));

  const authSafe = seq(certInfo, keyInfo);
  const macSalt = randomBytes(8);
  const macKey = pkcs12Kdf('sha1', input.password, macSalt, 3, iterations, 20);
  const mac = createHmac('sha1', macKey).update(authSafe).digest();
  return seq(
    integer(3),
    seq(OID_DER.data, explicit(0, octetString(authSafe))),
    seq(seq(seq(OID_DER.sha1, derNull()), octetString(mac)), octetString(macSalt), integer(iterations)),
  );
}

export interface Pkcs12Contents {
  /** PKCS#8 PrivateKeyInfo DER of each key found. */
  keys: { pkcs8: Buffer; localKeyId: Buffer | undefined }[];
  certs: { der: Buffer; localKeyId: Buffer | undefined }[];
}

const PRF_BY_OID_HEX: ReadonlyMap<string, HashName> = new Map([
  [OID_HEX.hmacWithSha1, 'sha1'],
  [OID_HEX.hmacWithSha256, 'sha256'],
  [OID_HEX.hmacWithSha384, 'sha384'],
  [OID_HEX.hmacWithSha512, 'sha512'],
]);

const PBES2_CIPHERS: ReadonlyMap<string, { name: string; keyLength: number }> = new Map([
  [OID_HEX.aes128Cbc, { name: 'aes-128-cbc', keyLength: 16 }],
  [OID_HEX.aes192Cbc, { name: 'aes-192-cbc', keyLength: 24 }],
  [OID_HEX.aes256Cbc, { name: 'aes-256-cbc', keyLength: 32 }],
  [OID_HEX.desEde3Cbc, { name: 'des-ede3-cbc', keyLength: 24 }],
]);

function decrypt(buf: Uint8Array, algorithm: Tlv, ciphertext: Uint8Array, password: string): Buffer {
  const [algOid, params] = children(buf, algorithm);
  if (!algOid || !params) throw new Pkcs12Error('encryption algorithm without parameters');
  const id = oidHex(buf, algOid);
  if (id === OID_HEX.pbeWithSha1And3KeyTripleDesCbc) {
    const [salt, iter] = children(buf, params);
    if (!salt || !iter) throw new Pkcs12Error('PKCS#12 PBE parameters incomplete');
    const saltBytes = octets(buf, salt);
    const iterations = readSmallInteger(buf, iter);
    const key = pkcs12Kdf('sha1', password, saltBytes, 1, iterations, 24);
    const iv = pkcs12Kdf('sha1', password, saltBytes, 2, iterations, 8);
    const decipher = createDecipheriv('des-ede3-cbc', key, iv);
    return Buffer.concat([decipher.update(ciphertext), decipher.final()]);
  }
  if (id === OID_HEX.pbes2) {
    const [kdf, scheme] = children(buf, params);
    if (!kdf || !scheme) throw new Pkcs12Error('PBES2 parameters incomplete');
    const [kdfOid, kdfParams] = children(buf, kdf);
    if (!kdfOid || !kdfParams || oidHex(buf, kdfOid) !== OID_HEX.pbkdf2)
      throw new Pkcs12Error('PBES2 without PBKDF2');
    const kdfFields = children(buf, kdfParams);
    const salt = kdfFields[0];
    const iter = kdfFields[1];
    if (!salt || !iter) throw new Pkcs12Error('PBKDF2 parameters incomplete');
    let prf: HashName = 'sha1';
    for (const extra of kdfFields.slice(2)) {
      if (extra.tag !== TAG.SEQUENCE) continue; // keyLength: implied by the cipher
      const [prfOid] = children(buf, extra);
      const found = prfOid ? PRF_BY_OID_HEX.get(oidHex(buf, prfOid)) : undefined;
      if (!found) throw new Pkcs12Error('unsupported PBKDF2 pseudo-random function');
      prf = found;
    }
    const [cipherOid, ivTlv] = children(buf, scheme);
    const cipher = cipherOid ? PBES2_CIPHERS.get(oidHex(buf, cipherOid)) : undefined;
    if (!cipher || !ivTlv) throw new Pkcs12Error('unsupported PBES2 cipher');
    const iterations = readSmallInteger(buf, iter);
    if (iterations > MAX_ITERATIONS) throw new Pkcs12Error(`iteration count ${iterations} out of range`);
    // PBES2 takes the password as bytes (UTF-8), unlike the PKCS#12 KDF's BMPString.
    const key = pbkdf2Sync(
      Buffer.from(password, 'utf8'),
      octets(buf, salt),
      iterations,
      cipher.keyLength,
      prf,
    );
    const decipher = createDecipheriv(cipher.name, key, octets(buf, ivTlv));
    return Buffer.concat([decipher.update(ciphertext), decipher.final()]);
  }
  throw new Pkcs12Error(
    `unsupported PKCS#12 encryption ${id === '2a864886f70d010c0106' ? '(pbeWithSHAAnd40BitRC2-CBC: re-export with 3DES or AES)' : 'algorithm'}`,
  );
}

function localKeyIdOf(buf: Uint8Array, attributes: Tlv | undefined): Buffer | undefined {
  if (!attributes || attributes.tag !== TAG.SET) return undefined;
  for (const attr of children(buf, attributes)) {
    const [attrOid, values] = children(buf, attr);
    if (attrOid && values && oidHex(buf, attrOid) === OID_HEX.localKeyId) {
      const [value] = children(buf, values);
      if (value) return Buffer.from(octets(buf, value));
    }
  }
  return undefined;
}

function readSafeContents(buf: Uint8Array, password: string, out: Pkcs12Contents): void {
  const list = expectTlv(buf, 0, TAG.SEQUENCE, buf.length, 'SafeContents');
  for (const bag of children(buf, list)) {
    const [bagId, bagValue, attributes] = children(buf, bag);
    if (!bagId || !bagValue || bagValue.tag !== ctx(0)) throw new Pkcs12Error('malformed SafeBag');
    const [value] = children(buf, bagValue);
    if (!value) throw new Pkcs12Error('empty SafeBag');
    const localKeyId = localKeyIdOf(buf, attributes);
    const id = oidHex(buf, bagId);
    if (id === OID_HEX.keyBag) {
      out.keys.push({ pkcs8: Buffer.from(whole(buf, value)), localKeyId });
    } else if (id === OID_HEX.pkcs8ShroudedKeyBag) {
      const [algorithm, encrypted] = children(buf, value);
      if (!algorithm || !encrypted) throw new Pkcs12Error('malformed EncryptedPrivateKeyInfo');
      out.keys.push({ pkcs8: decrypt(buf, algorithm, octets(buf, encrypted), password), localKeyId });
    } else if (id === OID_HEX.certBag) {
      const [certType, certValue] = children(buf, value);
      if (!certType || !certValue || oidHex(buf, certType) !== OID_HEX.x509Certificate) continue;
      const [der] = children(buf, certValue);
      if (der) out.certs.push({ der: Buffer.from(octets(buf, der)), localKeyId });
    }
    // Other bag types (CRLs, secrets, nested SafeContents) carry nothing an identity needs.
  }
}

function hashOfMac(oid: string): HashName {
  const hash = DIGEST_BY_OID_HEX.get(oid);
  if (!hash) throw new Pkcs12Error('unsupported PKCS#12 MAC digest');
  return hash;
}

export function decodePkcs12(input: Uint8Array, password: string): Pkcs12Contents {
  const buf = Buffer.from(input.buffer, input.byteOffset, input.byteLength);
  try {
    const pfx = expectTlv(buf, 0, TAG.SEQUENCE, buf.length, 'PFX');
    const [version, authSafeInfo, macData] = children(buf, pfx);
    if (!version || readSmallInteger(buf, version) !== 3 || !authSafeInfo)
      throw new Pkcs12Error('not a PKCS#12 v3 file');
    const [ciType, ciContent] = children(buf, authSafeInfo);
    if (!ciType || !ciContent || oidHex(buf, ciType) !== OID_HEX.data) {
      throw new Pkcs12Error('only password-integrity PKCS#12 files are supported');
    }
    const [authSafeOctets] = children(buf, ciContent);
    if (!authSafeOctets) throw new Pkcs12Error('empty AuthenticatedSafe');
    const authSafe = Buffer.from(octets(buf, authSafeOctets));

    if (macData) {
      const [digestInfo, macSalt, macIter] = children(buf, macData);
      if (!digestInfo || !macSalt) throw new Pkcs12Error('malformed MacData');
      const [digestAlg, digest] = children(buf, digestInfo);
      const [digestOid] = digestAlg ? children(buf, digestAlg) : [];
      if (!digestOid || !digest) throw new Pkcs12Error('malformed MacData');
      const hash = hashOfMac(oidHex(buf, digestOid));
      const iterations = macIter ? readSmallInteger(buf, macIter) : 1;
      const macKey = pkcs12Kdf(hash, password, octets(buf, macSalt), 3, iterations, HASH_SIZES[hash].u);
      const expected = createHmac(hash, macKey).update(authSafe).digest();
      const actual = content(buf, digest);
      if (actual.length !== expected.length || !timingSafeEqual(actual, expected)) {
        throw new Pkcs12Error('PKCS#12 MAC does not verify: wrong password or damaged file');
      }
    }

    const out: Pkcs12Contents = { keys: [], certs: [] };
    const infos = expectTlv(authSafe, 0, TAG.SEQUENCE, authSafe.length, 'AuthenticatedSafe');
    for (const info of children(authSafe, infos)) {
      const [type, body] = children(authSafe, info);
      if (!type || !body) throw new Pkcs12Error('malformed ContentInfo');
      const [inner] = children(authSafe, body);
      if (!inner) throw new Pkcs12Error('empty ContentInfo');
      const typeHex = oidHex(authSafe, type);
      if (typeHex === OID_HEX.data) {
        readSafeContents(Buffer.from(octets(authSafe, inner)), password, out);
      } else if (typeHex === OID_HEX.encryptedData) {
        const [, encryptedContentInfo] = children(authSafe, inner);
        if (!encryptedContentInfo) throw new Pkcs12Error('malformed EncryptedData');
        const [, algorithm, encrypted] = children(authSafe, encryptedContentInfo);
        if (!algorithm || !encrypted) throw new Pkcs12Error('EncryptedData without content');
        readSafeContents(decrypt(authSafe, algorithm, octets(authSafe, encrypted), password), password, out);
      } else {
        throw new Pkcs12Error('public-key-encrypted PKCS#12 content is not supported');
      }
    }
    return out;
  } catch (err) {
    if (err instanceof DerError) throw new Pkcs12Error(`malformed PKCS#12: ${err.message}`);
    if (err instanceof Pkcs12Error) throw err;
    // A wrong password without a MAC shows up as a padding error from the cipher.
    throw new Pkcs12Error(`cannot read PKCS#12: ${(err as Error).message}`);
  }
}

/**
 * A small ASN.1 reader and DER writer for the structures this module handles (CMS, X.509,
 * PKCS#12).
 *
 * The reader keeps byte offsets instead of building a tree: a CMS signature is checked over
 * the exact bytes the signer produced (signed attributes, certificates), so re-encoding a
 * parsed tree, as node-forge does, would both cost time and risk checking different bytes
 * than were signed. It accepts BER indefinite lengths because Apple's CMS encoder (NSS
 * lineage) streams its output; everything is bounds-checked and nesting is capped, since the
 * input comes from the network.
 */

export class DerError extends Error {
  override name = 'DerError';
}

/** One element: `start` is its identifier octet, the content is `contentStart..contentEnd`, `end` is past any end-of-contents. */
export interface Tlv {
  tag: number;
  start: number;
  contentStart: number;
  contentEnd: number;
  end: number;
  indefinite: boolean;
}

export const TAG = {
  BOOLEAN: 0x01,
  INTEGER: 0x02,
  BIT_STRING: 0x03,
  OCTET_STRING: 0x04,
  OCTET_STRING_CONSTRUCTED: 0x24,
  NULL: 0x05,
  OID: 0x06,
  UTF8_STRING: 0x0c,
  PRINTABLE_STRING: 0x13,
  BMP_STRING: 0x1e,
  UTC_TIME: 0x17,
  GENERALIZED_TIME: 0x18,
  SEQUENCE: 0x30,
  SET: 0x31,
} as const;

/** Context-specific tag `[n]`, constructed (explicit tagging, or implicit over a constructed type). */
export const ctx = (n: number): number => 0xa0 | n;
/** Context-specific tag `[n]`, primitive (implicit over a primitive type). */
export const ctxPrim = (n: number): number => 0x80 | n;

const MAX_DEPTH = 40;

export function readTlv(buf: Uint8Array, offset: number, limit: number = buf.length, depth = 0): Tlv {
  if (depth > MAX_DEPTH) throw new DerError('ASN.1 nesting too deep');
  if (offset >= limit) throw new DerError('ASN.1 element missing');
  const tag = buf[offset]!;
  // High-tag-number form never appears in the structures handled here.
  if ((tag & 0x1f) === 0x1f) throw new DerError('unsupported ASN.1 tag');
  let p = offset + 1;
  if (p >= limit) throw new DerError('ASN.1 length missing');
  const first = buf[p++]!;
  const constructed = (tag & 0x20) !== 0;
  if (first === 0x80) {
    if (!constructed) throw new DerError('indefinite length on a primitive ASN.1 element');
    const contentStart = p;
    for (;;) {
      if (p + 2 <= limit && buf[p] === 0 && buf[p + 1] === 0) {
        return { tag, start: offset, contentStart, contentEnd: p, end: p + 2, indefinite: true };
      }
      p = readTlv(buf, p, limit, depth + 1).end;
    }
  }
  let length: number;
  if (first < 0x80) {
    length = first;
  } else {
    const count = first & 0x7f;
    // Four length octets already allow 4 GiB; more is never legitimate here.
    if (count > 4) throw new DerError('ASN.1 length too large');
    if (p + count > limit) throw new DerError('ASN.1 length truncated');
    length = 0;
    for (let i = 0; i < count; i++) length = length * 256 + buf[p++]!;
  }
  const contentEnd = p + length;
  if (contentEnd > limit) throw new DerError('ASN.1 element truncated');
  return { tag, start: offset, contentStart: p, contentEnd, end: contentEnd, indefinite: false };
}

/** Reads an element and checks its tag. */
export function expectTlv(
  buf: Uint8Array,
  offset: number,
  tag: number,
  limit?: number,
  what = 'ASN.1 element',
): Tlv {
  const tlv = readTlv(buf, offset, limit);
  if (tlv.tag !== tag) throw new DerError(`${what}: unexpected tag 0x${tlv.tag.toString(16)}`);
  return tlv;
}

/** The elements inside a constructed element. */
export function children(buf: Uint8Array, parent: Tlv, max = 10_000): Tlv[] {
  if ((parent.tag & 0x20) === 0) throw new DerError('primitive ASN.1 element has no children');
  const out: Tlv[] = [];
  let p = parent.contentStart;
  while (p < parent.contentEnd) {
    const child = readTlv(buf, p, parent.contentEnd);
    out.push(child);
    if (out.length > max) throw new DerError('too many ASN.1 elements');
    p = child.end;
  }
  return out;
}

export const content = (buf: Uint8Array, tlv: Tlv): Uint8Array =>
  buf.subarray(tlv.contentStart, tlv.contentEnd);
export const whole = (buf: Uint8Array, tlv: Tlv): Uint8Array => buf.subarray(tlv.start, tlv.end);

/** The bytes of an OCTET STRING, joining the segments of a BER constructed one. */
export function octets(buf: Uint8Array, tlv: Tlv, depth = 0): Uint8Array {
  if (tlv.tag === TAG.OCTET_STRING || (tlv.tag & 0xe0) === 0x80) return content(buf, tlv);
  if (tlv.tag === TAG.OCTET_STRING_CONSTRUCTED || (tlv.tag & 0xe0) === 0xa0) {
    if (depth > 4) throw new DerError('OCTET STRING segments nested too deep');
    return Buffer.concat(children(buf, tlv).map((c) => octets(buf, c, depth + 1)));
  }
  throw new DerError(`expected an OCTET STRING, got tag 0x${tlv.tag.toString(16)}`);
}

/** Lowercase hex of an OBJECT IDENTIFIER's content octets: cheap to compare against the constants in oids.ts. */
export function oidHex(buf: Uint8Array, tlv: Tlv): string {
  if (tlv.tag !== TAG.OID) throw new DerError('expected an OBJECT IDENTIFIER');
  return Buffer.from(
    buf.buffer,
    buf.byteOffset + tlv.contentStart,
    tlv.contentEnd - tlv.contentStart,
  ).toString('hex');
}

/** Dotted form, for messages only. */
export function oidToDotted(hex: string): string {
  const bytes = Buffer.from(hex, 'hex');
  if (bytes.length === 0) return '(empty)';
  const parts: number[] = [];
  let value = 0;
  for (const b of bytes) {
    value = value * 128 + (b & 0x7f);
    if ((b & 0x80) === 0) {
      if (parts.length === 0) {
        const first = value < 80 ? Math.floor(value / 40) : 2;
        parts.push(first, value - first * 40);
      } else {
        parts.push(value);
      }
      value = 0;
    }
  }
  return parts.join('.');
}

export function readSmallInteger(buf: Uint8Array, tlv: Tlv): number {
  if (tlv.tag !== TAG.INTEGER) throw new DerError('expected an INTEGER');
  const bytes = content(buf, tlv);
  if (bytes.length === 0 || bytes.length > 4 || (bytes[0]! & 0x80) !== 0)
    throw new DerError('INTEGER out of range');
  let v = 0;
  for (const b of bytes) v = v * 256 + b;
  return v;
}

// ---- writer -------------------------------------------------------------------------------

function lengthOctets(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  const bytes: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

export function tlv(tag: number, ...parts: Uint8Array[]): Buffer {
  let length = 0;
  for (const part of parts) length += part.length;
  const header = lengthOctets(length);
  return Buffer.concat([Buffer.from([tag]), header, ...parts], 1 + header.length + length);
}

export const seq = (...parts: Uint8Array[]): Buffer => tlv(TAG.SEQUENCE, ...parts);
/** SET OF in DER order (elements sorted by their encodings). */
export const setOf = (...parts: Uint8Array[]): Buffer => tlv(TAG.SET, ...[...parts].sort(Buffer.compare));
export const octetString = (bytes: Uint8Array): Buffer => tlv(TAG.OCTET_STRING, bytes);
export const derNull = (): Buffer => Buffer.from([TAG.NULL, 0]);
export const explicit = (n: number, ...parts: Uint8Array[]): Buffer => tlv(ctx(n), ...parts);
export const bitString = (bytes: Uint8Array): Buffer => tlv(TAG.BIT_STRING, Buffer.from([0]), bytes);

export function oid(dotted: string): Buffer {
  const arcs = dotted.split('.').map(Number);
  const [a = 0, b = 0, ...rest] = arcs;
  const out: number[] = [];
  for (const arc of [a * 40 + b, ...rest]) {
    const chunk: number[] = [arc & 0x7f];
    for (let v = Math.floor(arc / 128); v > 0; v = Math.floor(v / 128)) chunk.unshift(0x80 | (v & 0x7f));
    out.push(...chunk);
  }
  return tlv(TAG.OID, Buffer.from(out));
}

/** INTEGER from a non-negative number. */
export function integer(n: number): Buffer {
  const bytes: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
  if (bytes.length === 0 || (bytes[0]! & 0x80) !== 0) bytes.unshift(0);
  return tlv(TAG.INTEGER, Buffer.from(bytes));
}

/** INTEGER from unsigned big-endian bytes (a certificate serial). */
export function unsignedInteger(bytes: Uint8Array): Buffer {
  let i = 0;
  while (i < bytes.length - 1 && bytes[i] === 0 && (bytes[i + 1]! & 0x80) === 0) i++;
  const trimmed = bytes.subarray(i);
  return (trimmed[0]! & 0x80) !== 0 ? tlv(TAG.INTEGER, Buffer.from([0]), trimmed) : tlv(TAG.INTEGER, trimmed);
}

export function bmpString(text: string): Buffer {
  const bytes = Buffer.alloc(text.length * 2);
  for (let i = 0; i < text.length; i++) bytes.writeUInt16BE(text.charCodeAt(i), i * 2);
  return tlv(TAG.BMP_STRING, bytes);
}

/** X.509/CMS Time: UTCTime through 2049, GeneralizedTime after (RFC 5280 §4.1.2.5). */
export function time(date: Date): Buffer {
  const iso = date.toISOString(); // 2026-11-23T10:00:00.000Z
  const digits = iso.slice(0, 19).replace(/[-T:]/g, '');
  const year = date.getUTCFullYear();
  if (year >= 1950 && year < 2050) return tlv(TAG.UTC_TIME, Buffer.from(`${digits.slice(2)}Z`, 'latin1'));
  return tlv(TAG.GENERALIZED_TIME, Buffer.from(`${digits}Z`, 'latin1'));
}

/** Base64 PEM armour. */
export function toPem(label: string, der: Uint8Array): string {
  const b64 = Buffer.from(der).toString('base64');
  const lines = b64.match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`;
}

import { createHash } from 'node:crypto';
import { children, content, ctx, DerError, expectTlv, octets, oidHex, TAG, whole } from './der.ts';
import { OID_HEX } from './oids.ts';

/** The parts of a certificate that identify it and its key, as raw DER slices of the input. */
export interface CertFields {
  /** The whole certificate. */
  der: Uint8Array;
  /** Issuer Name, tag and length included. */
  issuer: Uint8Array;
  /** Serial number INTEGER content octets. */
  serial: Uint8Array;
  subject: Uint8Array;
  /** SubjectPublicKeyInfo, tag and length included. */
  spki: Uint8Array;
  subjectKeyId: Uint8Array | undefined;
}

/** Reads a certificate's identifying fields without checking anything else: node:crypto does the real parsing. */
export function certFields(buf: Uint8Array, offset = 0, limit = buf.length): CertFields {
  const cert = expectTlv(buf, offset, TAG.SEQUENCE, limit, 'Certificate');
  const [tbs] = children(buf, cert);
  if (!tbs || tbs.tag !== TAG.SEQUENCE) throw new DerError('Certificate without TBSCertificate');
  const parts = children(buf, tbs);
  let i = parts[0]?.tag === ctx(0) ? 1 : 0;
  const serial = parts[i++];
  i++; // signature AlgorithmIdentifier
  const issuer = parts[i++];
  i++; // validity
  const subject = parts[i++];
  const spki = parts[i++];
  if (!serial || serial.tag !== TAG.INTEGER || !issuer || !subject || !spki) {
    throw new DerError('TBSCertificate is incomplete');
  }
  let subjectKeyId: Uint8Array | undefined;
  const extensions = parts.slice(i).find((p) => p.tag === ctx(3));
  if (extensions) {
    const [list] = children(buf, extensions);
    for (const ext of list ? children(buf, list) : []) {
      const fields = children(buf, ext);
      const id = fields[0];
      const value = fields[fields.length - 1];
      if (id && value && oidHex(buf, id) === OID_HEX.subjectKeyIdentifier) {
        const inner = octets(buf, value);
        subjectKeyId = octets(
          inner,
          expectTlv(inner, 0, TAG.OCTET_STRING, inner.length, 'subjectKeyIdentifier'),
        );
      }
    }
  }
  return {
    der: whole(buf, cert),
    issuer: whole(buf, issuer),
    serial: content(buf, serial),
    subject: whole(buf, subject),
    spki: whole(buf, spki),
    subjectKeyId,
  };
}

/** RFC 5280 §4.2.1.2 method (1): SHA-1 of the subjectPublicKey BIT STRING value. */
export function keyIdentifierOfSpki(spki: Uint8Array): Buffer {
  const outer = expectTlv(spki, 0, TAG.SEQUENCE, spki.length, 'SubjectPublicKeyInfo');
  const [, bits] = children(spki, outer);
  if (!bits || bits.tag !== TAG.BIT_STRING) throw new DerError('SubjectPublicKeyInfo without a key');
  return createHash('sha1')
    .update(spki.subarray(bits.contentStart + 1, bits.contentEnd))
    .digest();
}

export function pemToDer(pem: string, label = 'CERTIFICATE'): Buffer {
  const match = new RegExp(`-----BEGIN ${label}-----([^-]+)-----END ${label}-----`).exec(pem);
  if (!match?.[1]) throw new Error(`no ${label} PEM block`);
  return Buffer.from(match[1].replace(/\s+/g, ''), 'base64');
}

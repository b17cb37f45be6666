/**
 * The simulated device's side of `Mdm-Signature`: a detached CMS SignedData over the request
 * body, shaped like an iPhone's (SHA-256, signed attributes contentType + signingTime +
 * messageDigest, the signer certificate embedded, signer named by issuer and serial number).
 *
 * Everything that does not depend on the body is encoded once in the constructor, so a signature
 * costs one hash, one private-key operation and a few buffer copies: thousands of simulated
 * devices share one process.
 */
import { createHash, createPrivateKey, sign } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import type { CertAndKey } from '../../mdm/identity/ca.ts';
import { derNull, explicit, integer, octetString, seq, setOf, tlv, time } from '../../mdm/identity/der.ts';
import { OID_DER } from '../../mdm/identity/oids.ts';
import { certFields, pemToDer } from '../../mdm/identity/x509.ts';

export class CmsSigner {
  readonly #key: KeyObject;
  readonly #now: () => Date;
  readonly #digestAlgorithm: Buffer;
  readonly #signatureAlgorithm: Buffer;
  readonly #signedDataHead: Buffer;
  readonly #signerHead: Buffer;
  readonly #contentTypeAttribute: Buffer;

  constructor(identity: CertAndKey, options?: { now?: () => Date }) {
    this.#key = createPrivateKey(identity.keyPem);
    // The simulator is not domain code: its default clock is the real one.
    this.#now = options?.now ?? (() => new Date());
    const certDer = pemToDer(identity.certPem);
    const cert = certFields(certDer);

    // RFC 5754: SHA-2 AlgorithmIdentifiers omit the parameters.
    this.#digestAlgorithm = seq(OID_DER.sha256);
    if (this.#key.asymmetricKeyType !== 'ec' && this.#key.asymmetricKeyType !== 'rsa') {
      throw new Error(`cannot sign CMS with a ${this.#key.asymmetricKeyType ?? 'unknown'} key`);
    }
    // RSA is named by the key algorithm (rsaEncryption), as OpenSSL and most CMS encoders write it.
    this.#signatureAlgorithm =
      this.#key.asymmetricKeyType === 'ec'
        ? seq(OID_DER.ecdsaWithSha256)
        : seq(OID_DER.rsaEncryption, derNull());
    this.#signedDataHead = Buffer.concat([
      integer(1),
      setOf(this.#digestAlgorithm),
      seq(OID_DER.data), // detached: no eContent
      explicit(0, certDer), // [0] IMPLICIT CertificateSet holding the one certificate
    ]);
    const issuerAndSerialNumber = seq(cert.issuer, tlv(0x02, cert.serial));
    this.#signerHead = Buffer.concat([integer(1), issuerAndSerialNumber, this.#digestAlgorithm]);
    this.#contentTypeAttribute = seq(OID_DER.contentType, setOf(OID_DER.data));
  }

  /** Base64 DER of the CMS ContentInfo, the value of the `Mdm-Signature` header. */
  sign(body: Uint8Array, signingTime: Date = this.#now()): string {
    const digest = createHash('sha256').update(body).digest();
    const attributes = [
      this.#contentTypeAttribute,
      seq(OID_DER.signingTime, setOf(time(signingTime))),
      seq(OID_DER.messageDigest, setOf(octetString(digest))),
    ];
    // Signed over as a universal SET (DER order), sent as [0] IMPLICIT with the same contents.
    const signedAttributes = setOf(...attributes);
    const signature = sign('sha256', signedAttributes, this.#key);
    signedAttributes[0] = 0xa0;
    const signerInfo = seq(
      this.#signerHead,
      signedAttributes,
      this.#signatureAlgorithm,
      octetString(signature),
    );
    const signedData = seq(this.#signedDataHead, setOf(signerInfo));
    return seq(OID_DER.signedData, explicit(0, signedData)).toString('base64');
  }
}

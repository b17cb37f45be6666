/**
 * haishin's SCEP service (RFC 8894, decision 0024): the device makes its own key and asks the device
 * CA for its MDM identity, proving with a one-time challenge from its enrollment profile that the
 * request belongs to an enrollment haishin admitted. The key never leaves the device.
 */
import { createHash, createPrivateKey, createPublicKey, randomBytes, randomUUID } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import type { Clock } from '../../core/clock.ts';
import { certifyPublicKey } from '../identity/ca.ts';
import type { CertAndKey } from '../identity/ca.ts';
import { pemToDer } from '../identity/x509.ts';
import type { EnrollmentStore } from '../enroll.ts';
import {
  certRep,
  certsOnly,
  MESSAGE_TYPE,
  octetAttribute,
  openEnvelope,
  readCsr,
  readSignedData,
  ScepError,
  SCEP_OID,
  sealEnvelope,
  stringAttribute,
} from './pkimessage.ts';
import type { FailInfo } from './pkimessage.ts';

/** What GetCACaps advertises: what this server does (SCEPStandard = AES, POSTPKIOperation, SHA-256). */
export const CA_CAPS = ['AES', 'POSTPKIOperation', 'SHA-256', 'SCEPStandard'];

export interface ChallengeBinding {
  groupId: string;
  deviceId: string | null;
}

/** Storage port for one-time challenges (src/store/scep-challenge-repo.ts). */
export interface ScepChallengePort {
  use(
    challenge: string,
    request: { transactionId: string; publicKeySha256: string },
    at: Date,
  ): Promise<
    | { ok: true; binding: ChallengeBinding; id: string }
    | { ok: 'repeat'; certPem: string }
    | { ok: false; reason: 'unknown' | 'expired' | 'used' }
  >;
  issued(id: string, cert: { fingerprint: string; certPem: string }): Promise<void>;
}

export interface ScepServerOptions {
  /** The issuing device CA: it issues the identities. */
  ca: CertAndKey;
  /** The SCEP service's certificate (src/mdm/scep/ra.ts): it signs the answers and opens the requests. */
  ra: CertAndKey;
  clock: Clock;
  challenges: ScepChallengePort;
  identities: Pick<EnrollmentStore, 'recordIssuedIdentity'>;
  /**
   * A renewal's identity (its challenge is bound to a device) becomes the device's pending one
   * (decision 0023's acceptance rules); src/store/identity-repo.ts.
   */
  renewals?: { scepRenewalIssued(deviceId: string, fingerprint: string, at: Date): Promise<boolean> };
  /** HAISHIN_DEVICE_IDENTITY_VALIDITY. */
  identityValidityMs: number;
  /** Smallest RSA key accepted (the profile asks for 2048; 1024 only for simulators and tests). */
  minRsaBits?: number;
}

export interface PkiOperationResult {
  /** HTTP status: 200 with a CertRep (SUCCESS or FAILURE), 400 when not even a CertRep can be made. */
  status: 200 | 400;
  body: Buffer;
  /** For the log. */
  note: string;
}

class Failure extends Error {
  constructor(
    message: string,
    readonly failInfo: FailInfo,
  ) {
    super(message);
  }
}

export class ScepServer {
  readonly #o: ScepServerOptions;
  readonly #caDer: Buffer;
  readonly #raDer: Buffer;
  readonly #raKey: KeyObject;

  constructor(options: ScepServerOptions) {
    this.#o = options;
    this.#caDer = pemToDer(options.ca.certPem);
    this.#raDer = pemToDer(options.ra.certPem);
    this.#raKey = createPrivateKey(options.ra.keyPem);
  }

  caCaps(): string {
    return `${CA_CAPS.join('\n')}\n`;
  }

  /**
   * GetCACert: the SCEP service's certificate and the issuing CA, as a degenerate PKCS#7
   * (`application/x-x509-ca-ra-cert`, RFC 8894 §4.2.1.2).
   */
  caCert(): { contentType: string; body: Buffer } {
    return { contentType: 'application/x-x509-ca-ra-cert', body: certsOnly([this.#raDer, this.#caDer]) };
  }

  /** PKIOperation: a PKCSReq in, a CertRep out. */
  async pkiOperation(message: Uint8Array): Promise<PkiOperationResult> {
    let request;
    try {
      request = readSignedData(message);
    } catch (err) {
      // Attributes readable but not trusted (digest or signature wrong): FAILURE badMessageCheck to
      // the transaction they name. Without even that there is no transaction to answer.
      const attrs = err instanceof ScepError ? err.unverifiedAttributes : null;
      const transactionId = attrs ? stringAttribute(attrs, SCEP_OID.transactionID) : null;
      if (!attrs || !transactionId)
        return {
          status: 400,
          body: Buffer.alloc(0),
          note: `unreadable pkiMessage: ${(err as Error).message}`,
        };
      return {
        status: 200,
        body: certRep({
          signer: { certDer: this.#raDer, key: this.#raKey },
          certificates: [this.#raDer, this.#caDer],
          status: 'FAILURE',
          failInfo: (err as ScepError).failInfo,
          transactionId,
          recipientNonce: octetAttribute(attrs, SCEP_OID.senderNonce),
          senderNonce: randomBytes(16),
        }),
        note: `refused (${(err as ScepError).failInfo}): ${(err as Error).message}`,
      };
    }
    const transactionId = stringAttribute(request.attributes, SCEP_OID.transactionID);
    const senderNonce = octetAttribute(request.attributes, SCEP_OID.senderNonce);
    if (!transactionId)
      return { status: 400, body: Buffer.alloc(0), note: 'pkiMessage without a transactionID' };
    const answer = (status: 'SUCCESS' | 'FAILURE', extra: { failInfo?: FailInfo; envelope?: Buffer }) =>
      certRep({
        signer: { certDer: this.#raDer, key: this.#raKey },
        certificates: [this.#raDer, this.#caDer],
        status,
        transactionId,
        recipientNonce: senderNonce,
        senderNonce: randomBytes(16),
        digest: request.digest === 'sha1' ? 'sha1' : 'sha256',
        ...extra,
      });
    try {
      const { certDer, note, cipherOid } = await this.#issue(request, transactionId);
      // Sealed with the cipher the client chose for its request: it can open what it can write.
      const envelope = sealEnvelope(certsOnly([certDer]), request.signerCert, cipherOid);
      return { status: 200, body: answer('SUCCESS', { envelope }), note };
    } catch (err) {
      if (err instanceof Failure || err instanceof ScepError)
        return {
          status: 200,
          body: answer('FAILURE', { failInfo: err.failInfo }),
          note: `refused (${err.failInfo}): ${err.message}`,
        };
      throw err;
    }
  }

  async #issue(
    request: ReturnType<typeof readSignedData>,
    transactionId: string,
  ): Promise<{ certDer: Buffer; note: string; cipherOid: string }> {
    const type = stringAttribute(request.attributes, SCEP_OID.messageType);
    if (type !== MESSAGE_TYPE.PKCSReq)
      throw new Failure(`messageType ${type ?? '(none)'} is not supported: only PKCSReq (19)`, 'badRequest');
    if (!request.content) throw new Failure('PKCSReq without a pkcsPKIEnvelope', 'badRequest');
    // Encrypted to the service certificate (what GetCACert offers); the CA's own key as a fallback.
    const opened = openEnvelope(request.content, [this.#o.ra.keyPem, this.#o.ca.keyPem]);
    const cipherOid = opened.cipherOid;
    const csr = readCsr(opened.content);
    this.#checkKey(csr.spki);
    if (!csr.challengePassword) throw new Failure('the CSR carries no challengePassword', 'badRequest');
    const now = this.#o.clock.now();
    const publicKeySha256 = createHash('sha256').update(csr.spki).digest('hex');
    const use = await this.#o.challenges.use(csr.challengePassword, { transactionId, publicKeySha256 }, now);
    if (use.ok === 'repeat')
      return {
        certDer: pemToDer(use.certPem),
        note: `transaction ${transactionId} repeated: same certificate`,
        cipherOid,
      };
    if (use.ok !== true)
      throw new Failure(
        {
          unknown: 'the challenge is not one haishin issued',
          expired: 'the challenge has expired: download the enrollment profile again',
          used: 'the challenge was already used',
        }[use.reason],
        'badRequest',
      );
    const commonName = sanitizeCommonName(csr.commonName) ?? `haishin device ${randomUUID().toUpperCase()}`;
    const cert = certifyPublicKey(this.#o.ca, {
      now,
      commonName,
      spki: csr.spki,
      validMs: this.#o.identityValidityMs,
    });
    // Recorded like a PKCS#12 identity: Authenticate finds it by fingerprint, under the enrollment's group.
    await this.#o.identities.recordIssuedIdentity({
      fingerprint: cert.fingerprintSha256,
      serialHex: cert.serialHex,
      groupId: use.binding.groupId,
      issuedAt: now,
      notAfter: cert.notAfter,
      ...(use.binding.deviceId !== null ? { deviceId: use.binding.deviceId } : {}),
    });
    await this.#o.challenges.issued(use.id, { fingerprint: cert.fingerprintSha256, certPem: cert.certPem });
    if (use.binding.deviceId !== null)
      await this.#o.renewals?.scepRenewalIssued(use.binding.deviceId, cert.fingerprintSha256, now);
    return {
      certDer: pemToDer(cert.certPem),
      note: `issued ${cert.serialHex} for group ${use.binding.groupId} (transaction ${transactionId})`,
      cipherOid,
    };
  }

  #checkKey(spki: Buffer): void {
    const key = createPublicKey({ key: spki, format: 'der', type: 'spki' });
    if (key.asymmetricKeyType === 'rsa') {
      const bits = key.asymmetricKeyDetails?.modulusLength ?? 0;
      if (bits < (this.#o.minRsaBits ?? 2048))
        throw new Failure(`an RSA key of ${bits} bits is too small`, 'badAlg');
      return;
    }
    if (key.asymmetricKeyType === 'ec' && key.asymmetricKeyDetails?.namedCurve === 'prime256v1') return;
    throw new Failure(`a ${key.asymmetricKeyType ?? 'unknown'} key is not accepted`, 'badAlg');
  }
}

/** Printable, bounded: the name goes into a certificate and into logs. */
function sanitizeCommonName(name: string | null): string | null {
  if (!name) return null;
  const clean = [...name]
    .filter((c) => c >= ' ' && c !== '\u007f')
    .join('')
    .trim()
    .slice(0, 64);
  return clean.length > 0 ? clean : null;
}

/**
 * The simulated iPad's SCEP client (decision 0024), as iOS runs a `com.apple.security.scep` payload:
 * it makes its key, a CSR with the payload's Subject and Challenge, signs the PKCSReq with a
 * self-signed certificate, and installs the certificate the CA answers with. The key never leaves it.
 */
import {
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  randomBytes,
  X509Certificate,
} from 'node:crypto';
import { selfSignedCertificate } from '../../mdm/identity/ca.ts';
import type { CertAndKey } from '../../mdm/identity/ca.ts';
import { pemToDer } from '../../mdm/identity/x509.ts';
import { toPem } from '../../mdm/identity/der.ts';
import {
  buildCsr,
  certsOf,
  FAIL_INFO_BY_VALUE,
  octetAttribute,
  openEnvelope,
  PKI_STATUS_BY_VALUE,
  pkcsReq,
  readSignedData,
  SCEP_OID,
  stringAttribute,
} from '../../mdm/scep/pkimessage.ts';
import type { PlistDict } from '../../mdm/plist.ts';

export class ScepEnrollmentError extends Error {}

/** The payload's Subject (`[[["CN","…"]], …]`) reduced to its common name. */
function commonNameOf(subject: unknown): string {
  if (Array.isArray(subject))
    for (const rdn of subject)
      if (Array.isArray(rdn))
        for (const pair of rdn)
          if (Array.isArray(pair) && pair[0] === 'CN' && typeof pair[1] === 'string') return pair[1];
  return 'iPad';
}

/** Runs the SCEP exchange a `com.apple.security.scep` payload describes; returns the identity. */
export async function scepEnroll(
  payload: PlistDict,
  options: { fetch: typeof fetch; now: Date; keyBits?: number },
): Promise<CertAndKey> {
  const content = (payload.PayloadContent ?? {}) as PlistDict;
  const url = String(content.URL ?? '');
  const challenge = typeof content.Challenge === 'string' ? content.Challenge : '';
  if (!url) throw new ScepEnrollmentError('the SCEP payload has no URL');
  const sep = url.includes('?') ? '&' : '?';

  const caResponse = await options.fetch(`${url}${sep}operation=GetCACert`);
  if (caResponse.status !== 200)
    throw new ScepEnrollmentError(`GetCACert answered HTTP ${caResponse.status}`);
  const caBytes = Buffer.from(await caResponse.arrayBuffer());
  const type = caResponse.headers.get('content-type') ?? '';
  // The CA alone (x509-ca-cert), or a service ("RA") certificate with its CA (x509-ca-ra-cert):
  // requests are encrypted to the RA, answers signed by it; the fingerprint names the CA.
  const certs = type.includes('ca-ra-cert') ? certsOf(caBytes) : [caBytes];
  const selfIssued = (der: Buffer) => {
    const c = new X509Certificate(der);
    return c.subject === c.issuer;
  };
  const caDer = certs.find(selfIssued) ?? certs[0];
  const raDer = certs.find((c) => !selfIssued(c)) ?? caDer;
  if (!caDer || !raDer) throw new ScepEnrollmentError('GetCACert returned no certificate');
  if (!new X509Certificate(raDer).checkIssued(new X509Certificate(caDer)))
    throw new ScepEnrollmentError('the SCEP service certificate is not issued by the CA');
  if (content.CAFingerprint instanceof Uint8Array) {
    const length = content.CAFingerprint.byteLength;
    const algorithm = length === 16 ? 'md5' : length === 32 ? 'sha256' : 'sha1';
    if (!createHash(algorithm).update(caDer).digest().equals(Buffer.from(content.CAFingerprint)))
      throw new ScepEnrollmentError('the CA certificate does not match the payload’s CAFingerprint');
  }

  const keyBits = typeof content.Keysize === 'number' ? content.Keysize : (options.keyBits ?? 2048);
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: options.keyBits ?? keyBits });
  const keyPem = privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
  const spki = createPublicKey(privateKey).export({ type: 'spki', format: 'der' });
  const commonName = commonNameOf(content.Subject);
  const selfSigned = pemToDer(selfSignedCertificate({ key: privateKey, commonName, now: options.now }));
  const csrDer = buildCsr({ key: privateKey, spki, commonName, challenge });
  const transactionId = randomBytes(16).toString('hex');
  const senderNonce = randomBytes(16);
  const message = pkcsReq({
    csrDer,
    caCertDer: raDer,
    signer: { certDer: selfSigned, key: createPrivateKey(keyPem) },
    transactionId,
    senderNonce,
  });
  const response = await options.fetch(`${url}${sep}operation=PKIOperation`, {
    method: 'POST',
    body: message,
    headers: { 'content-type': 'application/x-pki-message' },
  });
  if (response.status !== 200)
    throw new ScepEnrollmentError(`PKIOperation answered HTTP ${response.status}: ${await response.text()}`);
  const rep = readSignedData(Buffer.from(await response.arrayBuffer()), { signerCert: raDer });
  if (stringAttribute(rep.attributes, SCEP_OID.transactionID) !== transactionId)
    throw new ScepEnrollmentError('the CertRep answers another transaction');
  const recipientNonce = octetAttribute(rep.attributes, SCEP_OID.recipientNonce);
  if (!recipientNonce || !recipientNonce.equals(senderNonce))
    throw new ScepEnrollmentError('the CertRep does not echo our nonce');
  const status = PKI_STATUS_BY_VALUE.get(stringAttribute(rep.attributes, SCEP_OID.pkiStatus) ?? '');
  if (status !== 'SUCCESS') {
    const failInfo = FAIL_INFO_BY_VALUE.get(stringAttribute(rep.attributes, SCEP_OID.failInfo) ?? '');
    throw new ScepEnrollmentError(
      `the SCEP server answered ${status ?? 'an unknown status'} (${failInfo ?? 'no failInfo'})`,
    );
  }
  if (!rep.content) throw new ScepEnrollmentError('the CertRep carries no certificate');
  const issued = certsOf(openEnvelope(rep.content, keyPem).content);
  const mine = issued.find((der) =>
    new X509Certificate(der).publicKey.export({ type: 'spki', format: 'der' }).equals(spki),
  );
  if (!mine) throw new ScepEnrollmentError('the CertRep holds no certificate for our key');
  return { certPem: toPem('CERTIFICATE', mine), keyPem };
}

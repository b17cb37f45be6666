import { generateKeyPairSync } from 'node:crypto';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import forge from 'node-forge';

/**
 * `haishin push-cert csr`: the private key and the certificate signing request for the MDM push
 * certificate. The key stays here; the request goes to an MDM vendor to be signed, and the signed
 * request to Apple's Push Certificates Portal (README, "The MDM push certificate").
 */
export function writePushCsr(o: {
  dir: string;
  commonName: string;
  organization?: string;
  country?: string;
  email?: string;
  force?: boolean;
}): { keyFile: string; csrFile: string } {
  const dir = resolve(o.dir);
  const keyFile = join(dir, 'push.key');
  const csrFile = join(dir, 'push.csr');
  if (!o.force && existsSync(keyFile))
    throw new Error(
      `${keyFile} already exists: it may be the key of your current push certificate — choose another --dir, or add --force to replace it`,
    );
  if (o.country !== undefined && !/^[A-Z]{2}$/.test(o.country))
    throw new Error(`--country "${o.country}" must be a two-letter country code such as JP`);
  mkdirSync(dir, { recursive: true });
  // Apple's push certificates are RSA 2048; node:crypto makes the key in native code.
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const keyPem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  const key = forge.pki.privateKeyFromPem(keyPem) as forge.pki.rsa.PrivateKey;
  const csr = forge.pki.createCertificationRequest();
  csr.publicKey = forge.pki.setRsaPublicKey(key.n, key.e);
  csr.setSubject([
    { name: 'commonName', value: o.commonName },
    ...(o.organization ? [{ name: 'organizationName', value: o.organization }] : []),
    ...(o.country ? [{ name: 'countryName', value: o.country }] : []),
    ...(o.email ? [{ name: 'emailAddress', value: o.email }] : []),
  ]);
  csr.sign(key, forge.md.sha256.create());
  writeFileSync(keyFile, keyPem, { mode: 0o600 });
  writeFileSync(csrFile, forge.pki.certificationRequestToPem(csr));
  return { keyFile, csrFile };
}

export function csrNextSteps(files: { keyFile: string; csrFile: string }, lang: 'ja' | 'en'): string {
  return lang === 'ja'
    ? `秘密鍵: ${files.keyFile}（このサーバーから出さないでください）
署名要求: ${files.csrFile}

次の手順:
1. ${files.csrFile} を MDM ベンダー（MDM Vendor 証明書を持つ事業者）に送り、署名してもらいます。
2. 署名済みの要求を Apple Push Certificates Portal（https://identity.apple.com）にアップロードします。
   初回は「Create a Certificate」。毎年の更新は、既存の証明書の「Renew」を使ってください
   （新規作成するとトピックが変わり、登録済みのすべての端末が応答しなくなります）。
3. ダウンロードした証明書（.pem）をこの鍵と一緒に登録します:
   haishin push-cert replace --cert <証明書.pem> --key ${files.keyFile}
   （または管理コンソールの「サーバー」ページ。再起動は不要です）`
    : `private key: ${files.keyFile} (keep it on this server)
signing request: ${files.csrFile}

Next:
1. Send ${files.csrFile} to your MDM vendor (the holder of an MDM Vendor certificate) to be signed.
2. Upload the signed request at Apple's Push Certificates Portal (https://identity.apple.com):
   "Create a Certificate" the first time; every year after, "Renew" the existing certificate
   (creating a new one changes the topic, and every enrolled device stops answering).
3. Install the certificate you download (.pem) with this key, without a restart:
   haishin push-cert replace --cert <certificate.pem> --key ${files.keyFile}
   (or the admin console's Server page)`;
}

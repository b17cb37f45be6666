import { spawnSync } from 'node:child_process';
import { createPrivateKey, generateKeyPairSync, randomBytes, X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import forge from 'node-forge';
import * as pkijs from 'pkijs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createDeviceCa,
  identityToPkcs12,
  issueDeviceIdentity,
  pkcs12ToIdentity,
  sha256FingerprintOfPem,
} from '../src/mdm/identity/ca.ts';
import type { CertAndKey, IssuedIdentity } from '../src/mdm/identity/ca.ts';
import { children, readTlv } from '../src/mdm/identity/der.ts';
import type { Tlv } from '../src/mdm/identity/der.ts';
import { pkcs12Kdf } from '../src/mdm/identity/pkcs12.ts';
import { MdmSignatureVerifier } from '../src/mdm/identity/signature.ts';
import type { SignatureCheck } from '../src/mdm/identity/signature.ts';
import { CmsSigner } from '../src/sim/device/signer.ts';

const CLIENT_AUTH = '1.3.6.1.5.5.7.3.2';
const DAY = 86_400_000;
const now = new Date();
const body = Buffer.from(
  '<?xml version="1.0" encoding="UTF-8"?><plist version="1.0"><dict><key>MessageType</key><string>Authenticate</string></dict></plist>',
);

let dir: string;
let ca: CertAndKey;
let device: IssuedIdentity;
let verifier: MdmSignatureVerifier;

beforeAll(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'haishin-identity-'));
  ca = createDeviceCa({ now });
  device = issueDeviceIdentity(ca, { now, commonName: 'haishin device 1', keyBits: 1024 });
  verifier = new MdmSignatureVerifier(ca.certPem);
  write('ca.pem', ca.certPem);
  write('ca.key', ca.keyPem);
  write('body', body);
});
afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function write(name: string, data: string | Uint8Array): string {
  const file = path.join(dir, name);
  writeFileSync(file, data);
  return file;
}

function openssl(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const run = spawnSync('openssl', args, { cwd: dir, encoding: 'utf8' });
  return { status: run.status, stdout: run.stdout, stderr: run.stderr };
}

/** `openssl cms -sign` the way a device signs: detached, binary, DER. */
function opensslSign(certFile: string, keyFile: string, extra: string[] = []): string {
  const out = `sig-${randomBytes(4).toString('hex')}.der`;
  const run = openssl([
    'cms',
    '-sign',
    '-binary',
    '-in',
    'body',
    '-signer',
    certFile,
    '-inkey',
    keyFile,
    '-outform',
    'DER',
    '-out',
    out,
    ...extra,
  ]);
  expect(run.status, run.stderr).toBe(0);
  return readFileSync(path.join(dir, out)).toString('base64');
}

function opensslVerify(signatureB64: string): { status: number | null; stderr: string } {
  const file = write(`v-${randomBytes(4).toString('hex')}.der`, Buffer.from(signatureB64, 'base64'));
  return openssl([
    'cms',
    '-verify',
    '-binary',
    '-inform',
    'DER',
    '-in',
    file,
    '-content',
    'body',
    '-CAfile',
    'ca.pem',
    '-purpose',
    'any',
    '-out',
    '/dev/null',
  ]);
}

const toArrayBuffer = (b: Uint8Array): ArrayBuffer => Uint8Array.from(b).buffer;
const pemBody = (pem: string): Buffer => Buffer.from(pem.replace(/-----[^-]+-----|\s/g, ''), 'base64');

async function pkijsVerify(signatureB64: string, data: Uint8Array): Promise<boolean> {
  const info = pkijs.ContentInfo.fromBER(toArrayBuffer(Buffer.from(signatureB64, 'base64')));
  const signedData = new pkijs.SignedData({ schema: info.content });
  const trusted = pkijs.Certificate.fromBER(toArrayBuffer(pemBody(ca.certPem)));
  try {
    return await signedData.verify({
      signer: 0,
      data: toArrayBuffer(data),
      trustedCerts: [trusted],
      checkChain: true,
    });
  } catch {
    return false; // pkijs throws on a digest mismatch
  }
}

function refusal(check: SignatureCheck): string {
  expect(check.ok).toBe(false);
  return check.ok ? '' : check.reason;
}

describe('device CA', () => {
  it('is a self-signed CA certificate for signing certificates, valid from an hour ago for ten years', () => {
    const cert = new X509Certificate(ca.certPem);
    expect(cert.ca).toBe(true);
    expect(cert.checkIssued(cert) && cert.verify(cert.publicKey)).toBe(true);
    expect(cert.subject).toBe('CN=haishin device CA');
    expect(new Date(cert.validFrom).getTime()).toBe(Math.floor((now.getTime() - 3_600_000) / 1000) * 1000);
    const tenYears = new Date(now);
    tenYears.setUTCFullYear(now.getUTCFullYear() + 10);
    expect(new Date(cert.validTo).getTime()).toBe(Math.floor(tenYears.getTime() / 1000) * 1000);
    expect(createPrivateKey(ca.keyPem).asymmetricKeyDetails?.modulusLength).toBe(2048);
    const text = openssl(['x509', '-in', 'ca.pem', '-noout', '-text']).stdout;
    expect(text).toMatch(/Basic Constraints: critical\s+CA:TRUE/);
    expect(text).toMatch(/Key Usage: critical\s+Certificate Sign, CRL Sign/);
    expect(text).toContain('Subject Key Identifier');
    expect(text).toContain('sha256WithRSAEncryption');
  });

  it('takes a custom name and lifetime', () => {
    const other = new X509Certificate(
      createDeviceCa({ now, commonName: 'Example 学校 CA', validYears: 2 }).certPem,
    );
    expect(other.subject).toBe('CN=Example 学校 CA');
    expect(new Date(other.validTo).getUTCFullYear()).toBe(now.getUTCFullYear() + 2);
  });
});

describe('device identity', () => {
  it('is a clientAuth leaf issued by the CA with the promised serial, fingerprint and notAfter', () => {
    const leaf = new X509Certificate(device.certPem);
    const caCert = new X509Certificate(ca.certPem);
    expect(leaf.checkIssued(caCert)).toBe(true);
    expect(leaf.verify(caCert.publicKey)).toBe(true);
    expect(leaf.ca).toBe(false);
    expect(leaf.keyUsage).toEqual([CLIENT_AUTH]);
    expect(leaf.subject).toBe('CN=haishin device 1');
    expect(leaf.checkPrivateKey(createPrivateKey(device.keyPem))).toBe(true);
    const expectedNotAfter = Math.floor((now.getTime() + 365 * DAY) / 1000) * 1000;
    expect(device.notAfter.getTime()).toBe(expectedNotAfter);
    expect(new Date(leaf.validTo).getTime()).toBe(expectedNotAfter);
    expect(device.serialHex).toMatch(/^[0-7][0-9a-f]{31}$/);
    expect(device.serialHex).toBe(leaf.serialNumber.toLowerCase());
    expect(device.fingerprintSha256).toBe(leaf.fingerprint256.replace(/:/g, '').toLowerCase());
    expect(sha256FingerprintOfPem(device.certPem)).toBe(device.fingerprintSha256);

    write('device.pem', device.certPem);
    const verified = openssl(['verify', '-CAfile', 'ca.pem', '-purpose', 'sslclient', 'device.pem']);
    expect(verified.stdout.trim()).toBe('device.pem: OK');
    const text = openssl(['x509', '-in', 'device.pem', '-noout', '-text']).stdout;
    expect(text).toMatch(/Basic Constraints: critical\s+CA:FALSE/);
    expect(text).toMatch(/Key Usage: critical\s+Digital Signature, Key Encipherment/);
    expect(text).toContain('Authority Key Identifier');
  });

  it('honours validDays, key size and serial uniqueness', () => {
    const a = issueDeviceIdentity(ca, { now, commonName: 'a', validDays: 30, keyBits: 1024 });
    const b = issueDeviceIdentity(ca, { now, commonName: 'b', validDays: 30, keyBits: 1024 });
    expect(a.notAfter.getTime()).toBe(Math.floor((now.getTime() + 30 * DAY) / 1000) * 1000);
    expect(createPrivateKey(a.keyPem).asymmetricKeyDetails?.modulusLength).toBe(1024);
    expect(a.serialHex).not.toBe(b.serialHex);
    expect(() => issueDeviceIdentity(ca, { now, commonName: 'c', keyBits: 512 })).toThrow(/key size/);
    const rsa2048 = issueDeviceIdentity(ca, { now, commonName: 'd' });
    expect(createPrivateKey(rsa2048.keyPem).asymmetricKeyDetails?.modulusLength).toBe(2048);
  });

  it('can hold a P-256 key', () => {
    const ec = issueDeviceIdentity(ca, { now, commonName: 'ec device', keyType: 'ec' });
    const leaf = new X509Certificate(ec.certPem);
    expect(leaf.publicKey.asymmetricKeyType).toBe('ec');
    expect(leaf.publicKey.asymmetricKeyDetails?.namedCurve).toBe('prime256v1');
    expect(
      leaf.checkIssued(new X509Certificate(ca.certPem)) &&
        leaf.verify(new X509Certificate(ca.certPem).publicKey),
    ).toBe(true);
    const back = pkcs12ToIdentity(identityToPkcs12(ec, { password: 'x' }), 'x');
    expect(back.certPem).toBe(ec.certPem);
    expect(createPrivateKey(back.keyPem).asymmetricKeyType).toBe('ec');
    write('ec-device.pem', ec.certPem);
    expect(
      openssl(['verify', '-CAfile', 'ca.pem', '-purpose', 'sslclient', 'ec-device.pem']).stdout.trim(),
    ).toBe('ec-device.pem: OK');
  });
});

describe('PKCS#12', () => {
  it('round-trips through pkcs12ToIdentity', () => {
    const p12 = identityToPkcs12(device, {
      password: 'x',
      friendlyName: 'haishin device identity',
      caCertPem: ca.certPem,
    });
    const back = pkcs12ToIdentity(p12, 'x');
    expect(back.certPem).toBe(device.certPem);
    const exported = (pem: string) => createPrivateKey(pem).export({ type: 'pkcs8', format: 'der' });
    expect(exported(back.keyPem).equals(exported(device.keyPem))).toBe(true);
    expect(() => pkcs12ToIdentity(p12, 'wrong')).toThrow(/MAC does not verify/);
    expect(() => pkcs12ToIdentity(p12.subarray(0, 100), 'x')).toThrow(/PKCS#12/);
  });

  it('is read by OpenSSL 3 without -legacy, with the layout iOS takes (3DES everywhere, SHA-1 MAC, 2048 iterations)', () => {
    write(
      'device.p12',
      identityToPkcs12(device, {
        password: 'x',
        friendlyName: 'haishin device identity',
        caCertPem: ca.certPem,
      }),
    );
    const read = openssl(['pkcs12', '-in', 'device.p12', '-passin', 'pass:x', '-nodes']);
    expect(read.status, read.stderr).toBe(0);
    expect(read.stdout).toContain('friendlyName: haishin device identity');
    expect(read.stdout).toContain('-----BEGIN PRIVATE KEY-----');
    const certs = read.stdout.match(/-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g) ?? [];
    expect(certs.map((pem) => sha256FingerprintOfPem(pem))).toEqual([
      device.fingerprintSha256,
      sha256FingerprintOfPem(ca.certPem),
    ]);

    const info = openssl(['pkcs12', '-in', 'device.p12', '-passin', 'pass:x', '-info', '-noout']);
    expect(info.status, info.stderr).toBe(0);
    expect(info.stderr).toContain('MAC: sha1, Iteration 2048');
    expect(info.stderr).toContain('PKCS7 Encrypted data: pbeWithSHA1And3-KeyTripleDES-CBC, Iteration 2048');
    expect(info.stderr).toContain('Shrouded Keybag: pbeWithSHA1And3-KeyTripleDES-CBC, Iteration 2048');
    expect(openssl(['pkcs12', '-in', 'device.p12', '-passin', 'pass:nope', '-noout']).status).not.toBe(0);
  });

  it('takes another iteration count (the demo uses 1), which OpenSSL reads back', () => {
    const p12 = identityToPkcs12(device, { password: 'x', iterations: 1 });
    write('one.p12', p12);
    const info = openssl(['pkcs12', '-in', 'one.p12', '-passin', 'pass:x', '-info', '-noout']);
    expect(info.status, info.stderr).toBe(0);
    expect(info.stderr).toContain('MAC: sha1, Iteration 1');
    expect(info.stderr).toContain('Shrouded Keybag: pbeWithSHA1And3-KeyTripleDES-CBC, Iteration 1');
    expect(pkcs12ToIdentity(p12, 'x').certPem).toBe(device.certPem);
    expect(() => pkcs12ToIdentity(p12, 'y')).toThrow(/MAC does not verify/);
  });

  it("reads OpenSSL's own files: the 3.x default (PBES2/AES-256, SHA-256 MAC) and the 3DES one", () => {
    write('device.key', device.keyPem);
    for (const [name, extra] of [
      ['default.p12', []],
      ['tdes.p12', ['-certpbe', 'PBE-SHA1-3DES', '-keypbe', 'PBE-SHA1-3DES', '-macalg', 'sha1']],
    ] as const) {
      const made = openssl([
        'pkcs12',
        '-export',
        '-in',
        'device.pem',
        '-inkey',
        'device.key',
        '-certfile',
        'ca.pem',
        '-passout',
        'pass:s3cret',
        '-out',
        name,
        ...extra,
      ]);
      expect(made.status, made.stderr).toBe(0);
      const back = pkcs12ToIdentity(readFileSync(path.join(dir, name)), 's3cret');
      expect(back.certPem).toBe(device.certPem);
      expect(new X509Certificate(back.certPem).checkPrivateKey(createPrivateKey(back.keyPem))).toBe(true);
    }
  });

  it('derives keys exactly like node-forge (RFC 7292 B.2), including the hand-written SHA-1 path', () => {
    const salt = randomBytes(8);
    for (const [id, length] of [
      [1, 24],
      [2, 8],
      [3, 20],
      [1, 45],
    ] as const) {
      for (const password of ['x', 'pässwörd-長い', '']) {
        const ours = pkcs12Kdf('sha1', password, salt, id, 2048, length);
        const forgeKey = forge.pkcs12.generateKey(
          password,
          forge.util.createBuffer(salt.toString('binary')),
          id,
          2048,
          length,
        );
        expect(ours.toString('hex')).toBe(forge.util.bytesToHex(forgeKey.getBytes()));
      }
    }
    const sha256Ours = pkcs12Kdf('sha256', 'x', salt, 3, 100, 32);
    const sha256Forge = forge.pkcs12.generateKey(
      'x',
      forge.util.createBuffer(salt.toString('binary')),
      3,
      100,
      32,
      forge.md.sha256.create(),
    );
    expect(sha256Ours.toString('hex')).toBe(forge.util.bytesToHex(sha256Forge.getBytes()));
  });
});

describe('Mdm-Signature: CmsSigner ⇄ verifier', () => {
  it('a simulated device signature verifies and names the device certificate', () => {
    const check = verifier.verify(body, new CmsSigner(device).sign(body), now);
    expect(check).toEqual({
      ok: true,
      fingerprintSha256: device.fingerprintSha256,
      subject: 'CN=haishin device 1',
      certPem: new X509Certificate(device.certPem).toString(),
      notAfter: device.notAfter,
    });
  });

  it('the same signature is accepted by OpenSSL and pkijs, which reject it for another body', async () => {
    const signature = new CmsSigner(device).sign(body);
    const run = opensslVerify(signature);
    expect(run.status, run.stderr).toBe(0);
    expect(run.stderr).toContain('Verification successful');
    expect(await pkijsVerify(signature, body)).toBe(true);
    expect(await pkijsVerify(signature, Buffer.from('other'))).toBe(false);

    const printed = openssl([
      'cms',
      '-cmsout',
      '-print',
      '-inform',
      'DER',
      '-in',
      write('shape.der', Buffer.from(signature, 'base64')),
    ]).stdout;
    expect(printed).toMatch(/eContent: <ABSENT>/);
    expect(printed).toMatch(/signingTime/);
    expect(printed).toMatch(/d\.issuerAndSerialNumber/);
  });

  it('an RSA-2048 and a P-256 device sign, and both oracles agree', async () => {
    for (const identity of [
      issueDeviceIdentity(ca, { now, commonName: 'rsa2048' }),
      issueDeviceIdentity(ca, { now, commonName: 'p256', keyType: 'ec' }),
    ]) {
      const signature = new CmsSigner(identity).sign(body);
      expect(verifier.verify(body, signature, now)).toMatchObject({
        ok: true,
        fingerprintSha256: identity.fingerprintSha256,
      });
      expect(opensslVerify(signature).status).toBe(0);
      expect(await pkijsVerify(signature, body)).toBe(true);
    }
  });

  it('BER indefinite lengths around the signed attributes and certificates, as a streaming encoder writes them', () => {
    const signature = toIndefinite(new CmsSigner(device).sign(body));
    expect(verifier.verify(body, signature, now).ok).toBe(true);
    // Not pkijs: it hashes the attributes' transfer encoding with the tag swapped, which only
    // works when that encoding is already DER. OpenSSL re-encodes, like the verifier.
    expect(opensslVerify(signature).status).toBe(0);
    expect(refusal(verifier.verify(Buffer.from('x'), signature, now))).toBe(
      'message digest does not match the body',
    );
  });

  it('the signer also works from an identity read back from PKCS#12', () => {
    const back = pkcs12ToIdentity(identityToPkcs12(device, { password: 'p' }), 'p');
    expect(verifier.verify(body, new CmsSigner(back).sign(body), now).ok).toBe(true);
  });
});

describe('Mdm-Signature: signatures made by OpenSSL, like a device', () => {
  beforeAll(() => {
    write('device.pem', device.certPem);
    write('device.key', device.keyPem);
  });

  it.each([['sha256'], ['sha1'], ['sha512']])('detached %s', (md) => {
    const check = verifier.verify(body, opensslSign('device.pem', 'device.key', ['-md', md]), now);
    expect(check).toMatchObject({ ok: true, fingerprintSha256: device.fingerprintSha256 });
  });

  it('signer named by subjectKeyIdentifier (-keyid)', () => {
    expect(
      verifier.verify(body, opensslSign('device.pem', 'device.key', ['-md', 'sha256', '-keyid']), now).ok,
    ).toBe(true);
  });

  it('streamed BER (-stream: indefinite lengths, content attached in segments) is accepted only for the same body', () => {
    const signature = opensslSign('device.pem', 'device.key', ['-md', 'sha256', '-stream']);
    expect(Buffer.from(signature, 'base64')[1]).toBe(0x80); // really indefinite-length
    expect(verifier.verify(body, signature, now).ok).toBe(true);
    expect(refusal(verifier.verify(Buffer.from('x'), signature, now))).toBe(
      'the signature carries content other than the body',
    );
  });

  it('without signed attributes (-noattr)', () => {
    expect(
      verifier.verify(body, opensslSign('device.pem', 'device.key', ['-md', 'sha256', '-noattr']), now).ok,
    ).toBe(true);
    expect(
      refusal(verifier.verify(Buffer.from('x'), opensslSign('device.pem', 'device.key', ['-noattr']), now)),
    ).toBe('signature does not verify with the signer certificate');
  });

  it('a P-256 key and certificate made entirely by OpenSSL, issued by our CA (ECDSA)', () => {
    expect(openssl(['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', 'ec.key']).status).toBe(0);
    expect(
      openssl(['req', '-new', '-key', 'ec.key', '-subj', '/CN=openssl ec device', '-out', 'ec.csr']).status,
    ).toBe(0);
    write(
      'ec.ext',
      'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n',
    );
    const issued = openssl([
      'x509',
      '-req',
      '-in',
      'ec.csr',
      '-CA',
      'ca.pem',
      '-CAkey',
      'ca.key',
      '-set_serial',
      '0x1234abcd',
      '-days',
      '30',
      '-sha256',
      '-extfile',
      'ec.ext',
      '-out',
      'ec.pem',
    ]);
    expect(issued.status, issued.stderr).toBe(0);
    const signature = opensslSign('ec.pem', 'ec.key', ['-md', 'sha256']);
    const printed = openssl([
      'cms',
      '-cmsout',
      '-print',
      '-inform',
      'DER',
      '-in',
      write('ec-sig.der', Buffer.from(signature, 'base64')),
    ]).stdout;
    expect(printed).toMatch(/signatureAlgorithm:\s+algorithm: ecdsa-with-SHA256/);
    // OpenSSL starts the certificate's validity at the moment of issuing, after `now`.
    const later = new Date();
    expect(verifier.verify(body, signature, later)).toMatchObject({
      ok: true,
      subject: 'CN=openssl ec device',
    });
    expect(refusal(verifier.verify(Buffer.from('y'), signature, later))).toBe(
      'message digest does not match the body',
    );
  });
});

describe('Mdm-Signature: refusals', () => {
  it('missing or empty header', () => {
    expect(refusal(verifier.verify(body, undefined, now))).toBe('no Mdm-Signature header');
    expect(refusal(verifier.verify(body, '', now))).toBe('no Mdm-Signature header');
    expect(refusal(verifier.verify(body, '   ', now))).toBe('no Mdm-Signature header');
  });

  it('garbage', () => {
    expect(refusal(verifier.verify(body, '!!!not base64!!!', now))).toBe('Mdm-Signature is not valid base64');
    expect(refusal(verifier.verify(body, 'abc', now))).toBe('Mdm-Signature is not valid base64');
    expect(refusal(verifier.verify(body, '====', now))).toBe('Mdm-Signature is not valid base64');
    expect(refusal(verifier.verify(body, randomBytes(300).toString('base64'), now))).toMatch(
      /CMS|Mdm-Signature/,
    );
    expect(
      refusal(verifier.verify(body, Buffer.from([0x30, 0x03, 0x02, 0x01, 0x01]).toString('base64'), now)),
    ).toMatch(/malformed CMS/);
    const p12 = identityToPkcs12(device, { password: 'x' }).toString('base64');
    expect(refusal(verifier.verify(body, p12, now))).toMatch(/malformed CMS|not a CMS/);
    expect(refusal(verifier.verify(body, 'A'.repeat(70_000), now))).toBe('Mdm-Signature header is too large');
  });

  it('a valid signature over a different body', () => {
    const signature = new CmsSigner(device).sign(body);
    const tampered = Buffer.from(body);
    const at = tampered.length - 10;
    tampered[at] = tampered[at]! ^ 1;
    expect(refusal(verifier.verify(tampered, signature, now))).toBe('message digest does not match the body');
  });

  it('a certificate from another CA', () => {
    const otherCa = createDeviceCa({ now });
    const stranger = issueDeviceIdentity(otherCa, { now, commonName: 'haishin device 1', keyBits: 1024 });
    expect(refusal(verifier.verify(body, new CmsSigner(stranger).sign(body), now))).toBe(
      'signer certificate not issued by the haishin device CA',
    );
  });

  it('an expired certificate, and one not yet valid', () => {
    const longAgo = new Date(now.getTime() - 730 * DAY);
    const old = issueDeviceIdentity(ca, { now: longAgo, commonName: 'old', validDays: 30, keyBits: 1024 });
    const reason = refusal(verifier.verify(body, new CmsSigner(old).sign(body), now));
    expect(reason).toBe(`signer certificate expired at ${old.notAfter.toISOString()}`);
    expect(verifier.verify(body, new CmsSigner(old).sign(body), new Date(longAgo.getTime() + DAY)).ok).toBe(
      true,
    );
    const future = issueDeviceIdentity(ca, {
      now: new Date(now.getTime() + 10 * DAY),
      commonName: 'future',
      keyBits: 1024,
    });
    expect(refusal(verifier.verify(body, new CmsSigner(future).sign(body), now))).toMatch(
      /^signer certificate not valid before /,
    );
  });

  it('validity is checked on every call even when the certificate is cached', () => {
    const signature = new CmsSigner(device).sign(body);
    expect(verifier.verify(body, signature, now).ok).toBe(true);
    expect(refusal(verifier.verify(body, signature, new Date(now.getTime() + 400 * DAY)))).toMatch(
      /^signer certificate expired at /,
    );
    expect(refusal(verifier.verify(body, signature, new Date(Number.NaN)))).toBe(
      'no valid time to check the certificate against',
    );
  });

  it('a CA-issued certificate without clientAuth', () => {
    // Built with node-forge so the production issuing code cannot be bent into making one.
    const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 1024 });
    const cert = forge.pki.createCertificate();
    cert.publicKey = forge.pki.publicKeyFromPem(publicKey.export({ type: 'spki', format: 'pem' }) as string);
    cert.serialNumber = '0badc0de';
    cert.validity.notBefore = new Date(now.getTime() - DAY);
    cert.validity.notAfter = new Date(now.getTime() + DAY);
    cert.setSubject([{ name: 'commonName', value: 'server only' }]);
    cert.setIssuer(forge.pki.certificateFromPem(ca.certPem).subject.attributes);
    cert.setExtensions([{ name: 'extKeyUsage', serverAuth: true }]);
    cert.sign(forge.pki.privateKeyFromPem(ca.keyPem), forge.md.sha256.create());
    const serverOnly = {
      certPem: forge.pki.certificateToPem(cert),
      keyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }) as string,
    };
    expect(new X509Certificate(serverOnly.certPem).verify(new X509Certificate(ca.certPem).publicKey)).toBe(
      true,
    );
    expect(refusal(verifier.verify(body, new CmsSigner(serverOnly).sign(body), now))).toBe(
      'signer certificate lacks clientAuth',
    );
  });

  it('the CA certificate itself as signer', () => {
    expect(refusal(verifier.verify(body, new CmsSigner(ca).sign(body), now))).toBe(
      'signer certificate is a CA certificate',
    );
  });

  it('two certificates where the signer is the foreign one: the genuine one next to it does not help', () => {
    const otherCa = createDeviceCa({ now });
    const stranger = issueDeviceIdentity(otherCa, { now, commonName: 'haishin device 1', keyBits: 1024 });
    const signature = withExtraCertificate(new CmsSigner(stranger).sign(body), device.certPem);
    expect(opensslCertCount(signature)).toBe(2);
    expect(refusal(verifier.verify(body, signature, now))).toBe(
      'signer certificate not issued by the haishin device CA',
    );
  });

  it("a genuine device certificate with someone else's key", () => {
    const thief = issueDeviceIdentity(createDeviceCa({ now }), { now, commonName: 'thief', keyBits: 1024 });
    const signature = new CmsSigner({ certPem: device.certPem, keyPem: thief.keyPem }).sign(body);
    expect(refusal(verifier.verify(body, signature, now))).toBe(
      'signature does not verify with the signer certificate',
    );
  });

  it('a signer that matches no certificate, and one with no certificates at all', () => {
    const stranger = issueDeviceIdentity(ca, { now, commonName: 'x', keyBits: 1024 });
    const swapped = replaceCertificates(new CmsSigner(stranger).sign(body), [device.certPem]);
    expect(refusal(verifier.verify(body, swapped, now))).toBe(
      'no certificate in the signature matches the signer',
    );
    const none = replaceCertificates(new CmsSigner(stranger).sign(body), []);
    expect(refusal(verifier.verify(body, none, now))).toBe(
      'no certificate in the signature matches the signer',
    );
  });

  it('an unsupported digest algorithm (SHA-224)', () => {
    const der = Buffer.from(new CmsSigner(device).sign(body), 'base64');
    const sha256 = Buffer.from('608648016503040201', 'hex');
    const sha224 = Buffer.from('608648016503040204', 'hex');
    let at = der.indexOf(sha256);
    expect(at).toBeGreaterThan(0);
    for (; at >= 0; at = der.indexOf(sha256, at + 1)) sha224.copy(der, at);
    expect(refusal(verifier.verify(body, der.toString('base64'), now))).toBe(
      'unsupported digest algorithm 2.16.840.1.101.3.4.2.4',
    );
  });

  it('survives 2,000 random mutations without throwing or accepting another body', () => {
    const signatures = [
      new CmsSigner(device).sign(body),
      opensslSign('device.pem', 'device.key', ['-md', 'sha256', '-stream']),
    ];
    const other = Buffer.from(body.toString().replace('Authenticate', 'TokenUpdate!'));
    const reasons = new Map<string, number>();
    let acceptedSameBody = 0;
    for (let i = 0; i < 2000; i++) {
      const der = Buffer.from(signatures[i % 2]!, 'base64');
      const mutated = mutate(der, i);
      const header =
        i % 50 === 49 ? mutated.toString('base64').slice(0, -3) + '*' : mutated.toString('base64');
      const tampered = verifier.verify(other, header, now);
      expect(tampered.ok).toBe(false);
      if (!tampered.ok) {
        const key = tampered.reason.replace(/ \(.*$/, '');
        reasons.set(key, (reasons.get(key) ?? 0) + 1);
      }
      if (verifier.verify(body, header, now).ok) acceptedSameBody++;
    }
    // Sanity: the mutations reach deep into the structure, not only the base64 check.
    expect(reasons.size).toBeGreaterThan(5);
    expect(acceptedSameBody).toBeLessThan(2000);
  });
});

describe('Mdm-Signature: the public-key operation in the thread pool (verifyAsync)', () => {
  it('answers exactly as verify does, accepted or refused', async () => {
    const ec = issueDeviceIdentity(ca, { now, commonName: 'p256 async', keyType: 'ec' });
    const otherCa = createDeviceCa({ now });
    const stranger = issueDeviceIdentity(otherCa, { now, commonName: 'stranger', keyBits: 1024 });
    const good = new CmsSigner(device).sign(body);
    const der = Buffer.from(good, 'base64');
    const badSignature = Buffer.from(der);
    badSignature[badSignature.length - 1] = badSignature[badSignature.length - 1]! ^ 1;
    const tampered = Buffer.from(body);
    tampered[tampered.length - 10] = tampered[tampered.length - 10]! ^ 1;
    const cases: [Uint8Array, string | undefined, Date][] = [
      [body, good, now],
      [body, new CmsSigner(ec).sign(body), now],
      [body, badSignature.toString('base64'), now],
      [tampered, good, now],
      [body, new CmsSigner(stranger).sign(body), now],
      [body, good, new Date(device.notAfter.getTime() + DAY)],
      [body, good, new Date(Number.NaN)],
      [body, '!!!not base64!!!', now],
      [body, undefined, now],
      [body, good.replace(/\+/g, '-'), now],
    ];
    // Twice: cold, then with the signer certificates cached.
    for (let round = 0; round < 2; round++) {
      const fresh = new MdmSignatureVerifier(ca.certPem);
      for (const [b, header, at] of cases) {
        expect(await fresh.verifyAsync(b, header, at)).toEqual(verifier.verify(b, header, at));
        expect(await verifier.verifyAsync(b, header, at)).toEqual(verifier.verify(b, header, at));
      }
    }
    expect(refusal(await verifier.verifyAsync(body, badSignature.toString('base64'), now))).toBe(
      'signature does not verify with the signer certificate',
    );
    expect((await verifier.verifyAsync(body, good, now)).ok).toBe(true);
  });
});

describe('Mdm-Signature: verifier cache', () => {
  it('stays correct when the cache is tiny or disabled', () => {
    const a = issueDeviceIdentity(ca, { now, commonName: 'a', keyBits: 1024 });
    const b = issueDeviceIdentity(ca, { now, commonName: 'b', keyBits: 1024 });
    for (const cacheSize of [0, 1]) {
      const small = new MdmSignatureVerifier(ca.certPem, { cacheSize });
      for (let i = 0; i < 4; i++) {
        for (const identity of [a, b]) {
          expect(small.verify(body, new CmsSigner(identity).sign(body), now)).toMatchObject({
            ok: true,
            fingerprintSha256: identity.fingerprintSha256,
          });
        }
      }
    }
  });
});

// ---- helpers building odd CMS structures with node-forge's ASN.1 (independent of our reader) ----

function signedDataOf(signatureB64: string): { root: forge.asn1.Asn1; signedData: forge.asn1.Asn1[] } {
  const root = forge.asn1.fromDer(Buffer.from(signatureB64, 'base64').toString('binary'));
  const explicit = (root.value as forge.asn1.Asn1[])[1]!;
  const sd = (explicit.value as forge.asn1.Asn1[])[0]!;
  return { root, signedData: sd.value as forge.asn1.Asn1[] };
}

const derToB64 = (root: forge.asn1.Asn1): string =>
  Buffer.from(forge.asn1.toDer(root).getBytes(), 'binary').toString('base64');
const certAsn1 = (pem: string): forge.asn1.Asn1 => forge.asn1.fromDer(pemBody(pem).toString('binary'));

/** Puts `pem` in front of the certificates already there. */
function withExtraCertificate(signatureB64: string, pem: string): string {
  const { root, signedData } = signedDataOf(signatureB64);
  (signedData[3]!.value as forge.asn1.Asn1[]).unshift(certAsn1(pem));
  return derToB64(root);
}

function replaceCertificates(signatureB64: string, pems: string[]): string {
  const { root, signedData } = signedDataOf(signatureB64);
  signedData[3]!.value = pems.map(certAsn1);
  return derToB64(root);
}

/**
 * Re-encodes ContentInfo, SignedData, the certificate set, SignerInfo and its signed attributes
 * with indefinite lengths, leaving certificates and primitives as they were: the signature stays
 * valid because it covers the DER SET of the attributes, not their transfer encoding.
 */
function toIndefinite(signatureB64: string): string {
  const der = Buffer.from(signatureB64, 'base64');
  const raw = (t: Tlv) => der.subarray(t.start, t.end);
  const indefinite = (tag: number, parts: Uint8Array[]) =>
    Buffer.concat([Buffer.from([tag, 0x80]), ...parts, Buffer.from([0, 0])]);
  const [contentType, explicit] = children(der, readTlv(der, 0));
  const [signedData] = children(der, explicit!);
  const fields = children(der, signedData!);
  const parts = fields.map((field, index) => {
    if (field.tag === 0xa0) return indefinite(0xa0, children(der, field).map(raw));
    if (index !== fields.length - 1) return raw(field);
    const signerInfos = children(der, field).map((si) =>
      indefinite(
        0x30,
        children(der, si).map((f) => (f.tag === 0xa0 ? indefinite(0xa0, children(der, f).map(raw)) : raw(f))),
      ),
    );
    return indefinite(0x31, signerInfos);
  });
  return indefinite(0x30, [raw(contentType!), indefinite(0xa0, [indefinite(0x30, parts)])]).toString(
    'base64',
  );
}

function opensslCertCount(signatureB64: string): number {
  const file = write('count.der', Buffer.from(signatureB64, 'base64'));
  const out = openssl(['cms', '-cmsout', '-print', '-inform', 'DER', '-in', file]).stdout;
  return (out.match(/d\.certificate:/g) ?? []).length;
}

/** Deterministic-per-index damage: byte flips, truncation, insertion, length-byte edits. */
function mutate(der: Buffer, i: number): Buffer {
  const copy = Buffer.from(der);
  const pick = (n: number) => Math.floor(Math.random() * n);
  switch (i % 5) {
    case 0:
      for (let k = 0, n = 1 + pick(3); k < n; k++) {
        const at = pick(copy.length);
        copy[at] = copy[at]! ^ (1 << pick(8));
      }
      return copy;
    case 1:
      return copy.subarray(0, pick(copy.length));
    case 2: {
      const at = pick(copy.length);
      return Buffer.concat([copy.subarray(0, at), randomBytes(1 + pick(4)), copy.subarray(at)]);
    }
    case 3:
      copy[pick(Math.min(copy.length, 64))] = pick(256);
      return copy;
    default: {
      const at = pick(copy.length);
      return Buffer.concat([copy.subarray(0, at), copy.subarray(at + 1 + pick(8))]);
    }
  }
}

// SCEP as the device identity source (issue 17 item 2, decision 0024): the SCEP service, the
// profile's com.apple.security.scep payload and the simulated iPad's SCEP client, in process.
import { createPublicKey, generateKeyPairSync, randomBytes, X509Certificate } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../src/core/clock.ts';
import { parseConfig, ConfigError } from '../src/core/config.ts';
import { parsePlistDict } from '../src/mdm/plist.ts';
import {
  buildCsr,
  certsOf,
  pkcsReq,
  readSignedData,
  SCEP_OID,
  stringAttribute,
} from '../src/mdm/scep/pkimessage.ts';
import { selfSignedCertificate } from '../src/mdm/identity/ca.ts';
import { pemToDer } from '../src/mdm/identity/x509.ts';
import type { PlistDict } from '../src/mdm/plist.ts';
import { SimDevice } from '../src/sim/device/device.ts';
import { scepEnroll, ScepEnrollmentError } from '../src/sim/device/scep-client.ts';
import { startTestServer } from './support/server.ts';
import type { TestServer } from './support/server.ts';

const clock = new ManualClock(new Date());
let server: TestServer;

beforeAll(async () => {
  server = await startTestServer({
    clock,
    env: { HAISHIN_DEVICE_IDENTITY: 'scep', HAISHIN_SCEP_CHALLENGE_TTL: '10m' },
  });
});
afterAll(async () => {
  await server?.close();
});

async function scepPayload(): Promise<PlistDict> {
  const res = await fetch(server.enrollUrl());
  expect(res.status).toBe(200);
  const profile = parsePlistDict(await res.text());
  const payloads = profile.PayloadContent as PlistDict[];
  const scep = payloads.find((p) => p.PayloadType === 'com.apple.security.scep');
  if (!scep) throw new Error('no SCEP payload');
  return scep;
}

const caPem = () => server.haishin.deviceCa.certPem;

describe('the SCEP service', () => {
  it('GetCACaps lists what it does and GetCACert returns the issuing device CA (DER)', async () => {
    const caps = await fetch(`${server.baseUrl}/scep?operation=GetCACaps`);
    expect(caps.status).toBe(200);
    expect((await caps.text()).split('\n')).toEqual(
      expect.arrayContaining(['AES', 'POSTPKIOperation', 'SHA-256', 'SCEPStandard']),
    );
    // The service's own certificate (it signs answers and receives requests) and the issuing CA.
    const ca = await fetch(`${server.baseUrl}/scep?operation=GetCACert`);
    expect(ca.headers.get('content-type')).toBe('application/x-x509-ca-ra-cert');
    const [ra, issuing] = certsOf(Buffer.from(await ca.arrayBuffer())).map((d) => new X509Certificate(d));
    expect(issuing!.fingerprint256).toBe(new X509Certificate(caPem()).fingerprint256);
    expect(ra!.checkIssued(issuing!)).toBe(true);
    expect(ra!.ca).toBe(false);
    const bad = await fetch(`${server.baseUrl}/scep?operation=Nope`);
    expect(bad.status).toBe(400);
  });

  it('issues a certificate of the device CA for the profile’s challenge, once', async () => {
    const payload = await scepPayload();
    const keys = await scepEnroll(payload, { fetch, now: clock.now(), keyBits: 1024 });
    const cert = new X509Certificate(keys.certPem);
    expect(cert.checkIssued(new X509Certificate(caPem()))).toBe(true);
    expect(cert.verify(new X509Certificate(caPem()).publicKey)).toBe(true);
    expect(cert.subject).toMatch(/CN=haishin device /);
    expect(cert.keyUsage ?? []).toEqual(expect.arrayContaining(['1.3.6.1.5.5.7.3.2']));
    // The same challenge a second time (another key, another transaction): refused.
    await expect(scepEnroll(payload, { fetch, now: clock.now(), keyBits: 1024 })).rejects.toThrow(
      /FAILURE \(badRequest\)/,
    );
  });

  it('refuses a wrong challenge and an expired one with FAILURE badRequest', async () => {
    const payload = await scepPayload();
    const content = payload.PayloadContent as PlistDict;
    const wrong = { ...payload, PayloadContent: { ...content, Challenge: 'not-the-challenge' } };
    await expect(scepEnroll(wrong, { fetch, now: clock.now(), keyBits: 1024 })).rejects.toThrow(
      ScepEnrollmentError,
    );
    clock.advance(11 * 60_000);
    await expect(scepEnroll(payload, { fetch, now: clock.now(), keyBits: 1024 })).rejects.toThrow(
      /FAILURE \(badRequest\)/,
    );
  });

  it('never fails on a damaged pkiMessage: truncated or flipped, the answer is a 400 or a FAILURE', async () => {
    const caRes = await fetch(`${server.baseUrl}/scep?operation=GetCACert`);
    const [raDer] = certsOf(Buffer.from(await caRes.arrayBuffer()));
    const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 1024 });
    const spki = createPublicKey(privateKey).export({ type: 'spki', format: 'der' });
    const certDer = pemToDer(
      selfSignedCertificate({ key: privateKey, commonName: 'fuzz', now: clock.now() }),
    );
    const message = pkcsReq({
      csrDer: buildCsr({ key: privateKey, spki, commonName: 'fuzz', challenge: 'not-a-challenge' }),
      caCertDer: raDer!,
      signer: { certDer, key: privateKey },
      transactionId: 'fuzz-transaction',
      senderNonce: randomBytes(16),
    });
    const damaged: Buffer[] = [];
    for (const cut of [1, 2, 10, 100, 500, message.length - 1]) damaged.push(message.subarray(0, cut));
    for (let i = 0; i < 24; i++) {
      const copy = Buffer.from(message);
      const at = Math.floor((i / 24) * copy.length);
      copy[at] = copy[at]! ^ 0xff;
      damaged.push(copy);
    }
    for (const body of damaged) {
      const res = await fetch(`${server.baseUrl}/scep?operation=PKIOperation`, {
        method: 'POST',
        body,
        headers: { 'content-type': 'application/x-pki-message' },
      });
      expect([200, 400]).toContain(res.status);
      if (res.status === 200) {
        const rep = readSignedData(Buffer.from(await res.arrayBuffer()), { signerCert: raDer! });
        expect(stringAttribute(rep.attributes, SCEP_OID.pkiStatus)).toBe('2');
      }
    }
    // The signature's last byte flipped: the transaction is answered FAILURE badMessageCheck.
    const forged = Buffer.from(message);
    forged[forged.length - 1] = forged[forged.length - 1]! ^ 0x01;
    const res = await fetch(`${server.baseUrl}/scep?operation=PKIOperation`, {
      method: 'POST',
      body: forged,
      headers: { 'content-type': 'application/x-pki-message' },
    });
    expect(res.status).toBe(200);
    const rep = readSignedData(Buffer.from(await res.arrayBuffer()), { signerCert: raDer! });
    expect(stringAttribute(rep.attributes, SCEP_OID.pkiStatus)).toBe('2');
    expect(stringAttribute(rep.attributes, SCEP_OID.failInfo)).toBe('1');
    expect(stringAttribute(rep.attributes, SCEP_OID.transactionID)).toBe('fuzz-transaction');
    expect(rep.content?.length ?? 0).toBe(0);
  });

  it('answers 400 to a PKIOperation that is not a signed pkiMessage', async () => {
    const res = await fetch(`${server.baseUrl}/scep?operation=PKIOperation`, {
      method: 'POST',
      body: Buffer.from('30030201ff', 'hex'),
      headers: { 'content-type': 'application/x-pki-message' },
    });
    expect(res.status).toBe(400);
  });
});

describe('a simulated iPad enrolling through SCEP', () => {
  it('makes its key, obtains its identity and checks in with it', async () => {
    const device = new SimDevice({});
    await device.enroll(server.enrollUrl());
    expect(device.enrolled).toBe(true);
    const row = await server.haishin.store.getDeviceByUdid(device.udid);
    expect(row?.status).toBe('enrolled');
    expect(row?.group_id).toBe(server.rootGroupId);
    expect((await device.connect()).length).toBeGreaterThanOrEqual(0);
  });
});

describe('identity renewal through SCEP (decisions 0023, 0024)', () => {
  const renewalClock = new ManualClock(new Date());
  let renewing: TestServer;
  beforeAll(async () => {
    renewing = await startTestServer({
      clock: renewalClock,
      env: {
        HAISHIN_DEVICE_IDENTITY: 'scep',
        HAISHIN_DEVICE_IDENTITY_VALIDITY: '10d',
        HAISHIN_IDENTITY_RENEW_BEFORE: '5d',
      },
    });
  });
  afterAll(async () => {
    await renewing?.close();
  });

  it('the renewal profile carries a SCEP payload bound to the device; the iPad obtains and uses its new identity', async () => {
    const device = new SimDevice({ clock: renewalClock });
    await device.enroll(renewing.enrollUrl());
    const store = renewing.haishin.store;
    const before = (await store.getDeviceByUdid(device.udid))!;
    renewalClock.advance(6 * 86_400_000);
    const pass = await renewing.haishin.identityRenewal.pass();
    expect(pass).toMatchObject({ due: 1, sent: 1, failed: 0 });
    // Nothing is pending until the iPad asks: the key is made on the iPad.
    expect((await store.getDeviceByUdid(device.udid))!.pending_cert_fingerprint).toBeNull();

    await device.connect();
    expect(device.received).toContain('InstallProfile');
    expect(device.identityRenewals).toBe(1);
    const after = (await store.getDeviceByUdid(device.udid))!;
    expect(after.cert_fingerprint).not.toBe(before.cert_fingerprint);
    expect(after.previous_cert_fingerprint).toBe(before.cert_fingerprint);
    expect(after.pending_cert_fingerprint).toBeNull();
    expect(new Date(after.identity_not_after!).getTime()).toBeGreaterThan(
      new Date(before.identity_not_after!).getTime(),
    );
    // Issued through the renewal's challenge, which names this device.
    const challenge = await store.db.kysely
      .selectFrom('scep_challenges')
      .selectAll()
      .where('cert_fingerprint', '=', after.cert_fingerprint)
      .executeTakeFirst();
    expect(challenge?.device_id).toBe(before.id);
    const identity = await store.db.kysely
      .selectFrom('identities')
      .selectAll()
      .where('fingerprint', '=', after.cert_fingerprint)
      .executeTakeFirst();
    expect(identity).toMatchObject({ device_id: before.id, group_id: before.group_id });
    // It keeps checking in with the new identity past the old one's expiry.
    renewalClock.advance(5 * 86_400_000);
    const log = await device.connect();
    expect(log.every((e) => e.status === 200)).toBe(true);
  });
});

describe('HAISHIN_DEVICE_IDENTITY', () => {
  it('defaults to pkcs12 and refuses anything else with one clear line', () => {
    expect(parseConfig({}).deviceIdentity.source).toBe('pkcs12');
    expect(parseConfig({ HAISHIN_DEVICE_IDENTITY: 'scep' }).deviceIdentity.source).toBe('scep');
    expect(() => parseConfig({ HAISHIN_DEVICE_IDENTITY: 'p12' })).toThrow(ConfigError);
    expect(() => parseConfig({ HAISHIN_DEVICE_IDENTITY: 'p12' })).toThrow(/must be pkcs12 or scep/);
  });
});

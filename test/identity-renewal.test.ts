/**
 * Device identity renewal and CA rotation (issue 17, decision 0023), in process on a manual clock:
 * the renewal pass, the InstallProfile it queues (validated against Apple's schema), what the
 * simulated iPad does with it, and which certificates haishin accepts for which device.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID, X509Certificate } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../src/core/clock.ts';
import { parseConfig } from '../src/core/config.ts';
import { deviceInformation } from '../src/mdm/commands.ts';
import { rotateDeviceCa } from '../src/mdm/device-ca.ts';
import { createDeviceCa, issueDeviceIdentity, pkcs12ToIdentity } from '../src/mdm/identity/ca.ts';
import type { CertAndKey } from '../src/mdm/identity/ca.ts';
import { buildPlist, parsePlistDict } from '../src/mdm/plist.ts';
import type { PlistDict } from '../src/mdm/plist.ts';
import { SimDevice } from '../src/sim/device/device.ts';
import { CmsSigner } from '../src/sim/device/signer.ts';
import { SecretBox } from '../src/store/secretbox.ts';
import { Store } from '../src/store/store.ts';
import {
  commandKeys,
  commandSchema,
  formatProblems,
  profileSchema,
  validateDict,
} from './support/apple-schema.ts';
import { startTestServer, TEST_TOPIC } from './support/server.ts';
import type { TestServer } from './support/server.ts';

const DAY = 86_400_000;
const ADMIN = 'test-admin-token-renewal-0123456789';
const START = '2026-03-01T00:00:00Z';

/** A device driven by hand: its own signers, so a test chooses which identity signs what. */
class HandDevice {
  readonly udid = `HAND-${Math.random().toString(16).slice(2, 10).toUpperCase()}`;
  signer!: CmsSigner;
  identity!: CertAndKey;
  profileIdentifier = '';
  constructor(
    public server: TestServer,
    readonly clock: ManualClock,
  ) {}

  async enroll(): Promise<void> {
    const response = await fetch(this.server.enrollUrl());
    const profile = parsePlistDict(await response.text());
    this.profileIdentifier = String(profile.PayloadIdentifier);
    this.use(identityOf(profile));
    expect(await this.checkin({ MessageType: 'Authenticate', Topic: TEST_TOPIC, UDID: this.udid })).toBe(200);
    expect(await this.tokenUpdate()).toBe(200);
  }

  use(identity: CertAndKey): void {
    this.identity = identity;
    this.signer = new CmsSigner(identity, { now: () => this.clock.now() });
  }

  tokenUpdate(signer = this.signer): Promise<number> {
    return this.checkin(
      {
        MessageType: 'TokenUpdate',
        Topic: TEST_TOPIC,
        UDID: this.udid,
        Token: Buffer.alloc(32, 7),
        PushMagic: 'MAGIC',
      },
      signer,
    );
  }

  async checkin(message: PlistDict, signer = this.signer): Promise<number> {
    return (await this.#put('checkin', message, signer)).status;
  }

  async report(
    message: PlistDict,
    signer = this.signer,
  ): Promise<{ status: number; command: PlistDict | null }> {
    const { status, text } = await this.#put('connect', { UDID: this.udid, ...message }, signer);
    return { status, command: status === 200 && text.length > 0 ? parsePlistDict(text) : null };
  }

  async #put(endpoint: string, message: PlistDict, signer: CmsSigner) {
    const body = Buffer.from(buildPlist(message));
    const response = await fetch(`${this.server.baseUrl}/mdm/${endpoint}`, {
      method: 'PUT',
      headers: { 'mdm-signature': signer.sign(body) },
      body,
    });
    return { status: response.status, text: await response.text() };
  }
}

function identityOf(profile: PlistDict): CertAndKey {
  const payloads = profile.PayloadContent as PlistDict[];
  const mdm = payloads.find((p) => p.PayloadType === 'com.apple.mdm')!;
  const p12 = payloads.find((p) => p.PayloadUUID === mdm.IdentityCertificateUUID)!;
  return pkcs12ToIdentity(p12.PayloadContent as Uint8Array, String(p12.Password));
}

const fingerprint = (pem: string) => new X509Certificate(pem).fingerprint256.replace(/:/g, '').toLowerCase();

describe('identity renewal', () => {
  const clock = new ManualClock(START);
  let server: TestServer;

  beforeAll(async () => {
    server = await startTestServer({
      clock,
      env: {
        HAISHIN_DEVICE_IDENTITY_VALIDITY: '365d',
        HAISHIN_IDENTITY_RENEW_BEFORE: '30d',
        HAISHIN_ADMIN_TOKEN: ADMIN,
      },
    });
  });
  afterAll(async () => {
    await server?.close();
  });
  afterEach(() => {
    clock.set(START);
  });

  const row = (udid: string) => server.haishin.store.getDeviceByUdid(udid);
  const pass = () => server.haishin.identityRenewal.pass();

  it('leaves identities outside the window alone', async () => {
    const device = new HandDevice(server, clock);
    await device.enroll();
    clock.advance(300 * DAY);
    const result = await pass();
    expect(result.sent).toBe(0);
    expect((await row(device.udid))!.pending_cert_fingerprint).toBeNull();
    expect((await device.report({ Status: 'Idle' })).command).toBeNull();
  });

  it('sends the enrollment profile again with a new identity; the device keeps checking in past the old expiry', async () => {
    const device = new HandDevice(server, clock);
    await device.enroll();
    const old = device.identity;
    const oldNotAfter = new Date(new X509Certificate(old.certPem).validTo);
    expect((await row(device.udid))!.identity_not_after).toBe(oldNotAfter.toISOString());

    clock.set(new Date(oldNotAfter.getTime() - 20 * DAY));
    const result = await pass();
    expect(result.sent).toBeGreaterThanOrEqual(1);
    const pending = (await row(device.udid))!.pending_cert_fingerprint;
    expect(pending).not.toBeNull();
    // A second pass while the command waits only wakes the device again: no second identity.
    const again = await pass();
    expect(again.sent).toBe(0);
    expect((await row(device.udid))!.pending_cert_fingerprint).toBe(pending);

    const { command: envelope } = await device.report({ Status: 'Idle' });
    const command = envelope!.Command as PlistDict;
    expect(command.RequestType).toBe('InstallProfile');
    expect(
      formatProblems(validateDict(command, commandKeys(commandSchema('InstallProfile')), { os: 'iOS' })),
    ).toBe('');
    const profile = parsePlistDict(Buffer.from(command.Payload as Uint8Array).toString('utf8'));
    expect(formatProblems(validateDict(profile, profileSchema('TopLevel').payloadkeys, { os: 'iOS' }))).toBe(
      '',
    );
    expect(profile.PayloadIdentifier).toBe(device.profileIdentifier);
    const mdm = (profile.PayloadContent as PlistDict[]).find((p) => p.PayloadType === 'com.apple.mdm')!;
    expect(mdm).toMatchObject({
      ServerURL: `${server.baseUrl}/mdm/connect`,
      CheckInURL: `${server.baseUrl}/mdm/checkin`,
      Topic: TEST_TOPIC,
    });
    const fresh = identityOf(profile);
    expect(fingerprint(fresh.certPem)).toBe(pending);
    const freshCert = new X509Certificate(fresh.certPem);
    expect(freshCert.checkIssued(new X509Certificate(server.haishin.deviceCa.certPem))).toBe(true);
    expect(new Date(freshCert.validTo).getTime()).toBeGreaterThan(oldNotAfter.getTime());

    // The device installs it and acknowledges, signed by the new identity (as the simulator does).
    const newSigner = new CmsSigner(fresh, { now: () => clock.now() });
    const ack = await device.report(
      { Status: 'Acknowledged', CommandUUID: String(envelope!.CommandUUID) },
      newSigner,
    );
    expect(ack.status).toBe(200);
    const after = (await row(device.udid))!;
    expect(after.cert_fingerprint).toBe(pending);
    expect(after.pending_cert_fingerprint).toBeNull();
    expect(after.previous_cert_fingerprint).toBe(fingerprint(old.certPem));
    expect(after.identity_renewal_command).toBeNull();
    // The answered command no longer holds the device's key.
    const stored = await server.haishin.store.db.kysely
      .selectFrom('commands')
      .select('payload')
      .where('uuid', '=', String(envelope!.CommandUUID))
      .executeTakeFirstOrThrow();
    const redacted = parsePlistDict(stored.payload).Command as PlistDict;
    expect(redacted.RequestType).toBe('InstallProfile');
    expect((redacted.Payload as Uint8Array).byteLength).toBe(0);
    expect(after.identity_not_after).toBe(freshCert.validTo && new Date(freshCert.validTo).toISOString());

    // The old identity is still accepted until it expires (messages in flight), then refused.
    expect(await device.tokenUpdate()).toBe(200);
    clock.set(new Date(oldNotAfter.getTime() + DAY));
    expect(await device.tokenUpdate()).toBe(400);
    device.use(fresh);
    expect(await device.tokenUpdate()).toBe(200);
    expect((await device.report({ Status: 'Idle' })).status).toBe(200);
    // Renewed, it is no longer due.
    expect((await pass()).sent).toBe(0);
  });

  it('an acknowledgement signed by the old identity promotes the new one as well', async () => {
    const device = new HandDevice(server, clock);
    await device.enroll();
    const notAfter = new Date(new X509Certificate(device.identity.certPem).validTo);
    clock.set(new Date(notAfter.getTime() - 10 * DAY));
    await pass();
    const { command: envelope } = await device.report({ Status: 'Idle' });
    const fresh = identityOf(
      parsePlistDict(Buffer.from((envelope!.Command as PlistDict).Payload as Uint8Array).toString('utf8')),
    );
    expect(
      (await device.report({ Status: 'Acknowledged', CommandUUID: String(envelope!.CommandUUID) })).status,
    ).toBe(200);
    expect((await row(device.udid))!.cert_fingerprint).toBe(fingerprint(fresh.certPem));
  });

  it('an Authenticate with the renewed identity (iOS after replacing its profile) keeps the enrollment going', async () => {
    const device = new HandDevice(server, clock);
    await device.enroll();
    const notAfter = new Date(new X509Certificate(device.identity.certPem).validTo);
    clock.set(new Date(notAfter.getTime() - 10 * DAY));
    await pass();
    const { command: envelope } = await device.report({ Status: 'Idle' });
    const fresh = identityOf(
      parsePlistDict(Buffer.from((envelope!.Command as PlistDict).Payload as Uint8Array).toString('utf8')),
    );
    // Something else is queued meanwhile: a new enrollment would clear it, a renewal must not.
    const query = deviceInformation(randomUUID().toUpperCase(), ['OSVersion']);
    await server.haishin.store.mdm.enqueue(
      [{ enrollmentId: device.udid, command: query, priority: 0 }],
      clock.now(),
    );
    device.use(fresh);
    expect(await device.checkin({ MessageType: 'Authenticate', Topic: TEST_TOPIC, UDID: device.udid })).toBe(
      200,
    );
    expect(await device.tokenUpdate()).toBe(200);
    const after = (await row(device.udid))!;
    expect(after.status).toBe('enrolled');
    expect(after.cert_fingerprint).toBe(fingerprint(fresh.certPem));
    expect(after.pending_cert_fingerprint).toBeNull();
    expect(
      (await device.report({ Status: 'Acknowledged', CommandUUID: String(envelope!.CommandUUID) })).command
        ?.CommandUUID,
    ).toBe(query.uuid);
  });

  it('a refused InstallProfile is retried at the next pass with another identity', async () => {
    const device = new HandDevice(server, clock);
    await device.enroll();
    const notAfter = new Date(new X509Certificate(device.identity.certPem).validTo);
    clock.set(new Date(notAfter.getTime() - 10 * DAY));
    await pass();
    const first = (await row(device.udid))!.pending_cert_fingerprint;
    const { command: envelope } = await device.report({ Status: 'Idle' });
    const answer = await device.report({
      Status: 'Error',
      CommandUUID: String(envelope!.CommandUUID),
      ErrorChain: [
        { ErrorCode: 4001, ErrorDomain: 'MCInstallationErrorDomain', LocalizedDescription: 'failed' },
      ],
    });
    expect(answer.status).toBe(200);
    const failed = (await row(device.udid))!;
    expect(failed.pending_cert_fingerprint).toBeNull();
    expect(failed.identity_renewal_command).toBeNull();
    clock.advance(DAY);
    await pass();
    const second = (await row(device.udid))!.pending_cert_fingerprint;
    expect(second).not.toBeNull();
    expect(second).not.toBe(first);
    expect(((await device.report({ Status: 'Idle' })).command!.Command as PlistDict).RequestType).toBe(
      'InstallProfile',
    );
  });

  it('accepts a renewed certificate only for its device, and only from the device CA', async () => {
    const x = new HandDevice(server, clock);
    const y = new HandDevice(server, clock);
    await x.enroll();
    await y.enroll();
    const notAfter = new Date(new X509Certificate(x.identity.certPem).validTo);
    clock.set(new Date(notAfter.getTime() - 10 * DAY));
    await pass();
    const { command: envelope } = await x.report({ Status: 'Idle' });
    const xFresh = identityOf(
      parsePlistDict(Buffer.from((envelope!.Command as PlistDict).Payload as Uint8Array).toString('utf8')),
    );
    const xSigner = new CmsSigner(xFresh, { now: () => clock.now() });
    // X's new certificate signing Y's messages: refused, whatever the message.
    expect(await y.tokenUpdate(xSigner)).toBe(400);
    expect((await y.report({ Status: 'Idle' }, xSigner)).status).toBe(400);
    expect(await y.checkin({ MessageType: 'Authenticate', Topic: TEST_TOPIC, UDID: y.udid }, xSigner)).toBe(
      400,
    );
    expect((await row(y.udid))!.cert_fingerprint).toBe(fingerprint(y.identity.certPem));

    // A certificate for X from another CA (same name, same key type): refused.
    const rogueCa = createDeviceCa({ now: clock.now(), commonName: 'haishin device CA' });
    const rogue = issueDeviceIdentity(rogueCa, {
      now: clock.now(),
      commonName: 'haishin device X',
      keyBits: 1024,
    });
    const rogueSigner = new CmsSigner(rogue, { now: () => clock.now() });
    expect(await x.tokenUpdate(rogueSigner)).toBe(400);
    expect((await x.report({ Status: 'Idle' }, rogueSigner)).status).toBe(400);
    // Another identity of haishin's CA that was never sent to X (a fresh enrollment's): refused too.
    const other = identityOf(parsePlistDict(await (await fetch(server.enrollUrl())).text()));
    expect(await x.tokenUpdate(new CmsSigner(other, { now: () => clock.now() }))).toBe(400);

    // X itself may use it.
    expect(await x.tokenUpdate(xSigner)).toBe(200);
    expect((await row(x.udid))!.cert_fingerprint).toBe(fingerprint(xFresh.certPem));
  });

  it('the simulated iPad replaces its MDM profile in place and signs with the new identity', async () => {
    const ipad = new SimDevice({ clock });
    await ipad.enroll(server.enrollUrl());
    const before = ipad.identityNotAfter!;
    clock.set(new Date(before.getTime() - 5 * DAY));
    await pass();
    const log = await ipad.connect();
    expect(log.map((l) => l.status)).toEqual([200, 200]);
    expect(ipad.received).toContain('InstallProfile');
    expect(ipad.identityRenewals).toBe(1);
    expect(ipad.identityNotAfter!.getTime()).toBeGreaterThan(before.getTime());
    clock.set(new Date(before.getTime() + DAY));
    expect(await ipad.tokenUpdate()).toBe(200);
    expect((await ipad.connect()).every((l) => l.status === 200)).toBe(true);
  });

  it('counts expired, expiring and renewing identities in GET /api/v1/status', async () => {
    const quiet = new HandDevice(server, clock);
    await quiet.enroll();
    const notAfter = new Date(new X509Certificate(quiet.identity.certPem).validTo);
    clock.set(new Date(notAfter.getTime() + DAY));
    const status = (await (
      await fetch(`${server.baseUrl}/api/v1/status`, {
        headers: { authorization: `Bearer ${ADMIN}` },
      })
    ).json()) as { deviceIdentities: { expired: number; expiring: number; renewing: number } };
    // Every device enrolled at START in this file whose renewal was not acknowledged has expired by now.
    expect(status.deviceIdentities.expired).toBeGreaterThanOrEqual(1);
    expect(status.deviceIdentities).toEqual(
      await server.haishin.store.identities.counts(clock.now(), new Date(clock.now().getTime() + 30 * DAY)),
    );
    expect(await quiet.tokenUpdate()).toBe(400);
  });
});

describe('device CA rotation', () => {
  const dir = mkdtempSync(join(tmpdir(), 'haishin-ca-rotate-'));
  const db = `sqlite:${join(dir, 'haishin.db')}`;
  const clock = new ManualClock(START);
  afterAll(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  it('a new CA issues; devices of the old one keep checking in, and renewal moves them over', async () => {
    let server = await startTestServer({ db, clock });
    const device = new HandDevice(server, clock);
    await device.enroll();
    const oldCa = server.haishin.deviceCa.certPem;
    await server.close();

    // `haishin ca rotate`, with the server stopped (SQLite: one process per file).
    const store = await Store.open(db, clock.now());
    const rotated = await rotateDeviceCa(store, new SecretBox('test-secret-key-0123456789'), clock.now());
    await store.close();
    expect(rotated.verifying).toHaveLength(2);

    server = await startTestServer({ db, clock });
    try {
      const newCa = server.haishin.deviceCa.certPem;
      expect(fingerprint(newCa)).not.toBe(fingerprint(oldCa));
      // The device enrolled under the old CA goes on (the server listens on a new port: the same URL for it).
      device.server = server;
      expect(await device.tokenUpdate()).toBe(200);
      // New enrollments come from the new CA.
      const enrolled = new HandDevice(server, clock);
      await enrolled.enroll();
      expect(new X509Certificate(enrolled.identity.certPem).checkIssued(new X509Certificate(newCa))).toBe(
        true,
      );
      // Renewal issues from the new CA.
      const notAfter = new Date(new X509Certificate(device.identity.certPem).validTo);
      clock.set(new Date(notAfter.getTime() - 10 * DAY));
      await server.haishin.identityRenewal.pass();
      const { command: envelope } = await device.report({ Status: 'Idle' });
      const fresh = identityOf(
        parsePlistDict(Buffer.from((envelope!.Command as PlistDict).Payload as Uint8Array).toString('utf8')),
      );
      expect(new X509Certificate(fresh.certPem).checkIssued(new X509Certificate(newCa))).toBe(true);
      device.use(fresh);
      expect(
        (await device.report({ Status: 'Acknowledged', CommandUUID: String(envelope!.CommandUUID) })).status,
      ).toBe(200);
      clock.set(new Date(notAfter.getTime() + DAY));
      expect(await device.tokenUpdate()).toBe(200);
    } finally {
      await server.close();
    }
  });
});

describe('identity configuration', () => {
  const parse = (env: Record<string, string>) => () => parseConfig(env);

  it('defaults to a year, renewed 30 days ahead by a daily pass', () => {
    expect(parseConfig({}).identity).toEqual({
      validityMs: 365 * DAY,
      renewBeforeMs: 30 * DAY,
      renewEveryMs: DAY,
    });
  });

  it('refuses a window that cannot work, naming the variable', () => {
    expect(parse({ HAISHIN_DEVICE_IDENTITY_VALIDITY: '0s' })).toThrow(/HAISHIN_DEVICE_IDENTITY_VALIDITY/);
    expect(parse({ HAISHIN_DEVICE_IDENTITY_VALIDITY: '20d' })).toThrow(
      /HAISHIN_IDENTITY_RENEW_BEFORE must be longer than 0 and shorter than HAISHIN_DEVICE_IDENTITY_VALIDITY/,
    );
    expect(parse({ HAISHIN_IDENTITY_RENEW_EVERY: '31d' })).toThrow(/HAISHIN_IDENTITY_RENEW_EVERY/);
    // Longer than a timer can wait is refused even within the window.
    expect(parse({ HAISHIN_IDENTITY_RENEW_BEFORE: '60d', HAISHIN_IDENTITY_RENEW_EVERY: '30d' })).toThrow(
      /at most 7d/,
    );
    expect(parse({ HAISHIN_IDENTITY_RENEW_EVERY: 'daily' })).toThrow(/HAISHIN_IDENTITY_RENEW_EVERY/);
  });
});

import { randomUUID, X509Certificate } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDeviceCa, issueDeviceIdentity, pkcs12ToIdentity } from '../src/mdm/identity/ca.ts';
import {
  deviceInformation,
  installedApplicationList,
  installVppApplication,
  restrictions,
} from '../src/mdm/commands.ts';
import { buildPlist, parsePlistDict } from '../src/mdm/plist.ts';
import type { PlistDict } from '../src/mdm/plist.ts';
import { SimDevice } from '../src/sim/device/device.ts';
import { CmsSigner } from '../src/sim/device/signer.ts';
import { startTestServer, TEST_TOPIC } from './support/server.ts';
import type { TestServer } from './support/server.ts';

let server: TestServer;

beforeAll(async () => {
  server = await startTestServer({ env: { HAISHIN_MAX_BODY_BYTES: String(64 * 1024) } });
});
afterAll(async () => {
  await server?.close();
});

async function enrolledDevice(spec: ConstructorParameters<typeof SimDevice>[0] = {}): Promise<SimDevice> {
  const device = new SimDevice(spec);
  await device.enroll(server.enrollUrl());
  return device;
}

async function enqueue(
  device: SimDevice,
  build: (uuid: string) => { uuid: string; requestType: string; payload: string },
  priority = 0,
) {
  const command = build(randomUUID().toUpperCase());
  await server.haishin.store.mdm.enqueue([{ enrollmentId: device.udid, command, priority }], new Date());
  return command;
}

const commandUuid = (exchange: { command: PlistDict | null }) => exchange.command?.CommandUUID;
const requestType = (exchange: { command: PlistDict | null }) =>
  (exchange.command?.Command as PlistDict | undefined)?.RequestType;

describe('enrollment profile', () => {
  it('is a signed-message MDM profile with a fresh identity issued by the device CA', async () => {
    const response = await fetch(server.enrollUrl());
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toContain('application/x-apple-aspen-config');
    const profile = parsePlistDict(await response.text());
    const payloads = profile.PayloadContent as PlistDict[];
    const mdm = payloads.find((p) => p.PayloadType === 'com.apple.mdm')!;
    expect(mdm).toMatchObject({
      ServerURL: `${server.baseUrl}/mdm/connect`,
      CheckInURL: `${server.baseUrl}/mdm/checkin`,
      Topic: TEST_TOPIC,
      SignMessage: true,
      CheckOutWhenRemoved: true,
      ServerCapabilities: ['com.apple.mdm.per-user-connections'],
    });
    const rights = mdm.AccessRights as number;
    expect(rights & 4096).toBe(4096);
    expect(rights & 16).toBe(16);
    const identityPayload = payloads.find((p) => p.PayloadUUID === mdm.IdentityCertificateUUID)!;
    expect(identityPayload.PayloadType).toBe('com.apple.security.pkcs12');
    const identity = pkcs12ToIdentity(
      identityPayload.PayloadContent as Uint8Array,
      String(identityPayload.Password),
    );
    const leaf = new X509Certificate(identity.certPem);
    const ca = new X509Certificate(server.haishin.deviceCa.certPem);
    expect(leaf.checkIssued(ca) && leaf.verify(ca.publicKey)).toBe(true);
    expect(leaf.keyUsage).toContain('1.3.6.1.5.5.7.3.2');

    const second = parsePlistDict(await (await fetch(server.enrollUrl())).text());
    const secondMdm = (second.PayloadContent as PlistDict[]).find((p) => p.PayloadType === 'com.apple.mdm')!;
    expect(secondMdm.IdentityCertificateUUID).not.toBe(mdm.IdentityCertificateUUID);
  });

  it('answers 404 with a clear message for an unknown group', async () => {
    const response = await fetch(server.enrollUrl('no-such-group'));
    expect(response.status).toBe(404);
    const body = (await response.json()) as { error: { code: string; message: string } };
    expect(body.error.code).toBe('enroll.group_not_found');
    expect(body.error.message).toContain('no-such-group');
  });
});

describe('enrollment with P-256 identities (HAISHIN_DEVICE_KEY_TYPE=ec, HAISHIN_PKCS12_ITERATIONS=1)', () => {
  it('issues an EC identity the device signs its check-ins with', async () => {
    const ecServer = await startTestServer({
      env: { HAISHIN_DEVICE_KEY_TYPE: 'ec', HAISHIN_PKCS12_ITERATIONS: '1' },
    });
    try {
      const profile = parsePlistDict(await (await fetch(ecServer.enrollUrl())).text());
      const payloads = profile.PayloadContent as PlistDict[];
      const identityPayload = payloads.find((p) => p.PayloadType === 'com.apple.security.pkcs12')!;
      const identity = pkcs12ToIdentity(
        identityPayload.PayloadContent as Uint8Array,
        String(identityPayload.Password),
      );
      expect(new X509Certificate(identity.certPem).publicKey.asymmetricKeyType).toBe('ec');

      const device = new SimDevice({});
      await device.enroll(ecServer.enrollUrl());
      const [row] = await ecServer.haishin.store.devices.list({
        serialNumber: device.serialNumber,
        limit: 1,
      });
      expect(row?.status).toBe('enrolled');
      const [idle] = await device.connect();
      expect(idle?.status).toBe(200);
    } finally {
      await ecServer.close();
    }
  });

  it('refuses an unknown key type at start', async () => {
    await expect(startTestServer({ env: { HAISHIN_DEVICE_KEY_TYPE: 'dsa' } })).rejects.toThrow(
      /HAISHIN_DEVICE_KEY_TYPE="dsa" must be rsa or ec/,
    );
  });
});

describe('check-in', () => {
  it('Authenticate → TokenUpdate → Idle leaves an enrolled device with its facts and raw plists', async () => {
    const device = await enrolledDevice({
      spec: { osVersion: '17.5.1', productName: 'iPad12,1', serialNumber: 'DMPXK0AAAA01' },
    });
    const enrolledSeen = (await server.haishin.store.getDeviceByUdid(device.udid))!.last_seen_at!;
    await new Promise((r) => setTimeout(r, 5));
    const started = new Date();
    const log = await device.connect();
    expect(log).toHaveLength(1);
    expect(log[0]).toMatchObject({ sent: 'Idle', status: 200, command: null });

    const row = await server.haishin.store.getDeviceByUdid(device.udid);
    expect(row).toMatchObject({
      status: 'enrolled',
      serial_number: 'DMPXK0AAAA01',
      os_version: '17.5.1',
      product_name: 'iPad12,1',
    });
    // The Idle is stored as the device's last contact (committed before its answer), not as a row.
    expect(row!.last_seen_at! > enrolledSeen).toBe(true);
    expect(new Date(row!.last_seen_at!).getTime()).toBeGreaterThanOrEqual(started.getTime());
    expect(row!.group_id).toBe(server.rootGroupId);

    const messages = await server.haishin.store.db.kysely
      .selectFrom('mdm_messages')
      .select(['message_type', 'raw'])
      .where('udid', '=', device.udid)
      .orderBy('received_at')
      .execute();
    expect(messages.map((m) => m.message_type)).toEqual(['Authenticate', 'TokenUpdate']);
    expect(parsePlistDict(messages[0]!.raw).SerialNumber).toBe('DMPXK0AAAA01');
    const enrollment = await server.haishin.store.db.kysely
      .selectFrom('enrollments')
      .selectAll()
      .where('id', '=', device.udid)
      .executeTakeFirstOrThrow();
    expect(enrollment.push_token).toBe(device.pushToken.toString('hex'));
    expect(enrollment.push_magic).toBe(device.pushMagic);
    expect(enrollment.topic).toBe(TEST_TOPIC);
  });

  it('a Shared iPad user channel gets its own enrollment and marks the device as Shared iPad', async () => {
    const device = await enrolledDevice({ spec: { sharedIpad: true } });
    expect(await device.userTokenUpdate('student01@school.example')).toBe(200);
    const channel = await server.haishin.store.db.kysely
      .selectFrom('enrollments')
      .selectAll()
      .where('id', '=', `${device.udid}:student01@school.example`)
      .executeTakeFirstOrThrow();
    expect(channel).toMatchObject({ type: 'user', user_short_name: 'student01@school.example', enabled: 1 });
    expect((await server.haishin.store.getDeviceByUdid(device.udid))?.is_shared_ipad).toBe(1);
  });

  it('CheckOut marks the device unenrolled; a check-in sent to /mdm/connect is accepted too', async () => {
    const device = await enrolledDevice();
    const body = Buffer.from(
      buildPlist({
        MessageType: 'TokenUpdate',
        UDID: device.udid,
        Topic: TEST_TOPIC,
        Token: Buffer.alloc(32, 7),
        PushMagic: 'PM-2',
      }),
    );
    expect((await device.sendRaw('connect', body)).status).toBe(200);
    expect(await device.checkOut()).toBe(200);
    const row = await server.haishin.store.getDeviceByUdid(device.udid);
    expect(row?.status).toBe('unenrolled');
    expect(row?.checked_out_at).not.toBeNull();
  });

  it('UserAuthenticate is declined with 410', async () => {
    const device = await enrolledDevice();
    const status = await device.checkIn({
      MessageType: 'UserAuthenticate',
      UDID: device.udid,
      UserID: randomUUID(),
    });
    expect(status).toBe(410);
  });
});

describe('command queue over HTTP', () => {
  it('Idle→CMD1, Ack→CMD2, Ack→empty, and query results become device facts', async () => {
    const device = await enrolledDevice({ spec: { availableGb: 0.1, restrictions: { ratingApps: 200 } } });
    const first = await enqueue(device, (u) => deviceInformation(u), 10);
    const second = await enqueue(device, (u) => restrictions(u), 0);
    const log = await device.connect();
    expect(log.map((e) => [e.sent, commandUuid(e) ?? null])).toEqual([
      ['Idle', first.uuid],
      ['Acknowledged', second.uuid],
      ['Acknowledged', null],
    ]);
    const row = await server.haishin.store.getDeviceByUdid(device.udid);
    expect(JSON.parse(row!.facts!).AvailableDeviceCapacity).toBeCloseTo(0.1);
    expect(JSON.parse(row!.restrictions!).restrictedValue.ratingApps.value).toBe(200);
    expect(await server.haishin.store.queueLength(device.udid)).toBe(0);
  });

  it('NotNow → empty; the next Idle gets the NotNow-ed command again', async () => {
    const device = await enrolledDevice();
    device.behaviours.set('InstallApplication', { kind: 'not_now' });
    const install = await enqueue(device, (u) => installVppApplication(u, { adamId: 361309726 }));
    await enqueue(device, (u) => installedApplicationList(u));
    const firstSession = await device.connect();
    expect(firstSession.map((e) => [e.sent, commandUuid(e) ?? null])).toEqual([
      ['Idle', install.uuid],
      ['NotNow', null],
    ]);
    device.behaviours.set('InstallApplication', { kind: 'acknowledge' });
    const secondSession = await device.connect();
    expect(commandUuid(secondSession[0]!)).toBe(install.uuid);
    expect(secondSession.map((e) => e.sent)).toEqual(['Idle', 'Acknowledged', 'Acknowledged']);
    const installCommand = parsePlistDict(install.payload).Command as PlistDict;
    expect(installCommand).toMatchObject({
      RequestType: 'InstallApplication',
      iTunesStoreID: 361309726,
      Options: { PurchaseMethod: 1 },
    });
  });

  it('a command handed out and never answered is handed out again (at-least-once)', async () => {
    const device = await enrolledDevice();
    device.behaviours.set('DeviceInformation', { kind: 'silent' });
    const queued = await enqueue(device, (u) => deviceInformation(u));
    expect(commandUuid((await device.connect())[0]!)).toBe(queued.uuid);
    device.behaviours.delete('DeviceInformation');
    expect(commandUuid((await device.connect())[0]!)).toBe(queued.uuid);
  });

  it('a new Authenticate clears the queue and nothing is sent before the next TokenUpdate', async () => {
    const device = await enrolledDevice();
    await enqueue(device, (u) => deviceInformation(u));
    expect(await device.authenticate()).toBe(200);
    expect(await server.haishin.store.queueLength(device.udid)).toBe(0);
    const afterAuth = await enqueue(device, (u) => restrictions(u));
    expect((await device.connect())[0]!.command).toBeNull();
    expect(await device.tokenUpdate()).toBe(200);
    expect(commandUuid((await device.connect())[0]!)).toBe(afterAuth.uuid);
  });

  it('a duplicate report is harmless', async () => {
    const device = await enrolledDevice();
    const queued = await enqueue(device, (u) => deviceInformation(u));
    const handedOut = await device.sendReport({ Status: 'Idle', UDID: device.udid });
    const report = device.answer(handedOut.command!)!;
    const first = await device.sendReport(report);
    const again = await device.sendReport(report);
    expect([first.status, again.status]).toEqual([200, 200]);
    expect(again.command).toBeNull();
    const results = await server.haishin.store.db.kysely
      .selectFrom('command_results')
      .selectAll()
      .where('command_uuid', '=', queued.uuid)
      .execute();
    expect(results).toHaveLength(1);
    expect(results[0]!.status).toBe('Acknowledged');
  });

  it('keeps an Error report with its ErrorChain and RejectionReason raw', async () => {
    const device = await enrolledDevice();
    const chain = [
      {
        ErrorCode: 12064,
        ErrorDomain: 'MCMDMErrorDomain',
        LocalizedDescription: 'Could not retrieve license for the app with iTunes Store ID 361309726.',
      },
      { ErrorCode: 2605, ErrorDomain: 'DeviceManagement.error', LocalizedDescription: 'License not found' },
    ];
    device.behaviours.set('InstallApplication', {
      kind: 'error',
      chain,
      rejectionReason: 'CouldNotVerifyAppID',
    });
    const install = await enqueue(device, (u) => installVppApplication(u, { adamId: 361309726 }));
    await device.connect();
    const result = await server.haishin.store.db.kysely
      .selectFrom('command_results')
      .selectAll()
      .where('command_uuid', '=', install.uuid)
      .executeTakeFirstOrThrow();
    expect(result.status).toBe('Error');
    expect(JSON.parse(result.error_chain!)[0].ErrorCode).toBe(12064);
    expect(parsePlistDict(result.raw).RejectionReason).toBe('CouldNotVerifyAppID');
    expect(requestType({ command: parsePlistDict(install.payload) })).toBe('InstallApplication');
  });
});

describe('refusals: always 400, never 401', () => {
  let device: SimDevice;
  let other: SimDevice;
  beforeAll(async () => {
    device = await enrolledDevice();
    other = await enrolledDevice();
  });
  const idle = (udid: string) => Buffer.from(buildPlist({ Status: 'Idle', UDID: udid }));

  async function expectRefused(response: Promise<{ status: number }>) {
    const { status } = await response;
    expect(status).toBe(400);
  }

  it('no signature', () => expectRefused(device.sendRaw('connect', idle(device.udid), null)));

  it('a signature from a certificate not issued by haishin', async () => {
    const foreignCa = createDeviceCa({ now: new Date() });
    const foreign = new CmsSigner(
      issueDeviceIdentity(foreignCa, { now: new Date(), commonName: 'forged', keyBits: 1024 }),
    );
    const body = idle(device.udid);
    await expectRefused(device.sendRaw('connect', body, foreign.sign(body)));
    const auth = Buffer.from(
      buildPlist({ MessageType: 'Authenticate', UDID: randomUUID(), Topic: TEST_TOPIC }),
    );
    await expectRefused(device.sendRaw('checkin', auth, foreign.sign(auth)));
  });

  it('a tampered body', async () => {
    const signed = idle(device.udid);
    const tampered = Buffer.from(buildPlist({ Status: 'Idle', UDID: device.udid, Extra: 'x' }));
    await expectRefused(device.sendRaw('connect', tampered, device.sign(signed)));
  });

  it("a valid certificate used for another device's UDID", async () => {
    await expectRefused(device.sendRaw('connect', idle(other.udid)));
    const auth = Buffer.from(
      buildPlist({ MessageType: 'Authenticate', UDID: other.udid, Topic: TEST_TOPIC, SerialNumber: 'X' }),
    );
    await expectRefused(device.sendRaw('checkin', auth));
    const hijack = Buffer.from(
      buildPlist({ MessageType: 'Authenticate', UDID: randomUUID(), Topic: TEST_TOPIC }),
    );
    await expectRefused(device.sendRaw('checkin', hijack));
  });

  it('an unparseable plist, an oversized one, and one with an entity declaration', async () => {
    const garbage = Buffer.from('<plist><dict><key>Status</key>');
    await expectRefused(device.sendRaw('connect', garbage));
    const huge = Buffer.from(buildPlist({ Status: 'Idle', UDID: device.udid, Pad: 'x'.repeat(100 * 1024) }));
    await expectRefused(device.sendRaw('connect', huge));
    const entity = Buffer.from(
      `<?xml version="1.0"?><!DOCTYPE plist [<!ENTITY udid "${device.udid}">]><plist version="1.0"><dict><key>Status</key><string>Idle</string><key>UDID</key><string>&udid;</string></dict></plist>`,
    );
    await expectRefused(device.sendRaw('connect', entity));
  });

  it('after all refusals the genuine device still works', async () => {
    expect((await device.connect())[0]!.status).toBe(200);
  });
});

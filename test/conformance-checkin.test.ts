/**
 * Check-in messages shaped by Apple's schema (mdm/checkin/*.yaml) sent to a real haishin over HTTP,
 * signed by an enrolled simulated iPad: a message carrying every key Apple lists, each with a value
 * of the listed type, must be used or ignored, never refused (4xx) or crash the server (5xx) —
 * except where haishin answers a specific status by design (UserAuthenticate: 410).
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { COMMAND_BUILDERS } from '../src/mdm/commands.ts';
import { buildPlist, real } from '../src/mdm/plist.ts';
import type { PlistDict, PlistValue } from '../src/mdm/plist.ts';
import { SHARED_IPAD_USER_ID } from '../src/mdm/service.ts';
import { SimDevice } from '../src/sim/device/device.ts';
import {
  availableOn,
  checkinSchema,
  formatProblems,
  isWildcard,
  loadSchemaDir,
  unavailableReason,
  validateDict,
} from './support/apple-schema.ts';
import type { Context, SchemaKey } from './support/apple-schema.ts';
import { startTestServer } from './support/server.ts';
import type { TestServer } from './support/server.ts';

let server: TestServer;

beforeAll(async () => {
  server = await startTestServer();
});
afterAll(async () => {
  await server?.close();
});

/** What haishin answers each check-in message type; every file in mdm/checkin must be listed. */
const DISPOSITION: Readonly<Record<string, { status: 200 | 410; why: string } | { skip: string }>> = {
  Authenticate: { status: 200, why: 'binds the identity to the device and stores its facts' },
  TokenUpdate: { status: 200, why: 'stores the push token of the channel' },
  CheckOut: { status: 200, why: 'marks the device unenrolled' },
  UserAuthenticate: {
    status: 410,
    why: 'haishin runs no user-channel authentication; 410 lets the device go on without',
  },
  DeclarativeManagement: {
    status: 200,
    why: 'haishin does not enable declarative management; recorded and ignored',
  },
  GetToken: { status: 200, why: 'haishin does not advertise com.apple.mdm.token; recorded and ignored' },
  GetBootstrapToken: { skip: 'macOS only (iOS: introduced n/a), and it carries no UDID' },
  SetBootstrapToken: { skip: 'macOS only (iOS: introduced n/a), and it carries no UDID' },
};

/** A value of the type Apple lists: the first allowed value, or a plausible one of that type. */
function sample(key: SchemaKey, overrides: Readonly<Record<string, PlistValue>>): PlistValue {
  const override = overrides[key.key];
  if (override !== undefined) return override;
  if (key.rangelist && key.rangelist.length > 0) {
    const first = key.rangelist[0]!;
    return key.type === '<real>' && typeof first === 'number' ? real(first) : first;
  }
  switch (key.type) {
    case '<string>':
      return `${key.key}-conformance`;
    case '<integer>':
      return 1;
    case '<real>':
      return real(1.5);
    case '<boolean>':
      return false;
    case '<data>':
      return randomBytes(32);
    case '<date>':
      return new Date();
    case '<array>': {
      const item = key.subkeys?.[0];
      return item ? [sample(item, overrides)] : [];
    }
    case '<dictionary>':
      return fill(key.subkeys ?? [], overrides);
    case '<any>':
      return 'any';
  }
}

function fill(keys: readonly SchemaKey[], overrides: Readonly<Record<string, PlistValue>>): PlistDict {
  const out: PlistDict = {};
  for (const key of keys) out[isWildcard(key) ? 'example' : key.key] = sample(key, overrides);
  return out;
}

/** A check-in message with every key Apple lists for it (or only those `keep` accepts). */
function messageFor(
  messageType: string,
  device: SimDevice,
  keep: (key: SchemaKey) => boolean = () => true,
): PlistDict {
  const overrides: Record<string, PlistValue> = {
    UDID: device.udid,
    Topic: device.topic ?? '',
    PushMagic: randomUUID().toUpperCase(),
    UserID: SHARED_IPAD_USER_ID,
    UserShortName: 'student01@school.example',
    UserLongName: 'Student One',
    // DeclarativeManagement: the operation and its JSON body.
    Endpoint: 'tokens',
    Data: Buffer.from('{"SyncTokens":{"DeclarationsToken":"x","Timestamp":"2026-01-01T00:00:00Z"}}'),
  };
  return fill(checkinSchema(messageType).payloadkeys.filter(keep), overrides);
}

/** What an iPad on the device channel of a device enrollment can send (no macOS, User Enrollment or Shared iPad user keys). */
const IPAD: Context = { os: 'iOS' };
const onIpadDeviceChannel = (key: SchemaKey) => {
  const ios = key.supportedOS?.iOS;
  return (
    unavailableReason(key, IPAD) === null &&
    ios?.userenrollment?.mode !== 'required' &&
    ios?.sharedipad?.mode !== 'required'
  );
};

async function installed(): Promise<SimDevice> {
  const device = new SimDevice({ spec: { osVersion: '18.1' } });
  await device.installProfile(server.enrollUrl());
  return device;
}

async function enrolled(): Promise<SimDevice> {
  const device = new SimDevice({
    spec: { osVersion: '18.1', deviceName: '理科室の iPad', model: 'MK2K3J/A', modelName: 'iPad' },
  });
  await device.enroll(server.enrollUrl());
  return device;
}

/** Sends a message signed by the device and returns the HTTP answer. */
async function send(device: SimDevice, message: PlistDict): Promise<{ status: number; text: string }> {
  return device.sendRaw('checkin', Buffer.from(buildPlist(message), 'utf8'));
}

async function recordedTypes(udid: string): Promise<string[]> {
  const rows = await server.haishin.store.db.kysely
    .selectFrom('mdm_messages')
    .select(['message_type'])
    .where('udid', '=', udid)
    .orderBy('received_at')
    .execute();
  return rows.map((r) => r.message_type);
}

describe('the check-in messages Apple lists', () => {
  it('each have a disposition, and the skipped ones really are not for iOS', () => {
    const types = loadSchemaDir('mdm/checkin').map((s) => s.payload.requesttype);
    expect(types.sort()).toEqual(Object.keys(DISPOSITION).sort());
    for (const [type, d] of Object.entries(DISPOSITION)) {
      if ('skip' in d) expect(availableOn(checkinSchema(type), 'iOS'), type).toBe(false);
    }
  });

  it.each(Object.keys(DISPOSITION).filter((t) => !('skip' in DISPOSITION[t]!)))(
    'a generated %s carries every key Apple lists, each of a valid type',
    async (type) => {
      const device = await installed();
      const message = messageFor(type, device);
      expect(Object.keys(message).sort()).toEqual(
        checkinSchema(type)
          .payloadkeys.map((k) => k.key)
          .sort(),
      );
      expect(formatProblems(validateDict(message, checkinSchema(type).payloadkeys))).toBe('');
    },
  );
});

describe('haishin takes every key Apple lists', () => {
  it('Authenticate with every key: 200, and the facts are used', async () => {
    const device = await installed();
    const message = messageFor('Authenticate', device);
    const answer = await send(device, message);
    expect(answer.status, answer.text).toBe(200);
    const row = await server.haishin.store.getDeviceByUdid(device.udid);
    expect(row).toMatchObject({
      status: 'pending',
      serial_number: message.SerialNumber,
      os_version: message.OSVersion,
      build_version: message.BuildVersion,
      product_name: message.ProductName,
      imei: message.IMEI,
      meid: message.MEID,
      // macOS sends these three in Authenticate; haishin keeps them when they come.
      name: message.DeviceName,
      model: message.Model,
      model_name: message.ModelName,
    });
    expect(await device.tokenUpdate()).toBe(200);
    expect((await server.haishin.store.getDeviceByUdid(device.udid))?.status).toBe('enrolled');
  });

  it('TokenUpdate with every key (a user channel): 200, and the token is stored for that channel', async () => {
    const device = await installed();
    expect(await device.authenticate()).toBe(200);
    const message = messageFor('TokenUpdate', device);
    const answer = await send(device, message);
    expect(answer.status, answer.text).toBe(200);
    const channel = await server.haishin.store.db.kysely
      .selectFrom('enrollments')
      .selectAll()
      .where('id', '=', `${device.udid}:student01@school.example`)
      .executeTakeFirstOrThrow();
    expect(channel).toMatchObject({
      type: 'user',
      push_token: Buffer.from(message.Token as Uint8Array).toString('hex'),
      push_magic: message.PushMagic,
      user_short_name: 'student01@school.example',
      enabled: 1,
    });
  });

  it('TokenUpdate with every key an iPad sends on its device channel: 200, and the device is enrolled', async () => {
    const device = await installed();
    expect(await device.authenticate()).toBe(200);
    const message = messageFor('TokenUpdate', device, onIpadDeviceChannel);
    expect(Object.keys(message).sort()).toEqual([
      'AwaitingConfiguration',
      'MessageType',
      'PushMagic',
      'Token',
      'Topic',
      'UDID',
      'UnlockToken',
    ]);
    const answer = await send(device, message);
    expect(answer.status, answer.text).toBe(200);
    const channel = await server.haishin.store.db.kysely
      .selectFrom('enrollments')
      .selectAll()
      .where('id', '=', device.udid)
      .executeTakeFirstOrThrow();
    expect(channel.push_token).toBe(Buffer.from(message.Token as Uint8Array).toString('hex'));
    expect((await server.haishin.store.getDeviceByUdid(device.udid))?.status).toBe('enrolled');
  });

  it('CheckOut with every key: 200, and the device is unenrolled', async () => {
    const device = await enrolled();
    const answer = await send(device, messageFor('CheckOut', device));
    expect(answer.status, answer.text).toBe(200);
    const row = await server.haishin.store.getDeviceByUdid(device.udid);
    expect(row?.status).toBe('unenrolled');
    expect(row?.checked_out_at).not.toBeNull();
  });

  it.each(['UserAuthenticate', 'DeclarativeManagement', 'GetToken'])(
    '%s with every key: the designed status, recorded, nothing queued',
    async (type) => {
      const device = await enrolled();
      const disposition = DISPOSITION[type]!;
      if ('skip' in disposition) throw new Error(`${type} is skipped`);
      const answer = await send(device, messageFor(type, device));
      expect(answer.status, answer.text).toBe(disposition.status);
      expect(answer.text).toBe('');
      expect(await recordedTypes(device.udid)).toContain(type);
      // The device is untouched: still enrolled and answering.
      expect((await server.haishin.store.getDeviceByUdid(device.udid))?.status).toBe('enrolled');
      const [idle] = await device.connect();
      expect(idle?.status).toBe(200);
    },
  );
});

describe("an iPad's name and model, which iOS's Authenticate does not carry", () => {
  it('come from DeviceInformation and survive a re-Authenticate', async () => {
    const device = await enrolled();
    const before = await server.haishin.store.getDeviceByUdid(device.udid);
    expect(before?.name).toBeNull();
    const command = COMMAND_BUILDERS.DeviceInformation(randomUUID().toUpperCase());
    await server.haishin.store.mdm.enqueue([{ enrollmentId: device.udid, command, priority: 0 }], new Date());
    await device.connect();
    const expected = {
      name: '理科室の iPad',
      model: 'MK2K3J/A',
      model_name: 'iPad',
      product_name: 'iPad13,18',
    };
    expect(await server.haishin.store.getDeviceByUdid(device.udid)).toMatchObject(expected);
    expect(await device.authenticate()).toBe(200);
    expect(await server.haishin.store.getDeviceByUdid(device.udid)).toMatchObject(expected);
  });
});

/**
 * The simulated iPad (src/sim/device/device.ts) judged by Apple's schema: its check-in messages
 * against mdm/checkin/*.yaml and its answer to every command haishin sends against the command's
 * `responsekeys`, as an iOS device on that iOS version. The simulator stands in for real iPads in
 * every other test and in the demo, so where it drifts from Apple, those tests prove less.
 *
 * Runs in process: the device's fetch is a stub that serves a real enrollment profile and keeps what
 * the device sends.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { systemClock } from '../src/core/clock.ts';
import { COMMAND_BUILDERS } from '../src/mdm/commands.ts';
import type { BuiltCommand, CommandRequestType } from '../src/mdm/commands.ts';
import { EnrollmentProfiles } from '../src/mdm/enroll.ts';
import { createDeviceCa } from '../src/mdm/identity/ca.ts';
import type { CertAndKey } from '../src/mdm/identity/ca.ts';
import { buildPlist, parsePlistDict } from '../src/mdm/plist.ts';
import type { PlistDict } from '../src/mdm/plist.ts';
import { SimDevice } from '../src/sim/device/device.ts';
import type { SimApp, SimDeviceSpec } from '../src/sim/device/device.ts';
import {
  checkinSchema,
  commandSchema,
  formatProblems,
  RESPONSE_ENVELOPE_KEYS,
  responseKeys,
  validateDict,
} from './support/apple-schema.ts';
import type { Context } from './support/apple-schema.ts';

const UUID = '6B1D0C2E-3F4A-4B5C-8D6E-7F8091A2B3C4';
const KEYNOTE: SimApp = { bundleId: 'com.apple.Keynote', name: 'Keynote', version: '14.2', sizeBytes: 700e6 };
const PAGES = { bundleId: 'com.apple.Pages', name: 'Pages', version: '14.2', sizeBytes: 600e6 };
const NUMBERS = { bundleId: 'com.apple.Numbers', name: 'Numbers', version: '14.2', sizeBytes: 650e6 };
const CATALOG = new Map([
  [361285480, KEYNOTE],
  [361309726, PAGES],
  [361304891, NUMBERS],
]);

/**
 * Apple marks every ManagedApplicationList item key `required`, UnusedRedemptionCode included; a
 * device only has one when a legacy VPP redemption code was left over, never for device licences.
 */
const NOT_REQUIRED = {
  UnusedRedemptionCode: 'only present when a legacy VPP redemption code is left over',
};

let ca: CertAndKey;

beforeAll(() => {
  ca = createDeviceCa({ now: systemClock.now() });
});

interface Sent {
  channel: 'checkin' | 'connect';
  message: PlistDict;
}

/** A simulated iPad enrolled through a stubbed network that records what it sends. */
async function device(spec: SimDeviceSpec): Promise<{ device: SimDevice; sent: Sent[] }> {
  const profiles = new EnrollmentProfiles({
    store: { getGroup: async (id) => ({ id, name: 'conformance' }), recordIssuedIdentity: async () => {} },
    ca,
    clock: systemClock,
    publicUrl: 'https://mdm.example.jp',
    topic: 'com.apple.mgmt.External.9a1c5d3e-0000-4000-8000-conformance',
    deviceKeyBits: 1024,
    pkcs12Iterations: 1,
  });
  const sent: Sent[] = [];
  const stub: typeof fetch = async (input, init) => {
    const url = input instanceof Request ? input.url : String(input);
    if ((init?.method ?? 'GET') === 'GET') return new Response((await profiles.profileFor('g')).body);
    const body = init?.body;
    if (!(body instanceof Uint8Array)) throw new Error(`unexpected body for ${url}`);
    sent.push({
      channel: url.endsWith('/mdm/checkin') ? 'checkin' : 'connect',
      message: parsePlistDict(body, { exactReals: true }),
    });
    return new Response('');
  };
  const d = new SimDevice({ spec, catalog: CATALOG, fetch: stub });
  await d.installProfile('https://mdm.example.jp/mdm/enroll?group=g');
  return { device: d, sent };
}

const IPAD_SPEC: SimDeviceSpec = {
  osVersion: '18.1',
  cellular: true,
  restrictions: {
    ratingApps: 300,
    allowListedAppBundleIDs: [KEYNOTE.bundleId],
    blockedAppBundleIDs: ['com.example.game'],
  },
  installedApps: [
    { ...KEYNOTE, managedAdamId: 361285480, managedStatus: 'Managed' },
    { ...PAGES, managedAdamId: 361309726, managedStatus: 'Failed' },
    { bundleId: 'com.example.own', name: 'Own', version: '1.0', sizeBytes: 1e6 },
  ],
};
const SHARED_SPEC: SimDeviceSpec = {
  ...IPAD_SPEC,
  sharedIpad: true,
  users: [
    { shortName: 'student01@school.example', loggedIn: true },
    { shortName: 'student02@school.example', loggedIn: false },
  ],
};

function contextOf(spec: SimDeviceSpec): Context {
  return {
    os: 'iOS',
    osVersion: spec.osVersion ?? '18.1',
    sharedIpad: spec.sharedIpad === true,
    notRequired: NOT_REQUIRED,
  };
}

function lastSent(sent: Sent[]): PlistDict {
  const last = sent.at(-1);
  if (!last) throw new Error('the device sent nothing');
  return last.message;
}

/** The report the device sends for a command, as haishin decodes it. */
function report(d: SimDevice, built: BuiltCommand): PlistDict {
  const answer = d.answer(parsePlistDict(built.payload));
  if (!answer) throw new Error(`the device stayed silent on ${built.requestType}`);
  return parsePlistDict(buildPlist(answer), { exactReals: true });
}

function responseProblems(message: PlistDict, requestType: string, context: Context): string {
  return formatProblems(validateDict(message, responseKeys(commandSchema(requestType)), context));
}

describe('the simulated iPad check-ins match mdm/checkin', () => {
  it.each([
    ['an iPad', IPAD_SPEC],
    ['a Shared iPad', SHARED_SPEC],
  ] as const)('Authenticate, TokenUpdate and CheckOut of %s', async (_name, spec) => {
    const { device: d, sent } = await device(spec);
    const context = contextOf(spec);
    const check = (type: string) =>
      formatProblems(validateDict(lastSent(sent), checkinSchema(type).payloadkeys, context, type));

    expect(await d.authenticate()).toBe(200);
    expect(check('Authenticate')).toBe('');
    expect(await d.tokenUpdate()).toBe(200);
    expect(check('TokenUpdate')).toBe('');
    if (spec.sharedIpad) {
      expect(await d.userTokenUpdate('student01@school.example')).toBe(200);
      expect(check('TokenUpdate')).toBe('');
    }
    expect(await d.checkOut()).toBe(200);
    expect(check('CheckOut')).toBe('');
    expect(sent.every((s) => s.channel === 'checkin')).toBe(true);
  });
});

/** How each command is built for the device; the mapped type makes a missing builder a type error. */
const COMMANDS: { readonly [K in CommandRequestType]: (uuid: string) => BuiltCommand } = {
  InstallApplication: (u) => COMMAND_BUILDERS.InstallApplication(u, { adamId: 361304891 }),
  RemoveApplication: (u) => COMMAND_BUILDERS.RemoveApplication(u, 'com.example.own'),
  ManagedApplicationList: (u) => COMMAND_BUILDERS.ManagedApplicationList(u),
  InstalledApplicationList: (u) => COMMAND_BUILDERS.InstalledApplicationList(u),
  DeviceInformation: (u) => COMMAND_BUILDERS.DeviceInformation(u),
  Restrictions: (u) => COMMAND_BUILDERS.Restrictions(u),
  UserList: (u) => COMMAND_BUILDERS.UserList(u),
  EraseDevice: (u) => COMMAND_BUILDERS.EraseDevice(u),
  // A profile without an MDM payload: installed as it is (the renewal case is in identity-renewal tests).
  InstallProfile: (u) =>
    COMMAND_BUILDERS.InstallProfile(
      u,
      buildPlist({
        PayloadType: 'Configuration',
        PayloadVersion: 1,
        PayloadIdentifier: 'jp.haishin.test.empty',
        PayloadUUID: '6A1F0E3B-2C4D-4E5F-8A9B-0C1D2E3F4A5B',
        PayloadDisplayName: 'empty',
        PayloadContent: [],
      }),
    ),
};

describe("the simulated iPad's answers match each command's responsekeys", () => {
  const types = Object.keys(COMMAND_BUILDERS) as CommandRequestType[];

  it('cover every command builder', () => {
    expect(Object.keys(COMMANDS).sort()).toEqual([...types].sort());
  });

  it.each(types)('%s', async (type) => {
    // UserList is a Shared iPad command (Apple: sharedipad mode required); the rest go to an ordinary iPad.
    const spec = type === 'UserList' ? SHARED_SPEC : IPAD_SPEC;
    const { device: d } = await device(spec);
    const answer = report(d, COMMANDS[type](UUID));
    expect(answer.Status).toBe('Acknowledged');
    expect(answer.CommandUUID).toBe(UUID);
    expect(responseProblems(answer, type, contextOf(spec))).toBe('');
  });

  it('DeviceInformation answers every query it knows with Apple types (capacities as <real>)', async () => {
    const { device: d } = await device(IPAD_SPEC);
    const answer = report(d, COMMANDS.DeviceInformation(UUID));
    const responses = answer.QueryResponses as PlistDict;
    expect(Object.keys(responses).length).toBeGreaterThanOrEqual(14);
    expect(responseProblems(answer, 'DeviceInformation', contextOf(IPAD_SPEC))).toBe('');
  });

  it('an InstallApplication refused because the user installed the app: ErrorChain and RejectionReason', async () => {
    const { device: d } = await device({
      ...IPAD_SPEC,
      installedApps: [{ ...NUMBERS }],
    });
    const answer = report(d, COMMANDS.InstallApplication(UUID));
    expect(answer.Status).toBe('Error');
    expect(answer.RejectionReason).toBe('AppAlreadyInstalled');
    expect(responseProblems(answer, 'InstallApplication', contextOf(IPAD_SPEC))).toBe('');
  });

  it('an install that waits for Wi-Fi (cellular iPad, app over the limit): Installing and DownloadWaiting', async () => {
    const spec: SimDeviceSpec = { ...IPAD_SPEC, wifi: false, installedApps: [] };
    const { device: d, sent } = await device(spec);
    const context = contextOf(spec);
    // A cellular iPad says it has a modem when it enrolls.
    expect(await d.authenticate()).toBe(200);
    expect(lastSent(sent).IMEI).toMatch(/^\d{15}$/);
    expect(
      formatProblems(validateDict(lastSent(sent), checkinSchema('Authenticate').payloadkeys, context)),
    ).toBe('');
    const install = report(d, COMMANDS.InstallApplication(UUID));
    expect(install.Status).toBe('Acknowledged');
    const managed = report(d, COMMANDS.ManagedApplicationList(UUID));
    expect((managed.ManagedApplicationList as PlistDict)[NUMBERS.bundleId]).toMatchObject({
      Status: 'Installing',
    });
    expect(responseProblems(managed, 'ManagedApplicationList', context)).toBe('');
    const installed = report(d, COMMANDS.InstalledApplicationList(UUID));
    const item = (installed.InstalledApplicationList as PlistDict[]).find(
      (a) => a.Identifier === NUMBERS.bundleId,
    );
    expect(item).toMatchObject({ Installing: true, DownloadWaiting: true });
    expect(responseProblems(installed, 'InstalledApplicationList', context)).toBe('');
  });

  it('NotNow, CommandFormatError and Idle carry only envelope keys', async () => {
    const { device: d, sent } = await device(SHARED_SPEC);
    const context = contextOf(SHARED_SPEC);
    // A Shared iPad with a student logged in defers installs.
    const notNow = report(d, COMMANDS.InstallApplication(UUID));
    expect(notNow.Status).toBe('NotNow');
    expect(formatProblems(validateDict(notNow, RESPONSE_ENVELOPE_KEYS, context))).toBe('');
    d.behaviours.set('EraseDevice', { kind: 'format_error' });
    const formatError = report(d, COMMANDS.EraseDevice(UUID));
    expect(formatError.Status).toBe('CommandFormatError');
    expect(formatProblems(validateDict(formatError, RESPONSE_ENVELOPE_KEYS, context))).toBe('');
    await d.connect();
    const idle = lastSent(sent);
    expect(idle.Status).toBe('Idle');
    expect(formatProblems(validateDict(idle, RESPONSE_ENVELOPE_KEYS, context))).toBe('');
  });
});

describe('the validator reports a drifted answer', () => {
  it('a capacity sent as <integer>, a macOS-only user key and a missing required key', async () => {
    const wrong = {
      Status: 'Acknowledged',
      UDID: 'X',
      CommandUUID: UUID,
      QueryResponses: { DeviceCapacity: 64, IsSupervised: true },
    };
    expect(responseProblems(wrong, 'DeviceInformation', contextOf(IPAD_SPEC))).toBe(
      'QueryResponses.DeviceCapacity: expected <real>, got <integer> 64',
    );
    const users = {
      Status: 'Acknowledged',
      Users: [{ UserName: 'a', FullName: 'A', IsLoggedIn: true, HasDataToSync: false, DataQuota: 0 }],
    };
    expect(responseProblems(users, 'UserList', contextOf(SHARED_SPEC)).split('\n')).toEqual([
      'Users[0].FullName: not available on iOS (Apple: introduced n/a)',
      'Users[0].DataUsed: missing required key (<integer>)',
    ]);
  });
});

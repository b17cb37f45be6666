/**
 * Every command haishin can send, judged by Apple's own schema (mdm/commands/*.yaml): built with
 * realistic arguments, encoded and decoded by our plist codec, and its `Command` dictionary checked
 * for known keys, types, required keys and allowed values as an iPad would see it.
 */
import { describe, expect, it } from 'vitest';
import * as commands from '../src/mdm/commands.ts';
import { COMMAND_BUILDERS, DEVICE_INFORMATION_QUERIES } from '../src/mdm/commands.ts';
import type { BuiltCommand, CommandRequestType } from '../src/mdm/commands.ts';
import { refreshCommands } from '../src/engine/refresh.ts';
import { parsePlistDict, PlistReal } from '../src/mdm/plist.ts';
import type { PlistDict } from '../src/mdm/plist.ts';
import {
  availableOn,
  commandKeys,
  commandSchema,
  formatProblems,
  loadSchemaDir,
  unavailableReason,
  validateDict,
} from './support/apple-schema.ts';
import type { Context, SchemaKey } from './support/apple-schema.ts';
import { systemClock } from '../src/core/clock.ts';
import { EnrollmentProfiles } from '../src/mdm/enroll.ts';
import { createDeviceCa } from '../src/mdm/identity/ca.ts';

const IPAD: Context = { os: 'iOS' };

/** A real renewal profile (decision 0023): haishin's enrollment profile again, with a new identity. */
const RENEWAL_PROFILE = await (async () => {
  const now = systemClock.now();
  const profiles = new EnrollmentProfiles({
    store: { getGroup: async (id) => ({ id, name: '3年1組' }), recordIssuedIdentity: async () => {} },
    ca: createDeviceCa({ now }),
    clock: systemClock,
    publicUrl: 'https://mdm.school.example.jp',
    topic: 'com.apple.mgmt.External.9a1c5d3e-0000-4000-8000-conformance',
    deviceKeyBits: 1024,
    pkcs12Iterations: 1,
  });
  return (await profiles.renewalProfile({ deviceId: 'device-1', profileGroupId: 'grp-3-1' })).body;
})();
const UUID = '0F1E2D3C-4B5A-4978-8695-A4B3C2D1E0F9';
const KEYNOTE = { adamId: 361285480, bundleId: 'com.apple.Keynote' };
const PAGES = { adamId: 361309726, bundleId: 'com.apple.Pages' };

interface Case {
  name: string;
  build: (uuid: string) => BuiltCommand;
}

/**
 * The conformance cases, one list per builder. The mapped type makes a builder added to
 * COMMAND_BUILDERS without a case a type error; the test below makes it a failure too.
 */
const CASES: { readonly [K in CommandRequestType]: readonly Case[] } = {
  InstallApplication: [
    {
      name: 'a VPP app on a device licence (what the engine sends)',
      build: (u) => COMMAND_BUILDERS.InstallApplication(u, { adamId: KEYNOTE.adamId }),
    },
    {
      name: 'taking over a copy the user installed',
      build: (u) => COMMAND_BUILDERS.InstallApplication(u, { adamId: PAGES.adamId, takeOverUnmanaged: true }),
    },
    {
      name: 'remove with the profile and no backup (ManagementFlags 5)',
      build: (u) => COMMAND_BUILDERS.InstallApplication(u, { adamId: PAGES.adamId, managementFlags: 5 }),
    },
  ],
  RemoveApplication: [
    { name: 'by bundle identifier', build: (u) => COMMAND_BUILDERS.RemoveApplication(u, KEYNOTE.bundleId) },
  ],
  ManagedApplicationList: [
    { name: 'every managed app', build: (u) => COMMAND_BUILDERS.ManagedApplicationList(u) },
    {
      name: 'some bundle identifiers',
      build: (u) => COMMAND_BUILDERS.ManagedApplicationList(u, [KEYNOTE.bundleId, PAGES.bundleId]),
    },
  ],
  InstalledApplicationList: [
    { name: 'everything installed', build: (u) => COMMAND_BUILDERS.InstalledApplicationList(u) },
    {
      name: 'managed apps only, some identifiers',
      build: (u) =>
        COMMAND_BUILDERS.InstalledApplicationList(u, {
          managedAppsOnly: true,
          identifiers: [KEYNOTE.bundleId],
        }),
    },
  ],
  DeviceInformation: [
    { name: "haishin's troubleshooting queries", build: (u) => COMMAND_BUILDERS.DeviceInformation(u) },
    {
      name: 'a narrower query',
      build: (u) => COMMAND_BUILDERS.DeviceInformation(u, ['AvailableDeviceCapacity', 'OSVersion']),
    },
  ],
  Restrictions: [{ name: 'with profile restrictions', build: (u) => COMMAND_BUILDERS.Restrictions(u) }],
  UserList: [{ name: 'Shared iPad users', build: (u) => COMMAND_BUILDERS.UserList(u) }],
  EraseDevice: [{ name: 'remote wipe', build: (u) => COMMAND_BUILDERS.EraseDevice(u) }],
  InstallProfile: [
    {
      name: 'the enrollment profile with a renewed device identity (decision 0023)',
      build: (u) => COMMAND_BUILDERS.InstallProfile(u, RENEWAL_PROFILE),
    },
  ],
};

const requestTypes = Object.keys(COMMAND_BUILDERS) as CommandRequestType[];

/** A builder's cases; none (rather than a crash) when one was registered without any, since vitest does not typecheck. */
function casesOf(requestType: string): readonly Case[] {
  const cases: Partial<Record<string, readonly Case[]>> = CASES;
  return cases[requestType] ?? [];
}

/** What the iPad receives: the plist decoded again, reals kept apart from integers. */
function decode(built: BuiltCommand): { envelope: PlistDict; command: PlistDict } {
  const envelope = parsePlistDict(built.payload, { exactReals: true });
  const command = envelope.Command;
  if (command === undefined || typeof command !== 'object' || Array.isArray(command)) {
    throw new Error(`${built.requestType}: no Command dictionary in ${built.payload}`);
  }
  return { envelope, command: command as PlistDict };
}

function problemsOf(command: PlistDict, requestType: string, context: Context = IPAD): string {
  return formatProblems(validateDict(command, commandKeys(commandSchema(requestType)), context, 'Command'));
}

describe('the command builders', () => {
  it('are all registered in COMMAND_BUILDERS under the RequestType they build', () => {
    const registered = new Set<unknown>(Object.values(COMMAND_BUILDERS));
    // renderCommand is the generic renderer every builder uses, not a command of its own.
    const exported = Object.entries(commands).filter(
      ([name, value]) => typeof value === 'function' && name !== 'renderCommand',
    );
    expect(exported.length).toBeGreaterThan(0);
    const unregistered = exported.filter(([, value]) => !registered.has(value)).map(([name]) => name);
    expect(unregistered, 'exported builders missing from COMMAND_BUILDERS').toEqual([]);
    for (const requestType of requestTypes) {
      for (const c of casesOf(requestType)) expect(c.build(UUID).requestType, c.name).toBe(requestType);
    }
  });

  it('each have a conformance case', () => {
    const missing = requestTypes.filter((t) => casesOf(t).length === 0);
    expect(missing, 'builders without a conformance case').toEqual([]);
    expect(Object.keys(CASES).sort()).toEqual([...requestTypes].sort());
  });
});

describe.each(requestTypes)("%s matches Apple's schema", (requestType) => {
  const schema = commandSchema(requestType);

  it('exists on iOS', () => {
    expect(schema.payload.requesttype).toBe(requestType);
    expect(availableOn(schema, 'iOS'), `${schema.file}: iOS introduced n/a`).toBe(true);
  });

  it.each(casesOf(requestType).map((c) => [c.name, c] as const))('%s', (_name, c) => {
    const built = c.build(UUID);
    const { envelope, command } = decode(built);
    expect(Object.keys(envelope).sort()).toEqual(['Command', 'CommandUUID']);
    expect(envelope.CommandUUID).toBe(UUID);
    expect(command.RequestType).toBe(requestType);
    expect(problemsOf(command, requestType), schema.file).toBe('');
  });
});

describe('DeviceInformation queries', () => {
  const schema = commandSchema('DeviceInformation');
  const queryNames = (schema.payloadkeys.find((k) => k.key === 'Queries')?.subkeys?.[0]?.subkeys ?? []).map(
    (k) => k.key,
  );
  const queryResponses = schema.responsekeys?.find((k) => k.key === 'QueryResponses')?.subkeys ?? [];

  it('reads the allowed list from the schema', () => {
    expect(queryNames.length).toBeGreaterThan(50);
    expect(queryNames).toContain('AvailableDeviceCapacity');
  });

  it.each([...DEVICE_INFORMATION_QUERIES])('%s is a query Apple lists, answered on iOS', (query) => {
    const asked = schema.payloadkeys.find((k) => k.key === 'Queries')?.subkeys?.[0]?.subkeys ?? [];
    const spec = asked.find((k) => k.key === query);
    expect(spec, `${query} is not in ${schema.file} Queries`).toBeDefined();
    expect(unavailableReason(spec!, IPAD)).toBeNull();
    const answer = queryResponses.find((k) => k.key === query);
    expect(answer, `${query} has no QueryResponses key`).toBeDefined();
    expect(unavailableReason(answer!, IPAD)).toBeNull();
  });
});

describe("Apple's channel rules", () => {
  it('UserList, which Apple allows only on Shared iPad, is only asked of Shared iPads', () => {
    const sharedOnly = (t: string) =>
      commandSchema(t).payload.supportedOS?.iOS?.sharedipad?.mode === 'required';
    expect(sharedOnly('UserList')).toBe(true);
    const ordinary = refreshCommands({ is_shared_ipad: 0 }).map((c) => c.requestType);
    const shared = refreshCommands({ is_shared_ipad: 1 }).map((c) => c.requestType);
    expect(ordinary.filter(sharedOnly)).toEqual([]);
    expect(shared).toContain('UserList');
  });
});

describe('the validator reports a wrong command', () => {
  const install = () => decode(COMMAND_BUILDERS.InstallApplication(UUID, { adamId: KEYNOTE.adamId })).command;

  it('every MDM command and check-in file of the snapshot loads', () => {
    expect(loadSchemaDir('mdm/commands').length).toBeGreaterThanOrEqual(60);
    expect(loadSchemaDir('mdm/checkin').length).toBeGreaterThanOrEqual(5);
  });

  it('a value of the wrong type', () => {
    const command = { ...install(), iTunesStoreID: String(KEYNOTE.adamId) };
    expect(problemsOf(command, 'InstallApplication')).toBe(
      'Command.iTunesStoreID: expected <integer>, got a string "361285480"',
    );
  });

  it('a real where Apple wants an integer', () => {
    const command = { ...install(), ManagementFlags: new PlistReal(1) };
    expect(problemsOf(command, 'InstallApplication')).toBe(
      'Command.ManagementFlags: expected <integer>, got <real> 1',
    );
  });

  it('an unknown key', () => {
    const command = { ...install(), PurchaseMethod: 1 };
    expect(problemsOf(command, 'InstallApplication')).toMatch(
      /^Command\.PurchaseMethod: unknown key \(Apple lists /,
    );
  });

  it('a missing required key', () => {
    expect(problemsOf({ RequestType: 'RemoveApplication' }, 'RemoveApplication')).toBe(
      'Command.Identifier: missing required key (<string>)',
    );
    expect(problemsOf({ RequestType: 'DeviceInformation' }, 'DeviceInformation')).toBe(
      'Command.Queries: missing required key (<array>)',
    );
  });

  it('a value outside the rangelist, nested in a dictionary', () => {
    const command = { ...install(), Options: { PurchaseMethod: 2 } };
    expect(problemsOf(command, 'InstallApplication')).toBe(
      "Command.Options.PurchaseMethod: <integer> 2 is not one of Apple's allowed values (0, 1)",
    );
  });

  it('a key iOS does not have, and a query iOS does not answer', () => {
    const command = { ...install(), InstallAsManaged: true };
    expect(problemsOf(command, 'InstallApplication')).toBe(
      'Command.InstallAsManaged: not available on iOS (Apple: introduced n/a)',
    );
    expect(
      problemsOf(
        { RequestType: 'DeviceInformation', Queries: ['HasBattery', 'Battery'] },
        'DeviceInformation',
      ),
    ).toBe(
      [
        'Command.Queries[0]: a string "HasBattery": not available on iOS (Apple: introduced n/a)',
        'Command.Queries[1]: a string "Battery" is not one of the 85 values Apple lists',
      ].join('\n'),
    );
  });

  it('a wrong item in an array, and the wrong RequestType', () => {
    expect(
      problemsOf({ RequestType: 'ManagedApplicationList', Identifiers: ['a', 7] }, 'ManagedApplicationList'),
    ).toBe('Command.Identifiers[1]: expected <string>, got <integer> 7');
    expect(problemsOf({ RequestType: 'UserList' }, 'EraseDevice')).toBe(
      `Command.RequestType: a string "UserList" is not one of Apple's allowed values (EraseDevice)`,
    );
  });

  it('unknown keys everywhere except under ANY', () => {
    const keys: SchemaKey[] = [
      { key: 'Open', type: '<dictionary>', subkeys: [{ key: 'ANY', type: '<integer>' }] },
      { key: 'Closed', type: '<dictionary>', subkeys: [{ key: 'Only', type: '<integer>' }] },
    ];
    expect(formatProblems(validateDict({ Open: { x: 1, y: 2 }, Closed: { Only: 1, x: 2 } }, keys))).toBe(
      'Closed.x: unknown key (Apple lists Only)',
    );
    expect(formatProblems(validateDict({ Open: { x: 'one' } }, keys))).toBe(
      'Open.x: expected <integer>, got a string "one"',
    );
  });
});

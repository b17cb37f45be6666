// The simulated iPad's download time (spec.downloadMs): an acknowledged install stays `Installing`
// for that long by the device's clock, then is `Managed`; several download at once. Runs in process
// with a ManualClock: the device answers commands without any network.
import { describe, expect, it } from 'vitest';
import { ManualClock } from '../src/core/clock.ts';
import {
  deviceInformation,
  installedApplicationList,
  installVppApplication,
  managedApplicationList,
} from '../src/mdm/commands.ts';
import type { BuiltCommand } from '../src/mdm/commands.ts';
import { parsePlistDict } from '../src/mdm/plist.ts';
import type { PlistDict, PlistReal } from '../src/mdm/plist.ts';
import { SimDevice } from '../src/sim/device/device.ts';
import type { SimDeviceSpec } from '../src/sim/device/device.ts';

const APPS = [1, 2, 3, 4].map((n) => ({
  adamId: 1460000000 + n,
  app: { bundleId: `jp.example.app${n}`, name: `App ${n}`, version: '1.0', sizeBytes: 100e6 },
}));
const CATALOG = new Map(APPS.map((a) => [a.adamId, a.app]));

let uuid = 0;
function ask(device: SimDevice, built: BuiltCommand): PlistDict {
  const answer = device.answer(parsePlistDict(built.payload));
  if (!answer) throw new Error(`silent on ${built.requestType}`);
  return answer;
}

function install(device: SimDevice, n: number): PlistDict {
  return ask(device, installVppApplication(`U${++uuid}`, { adamId: APPS[n - 1]!.adamId }));
}

/** bundle id → Status, as the iPad reports its managed apps. */
function managed(device: SimDevice): Record<string, string> {
  const list = ask(device, managedApplicationList(`U${++uuid}`)).ManagedApplicationList as Record<
    string,
    { Status: string }
  >;
  return Object.fromEntries(Object.entries(list).map(([id, v]) => [id, v.Status]));
}

function device(spec: SimDeviceSpec, clock: ManualClock, sent: string[] = []): SimDevice {
  const stub: typeof fetch = async (input) => {
    sent.push(String(input));
    return new Response('');
  };
  return new SimDevice({ spec, catalog: CATALOG, clock, fetch: stub });
}

describe('simulated download time', () => {
  it('without downloadMs an acknowledged install is Managed at once, as before', () => {
    const clock = new ManualClock();
    const d = device({}, clock);
    expect(install(d, 1)).toMatchObject({ Status: 'Acknowledged', State: 'Queued' });
    expect(managed(d)).toEqual({ 'jp.example.app1': 'Managed' });
  });

  it('stays Installing for downloadMs by the device clock, then is Managed, without checking in', async () => {
    const clock = new ManualClock();
    const sent: string[] = [];
    const d = device({ downloadMs: 20_000, availableGb: 10 }, clock, sent);
    expect(install(d, 1)).toMatchObject({
      Status: 'Acknowledged',
      Identifier: 'jp.example.app1',
      State: 'Queued',
    });
    expect(managed(d)).toEqual({ 'jp.example.app1': 'Installing' });
    const installed = ask(d, installedApplicationList(`U${++uuid}`)).InstalledApplicationList as PlistDict[];
    expect(installed).toEqual([expect.objectContaining({ Identifier: 'jp.example.app1', Installing: true })]);
    // Its space is taken from the start of the download.
    const info = ask(d, deviceInformation(`U${++uuid}`, ['AvailableDeviceCapacity'])).QueryResponses as {
      AvailableDeviceCapacity: PlistReal;
    };
    expect(info.AvailableDeviceCapacity.value).toBeCloseTo(9.9);

    clock.advance(19_999);
    expect(managed(d)).toEqual({ 'jp.example.app1': 'Installing' });
    clock.advance(1);
    await new Promise((r) => setTimeout(r, 10));
    // Done by the clock, but the iPad says nothing until it is asked.
    expect(sent).toEqual([]);
    expect(managed(d)).toEqual({ 'jp.example.app1': 'Managed' });
    const after = ask(d, installedApplicationList(`U${++uuid}`)).InstalledApplicationList as PlistDict[];
    expect(after[0]).not.toHaveProperty('Installing');
  });

  it('downloads several apps in parallel, each downloadMs after its own acknowledgement', () => {
    const clock = new ManualClock();
    const d = device({ downloadMs: 20_000 }, clock);
    install(d, 1);
    clock.advance(1_000);
    install(d, 2);
    install(d, 3);
    clock.advance(19_000);
    expect(managed(d)).toEqual({
      'jp.example.app1': 'Managed',
      'jp.example.app2': 'Installing',
      'jp.example.app3': 'Installing',
    });
    clock.advance(1_000);
    expect(Object.values(managed(d))).toEqual(['Managed', 'Managed', 'Managed']);
  });

  it('with downloadConcurrency, the others wait their turn in acknowledgement order', () => {
    const clock = new ManualClock();
    const d = device({ downloadMs: 10_000, downloadConcurrency: 2 }, clock);
    for (const n of [1, 2, 3, 4]) install(d, n);
    clock.advance(10_000);
    expect(managed(d)).toEqual({
      'jp.example.app1': 'Managed',
      'jp.example.app2': 'Managed',
      'jp.example.app3': 'Installing',
      'jp.example.app4': 'Installing',
    });
    // A lane free since before: the next download starts when it is acknowledged.
    clock.advance(30_000);
    expect(Object.values(managed(d))).toEqual(['Managed', 'Managed', 'Managed', 'Managed']);
    install(d, 1);
    clock.advance(9_999);
    expect(managed(d)['jp.example.app1']).toBe('Installing');
    clock.advance(1);
    expect(managed(d)['jp.example.app1']).toBe('Managed');
  });

  it('an app that cannot install fails at once, without downloading', () => {
    const clock = new ManualClock();
    const d = device({ downloadMs: 20_000, availableGb: 0.05 }, clock);
    install(d, 1);
    expect(managed(d)).toEqual({ 'jp.example.app1': 'Failed' });
  });
});

// Issue 14, item 6: device actions (refresh, deactivate, wipe) done by the engine, through the commander.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SimDevice } from '../src/sim/device/device.ts';
import { World } from './support/world.ts';
import type { CatalogApp } from './support/world.ts';

const APPS: CatalogApp[] = Array.from({ length: 3 }, (_, i) => ({
  adamId: String(1470000001 + i),
  name: `端末操作教材${i + 1}`,
  bundleId: `jp.example.actions${i + 1}`,
  sizeBytes: 5_000_000,
  licences: 20,
}));

interface Job {
  id: string;
  status: string;
  reason: string | null;
}

let world: World;

beforeAll(async () => {
  world = await World.start(APPS);
}, 60_000);

afterAll(async () => {
  await world?.close();
});

async function idOf(device: SimDevice): Promise<string> {
  return (await world.api<{ items: { id: string }[] }>('GET', `/devices?serialNumber=${device.serialNumber}`))
    .body.items[0]!.id;
}

/** A switched-off iPad with three installs on their way (their commands queued, pushes unanswered). */
async function busyOffIpad(prefix: string): Promise<{ ipad: SimDevice; id: string; distributionId: string }> {
  const { token, devices } = await world.school(prefix, APPS);
  const ipad = devices[0]!;
  ipad.online = false;
  const id = await idOf(ipad);
  const created = await world.api<{ id: string }>('POST', '/distributions', {
    kind: 'install',
    tokenId: token.id,
    adamIds: APPS.map((a) => a.adamId),
    targets: { deviceIds: [id] },
    licenseMode: 'auto',
  });
  expect(created.status).toBe(201);
  const deadline = Date.now() + 15_000;
  for (;;) {
    const jobs = (await world.api<{ items: Job[] }>('GET', `/jobs?distributionId=${created.body.id}`)).body
      .items;
    if (jobs.every((j) => j.status === 'push_sending')) break;
    if (Date.now() > deadline) throw new Error(`installs never queued: ${JSON.stringify(jobs)}`);
    await new Promise((r) => setTimeout(r, 25));
  }
  return { ipad, id, distributionId: created.body.id };
}

describe('device actions', () => {
  it('wipe: the unfinished jobs end as cancelled (device.wiped), their installs leave the queue, and EraseDevice is all the iPad gets', async () => {
    const { ipad, id, distributionId } = await busyOffIpad('WP');
    const wiped = await world.api<{
      commandUuid: string;
      push: string;
      cancelledJobs: number;
      reclaimedLicenses: number;
    }>('POST', `/devices/${id}/wipe`);
    expect(wiped.status).toBe(202);
    expect(wiped.body.cancelledJobs).toBe(3);
    expect(await world.settle(distributionId, 10_000)).toEqual({ cancelled: 3 });
    const jobs = (await world.api<{ items: Job[] }>('GET', `/jobs?distributionId=${distributionId}`)).body
      .items;
    expect(jobs.map((j) => j.reason)).toEqual(['device.wiped', 'device.wiped', 'device.wiped']);
    // The iPad comes back: the erase is what it gets, and no install of the cancelled jobs.
    const before = ipad.received.length;
    ipad.online = true;
    await ipad.connect();
    expect(ipad.received.slice(before)).toEqual(['EraseDevice']);
  });

  it('deactivate: licences reclaimed and the unfinished jobs cancelled (device.deactivated)', async () => {
    const { id, distributionId } = await busyOffIpad('DA');
    const done = await world.api<{
      reclaimedLicenses: number;
      cancelledJobs: number;
      device: { status: string };
    }>('POST', `/devices/${id}/deactivate`);
    expect(done.status).toBe(200);
    expect(done.body).toMatchObject({
      reclaimedLicenses: 3,
      cancelledJobs: 3,
      device: { status: 'deactivated' },
    });
    const jobs = (await world.api<{ items: Job[] }>('GET', `/jobs?distributionId=${distributionId}`)).body
      .items;
    expect(jobs.map((j) => [j.status, j.reason])).toEqual(Array(3).fill(['cancelled', 'device.deactivated']));
  });

  it('refresh twice while the iPad is off: the second queues nothing new — the pending queries answer both', async () => {
    const { devices } = await world.school('RF', APPS.slice(0, 1));
    const ipad = devices[0]!;
    ipad.online = false;
    const id = await idOf(ipad);
    const first = await world.api<{ commands: { requestType: string }[] }>('POST', `/devices/${id}/refresh`);
    expect(first.status).toBe(202);
    expect(first.body.commands.map((c) => c.requestType).sort()).toEqual([
      'DeviceInformation',
      'InstalledApplicationList',
      'Restrictions',
    ]);
    const second = await world.api<{ commands: { requestType: string }[] }>('POST', `/devices/${id}/refresh`);
    expect(second.status).toBe(202);
    expect(second.body.commands).toEqual([]);
    ipad.online = true;
    const before = ipad.received.length;
    await ipad.connect();
    expect(ipad.received.slice(before).sort()).toEqual([
      'DeviceInformation',
      'InstalledApplicationList',
      'Restrictions',
    ]);
  });
});

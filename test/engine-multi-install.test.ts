// Issue 14, items 1-2: several installs in flight per device, one commander.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SimDevice } from '../src/sim/device/device.ts';
import { World } from './support/world.ts';
import type { CatalogApp } from './support/world.ts';

const APPS: CatalogApp[] = Array.from({ length: 12 }, (_, i) => ({
  adamId: String(1460000001 + i),
  name: `同時配信教材${i + 1}`,
  bundleId: `jp.example.multi${i + 1}`,
  sizeBytes: 5_000_000,
  licences: 50,
}));

/** Needs an iOS no iPad has: the App Store fails it after the device acknowledged the install. */
const TOO_NEW: CatalogApp = {
  adamId: '1460000099',
  name: '新しすぎる教材',
  bundleId: 'jp.example.toonew',
  sizeBytes: 5_000_000,
  licences: 50,
  minimumOsVersion: '99.0',
};

interface Job {
  id: string;
  status: string;
  reason: string | null;
  deviceId: string;
  adamId: string;
}

interface HistoryEntry {
  to: string;
  at: string;
  reason: string | null;
}

let world: World;

beforeAll(async () => {
  // Verification every 60 s: within the test, a device is only checked in the sessions its
  // installs open — what is shown is what one session does.
  world = await World.start([...APPS, TOO_NEW]);
}, 60_000);

afterAll(async () => {
  await world?.close();
});

async function jobsOf(distributionId: string): Promise<Job[]> {
  return (await world.api<{ items: Job[] }>('GET', `/jobs?distributionId=${distributionId}&limit=1000`)).body
    .items;
}

async function history(jobId: string): Promise<HistoryEntry[]> {
  return (await world.api<{ history: HistoryEntry[] }>('GET', `/jobs/${jobId}`)).body.history;
}

async function deviceId(device: SimDevice): Promise<string> {
  return (await world.api<{ items: { id: string }[] }>('GET', `/devices?serialNumber=${device.serialNumber}`))
    .body.items[0]!.id;
}

/** Statuses in which a job holds one of its device's slots (an acknowledged install does not). */
const SLOT = new Set(['license_assigning', 'push_sending', 'retry_waiting', 'awaiting_response']);

/** The most jobs that held a slot at the same moment, from their histories. */
function mostInSlots(histories: readonly HistoryEntry[][]): number {
  const moments: { at: string; delta: number }[] = [];
  for (const h of histories) {
    let inSlot = false;
    for (const entry of h) {
      const now = SLOT.has(entry.to);
      if (now !== inSlot) moments.push({ at: entry.at, delta: now ? 1 : -1 });
      inSlot = now;
    }
  }
  // At the same instant, a slot is freed before it is taken.
  moments.sort((a, b) => a.at.localeCompare(b.at) || a.delta - b.delta);
  let held = 0;
  let most = 0;
  for (const m of moments) most = Math.max(most, (held += m.delta));
  return most;
}

describe('several installs in flight per device', () => {
  it(
    '12 apps on one iPad: at most five unanswered installs at a time, the next ones in the same session, lists shared, licences taken in one call per app',
    { timeout: 60_000 },
    async () => {
      const { token, devices } = await world.school('MI', APPS);
      const ipad = devices[0]!;
      const pushesBefore = world.apnsFake.stats.requests;
      const associateBefore = world.vpp.calls('POST assets/associate');
      const receivedBefore = ipad.received.length;
      const created = await world.api<{ id: string }>('POST', '/distributions', {
        kind: 'install',
        tokenId: token.id,
        adamIds: APPS.map((a) => a.adamId),
        targets: { deviceIds: [await deviceId(ipad)] },
        licenseMode: 'auto',
      });
      expect(created.status).toBe(201);
      expect(await world.settle(created.body.id, 30_000)).toEqual({ success: 12 });

      const received = ipad.received.slice(receivedBefore);
      expect(received.filter((t) => t === 'InstallApplication')).toHaveLength(12);
      // Lists are shared: one checks the installs acknowledged before it.
      const lists = received.filter((t) => t === 'ManagedApplicationList').length;
      expect(lists).toBeGreaterThanOrEqual(1);
      expect(lists).toBeLessThanOrEqual(6);
      // Every licence asked for once, in one call per app at most (each app is its own asset).
      expect(world.vpp.calls('POST assets/associate') - associateBefore).toBeLessThanOrEqual(APPS.length);
      // Apps install instantly here and the next installs ride the session of the last answer: a
      // few pushes for twelve apps (another only when licences were confirmed after a session
      // had ended), not one per app.
      expect(world.apnsFake.stats.requests - pushesBefore).toBeLessThanOrEqual(4);

      // Each job keeps its own history.
      const jobs = await jobsOf(created.body.id);
      const fetched: string[] = [];
      const histories: HistoryEntry[][] = [];
      for (const job of jobs) {
        const h = await history(job.id);
        histories.push(h);
        expect(h.map((e) => e.to)).toContain('executing');
        expect(h.at(-1)!.to).toBe('success');
        // Started (left `waiting`) in job order; commands go out as Apple confirms each licence.
        fetched.push(h.find((e) => SLOT.has(e.to))!.at);
      }
      // Never more than the five slots held at once; more than one at a time all the same.
      const most = mostInSlots(histories);
      expect(most).toBeLessThanOrEqual(5);
      expect(most).toBeGreaterThan(1);
      const order = jobs.map((j) => j.adamId);
      expect(order).toEqual(APPS.map((a) => a.adamId));
      expect([...fetched].sort()).toEqual(fetched);
    },
  );

  it(
    'each job has its own outcome: an app the device refuses fails alone, the others of the same session succeed',
    { timeout: 60_000 },
    async () => {
      const apps = [APPS[0]!, TOO_NEW, APPS[1]!, APPS[2]!];
      const { token, devices } = await world.school('MO', apps);
      const ipad = devices[0]!;
      const created = await world.api<{ id: string }>('POST', '/distributions', {
        kind: 'install',
        tokenId: token.id,
        adamIds: apps.map((a) => a.adamId),
        targets: { deviceIds: [await deviceId(ipad)] },
        licenseMode: 'auto',
      });
      expect(created.status).toBe(201);
      expect(await world.settle(created.body.id, 30_000)).toEqual({ success: 3, device_error: 1 });
      const jobs = await jobsOf(created.body.id);
      const failed = jobs.find((j) => j.status === 'device_error')!;
      expect(failed.adamId).toBe(TOO_NEW.adamId);
      expect(failed.reason).toBe('Failed');
      const diagnosis = await world.api<{ causes: { code: string }[] }>(
        'GET',
        `/jobs/${failed.id}/diagnosis`,
      );
      expect(diagnosis.body.causes[0]!.code).toBe('app.requirements_unmet');
    },
  );

  it(
    'a device that stops answering gets no second ManagedApplicationList while one is pending, however many verification rounds pass',
    { timeout: 60_000 },
    async () => {
      const quick = await World.start(APPS.slice(0, 3), {}, { verifyEveryMs: 50 });
      try {
        // Apple's servers out of reach: the installs are acknowledged and stay Installing.
        const { token, devices } = await quick.school('MQ', APPS.slice(0, 3), () => ({
          appleReachable: false,
        }));
        const ipad = devices[0]!;
        const id = (
          await quick.api<{ items: { id: string; udid: string }[] }>(
            'GET',
            `/devices?serialNumber=${ipad.serialNumber}`,
          )
        ).body.items[0]!;
        const created = await quick.api<{ id: string }>('POST', '/distributions', {
          kind: 'install',
          tokenId: token.id,
          adamIds: APPS.slice(0, 3).map((a) => a.adamId),
          targets: { deviceIds: [id.id] },
          licenseMode: 'auto',
        });
        expect(created.status).toBe(201);
        const { store } = quick.server.haishin;
        const deadline = Date.now() + 20_000;
        while (
          (await store.jobs.list({ distributionId: created.body.id, limit: 10 })).some(
            (j) => j.status !== 'executing',
          )
        ) {
          if (Date.now() > deadline) throw new Error('the installs were never acknowledged');
          await new Promise((r) => setTimeout(r, 25));
        }
        ipad.online = false;
        // A session under way goes on until the device has nothing more to fetch.
        await quick.fleet.idle();
        const listsBefore = ipad.received.filter((t) => t === 'ManagedApplicationList').length;
        // Twenty verification rounds with the device away.
        await new Promise((r) => setTimeout(r, 1_000));
        const pending = await store.mdm.pendingRequestTypes([id.udid], ['ManagedApplicationList']);
        expect([...(pending.get(id.udid) ?? [])]).toEqual(['ManagedApplicationList']);
        const queued = await store.db.kysely
          .selectFrom('command_queue')
          .innerJoin('commands', 'commands.uuid', 'command_queue.command_uuid')
          .select('commands.uuid')
          .where('command_queue.enrollment_id', '=', id.udid)
          .where('commands.request_type', '=', 'ManagedApplicationList')
          .execute();
        expect(queued).toHaveLength(1);
        expect(ipad.received.filter((t) => t === 'ManagedApplicationList').length).toBe(listsBefore);
      } finally {
        await quick.close();
      }
    },
  );
});

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

/** The longest run of install commands the device received without a ManagedApplicationList between them. */
function longestInstallRun(received: readonly string[]): number {
  let run = 0;
  let longest = 0;
  for (const type of received) {
    if (type === 'InstallApplication') longest = Math.max(longest, ++run);
    else if (type === 'ManagedApplicationList') run = 0;
  }
  return longest;
}

describe('several installs in flight per device', () => {
  it(
    '12 apps on one iPad: five installs per session, one list checks them all, the next five in the same session; licences taken in one call per app',
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
      // Never more than the five slots between two checks, and the checks are few: one per batch.
      expect(longestInstallRun(received)).toBeLessThanOrEqual(5);
      expect(longestInstallRun(received)).toBeGreaterThan(1);
      const lists = received.filter((t) => t === 'ManagedApplicationList').length;
      // (Licences come back from Apple app by app, so installs can reach the queue a few at a time;
      // still, lists are shared: fewer than two thirds of the installs.)
      expect(lists).toBeGreaterThanOrEqual(3);
      expect(lists).toBeLessThanOrEqual(8);
      // Every licence asked for once, in one call per app at most (each app is its own asset).
      expect(world.vpp.calls('POST assets/associate') - associateBefore).toBeLessThanOrEqual(APPS.length);
      // Apps install instantly here: once a list shows a batch done, the next batch rides the same
      // session — a few pushes for twelve apps (one only when the licences confirmed after the
      // session had ended), not one per app.
      expect(world.apnsFake.stats.requests - pushesBefore).toBeLessThanOrEqual(4);

      // Each job keeps its own history; they started in job order.
      const jobs = await jobsOf(created.body.id);
      const fetched: string[] = [];
      for (const job of jobs) {
        const h = await history(job.id);
        expect(h.map((e) => e.to)).toContain('executing');
        expect(h.at(-1)!.to).toBe('success');
        fetched.push(h.find((e) => e.to === 'awaiting_response')!.at);
      }
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

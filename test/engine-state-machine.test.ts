// Issue 14, item 4: defects of the job state machine, each shown through the engine with simulated iPads.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { buildPlist } from '../src/mdm/plist.ts';
import { parseCommandResult } from '../src/mdm/results.ts';
import type { SimDevice } from '../src/sim/device/device.ts';
import { startTestServer } from './support/server.ts';
import { ADMIN, World } from './support/world.ts';
import type { CatalogApp } from './support/world.ts';

const APP: CatalogApp = {
  adamId: '1450014001',
  name: '状態機械教材',
  bundleId: 'jp.example.statemachine',
  sizeBytes: 10_000_000,
  licences: 100,
};

interface Job {
  id: string;
  status: string;
  reason: string | null;
  deviceId: string;
}

/** Statuses of a job not yet acknowledged by its device. */
const BEFORE_HAND_OVER = new Set([
  'waiting',
  'license_assigning',
  'push_sending',
  'retry_waiting',
  'awaiting_response',
]);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function jobsOf(world: World, distributionId: string): Promise<Job[]> {
  return (await world.api<{ items: Job[] }>('GET', `/jobs?distributionId=${distributionId}&limit=1000`)).body
    .items;
}

async function distribute(
  world: World,
  tokenId: string,
  o: { groupId?: string; deviceIds?: string[]; adamIds?: string[] },
): Promise<string> {
  const created = await world.api<{ id: string }>('POST', '/distributions', {
    kind: 'install',
    tokenId,
    adamIds: o.adamIds ?? [APP.adamId],
    targets: o.groupId ? { groupIds: [o.groupId] } : { deviceIds: o.deviceIds },
    licenseMode: 'auto',
  });
  expect(created.status).toBe(201);
  return created.body.id;
}

/** Polls (bounded) until `check` holds for the distribution's only job; returns that job. */
async function waitForJob(
  world: World,
  distributionId: string,
  check: (job: Job) => boolean,
  timeoutMs = 15_000,
): Promise<Job> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const [job] = await jobsOf(world, distributionId);
    if (job && check(job)) return job;
    if (Date.now() > deadline) throw new Error(`job never matched: ${JSON.stringify(job)}`);
    await sleep(25);
  }
}

async function history(
  world: World,
  jobId: string,
): Promise<{ to: string; reason: string | null; at: string }[]> {
  return (
    await world.api<{ history: { to: string; reason: string | null; at: string }[] }>('GET', `/jobs/${jobId}`)
  ).body.history;
}

describe('a deferral restarts the session clock', () => {
  const SESSION_MS = 3_000;
  let world: World;
  beforeAll(async () => {
    world = await World.start(
      [APP],
      { HAISHIN_SESSION_TIMEOUT: '3s', HAISHIN_PUSH_TIMEOUT: '5m', HAISHIN_REQUEST_TIMEOUT: '5m' },
      { notNowRetryMs: 300, transientBackoffMs: 2_000, verifyEveryMs: 300 },
    );
  });
  afterAll(async () => {
    await world?.close();
  });

  /**
   * The job reaches `executing` with the device's ManagedApplicationList unanswered; it must stay
   * there past the session deadline of the first hand-over (the device is installing), then the
   * next verification finds the app and the job succeeds.
   */
  async function installsAfterOldDeadline(ipad: SimDevice, distributionId: string, firstFetch: number) {
    const executing = await waitForJob(world, distributionId, (j) => !BEFORE_HAND_OVER.has(j.status));
    expect(executing.status).toBe('executing');
    // Past the deadline the first hand-over had, and the sweeper has had many ticks to act on it.
    await sleep(Math.max(0, firstFetch + SESSION_MS + 500 - Date.now()));
    const [still] = await jobsOf(world, distributionId);
    expect(still!.status).toBe('executing');
    ipad.behaviours.delete('ManagedApplicationList');
    const done = await waitForJob(world, distributionId, (j) => j.status !== 'executing');
    expect(done.status).toBe('success');
    return done;
  }

  it(
    'a Shared iPad that answers NotNow for longer than the session timeout installs once its user logs out, not session_timeout',
    { timeout: 30_000 },
    async () => {
      const school = await world.group('共有iPad校');
      const token = await world.token(school, [APP], 'notnow');
      const [ipad] = await world.devices(
        1,
        [school],
        () => ({ sharedIpad: true, users: [{ shortName: 'student1', loggedIn: true }] }),
        'NN',
      );
      ipad!.behaviours.set('ManagedApplicationList', { kind: 'silent' });
      const id = await distribute(world, token.id, { groupId: school });
      const deferred = await waitForJob(world, id, (j) => j.status === 'retry_waiting');
      const firstFetch = Date.now();
      expect(deferred.reason).toBe('NotNow');
      // The student stays logged in for longer than the session timeout: NotNow after NotNow.
      await sleep(SESSION_MS + 500);
      ipad!.users = ipad!.users.map((u) => ({ ...u, loggedIn: false }));
      const done = await installsAfterOldDeadline(ipad!, id, firstFetch);
      const steps = await history(world, done.id);
      expect(steps.filter((h) => h.reason === 'NotNow').length).toBeGreaterThan(3);
      expect(steps.map((h) => h.to)).not.toContain('session_timeout');
    },
  );

  it(
    'a transient error retried after a backoff longer than the session left: retried with a fresh session, then success',
    { timeout: 30_000 },
    async () => {
      const school = await world.group('一時エラー校');
      const token = await world.token(school, [APP], 'transient');
      const [ipad] = await world.devices(1, [school], () => ({}), 'TR');
      ipad!.behaviours.set('InstallApplication', {
        kind: 'error',
        chain: [{ ErrorCode: 506, ErrorDomain: 'ASDErrorDomain', LocalizedDescription: 'Duplicate request' }],
      });
      ipad!.behaviours.set('ManagedApplicationList', { kind: 'silent' });
      const id = await distribute(world, token.id, { groupId: school });
      // 2 × the 2 s backoff does not fit the 3 s session of the first hand-over; the retry gets its own.
      const retried = await waitForJob(
        world,
        id,
        (j) => j.status === 'retry_waiting' || !BEFORE_HAND_OVER.has(j.status),
      );
      const firstFetch = Date.now();
      expect(retried).toMatchObject({ status: 'retry_waiting', reason: 'transient ASDErrorDomain:506' });
      ipad!.behaviours.delete('InstallApplication');
      const done = await installsAfterOldDeadline(ipad!, id, firstFetch);
      expect((await history(world, done.id)).map((h) => h.to)).toContain('retry_waiting');
    },
  );
});

describe('activation is per device and fair', () => {
  const APPS: CatalogApp[] = [1, 2, 3, 4].map((i) => ({
    adamId: `14500141${i}0`,
    name: `教材${i}`,
    bundleId: `jp.example.fair${i}`,
    sizeBytes: 10_000_000,
    licences: 20,
  }));
  let world: World;
  beforeAll(async () => {
    // One job started per tick, 20 waiting jobs read per pass: the old pass read 4 waiting jobs
    // and skipped those of busy devices; 33 come before the idle device's job here.
    world = await World.start(APPS, {}, { activationBatch: 1 });
  });
  afterAll(async () => {
    await world?.close();
  });

  it(
    "many waiting jobs of a few busy devices come first: the idle device's job starts all the same, and each device keeps its order",
    { timeout: 30_000 },
    async () => {
      const school = await world.group('公平校');
      const token = await world.token(school, APPS, 'fair');
      const ipads = await world.devices(4, [school], () => ({}), 'FA');
      const busy = ipads.slice(0, 3);
      const idle = ipads[3]!;
      const idOf = async (d: SimDevice) =>
        (await world.api<{ items: { id: string }[] }>('GET', `/devices?serialNumber=${d.serialNumber}`)).body
          .items[0]!.id;
      // Switched off: each busy iPad's first five jobs (its slots) stay in push_sending, the rest wait.
      for (const d of busy) d.online = false;
      const busyIds = await Promise.all(busy.map(idOf));
      const earlier: string[] = [];
      for (let i = 0; i < 3; i++)
        earlier.push(
          await distribute(world, token.id, { deviceIds: busyIds, adamIds: APPS.map((a) => a.adamId) }),
        );
      const first = earlier[0]!;
      const deadline = Date.now() + 10_000;
      while ((await jobsOf(world, first)).filter((j) => j.status === 'push_sending').length < 3) {
        if (Date.now() > deadline) throw new Error('the busy devices never started');
        await sleep(25);
      }
      const second = await distribute(world, token.id, {
        deviceIds: [await idOf(idle)],
        adamIds: [APPS[0]!.adamId],
      });
      const done = await waitForJob(world, second, (j) => j.status === 'success', 10_000);
      expect(done.status).toBe('success');
      const stillWaiting = await Promise.all(
        earlier.map(async (d) => (await jobsOf(world, d)).filter((j) => j.status === 'waiting').length),
      );
      // Per busy iPad: the first distribution's 4 jobs and one of the second's took the 5 slots.
      expect(stillWaiting).toEqual([0, 9, 12]);

      // The busy iPads come back (they connect by themselves): every job ends, one after another per device.
      for (const d of busy) {
        d.online = true;
        await d.connect();
      }
      const jobs: Job[] = [];
      for (const d of earlier) {
        expect(await world.settle(d, 20_000)).toEqual({ success: 12 });
        jobs.push(...(await jobsOf(world, d)));
      }
      for (const d of busy) {
        const deviceId = await idOf(d);
        // Finished in job order: each device's oldest waiting job was the one started.
        const order = await Promise.all(
          jobs
            .filter((j) => j.deviceId === deviceId)
            .map(async (j) => (await history(world, j.id)).find((h) => h.to === 'success')!.at),
        );
        expect([...order].sort()).toEqual(order);
      }
    },
  );
});

describe("the device's uninstall goes through the engine", () => {
  let world: World;
  beforeAll(async () => {
    world = await World.start([APP]);
  });
  afterAll(async () => {
    await world?.close();
  });

  it(
    'POST /devices/:id/uninstall: the auto-assigned licence is reclaimed once RemoveApplication is acknowledged, not before',
    { timeout: 30_000 },
    async () => {
      const school = await world.group('削除校');
      const token = await world.token(school, [APP], 'uninstall');
      const [ipad] = await world.devices(1, [school], () => ({}), 'UN');
      expect(await world.settle(await distribute(world, token.id, { groupId: school }))).toEqual({
        success: 1,
      });
      expect(world.vpp.holders(token.sToken, APP.adamId)).toEqual([ipad!.serialNumber]);
      const deviceId = (
        await world.api<{ items: { id: string }[] }>('GET', `/devices?serialNumber=${ipad!.serialNumber}`)
      ).body.items[0]!.id;
      world.vpp.resetCounters();

      // The iPad takes the command and does not answer yet.
      ipad!.behaviours.set('RemoveApplication', { kind: 'silent' });
      const res = await world.api<{ distributionId: string; jobId: string }>(
        'POST',
        `/devices/${deviceId}/uninstall`,
        { adamId: APP.adamId },
      );
      expect(res.status).toBe(202);
      const deadline = Date.now() + 10_000;
      while (!ipad!.received.includes('RemoveApplication')) {
        if (Date.now() > deadline) throw new Error('RemoveApplication never reached the iPad');
        await sleep(25);
      }
      await sleep(300);
      expect(world.vpp.calls('POST assets/disassociate')).toBe(0);
      expect(world.vpp.holders(token.sToken, APP.adamId)).toEqual([ipad!.serialNumber]);
      const licences = await world.api<{ items: { state: string }[] }>(
        'GET',
        `/licenses?serialNumber=${ipad!.serialNumber}&adamId=${APP.adamId}`,
      );
      expect(licences.body.items.map((l) => l.state)).toEqual(['assigned']);
      const [job] = await jobsOf(world, res.body.distributionId);
      expect(job).toMatchObject({ id: res.body.jobId, status: 'awaiting_response' });

      // It answers on its next connection (the unanswered command is handed out again).
      ipad!.behaviours.delete('RemoveApplication');
      await ipad!.connect();
      expect(await world.settle(res.body.distributionId)).toEqual({ success: 1 });
      expect(ipad!.apps.has(APP.bundleId)).toBe(false);
      expect(world.vpp.calls('POST assets/disassociate')).toBe(1);
      await world.vpp.completePending();
      expect(world.vpp.holders(token.sToken, APP.adamId)).toEqual([]);
    },
  );
});

describe('the reason is for people; the engine keeps its place in explicit fields', () => {
  let world: World;
  beforeAll(async () => {
    world = await World.start([APP], {}, { notNowRetryMs: 200 });
  });
  afterAll(async () => {
    await world?.close();
  });

  it(
    'a retried job shows the reason of its last transition, and its device is pushed once for the retry',
    { timeout: 30_000 },
    async () => {
      const school = await world.group('理由校');
      const token = await world.token(school, [APP], 'reason');
      const [ipad] = await world.devices(1, [school], () => ({}), 'RS');
      ipad!.behaviours.set('InstallApplication', { kind: 'not_now' });
      const id = await distribute(world, token.id, { groupId: school });
      await waitForJob(world, id, (j) => j.status === 'retry_waiting');
      // Switched off after its NotNow: the retry's push reaches nobody, the job stays in push_sending.
      ipad!.online = false;
      const pushesBefore = world.apnsFake.stats.requests;
      const job = await waitForJob(world, id, (j) => j.status === 'push_sending');
      await sleep(500);
      expect(world.apnsFake.stats.requests - pushesBefore).toBe(1);
      const steps = await history(world, job.id);
      expect(steps.at(-1)).toMatchObject({ to: 'push_sending', reason: 'retry' });
      const [now] = await jobsOf(world, id);
      expect(now).toMatchObject({ status: 'push_sending', reason: 'retry' });
    },
  );
});

describe('restart recovery reads the jobs in flight in pages', () => {
  const DEVICES = 60;
  let world: World;
  let dir: string;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'haishin-recover-'));
    world = await World.start([APP], { HAISHIN_DB: `sqlite:${join(dir, 'haishin.db')}` });
  });
  afterAll(async () => {
    await world?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it(
    'after a restart with 60 installs awaiting their answer: a bounded number of queries, the stored answer applied, every device pushed, every job done',
    { timeout: 60_000 },
    async () => {
      const school = await world.group('再起動校');
      const token = await world.token(school, [APP], 'recover');
      const ipads = await world.devices(DEVICES, [school], () => ({}), 'RC');
      // The iPads take their install and say nothing yet.
      for (const d of ipads) d.behaviours.set('InstallApplication', { kind: 'silent' });
      const id = await distribute(world, token.id, { groupId: school });
      const deadline = Date.now() + 20_000;
      while ((await jobsOf(world, id)).filter((j) => j.status === 'awaiting_response').length < DEVICES) {
        if (Date.now() > deadline) throw new Error('the installs never reached the iPads');
        await sleep(50);
      }

      // Stopped, and started again on the same database and address, ticked by hand.
      const url = new URL(world.server.baseUrl);
      await world.server.close();
      const restarted = await startTestServer({
        env: {
          HAISHIN_ADMIN_TOKEN: ADMIN,
          ...world.fakes.env,
          HAISHIN_DB: `sqlite:${join(dir, 'haishin.db')}`,
          HAISHIN_LISTEN: url.host,
          HAISHIN_PUBLIC_URL: url.origin,
        },
        tuning: { engineTickMs: 0, vppTickMs: 50, vppClientOptions: { pacing: false } },
      });
      world.server = { ...restarted, baseUrl: url.origin };
      const { store, engine } = world.server.haishin;
      // One answer was stored just before the stop, not yet applied to its job (the iPad had
      // installed the app).

      const replayed = (await store.jobs.list({ distributionId: id, limit: 1 }))[0]!;
      const device = (await store.devices.get(replayed.device_id))!;
      await store.mdm.saveResult({
        enrollmentId: device.udid,
        commandUuid: replayed.command_uuid!,
        status: 'Acknowledged',
        raw: buildPlist({
          Status: 'Acknowledged',
          UDID: device.udid,
          CommandUUID: replayed.command_uuid!,
          Identifier: APP.bundleId,
          State: 'Queued',
        }),
        errorChain: null,
        at: new Date(),
      });
      const installed = ipads.find((d) => d.serialNumber === device.serial_number)!;
      installed.apps.set(APP.bundleId, {
        name: APP.name,
        bundleId: APP.bundleId,
        version: '1.0',
        sizeBytes: APP.sizeBytes,
        managedAdamId: Number(APP.adamId),
        managedStatus: 'Managed',
      });
      for (const d of ipads) d.behaviours.delete('InstallApplication');
      const pushesBefore = world.apnsFake.stats.requests;
      const selects = vi.spyOn(store.db.kysely, 'selectFrom');
      let queries: number;
      try {
        await engine.tick();
        queries = selects.mock.calls.length;
      } finally {
        selects.mockRestore();
      }
      // Not one query per job: the in-flight jobs and their stored answers come a page at a time.
      expect(queries).toBeLessThan(40);
      expect((await store.jobs.get(replayed.id))?.status).toBe('executing');
      expect(world.apnsFake.stats.requests - pushesBefore).toBeGreaterThanOrEqual(1);
      // Every iPad was pushed: each fetches its command again and answers; the engine finishes the work.
      const ticking = setInterval(() => void engine.tick(), 25);
      try {
        expect(await world.settle(id, 30_000)).toEqual({ success: DEVICES });
      } finally {
        clearInterval(ticking);
      }
    },
  );
});

describe('an answer for a command whose hand-over was not recorded', () => {
  let world: World;
  beforeAll(async () => {
    world = await World.start([APP], {}, { verifyEveryMs: 300 });
  });
  afterAll(async () => {
    await world?.close();
  });

  it(
    'moves the job on (a stop between handing out the command and recording it), instead of an illegal move that stops the pass',
    { timeout: 30_000 },
    async () => {
      const school = await world.group('引き渡し校');
      const token = await world.token(school, [APP], 'handover');
      const [ipad] = await world.devices(1, [school], () => ({}), 'HO');
      // Off: the push reaches nobody, so the job waits in push_sending with its command attached.
      ipad!.online = false;
      const id = await distribute(world, token.id, { groupId: school });
      const pending = await waitForJob(world, id, (j) => j.status === 'push_sending');
      const { haishin } = world.server;
      const row = await haishin.store.jobs.get(pending.id);
      expect(row?.command_uuid).toBeTruthy();
      const device = (await haishin.store.devices.briefs([row!.device_id])).get(row!.device_id)!;
      // The device's answer arrives as if the hand-over had happened before a crash.
      const answer = { Status: 'Acknowledged', CommandUUID: row!.command_uuid!, UDID: device.udid };
      await haishin.engine.onCommandReport({
        deviceId: device.id,
        enrollmentId: device.udid,
        commandUuid: row!.command_uuid!,
        requestType: 'InstallApplication',
        status: 'Acknowledged',
        result: parseCommandResult(answer)!,
        report: answer,
        raw: buildPlist(answer),
        at: new Date(),
      });
      const steps = (await history(world, pending.id)).map((h) => h.to);
      expect(steps.slice(-2)).toEqual(['awaiting_response', 'executing']);
    },
  );
});

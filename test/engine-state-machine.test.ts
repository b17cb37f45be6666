// Issue 14, item 4: defects of the job state machine, each shown through the engine with simulated iPads.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SimDevice } from '../src/sim/device/device.ts';
import { World } from './support/world.ts';
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

async function history(world: World, jobId: string): Promise<{ to: string; reason: string | null }[]> {
  return (await world.api<{ history: { to: string; reason: string | null }[] }>('GET', `/jobs/${jobId}`)).body
    .history;
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

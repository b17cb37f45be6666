// Issue 14's goals: many apps per iPad, measured through the product as it ships.
//
// `haishin fakes`, `haishin serve` (configured only by environment, SQLite in a temp dir) and
// `haishin fleet` run as child processes, as an administrator starts them; this process only
// drives the admin REST API and reads the fakes' control API.
//
//   A  one iPad whose downloads take APPS_DOWNLOAD (20s), verification every APPS_VERIFY_EVERY
//      (10s): one app, then APPS_COUNT (20) other apps; time from POST /distributions until every
//      job is terminal, and the ratio. Goal: ≤ 2×.
//   B  N iPads (1,000) × APPS_COUNT apps, downloads of APPS_B_DOWNLOAD (0): time, jobs by status,
//      push requests per device (the fake APNs's per-token counts), Apps and Books associate calls.
//      Goal: every job `success`, ≤ 3 pushes per device.
//
//   npm run bench apps                          (A then B)
//   node --import tsx bench/apps.bench.ts A     (or B, or B 200 for 200 iPads)
//
// Environment: APPS_DOWNLOAD (A's download time, 20s), APPS_VERIFY_EVERY (serve's
// HAISHIN_VERIFY_EVERY, 10s), APPS_COUNT (20), APPS_B_DEVICES (1000; argv wins), APPS_B_DOWNLOAD
// (0), APPS_DOWNLOAD_CONCURRENCY (downloads at once per iPad, default no limit),
// APPS_TIMEOUT (bound on each distribution, default 30m for A and 20m for B),
// HAISHIN_INSTALLS_PER_DEVICE (passed to serve when set), APPS_SERVE_REPO (another checkout whose
// `bin/haishin.js serve` runs; the fakes and the fleet always run from this one).
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { freePort } from '../src/cli/net.ts';
import { TERMINAL_STATUSES } from '../src/core/jobs.ts';
import { parseDuration } from '../src/core/duration.ts';
import { extraApps } from '../src/sim/scenario.ts';
import { adminApi, control, HaishinProcess, readEnvFile, REPO } from '../test/e2e/support.ts';
import type { FakesInfo, FakesStats } from '../test/e2e/support.ts';
import { commitOf, startServe, stopChild, usage } from './support/processes.ts';

const ADMIN = 'bench-admin-token-0123456789abcdef';
const duration = (name: string, fallback: string) => {
  const text = process.env[name] ?? fallback;
  return /^\s*0+\s*$/.test(text) ? 0 : parseDuration(text);
};
const APPS = Number(process.env.APPS_COUNT ?? 20);
const DOWNLOAD_MS = duration('APPS_DOWNLOAD', '20s');
const B_DOWNLOAD_MS = duration('APPS_B_DOWNLOAD', '0');
const VERIFY_EVERY = process.env.APPS_VERIFY_EVERY ?? '10s';
const CONCURRENCY = process.env.APPS_DOWNLOAD_CONCURRENCY;
const SERVE_REPO = resolve(process.env.APPS_SERVE_REPO ?? REPO);
const PER_DEVICE = process.env.HAISHIN_INSTALLS_PER_DEVICE;

const [which = 'all', devicesArg] = process.argv.slice(2);
const B_DEVICES = Number(devicesArg ?? process.env.APPS_B_DEVICES ?? 1000);
if (!['A', 'B', 'all'].includes(which)) throw new Error(`usage: apps.bench.ts [A|B|all] [devices for B]`);
if (!Number.isInteger(APPS) || APPS < 1 || APPS > 500) throw new Error('APPS_COUNT: 1 to 500');
if (!Number.isInteger(B_DEVICES) || B_DEVICES < 1 || B_DEVICES > 10_000)
  throw new Error('devices for B: 1 to 10000');

let stopping = false;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

/** One run of the three processes: fakes with `apps` extra apps, serve, and a fleet of `devices` iPads. */
class Stack {
  readonly dir = mkdtempSync(join(tmpdir(), 'haishin-apps-'));
  fakes: HaishinProcess | null = null;
  serve: ChildProcess | null = null;
  fleet: HaishinProcess | null = null;
  info!: FakesInfo;
  api!: ReturnType<typeof adminApi>;
  root!: string;
  tokenId!: string;
  /** iPads in the fleet: pushes per device are counted by push token, those never pushed as 0. */
  devices = 0;

  async start(o: { apps: number; devices: number; downloadMs: number }): Promise<void> {
    const t0 = performance.now();
    const fakesDir = join(this.dir, 'fakes');
    this.fakes = new HaishinProcess(
      ['fakes', '--dir', fakesDir, '--apps', String(o.apps), '--licences', String(o.devices + 50)],
      {},
    );
    await this.fakes.waitForLine(/^fakes ready$/);
    this.info = JSON.parse(readFileSync(join(fakesDir, 'fakes.json'), 'utf8')) as FakesInfo;

    const port = await freePort();
    const baseUrl = `http://127.0.0.1:${port}`;
    const env: Record<string, string> = {
      ...readEnvFile(join(fakesDir, 'fakes.env')),
      HAISHIN_DB: `sqlite:${join(this.dir, 'haishin.db')}`,
      HAISHIN_DATA_DIR: join(this.dir, 'data'),
      HAISHIN_LISTEN: `127.0.0.1:${port}`,
      HAISHIN_PUBLIC_URL: baseUrl,
      HAISHIN_ADMIN_TOKEN: ADMIN,
      HAISHIN_LOG_LEVEL: 'warn',
      // Simulated iPads: P-256 identities enroll fast (decision 0010).
      HAISHIN_DEVICE_KEY_TYPE: 'ec',
      HAISHIN_PKCS12_ITERATIONS: '1',
      HAISHIN_VERIFY_EVERY: VERIFY_EVERY,
    };
    if (PER_DEVICE !== undefined) env.HAISHIN_INSTALLS_PER_DEVICE = PER_DEVICE;
    const served = await startServe(SERVE_REPO, env, {
      onExit: (code, stderr) => {
        if (!stopping) console.error(`haishin serve exited with ${code} during the run:\n${stderr}`);
      },
    });
    this.serve = served.child;
    this.root = new URL(served.enrollUrl).searchParams.get('group')!;
    this.api = adminApi(baseUrl, ADMIN);

    const token = await this.api<{ id: string }>('POST', '/vpp-tokens', {
      groupId: this.root,
      sToken: readFileSync(this.info.tokenFile, 'utf8'),
    });
    if (token.status !== 201)
      throw new Error(`POST /vpp-tokens: HTTP ${token.status} ${JSON.stringify(token.body)}`);
    this.tokenId = token.body.id;
    const auto = await this.api('PUT', `/groups/${this.root}/auto-assign-token`, { tokenId: this.tokenId });
    if (auto.status !== 200) throw new Error(`auto-assign token: HTTP ${auto.status}`);

    const args = ['--fakes', fakesDir, '--enroll', served.enrollUrl, '--devices', String(o.devices)];
    args.push('--download-time', `${o.downloadMs}ms`);
    if (CONCURRENCY) args.push('--download-concurrency', CONCURRENCY);
    this.fleet = new HaishinProcess(['fleet', ...args], {});
    await this.fleet.waitForLine(/^fleet ready: /, 900_000);
    this.devices = o.devices;
    const enrolledS = (performance.now() - t0) / 1000;
    // What enrollment set off (device facts) ends before the clock starts: no push for 3 s.
    await this.quiet();
    console.log(
      `  ${o.devices} iPad${o.devices === 1 ? '' : 's'} enrolled in ${enrolledS.toFixed(1)} s, quiet after ${((performance.now() - t0) / 1000).toFixed(1)} s`,
    );
  }

  async quiet(): Promise<void> {
    let last = -1;
    let since = performance.now();
    for (let i = 0; i < 600; i++) {
      const { apns } = await this.stats();
      if (apns.requests !== last) {
        last = apns.requests;
        since = performance.now();
      } else if (performance.now() - since >= 3_000) return;
      await sleep(250);
    }
  }

  stats(): Promise<FakesStats> {
    return control(`${this.info.control}/stats`);
  }

  async pushesByToken(): Promise<Record<string, number>> {
    return (await control<{ tokens: Record<string, number> }>(`${this.info.control}/pushes/by-token`)).tokens;
  }

  /**
   * Distributes `adamIds` to every iPad and waits (bounded) until every job is terminal. Returns
   * the time, the counts, and the pushes and Apps and Books calls it took.
   */
  async distribute(adamIds: string[], timeoutMs: number, progressEveryMs = 0) {
    const pushes0 = await this.pushesByToken();
    const stats0 = await this.stats();
    const cpu0 = this.cpu();
    const t0 = performance.now();
    const created = await this.api<{ id: string; jobCount: number }>('POST', '/distributions', {
      kind: 'install',
      tokenId: this.tokenId,
      adamIds,
      targets: { groupIds: [this.root] },
      licenseMode: 'auto',
    });
    if (created.status !== 201 && created.status !== 200)
      throw new Error(`POST /distributions: HTTP ${created.status} ${JSON.stringify(created.body)}`);
    const terminal: ReadonlySet<string> = TERMINAL_STATUSES;
    let counts: Record<string, number> = {};
    let settled = false;
    let lastProgress = t0;
    const poll = progressEveryMs > 0 ? 1_000 : 200;
    while (performance.now() - t0 < timeoutMs) {
      const d = await this.api<{ counts: Record<string, number> }>(
        'GET',
        `/distributions/${created.body.id}`,
      );
      counts = d.body.counts;
      if (Object.keys(counts).every((s) => terminal.has(s))) {
        settled = true;
        break;
      }
      if (progressEveryMs > 0 && performance.now() - lastProgress >= progressEveryMs) {
        lastProgress = performance.now();
        console.log(`  [${seconds(lastProgress - t0)}] ${JSON.stringify(counts)}`);
      }
      await sleep(poll);
    }
    const ms = performance.now() - t0;
    const cpu1 = this.cpu();
    const pushes1 = await this.pushesByToken();
    const stats1 = await this.stats();
    const perDevice = Object.entries(pushes1).map(([t, n]) => n - (pushes0[t] ?? 0));
    // Devices never pushed during the distribution count as 0.
    while (perDevice.length < this.devices) perDevice.push(0);
    perDevice.sort((a, b) => a - b);
    const calls = (s: FakesStats, endpoint: string) => s.vpp.calls[endpoint] ?? 0;
    const serials = (s: FakesStats) => s.vpp.associate.reduce((n, r) => n + r.serials.length, 0);
    return {
      id: created.body.id,
      jobCount: created.body.jobCount,
      settled,
      ms,
      counts,
      cpuS: {
        serve: cpu1.serve - cpu0.serve,
        fleet: cpu1.fleet - cpu0.fleet,
        fakes: cpu1.fakes - cpu0.fakes,
      },
      pushes: {
        total: stats1.apns.requests - stats0.apns.requests,
        max: perDevice.at(-1) ?? 0,
        median: perDevice[Math.floor(perDevice.length / 2)] ?? 0,
        mean: perDevice.reduce((a, b) => a + b, 0) / Math.max(1, perDevice.length),
        over3: perDevice.filter((n) => n > 3).length,
      },
      associateCalls: calls(stats1, 'POST assets/associate') - calls(stats0, 'POST assets/associate'),
      associatedSerials: serials(stats1) - serials(stats0),
      vppCalls:
        Object.values(stats1.vpp.calls).reduce((a, b) => a + b, 0) -
        Object.values(stats0.vpp.calls).reduce((a, b) => a + b, 0),
    };
  }

  /** CPU seconds used so far by each of the three processes. */
  cpu(): { serve: number; fleet: number; fakes: number } {
    return {
      serve: usage(this.serve?.pid).cpuS,
      fleet: usage(this.fleet?.child.pid).cpuS,
      fakes: usage(this.fakes?.child.pid).cpuS,
    };
  }

  /** When each job of the distribution reached its status, in seconds after `createdAt`. */
  async finishTimes(distributionId: string): Promise<number[]> {
    const d = await this.api<{ createdAt: string }>('GET', `/distributions/${distributionId}`);
    const jobs = await this.api<{ items: { updatedAt: string }[] }>(
      'GET',
      `/jobs?distributionId=${distributionId}&limit=100`,
    );
    const start = Date.parse(d.body.createdAt);
    return jobs.body.items.map((j) => (Date.parse(j.updatedAt) - start) / 1000).sort((a, b) => a - b);
  }

  async stop(): Promise<void> {
    stopping = true;
    await this.fleet?.kill();
    await stopChild(this.serve);
    await this.fakes?.kill();
    stopping = false;
    rmSync(this.dir, { recursive: true, force: true });
  }
}

type Result = Awaited<ReturnType<Stack['distribute']>>;

function describeRun(label: string, r: Result): void {
  console.log(
    [
      `  ${label}: ${r.settled ? '' : 'NOT SETTLED after '}${seconds(r.ms)}`,
      `${r.jobCount} jobs ${JSON.stringify(r.counts)}`,
      `pushes ${r.pushes.total} (per device max ${r.pushes.max}, median ${r.pushes.median}, mean ${r.pushes.mean.toFixed(1)}, ${r.pushes.over3} devices > 3)`,
      `associate calls ${r.associateCalls} (${r.associatedSerials} serials), Apps and Books calls ${r.vppCalls}`,
      `CPU during it: serve ${r.cpuS.serve.toFixed(1)} s, fleet ${r.cpuS.fleet.toFixed(1)} s, fakes ${r.cpuS.fakes.toFixed(1)} s`,
    ].join('\n    '),
  );
}

async function scenarioA(): Promise<boolean> {
  const apps = extraApps(APPS + 1).map((a) => a.adamId);
  console.log(
    `\nA: one iPad, download ${seconds(DOWNLOAD_MS)} per app (${CONCURRENCY ?? 'all'} at once), HAISHIN_VERIFY_EVERY=${VERIFY_EVERY}: 1 app, then ${APPS} others`,
  );
  const stack = new Stack();
  try {
    await stack.start({ apps: APPS + 1, devices: 1, downloadMs: DOWNLOAD_MS });
    const timeout = duration('APPS_TIMEOUT', '30m');
    const one = await stack.distribute([apps[APPS]!], timeout);
    describeRun('1 app', one);
    const many = await stack.distribute(apps.slice(0, APPS), timeout);
    describeRun(`${APPS} apps`, many);
    const times = await stack.finishTimes(many.id);
    console.log(`    jobs ended at ${times.map((t) => t.toFixed(0)).join(', ')} s`);
    const ratio = many.ms / one.ms;
    const ok = one.settled && many.settled && ratio <= 2 && many.counts.success === APPS;
    console.log(
      `  A: ${APPS} apps / 1 app = ${seconds(many.ms)} / ${seconds(one.ms)} = ${ratio.toFixed(2)}× (goal ≤ 2×: ${ok ? 'met' : 'not met'})`,
    );
    return ok;
  } finally {
    await stack.stop();
  }
}

async function scenarioB(): Promise<boolean> {
  console.log(
    `\nB: ${B_DEVICES} iPads × ${APPS} apps, download ${seconds(B_DOWNLOAD_MS)}, HAISHIN_VERIFY_EVERY=${VERIFY_EVERY}`,
  );
  const stack = new Stack();
  try {
    await stack.start({ apps: APPS, devices: B_DEVICES, downloadMs: B_DOWNLOAD_MS });
    const r = await stack.distribute(
      extraApps(APPS).map((a) => a.adamId),
      duration('APPS_TIMEOUT', '20m'),
      15_000,
    );
    describeRun(`${B_DEVICES} × ${APPS}`, r);
    const { rssMb } = usage(stack.serve?.pid);
    console.log(
      `    ${(r.jobCount / (r.ms / 1000)).toFixed(0)} jobs/s, serve ${((r.cpuS.serve * 1e3) / r.jobCount).toFixed(1)} ms CPU per job, serve RSS ${rssMb.toFixed(0)} MB`,
    );
    const ok = r.settled && r.counts.success === r.jobCount && r.pushes.max <= 3;
    console.log(
      `  B: ${r.counts.success ?? 0}/${r.jobCount} success, pushes per device max ${r.pushes.max} (goal: all success, ≤ 3: ${ok ? 'met' : 'not met'})`,
    );
    return ok;
  } finally {
    await stack.stop();
  }
}

console.log(
  `issue 14 goals — serve from ${SERVE_REPO === REPO ? 'this checkout' : SERVE_REPO} (commit ${commitOf(SERVE_REPO)}), fakes and fleet at ${commitOf(REPO)}; HAISHIN_INSTALLS_PER_DEVICE=${PER_DEVICE ?? '(serve default)'}; node ${process.version}, ${availableParallelism()} cores, load ${loadavg()
    .map((l) => l.toFixed(2))
    .join(' ')}`,
);
const goals: string[] = [];
if (which !== 'B') goals.push(`A ${(await scenarioA()) ? 'met' : 'not met'}`);
if (which !== 'A') goals.push(`B ${(await scenarioB()) ? 'met' : 'not met'}`);
console.log(`\ngoals: ${goals.join(', ')}`);

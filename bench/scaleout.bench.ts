// Issue 16's benchmark: throughput of 1, 2 and 3 `haishin serve` processes on one PostgreSQL.
//
// For each process count, a throwaway PostgreSQL cluster, `haishin fakes`, N `haishin serve`
// (configured only by environment, HAISHIN_PUBLIC_URL the proxy's) behind a small round-robin
// proxy (bench/support/round-robin-proxy.ts), and `haishin fleet` enrolling through the proxy —
// every request, the iPads' included, goes to the next process in turn. One distribution of one
// app to every iPad in auto mode; it reports the wall time from POST /distributions to the last
// job's success, jobs per second, pushes per device, Apps and Books associate calls (and any serial
// in two of them), the requests each process answered, and the CPU of each process.
//
// On a machine with two cores shared with other work, more processes give little: the engine's
// tick runs in the one holding its lease (decision 0019) and everything shares the same cores and
// database. What the figures show is that nothing is done twice and the work goes on with N.
//
//   npm run bench scaleout                    (1, 2 and 3 processes, 2,000 iPads)
//   node --import tsx bench/scaleout.bench.ts 2 500    (2 processes, 500 iPads)
//
// Environment: SCALEOUT_PROCESSES (e.g. "1,2,3"), SCALEOUT_DEVICES (2000; argv wins),
// SCALEOUT_TIMEOUT (bound on each distribution, default 15m).
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { availableParallelism, loadavg, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { freePort } from '../src/cli/net.ts';
import { parseDuration } from '../src/core/duration.ts';
import { TERMINAL_STATUSES } from '../src/core/jobs.ts';
import { SCENARIO_APPS } from '../src/sim/scenario.ts';
import { adminApi, control, HaishinProcess, readEnvFile, REPO, startServe } from '../test/e2e/support.ts';
import type { FakesInfo, FakesStats } from '../test/e2e/support.ts';
import { postgresAvailable, postgresSkipReason, startPostgres } from '../test/support/pg.ts';
import type { ThrowawayPostgres } from '../test/support/pg.ts';
import { startRoundRobinProxy } from './support/round-robin-proxy.ts';
import type { RoundRobinProxy } from './support/round-robin-proxy.ts';

const ADMIN = 'bench-scaleout-admin-token-0123456789';
const [processesArg, devicesArg] = process.argv.slice(2);
const COUNTS = (processesArg ?? process.env.SCALEOUT_PROCESSES ?? '1,2,3').split(',').map(Number);
const DEVICES = Number(devicesArg ?? process.env.SCALEOUT_DEVICES ?? 2000);
const TIMEOUT_MS = parseDuration(process.env.SCALEOUT_TIMEOUT ?? '15m');
if (COUNTS.some((n) => !Number.isInteger(n) || n < 1 || n > 8)) throw new Error('processes: 1 to 8 each');
if (!Number.isInteger(DEVICES) || DEVICES < 1 || DEVICES > 10_000) throw new Error('devices: 1 to 10000');
const [APP] = SCENARIO_APPS as [(typeof SCENARIO_APPS)[number]];

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const CLOCK_TICKS = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();

/** CPU seconds (user + system) a process has used so far. */
function cpuOf(pid: number | undefined): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
  } catch {
    return NaN;
  }
}

/** CPU seconds of every PostgreSQL process of the cluster (its postmaster and its backends). */
function postgresCpu(url: string): number {
  const port = new URL(url).port;
  let total = 0;
  try {
    const out = execFileSync('pgrep', ['-f', `postgres.*-p ${port}`], { encoding: 'utf8' });
    for (const pid of out.split('\n').filter(Boolean)) {
      total += cpuOf(Number(pid));
      const children = execFileSync('pgrep', ['-P', pid], { encoding: 'utf8' }).split('\n').filter(Boolean);
      for (const child of children) total += cpuOf(Number(child));
    }
  } catch {
    return NaN;
  }
  return total;
}

function commit(): string {
  try {
    const git = (...args: string[]) => execFileSync('git', args, { cwd: REPO, encoding: 'utf8' }).trim();
    return (
      git('rev-parse', '--short', 'HEAD') +
      (git('status', '--porcelain', '--', 'src') ? ' + uncommitted src/' : '')
    );
  } catch {
    return 'not a git checkout';
  }
}

interface RunResult {
  processes: number;
  enrolledS: number;
  counts: Record<string, number>;
  settled: boolean;
  lastSuccessS: number;
  jobsPerS: number;
  pushes: { total: number; mean: number; max: number; devicesOver1: number };
  associateCalls: number;
  associatedSerials: number;
  serialsInTwoCalls: number;
  requestsPerProcess: number[];
  cpuS: { serve: number[]; postgres: number; fleet: number; fakes: number };
}

async function run(processes: number): Promise<RunResult> {
  const dir = mkdtempSync(join(tmpdir(), 'haishin-scaleout-'));
  let pg: ThrowawayPostgres | null = null;
  let fakes: HaishinProcess | null = null;
  let fleet: HaishinProcess | null = null;
  let proxy: RoundRobinProxy | null = null;
  const serves: HaishinProcess[] = [];
  try {
    const t0 = performance.now();
    pg = await startPostgres();
    const fakesDir = join(dir, 'fakes');
    fakes = new HaishinProcess(['fakes', '--dir', fakesDir, '--licences', String(DEVICES + 50)], {});
    await fakes.waitForLine(/^fakes ready$/);
    const info = JSON.parse(readFileSync(join(fakesDir, 'fakes.json'), 'utf8')) as FakesInfo;

    const ports = await Promise.all(Array.from({ length: processes }, () => freePort()));
    proxy = await startRoundRobinProxy(ports.map((p) => `http://127.0.0.1:${p}`));
    const env = (port: number): Record<string, string> => ({
      ...readEnvFile(join(fakesDir, 'fakes.env')),
      HAISHIN_DB: pg!.url,
      HAISHIN_DATA_DIR: join(dir, 'data'),
      HAISHIN_LISTEN: `127.0.0.1:${port}`,
      // Every process names the load balancer: enrollment profiles, Apple's notifications.
      HAISHIN_PUBLIC_URL: proxy!.url,
      HAISHIN_ADMIN_TOKEN: ADMIN,
      HAISHIN_LOG_LEVEL: 'warn',
      HAISHIN_DEVICE_KEY_TYPE: 'ec',
      HAISHIN_PKCS12_ITERATIONS: '1',
      HAISHIN_VERIFY_EVERY: '10s',
    });
    // The first alone (it migrates the database and creates the root group), then the others.
    const first = await startServe(env(ports[0]!));
    serves.push(first.proc);
    for (const port of ports.slice(1)) serves.push((await startServe(env(port))).proc);
    const api = adminApi(proxy.url, ADMIN);
    const root = new URL(first.enrollUrl).searchParams.get('group')!;
    const token = await api<{ id: string }>('POST', '/vpp-tokens', {
      groupId: root,
      sToken: readFileSync(info.tokenFile, 'utf8'),
    });
    if (token.status !== 201)
      throw new Error(`POST /vpp-tokens: HTTP ${token.status} ${JSON.stringify(token.body)}`);
    const auto = await api('PUT', `/groups/${root}/auto-assign-token`, { tokenId: token.body.id });
    if (auto.status !== 200) throw new Error(`auto-assign token: HTTP ${auto.status}`);

    fleet = new HaishinProcess(
      [
        'fleet',
        '--fakes',
        fakesDir,
        '--enroll',
        first.enrollUrl,
        '--devices',
        String(DEVICES),
        '--serial-prefix',
        'SO',
      ],
      {},
    );
    await fleet.waitForLine(/^fleet ready: /, 1_200_000);
    const enrolledS = (performance.now() - t0) / 1000;
    // What enrollment set off (device facts) ends before the clock starts: no push for 3 s.
    let lastPushes = -1;
    let since = performance.now();
    for (let i = 0; i < 1_200; i++) {
      const { apns } = await control<FakesStats>(`${info.control}/stats`);
      if (apns.requests !== lastPushes) {
        lastPushes = apns.requests;
        since = performance.now();
      } else if (performance.now() - since >= 3_000) break;
      await sleep(250);
    }

    const byToken = async () =>
      (await control<{ tokens: Record<string, number> }>(`${info.control}/pushes/by-token`)).tokens;
    const pushes0 = await byToken();
    const stats0 = await control<FakesStats>(`${info.control}/stats`);
    const requests0 = proxy.counts();
    const cpu = () => ({
      serve: serves.map((s) => cpuOf(s.child.pid)),
      postgres: postgresCpu(pg!.url),
      fleet: cpuOf(fleet?.child.pid),
      fakes: cpuOf(fakes?.child.pid),
    });
    const cpu0 = cpu();
    const started = performance.now();
    const created = await api<{ id: string }>('POST', '/distributions', {
      kind: 'install',
      tokenId: token.body.id,
      adamIds: [APP.adamId],
      targets: { groupIds: [root] },
      licenseMode: 'auto',
    });
    if (created.status !== 201) throw new Error(`POST /distributions: HTTP ${created.status}`);
    const terminal: ReadonlySet<string> = TERMINAL_STATUSES;
    let counts: Record<string, number> = {};
    let settled = false;
    let lastLog = started;
    while (performance.now() - started < TIMEOUT_MS) {
      counts = (await api<{ counts: Record<string, number> }>('GET', `/distributions/${created.body.id}`))
        .body.counts;
      if (Object.keys(counts).length > 0 && Object.keys(counts).every((s) => terminal.has(s))) {
        settled = true;
        break;
      }
      if (performance.now() - lastLog >= 15_000) {
        lastLog = performance.now();
        console.log(`    [${((lastLog - started) / 1000).toFixed(0)} s] ${JSON.stringify(counts)}`);
      }
      await sleep(500);
    }
    const cpu1 = cpu();
    const requests1 = proxy.counts();
    const pushes1 = await byToken();
    const stats1 = await control<FakesStats>(`${info.control}/stats`);

    // The wall time to the last success, from the jobs' own times (not the polling's).
    const d = await api<{ createdAt: string }>('GET', `/distributions/${created.body.id}`);
    let lastMs = 0;
    let cursor: string | null = null;
    for (let page = 0; page < 1_000; page++) {
      const q: string = `/jobs?distributionId=${created.body.id}&status=success&limit=500${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`;
      const jobs = await api<{ items: { updatedAt: string }[]; nextCursor?: string | null }>('GET', q);
      for (const j of jobs.body.items)
        lastMs = Math.max(lastMs, Date.parse(j.updatedAt) - Date.parse(d.body.createdAt));
      cursor = jobs.body.nextCursor ?? null;
      if (!cursor) break;
    }
    const perDevice = Object.entries(pushes1).map(([t, n]) => n - (pushes0[t] ?? 0));
    while (perDevice.length < DEVICES) perDevice.push(0);
    const associate = stats1.vpp.associate.slice(stats0.vpp.associate.length);
    const seen = new Map<string, number>();
    for (const call of associate) for (const s of call.serials) seen.set(s, (seen.get(s) ?? 0) + 1);
    const success = counts.success ?? 0;
    return {
      processes,
      enrolledS,
      counts,
      settled,
      lastSuccessS: lastMs / 1000,
      jobsPerS: lastMs > 0 ? success / (lastMs / 1000) : 0,
      pushes: {
        total: stats1.apns.requests - stats0.apns.requests,
        mean: perDevice.reduce((a, b) => a + b, 0) / Math.max(1, perDevice.length),
        max: Math.max(0, ...perDevice),
        devicesOver1: perDevice.filter((n) => n > 1).length,
      },
      associateCalls:
        (stats1.vpp.calls['POST assets/associate'] ?? 0) - (stats0.vpp.calls['POST assets/associate'] ?? 0),
      associatedSerials: seen.size,
      serialsInTwoCalls: [...seen.values()].filter((n) => n > 1).length,
      requestsPerProcess: requests1.map((n, i) => n - requests0[i]!),
      cpuS: {
        serve: cpu1.serve.map((c, i) => c - cpu0.serve[i]!),
        postgres: cpu1.postgres - cpu0.postgres,
        fleet: cpu1.fleet - cpu0.fleet,
        fakes: cpu1.fakes - cpu0.fakes,
      },
    };
  } finally {
    await fleet?.kill();
    await Promise.all(
      serves.map(async (s) => {
        const timer = setTimeout(() => s.child.kill('SIGKILL'), 15_000);
        await s.kill();
        clearTimeout(timer);
      }),
    );
    await fakes?.kill();
    await proxy?.close();
    pg?.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

if (!postgresAvailable) {
  console.log(`bench scaleout skipped: ${postgresSkipReason}`);
  process.exit(0);
}
console.log(
  `scale-out: ${DEVICES} iPads × 1 app (${APP.adamId}), ${COUNTS.join(', ')} process(es) on one PostgreSQL behind a round-robin proxy`,
);
console.log(
  `  commit ${commit()}; node ${process.version}, ${availableParallelism()} cores, ${(totalmem() / 2 ** 30).toFixed(0)} GB, load ${loadavg()
    .map((l) => l.toFixed(2))
    .join(' ')}`,
);
const results: RunResult[] = [];
for (const n of COUNTS) {
  console.log(`\n  ${n} process${n === 1 ? '' : 'es'}:`);
  const r = await run(n);
  results.push(r);
  console.log(
    `    enrolled in ${r.enrolledS.toFixed(1)} s; ${r.settled ? 'settled' : 'NOT settled'}: ${JSON.stringify(r.counts)}`,
  );
  console.log(
    `    last success after ${r.lastSuccessS.toFixed(1)} s = ${r.jobsPerS.toFixed(1)} jobs/s; pushes ${r.pushes.total} (mean ${r.pushes.mean.toFixed(2)} per device, max ${r.pushes.max}, ${r.pushes.devicesOver1} devices over 1)`,
  );
  console.log(
    `    associate: ${r.associateCalls} calls, ${r.associatedSerials} serials, ${r.serialsInTwoCalls} serials in two calls; requests per process ${r.requestsPerProcess.join(' / ')}`,
  );
  console.log(
    `    CPU s: serve ${r.cpuS.serve.map((c) => c.toFixed(1)).join(' / ')}, postgres ${r.cpuS.postgres.toFixed(1)}, fleet ${r.cpuS.fleet.toFixed(1)}, fakes ${r.cpuS.fakes.toFixed(1)}`,
  );
}
console.log(
  '\n  | processes | last success | jobs/s | pushes/device (max) | associate calls | serials twice | serve CPU s (each) | postgres CPU s |',
);
console.log('  |---|---|---|---|---|---|---|---|');
for (const r of results)
  console.log(
    `  | ${r.processes} | ${r.lastSuccessS.toFixed(1)} s | ${r.jobsPerS.toFixed(1)} | ${r.pushes.mean.toFixed(2)} (${r.pushes.max}) | ${r.associateCalls} | ${r.serialsInTwoCalls} | ${r.cpuS.serve.map((c) => c.toFixed(1)).join(' / ')} | ${r.cpuS.postgres.toFixed(1)} |`,
  );
process.exit(results.every((r) => r.settled && r.serialsInTwoCalls === 0) ? 0 : 1);

// S3 and S6 (issue 15): the server alone at fleet size, the fleet in separate processes.
//
// `haishin fakes`, `haishin serve` (configured only by environment: SQLite in a temp dir, P-256
// identities) and as many `haishin fleet` processes as it takes (SCALE_FLEET_SIZE iPads each, at
// most 10,000) run as child processes; this process drives the admin REST API, reads the fakes'
// control API and reads every process's CPU time and memory from /proc.
//
//   S3  N iPads × 1 app, auto licences: from POST /distributions to the last job `success` —
//       serve's wall and CPU time, jobs/s, Apps and Books associate calls, pushes per device (the
//       fake APNs's per-token counts; iPads never pushed count 0), SQLite commits per job.
//       Goal at 100,000: ≤ 5 minutes, ≤ 110 associate calls, ≤ 1.1 pushes per device.
//   S6  serve's RSS once every iPad is enrolled and the work enrollment sets off (device facts) is
//       over, and again after the distribution, divided by the iPads. Goal: ≤ 2 KB per device.
//
//   node --import tsx bench/scale.bench.ts 10000        (npm run bench scale: 10,000)
//   node --import tsx bench/scale.bench.ts 100000       (30–60 minutes on 2 cores)
//
// "Commits" are counted inside serve by bench/support/sqlite-counts.mjs (node --import, wraps
// better-sqlite3's Statement; src/ is unchanged): transactions that wrote, committed, plus writes
// autocommitted one by one. SCALE_COMMITS=0 runs serve without it.
//
// Environment: SCALE_FLEET_SIZE (iPads per fleet process, 10000), SCALE_TIMEOUT (bound on the
// distribution, 60m), SCALE_SETUP_TIMEOUT (bound on enrollment, and again on the quiet after it;
// default 10 minutes or 40 ms per iPad, whichever is longer), SCALE_VERIFY_EVERY (serve's
// HAISHIN_VERIFY_EVERY, default serve's), SCALE_PERF=<file> (serve runs with --perf-basic-prof and
// `perf record -g` samples it during the distribution; its top functions are printed),
// SCALE_HEAP_SNAPSHOT=<dir> (a heap snapshot of serve at the end, --heapsnapshot-signal),
// SCALE_OUT=<file> (the figures as JSON), SCALE_KEEP=1 (the temp dir with the database is kept),
// SCALE_SERVE_REPO (another checkout's serve).
import { execFileSync, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import Database from 'better-sqlite3';
import { freePort } from '../src/cli/net.ts';
import { TERMINAL_STATUSES } from '../src/core/jobs.ts';
import { parseDuration } from '../src/core/duration.ts';
import { extraApps } from '../src/sim/scenario.ts';
import { adminApi, control, readEnvFile, REPO } from '../test/e2e/support.ts';
import type { FakesInfo, FakesStats } from '../test/e2e/support.ts';
import { commitOf, describeMachine, startServe, stopChild, usage } from './support/processes.ts';

const ADMIN = 'bench-admin-token-0123456789abcdef';
const DEVICES = Number(process.argv[2] ?? 10_000);
const FLEET_SIZE = Number(process.env.SCALE_FLEET_SIZE ?? 10_000);
const SERVE_REPO = resolve(process.env.SCALE_SERVE_REPO ?? REPO);
const TIMEOUT_MS = parseDuration(process.env.SCALE_TIMEOUT ?? '60m');
const SETUP_TIMEOUT_MS = process.env.SCALE_SETUP_TIMEOUT
  ? parseDuration(process.env.SCALE_SETUP_TIMEOUT)
  : Math.max(600_000, DEVICES * 40);
const PERF = process.env.SCALE_PERF ? resolve(process.env.SCALE_PERF) : null;
const HEAP_DIR = process.env.SCALE_HEAP_SNAPSHOT ? resolve(process.env.SCALE_HEAP_SNAPSHOT) : null;
const COUNT_COMMITS = process.env.SCALE_COMMITS !== '0';
const KEEP = process.env.SCALE_KEEP === '1';
if (!Number.isInteger(DEVICES) || DEVICES < 1 || DEVICES > 200_000)
  throw new Error('usage: scale.bench.ts <iPads, 1 to 200000>');
if (!Number.isInteger(FLEET_SIZE) || FLEET_SIZE < 1 || FLEET_SIZE > 10_000)
  throw new Error('SCALE_FLEET_SIZE: 1 to 10000 (what one `haishin fleet` takes)');

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
const load = () =>
  loadavg()
    .map((l) => l.toFixed(2))
    .join(' ');

/** Resident memory of a process by kind (MB): anonymous (heaps), file-backed (code, the mmap'd database). */
function memory(pid: number | undefined): { rss: number; anon: number; file: number } {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (name: string) => Number(new RegExp(`${name}:\\s+(\\d+)`).exec(status)?.[1] ?? NaN);
    return { rss: kb('VmRSS') / 1024, anon: kb('RssAnon') / 1024, file: kb('RssFile') / 1024 };
  } catch {
    return { rss: NaN, anon: NaN, file: NaN };
  }
}

/** `haishin fleet` with its output counted, not kept: 10,000 "enrolled" lines per process. */
class FleetProcess {
  readonly child: ChildProcess;
  enrolled = 0;
  failed = 0;
  ready: string | null = null;
  /** Sessions that failed (as the fleet reports them every 10 s), and the last one's error. */
  sessionErrors = 0;
  lastSessionError = '';
  stderr = '';
  readonly exited: Promise<number | null>;

  constructor(args: string[]) {
    this.child = spawn(process.execPath, [join(REPO, 'bin/haishin.js'), 'fleet', ...args], {
      cwd: REPO,
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/root', LANG: 'C.UTF-8' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let partial = '';
    this.child.stdout!.on('data', (c: Buffer) => {
      const lines = (partial + c.toString('utf8')).split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) {
        if (line.startsWith('enrolled ')) this.enrolled++;
        else if (line.startsWith('fleet ready: ')) this.ready = line;
      }
    });
    this.child.stderr!.on('data', (c: Buffer) => {
      const text = c.toString('utf8');
      this.failed += text.split('did not enroll').length - 1;
      for (const m of text.matchAll(
        /^haishin fleet: (\d+) of \d+ sessions failed so far \(last: (.*)\)$/gm,
      )) {
        this.sessionErrors = Number(m[1]);
        this.lastSessionError = m[2]!;
      }
      this.stderr = (this.stderr + text).slice(-4_000);
    });
    this.exited = new Promise((done) => this.child.once('exit', (code) => done(code)));
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }
}

/** Prometheus text: the value of one series without labels. */
function metric(text: string, name: string): number {
  const m = new RegExp(`^${name} (\\S+)$`, 'm').exec(text);
  return m ? Number(m[1]) : NaN;
}

type Counts = Record<string, number>;

interface SqlStats {
  runs: number;
  autocommits: number;
  ms: number;
}
/** What bench/support/sqlite-counts.mjs writes: its counters, and per SQL text. */
type SqliteCounts = Record<string, number> & { bySql?: Record<string, SqlStats> };

/** The counters' growth from `a` to `b`, and the statements that ran in between, most time first. */
function countsBetween(a: SqliteCounts, b: SqliteCounts) {
  const totals: Record<string, number> = {};
  for (const [k, v] of Object.entries(b)) if (typeof v === 'number') totals[k] = v - (a[k] ?? 0);
  const count = (k: string) => totals[k] ?? 0;
  const statements = Object.entries(b.bySql ?? {})
    .map(([sql, s]) => {
      const before = a.bySql?.[sql];
      return {
        sql,
        runs: s.runs - (before?.runs ?? 0),
        autocommits: s.autocommits - (before?.autocommits ?? 0),
        ms: s.ms - (before?.ms ?? 0),
      };
    })
    .filter((s) => s.runs > 0)
    .sort((x, y) => y.ms - x.ms);
  return {
    commits: count('commits'),
    transactionCommits: count('transactionCommits'),
    autocommitWrites: count('autocommitWrites'),
    emptyAutocommitWrites: count('emptyAutocommitWrites'),
    statementsRun: count('statements'),
    rowsChanged: count('rowsChanged'),
    statements,
  };
}

class Scale {
  readonly dir = mkdtempSync(join(tmpdir(), 'haishin-scale-'));
  readonly dbFile = join(this.dir, 'haishin.db');
  readonly countsFile = join(this.dir, 'sqlite-counts.json');
  fakesChild: ChildProcess | null = null;
  serve: ChildProcess | null = null;
  fleets: FleetProcess[] = [];
  info!: FakesInfo;
  baseUrl = '';
  api!: ReturnType<typeof adminApi>;
  root = '';
  tokenId = '';
  enrollUrl = '';
  stopping = false;

  async startFakes(): Promise<void> {
    const fakesDir = join(this.dir, 'fakes');
    const child = spawn(
      process.execPath,
      [
        join(REPO, 'bin/haishin.js'),
        'fakes',
        '--dir',
        fakesDir,
        '--apps',
        '1',
        '--licences',
        String(DEVICES + 50),
      ],
      {
        cwd: REPO,
        env: {
          PATH: process.env.PATH ?? '/usr/bin:/bin',
          HOME: process.env.HOME ?? '/root',
          LANG: 'C.UTF-8',
        },
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    this.fakesChild = child;
    await new Promise<void>((done, fail) => {
      let out = '';
      child.stdout!.on('data', (c: Buffer) => {
        out += c.toString('utf8');
        if (/^fakes ready$/m.test(out)) done();
      });
      child.once('exit', (code) => fail(new Error(`haishin fakes exited with ${code}`)));
    });
    this.info = JSON.parse(readFileSync(join(fakesDir, 'fakes.json'), 'utf8')) as FakesInfo;
  }

  async startServe(): Promise<void> {
    const port = await freePort();
    this.baseUrl = `http://127.0.0.1:${port}`;
    const env: Record<string, string> = {
      ...readEnvFile(join(this.dir, 'fakes', 'fakes.env')),
      HAISHIN_DB: `sqlite:${this.dbFile}`,
      HAISHIN_DATA_DIR: join(this.dir, 'data'),
      HAISHIN_LISTEN: `127.0.0.1:${port}`,
      HAISHIN_PUBLIC_URL: this.baseUrl,
      HAISHIN_ADMIN_TOKEN: ADMIN,
      HAISHIN_LOG_LEVEL: 'warn',
      // Simulated iPads: P-256 identities enroll fast (decision 0010).
      HAISHIN_DEVICE_KEY_TYPE: 'ec',
      HAISHIN_PKCS12_ITERATIONS: '1',
    };
    if (process.env.SCALE_VERIFY_EVERY) env.HAISHIN_VERIFY_EVERY = process.env.SCALE_VERIFY_EVERY;
    const nodeFlags: string[] = [];
    if (COUNT_COMMITS) {
      nodeFlags.push('--import', join(REPO, 'bench/support/sqlite-counts.mjs'));
      env.HAISHIN_BENCH_SQLITE_COUNTS = this.countsFile;
    }
    if (PERF) nodeFlags.push('--perf-basic-prof');
    if (HEAP_DIR) {
      mkdirSync(HEAP_DIR, { recursive: true });
      nodeFlags.push('--heapsnapshot-signal=SIGUSR2', `--diagnostic-dir=${HEAP_DIR}`);
    }
    const served = await startServe(SERVE_REPO, env, {
      nodeFlags,
      onExit: (code, stderr) => {
        if (!this.stopping) console.error(`haishin serve exited with ${code} during the run:\n${stderr}`);
      },
    });
    this.serve = served.child;
    this.enrollUrl = served.enrollUrl;
    this.root = new URL(served.enrollUrl).searchParams.get('group')!;
    this.api = adminApi(this.baseUrl, ADMIN);

    const token = await this.api<{ id: string }>('POST', '/vpp-tokens', {
      groupId: this.root,
      sToken: readFileSync(this.info.tokenFile, 'utf8'),
    });
    if (token.status !== 201)
      throw new Error(`POST /vpp-tokens: HTTP ${token.status} ${JSON.stringify(token.body)}`);
    this.tokenId = token.body.id;
    const auto = await this.api('PUT', `/groups/${this.root}/auto-assign-token`, { tokenId: this.tokenId });
    if (auto.status !== 200) throw new Error(`auto-assign token: HTTP ${auto.status}`);
  }

  /** Every fleet process at once (the server is the bottleneck of enrollment); bounded. */
  async enroll(): Promise<{ ms: number; enrolled: number; failed: number }> {
    const t0 = performance.now();
    const count = Math.ceil(DEVICES / FLEET_SIZE);
    for (let i = 0; i < count; i++) {
      const size = Math.min(FLEET_SIZE, DEVICES - i * FLEET_SIZE);
      this.fleets.push(
        new FleetProcess([
          '--fakes',
          join(this.dir, 'fakes'),
          '--enroll',
          this.enrollUrl,
          '--devices',
          String(size),
          '--serial-prefix',
          `SC${String(i).padStart(3, '0')}`,
        ]),
      );
    }
    let lastReport = t0;
    let cpuAt = { t: t0, cpu: usage(this.serve?.pid).cpuS };
    while (this.fleets.some((f) => f.ready === null)) {
      const dead = this.fleets.find((f) => !f.running && f.ready === null);
      if (dead) throw new Error(`a fleet process exited before it was ready:\n${dead.stderr}`);
      if (performance.now() - t0 > SETUP_TIMEOUT_MS)
        throw new Error(`enrollment not over within ${seconds(SETUP_TIMEOUT_MS)}`);
      if (performance.now() - lastReport >= 60_000) {
        lastReport = performance.now();
        const cpu = usage(this.serve?.pid).cpuS;
        const enrolled = this.fleets.reduce((n, f) => n + f.enrolled, 0);
        console.log(
          `  [${seconds(lastReport - t0)}] enrolled ${enrolled}/${DEVICES} (${((enrolled * 1000) / (lastReport - t0)).toFixed(0)}/s), serve ${(((cpu - cpuAt.cpu) * 1000) / (lastReport - cpuAt.t)).toFixed(2)} cores, RSS ${memory(this.serve?.pid).rss.toFixed(0)} MB, load ${load()}`,
        );
        cpuAt = { t: lastReport, cpu };
      }
      await sleep(1_000);
    }
    return {
      ms: performance.now() - t0,
      enrolled: this.fleets.reduce((n, f) => n + f.enrolled, 0),
      failed: this.fleets.reduce((n, f) => n + f.failed, 0),
    };
  }

  /**
   * Waits (bounded) until the server is idle: no push for `windowMs` and serve's CPU under 10 % of
   * a core over that window. Returns the time it took.
   */
  async quiet(windowMs = 15_000, timeoutMs = SETUP_TIMEOUT_MS): Promise<number> {
    const t0 = performance.now();
    const samples: { t: number; pushes: number; cpu: number }[] = [];
    let lastReport = t0;
    for (;;) {
      const t = performance.now();
      const pushes = (await this.stats()).apns.requests;
      samples.push({ t, pushes, cpu: usage(this.serve?.pid).cpuS });
      const first = samples.find((s) => t - s.t <= windowMs)!;
      const span = t - first.t;
      if (span >= windowMs - 1_000 && first.pushes === pushes) {
        const cores = ((samples.at(-1)!.cpu - first.cpu) * 1000) / span;
        if (cores < 0.1) return t - t0;
      }
      while (samples.length > 0 && t - samples[0]!.t > windowMs + 5_000) samples.shift();
      if (t - t0 > timeoutMs) throw new Error(`serve not idle within ${seconds(timeoutMs)}`);
      if (t - lastReport >= 60_000) {
        lastReport = t;
        console.log(
          `  [quiet? ${seconds(t - t0)}] pushes ${pushes}, serve RSS ${memory(this.serve?.pid).rss.toFixed(0)} MB, load ${load()}`,
        );
      }
      await sleep(1_000);
    }
  }

  /** The fakes' counters; asked again once when the request fails (a keep-alive socket closed under it). */
  async stats(): Promise<FakesStats> {
    try {
      return await control(`${this.info.control}/stats`);
    } catch {
      await sleep(500);
      return control(`${this.info.control}/stats`);
    }
  }

  async pushesByToken(): Promise<Record<string, number>> {
    return (await control<{ tokens: Record<string, number> }>(`${this.info.control}/pushes/by-token`)).tokens;
  }

  sqliteCounts(): SqliteCounts | null {
    try {
      return JSON.parse(readFileSync(this.countsFile, 'utf8')) as SqliteCounts;
    } catch {
      return null;
    }
  }

  async metrics(): Promise<{ heapUsedMb: number; heapTotalMb: number; externalMb: number }> {
    const res = await fetch(`${this.baseUrl}/metrics`);
    const text = await res.text();
    return {
      heapUsedMb: metric(text, 'nodejs_heap_size_used_bytes') / 2 ** 20,
      heapTotalMb: metric(text, 'nodejs_heap_size_total_bytes') / 2 ** 20,
      externalMb: metric(text, 'nodejs_external_memory_bytes') / 2 ** 20,
    };
  }

  /** S3: one app to every iPad, to the last terminal job (bounded). */
  async distribute() {
    const adamId = extraApps(1)[0]!.adamId;
    const pushes0 = await this.pushesByToken();
    const stats0 = await this.stats();
    const commits0 = this.sqliteCounts();
    const sessionErrors0 = this.fleets.reduce((n, f) => n + f.sessionErrors, 0);
    const perf = PERF
      ? spawn('perf', ['record', '-F', '99', '-g', '-p', String(this.serve!.pid), '-o', PERF], {
          stdio: 'ignore',
        })
      : null;
    if (perf) await sleep(1_000);
    const cpu0 = this.cpu();
    const wall0 = Date.now();
    const t0 = performance.now();
    const created = await this.api<{ id: string; jobCount: number }>('POST', '/distributions', {
      kind: 'install',
      tokenId: this.tokenId,
      adamIds: [adamId],
      targets: { groupIds: [this.root] },
      licenseMode: 'auto',
    });
    const postMs = performance.now() - t0;
    if (created.status !== 201 && created.status !== 200)
      throw new Error(`POST /distributions: HTTP ${created.status} ${JSON.stringify(created.body)}`);
    console.log(`  POST /distributions: ${created.body.jobCount} jobs, answered in ${seconds(postMs)}`);
    const terminal: ReadonlySet<string> = TERMINAL_STATUSES;
    let counts: Counts = {};
    let settled = false;
    let lastProgress = t0;
    /** serve's CPU time when the number of successes last grew: a run that never settles idles after it. */
    let lastSuccess = { n: 0, cpu: cpu0.serve };
    const poll = DEVICES > 20_000 ? 3_000 : 1_000;
    while (performance.now() - t0 < TIMEOUT_MS) {
      const d = await this.api<{ counts: Counts }>('GET', `/distributions/${created.body.id}`);
      counts = d.body.counts;
      if ((counts.success ?? 0) !== lastSuccess.n) {
        lastSuccess = { n: counts.success ?? 0, cpu: usage(this.serve?.pid).cpuS };
      }
      if (Object.keys(counts).every((s) => terminal.has(s))) {
        settled = true;
        break;
      }
      if (performance.now() - lastProgress >= 30_000) {
        lastProgress = performance.now();
        const c = this.cpu();
        console.log(
          `  [${seconds(lastProgress - t0)}] ${JSON.stringify(counts)}  serve CPU ${(c.serve - cpu0.serve).toFixed(0)} s, RSS ${memory(this.serve?.pid).rss.toFixed(0)} MB, load ${load()}`,
        );
      }
      await sleep(poll);
    }
    const ms = performance.now() - t0;
    const cpu1 = this.cpu();
    if (perf) {
      const stopped = new Promise((done) => perf.once('exit', done));
      perf.kill('SIGINT');
      await stopped;
    }
    await sleep(1_200);
    const commits1 = this.sqliteCounts();
    const pushes1 = await this.pushesByToken();
    const stats1 = await this.stats();
    const perDevice = Object.entries(pushes1).map(([t, n]) => n - (pushes0[t] ?? 0));
    while (perDevice.length < DEVICES) perDevice.push(0);
    perDevice.sort((a, b) => a - b);
    const calls = (s: FakesStats, endpoint: string) => s.vpp.calls[endpoint] ?? 0;
    const serials = (s: FakesStats) => s.vpp.associate.reduce((n, r) => n + r.serials.length, 0);
    const sqlite = commits0 && commits1 ? countsBetween(commits0, commits1) : null;
    return {
      id: created.body.id,
      jobCount: created.body.jobCount,
      wall0,
      postMs,
      settled,
      ms,
      counts,
      cpuS: {
        serve: cpu1.serve - cpu0.serve,
        serveToLastSuccess: lastSuccess.cpu - cpu0.serve,
        fleets: cpu1.fleets - cpu0.fleets,
        fakes: cpu1.fakes - cpu0.fakes,
      },
      pushes: {
        total: stats1.apns.requests - stats0.apns.requests,
        max: perDevice.at(-1) ?? 0,
        median: perDevice[Math.floor(perDevice.length / 2)] ?? 0,
        mean: perDevice.reduce((a, b) => a + b, 0) / Math.max(1, perDevice.length),
        never: perDevice.filter((n) => n === 0).length,
        over1: perDevice.filter((n) => n > 1).length,
      },
      associateCalls: calls(stats1, 'POST assets/associate') - calls(stats0, 'POST assets/associate'),
      associatedSerials: serials(stats1) - serials(stats0),
      vppCalls:
        Object.values(stats1.vpp.calls).reduce((a, b) => a + b, 0) -
        Object.values(stats0.vpp.calls).reduce((a, b) => a + b, 0),
      sqlite,
      sessionErrors: this.fleets.reduce((n, f) => n + f.sessionErrors, 0) - sessionErrors0,
      lastSessionError: this.fleets.map((f) => f.lastSessionError).find((e) => e) ?? '',
    };
  }

  cpu(): { serve: number; fleets: number; fakes: number } {
    return {
      serve: usage(this.serve?.pid).cpuS,
      fleets: this.fleets.reduce((n, f) => n + usage(f.child.pid).cpuS, 0),
      fakes: usage(this.fakesChild?.pid).cpuS,
    };
  }

  /** What the database says of the distribution: its jobs' times and history, the tables' sizes. */
  database(distributionId: string) {
    const db = new Database(this.dbFile, { readonly: true });
    try {
      const one = <T>(sql: string, ...args: unknown[]) => db.prepare(sql).get(...args) as T;
      const d = one<{ created_at: string }>(
        'select created_at from distributions where id = ?',
        distributionId,
      );
      const times = one<{ first: string; last: string; n: number }>(
        `select min(updated_at) as first, max(updated_at) as last, count(*) as n from jobs
         where distribution_id = ? and status = 'success'`,
        distributionId,
      );
      const history = one<{ n: number }>(
        `select count(*) as n from job_history where job_id in (select id from jobs where distribution_id = ?)`,
        distributionId,
      );
      // Time each job spent in each status on its way (consecutive history rows), in seconds.
      const spans = db
        .prepare(
          `select a.to_status as status, (julianday(b.at) - julianday(a.at)) * 86400 as s
           from job_history a join job_history b on b.job_id = a.job_id and b.seq = a.seq + 1
           where a.job_id in (select id from jobs where distribution_id = ?)`,
        )
        .all(distributionId) as { status: string; s: number }[];
      const byStatus = new Map<string, number[]>();
      for (const { status, s } of spans) {
        const values = byStatus.get(status) ?? [];
        values.push(s);
        byStatus.set(status, values);
      }
      const inStatus = Object.fromEntries(
        [...byStatus].map(([status, values]) => {
          values.sort((x, y) => x - y);
          const at = (p: number) => values[Math.min(values.length - 1, Math.floor(p * values.length))]!;
          return [
            status,
            {
              jobs: values.length,
              meanS: values.reduce((x, y) => x + y, 0) / values.length,
              p50S: at(0.5),
              p90S: at(0.9),
              maxS: values.at(-1)!,
            },
          ];
        }),
      );
      const rows = Object.fromEntries(
        ['devices', 'jobs', 'commands', 'command_queue', 'command_results', 'mdm_messages'].map((t) => [
          t,
          one<{ n: number }>(`select count(*) as n from ${t}`).n,
        ]),
      );
      const size = (f: string) => (existsSync(f) ? statSync(f).size / 2 ** 20 : 0);
      return {
        createdAt: d.created_at,
        firstSuccess: times.first,
        lastSuccess: times.last,
        success: times.n,
        historyRows: history.n,
        inStatus,
        rows,
        dbMb: size(this.dbFile),
        walMb: size(`${this.dbFile}-wal`),
      };
    } finally {
      db.close();
    }
  }

  async heapSnapshot(): Promise<string | null> {
    if (!HEAP_DIR || !this.serve?.pid) return null;
    const before = new Set(readdirSync(HEAP_DIR));
    this.serve.kill('SIGUSR2');
    for (let i = 0; i < 600; i++) {
      await sleep(1_000);
      const made = readdirSync(HEAP_DIR).find((f) => !before.has(f) && f.endsWith('.heapsnapshot'));
      // Written when its size stops changing.
      if (made) {
        const file = join(HEAP_DIR, made);
        const a = statSync(file).size;
        await sleep(2_000);
        if (statSync(file).size === a && a > 0) return file;
      }
    }
    return null;
  }

  async stop(): Promise<void> {
    this.stopping = true;
    for (const f of this.fleets) if (f.running) f.child.kill('SIGTERM');
    await Promise.race([Promise.all(this.fleets.map((f) => f.exited)), sleep(15_000)]);
    for (const f of this.fleets) await stopChild(f.child, 1_000);
    await stopChild(this.serve);
    await stopChild(this.fakesChild);
    if (KEEP) console.log(`kept for a look: ${this.dir} (the database: ${this.dbFile})`);
    else rmSync(this.dir, { recursive: true, force: true });
  }
}

/** `perf report` of the samples: the top functions by self time, and by shared object. */
function perfSummary(file: string): string {
  const report = (...args: string[]) =>
    execFileSync('perf', ['report', '-i', file, '--stdio', '--no-children', ...args], {
      encoding: 'utf8',
      maxBuffer: 256 * 2 ** 20,
      stdio: ['ignore', 'pipe', 'ignore'],
    });
  const top = (text: string, n: number) =>
    text
      .split('\n')
      .filter((l) => /^\s+\d+\.\d+%/.test(l))
      .slice(0, n)
      .map((l) => `    ${l.replace(/(\s+-)+\s*$/, '').trim()}`)
      .join('\n');
  try {
    return [
      '  by function (self):',
      top(report('--sort', 'symbol', '-g', 'none', '--percent-limit', '0.3'), 40),
      '  by thread:',
      top(report('--sort', 'pid', '-g', 'none'), 10),
      '  by shared object:',
      top(report('--sort', 'dso', '-g', 'none'), 12),
    ].join('\n');
  } catch (err) {
    return `  perf report failed: ${(err as Error).message}`;
  }
}

const mb = (n: number) => `${n.toFixed(0)} MB`;
const kbPerDevice = (megabytes: number) => `${((megabytes * 1024) / DEVICES).toFixed(2)} KB`;

console.log(
  `S3/S6 — ${DEVICES} iPads × 1 app, serve from ${SERVE_REPO === REPO ? 'this checkout' : SERVE_REPO} (commit ${commitOf(SERVE_REPO)}), fakes and fleet at ${commitOf(REPO)}; ${Math.ceil(DEVICES / FLEET_SIZE)} fleet process(es) of ≤ ${FLEET_SIZE}; ${describeMachine()}`,
);
const scale = new Scale();
let ok = false;
try {
  const tStart = performance.now();
  await scale.startFakes();
  await scale.startServe();
  await sleep(2_000);
  const empty = memory(scale.serve?.pid);
  const emptyHeap = await scale.metrics();
  console.log(
    `serve up, token registered: RSS ${mb(empty.rss)} (anon ${mb(empty.anon)}, file ${mb(empty.file)}), heap used ${mb(emptyHeap.heapUsedMb)}`,
  );

  const cpuBeforeEnroll = usage(scale.serve?.pid).cpuS;
  const enrolled = await scale.enroll();
  const cpuEnroll = usage(scale.serve?.pid).cpuS - cpuBeforeEnroll;
  console.log(
    `enrolled ${enrolled.enrolled}/${DEVICES} in ${seconds(enrolled.ms)} (${((enrolled.enrolled * 1000) / enrolled.ms).toFixed(0)}/s), ${enrolled.failed} failed, serve CPU ${cpuEnroll.toFixed(0)} s, load ${load()}`,
  );
  // Not idle in time: measured anyway, and said so.
  const quietMs = await scale.quiet().catch((err: Error) => {
    console.log(`  ${err.message}: measuring anyway`);
    return NaN;
  });
  const cpuSetup = usage(scale.serve?.pid).cpuS - cpuBeforeEnroll;
  const idle = memory(scale.serve?.pid);
  const idleHeap = await scale.metrics();
  const fleetRss = scale.fleets.reduce((n, f) => n + memory(f.child.pid).rss, 0);
  console.log(
    `idle ${seconds(quietMs)} later (device facts done): serve CPU since enrollment began ${cpuSetup.toFixed(0)} s, fleet sessions failed ${scale.fleets.reduce((n, f) => n + f.sessionErrors, 0)}`,
  );
  console.log(
    `S6 enrolled, idle: serve RSS ${mb(idle.rss)} = ${kbPerDevice(idle.rss)} per iPad (anon ${mb(idle.anon)}, file ${mb(idle.file)}; above the empty server ${kbPerDevice(idle.rss - empty.rss)} per iPad), heap used ${mb(idleHeap.heapUsedMb)} of ${mb(idleHeap.heapTotalMb)}, external ${mb(idleHeap.externalMb)}; the fleets hold ${mb(fleetRss)}`,
  );

  const r = await scale.distribute();
  const db = scale.database(r.id);
  const lastMs = Date.parse(db.lastSuccess) - r.wall0;
  const serverMs = Number.isFinite(lastMs) ? lastMs : r.ms;
  await scale
    .quiet(15_000, 600_000)
    .catch((err: Error) => console.log(`  after the distribution: ${err.message}`));
  const after = memory(scale.serve?.pid);
  const afterHeap = await scale.metrics();
  console.log(
    [
      `S3 ${DEVICES} × 1 app: ${r.settled ? '' : 'NOT SETTLED after '}${seconds(r.ms)} polled; POST to last success ${seconds(serverMs)} (first success at ${seconds(Date.parse(db.firstSuccess) - r.wall0)}; POST answered in ${seconds(r.postMs)})`,
      `${r.jobCount} jobs ${JSON.stringify(r.counts)}, ${((r.jobCount * 1000) / serverMs).toFixed(0)} jobs/s`,
      `serve CPU to the last success ${r.cpuS.serveToLastSuccess.toFixed(1)} s (${((r.cpuS.serveToLastSuccess * 1e3) / (r.counts.success ?? 1)).toFixed(2)} ms per success, ${((r.cpuS.serveToLastSuccess * 1000) / serverMs).toFixed(2)} cores); while polled: serve ${r.cpuS.serve.toFixed(1)} s, fleets ${r.cpuS.fleets.toFixed(1)} s, fakes ${r.cpuS.fakes.toFixed(1)} s`,
      `pushes ${r.pushes.total}: per device mean ${r.pushes.mean.toFixed(3)}, median ${r.pushes.median}, max ${r.pushes.max}, ${r.pushes.over1} iPads > 1, ${r.pushes.never} never pushed`,
      `associate calls ${r.associateCalls} (${r.associatedSerials} serials), Apps and Books calls ${r.vppCalls}`,
      `fleet sessions that failed: ${r.sessionErrors}${r.sessionErrors > 0 ? ` (last: ${r.lastSessionError})` : ''}`,
      r.sqlite
        ? `SQLite: ${r.sqlite.commits} commits = ${(r.sqlite.commits / r.jobCount).toFixed(2)} per job (${r.sqlite.transactionCommits} transactions, ${r.sqlite.autocommitWrites} autocommitted writes; ${r.sqlite.emptyAutocommitWrites} writes that changed nothing), ${(r.sqlite.statementsRun / r.jobCount).toFixed(1)} statements per job, ${(r.sqlite.rowsChanged / r.jobCount).toFixed(1)} rows written per job`
        : 'SQLite commits: not counted',
      ...(r.sqlite?.statements.length
        ? [
            `time in SQLite ${(r.sqlite.statements.reduce((n, x) => n + x.ms, 0) / 1000).toFixed(1)} s; the statements, most time first (runs per job, autocommits per job, ms):`,
            ...r.sqlite.statements
              .slice(0, 15)
              .map(
                (x) =>
                  `  ${(x.runs / r.jobCount).toFixed(2).padStart(6)} ${(x.autocommits / r.jobCount).toFixed(2).padStart(5)} ${x.ms.toFixed(0).padStart(7)}  ${x.sql.slice(0, 150)}`,
              ),
            'the autocommitted writes (per job):',
            ...r.sqlite.statements
              .filter((x) => x.autocommits > 0)
              .sort((x, y) => y.autocommits - x.autocommits)
              .slice(0, 8)
              .map((x) => `  ${(x.autocommits / r.jobCount).toFixed(2).padStart(6)}  ${x.sql.slice(0, 150)}`),
          ]
        : []),
      `time in each status (s): ${Object.entries(db.inStatus)
        .map(
          ([status, t]) =>
            `${status} mean ${t.meanS.toFixed(1)}, p50 ${t.p50S.toFixed(1)}, p90 ${t.p90S.toFixed(1)}, max ${t.maxS.toFixed(1)}`,
        )
        .join('; ')}`,
      `job_history ${db.historyRows} rows (${(db.historyRows / r.jobCount).toFixed(1)} per job); rows ${JSON.stringify(db.rows)}; database ${mb(db.dbMb)}, WAL ${mb(db.walMb)}`,
    ].join('\n    '),
  );
  console.log(
    `S6 after the distribution, idle: serve RSS ${mb(after.rss)} = ${kbPerDevice(after.rss)} per iPad (anon ${mb(after.anon)}, file ${mb(after.file)}), heap used ${mb(afterHeap.heapUsedMb)} of ${mb(afterHeap.heapTotalMb)}, external ${mb(afterHeap.externalMb)}`,
  );
  if (PERF)
    console.log(`where serve's CPU went during the distribution (perf, ${PERF}):\n${perfSummary(PERF)}`);
  const snapshot = await scale.heapSnapshot();
  if (snapshot) console.log(`heap snapshot of serve: ${snapshot}`);

  const minutes = serverMs / 60_000;
  const goals = {
    time: r.settled && minutes <= 5,
    associate: r.associateCalls <= 110,
    pushes: r.pushes.mean <= 1.1,
    rss: (Math.max(idle.rss, after.rss) * 1024) / DEVICES <= 2,
  };
  ok = r.settled && r.counts.success === r.jobCount;
  console.log(
    `\ngoals (stated for 100,000): ≤ 5 min ${goals.time ? 'met' : 'not met'} (${minutes.toFixed(2)} min), ≤ 110 associate calls ${goals.associate ? 'met' : 'not met'} (${r.associateCalls}), ≤ 1.1 pushes per device ${goals.pushes ? 'met' : 'not met'} (${r.pushes.mean.toFixed(3)}), ≤ 2 KB RSS per device ${goals.rss ? 'met' : 'not met'} (${kbPerDevice(Math.max(idle.rss, after.rss))}); all success: ${ok}; whole run ${seconds(performance.now() - tStart)}, load ${load()}`,
  );
  if (process.env.SCALE_OUT)
    writeFileSync(
      process.env.SCALE_OUT,
      JSON.stringify(
        {
          devices: DEVICES,
          commit: commitOf(SERVE_REPO),
          machine: describeMachine(),
          enrollment: { ...enrolled, serveCpuS: cpuEnroll, quietMs, serveCpuSetupS: cpuSetup },
          memory: { empty, emptyHeap, idle, idleHeap, after, afterHeap, fleetRss },
          s3: { ...r, serverMs, database: db },
          goals,
        },
        null,
        2,
      ),
    );
} finally {
  await scale.stop();
}
process.exit(ok ? 0 : 1);

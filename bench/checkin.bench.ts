// S1 (issue 15): signed empty-queue Idle check-ins against the server alone.
//
// `haishin fakes` and `haishin serve` run as child processes configured by environment, exactly as
// an administrator starts them (SQLite in a temp dir). N simulated iPads enroll over HTTP (real
// identities, real CMS), answer whatever is queued so every queue is empty, and each signs one
// `Idle` once. A load generator in a process of its own (bench/support/idle-load.ts) replays those
// pre-signed messages over C keep-alive connections for D seconds; a bare Fastify process
// (bench/support/bare-fastify.ts) reading the same bodies is the baseline, rounds interleaved so
// both see the same machine. Prints requests/s, p50, p99 and the ratio.
//
//   npm run bench checkin                       (or node --import tsx bench/checkin.bench.ts)
// Besides requests/s and latency it reads the server's CPU time from /proc (all threads, and the
// main thread alone) per request: on a machine shared with other work that figure moves far less
// than the rates do.
//
// Environment: S1_DEVICES (200), S1_CONNECTIONS (64), S1_SECONDS (10), S1_ROUNDS (3),
// S1_DB (a postgres:// URL instead of SQLite), S1_PROFILE=<dir> (serve runs with --cpu-prof into
// <dir>), S1_LOG_LEVEL (serve's HAISHIN_LOG_LEVEL, default: serve's default, info),
// S1_PERF=<file> (serve runs with --perf-basic-prof and `perf record -g` samples it, every thread,
// during the first measured round: CPU time, where --cpu-prof samples wall time),
// S1_BEFORE=<another checkout> (also runs that checkout's serve, with its own database and
// devices, in the same interleaved rounds: before/after figures from one run).
import { execFileSync, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { freePort } from '../src/cli/net.ts';
import { buildPlist } from '../src/mdm/plist.ts';
import { SimDevice } from '../src/sim/device/device.ts';
import { mapLimit, SimFleet } from '../src/sim/fleet.ts';
import { REPO, startFakesProcess } from '../test/e2e/support.ts';
import type { HaishinProcess } from '../test/e2e/support.ts';
import type { LoadResult } from './support/idle-load.ts';

const DEVICES = Number(process.env.S1_DEVICES ?? 200);
const CONNECTIONS = Number(process.env.S1_CONNECTIONS ?? 64);
const SECONDS = Number(process.env.S1_SECONDS ?? 10);
const ROUNDS = Number(process.env.S1_ROUNDS ?? 3);
const ADMIN = 'bench-admin-token-0123456789abcdef';

const dir = mkdtempSync(join(tmpdir(), 'haishin-s1-'));
const children: HaishinProcess[] = [];
const others: ChildProcess[] = [];

/** `node [flags] bin/haishin.js serve` with only `env` (and PATH, HOME, LANG); resolves on its enrollment link. */
async function startServe(
  repo: string,
  env: Record<string, string>,
  nodeFlags: string[],
): Promise<{ child: ChildProcess; enrollUrl: string }> {
  const child = spawn(process.execPath, [...nodeFlags, join(repo, 'bin/haishin.js'), 'serve'], {
    cwd: repo,
    env: {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      HOME: process.env.HOME ?? '/root',
      LANG: 'C.UTF-8',
      // Benchmarks measure the server, not enrollment: the lab setting keeps the bare group
      // link the server prints (decision 0022); older commits ignore it.
      HAISHIN_ENROLL_OPEN_GROUPS: 'true',
      ...env,
    },
    // Its log goes nowhere, as it would to a quiet journal; it is still formatted and written.
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  others.unshift(child);
  return new Promise((resolve, reject) => {
    let out = '';
    let found = false;
    const onData = (c: Buffer) => {
      if (found) return;
      out += c.toString('utf8');
      const m = /^enrollment link for the root group: (\S+)$/m.exec(out);
      if (m) {
        found = true;
        out = '';
        resolve({ child, enrollUrl: m[1]! });
      }
      if (out.length > 1_000_000) out = out.slice(-10_000);
    };
    child.stdout!.on('data', onData);
    child.once('exit', (code) => reject(new Error(`haishin serve exited with ${code}`)));
  });
}

function describeMachine(): string {
  let commit = 'unknown';
  try {
    commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: REPO, encoding: 'utf8' }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--', 'src'], {
      cwd: REPO,
      encoding: 'utf8',
    });
    if (dirty.trim()) commit += ' + uncommitted changes in src/';
  } catch {
    // not a checkout
  }
  return `commit ${commit}, node ${process.version}, ${availableParallelism()} cores, load ${loadavg()
    .map((l) => l.toFixed(2))
    .join(' ')}`;
}

const CLOCK_TICKS = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();

/** CPU time (user + system, µs) of a process, or of one of its threads. */
function cpuMicros(pid: number, tid?: number): number {
  try {
    const stat = readFileSync(tid ? `/proc/${pid}/task/${tid}/stat` : `/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS) * 1e6;
  } catch {
    return NaN;
  }
}

interface Measured extends LoadResult {
  /** Server CPU per answered request, every thread of the process (µs). */
  cpuUs: number;
  /** The same, the main (event-loop) thread only (µs). */
  mainUs: number;
}

/** Runs the load generator once against `url` and returns what it measured, with `pid`'s CPU time. */
async function load(url: string, messagesFile: string, seconds: number, pid: number): Promise<Measured> {
  const [cpu0, main0] = [cpuMicros(pid), cpuMicros(pid, pid)];
  const result = await runLoad(url, messagesFile, seconds);
  const [cpu1, main1] = [cpuMicros(pid), cpuMicros(pid, pid)];
  return { ...result, cpuUs: (cpu1 - cpu0) / result.requests, mainUs: (main1 - main0) / result.requests };
}

function runLoad(url: string, messagesFile: string, seconds: number): Promise<LoadResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        join(REPO, 'bench/support/idle-load.ts'),
        url,
        messagesFile,
        String(CONNECTIONS),
        String(seconds),
      ],
      { cwd: REPO, stdio: ['ignore', 'pipe', 'inherit'] },
    );
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString('utf8')));
    child.once('exit', (code) => {
      if (code !== 0) return reject(new Error(`load generator exited with ${code}`));
      resolve(JSON.parse(out.trim().split('\n').pop()!) as LoadResult);
    });
  });
}

async function startBaseline(port: number): Promise<ChildProcess> {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', join(REPO, 'bench/support/bare-fastify.ts'), String(port)],
    {
      cwd: REPO,
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  others.push(child);
  await new Promise<void>((resolve, reject) => {
    child.stdout.on('data', (c: Buffer) => {
      if (c.toString('utf8').includes('listening')) resolve();
    });
    child.once('exit', (code) => reject(new Error(`bare fastify exited with ${code}`)));
  });
  return child;
}

function rssMb(pid: number | undefined): number {
  if (pid === undefined) return NaN;
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1]) / 1024;
  } catch {
    return NaN;
  }
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
const fmt = (r: Measured) =>
  [
    `${r.rps.toFixed(0).padStart(6)} req/s`,
    `p50 ${r.p50Ms.toFixed(1).padStart(5)} ms`,
    `p99 ${r.p99Ms.toFixed(1).padStart(5)} ms`,
    `max ${r.maxMs.toFixed(0).padStart(4)} ms`,
    `CPU ${r.cpuUs.toFixed(0).padStart(4)} µs/req (main thread ${r.mainUs.toFixed(0).padStart(4)})`,
    `[${r.requests} answers, ${r.errors} errors, ${r.non200} non-200, ${r.withBody} with a command]`,
  ].join('  ');

/**
 * `haishin serve` of the checkout `repo` on its own database, and DEVICES simulated iPads enrolled
 * to it with empty queues; returns its Idle URL and the file of its pre-signed Idle messages.
 */
async function startHaishin(
  label: string,
  repo: string,
  fakesEnv: Record<string, string>,
  nodeFlags: string[],
): Promise<{ label: string; url: string; child: ChildProcess; messagesFile: string; dbFile: string | null }> {
  const port = await freePort();
  const baseUrl = `http://127.0.0.1:${port}`;
  const dbFile = process.env.S1_DB ? null : join(dir, `${label}.db`);
  const env: Record<string, string> = {
    ...fakesEnv,
    HAISHIN_DB: process.env.S1_DB ?? `sqlite:${dbFile}`,
    HAISHIN_DATA_DIR: join(dir, `${label}-data`),
    HAISHIN_ADMIN_TOKEN: ADMIN,
    HAISHIN_LISTEN: `127.0.0.1:${port}`,
    HAISHIN_PUBLIC_URL: baseUrl,
  };
  if (process.env.S1_LOG_LEVEL) env.HAISHIN_LOG_LEVEL = process.env.S1_LOG_LEVEL;
  const serve = await startServe(repo, env, nodeFlags);

  const t0 = performance.now();
  const fleet = new SimFleet();
  for (let i = 0; i < DEVICES; i++)
    fleet.add(new SimDevice({ spec: { serialNumber: `S1${String(i).padStart(8, '0')}` } }));
  await fleet.enrollAll(() => serve.enrollUrl, 8);
  // Whatever the server queued on enrollment is answered now: the load is empty-queue Idles.
  await mapLimit(fleet.devices, 16, (d) => d.connect());
  console.log(
    `${label}: enrolled ${DEVICES} devices in ${((performance.now() - t0) / 1000).toFixed(1)} s (RSA-2048 identities)`,
  );

  const messagesFile = join(dir, `${label}-idle.json`);
  writeFileSync(
    messagesFile,
    JSON.stringify(
      fleet.devices.map((d) => {
        const body = Buffer.from(buildPlist({ Status: 'Idle', UDID: d.udid }), 'utf8');
        return { body: body.toString('base64'), signature: d.sign(body) };
      }),
    ),
  );
  return { label, url: `${baseUrl}/mdm/connect`, child: serve.child, messagesFile, dbFile };
}

try {
  console.log(
    `S1 signed Idle check-ins: ${DEVICES} devices, ${CONNECTIONS} connections, ${ROUNDS} × ${SECONDS} s`,
  );
  console.log(describeMachine());

  const fakes = await startFakesProcess(join(dir, 'fakes'));
  children.push(fakes.proc);
  const nodeFlags: string[] = [];
  if (process.env.S1_PROFILE) {
    mkdirSync(process.env.S1_PROFILE, { recursive: true });
    nodeFlags.push('--cpu-prof', `--cpu-prof-dir=${process.env.S1_PROFILE}`);
  }
  if (process.env.S1_PERF) nodeFlags.push('--perf-basic-prof');
  if (process.env.S1_DB && process.env.S1_BEFORE)
    throw new Error('S1_BEFORE runs a second server: it needs a database of its own (leave S1_DB unset)');
  const servers = [await startHaishin('haishin', REPO, fakes.info.env, nodeFlags)];
  if (process.env.S1_BEFORE)
    servers.push(await startHaishin('before', process.env.S1_BEFORE, fakes.info.env, nodeFlags));

  const basePort = await freePort();
  const bareChild = await startBaseline(basePort);
  const bareUrl = `http://127.0.0.1:${basePort}/mdm/connect`;
  // Any server's messages do for the baseline: it reads them and answers, nothing else.
  const bareMessages = servers[0]!.messagesFile;
  // Warm-up: JIT, statement caches, the signer-certificate cache.
  await runLoad(bareUrl, bareMessages, 3);
  for (const server of servers) await runLoad(server.url, server.messagesFile, 3);

  const results = new Map<string, Measured[]>([
    ['bare Fastify', []],
    ...servers.map((s) => [s.label, []] as [string, Measured[]]),
  ]);
  for (let round = 1; round <= ROUNDS; round++) {
    const bare = await load(bareUrl, bareMessages, SECONDS, bareChild.pid!);
    results.get('bare Fastify')!.push(bare);
    console.log(`round ${round}  ${'bare Fastify'.padEnd(12)}  ${fmt(bare)}`);
    for (const server of servers) {
      const perf =
        process.env.S1_PERF && round === 1 && server.label === 'haishin'
          ? spawn(
              'perf',
              ['record', '-F', '499', '-g', '-p', String(server.child.pid), '-o', process.env.S1_PERF],
              { stdio: 'ignore' },
            )
          : null;
      const r = await load(server.url, server.messagesFile, SECONDS, server.child.pid!);
      if (perf) {
        const stopped = new Promise((done) => perf.once('exit', done));
        perf.kill('SIGINT');
        await stopped;
      }
      results.get(server.label)!.push(r);
      console.log(
        `round ${round}  ${server.label.padEnd(12)}  ${fmt(r)}  ratio ${(r.rps / bare.rps).toFixed(3)}`,
      );
    }
  }

  console.log('');
  console.log('medians of the rounds (ratio: of the bare-Fastify round run just before)');
  const bares = results.get('bare Fastify')!;
  for (const [label, rs] of results) {
    const ratios = rs.map((r, i) => r.rps / bares[i]!.rps);
    console.log(
      [
        label.padEnd(12),
        `${median(rs.map((r) => r.rps))
          .toFixed(0)
          .padStart(6)} req/s`,
        `p50 ${median(rs.map((r) => r.p50Ms))
          .toFixed(1)
          .padStart(5)} ms`,
        `p99 ${median(rs.map((r) => r.p99Ms))
          .toFixed(1)
          .padStart(5)} ms`,
        `CPU ${median(rs.map((r) => r.cpuUs))
          .toFixed(0)
          .padStart(4)} µs/req (main ${median(rs.map((r) => r.mainUs)).toFixed(0)})`,
        label === 'bare Fastify'
          ? ''
          : `ratio ${median(ratios).toFixed(3)} (rounds ${ratios.map((r) => r.toFixed(3)).join(', ')})`,
      ].join('  '),
    );
  }
  for (const server of servers) {
    const total = results.get(server.label)!.reduce((n, r) => n + r.requests, 0);
    console.log(
      `${server.label}: serve RSS ${rssMb(server.child.pid).toFixed(0)} MB after ${total} measured Idles`,
    );
    if (server.dbFile) {
      const db = new Database(server.dbFile, { readonly: true });
      const counts = ['mdm_messages', 'command_results', 'commands', 'command_queue'].map((table) => {
        const { n } = db.prepare(`select count(*) as n from ${table}`).get() as { n: number };
        return `${table} ${n}`;
      });
      console.log(`${server.label}: rows in ${counts.join(', ')}`);
      db.close();
    }
  }
  console.log(describeMachine());
} finally {
  for (const child of others) {
    if (child.exitCode !== null || child.signalCode !== null) continue;
    const exited = new Promise((done) => child.once('exit', done));
    child.kill('SIGTERM');
    await exited;
  }
  for (const child of children.reverse()) await child.kill('SIGTERM');
  rmSync(dir, { recursive: true, force: true });
}

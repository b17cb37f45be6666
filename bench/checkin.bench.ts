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
// Environment: S1_DEVICES (200), S1_CONNECTIONS (64), S1_SECONDS (10), S1_ROUNDS (3),
// S1_DB (a postgres:// URL instead of SQLite), S1_PROFILE=<dir> (serve runs with --cpu-prof into
// <dir>), S1_LOG_LEVEL (serve's HAISHIN_LOG_LEVEL, default: serve's default, info).
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
import { REPO, startFakesProcess, startServe } from '../test/e2e/support.ts';
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

/** Runs the load generator once against `url` and returns what it measured. */
function load(url: string, messagesFile: string, seconds: number): Promise<LoadResult> {
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

async function startBaseline(port: number): Promise<void> {
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
const fmt = (r: LoadResult) =>
  `${r.rps.toFixed(0).padStart(7)} req/s  p50 ${r.p50Ms.toFixed(1).padStart(6)} ms  p99 ${r.p99Ms
    .toFixed(1)
    .padStart(
      6,
    )} ms  max ${r.maxMs.toFixed(0).padStart(5)} ms  (${r.requests} requests, ${r.errors} errors, ${
    r.non200
  } non-200, ${r.withBody} with a command)`;

try {
  console.log(
    `S1 signed Idle check-ins: ${DEVICES} devices, ${CONNECTIONS} connections, ${ROUNDS} × ${SECONDS} s`,
  );
  console.log(describeMachine());

  const fakes = await startFakesProcess(join(dir, 'fakes'));
  children.push(fakes.proc);
  const port = await freePort();
  const baseUrl = `http://127.0.0.1:${port}`;
  const env: Record<string, string> = {
    ...fakes.info.env,
    HAISHIN_DB: process.env.S1_DB ?? `sqlite:${join(dir, 'haishin.db')}`,
    HAISHIN_DATA_DIR: join(dir, 'data'),
    HAISHIN_ADMIN_TOKEN: ADMIN,
    HAISHIN_LISTEN: `127.0.0.1:${port}`,
    HAISHIN_PUBLIC_URL: baseUrl,
  };
  if (process.env.S1_LOG_LEVEL) env.HAISHIN_LOG_LEVEL = process.env.S1_LOG_LEVEL;
  if (process.env.S1_PROFILE) {
    mkdirSync(process.env.S1_PROFILE, { recursive: true });
    env.NODE_OPTIONS = `--cpu-prof --cpu-prof-dir=${process.env.S1_PROFILE}`;
  }
  const serve = await startServe(env);
  children.push(serve.proc);

  const t0 = performance.now();
  const fleet = new SimFleet();
  for (let i = 0; i < DEVICES; i++)
    fleet.add(new SimDevice({ spec: { serialNumber: `S1${String(i).padStart(8, '0')}` } }));
  await fleet.enrollAll(() => serve.enrollUrl, 8);
  // Whatever the server queued on enrollment is answered now: the load is empty-queue Idles.
  await mapLimit(fleet.devices, 16, (d) => d.connect());
  console.log(
    `enrolled ${DEVICES} devices in ${((performance.now() - t0) / 1000).toFixed(1)} s (RSA-2048 identities)`,
  );

  const messagesFile = join(dir, 'idle.json');
  writeFileSync(
    messagesFile,
    JSON.stringify(
      fleet.devices.map((d) => {
        const body = Buffer.from(buildPlist({ Status: 'Idle', UDID: d.udid }), 'utf8');
        return { body: body.toString('base64'), signature: d.sign(body) };
      }),
    ),
  );

  const basePort = await freePort();
  await startBaseline(basePort);
  const targets = {
    bare: `http://127.0.0.1:${basePort}/mdm/connect`,
    haishin: `${baseUrl}/mdm/connect`,
  };
  // Warm-up: JIT, statement caches, the signer-certificate cache.
  await load(targets.bare, messagesFile, 3);
  await load(targets.haishin, messagesFile, 3);

  const results: { bare: LoadResult[]; haishin: LoadResult[] } = { bare: [], haishin: [] };
  for (let round = 1; round <= ROUNDS; round++) {
    const bare = await load(targets.bare, messagesFile, SECONDS);
    const haishin = await load(targets.haishin, messagesFile, SECONDS);
    results.bare.push(bare);
    results.haishin.push(haishin);
    console.log(`round ${round}  bare Fastify  ${fmt(bare)}`);
    console.log(
      `round ${round}  haishin       ${fmt(haishin)}   ratio ${(haishin.rps / bare.rps).toFixed(3)}`,
    );
  }

  const summary = (rs: LoadResult[]) => ({
    rps: median(rs.map((r) => r.rps)),
    p50: median(rs.map((r) => r.p50Ms)),
    p99: median(rs.map((r) => r.p99Ms)),
  });
  const b = summary(results.bare);
  const h = summary(results.haishin);
  const ratios = results.haishin.map((r, i) => r.rps / results.bare[i]!.rps);
  console.log('');
  console.log('medians of the rounds');
  console.log(
    `bare Fastify  ${b.rps.toFixed(0)} req/s, p50 ${b.p50.toFixed(1)} ms, p99 ${b.p99.toFixed(1)} ms`,
  );
  console.log(
    `haishin       ${h.rps.toFixed(0)} req/s, p50 ${h.p50.toFixed(1)} ms, p99 ${h.p99.toFixed(1)} ms`,
  );
  console.log(
    `ratio         ${median(ratios).toFixed(3)} of bare Fastify (rounds: ${ratios.map((r) => r.toFixed(3)).join(', ')})`,
  );
  const total = results.haishin.reduce((n, r) => n + r.requests, 0);
  console.log(`serve RSS     ${rssMb(serve.proc.child.pid).toFixed(0)} MB after ${total} measured Idles`);
  if (!process.env.S1_DB) {
    const db = new Database(join(dir, 'haishin.db'), { readonly: true });
    for (const table of ['mdm_messages', 'command_results', 'commands', 'command_queue']) {
      const { n } = db.prepare(`select count(*) as n from ${table}`).get() as { n: number };
      console.log(`rows in ${table.padEnd(16)} ${n}`);
    }
    db.close();
  }
  console.log(describeMachine());
} finally {
  for (const child of others) child.kill('SIGTERM');
  for (const child of children.reverse()) await child.kill('SIGTERM');
  rmSync(dir, { recursive: true, force: true });
}

// The product as it ships: `node bin/haishin.js serve` and `node bin/haishin.js fakes` as child
// processes configured only by environment variables and flags, and simulated iPads (in the test
// process) that enroll from the link the server prints and wake on the fakes' pushes.
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from '../../src/cli/net.ts';
import { TERMINAL_STATUSES } from '../../src/core/jobs.ts';

export const REPO = resolve(fileURLToPath(import.meta.url), '../../..');
const BIN = join(REPO, 'bin/haishin.js');

/** A haishin process with its output collected line by line. */
export class HaishinProcess {
  readonly child: ChildProcess;
  readonly stdout: string[] = [];
  readonly stderr: string[] = [];
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  #waiters: (() => void)[] = [];

  constructor(args: string[], env: Record<string, string>) {
    // Only what a shell would give any program, plus the configuration: nothing leaks from the test.
    const base = {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      HOME: process.env.HOME ?? '/root',
      LANG: 'C.UTF-8',
    };
    this.child = spawn(process.execPath, [BIN, ...args], {
      cwd: REPO,
      env: { ...base, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const collect = (into: string[]) => {
      let partial = '';
      return (chunk: Buffer) => {
        const text = partial + chunk.toString('utf8');
        const lines = text.split('\n');
        partial = lines.pop() ?? '';
        into.push(...lines);
        for (const wake of this.#waiters.splice(0)) wake();
      };
    };
    this.child.stdout!.on('data', collect(this.stdout));
    this.child.stderr!.on('data', collect(this.stderr));
    this.exited = new Promise((done) =>
      this.child.once('exit', (code, signal) => {
        for (const wake of this.#waiters.splice(0)) wake();
        done({ code, signal });
      }),
    );
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** The first stdout line matching `pattern`; fails when the process exits or time runs out. */
  async waitForLine(pattern: RegExp, timeoutMs = 60_000): Promise<RegExpMatchArray> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      for (const line of this.stdout) {
        const m = pattern.exec(line);
        if (m) return m;
      }
      if (!this.running)
        throw new Error(`process exited before printing ${pattern}:\n${this.stderr.join('\n')}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no line ${pattern} within ${timeoutMs} ms:\n${this.stderr.join('\n')}`);
      await new Promise<void>((wake) => {
        const timer = setTimeout(wake, Math.min(left, 500));
        this.#waiters.push(() => {
          clearTimeout(timer);
          wake();
        });
      });
    }
  }

  async kill(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    if (this.running) this.child.kill(signal);
    await this.exited;
  }
}

export interface FakesInfo {
  env: Record<string, string>;
  control: string;
  tokenFile: string;
  topic: string;
}

/** `haishin fakes --dir <dir>`: Apple's services in their own process. */
export async function startFakesProcess(
  dir: string,
  args: readonly string[] = [],
): Promise<{ proc: HaishinProcess; info: FakesInfo }> {
  const proc = new HaishinProcess(['fakes', '--dir', dir, ...args], {});
  await proc.waitForLine(/^fakes ready$/);
  const info = JSON.parse(readFileSync(join(dir, 'fakes.json'), 'utf8')) as FakesInfo;
  return { proc, info };
}

/**
 * The environment of a test's `haishin serve`: the fakes' URLs, the database (SQLite in `dir`
 * unless `db` says otherwise), a free port on 127.0.0.1 that is also the public URL, and P-256
 * identities with a one-iteration PKCS#12 (decision 0010) so that iPads enroll fast.
 */
export async function testServeEnv(o: {
  fakesEnv: Record<string, string>;
  dir: string;
  admin: string;
  db?: string;
}): Promise<{ env: Record<string, string>; baseUrl: string }> {
  const port = await freePort();
  const baseUrl = `http://127.0.0.1:${port}`;
  return {
    baseUrl,
    env: {
      ...o.fakesEnv,
      HAISHIN_DB: o.db ?? `sqlite:${join(o.dir, 'haishin.db')}`,
      HAISHIN_DATA_DIR: join(o.dir, 'data'),
      HAISHIN_LISTEN: `127.0.0.1:${port}`,
      HAISHIN_PUBLIC_URL: baseUrl,
      HAISHIN_ADMIN_TOKEN: o.admin,
      HAISHIN_LOG_LEVEL: 'warn',
      HAISHIN_DEVICE_KEY_TYPE: 'ec',
      HAISHIN_PKCS12_ITERATIONS: '1',
    },
  };
}

/**
 * `haishin serve` configured by `env`; resolves once it is up, with an enrollment link for the root
 * group made the way an administrator makes one (`haishin enrollment-links create`, decision 0022).
 * With HAISHIN_ENROLL_OPEN_GROUPS=true (labs) it is the bare group link the server prints.
 */
export async function startServe(
  env: Record<string, string>,
): Promise<{ proc: HaishinProcess; enrollUrl: string }> {
  const proc = new HaishinProcess(['serve'], env);
  if (/^(true|1|yes)$/i.test(env.HAISHIN_ENROLL_OPEN_GROUPS ?? '')) {
    const [, enrollUrl] = await proc.waitForLine(/^enrollment link for the root group: (\S+)$/);
    return { proc, enrollUrl: enrollUrl! };
  }
  const [, root] = await proc.waitForLine(/^root group (\S+): /);
  await proc.waitForLine(/^admin console: /);
  return { proc, enrollUrl: await createEnrollmentLink(env, root!) };
}

/** `haishin enrollment-links create --group <id> --json` against the serve that `env` configures. */
export async function createEnrollmentLink(
  env: Record<string, string>,
  groupId: string,
  options: string[] = [],
): Promise<string> {
  const token = env.HAISHIN_ADMIN_TOKEN;
  if (!token) throw new Error('createEnrollmentLink needs HAISHIN_ADMIN_TOKEN in the serve environment');
  const url = env.HAISHIN_PUBLIC_URL ?? `http://${env.HAISHIN_LISTEN ?? '127.0.0.1:8080'}`;
  const result = await runHaishin(['enrollment-links', 'create', '--group', groupId, '--json', ...options], {
    HAISHIN_URL: url,
    HAISHIN_TOKEN: token,
    // A server with its own TLS certificate is trusted the way any Node program trusts it.
    ...(env.HAISHIN_TLS_CERT ? { NODE_EXTRA_CA_CERTS: env.HAISHIN_TLS_CERT } : {}),
  });
  if (result.code !== 0)
    throw new Error(`haishin enrollment-links create failed (${result.code}): ${result.stderr.join('\n')}`);
  return (JSON.parse(result.stdout.join('\n')) as { url: string }).url;
}

/**
 * `haishin fleet <args>` (simulated iPads against a serve run with the fakes); resolves once every
 * iPad has enrolled. `env` adds to the process's environment (e.g. NODE_EXTRA_CA_CERTS).
 */
export async function startFleet(args: string[], env: Record<string, string> = {}): Promise<HaishinProcess> {
  const proc = new HaishinProcess(['fleet', ...args], env);
  await proc.waitForLine(/^fleet ready: /, 120_000);
  return proc;
}

/** A haishin command run to its end (killed after `timeoutMs`): exit status and output lines. */
export async function runHaishin(
  args: string[],
  env: Record<string, string>,
  timeoutMs = 60_000,
): Promise<{ code: number | null; stdout: string[]; stderr: string[] }> {
  const proc = new HaishinProcess(args, env);
  let timer: NodeJS.Timeout | undefined;
  const exit = await Promise.race([
    proc.exited,
    new Promise<null>((done) => (timer = setTimeout(() => done(null), timeoutMs))),
  ]);
  clearTimeout(timer);
  if (exit === null) await proc.kill('SIGKILL');
  return {
    code: exit?.code ?? null,
    stdout: proc.stdout.filter((l) => l.trim() !== ''),
    stderr: proc.stderr.filter((l) => l.trim() !== ''),
  };
}

/** KEY=value lines as `haishin fakes` writes them to fakes.env (what `set -a; . fakes.env` reads). */
export function readEnvFile(file: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const eq = line.indexOf('=');
    if (eq > 0) env[line.slice(0, eq)] = line.slice(eq + 1);
  }
  return env;
}

export interface FakesStats {
  apns: { requests: number; accepted: number };
  vpp: {
    calls: Record<string, number>;
    associate: { eventId: string; serials: string[]; adamIds: string[] }[];
    disassociate: { eventId: string; serials: string[]; adamIds: string[] }[];
  };
}

export async function control<T = FakesStats>(url: string, method = 'GET', body?: unknown): Promise<T> {
  const res = await fetch(url, {
    method,
    ...(body === undefined
      ? {}
      : { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } }),
  });
  if (!res.ok) throw new Error(`${method} ${url}: HTTP ${res.status} ${await res.text()}`);
  return (await res.json()) as T;
}

/** The REST API as an administrator's script would use it. */
export function adminApi(baseUrl: string, token: string) {
  return async <T = Record<string, unknown>>(
    method: string,
    path: string,
    body?: unknown,
  ): Promise<{ status: number; body: T }> => {
    const res = await fetch(`${baseUrl}/api/v1${path}`, {
      method,
      headers: {
        authorization: `Bearer ${token}`,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await res.text();
    return { status: res.status, body: (text ? JSON.parse(text) : null) as T };
  };
}

/** Polls (bounded) until `check` returns a value that is not undefined. */
export async function eventually<T>(
  what: string,
  check: () => Promise<T | undefined>,
  timeoutMs = 120_000,
  everyMs = 200,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined) return value;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline)
      throw new Error(`${what}: not within ${timeoutMs} ms${last ? ` (${String(last)})` : ''}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** Counts per status once every job of the distribution is terminal. */
export function settled(counts: Record<string, number>): Record<string, number> | undefined {
  const terminal: ReadonlySet<string> = TERMINAL_STATUSES;
  return Object.keys(counts).every((s) => terminal.has(s)) ? counts : undefined;
}

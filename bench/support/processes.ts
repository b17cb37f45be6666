// What the process-level benches (apps, scale) share: the commit they ran at, a process's CPU time
// and resident memory read from /proc, and `haishin serve` started as an administrator starts it.
import { execFileSync, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { availableParallelism, loadavg, totalmem } from 'node:os';
import { join } from 'node:path';

/** `git rev-parse --short HEAD` of `repo`, saying so when src/ holds uncommitted changes. */
export function commitOf(repo: string): string {
  try {
    const git = (...args: string[]) =>
      execFileSync('git', args, { cwd: repo, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    let commit = git('rev-parse', '--short', 'HEAD').trim();
    const dirty = git('status', '--porcelain', '--', 'src');
    if (dirty.trim()) commit += ' + uncommitted changes in src/';
    return commit;
  } catch {
    return 'not a git checkout';
  }
}

/** node's version, the cores, the memory and the load average now. */
export function describeMachine(): string {
  return `node ${process.version}, ${availableParallelism()} cores, ${(totalmem() / 2 ** 30).toFixed(0)} GB, load ${loadavg()
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

/** CPU seconds (user + system) a process has used so far, and its resident memory in MB. */
export function usage(pid: number | undefined): { cpuS: number; rssMb: number } {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    return {
      cpuS: (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS,
      rssMb: Number(/VmRSS:\s+(\d+)/.exec(status)?.[1]) / 1024,
    };
  } catch {
    return { cpuS: NaN, rssMb: NaN };
  }
}

export interface ServeOptions {
  /** Flags for node before the script (--cpu-prof, --perf-basic-prof, --import …). */
  nodeFlags?: string[];
  /** Called when serve exits after it printed its link (the last 4,000 characters of stderr). */
  onExit?: (code: number | null, stderr: string) => void;
}

/**
 * `node [flags] bin/haishin.js serve` of `repo`, configured by `env` only (and PATH, HOME, LANG);
 * resolves on its enrollment link. Its stdout is read until then and dropped afterwards.
 */
export function startServe(
  repo: string,
  env: Record<string, string>,
  options: ServeOptions = {},
): Promise<{ child: ChildProcess; enrollUrl: string }> {
  const child = spawn(
    process.execPath,
    [...(options.nodeFlags ?? []), join(repo, 'bin/haishin.js'), 'serve'],
    {
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
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let stderr = '';
  child.stderr!.on('data', (c: Buffer) => {
    stderr = (stderr + c.toString('utf8')).slice(-4_000);
  });
  return new Promise((done, fail) => {
    let out = '';
    let found = false;
    child.stdout!.on('data', (c: Buffer) => {
      if (found) return;
      out += c.toString('utf8');
      const m = /^enrollment link for the root group: (\S+)$/m.exec(out);
      if (m) {
        found = true;
        out = '';
        done({ child, enrollUrl: m[1]! });
      }
    });
    child.once('exit', (code) => {
      if (!found) fail(new Error(`haishin serve exited with ${code}:\n${stderr}`));
      else options.onExit?.(code, stderr);
    });
  });
}

/** Stops `child` with SIGTERM, SIGKILL after `graceMs`. */
export async function stopChild(child: ChildProcess | null | undefined, graceMs = 10_000): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  await Promise.race([exited, new Promise((r) => setTimeout(r, graceMs))]);
  if (child.exitCode === null && child.signalCode === null) {
    child.kill('SIGKILL');
    await exited;
  }
}

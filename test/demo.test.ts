import { execFile, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const repo = resolve(fileURLToPath(import.meta.url), '../..');
const bin = join(repo, 'bin/haishin.js');
const hasTmux = (() => {
  try {
    execFileSync('tmux', ['-V']);
    return true;
  } catch {
    return false;
  }
})();
if (!hasTmux) console.warn('[demo.test] tmux not found: the terminal (tmux) test is skipped');

function run(
  args: string[],
  env: Record<string, string>,
  timeoutMs: number,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((done) => {
    execFile(
      process.execPath,
      [bin, ...args],
      { cwd: repo, env: { ...process.env, ...env }, timeout: timeoutMs, maxBuffer: 32 * 1024 * 1024 },
      (err, stdout, stderr) => {
        done({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
      },
    );
  });
}

describe('haishin demo', () => {
  it(
    '200 iPads: reaches the summary within its budget, with every reachable status and a cause for each failed class',
    { timeout: 180_000 },
    async () => {
      const data = mkdtempSync(join(tmpdir(), 'haishin-demo-'));
      try {
        const started = Date.now();
        const { code, stdout, stderr } = await run(
          ['demo', '--devices', '200', '--budget', '110s', '--reset', '--data', data, '--lang', 'en'],
          {},
          170_000,
        );
        expect(code, stderr).toBe(0);
        expect(Date.now() - started).toBeLessThan(130_000);
        expect(stdout).toContain('200 iPads enrolled');
        const summary = stdout.slice(stdout.indexOf('== summary =='));
        for (const label of [
          'Succeeded',
          'Push timed out',
          'Session timed out',
          'Cancelled',
          'Device error',
          'Licence assignment failed',
        ]) {
          expect(summary).toContain(label);
        }
        const classes = summary.split('\n').filter((l) => l.startsWith('- '));
        const causes = summary.split('\n').filter((l) => l.trim().startsWith('cause:'));
        expect(classes.length).toBeGreaterThanOrEqual(5);
        expect(causes.length).toBe(classes.length);
        for (const code of [
          'token.not_shared',
          'device.storage_insufficient',
          'autoassign.token_misconfigured',
          'device.unenrolled',
          'shared_ipad.users_logged_in',
        ]) {
          expect(summary).toContain(`[${code}]`);
        }
        expect(stdout).toMatch(/API: http:\/\/127\.0\.0\.1:\d+\/api\/v1 {3}admin token: hs_/);
      } finally {
        rmSync(data, { recursive: true, force: true });
      }
    },
  );

  it.skipIf(!hasTmux)(
    'in a terminal (tmux): live progress bars, then the summary in Japanese',
    { timeout: 150_000 },
    async () => {
      const data = mkdtempSync(join(tmpdir(), 'haishin-demo-tty-'));
      const session = `haishin-test-${process.pid}`;
      const command = `HAISHIN_PUSH_TIMEOUT=12s HAISHIN_SESSION_TIMEOUT=8s ${process.execPath} ${bin} demo --devices 30 --budget 60s --reset --data ${data} --lang ja; echo DEMO-EXIT=$?; sleep 30`;
      execFileSync('tmux', ['new-session', '-d', '-s', session, '-x', '160', '-y', '60', command], {
        cwd: repo,
      });
      const capture = () =>
        execFileSync('tmux', ['capture-pane', '-p', '-t', session, '-S', '-200'], { encoding: 'utf8' });
      try {
        let sawProgress = false;
        let screen = '';
        const deadline = Date.now() + 120_000;
        while (Date.now() < deadline) {
          screen = capture();
          if (/進捗 \d+\/90 完了/.test(screen) && screen.includes('█')) sawProgress = true;
          if (screen.includes('DEMO-EXIT=')) break;
          await new Promise((r) => setTimeout(r, 300));
        }
        expect(sawProgress).toBe(true);
        expect(screen).toContain('DEMO-EXIT=0');
        expect(screen).toContain('== 結果 ==');
        expect(screen).toContain('成功');
        expect(screen).toContain('原因:');
        expect(screen).toContain('対処:');
        // Bars are redrawn in place: the progress header appears once on screen, not once per update.
        expect(screen.match(/進捗 \d+\/90 完了/g)?.length ?? 0).toBeLessThanOrEqual(2);
      } finally {
        try {
          execFileSync('tmux', ['kill-session', '-t', session]);
        } catch {
          // already gone
        }
        rmSync(data, { recursive: true, force: true });
      }
    },
  );
});

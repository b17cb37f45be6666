/**
 * `haishin demo` end to end at a chosen fleet size, as a newcomer runs it (a child process of
 * bin/haishin.js), with its memory watched from outside.
 *
 *   node --import tsx bench/demo.bench.ts [devices=1000] [budget]
 *
 * Prints the demo's own phase lines (enrollment, device facts, the summary counts), the wall
 * time, the peak RSS of the demo process and its RSS per simulated iPad. Without a budget the
 * demo runs until every job has finished; the bench gives up after 3 hours all the same.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const devices = Math.min(100_000, Math.max(10, Number(process.argv[2] ?? 1000)));
const budget = process.argv[3];
const GIVE_UP_MS = 3 * 3_600_000;
const data = mkdtempSync(join(tmpdir(), 'haishin-demo-bench-'));

const args = [
  'bin/haishin.js',
  'demo',
  '--devices',
  String(devices),
  '--reset',
  '--data',
  data,
  '--lang',
  'en',
];
if (budget) args.push('--budget', budget);
const started = Date.now();
const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] });

const rssKb = (pid: number): number => {
  try {
    const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match ? Number(match[1]) : 0;
  } catch {
    return 0;
  }
};
let peakKb = 0;
const sampler = setInterval(() => {
  peakKb = Math.max(peakKb, rssKb(child.pid!));
}, 2_000);
const giveUp = setTimeout(() => child.kill('SIGINT'), GIVE_UP_MS);

const at = () => `${((Date.now() - started) / 1000).toFixed(0).padStart(6)} s`;
let buffered = '';
let inSummary = false;
let lastProgress = 0;
child.stdout.setEncoding('utf8');
child.stdout.on('data', (chunk: string) => {
  buffered += chunk;
  let newline: number;
  while ((newline = buffered.indexOf('\n')) >= 0) {
    const line = buffered.slice(0, newline);
    buffered = buffered.slice(newline + 1);
    if (line.startsWith('progress')) {
      // One progress line a minute is enough for a record.
      if (Date.now() - lastProgress > 60_000) {
        console.log(`${at()}  ${line.slice(0, 220)}`);
        lastProgress = Date.now();
      }
      continue;
    }
    if (line.startsWith('== summary')) inSummary = true;
    if (line.startsWith('== why')) inSummary = false;
    if (inSummary || /enrolled in|facts read|distribution started|note:/.test(line))
      console.log(`${at()}  ${line}`);
    // The demo keeps serving once it has summarised, until Ctrl-C: the end of the run for the bench.
    // (A moment later: the line can arrive before the demo has installed its Ctrl-C handler.)
    if (line.startsWith('Press Ctrl-C')) setTimeout(() => child.kill('SIGINT'), 1_000);
  }
});

const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
clearInterval(sampler);
clearTimeout(giveUp);
rmSync(data, { recursive: true, force: true });
console.log(`devices            ${devices}`);
console.log(`wall               ${((Date.now() - started) / 1000).toFixed(0)} s (exit ${code})`);
console.log(
  `peak RSS           ${(peakKb / 1024).toFixed(0)} MB (${((peakKb * 1024) / devices / 1024).toFixed(1)} KB per iPad, server and fleet in one process)`,
);
process.exitCode = code === 0 ? 0 : 1;

// Hostile input never hurts, at volume (issue 18, item 5; decision 0028): ≥ 100,000 generated cases
// (test/support/fuzz-inputs.ts, the generators of test/fuzz.test.ts) against `haishin serve` run as
// a child process configured by environment, with `haishin fakes` beside it (a registered Apps and
// Books token, so /vpp/notify is fuzzed past its bearer check). Good iPads keep checking in between
// the cases. Prints cases/s, the answers by status, 5xx and crashes (must be 0), the server's RSS
// at start, middle and end, and the good iPads' sessions.
//
//   npm run bench fuzz                       (or node --import tsx bench/fuzz.bench.ts)
//
// Environment: FUZZ_CASES (100000), FUZZ_SEED (20261207), FUZZ_CONCURRENCY (8), FUZZ_SECONDS
// (1500: the run stops there, whatever the count), FUZZ_GOOD (5 iPads). Cases are drawn in
// batches of 1,000, batch b with seed FUZZ_SEED + b: a reported case (b, k) is
// `fc.sample(allCases(ctx), { seed: FUZZ_SEED + b, numRuns: k + 1 })[k]`.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import fc from 'fast-check';
import { freePort } from '../src/cli/net.ts';
import { REPO, startFakesProcess } from '../test/e2e/support.ts';
import type { HaishinProcess } from '../test/e2e/support.ts';
import { allCases, checkinSchemas } from '../test/support/fuzz-inputs.ts';
import type { FuzzCase } from '../test/support/fuzz-inputs.ts';
import {
  describeCase,
  enrollDevices,
  FuzzTally,
  fuzzContext,
  goodDevicesServed,
  judge,
  sendCase,
} from '../test/support/fuzz-run.ts';
import { commitOf, describeMachine, startServe, stopChild, usage } from './support/processes.ts';

const CASES = Number(process.env.FUZZ_CASES ?? 100_000);
const SEED = Number(process.env.FUZZ_SEED ?? 20_261_207);
const CONCURRENCY = Number(process.env.FUZZ_CONCURRENCY ?? 8);
const SECONDS = Number(process.env.FUZZ_SECONDS ?? 1500);
const GOOD = Number(process.env.FUZZ_GOOD ?? 5);
const BATCH = 1000;
const ADMIN = 'bench-admin-token-fuzz-0123456789';
const MAX_BODY = 256 * 1024;

const dir = mkdtempSync(join(tmpdir(), 'haishin-fuzz-'));
let fakes = null as HaishinProcess | null;
let serve = null as Awaited<ReturnType<typeof startServe>>['child'] | null;
let exitedEarly = null as string | null;

async function main(): Promise<number> {
  console.log(`fuzz bench at ${commitOf(REPO)}; ${describeMachine()}`);
  console.log(`seed ${SEED}, ${CASES} cases, ${CONCURRENCY} in flight, at most ${SECONDS} s`);
  const started = await startFakesProcess(join(dir, 'fakes'));
  fakes = started.proc;
  const port = await freePort();
  const baseUrl = `http://127.0.0.1:${port}`;
  const dbFile = join(dir, 'haishin.db');
  const launched = await startServe(
    REPO,
    {
      ...started.info.env,
      HAISHIN_DB: `sqlite:${dbFile}`,
      HAISHIN_LISTEN: `127.0.0.1:${port}`,
      HAISHIN_PUBLIC_URL: baseUrl,
      HAISHIN_ADMIN_TOKEN: ADMIN,
      HAISHIN_SECRET_KEY: 'bench-secret-key-fuzz-0123456789',
      HAISHIN_DEVICE_KEY_BITS: '1024',
      HAISHIN_MAX_BODY_BYTES: String(MAX_BODY),
      // Every refusal is a warning: 100,000 of them would measure the log, not the server.
      HAISHIN_LOG_LEVEL: 'error',
    },
    { onExit: (code, stderr) => (exitedEarly = `serve exited with ${code}:\n${stderr}`) },
  );
  serve = launched.child;
  const pid = serve.pid;

  const api = async (method: string, path: string, body?: unknown) => {
    const response = await fetch(`${baseUrl}/api/v1${path}`, {
      method,
      headers: {
        authorization: `Bearer ${ADMIN}`,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    return { status: response.status, body: (await response.json()) as Record<string, unknown> };
  };
  const groups = (await api('GET', '/groups')).body.items as { id: string; parentId: string | null }[];
  const root = groups.find((g) => g.parentId === null)!.id;
  const registered = await api('POST', '/vpp-tokens', {
    groupId: root,
    sToken: readFileSync(started.info.tokenFile, 'utf8').trim(),
  });
  if (registered.status !== 201) throw new Error(`token registration: ${JSON.stringify(registered.body)}`);
  const tokenId = registered.body.id as string;
  // The bearer Apple was given, as Apple would send it (read from serve's database).
  const db = new Database(dbFile, { readonly: true });
  const bearer = (
    db.prepare('select notification_auth_token as t from vpp_tokens where id = ?').get(tokenId) as {
      t: string;
    }
  ).t;
  db.close();

  const good = await enrollDevices(launched.enrollUrl, GOOD, 'BZGOOD');
  const [attacker] = await enrollDevices(launched.enrollUrl, 1, 'BZEVIL');
  const devices = (await api('GET', '/devices?limit=50')).body.items as { id: string }[];
  const ctx = await fuzzContext({
    baseUrl,
    adminToken: ADMIN,
    attacker: attacker!,
    good,
    vppBearer: bearer,
    realIds: [root, tokenId, ...devices.map((d) => d.id)],
    maxBodyBytes: MAX_BODY,
    hugeBytes: 128 * 1024,
  });
  const arbitrary = allCases(ctx, checkinSchemas());

  const rss: { at: number; mb: number }[] = [{ at: 0, mb: usage(pid).rssMb }];
  const tally = new FuzzTally();
  let goodSessions = 0;
  let goodFailures: string[] = [];
  let hangs = 0;
  const began = performance.now();
  const deadline = began + SECONDS * 1000;
  let nextRss = CASES / 10;
  let nextGood = 250;
  const pendingGood: Promise<void>[] = [];

  for (let b = 0; tally.cases < CASES && performance.now() < deadline && !exitedEarly; b++) {
    const batch: FuzzCase[] = fc.sample(arbitrary, {
      seed: SEED + b,
      numRuns: Math.min(BATCH, CASES - tally.cases),
    });
    let next = 0;
    const worker = async () => {
      for (;;) {
        const k = next++;
        const c = batch[k];
        if (!c || exitedEarly) return;
        const t0 = performance.now();
        const answer = await sendCase(baseUrl, c);
        if (answer.status === 0) hangs++;
        const problem = judge(c, answer);
        tally.add(c, answer, problem, performance.now() - t0);
        if (problem && tally.problemCount <= 5)
          console.log(`PROBLEM (batch ${b}, case ${k}): ${problem}\n  ${describeCase(c)}`);
        if (tally.cases >= nextGood) {
          nextGood += 250;
          // The good iPads' sessions run among the hostile requests.
          pendingGood.push(
            goodDevicesServed(good).then((failure) => {
              goodSessions++;
              if (failure) goodFailures.push(failure);
            }),
          );
        }
        if (tally.cases >= nextRss) {
          nextRss += CASES / 10;
          rss.push({ at: tally.cases, mb: usage(pid).rssMb });
          const s = (performance.now() - began) / 1000;
          console.log(
            `  ${tally.cases} cases, ${s.toFixed(0)} s, ${(tally.cases / s).toFixed(0)}/s, RSS ${rss.at(-1)!.mb.toFixed(0)} MB, ${tally.problemCount} problems`,
          );
        }
      }
    };
    await Promise.all(Array.from({ length: CONCURRENCY }, worker));
    await Promise.all(pendingGood.splice(0));
  }
  const seconds = (performance.now() - began) / 1000;
  rss.push({ at: tally.cases, mb: usage(pid).rssMb });
  const finalGood = await goodDevicesServed(good);
  goodSessions++;
  if (finalGood) goodFailures.push(finalGood);
  goodFailures = goodFailures.slice(0, 5);
  const alive = !exitedEarly && serve.exitCode === null && serve.signalCode === null;

  console.log(`\n${tally.summary()}`);
  console.log(
    `${seconds.toFixed(1)} s, ${(tally.cases / seconds).toFixed(0)} cases/s (${CONCURRENCY} in flight)`,
  );
  console.log(
    `5xx: ${tally.fiveHundreds}; hangs: ${hangs}; problems: ${tally.problemCount}; serve ${alive ? 'still running' : `DIED: ${exitedEarly}`}`,
  );
  const middle = rss.reduce((m, r) =>
    Math.abs(r.at - tally.cases / 2) < Math.abs(m.at - tally.cases / 2) ? r : m,
  );
  console.log(
    `serve RSS: start ${rss[0]!.mb.toFixed(0)} MB, middle ${middle.mb.toFixed(0)} MB (at ${middle.at}), end ${rss.at(-1)!.mb.toFixed(0)} MB; all: ${rss.map((r) => r.mb.toFixed(0)).join(' ')}`,
  );
  console.log(
    `good iPads: ${GOOD}, ${goodSessions} rounds of sessions, ${goodFailures.length} failed${goodFailures.length ? `: ${goodFailures.join('; ')}` : ''}`,
  );
  const targets = new Map<string, number>();
  for (const [kind, n] of tally.byKind) {
    const target = kind.startsWith('api ') ? 'REST API' : kind.startsWith('vpp: ') ? '/vpp/notify' : 'MDM';
    targets.set(target, (targets.get(target) ?? 0) + n);
  }
  console.log(
    `by target: ${[...targets].map(([t, n]) => `${t} ${n}`).join(', ')}; ${tally.byKind.size} kinds`,
  );
  const slow = [...tally.msByKind]
    .map(([k, ms]) => [k, ms / tally.byKind.get(k)!] as const)
    .sort((a, b) => b[1] - a[1])
    .slice(0, 5);
  console.log(`slowest kinds (mean ms): ${slow.map(([k, ms]) => `${k} ${ms.toFixed(1)}`).join('; ')}`);
  for (const p of tally.problems.slice(0, 5)) console.log(`problem: ${p.problem}\n  ${describeCase(p.case)}`);
  return tally.problemCount === 0 && goodFailures.length === 0 && alive && tally.cases >= Math.min(CASES, 1)
    ? 0
    : 1;
}

let code = 1;
try {
  code = await main();
} catch (err) {
  console.error(err);
} finally {
  await stopChild(serve);
  await fakes?.kill();
  rmSync(dir, { recursive: true, force: true });
}
process.exit(code);

// Hostile input never hurts the product as it ships (issue 18, item 5; decision 0028): the seeded
// fuzz property of test/fuzz.test.ts, 1,000 cases, against `haishin serve` run as a child process
// configured only by environment, `haishin fakes` beside it, and simulated iPads enrolled from the
// link the server prints. The 100,000-case run is bench/fuzz.bench.ts.
//
//   FUZZ_SEED=<seed> FUZZ_PATH=<path> npx vitest run test/e2e/fuzz.e2e.test.ts
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../src/cli/net.ts';
import type { SimDevice } from '../../src/sim/device/device.ts';
import { allCases } from '../support/fuzz-inputs.ts';
import type { FuzzContext } from '../support/fuzz-inputs.ts';
import {
  describeCase,
  enrollDevices,
  FuzzTally,
  fuzzContext,
  goodDevicesServed,
  judge,
  sendCase,
} from '../support/fuzz-run.ts';
import { startFakesProcess, startServe } from './support.ts';
import type { HaishinProcess } from './support.ts';

const SEED = Number(process.env.FUZZ_SEED ?? 20_261_207);
const RUNS = Number(process.env.FUZZ_RUNS_E2E ?? 1000);
const PATH = process.env.FUZZ_PATH;
const ADMIN = 'e2e-admin-token-fuzz-0123456789';
const MAX_BODY = 256 * 1024;

describe('haishin serve under hostile input', () => {
  const dir = mkdtempSync(join(tmpdir(), 'haishin-e2e-fuzz-'));
  let fakes: HaishinProcess | undefined;
  let serve: HaishinProcess | undefined;
  let baseUrl = '';
  let good: SimDevice[] = [];
  let ctx: FuzzContext;

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

  beforeAll(async () => {
    const started = await startFakesProcess(join(dir, 'fakes'));
    fakes = started.proc;
    const port = await freePort();
    baseUrl = `http://127.0.0.1:${port}`;
    const dbFile = join(dir, 'haishin.db');
    const launched = await startServe({
      ...started.info.env,
      HAISHIN_DB: `sqlite:${dbFile}`,
      HAISHIN_LISTEN: `127.0.0.1:${port}`,
      HAISHIN_PUBLIC_URL: baseUrl,
      HAISHIN_ADMIN_TOKEN: ADMIN,
      HAISHIN_SECRET_KEY: 'e2e-secret-key-fuzz-0123456789',
      HAISHIN_DEVICE_KEY_BITS: '1024',
      HAISHIN_MAX_BODY_BYTES: String(MAX_BODY),
      HAISHIN_ENROLL_OPEN_GROUPS: 'true',
      HAISHIN_LOG_LEVEL: 'error',
    });
    serve = launched.proc;
    const groups = (await api('GET', '/groups')).body.items as { id: string; parentId: string | null }[];
    const root = groups.find((g) => g.parentId === null)!.id;
    const registered = await api('POST', '/vpp-tokens', {
      groupId: root,
      sToken: readFileSync(started.info.tokenFile, 'utf8').trim(),
    });
    expect(registered.status).toBe(201);
    const tokenId = registered.body.id as string;
    // The bearer Apple was given, as Apple sends it back (read from serve's database).
    const db = new Database(dbFile, { readonly: true });
    const row = db
      .prepare('select notification_auth_token as t from vpp_tokens where id = ?')
      .get(tokenId) as {
      t: string;
    };
    db.close();

    good = await enrollDevices(launched.enrollUrl, 3, 'EZGOOD');
    const [attacker] = await enrollDevices(launched.enrollUrl, 1, 'EZEVIL');
    const devices = (await api('GET', '/devices?limit=10')).body.items as { id: string }[];
    ctx = await fuzzContext({
      baseUrl,
      adminToken: ADMIN,
      attacker: attacker!,
      good,
      vppBearer: row.t,
      realIds: [root, tokenId, ...devices.map((d) => d.id)],
      maxBodyBytes: MAX_BODY,
      hugeBytes: 64 * 1024,
    });
  }, 120_000);

  afterAll(async () => {
    await serve?.kill();
    await fakes?.kill();
    rmSync(dir, { recursive: true, force: true });
  });

  it(`seed ${SEED}, ${RUNS} cases: never a 5xx or a 401 to a device, the process lives, good iPads served`, async () => {
    console.log(`fuzz e2e seed ${SEED}, ${RUNS} runs${PATH ? `, path ${PATH}` : ''}`);
    const tally = new FuzzTally();
    let sinceCheck = 0;
    await fc.assert(
      fc.asyncProperty(allCases(ctx), async (c) => {
        const answer = await sendCase(baseUrl, c);
        const problem = judge(c, answer);
        tally.add(c, answer, problem);
        if (problem) throw new Error(`${problem}\n${describeCase(c)}`);
        if (!serve!.running) throw new Error(`serve exited after ${describeCase(c)}`);
        if (++sinceCheck >= 100) {
          sinceCheck = 0;
          const served = await goodDevicesServed(good);
          if (served) throw new Error(`${served} (after ${describeCase(c)})`);
        }
      }),
      { seed: SEED, numRuns: RUNS, ...(PATH ? { path: PATH, endOnFailure: true } : {}) },
    );
    console.log(`fuzz e2e: ${tally.summary()}`);
    expect(tally.fiveHundreds).toBe(0);
    expect(serve!.running).toBe(true);
    expect(await goodDevicesServed(good)).toBeNull();
    expect((await api('GET', '/status')).status).toBe(200);
  }, 300_000);
});

// Issue 16 (first steps): two `haishin serve` on one PostgreSQL database. The timed work (the
// engine's tick, the Apps and Books poll, upkeep) is done by the process holding its lease; the
// other keeps the Apple notifications it receives for it; iPads enrolled through either process
// install; nothing is associated twice; when the holder is killed with -9 the other takes the work
// over once the lease expires (decision 0019).
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../src/cli/net.ts';
import { SimDevice } from '../../src/sim/device/device.ts';
import { mapLimit, relayPushes, SimFleet } from '../../src/sim/fleet.ts';
import { SCENARIO_APPS } from '../../src/sim/scenario.ts';
import { postgresAvailable, postgresSkipReason, startPostgres } from '../support/pg.ts';
import type { ThrowawayPostgres } from '../support/pg.ts';
import { adminApi, control, eventually, settled, startFakesProcess, startServe } from './support.ts';
import type { FakesInfo, HaishinProcess } from './support.ts';

if (!postgresAvailable) console.warn(`[scale-out.e2e.test] ${postgresSkipReason}`);

const ADMIN = 'scale-out-admin-token-0123456789';
const PER_PROCESS = 20;
const [NOTE] = SCENARIO_APPS as [(typeof SCENARIO_APPS)[number]];

interface Serve {
  proc: HaishinProcess;
  enrollUrl: string;
  baseUrl: string;
}

describe.skipIf(!postgresAvailable)('two haishin serve on one PostgreSQL', () => {
  const fleet = new SimFleet();
  const dir = mkdtempSync(join(tmpdir(), 'haishin-scale-out-'));
  let fakes: { proc: HaishinProcess; info: FakesInfo };
  let relay: { close(): void };
  let postgres: ThrowawayPostgres;
  let a: Serve;
  let b: Serve;
  const devices: SimDevice[] = [];

  async function serveOn(envBase: Record<string, string>): Promise<Serve> {
    const port = await freePort();
    const baseUrl = `http://127.0.0.1:${port}`;
    const started = await startServe({
      ...envBase,
      HAISHIN_LISTEN: `127.0.0.1:${port}`,
      HAISHIN_PUBLIC_URL: baseUrl,
    });
    return { ...started, baseUrl };
  }

  /** The timed work a process says (in /metrics) it holds. */
  async function held(serve: Serve): Promise<string[]> {
    const text = await (await fetch(`${serve.baseUrl}/metrics`)).text();
    return [...text.matchAll(/^haishin_lease_held\{work="([^"]+)"\} 1$/gm)].map((m) => m[1]!).sort();
  }

  beforeAll(async () => {
    fakes = await startFakesProcess(join(dir, 'apple'));
    relay = await relayPushes(fakes.info.control, fleet);
    postgres = await startPostgres();
    const env = {
      ...fakes.info.env,
      HAISHIN_DB: postgres.url,
      HAISHIN_DATA_DIR: join(dir, 'data'),
      HAISHIN_ADMIN_TOKEN: ADMIN,
      HAISHIN_LOG_LEVEL: 'warn',
      HAISHIN_DEVICE_KEY_TYPE: 'ec',
      HAISHIN_PKCS12_ITERATIONS: '1',
      // HAISHIN_VERIFY_EVERY as shipped (60 s): an install is checked in the session that
      // acknowledged it; with 2 s a loaded machine pushed for checks already under way (> 1.1 per iPad).
    };
    // A first: it takes the leases (and the Apps and Books notifications of the token it registers).
    a = await serveOn(env);
    await eventually('A holds the engine tick', async () =>
      (await held(a)).includes('engine tick') ? true : undefined,
    );
    b = await serveOn(env);
    // Registered through B: Apple's notifications for the token go to B's URL, while A follows the
    // events — B keeps them in the database for A.
    const api = adminApi(b.baseUrl, ADMIN);
    const root = new URL(a.enrollUrl).searchParams.get('group')!;
    const token = await api<{ id: string }>('POST', '/vpp-tokens', {
      groupId: root,
      sToken: readFileSync(fakes.info.tokenFile, 'utf8'),
    });
    expect(token.status).toBe(201);
    expect((await api('PUT', `/groups/${root}/auto-assign-token`, { tokenId: token.body.id })).status).toBe(
      200,
    );
    const catalog = new Map(
      SCENARIO_APPS.map((app) => [Number(app.adamId), { ...app, version: '1.0' }] as const),
    );
    for (let i = 0; i < 2 * PER_PROCESS; i++)
      devices.push(
        fleet.add(new SimDevice({ spec: { serialNumber: `SO${String(i).padStart(8, '0')}` }, catalog })),
      );
    // Half enroll through each process: each iPad then talks to the process whose URL its profile carries.
    await mapLimit(devices, 8, (d, i) => d.enroll(i < PER_PROCESS ? a.enrollUrl : b.enrollUrl));
  }, 180_000);

  afterAll(async () => {
    relay?.close();
    await a?.proc.kill('SIGKILL');
    await b?.proc.kill('SIGKILL');
    await fleet.idle();
    await fakes?.proc.kill();
    postgres?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it(
    'the timed work runs in one process; iPads of both install, each licence asked once, about one push each; kill -9 of the holder hands the work to the other',
    { timeout: 240_000 },
    async () => {
      // (Work with a longer period — the Apps and Books poll, upkeep, compaction — goes to whichever
      // process's timer fires first once it is free.)
      expect(await held(a)).toContain('engine tick');
      expect(await held(b)).not.toContain('engine tick');
      const before = await control(`${fakes.info.control}/stats`);
      // Asked of B: the distribution is rows in the shared database; A's tick moves it.
      const created = await adminApi(b.baseUrl, ADMIN)<{ id: string; jobCount: number }>(
        'POST',
        '/distributions',
        {
          kind: 'install',
          tokenId: (await adminApi(b.baseUrl, ADMIN)<{ items: { id: string }[] }>('GET', '/vpp-tokens')).body
            .items[0]!.id,
          adamIds: [NOTE.adamId],
          targets: { groupIds: [new URL(a.enrollUrl).searchParams.get('group')!] },
          licenseMode: 'auto',
        },
      );
      expect(created.status).toBe(201);
      expect(created.body.jobCount).toBe(2 * PER_PROCESS);
      const counts = await eventually('the distribution settles', async () =>
        settled(
          (
            await adminApi(b.baseUrl, ADMIN)<{ counts: Record<string, number> }>(
              'GET',
              `/distributions/${created.body.id}`,
            )
          ).body.counts,
        ),
      );
      expect(counts).toEqual({ success: 2 * PER_PROCESS });
      const after = await control(`${fakes.info.control}/stats`);
      const serials = after.vpp.associate.slice(before.vpp.associate.length).flatMap((r) => r.serials);
      expect(serials.sort()).toEqual(devices.map((d) => d.serialNumber).sort());
      expect(after.apns.requests - before.apns.requests).toBeLessThanOrEqual(
        Math.ceil(2 * PER_PROCESS * 1.1),
      );
      expect(devices.every((d) => d.apps.get(NOTE.bundleId)?.managedStatus === 'Managed')).toBe(true);
      // B kept Apple's notifications (the token's test notification, the associations') and A
      // applied them: nothing is left waiting, and the test notification is on record.
      const db = new pg.Client({ connectionString: postgres.url });
      await db.connect();
      try {
        const left = await db.query<{ n: number }>('select count(*)::int as n from vpp_notification_inbox');
        expect(left.rows[0]!.n).toBe(0);
        const tests = await db.query<{ n: number }>(
          "select count(*)::int as n from audit_events where action = 'token.notification_test'",
        );
        expect(tests.rows[0]!.n).toBeGreaterThanOrEqual(1);
      } finally {
        await db.end();
      }

      // The holder dies without a word: after the lease's 30 s, B does the timed work.
      await a.proc.kill('SIGKILL');
      const taken = await eventually(
        'B takes the engine tick over',
        async () => {
          const mine = await held(b);
          return mine.includes('engine tick') ? mine : undefined;
        },
        90_000,
        500,
      );
      expect(taken).toContain('engine tick');
    },
  );
});

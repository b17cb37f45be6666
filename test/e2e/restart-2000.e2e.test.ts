// kill -9 of `haishin serve` in the middle of a big distribution, and a restart on the same database.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakes } from '../../src/sim/fakes.ts';
import type { Fakes } from '../../src/sim/fakes.ts';
import { SimDevice } from '../../src/sim/device/device.ts';
import { mapLimit, SimFleet } from '../../src/sim/fleet.ts';
import { FakeVppService } from '../../src/sim/vpp/server.ts';
import { startServe, testServeEnv } from './support.ts';
import type { HaishinProcess } from './support.ts';

const DEVICES = Number(process.env.HAISHIN_RESTART_DEVICES ?? 2000);
const ADMIN = 'restart-admin-token-0123456789';
const APP = {
  adamId: '1450004444',
  name: '再起動テスト',
  bundleId: 'jp.example.restart',
  sizeBytes: 20_000_000,
};
/** A second app: each iPad has two installs in flight when the plug is pulled. */
const APP2 = {
  adamId: '1450004445',
  name: '再起動テスト2',
  bundleId: 'jp.example.restart2',
  sizeBytes: 30_000_000,
};
const APPS = [APP, APP2];
const JOBS = DEVICES * APPS.length;

describe('durability', () => {
  const fleet = new SimFleet();
  let fakes: Fakes;
  let serve: HaishinProcess | null = null;
  let dir: string;
  let baseUrl: string;
  let env: Record<string, string>;
  let enrollUrl = '';

  const startServer = async () => {
    const started = await startServe(env);
    enrollUrl ||= started.enrollUrl;
    return started.proc;
  };

  const api = async <T>(
    method: string,
    path: string,
    body?: unknown,
  ): Promise<{ status: number; body: T }> => {
    const r = await fetch(`${baseUrl}/api/v1${path}`, {
      method,
      headers: { authorization: `Bearer ${ADMIN}`, ...(body ? { 'content-type': 'application/json' } : {}) },
      ...(body ? { body: JSON.stringify(body) } : {}),
    });
    return { status: r.status, body: (await r.json()) as T };
  };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'haishin-restart-'));
    fakes = await startFakes({
      dir: join(dir, 'apple'),
      vpp: { eventDelayMs: 30 },
      apps: APPS.map((a) => ({ ...a, minimumOsVersion: '15.0', contentRating: '4+' })),
      onPush: (token) => void fleet.wake(token),
    });
    const served = await testServeEnv({ fakesEnv: fakes.env, dir, admin: ADMIN });
    baseUrl = served.baseUrl;
    env = { ...served.env, HAISHIN_VERIFY_EVERY: '2s' };
    serve = await startServer();
  }, 60_000);

  afterAll(async () => {
    await serve?.kill('SIGKILL');
    await fleet.idle();
    await fakes?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it(
    `kill -9 in the middle of a ${DEVICES}-device distribution of two apps (both in flight per iPad): after a restart every job finishes, no serial is associated twice, no job attempt gets two commands`,
    { timeout: 420_000 },
    async () => {
      const root = (
        await api<{ items: { id: string; parentId: string | null }[] }>('GET', '/groups')
      ).body.items.find((g) => g.parentId === null)!.id;
      const sToken = FakeVppService.tokenFile(
        'restart',
        '教育委員会',
        new Date(Date.now() + 200 * 86_400_000),
      );
      fakes.vpp.addToken({ sToken, orgName: '教育委員会', locationName: 'restart' });
      for (const app of APPS) fakes.vpp.addAsset(sToken, { adamId: app.adamId, total: DEVICES + 10 });
      const token = await api<{ id: string }>('POST', '/vpp-tokens', { groupId: root, sToken });
      expect(token.status).toBe(201);
      await api('PUT', `/groups/${root}/auto-assign-token`, { tokenId: token.body.id });

      const catalog = new Map(APPS.map((a) => [Number(a.adamId), { ...a, version: '1.0' }] as const));
      const devices = Array.from({ length: DEVICES }, (_, i) =>
        fleet.add(new SimDevice({ spec: { serialNumber: `RS${String(i).padStart(10, '0')}` }, catalog })),
      );
      await mapLimit(devices, 16, (d) => d.enroll(enrollUrl));

      const created = await api<{ id: string; jobCount: number }>('POST', '/distributions', {
        kind: 'install',
        tokenId: token.body.id,
        adamIds: APPS.map((a) => a.adamId),
        targets: { groupIds: [root] },
        licenseMode: 'auto',
      });
      expect(created.body.jobCount).toBe(JOBS);

      // Let it get going, then pull the plug.
      const progress = async () =>
        (await api<{ counts: Record<string, number> }>('GET', `/distributions/${created.body.id}`)).body
          .counts;
      for (let i = 0; i < 600; i++) {
        const c = await progress();
        if ((c.success ?? 0) >= JOBS * 0.2) break;
        await new Promise((r) => setTimeout(r, 50));
      }
      const before = await progress();
      expect(before.success ?? 0).toBeLessThan(JOBS);
      await serve!.kill('SIGKILL');
      await fleet.idle();
      serve = await startServer();

      let counts: Record<string, number> = {};
      for (let i = 0; i < 2400; i++) {
        counts = await progress();
        if ((counts.success ?? 0) === JOBS) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      expect(counts).toEqual({ success: JOBS });
      // Every (app, serial) associated exactly once.
      const associated = fakes.vpp
        .submittedRequests('ASSOCIATE')
        .flatMap((r) => r.adamIds.flatMap((a) => r.serials.map((serial) => `${a}:${serial}`)));
      expect(new Set(associated).size).toBe(JOBS);
      expect(associated.length).toBe(JOBS);

      const db = new Database(join(dir, 'haishin.db'), { readonly: true });
      try {
        const installs = db
          .prepare("select count(*) as n from commands where request_type = 'InstallApplication'")
          .get() as { n: number };
        const attempts = db
          .prepare('select count(*) as n, count(distinct command_uuid) as d from jobs')
          .get() as { n: number; d: number };
        expect(installs.n).toBe(JOBS);
        expect(attempts).toEqual({ n: JOBS, d: JOBS });
      } finally {
        db.close();
      }
      for (const app of APPS)
        expect(devices.every((d) => d.apps.get(app.bundleId)?.managedStatus === 'Managed')).toBe(true);
    },
  );
});

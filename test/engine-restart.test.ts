import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateDemoPushIdentity } from '../src/apple/apns/pushcert.ts';
import { freePort } from '../src/cli/net.ts';
import { systemClock } from '../src/core/clock.ts';
import { FakeApns } from '../src/sim/apns/server.ts';
import { FakeAppMeta } from '../src/sim/appmeta/server.ts';
import { SimDevice } from '../src/sim/device/device.ts';
import { mapLimit, SimFleet } from '../src/sim/fleet.ts';
import { FakeVppService } from '../src/sim/vpp/server.ts';

const repo = resolve(fileURLToPath(import.meta.url), '../..');
const DEVICES = Number(process.env.HAISHIN_RESTART_DEVICES ?? 2000);
const ADMIN = 'restart-admin-token-0123456789';
const APP = {
  adamId: '1450004444',
  name: '再起動テスト',
  bundleId: 'jp.example.restart',
  sizeBytes: 20_000_000,
};

describe('durability', () => {
  const fleet = new SimFleet();
  const vpp = new FakeVppService({ eventDelayMs: 30 });
  const appMeta = new FakeAppMeta();
  let fakeApns: FakeApns;
  let child: ChildProcess | null = null;
  let dir: string;
  let port: number;
  let childEnv: string;

  function startChild(): Promise<ChildProcess> {
    return new Promise((ready, fail) => {
      const proc = spawn(process.execPath, ['--import', 'tsx', join(repo, 'test/support/child-server.ts')], {
        cwd: repo,
        env: { ...process.env, HAISHIN_CHILD: childEnv },
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      let out = '';
      proc.stdout!.on('data', (chunk: Buffer) => {
        out += chunk.toString();
        if (out.includes('READY')) ready(proc);
      });
      proc.once('exit', (code) => fail(new Error(`child server exited early (${code})`)));
    });
  }

  const api = async <T>(
    method: string,
    path: string,
    body?: unknown,
  ): Promise<{ status: number; body: T }> => {
    const r = await fetch(`http://127.0.0.1:${port}/api/v1${path}`, {
      method,
      headers: { authorization: `Bearer ${ADMIN}`, ...(body ? { 'content-type': 'application/json' } : {}) },
      ...(body ? { body: JSON.stringify(body) } : {}),
    });
    return { status: r.status, body: (await r.json()) as T };
  };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'haishin-restart-'));
    const push = generateDemoPushIdentity(systemClock.now());
    fakeApns = new FakeApns({ accept: [push.certPem], onPush: (token) => void fleet.wake(token) });
    await fakeApns.listen();
    appMeta.add({ ...APP, minimumOsVersion: '15.0', contentRating: '4+' });
    port = await freePort();
    childEnv = JSON.stringify({
      db: `sqlite:${join(dir, 'haishin.db')}`,
      port,
      env: {
        HAISHIN_ADMIN_TOKEN: ADMIN,
        HAISHIN_VPP_URL: await vpp.listen(),
        HAISHIN_APPMETA_URL: await appMeta.listen(),
      },
      apnsUrl: fakeApns.url,
      apnsCa: fakeApns.caPem,
      push: { ...push, notAfter: push.notAfter.toISOString() },
      secretKey: 'restart-secret-key-0123456789',
    });
    child = await startChild();
  }, 60_000);

  afterAll(async () => {
    child?.kill('SIGKILL');
    await fleet.idle();
    await fakeApns?.close();
    await vpp.close();
    await appMeta.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it(
    `kill -9 in the middle of a ${DEVICES}-device distribution: after a restart every job finishes, no serial is associated twice, no job attempt gets two commands`,
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
      vpp.addToken({ sToken, orgName: '教育委員会', locationName: 'restart' });
      vpp.addAsset(sToken, { adamId: APP.adamId, total: DEVICES + 10 });
      const token = await api<{ id: string }>('POST', '/vpp-tokens', { groupId: root, sToken });
      expect(token.status).toBe(201);
      await api('PUT', `/groups/${root}/auto-assign-token`, { tokenId: token.body.id });

      const catalog = new Map([[Number(APP.adamId), { ...APP, version: '1.0' }]]);
      const devices = Array.from({ length: DEVICES }, (_, i) =>
        fleet.add(new SimDevice({ spec: { serialNumber: `RS${String(i).padStart(10, '0')}` }, catalog })),
      );
      await mapLimit(devices, 16, (d) => d.enroll(`http://127.0.0.1:${port}/mdm/enroll?group=${root}`));

      const created = await api<{ id: string; jobCount: number }>('POST', '/distributions', {
        kind: 'install',
        tokenId: token.body.id,
        adamIds: [APP.adamId],
        targets: { groupIds: [root] },
        licenseMode: 'auto',
      });
      expect(created.body.jobCount).toBe(DEVICES);

      // Let it get going, then pull the plug.
      const progress = async () =>
        (await api<{ counts: Record<string, number> }>('GET', `/distributions/${created.body.id}`)).body
          .counts;
      for (let i = 0; i < 600; i++) {
        const c = await progress();
        if ((c.success ?? 0) >= DEVICES * 0.2) break;
        await new Promise((r) => setTimeout(r, 50));
      }
      const before = await progress();
      expect(before.success ?? 0).toBeLessThan(DEVICES);
      child!.kill('SIGKILL');
      await new Promise((r) => child!.once('exit', r));
      await fleet.idle();
      child = await startChild();

      let counts: Record<string, number> = {};
      for (let i = 0; i < 2400; i++) {
        counts = await progress();
        if ((counts.success ?? 0) === DEVICES) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      expect(counts).toEqual({ success: DEVICES });
      const associated = vpp.submittedSerials('ASSOCIATE');
      expect(new Set(associated).size).toBe(DEVICES);
      expect(associated.length).toBe(DEVICES);

      const db = new Database(join(dir, 'haishin.db'), { readonly: true });
      try {
        const installs = db
          .prepare("select count(*) as n from commands where request_type = 'InstallApplication'")
          .get() as { n: number };
        const attempts = db
          .prepare('select count(*) as n, count(distinct command_uuid) as d from jobs')
          .get() as { n: number; d: number };
        expect(installs.n).toBe(DEVICES);
        expect(attempts).toEqual({ n: DEVICES, d: DEVICES });
      } finally {
        db.close();
      }
      expect(devices.every((d) => d.apps.get(APP.bundleId)?.managedStatus === 'Managed')).toBe(true);
    },
  );
});

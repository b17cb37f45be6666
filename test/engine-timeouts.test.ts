import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { World } from './support/world.ts';
import type { CatalogApp } from './support/world.ts';

const APP: CatalogApp = {
  adamId: '1450002222',
  name: '時間切れ教材',
  bundleId: 'jp.example.timeout',
  sizeBytes: 10_000_000,
  licences: 10,
};
const APP2: CatalogApp = {
  adamId: '1450002223',
  name: '二本目',
  bundleId: 'jp.example.second',
  sizeBytes: 10_000_000,
  licences: 10,
};
const MASS: CatalogApp = {
  adamId: '1450002224',
  name: '一斉配信',
  bundleId: 'jp.example.mass',
  sizeBytes: 10_000_000,
  licences: 30,
};

let world: World;
beforeAll(async () => {
  world = await World.start([APP, APP2, MASS], {
    HAISHIN_PUSH_TIMEOUT: '1s',
    HAISHIN_SESSION_TIMEOUT: '30s',
    HAISHIN_REQUEST_TIMEOUT: '3s',
  });
});
afterAll(async () => {
  await world?.close();
});

describe('timeouts (configurable, swept in batches)', () => {
  it(
    'an iPad that never fetches its command → push_timeout; one that never answers → request_timeout, and the install queued behind it, never fetched → push_timeout',
    { timeout: 30_000 },
    async () => {
      const school = await world.group('時間切れ校');
      const token = await world.token(school, [APP, APP2], 'timeouts');
      const [off, silent] = await world.devices(2, [school], () => ({}), 'TO');
      off!.online = false;
      silent!.behaviours.set('InstallApplication', { kind: 'silent' });
      const created = await world.api<{ id: string }>('POST', '/distributions', {
        kind: 'install',
        tokenId: token.id,
        adamIds: [APP.adamId, APP2.adamId],
        targets: { groupIds: [school] },
        licenseMode: 'auto',
      });
      const counts = await world.settle(created.body.id, 20_000);
      const jobs = (
        await world.api<{ items: { id: string; deviceId: string; status: string; adamId: string }[] }>(
          'GET',
          `/jobs?distributionId=${created.body.id}`,
        )
      ).body.items;
      const ids = await Promise.all(
        [off!, silent!].map(
          async (d) =>
            (await world.api<{ items: { id: string }[] }>('GET', `/devices?serialNumber=${d.serialNumber}`))
              .body.items[0]!.id,
        ),
      );
      const statusesOf = (deviceId: string) =>
        jobs
          .filter((j) => j.deviceId === deviceId)
          .map((j) => j.status)
          .sort();
      expect(statusesOf(ids[0]!)).toContain('push_timeout');
      // Both installs went out together (two slots); the device keeps being handed the first one it
      // never answers, so the second is never fetched.
      expect(statusesOf(ids[1]!)).toEqual(['push_timeout', 'request_timeout']);
      expect(Object.keys(counts).sort()).toEqual(expect.arrayContaining(['push_timeout', 'request_timeout']));
      const offline = jobs.find((j) => j.deviceId === ids[0] && j.status === 'push_timeout')!;
      const diagnosis = await world.api<{ causes: { code: string }[] }>(
        'GET',
        `/jobs/${offline.id}/diagnosis`,
      );
      expect(diagnosis.body.causes.map((c) => c.code)).toContain('device.powered_off_or_offline');
    },
  );

  it(
    'a mass failure is diagnosed in the background a few at a time, every job in the end',
    { timeout: 30_000 },
    async () => {
      const school = await world.group('一斉停止校');
      const token = await world.token(school, [MASS], 'mass');
      const ipads = await world.devices(24, [school], () => ({}), 'MS');
      for (const ipad of ipads) ipad.online = false;
      const engine = world.server.haishin.engine;
      const diagnose = engine.diagnose.bind(engine);
      let running = 0;
      let most = 0;
      engine.diagnose = async (job) => {
        most = Math.max(most, ++running);
        try {
          return await diagnose(job);
        } finally {
          running--;
        }
      };
      try {
        const created = await world.api<{ id: string }>('POST', '/distributions', {
          kind: 'install',
          tokenId: token.id,
          adamIds: [MASS.adamId],
          targets: { groupIds: [school] },
          licenseMode: 'auto',
        });
        expect(await world.settle(created.body.id, 20_000)).toEqual({ push_timeout: 24 });
        for (let i = 0; i < 500 && engine.pendingDiagnoses > 0; i++)
          await new Promise((r) => setTimeout(r, 20));
        expect(engine.pendingDiagnoses).toBe(0);
        const jobs = (
          await world.api<{ items: { id: string }[] }>('GET', `/jobs?distributionId=${created.body.id}`)
        ).body.items;
        for (const job of jobs) {
          const detail = await world.api<{ diagnosis: { causes: { code: string }[] } | null }>(
            'GET',
            `/jobs/${job.id}`,
          );
          expect(detail.body.diagnosis?.causes.map((c) => c.code)).toContain('device.powered_off_or_offline');
        }
        expect(most).toBeGreaterThan(0);
        expect(most).toBeLessThanOrEqual(4);
      } finally {
        engine.diagnose = diagnose;
      }
    },
  );
});

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { postgresAvailable, postgresSkipReason, startPostgres } from './support/pg.ts';
import type { ThrowawayPostgres } from './support/pg.ts';
import { World } from './support/world.ts';
import type { CatalogApp } from './support/world.ts';

if (!postgresAvailable) console.warn(`[engine-pg.test] ${postgresSkipReason}`);

const APP: CatalogApp = {
  adamId: '1450001111',
  name: 'PG教材',
  bundleId: 'jp.example.pg',
  sizeBytes: 50_000_000,
  licences: 28,
};

describe.skipIf(!postgresAvailable)('the same engine on PostgreSQL', () => {
  let pg: ThrowawayPostgres;
  let world: World;
  beforeAll(async () => {
    pg = await startPostgres();
    world = await World.start([APP], { HAISHIN_DB: pg.url });
  });
  afterAll(async () => {
    await world?.close();
    pg?.stop();
  });

  it(
    '30 iPads: licences batched, a shortage fails only the jobs beyond it, NotNow retried, history kept',
    { timeout: 90_000 },
    async () => {
      const school = await world.group('PG校');
      const token = await world.token(school, [APP], 'pg');
      const devices = await world.devices(30, [school], () => ({}), 'PG');
      devices[0]!.behaviours.set('InstallApplication', { kind: 'not_now' });
      const created = await world.api<{ id: string }>('POST', '/distributions', {
        kind: 'install',
        tokenId: token.id,
        adamIds: [APP.adamId],
        targets: { groupIds: [school] },
        licenseMode: 'auto',
      });
      const deadline = Date.now() + 30_000;
      while (Date.now() < deadline) {
        const { body } = await world.api<{ counts: Record<string, number> }>(
          'GET',
          `/distributions/${created.body.id}`,
        );
        if ((body.counts.retry_waiting ?? 0) > 0 || (body.counts.success ?? 0) >= 27) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      devices[0]!.behaviours.delete('InstallApplication');
      await devices[0]!.connect();
      const counts = await world.settle(created.body.id, 60_000);
      expect(counts).toEqual({ success: 28, license_failed: 2 });
      const jobs = (
        await world.api<{ items: { id: string; status: string; reason: string }[] }>(
          'GET',
          `/jobs?distributionId=${created.body.id}&limit=100`,
        )
      ).body.items;
      expect(
        jobs.filter((j) => j.status === 'license_failed').every((j) => j.reason === 'license 9709'),
      ).toBe(true);
      const detail = await world.api<{ history: { to: string }[] }>(
        'GET',
        `/jobs/${jobs.find((j) => j.status === 'success')!.id}`,
      );
      expect(detail.body.history.at(-1)?.to).toBe('success');
    },
  );
});

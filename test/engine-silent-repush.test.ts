import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { World } from './support/world.ts';
import type { CatalogApp } from './support/world.ts';
import { until } from './support/matrix.ts';

const APP: CatalogApp = {
  adamId: '1450003333',
  name: '途切れた教材',
  bundleId: 'jp.example.silent',
  sizeBytes: 10_000_000,
  licences: 5,
};

let world: World;
beforeAll(async () => {
  // The session timeout is far away: only the re-push can end the job within the test.
  // Set as an administrator would: through the environment, read by the same composition serve uses.
  world = await World.start([APP], { HAISHIN_SESSION_TIMEOUT: '10m', HAISHIN_SILENT_REPUSH: '1s' });
});
afterAll(async () => {
  await world?.close();
});

describe('a device whose session broke after it was handed the command (issue 15)', () => {
  it(
    'is pushed again while silent, fetches the command still queued, and the job succeeds',
    { timeout: 30_000 },
    async () => {
      const school = await world.group('途切れ校');
      const token = await world.token(school, [APP], 'silent');
      const [ipad] = await world.devices(1, [school], () => ({}), 'SR');
      // The first hand-over is lost: the iPad takes the command and its session ends without an answer.
      ipad!.behaviours.set('InstallApplication', { kind: 'silent' });
      const created = await world.api<{ id: string }>('POST', '/distributions', {
        kind: 'install',
        tokenId: token.id,
        adamIds: [APP.adamId],
        targets: { groupIds: [school] },
        licenseMode: 'auto',
      });
      const jobOf = async () =>
        (
          await world.api<{ items: { id: string; status: string }[] }>(
            'GET',
            `/jobs?distributionId=${created.body.id}`,
          )
        ).body.items[0];
      await until('the command handed over', async () => (await jobOf())?.status === 'awaiting_response');
      expect((await jobOf())?.status).toBe('awaiting_response');
      const pushesBefore = world.apnsFake.countFor(ipad!.pushToken.toString('hex'));
      const handedBefore = ipad!.received.filter((t) => t === 'InstallApplication').length;
      expect(handedBefore).toBe(1);

      // The iPad behaves again; nothing but a push brings it back before the session timeout.
      ipad!.behaviours.delete('InstallApplication');
      expect(await world.settle(created.body.id, 20_000)).toEqual({ success: 1 });
      expect(world.apnsFake.countFor(ipad!.pushToken.toString('hex'))).toBeGreaterThan(pushesBefore);
      // The same command, still queued, was handed out again and answered.
      expect(ipad!.received.filter((t) => t === 'InstallApplication').length).toBe(2);
    },
  );
});

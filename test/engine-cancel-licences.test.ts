import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { World } from './support/world.ts';
import type { CatalogApp } from './support/world.ts';
import { until } from './support/matrix.ts';

const APP: CatalogApp = {
  adamId: '1450004444',
  name: '取り消し教材',
  bundleId: 'jp.example.cancel',
  sizeBytes: 10_000_000,
  licences: 5,
};

let world: World;
beforeAll(async () => {
  world = await World.start([APP], { HAISHIN_PUSH_TIMEOUT: '10m' });
});
afterAll(async () => {
  await world?.close();
});

describe('cancelling an install gives back the licence haishin took for it (auto mode)', () => {
  it(
    'before the command reached the iPad: the licence goes back; after it: the licence stays',
    { timeout: 40_000 },
    async () => {
      const school = await world.group('取り消し校');
      const token = await world.token(school, [APP], 'cancel');
      const [offline, silent] = await world.devices(2, [school], () => ({}), 'CL');
      // One iPad never wakes (its job waits in push_sending), the other takes the command and never answers.
      offline!.online = false;
      silent!.behaviours.set('InstallApplication', { kind: 'silent' });
      const created = await world.api<{ id: string }>('POST', '/distributions', {
        kind: 'install',
        tokenId: token.id,
        adamIds: [APP.adamId],
        targets: { groupIds: [school] },
        licenseMode: 'auto',
      });
      const jobs = async () =>
        (
          await world.api<{ items: { id: string; deviceId: string; status: string }[] }>(
            'GET',
            `/jobs?distributionId=${created.body.id}`,
          )
        ).body.items;
      const deviceId = async (serial: string) =>
        (await world.api<{ items: { id: string }[] }>('GET', `/devices?serialNumber=${serial}`)).body
          .items[0]!.id;
      const offlineId = await deviceId(offline!.serialNumber);
      const silentId = await deviceId(silent!.serialNumber);
      await until('one job in push_sending and one awaiting the answer', async () => {
        const list = await jobs();
        return (
          list.some((j) => j.deviceId === offlineId && j.status === 'push_sending') &&
          list.some((j) => j.deviceId === silentId && j.status === 'awaiting_response')
        );
      });
      const holders = () => world.vpp.holders(token.sToken, APP.adamId);
      expect(holders().sort()).toEqual([offline!.serialNumber, silent!.serialNumber].sort());

      for (const job of await jobs()) {
        const cancelled = await world.api('POST', `/jobs/${job.id}/cancel`);
        expect(cancelled.status).toBe(200);
      }
      expect((await jobs()).map((j) => j.status)).toEqual(['cancelled', 'cancelled']);
      // The iPad that never got the command holds no licence any more; the one that did keeps it
      // (it may be installing the app right now).
      await until('the licence to go back', async () => !holders().includes(offline!.serialNumber));
      expect(holders()).toEqual([silent!.serialNumber]);
    },
  );

  it(
    'cancelling a whole distribution gives the licences back in one reclaim per app',
    { timeout: 40_000 },
    async () => {
      const school = await world.group('一括取り消し校');
      const token = await world.token(school, [APP], 'bulk');
      const ipads = await world.devices(3, [school], () => ({}), 'CB');
      for (const ipad of ipads) ipad.online = false;
      const created = await world.api<{ id: string }>('POST', '/distributions', {
        kind: 'install',
        tokenId: token.id,
        adamIds: [APP.adamId],
        targets: { groupIds: [school] },
        licenseMode: 'auto',
      });
      const holders = () => world.vpp.holders(token.sToken, APP.adamId);
      await until('three licences assigned', async () => holders().length === 3);
      const before = world.vpp.calls('POST assets/disassociate');
      const cancelled = await world.api<{ changed: number }>(
        'POST',
        `/distributions/${created.body.id}/cancel`,
      );
      expect(cancelled.body.changed).toBe(3);
      await until('the licences to go back', async () => holders().length === 0);
      expect(world.vpp.calls('POST assets/disassociate') - before).toBe(1);
    },
  );
});

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { World } from './support/world.ts';
import type { CatalogApp } from './support/world.ts';

const APP: CatalogApp = {
  adamId: '1450009999',
  name: '学習アプリ',
  bundleId: 'jp.example.study',
  sizeBytes: 90_000_000,
  licences: 1200,
};

let world: World;
beforeAll(async () => {
  world = await World.start([APP]);
});
afterAll(async () => {
  await world?.close();
});

describe('distribution at scale (issue acceptance)', () => {
  it(
    '1,000 simulated iPads in a group tree, one app, auto mode: all succeed, ≤ 2 associate calls, ≤ 1.2 pushes per device',
    { timeout: 240_000 },
    async () => {
      const board = await world.group('市教育委員会');
      const schools = [
        await world.group('A小学校', board),
        await world.group('B小学校', board),
        await world.group('C中学校', board),
      ];
      const classes: string[] = [];
      for (const s of schools) for (const name of ['1組', '2組']) classes.push(await world.group(name, s));
      const token = await world.token(board, [APP], 'scale');
      for (const g of [...schools, ...classes])
        await world.api('POST', `/vpp-tokens/${token.id}/shares`, { groupId: g });
      const devices = await world.devices(1000, [board, ...schools, ...classes], () => ({}), 'S');
      world.vpp.resetCounters();
      const pushesBefore = world.apnsFake.stats.requests;
      const created = await world.api<{ id: string; jobCount: number }>('POST', '/distributions', {
        kind: 'install',
        tokenId: token.id,
        adamIds: [APP.adamId],
        targets: { groupIds: [board], includeSubgroups: true },
        licenseMode: 'auto',
      });
      expect(created.body.jobCount).toBe(1000);
      expect(await world.settle(created.body.id, 180_000)).toEqual({ success: 1000 });
      expect(world.vpp.calls('POST assets/associate')).toBeLessThanOrEqual(2);
      expect((world.apnsFake.stats.requests - pushesBefore) / devices.length).toBeLessThanOrEqual(1.2);
      expect(world.vpp.holders(token.sToken, APP.adamId)).toHaveLength(1000);
    },
  );
});

// GET /jobs and GET /jobs/:id name the device by its number (端末番号) and the app by its name,
// so the console can show people's words instead of ids.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { World } from './support/world.ts';
import type { CatalogApp } from './support/world.ts';

const APP: CatalogApp = {
  adamId: '361285611',
  name: '算数ドリル',
  bundleId: 'jp.example.drill',
  sizeBytes: 20_000_000,
  licences: 10,
};

interface LabelledJob {
  id: string;
  deviceId: string;
  adamId: string;
  status: string;
  deviceNumber: number | null;
  appName: string | null;
}

describe('job lists carry the device number and the app name', () => {
  let world: World;
  let distributionId = '';
  const numberOf = new Map<string, number>();

  beforeAll(async () => {
    world = await World.start([APP]);
    const school = await world.group('ラベル小学校');
    const token = await world.token(school, [APP], 'labels');
    await world.devices(3, [school], () => ({}), 'LBL');
    const created = await world.api<{ id: string }>('POST', '/distributions', {
      kind: 'install',
      tokenId: token.id,
      adamIds: [APP.adamId],
      targets: { groupIds: [school] },
      licenseMode: 'auto',
    });
    expect(created.status).toBe(201);
    distributionId = created.body.id;
    await world.settle(distributionId);
    const devices = await world.api<{ items: { id: string; deviceNumber: number }[] }>(
      'GET',
      `/devices?groupId=${school}`,
    );
    for (const d of devices.body.items) numberOf.set(d.id, d.deviceNumber);
    expect(numberOf.size).toBe(3);
  }, 60_000);

  afterAll(async () => {
    await world?.close();
  });

  it('GET /jobs: every item, on every page, has the device number and the app name next to the ids', async () => {
    const seen: LabelledJob[] = [];
    let cursor: string | null = null;
    do {
      const res: { status: number; body: { items: LabelledJob[]; nextCursor: string | null } } =
        await world.api(
          'GET',
          `/jobs?distributionId=${distributionId}&limit=2${cursor ? `&cursor=${cursor}` : ''}`,
        );
      expect(res.status).toBe(200);
      seen.push(...res.body.items);
      cursor = res.body.nextCursor;
    } while (cursor);
    expect(seen).toHaveLength(3);
    for (const j of seen) {
      expect(j.deviceNumber).toBe(numberOf.get(j.deviceId));
      expect(j.appName).toBe(APP.name);
      expect(j.adamId).toBe(APP.adamId);
      expect(j.status).toBe('success');
    }
  });

  it('GET /jobs filtered by device, and GET /jobs/:id with its history, carry them too', async () => {
    const [deviceId, deviceNumber] = [...numberOf.entries()][1]!;
    const list = await world.api<{ items: LabelledJob[] }>('GET', `/jobs?deviceId=${deviceId}`);
    expect(list.body.items.map((j) => j.deviceNumber)).toEqual([deviceNumber]);
    const one = await world.api<LabelledJob & { history: { to: string }[]; distributionId: string }>(
      'GET',
      `/jobs/${list.body.items[0]!.id}`,
    );
    expect(one.status).toBe(200);
    expect(one.body).toMatchObject({ deviceNumber, appName: APP.name, deviceId, distributionId });
    expect(one.body.history.at(-1)?.to).toBe('success');
    const missing = await world.api<{ error: { code: string } }>('GET', '/jobs/no-such-job');
    expect(missing.status).toBe(404);
    expect(missing.body.error.code).toBe('job.not_found');
  });

  it('the OpenAPI document declares both fields for GET /jobs and GET /jobs/{id}', async () => {
    // The document is walked by path below; a wrong path fails the test with a TypeError, which is the point.
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    const doc: any = await (await fetch(`${world.server.baseUrl}/api/v1/openapi.json`)).json();
    const list = doc.paths['/api/v1/jobs'].get.responses['200'].content['application/json'].schema;
    const item = list.properties.items.items.properties;
    expect(Object.keys(item)).toEqual(expect.arrayContaining(['id', 'deviceId', 'deviceNumber', 'appName']));
    const one = doc.paths['/api/v1/jobs/{id}'].get.responses['200'].content['application/json'].schema;
    expect(Object.keys(one.properties)).toEqual(
      expect.arrayContaining(['deviceNumber', 'appName', 'history', 'diagnosis']),
    );
  });

  it('GET /distributions and GET /distributions/:id name the apps; an app the token does not hold has no name', async () => {
    const one = await world.api<{ adamIds: string[]; apps: { adamId: string; name: string | null }[] }>(
      'GET',
      `/distributions/${distributionId}`,
    );
    expect(one.body.apps).toEqual([{ adamId: APP.adamId, name: APP.name }]);
    const list = await world.api<{
      items: { id: string; apps: { adamId: string; name: string | null }[] }[];
    }>('GET', '/distributions');
    expect(list.body.items.find((d) => d.id === distributionId)?.apps).toEqual([
      { adamId: APP.adamId, name: APP.name },
    ]);
    const tokenId = (await world.api<{ tokenId: string }>('GET', `/distributions/${distributionId}`)).body
      .tokenId;
    const unknown = await world.api<{ id: string }>('POST', '/distributions', {
      kind: 'install',
      tokenId,
      adamIds: ['999000111', APP.adamId],
      targets: { deviceIds: [...numberOf.keys()].slice(0, 1) },
      licenseMode: 'manual',
      scheduledAt: new Date(Date.now() + 86_400_000).toISOString(),
    });
    expect(unknown.status).toBe(201);
    const named = await world.api<{ apps: { adamId: string; name: string | null }[] }>(
      'GET',
      `/distributions/${unknown.body.id}`,
    );
    expect(named.body.apps).toEqual([
      { adamId: '999000111', name: null },
      { adamId: APP.adamId, name: APP.name },
    ]);
  });
});

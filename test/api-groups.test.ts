import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SimDevice } from '../src/sim/device/device.ts';
import { startTestServer } from './support/server.ts';
import type { TestServer } from './support/server.ts';

const TOKEN = 'test-admin-token-0123456789abcdef';
let server: TestServer;

beforeAll(async () => {
  server = await startTestServer({ env: { HAISHIN_ADMIN_TOKEN: TOKEN } });
});
afterAll(async () => {
  await server?.close();
});

interface ApiResult<T = Record<string, unknown>> {
  status: number;
  body: T;
}

async function api<T = Record<string, unknown>>(
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<ApiResult<T>> {
  const response = await fetch(`${server.baseUrl}/api/v1${path}`, {
    method,
    headers: {
      authorization: `Bearer ${TOKEN}`,
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      ...headers,
    },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await response.text();
  return { status: response.status, body: (text ? JSON.parse(text) : null) as T };
}

interface ErrorBody {
  error: { code: string; message: string; messages: { ja: string; en: string } };
}
interface GroupBody {
  id: string;
  name: string;
  parentId: string | null;
  path: string[];
}

const createGroup = async (name: string, parentId: string) =>
  (await api<GroupBody>('POST', '/groups', { name, parentId })).body;

describe('admin API foundation', () => {
  it('every documented route answers 401 without a token or with a wrong one', async () => {
    const doc = (await (await fetch(`${server.baseUrl}/api/v1/openapi.json`)).json()) as {
      paths: Record<string, Record<string, unknown>>;
    };
    const operations = Object.entries(doc.paths).flatMap(([path, methods]) =>
      Object.keys(methods).map((m) => [m.toUpperCase(), path] as const),
    );
    expect(operations.length).toBeGreaterThanOrEqual(8);
    for (const [method, path] of operations) {
      const url = `${server.baseUrl}${path.replace(/\{\w+\}/g, 'x')}`;
      const none = await fetch(url, { method });
      expect(none.status, `${method} ${path}`).toBe(401);
      const wrong = await fetch(url, { method, headers: { authorization: 'Bearer nope' } });
      expect(wrong.status, `${method} ${path}`).toBe(401);
      expect(((await wrong.json()) as ErrorBody).error.code).toBe('auth.invalid');
    }
  });

  it('the OpenAPI document lists the group and device routes with their schemas', async () => {
    const doc = (await (await fetch(`${server.baseUrl}/api/v1/openapi.json`)).json()) as {
      openapi: string;
      paths: Record<string, Record<string, { requestBody?: unknown; parameters: { name: string }[] }>>;
    };
    expect(doc.openapi).toMatch(/^3\./);
    expect(Object.keys(doc.paths)).toEqual(
      expect.arrayContaining([
        '/api/v1/groups',
        '/api/v1/groups/{id}',
        '/api/v1/devices',
        '/api/v1/devices/{id}',
      ]),
    );
    expect(doc.paths['/api/v1/groups']!.post!.requestBody).toBeDefined();
    expect(doc.paths['/api/v1/devices']!.get!.parameters.map((p) => p.name)).toEqual(
      expect.arrayContaining(['groupId', 'cursor', 'limit']),
    );
  });

  it('validates input with a clear 400 in both languages', async () => {
    const missing = await api<ErrorBody>('POST', '/groups', { parentId: server.rootGroupId });
    expect(missing.status).toBe(400);
    expect(missing.body.error.code).toBe('request.invalid');
    expect(missing.body.error.message).toContain('name');
    expect(missing.body.error.messages.ja).toContain('リクエスト');
    const extra = await api<ErrorBody>('POST', '/groups', {
      name: 'x',
      parentId: server.rootGroupId,
      colour: 'red',
    });
    expect(extra.status).toBe(400);
    const badLimit = await api<ErrorBody>('GET', '/groups?limit=0');
    expect(badLimit.status).toBe(400);
    const badCursor = await api<ErrorBody>('GET', '/groups?cursor=garbage');
    expect(badCursor.body.error.code).toBe('cursor.invalid');
    const ja = await api<ErrorBody>('GET', '/groups/none', undefined, { 'accept-language': 'ja-JP' });
    expect(ja.status).toBe(404);
    expect(ja.body.error.message).toBe('グループ none は存在しません。');
  });
});

describe('groups', () => {
  it('builds a tree, renames, moves without cycles, and says why in ja/en', async () => {
    const board = await createGroup('教育委員会', server.rootGroupId);
    const school = await createGroup('第一小学校', board.id);
    const klass = await createGroup('1年1組', school.id);
    expect(klass.path).toEqual(['root', '教育委員会', '第一小学校', '1年1組']);

    const cycle = await api<ErrorBody>('PATCH', `/groups/${board.id}`, { parentId: klass.id });
    expect(cycle.status).toBe(409);
    expect(cycle.body.error.code).toBe('group.into_descendant');
    expect(cycle.body.error.messages.ja).toContain('循環');
    expect(cycle.body.error.messages.en).toContain('cycle');
    expect(
      (await api<ErrorBody>('PATCH', `/groups/${school.id}`, { parentId: school.id })).body.error.code,
    ).toBe('group.into_itself');
    expect(
      (await api<ErrorBody>('PATCH', `/groups/${server.rootGroupId}`, { parentId: board.id })).body.error
        .code,
    ).toBe('group.root_cannot_move');

    const second = await createGroup('第二小学校', board.id);
    const moved = await api<GroupBody>('PATCH', `/groups/${klass.id}`, {
      parentId: second.id,
      name: '1年A組',
    });
    expect(moved.status).toBe(200);
    expect(moved.body.path).toEqual(['root', '教育委員会', '第二小学校', '1年A組']);
  });

  it('refuses to delete a group holding devices or subgroups (409), deletes an empty one, never the root', async () => {
    const school = await createGroup('削除テスト校', server.rootGroupId);
    const klass = await createGroup('2年1組', school.id);
    const device = new SimDevice();
    await device.enroll(server.enrollUrl(klass.id));

    const withDevice = await api<ErrorBody>('DELETE', `/groups/${klass.id}`);
    expect(withDevice.status).toBe(409);
    expect(withDevice.body.error.code).toBe('group.not_empty');
    expect(withDevice.body.error.messages.en).toContain('1 device');
    expect(withDevice.body.error.messages.ja).toContain('端末 1 台');
    expect((await api<ErrorBody>('DELETE', `/groups/${school.id}`)).status).toBe(409);
    expect((await api<ErrorBody>('DELETE', `/groups/${server.rootGroupId}`)).body.error.code).toBe(
      'group.root_cannot_delete',
    );

    const empty = await createGroup('空のグループ', school.id);
    expect((await api('DELETE', `/groups/${empty.id}`)).status).toBe(204);
    expect((await api('GET', `/groups/${empty.id}`)).status).toBe(404);
  });

  it('deletes a group its devices enrolled through once they moved away, and one whose profile was fetched but never used', async () => {
    const school = await createGroup('移動元の学校', server.rootGroupId);
    const device = new SimDevice();
    await device.enroll(server.enrollUrl(school.id));
    const { body: listed } = await api<{ items: { id: string; serialNumber: string }[] }>(
      'GET',
      '/devices?limit=1000',
    );
    const id = listed.items.find((d) => d.serialNumber === device.serialNumber)!.id;
    expect((await api('PATCH', `/devices/${id}`, { groupId: server.rootGroupId })).status).toBe(200);
    expect((await api('DELETE', `/groups/${school.id}`)).status).toBe(204);
    // The device still checks in with the identity its profile (made for the deleted group) carries.
    const [idle] = await device.connect();
    expect(idle!.status).toBe(200);

    const unused = await createGroup('使われなかったリンク', server.rootGroupId);
    expect((await fetch(server.enrollUrl(unused.id))).status).toBe(200);
    expect((await api('DELETE', `/groups/${unused.id}`)).status).toBe(204);
  });

  it('paginates with nextCursor until null, without repeats', async () => {
    const parent = await createGroup('ページ', server.rootGroupId);
    for (let i = 0; i < 5; i++) await createGroup(`p${i}`, parent.id);
    const seen: string[] = [];
    let cursor: string | null = null;
    for (let pageNo = 0; pageNo < 10; pageNo++) {
      const query: string = `/groups?parentId=${parent.id}&limit=2${cursor ? `&cursor=${cursor}` : ''}`;
      const res: ApiResult<{ items: GroupBody[]; nextCursor: string | null }> = await api('GET', query);
      seen.push(...res.body.items.map((g) => g.name));
      cursor = res.body.nextCursor;
      if (!cursor) break;
    }
    expect(seen).toEqual(['p0', 'p1', 'p2', 'p3', 'p4']);
  });

  it('writes an audit event for every change', async () => {
    const g = await createGroup('監査', server.rootGroupId);
    await api('PATCH', `/groups/${g.id}`, { name: '監査2' });
    await api('DELETE', `/groups/${g.id}`);
    const events = await server.haishin.store.admin.listAudit({
      objectType: 'group',
      objectId: g.id,
      limit: 10,
    });
    expect(events.map((e) => e.action).sort()).toEqual(['group.create', 'group.delete', 'group.update']);
    expect(events.every((e) => e.actor !== 'unknown' && e.source === '127.0.0.1')).toBe(true);
  });
});

describe('devices', () => {
  it('lists by group (with subgroups), moves a device, and keeps device numbers unique', async () => {
    const school = await createGroup('端末校', server.rootGroupId);
    const klass = await createGroup('3年1組', school.id);
    const a = new SimDevice({ spec: { serialNumber: 'DEVLIST00001' } });
    const b = new SimDevice({ spec: { serialNumber: 'DEVLIST00002' } });
    await a.enroll(server.enrollUrl(school.id));
    await b.enroll(server.enrollUrl(klass.id));

    type DeviceList = {
      items: { id: string; serialNumber: string; deviceNumber: number; groupId: string; status: string }[];
    };
    const own = await api<DeviceList>('GET', `/devices?groupId=${school.id}`);
    expect(own.body.items.map((d) => d.serialNumber)).toEqual(['DEVLIST00001']);
    const all = await api<DeviceList>('GET', `/devices?groupId=${school.id}&includeSubgroups=true`);
    expect(all.body.items.map((d) => d.serialNumber)).toEqual(['DEVLIST00001', 'DEVLIST00002']);
    expect(all.body.items.every((d) => d.status === 'enrolled')).toBe(true);
    const bySerial = await api<DeviceList>('GET', '/devices?serialNumber=DEVLIST00002');
    const deviceB = bySerial.body.items[0]!;
    expect(deviceB.groupId).toBe(klass.id);

    const moved = await api<{ groupId: string }>('PATCH', `/devices/${deviceB.id}`, { groupId: school.id });
    expect(moved.body.groupId).toBe(school.id);
    const clash = await api<ErrorBody>('PATCH', `/devices/${deviceB.id}`, {
      deviceNumber: all.body.items[0]!.deviceNumber,
    });
    expect(clash.status).toBe(409);
    expect(clash.body.error.code).toBe('device.number_taken');
    const detail = await api<{ facts: { value: unknown } }>('GET', `/devices/${deviceB.id}`);
    expect(detail.status).toBe(200);
    expect(detail.body.facts.value).toBeNull();
  });
});

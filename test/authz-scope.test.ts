// Issue 18, items 1 and 2 (decision 0029): a school's administrators act on their school only.
// Per resource: what a school's operator, admin and viewer see and may do, on SQLite and on
// PostgreSQL (the store has one code path; the scope filters are SQL there too).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { postgresAvailable, postgresSkipReason, startPostgres } from './support/pg.ts';
import type { ThrowawayPostgres } from './support/pg.ts';
import { World } from './support/world.ts';
import type { CatalogApp } from './support/world.ts';

const APP: CatalogApp = {
  adamId: '7300000001',
  name: '学校別アプリ',
  bundleId: 'jp.example.school',
  sizeBytes: 5_000_000,
  licences: 100,
};

if (!postgresAvailable) console.warn(`[authz-scope.test] ${postgresSkipReason}`);

interface Page<T> {
  items: T[];
}
interface ErrorBody {
  error: { code: string; message: string; messages: { ja: string; en: string } };
}

describe.each([
  ['SQLite', false],
  ['PostgreSQL', true],
] as const)('scopes on %s', (_name, onPostgres) => {
  const skip = onPostgres && !postgresAvailable;
  let pg: ThrowawayPostgres | undefined;
  let world: World;
  const ids = {
    schoolA: '',
    classA1: '',
    schoolB: '',
    tokenA: '',
    tokenB: '',
    board: '',
    devicesA: [] as string[],
    deviceA1: '',
    deviceB: '',
    serialB: '',
  };
  const tokens = { adminA: '', operatorA: '', viewerA: '', officer: '' };
  let adminAId = '';
  let operatorAId = '';

  async function as<T = Record<string, unknown>>(
    token: string,
    method: string,
    path: string,
    body?: unknown,
    headers: Record<string, string> = {},
  ): Promise<{ status: number; body: T; text: string }> {
    const response = await fetch(`${world.server.baseUrl}/api/v1${path}`, {
      method,
      headers: {
        authorization: `Bearer ${token}`,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        ...headers,
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await response.text();
    let parsed: unknown = null;
    try {
      parsed = text ? JSON.parse(text) : null;
    } catch {
      parsed = text;
    }
    return { status: response.status, body: parsed as T, text };
  }

  async function person(name: string, role: string, scopeGroupId: string) {
    const admin = await world.api<{ id: string }>('POST', '/admins', { name, role, scopeGroupId });
    expect(admin.status).toBe(201);
    const token = await world.api<{ secret: string }>('POST', `/admins/${admin.body.id}/tokens`, {
      name: `${name} のPC`,
    });
    expect(token.status).toBe(201);
    return { id: admin.body.id, secret: token.body.secret };
  }

  const deviceIdsOf = async (group: string) =>
    (await world.api<Page<{ id: string; serialNumber: string }>>('GET', `/devices?groupId=${group}`)).body
      .items;

  beforeAll(async () => {
    if (skip) return;
    if (onPostgres) pg = await startPostgres();
    world = await World.start([APP], pg ? { HAISHIN_DB: pg.url } : {});
    const a = await world.school('KA', [APP], () => ({}), 2);
    ids.schoolA = a.group;
    ids.tokenA = a.token.id;
    ids.classA1 = await world.group('1年1組', a.group);
    await world.devices(1, [ids.classA1], () => ({}), 'KA1');
    const b = await world.school('KB', [APP], () => ({}), 1);
    ids.schoolB = b.group;
    ids.tokenB = b.token.id;
    ids.board = (await world.token(world.server.rootGroupId, [APP], 'board')).id;
    expect((await world.api('POST', `/vpp-tokens/${ids.board}/shares`, { groupId: a.group })).status).toBe(
      201,
    );
    ids.devicesA = (await deviceIdsOf(a.group)).map((d) => d.id);
    ids.deviceA1 = (await deviceIdsOf(ids.classA1))[0]!.id;
    const devB = (await deviceIdsOf(b.group))[0]!;
    ids.deviceB = devB.id;
    ids.serialB = devB.serialNumber;
    const adminA = await person('A校 管理者', 'admin', a.group);
    const operatorA = await person('A校 ICT担当', 'operator', a.group);
    const viewerA = await person('A校 閲覧', 'viewer', a.group);
    const officer = await person('教育委員会 監査', 'viewer', world.server.rootGroupId);
    tokens.adminA = adminA.secret;
    tokens.operatorA = operatorA.secret;
    tokens.viewerA = viewerA.secret;
    tokens.officer = officer.secret;
    adminAId = adminA.id;
    operatorAId = operatorA.id;
  }, 180_000);
  afterAll(async () => {
    await world?.close();
    pg?.stop();
  });

  it.skipIf(skip)('devices: a school sees and reaches its own (subgroups included) only', async () => {
    const list = await as<Page<{ id: string }>>(tokens.operatorA, 'GET', '/devices?limit=100');
    expect(list.body.items.map((d) => d.id).sort()).toEqual([...ids.devicesA, ids.deviceA1].sort());
    expect(
      (await as<Page<unknown>>(tokens.operatorA, 'GET', `/devices?groupId=${ids.schoolB}`)).body.items,
    ).toEqual([]);
    expect((await as(tokens.operatorA, 'GET', `/devices/${ids.deviceA1}`)).status).toBe(200);
    // Another school's device answers exactly like a device that does not exist.
    const other = await as<ErrorBody>(tokens.operatorA, 'GET', `/devices/${ids.deviceB}`, undefined, {
      'accept-language': 'ja',
    });
    const missing = await as<ErrorBody>(tokens.operatorA, 'GET', '/devices/no-such-device', undefined, {
      'accept-language': 'ja',
    });
    expect(other.status).toBe(404);
    expect(other.body.error.code).toBe(missing.body.error.code);
    expect(other.body.error.message).toBe(missing.body.error.message.replace('no-such-device', ids.deviceB));
    expect(other.body.error.messages.ja).toMatch(/存在しません/);
  });

  it.skipIf(skip)('devices: moves need both groups in scope; wipe and deactivate need an admin', async () => {
    expect(
      (await as(tokens.adminA, 'PATCH', `/devices/${ids.devicesA[1]}`, { groupId: ids.classA1 })).status,
    ).toBe(200);
    expect(
      (await as(tokens.adminA, 'PATCH', `/devices/${ids.devicesA[1]}`, { groupId: ids.schoolB })).status,
    ).toBe(404);
    expect(
      (await as(tokens.adminA, 'PATCH', `/devices/${ids.deviceB}`, { groupId: ids.schoolA })).status,
    ).toBe(404);
    const refused = await as<ErrorBody>(tokens.operatorA, 'POST', `/devices/${ids.devicesA[1]}/wipe`);
    expect(refused.status).toBe(403);
    expect(refused.body.error.code).toBe('auth.forbidden');
    expect(refused.body.error.messages.ja).toMatch(/権限/);
    expect((await as(tokens.operatorA, 'POST', `/devices/${ids.deviceA1}/refresh`)).status).toBe(202);
  });

  it.skipIf(skip)('groups: the subtree only; the scope top is not moved or deleted from inside', async () => {
    const list = await as<Page<{ id: string }>>(tokens.viewerA, 'GET', '/groups?limit=100');
    expect(list.body.items.map((g) => g.id).sort()).toEqual([ids.schoolA, ids.classA1].sort());
    expect((await as(tokens.viewerA, 'GET', `/groups/${ids.schoolB}`)).status).toBe(404);
    const made = await as<{ id: string }>(tokens.adminA, 'POST', '/groups', {
      name: '2年',
      parentId: ids.schoolA,
    });
    expect(made.status).toBe(201);
    expect((await as(tokens.adminA, 'POST', '/groups', { name: 'x', parentId: ids.schoolB })).status).toBe(
      404,
    );
    expect(
      (await as(tokens.adminA, 'POST', '/groups', { name: 'x', parentId: world.server.rootGroupId })).status,
    ).toBe(404);
    expect(
      (await as(tokens.adminA, 'PATCH', `/groups/${made.body.id}`, { parentId: ids.classA1 })).status,
    ).toBe(200);
    expect(
      (await as(tokens.adminA, 'PATCH', `/groups/${made.body.id}`, { parentId: ids.schoolB })).status,
    ).toBe(404);
    const top = await as<ErrorBody>(tokens.adminA, 'PATCH', `/groups/${ids.schoolA}`, {
      parentId: ids.schoolB,
    });
    expect(top.status).toBe(404); // the target is outside: not even known
    expect((await as<ErrorBody>(tokens.adminA, 'DELETE', `/groups/${ids.schoolA}`)).body.error.code).toBe(
      'auth.scope_top',
    );
    expect((await as(tokens.adminA, 'PATCH', `/groups/${ids.schoolA}`, { name: 'A校（改）' })).status).toBe(
      200,
    );
    expect((await as(tokens.adminA, 'DELETE', `/groups/${made.body.id}`)).status).toBe(204);
    // A group that is somebody's scope stays until they get another.
    expect((await world.api<ErrorBody>('DELETE', `/groups/${ids.classA1}`)).status).toBe(409);
  });

  it.skipIf(skip)(
    "tokens: own and shared-in are visible without secrets; the board's cannot be changed",
    async () => {
      const list = await as<Page<{ id: string; sharedTo: string[] }>>(tokens.operatorA, 'GET', '/vpp-tokens');
      expect(list.body.items.map((t) => t.id).sort()).toEqual([ids.tokenA, ids.board].sort());
      expect(list.body.items.find((t) => t.id === ids.board)!.sharedTo).toEqual([ids.schoolA]);
      expect(list.text).not.toMatch(/sToken|sealed/i);
      expect((await as(tokens.operatorA, 'GET', `/vpp-tokens/${ids.tokenB}`)).status).toBe(404);
      expect((await as(tokens.operatorA, 'GET', `/vpp-tokens/${ids.board}/assets`)).status).toBe(200);
      expect((await as(tokens.adminA, 'DELETE', `/vpp-tokens/${ids.board}`)).status).toBe(404);
      expect(
        (await as(tokens.adminA, 'POST', `/vpp-tokens/${ids.board}/shares`, { groupId: ids.classA1 })).status,
      ).toBe(404);
      expect(
        (await as(tokens.adminA, 'PUT', `/groups/${ids.classA1}/auto-assign-token`, { tokenId: ids.tokenB }))
          .status,
      ).toBe(404);
      expect(
        (await as(tokens.adminA, 'PUT', `/groups/${ids.classA1}/auto-assign-token`, { tokenId: ids.board }))
          .status,
      ).not.toBe(404);
    },
  );

  it.skipIf(skip)(
    'distributions and jobs: inside the school only, with the shared board token usable',
    async () => {
      const mine = await as<{ id: string; jobCount: number }>(tokens.operatorA, 'POST', '/distributions', {
        kind: 'install',
        tokenId: ids.board,
        adamIds: [APP.adamId],
        targets: { groupIds: [ids.schoolA] },
        licenseMode: 'auto',
      });
      expect(mine.status).toBe(201);
      const body = (tokenId: string, deviceIds: string[]) => ({
        kind: 'install',
        tokenId,
        adamIds: [APP.adamId],
        targets: { deviceIds },
        licenseMode: 'auto',
      });
      expect(
        (await as(tokens.operatorA, 'POST', '/distributions', body(ids.board, [ids.deviceB]))).status,
      ).toBe(404);
      expect(
        (await as(tokens.operatorA, 'POST', '/distributions', body(ids.tokenB, [ids.deviceA1]))).status,
      ).toBe(404);
      expect(
        (await as(tokens.viewerA, 'POST', '/distributions', body(ids.tokenA, [ids.deviceA1]))).status,
      ).toBe(403);
      // Shapes validation would coerce (a lone id for a list, a list of one for an id) name the same objects.
      expect(
        (
          await as(tokens.operatorA, 'POST', '/distributions', {
            ...body(ids.board, []),
            targets: { deviceIds: ids.deviceB },
          })
        ).status,
      ).toBe(404);
      expect(
        (
          await as(tokens.operatorA, 'POST', '/distributions', {
            ...body(ids.board, [ids.deviceA1]),
            tokenId: [ids.tokenB],
          })
        ).status,
      ).toBe(404);
      // The board distributes to both schools: the board's distribution, each school's own jobs.
      const boardWide = await world.api<{ id: string }>(
        'POST',
        '/distributions',
        body(ids.board, [ids.deviceA1, ids.deviceB]),
      );
      const theirs = await world.api<{ id: string }>(
        'POST',
        '/distributions',
        body(ids.tokenB, [ids.deviceB]),
      );
      const listed = await as<Page<{ id: string }>>(tokens.operatorA, 'GET', '/distributions?limit=100');
      expect(listed.body.items.map((d) => d.id)).toContain(mine.body.id);
      expect(listed.body.items.map((d) => d.id)).not.toContain(boardWide.body.id);
      expect(listed.body.items.map((d) => d.id)).not.toContain(theirs.body.id);
      for (const path of ['', '/jobs.csv'])
        expect((await as(tokens.operatorA, 'GET', `/distributions/${theirs.body.id}${path}`)).status).toBe(
          404,
        );
      expect((await as(tokens.operatorA, 'POST', `/distributions/${theirs.body.id}/cancel`)).status).toBe(
        404,
      );
      const csv = await as(tokens.operatorA, 'GET', `/distributions/${mine.body.id}/jobs.csv`);
      expect(csv.status).toBe(200);

      const jobs = await as<Page<{ id: string; deviceId: string; distributionId: string }>>(
        tokens.operatorA,
        'GET',
        '/jobs?limit=500',
      );
      const inA = new Set([...ids.devicesA, ids.deviceA1]);
      expect(jobs.body.items.length).toBeGreaterThan(0);
      expect(jobs.body.items.every((j) => inA.has(j.deviceId))).toBe(true);
      expect(jobs.body.items.some((j) => j.distributionId === boardWide.body.id)).toBe(true);
      const theirJob = (
        await world.api<Page<{ id: string }>>('GET', `/jobs?distributionId=${theirs.body.id}`)
      ).body.items[0]!.id;
      for (const [method, path] of [
        ['GET', `/jobs/${theirJob}`],
        ['GET', `/jobs/${theirJob}/diagnosis`],
        ['GET', `/jobs/${theirJob}/support-bundle`],
        ['POST', `/jobs/${theirJob}/retry`],
        ['POST', `/jobs/${theirJob}/cancel`],
      ] as const)
        expect((await as(tokens.operatorA, method, path)).status, path).toBe(404);
      const myJob = jobs.body.items[0]!.id;
      expect((await as(tokens.operatorA, 'GET', `/jobs/${myJob}/support-bundle`)).status).toBe(200);
      expect((await as(tokens.viewerA, 'POST', `/jobs/${myJob}/cancel`)).status).toBe(403);
      expect((await as(tokens.operatorA, 'POST', '/jobs/cancel-pending', {})).status).toBe(403);
      expect(
        (await as(tokens.operatorA, 'POST', '/jobs/cancel-pending', { deviceId: ids.deviceB })).status,
      ).toBe(404);
    },
  );

  it.skipIf(skip)("licences and enrollment links: the school's own", async () => {
    await world.api('POST', '/licenses/assign', {
      tokenId: ids.tokenB,
      adamId: APP.adamId,
      serialNumbers: [ids.serialB],
    });
    const licences = await as<Page<{ serialNumber: string }>>(tokens.operatorA, 'GET', '/licenses');
    expect(licences.body.items.some((l) => l.serialNumber === ids.serialB)).toBe(false);
    expect(
      (
        await as(tokens.operatorA, 'POST', '/licenses/reclaim', {
          tokenId: ids.board,
          adamId: APP.adamId,
          serialNumbers: [ids.serialB],
        })
      ).status,
    ).toBe(404);
    const link = await world.api<{ id: string }>('POST', `/groups/${ids.schoolB}/enrollment-links`, {
      label: 'B',
    });
    const own = await as<{ id: string }>(tokens.adminA, 'POST', `/groups/${ids.classA1}/enrollment-links`, {
      label: 'A1',
    });
    expect(own.status).toBe(201);
    const links = await as<Page<{ id: string }>>(tokens.viewerA, 'GET', '/enrollment-links');
    expect(links.body.items.map((l) => l.id)).toEqual([own.body.id]);
    expect((await as(tokens.adminA, 'POST', `/enrollment-links/${link.body.id}/revoke`)).status).toBe(404);
  });

  it.skipIf(skip)(
    'status counts the school; the audit trail and server settings are the board’s',
    async () => {
      const status = await as<{ devices: { total: number }; tokens: { total: number } }>(
        tokens.viewerA,
        'GET',
        '/status',
      );
      expect(status.status).toBe(200);
      expect(status.body.devices.total).toBe(3);
      expect(status.body.tokens.total).toBe(2);
      const audit = await as<ErrorBody>(tokens.adminA, 'GET', '/audit-events');
      expect(audit.status).toBe(403);
      expect(audit.body.error.code).toBe('auth.whole_tree_only');
      expect((await as(tokens.adminA, 'GET', '/push-certificate')).status).toBe(403);
      // The board's security officer reads who did what: the administrator and the token they used.
      const trail = await as<
        Page<{ action: string; actor: { name: string }; token: { name: string } | null }>
      >(tokens.officer, 'GET', '/audit-events?kind=distribution.create&limit=100');
      expect(trail.status).toBe(200);
      const byOperator = trail.body.items.find((e) => e.actor.name === 'A校 ICT担当');
      expect(byOperator?.token?.name).toBe('A校 ICT担当 のPC');
      expect((await as(tokens.officer, 'POST', '/groups', { name: 'x', parentId: ids.schoolA })).status).toBe(
        403,
      );
    },
  );

  it.skipIf(skip)(
    'administrators: an admin manages its school at or below its role; tokens end',
    async () => {
      const made = await as<{ id: string; role: string }>(tokens.adminA, 'POST', '/admins', {
        name: '1年1組 担任',
        role: 'operator',
        scopeGroupId: ids.classA1,
      });
      expect(made.status).toBe(201);
      const owner = await as<ErrorBody>(tokens.adminA, 'POST', '/admins', { name: 'x', role: 'owner' });
      expect(owner.status).toBe(403);
      expect(owner.body.error.code).toBe('admin.role_above_yours');
      expect(
        (await as(tokens.adminA, 'POST', '/admins', { name: 'x', role: 'viewer', scopeGroupId: ids.schoolB }))
          .status,
      ).toBe(404);
      expect((await as(tokens.operatorA, 'POST', '/admins', { name: 'x', role: 'viewer' })).status).toBe(403);
      const listed = await as<Page<{ name: string; scopeGroupId: string }>>(tokens.adminA, 'GET', '/admins');
      expect(listed.body.items.every((a) => [ids.schoolA, ids.classA1].includes(a.scopeGroupId))).toBe(true);
      expect((await as(tokens.adminA, 'PATCH', `/admins/${adminAId}`, { role: 'operator' })).status).toBe(
        403,
      );
      expect((await as(tokens.adminA, 'PATCH', `/admins/${made.body.id}`, { role: 'viewer' })).status).toBe(
        200,
      );

      // Own tokens: shown once, revocable, expiring; a disabled administrator's are refused.
      const mine = await as<{ id: string; secret: string }>(
        tokens.operatorA,
        'POST',
        `/admins/${operatorAId}/tokens`,
        {
          name: 'タブレット',
          expiresIn: '1s',
        },
      );
      expect(mine.status).toBe(201);
      expect((await as(mine.body.secret, 'GET', '/me')).status).toBe(200);
      const listedTokens = await as(tokens.operatorA, 'GET', `/admins/${operatorAId}/tokens`);
      expect(listedTokens.text).not.toContain(mine.body.secret);
      await new Promise((r) => setTimeout(r, 1100));
      expect((await as(mine.body.secret, 'GET', '/me')).status).toBe(401);
      const second = await as<{ id: string; secret: string }>(
        tokens.operatorA,
        'POST',
        `/admins/${operatorAId}/tokens`,
        { name: 'スマホ' },
      );
      expect(
        (await as(tokens.operatorA, 'POST', `/admins/${operatorAId}/tokens/${second.body.id}/revoke`)).status,
      ).toBe(200);
      expect((await as(second.body.secret, 'GET', '/me')).status).toBe(401);
      expect((await as(tokens.operatorA, 'GET', `/admins/${adminAId}/tokens`)).status).toBe(403);

      const me = await as<{ permissions: string[]; scope: { groupId: string; wholeTree: boolean } }>(
        tokens.operatorA,
        'GET',
        '/me',
      );
      expect(me.body.permissions).toEqual(['read', 'operate']);
      expect(me.body.scope).toMatchObject({ groupId: ids.schoolA, wholeTree: false });

      expect((await as(tokens.adminA, 'PATCH', `/admins/${made.body.id}`, { disabled: true })).status).toBe(
        200,
      );
      // The last owner stays: nobody could manage haishin otherwise.
      const owners = (
        await world.api<Page<{ id: string; role: string }>>('GET', '/admins')
      ).body.items.filter((a) => a.role === 'owner');
      expect(owners).toHaveLength(1);
      const other = await person('二人目のオーナー', 'owner', world.server.rootGroupId);
      const demoted = await as(other.secret, 'PATCH', `/admins/${owners[0]!.id}`, { role: 'admin' });
      expect(demoted.status, demoted.text).toBe(200);
      const last = await as<ErrorBody>(other.secret, 'PATCH', `/admins/${other.id}`, { disabled: true });
      expect(last.body.error.code).toBe('admin.not_self');
      // Demoted, the first owner cannot promote itself back; the other owner can.
      expect((await world.api('PATCH', `/admins/${owners[0]!.id}`, { role: 'owner' })).status).toBe(403);
      expect((await as(other.secret, 'PATCH', `/admins/${owners[0]!.id}`, { role: 'owner' })).status).toBe(
        200,
      );
    },
  );
});

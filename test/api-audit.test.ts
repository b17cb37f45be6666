// GET /api/v1/audit-events and /audit-events.csv: who changed what, filtered by time, actor, target
// and kind, newest first, with cursor paging.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer } from './support/server.ts';
import type { TestServer } from './support/server.ts';

const TOKEN = 'audit-admin-token-0123456789abcdef';
let server: TestServer;

interface AuditPage {
  items: {
    id: string;
    at: string;
    actor: { id: string; name: string | null };
    source: string | null;
    action: string;
    target: { type: string; id: string | null };
    details: unknown;
  }[];
  nextCursor: string | null;
}

async function api<T>(method: string, path: string, body?: unknown): Promise<{ status: number; body: T }> {
  const response = await fetch(`${server.baseUrl}/api/v1${path}`, {
    method,
    headers: {
      authorization: `Bearer ${TOKEN}`,
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await response.text();
  return { status: response.status, body: (text ? JSON.parse(text) : null) as T };
}

let groupId: string;

beforeAll(async () => {
  server = await startTestServer({ env: { HAISHIN_ADMIN_TOKEN: TOKEN } });
  const created = await api<{ id: string }>('POST', '/groups', {
    name: '第一小学校',
    parentId: server.rootGroupId,
  });
  groupId = created.body.id;
  await api('PATCH', `/groups/${groupId}`, { name: '第一小学校 (本校)' });
  const other = await api<{ id: string }>('POST', '/groups', {
    name: 'temporary',
    parentId: server.rootGroupId,
  });
  await api('DELETE', `/groups/${other.body.id}`);
  // haishin's own work, at known instants in the past: the time filters have something to cut.
  for (const [i, at] of [
    '2026-01-01T00:00:00.000Z',
    '2026-02-01T00:00:00.000Z',
    '2026-03-01T00:00:00.000Z',
  ].entries())
    await server.haishin.store.admin.audit({
      actor: 'system',
      source: null,
      action: 'token.sync',
      objectType: 'vpp_token',
      objectId: `t${i}`,
      details: { assets: i },
      at: new Date(at),
    });
});
afterAll(async () => {
  await server?.close();
});

describe('GET /audit-events', () => {
  it('lists changes newest first with the actor, the address and a summary', async () => {
    const { status, body } = await api<AuditPage>('GET', '/audit-events?targetType=group');
    expect(status).toBe(200);
    expect(body.items.map((e) => e.action)).toEqual([
      'group.delete',
      'group.create',
      'group.update',
      'group.create',
    ]);
    const created = body.items.find((e) => e.action === 'group.create' && e.target.id === groupId)!;
    expect(created.actor.name).toBeTruthy();
    expect(created.source).toBe('127.0.0.1');
    expect(created.details).toMatchObject({ name: '第一小学校' });
    const times = body.items.map((e) => e.at);
    expect([...times].sort().reverse()).toEqual(times);
  });

  it('filters by kind (every group.*) or by one action, by target id and by actor', async () => {
    const kind = await api<AuditPage>('GET', '/audit-events?kind=group');
    expect(kind.body.items).toHaveLength(4);
    const one = await api<AuditPage>('GET', '/audit-events?kind=group.delete');
    expect(one.body.items.map((e) => e.action)).toEqual(['group.delete']);
    const target = await api<AuditPage>('GET', `/audit-events?targetId=${groupId}`);
    expect(target.body.items.map((e) => e.action)).toEqual(['group.update', 'group.create']);
    const system = await api<AuditPage>('GET', '/audit-events?actor=system');
    expect(system.body.items.map((e) => e.target.id)).toEqual(['t2', 't1', 't0']);
    const byName = await api<AuditPage>(
      'GET',
      `/audit-events?actor=${encodeURIComponent(target.body.items[0]!.actor.name!)}`,
    );
    expect(byName.body.items.length).toBeGreaterThanOrEqual(4);
    expect(byName.body.items.every((e) => e.actor.id !== 'system')).toBe(true);
  });

  it('filters by time: from included, to excluded', async () => {
    const { body } = await api<AuditPage>(
      'GET',
      '/audit-events?from=2026-01-01T00:00:00Z&to=2026-03-01T00:00:00Z',
    );
    expect(body.items.map((e) => e.target.id)).toEqual(['t1', 't0']);
  });

  it('pages with a cursor, without overlap or gap', async () => {
    const seen: string[] = [];
    let cursor: string | null = null;
    for (let i = 0; i < 10; i++) {
      const page: { body: AuditPage } = await api<AuditPage>(
        'GET',
        `/audit-events?limit=2${cursor ? `&cursor=${cursor}` : ''}`,
      );
      seen.push(...page.body.items.map((e) => e.id));
      cursor = page.body.nextCursor;
      if (!cursor) break;
    }
    const all = await api<AuditPage>('GET', '/audit-events?limit=1000');
    expect(seen).toEqual(all.body.items.map((e) => e.id));
  });

  it('refuses a malformed kind, instant or cursor with 400', async () => {
    expect((await api('GET', '/audit-events?kind=group%25')).status).toBe(400);
    expect((await api('GET', '/audit-events?from=yesterday')).status).toBe(400);
    expect((await api('GET', '/audit-events?cursor=not-a-cursor')).status).toBe(400);
  });

  it('exports the same events as CSV, formulas neutralised', async () => {
    await api('POST', '/groups', { name: '=HYPERLINK("x")', parentId: server.rootGroupId });
    const response = await fetch(`${server.baseUrl}/api/v1/audit-events.csv?kind=group.create`, {
      headers: { authorization: `Bearer ${TOKEN}` },
    });
    expect(response.status).toBe(200);
    const bytes = Buffer.from(await response.arrayBuffer());
    // The BOM Excel needs (fetch's text() would drop it).
    expect([...bytes.subarray(0, 3)]).toEqual([0xef, 0xbb, 0xbf]);
    const lines = bytes
      .subarray(3)
      .toString('utf8')
      .split('\r\n')
      .filter((l) => l !== '');
    expect(lines[0]).toBe(
      'at,actor_id,actor_name,source,action,target_type,target_id,details,token_id,token_name',
    );
    expect(lines).toHaveLength(1 + 3);
    expect(lines[1]).toContain('group.create');
    // The details cell is JSON text starting with "{": quoted, never a formula.
    expect(lines.every((l) => !/,=/.test(l))).toBe(true);
  });
});

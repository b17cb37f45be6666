// Issue 18, items 2 and 3 (decision 0029): every route of the admin API is authorized, and this
// test cannot forget one. It walks the OpenAPI document: every route and method must carry its
// rule (`x-authz`), answer 401 without a token, refuse a viewer what needs more than reading
// (403), refuse a subtree's administrator what concerns the whole server (403), answer 404 for
// each object it names that lies in another school (exactly as if it did not exist), and leave
// the other school's objects out of its lists. A new route without a rule does not even start.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requireAuthzRule } from '../src/api/authz.ts';
import { World } from './support/world.ts';
import type { CatalogApp } from './support/world.ts';

const APP: CatalogApp = {
  adamId: '7200000001',
  name: '範囲テストアプリ',
  bundleId: 'jp.example.scope',
  sizeBytes: 5_000_000,
  licences: 50,
};

interface Rule {
  permission: 'read' | 'operate' | 'manage' | 'owner';
  objects?: { kind: string; at: string }[];
  global?: true | 'unless_objects';
  filtered?: true;
  unscoped?: string;
}
interface Operation {
  'x-authz'?: Rule;
  requestBody?: { content: { 'application/json': { schema: JsonSchema } } };
}
interface JsonSchema {
  type?: string;
  properties?: Record<string, JsonSchema>;
  items?: JsonSchema;
}

/** Routes that name nothing in the tree, reviewed one by one: a new one must be added here knowingly. */
const UNSCOPED = new Set(['GET /api/v1/me', 'POST /api/v1/diagnose/error']);

let world: World;
/** Ids of school A's objects (the caller's scope) and of school B's (outside it), by kind. */
const IN: Record<string, string> = {};
const OUT: Record<string, string> = {};
/** Bearer tokens of school A's administrator (role admin) and viewer. */
let schoolAdmin = '';
let schoolViewer = '';
let doc: { paths: Record<string, Record<string, Operation>> };

async function call(
  token: string | null,
  method: string,
  path: string,
  body?: unknown,
): Promise<{ status: number; text: string }> {
  const response = await fetch(`${world.server.baseUrl}${path}`, {
    method,
    headers: {
      ...(token ? { authorization: `Bearer ${token}` } : {}),
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  return { status: response.status, text: await response.text() };
}

/** Sets `value` at the dotted path in `body`, as an array where the request schema says so. */
function setAt(body: Record<string, unknown>, path: string[], value: string, schema: JsonSchema | undefined) {
  const [key, ...rest] = path;
  const prop = schema?.properties?.[key!];
  if (rest.length === 0) {
    body[key!] = prop?.type === 'array' ? [value] : value;
    return;
  }
  if (prop?.type === 'array') {
    const item: Record<string, unknown> = {};
    setAt(item, rest, value, prop.items);
    body[key!] = [item];
    return;
  }
  const inner = (body[key!] ??= {}) as Record<string, unknown>;
  setAt(inner, rest, value, prop);
}

/** The request for `route` naming each object by the ids of `pick` (A's or B's), `only` naming just one. */
function request(path: string, op: Operation, ids: (kind: string, at: string) => string, onlyAt?: string) {
  const rule = op['x-authz']!;
  const schema = op.requestBody?.content['application/json'].schema;
  let url = path;
  const body: Record<string, unknown> = {};
  const query = new URLSearchParams();
  for (const ref of rule.objects ?? []) {
    if (onlyAt !== undefined && ref.at !== onlyAt && !ref.at.startsWith('params.')) continue;
    const [where, ...rest] = ref.at.split('.');
    const id = ids(ref.kind, ref.at);
    if (where === 'params') url = url.replace(`{${rest.join('.')}}`, encodeURIComponent(id));
    else if (where === 'query') query.set(rest.join('.'), id);
    else setAt(body, rest, id, schema);
  }
  url = url.replace('{adamId}', APP.adamId);
  const q = query.toString();
  return { url: q ? `${url}?${q}` : url, body: schema ? body : undefined };
}

const routes = () =>
  Object.entries(doc.paths).flatMap(([path, methods]) =>
    Object.entries(methods).map(([method, op]) => ({ path, method: method.toUpperCase(), op })),
  );

beforeAll(async () => {
  world = await World.start([APP]);
  const a = await world.school('SA', [APP], () => ({}), 2);
  const b = await world.school('SB', [APP], () => ({}), 2);
  // The board's token, registered at the root and shared into school A only.
  const board = await world.token(world.server.rootGroupId, [APP], 'board');
  expect((await world.api('POST', `/vpp-tokens/${board.id}/shares`, { groupId: a.group })).status).toBe(201);
  const deviceOf = async (group: string) =>
    (await world.api<{ items: { id: string; serialNumber: string }[] }>('GET', `/devices?groupId=${group}`))
      .body.items[0]!;
  for (const [school, ids] of [
    [a, IN],
    [b, OUT],
  ] as const) {
    const device = await deviceOf(school.group);
    ids.group = school.group;
    ids.device = device.id;
    ids.serial = device.serialNumber;
    ids.vpp_token = school.token.id;
    ids.vpp_token_registered = school.token.id;
    const d = await world.api<{ id: string }>('POST', '/distributions', {
      kind: 'install',
      tokenId: school.token.id,
      adamIds: [APP.adamId],
      targets: { deviceIds: [device.id] },
      licenseMode: 'auto',
    });
    expect(d.status).toBe(201);
    ids.distribution = d.body.id;
    ids.job = (
      await world.api<{ items: { id: string }[] }>('GET', `/jobs?distributionId=${d.body.id}`)
    ).body.items[0]!.id;
    ids.enrollment_link = (
      await world.api<{ id: string }>('POST', `/groups/${school.group}/enrollment-links`, { label: 'x' })
    ).body.id;
    const admin = await world.api<{ id: string }>('POST', '/admins', {
      name: `operator ${school.group}`,
      role: 'operator',
      scopeGroupId: school.group,
    });
    ids.admin = admin.body.id;
    ids.admin_token = (
      await world.api<{ id: string }>('POST', `/admins/${admin.body.id}/tokens`, { name: 'pc' })
    ).body.id;
  }
  const person = async (role: string) => {
    const admin = await world.api<{ id: string }>('POST', '/admins', {
      name: `${role} of A`,
      role,
      scopeGroupId: a.group,
    });
    return (await world.api<{ secret: string }>('POST', `/admins/${admin.body.id}/tokens`, { name: 'pc' }))
      .body.secret;
  };
  schoolAdmin = await person('admin');
  schoolViewer = await person('viewer');
  doc = JSON.parse((await call(null, 'GET', '/api/v1/openapi.json')).text) as typeof doc;
}, 120_000);
afterAll(async () => {
  await world?.close();
});

describe('the route-walking authorization test', () => {
  it('refuses to start a route of the admin API that has no rule, and every documented route has one', () => {
    expect(() => requireAuthzRule({ method: 'GET', url: '/api/v1/new-thing', config: {} })).toThrow(
      /no authorization rule/,
    );
    expect(() =>
      requireAuthzRule({
        method: 'GET',
        url: '/api/v1/new-thing',
        config: { authz: { permission: 'read' } },
      }),
    ).toThrow(/must name its objects/);
    const all = routes();
    expect(all.length).toBeGreaterThan(60);
    expect(all.filter((r) => !r.op['x-authz']).map((r) => `${r.method} ${r.path}`)).toEqual([]);
  });

  it('answers 401 on every route without a token', async () => {
    const wrong: string[] = [];
    for (const { path, method, op } of routes()) {
      const { url, body } = request(path, op, (kind) => IN[kind] ?? 'x');
      const r = await call(null, method, url, body);
      if (r.status !== 401) wrong.push(`${method} ${path} → ${r.status}`);
    }
    expect(wrong).toEqual([]);
  });

  it('refuses a viewer every route that needs more than reading, with 403 in the usual shape', async () => {
    const wrong: string[] = [];
    for (const { path, method, op } of routes()) {
      if (op['x-authz']!.permission === 'read') continue;
      const { url, body } = request(path, op, (kind) => IN[kind] ?? 'x');
      const r = await call(schoolViewer, method, url, body);
      const error = (JSON.parse(r.text) as { error?: { code?: string; messages?: { ja?: string } } }).error;
      if (r.status !== 403 || error?.code !== 'auth.forbidden' || !error.messages?.ja)
        wrong.push(`${method} ${path} → ${r.status} ${error?.code}`);
    }
    expect(wrong).toEqual([]);
  });

  it('answers 404 for each object of another school a route names, 403 for whole-server routes, and lists nothing of it', async () => {
    const wrong: string[] = [];
    const outIds = Object.values(OUT);
    for (const { path, method, op } of routes()) {
      const rule = op['x-authz']!;
      const name = `${method} ${path}`;
      if (path === '/api/v1/events') continue; // a stream: its own test below
      if (rule.permission === 'owner' || rule.global === true) {
        const { url, body } = request(path, op, (kind) => IN[kind] ?? 'x');
        const r = await call(schoolAdmin, method, url, body);
        if (r.status !== 403) wrong.push(`${name} (whole server) → ${r.status}`);
        continue;
      }
      if (rule.global === 'unless_objects') {
        const r = await call(schoolAdmin, method, path.replace('{adamId}', APP.adamId), {});
        if (r.status !== 403) wrong.push(`${name} (without objects) → ${r.status}`);
      }
      for (const ref of rule.objects ?? []) {
        // This object from school B, the others from school A: each one named is checked.
        const { url, body } = request(
          path,
          op,
          (kind, at) => (at === ref.at ? OUT[kind] : IN[kind]) ?? 'x',
          ref.at,
        );
        const r = await call(schoolAdmin, method, url, body);
        const code = (JSON.parse(r.text) as { error?: { code?: string } }).error?.code ?? '';
        if (r.status !== 404 || !code.endsWith('not_found'))
          wrong.push(`${name} with ${ref.at} of school B → ${r.status} ${code}`);
        // Fastify answers HEAD for every GET: the same rule holds there.
        if (method === 'GET') {
          const head = await call(schoolAdmin, 'HEAD', url);
          if (head.status !== 404) wrong.push(`HEAD ${path} with ${ref.at} of school B → ${head.status}`);
        }
      }
      if (rule.filtered) {
        const r = await call(schoolAdmin, method, path);
        if (r.status !== 200) wrong.push(`${name} (list) → ${r.status}`);
        const leaked = outIds.filter((id) => r.text.includes(id));
        if (leaked.length > 0) wrong.push(`${name} lists school B's ${leaked.join(', ')}`);
      }
      if (rule.unscoped && !rule.objects?.length) {
        if (!UNSCOPED.has(name)) wrong.push(`${name} says it is unscoped: review it and list it in UNSCOPED`);
        const { url, body } = request(path, op, (kind) => IN[kind] ?? 'x');
        const r = await call(schoolAdmin, method, url, body ?? undefined);
        if ([401, 403, 404].includes(r.status)) wrong.push(`${name} (unscoped) → ${r.status}`);
      }
    }
    expect(wrong).toEqual([]);
  }, 120_000);

  it('filters the event stream to the scope', async () => {
    const controller = new AbortController();
    const response = await fetch(`${world.server.baseUrl}/api/v1/events`, {
      headers: { authorization: `Bearer ${schoolAdmin}` },
      signal: controller.signal,
    });
    expect(response.status).toBe(200);
    const reader = response.body!.getReader();
    let text = '';
    const readUntil = async (needle: string) => {
      const deadline = Date.now() + 10_000;
      while (!text.includes(needle) && Date.now() < deadline) {
        const { value, done } = await reader.read();
        if (done) break;
        text += new TextDecoder().decode(value);
      }
    };
    await readUntil('event: ready');
    // A change in school B first, then one in school A: once A's arrives, B's would have too.
    await world.api('PATCH', `/devices/${OUT.device}`, { deviceNumber: 9101 });
    await world.api('PATCH', `/devices/${IN.device}`, { deviceNumber: 9102 });
    await readUntil(IN.device!);
    controller.abort();
    expect(text).toContain(IN.device);
    expect(text).not.toContain(OUT.device);
  });
});

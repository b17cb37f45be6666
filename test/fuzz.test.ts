// Hostile input never hurts (issue 18, item 5; decision 0028): a seeded fast-check run of a few
// thousand generated cases against /mdm/checkin, /mdm/connect, /vpp/notify and every REST route of
// the OpenAPI document, on one real server, while well-behaved iPads keep checking in.
//
// Reproduce a failure with the seed (and path) it prints:
//   FUZZ_SEED=<seed> FUZZ_PATH=<path> npx vitest run test/fuzz.test.ts
// More cases: FUZZ_RUNS=20000. The benchmark run (≥ 100,000 cases against `haishin serve`) is
// bench/fuzz.bench.ts.
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FakeVppService } from '../src/sim/vpp/server.ts';
import type { SimDevice } from '../src/sim/device/device.ts';
import { buildPlist } from '../src/mdm/plist.ts';
import { allCases, protectedRanges } from './support/fuzz-inputs.ts';
import type { FuzzContext } from './support/fuzz-inputs.ts';
import {
  describeCase,
  enrollDevices,
  FuzzTally,
  fuzzContext,
  goodDevicesServed,
  judge,
  sendCase,
} from './support/fuzz-run.ts';
import { postgresAvailable, postgresSkipReason, startPostgres } from './support/pg.ts';
import type { ThrowawayPostgres } from './support/pg.ts';
import { startTestServer } from './support/server.ts';
import type { TestServer } from './support/server.ts';

const SEED = Number(process.env.FUZZ_SEED ?? 20_261_207);
const RUNS = Number(process.env.FUZZ_RUNS ?? 2500);
const RUNS_PG = Number(process.env.FUZZ_RUNS_PG ?? 800);
const PATH = process.env.FUZZ_PATH;
const TOKEN = 'test-admin-token-fuzz-0123456789';
const MAX_BODY = 256 * 1024;
if (!postgresAvailable) console.warn(`[fuzz.test] ${postgresSkipReason}`);

let server: TestServer;
let fake: FakeVppService;
let good: SimDevice[];
let ctx: FuzzContext;

async function api(method: string, path: string, body?: unknown): Promise<{ status: number; body: unknown }> {
  const response = await fetch(`${server.baseUrl}/api/v1${path}`, {
    method,
    headers: {
      authorization: `Bearer ${TOKEN}`,
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await response.text();
  return { status: response.status, body: text ? JSON.parse(text) : null };
}

async function setUp(db: string): Promise<void> {
  fake = new FakeVppService();
  const vppUrl = await fake.listen();
  server = await startTestServer({
    db,
    env: {
      HAISHIN_ADMIN_TOKEN: TOKEN,
      HAISHIN_VPP_URL: vppUrl,
      HAISHIN_MAX_BODY_BYTES: String(MAX_BODY),
      HAISHIN_LOG_LEVEL: 'silent',
    },
  });
  // A registered token: Apple's notifications for it carry the bearer haishin chose.
  const sToken = FakeVppService.tokenFile('fuzz', '教育委員会', new Date(Date.now() + 300 * 86_400_000));
  fake.addToken({ sToken, orgName: '教育委員会', locationName: 'fuzz' });
  const registered = await api('POST', '/vpp-tokens', { groupId: server.rootGroupId, sToken });
  expect(registered.status).toBe(201);
  const tokenId = (registered.body as { id: string }).id;
  const vppBearer = (await server.haishin.store.vpp.getToken(tokenId))?.notification_auth_token ?? null;
  expect(vppBearer).toBeTruthy();

  good = await enrollDevices(server.enrollUrl(), 3, 'FZGOOD');
  const [attacker] = await enrollDevices(server.enrollUrl(), 1, 'FZEVIL');
  const devices = (await api('GET', '/devices?limit=10')).body as { items: { id: string }[] };
  ctx = await fuzzContext({
    baseUrl: server.baseUrl,
    adminToken: TOKEN,
    attacker: attacker!,
    good,
    vppBearer,
    realIds: [server.rootGroupId, tokenId, ...devices.items.map((d) => d.id)],
    maxBodyBytes: MAX_BODY,
    hugeBytes: 64 * 1024,
  });
}

async function tearDown(): Promise<void> {
  await server?.close();
  await fake?.close();
}

/** The property itself, on the server of the enclosing suite. */
function fuzzProperty(runs: number): void {
  it(`seed ${SEED}, ${runs} runs: never a 5xx, MDM refusals are 400 (never 401), API errors are 4xx, good iPads served throughout`, async () => {
    console.log(`fuzz seed ${SEED}, ${runs} runs${PATH ? `, path ${PATH}` : ''}`);
    const tally = new FuzzTally();
    let sinceCheck = 0;
    await fc.assert(
      fc.asyncProperty(allCases(ctx), async (c) => {
        const started = performance.now();
        const answer = await sendCase(server.baseUrl, c);
        const problem = judge(c, answer);
        tally.add(c, answer, problem, performance.now() - started);
        if (problem) throw new Error(`${problem}\n${describeCase(c)}`);
        if (++sinceCheck >= 100) {
          sinceCheck = 0;
          const served = await goodDevicesServed(good);
          if (served) throw new Error(`${served} (after ${describeCase(c)})`);
        }
      }),
      { seed: SEED, numRuns: runs, ...(PATH ? { path: PATH, endOnFailure: true } : {}) },
    );
    console.log(`fuzz: ${tally.summary()}`);
    for (const [kind, n] of [...tally.byKind].sort((a, b) => b[1] - a[1]))
      console.log(`  ${n}\t${Math.round(tally.msByKind.get(kind) ?? 0)} ms\t${kind}`);
    expect(tally.fiveHundreds).toBe(0);
    // Every target got its share.
    expect([...tally.byKind.keys()].some((k) => k.startsWith('api '))).toBe(true);
    expect([...tally.byKind.keys()].some((k) => k.startsWith('vpp: '))).toBe(true);
    if (runs >= 1000) expect(tally.byKind.get('billion laughs')).toBeGreaterThan(0);

    // Still serving: the good iPads check in and get (and answer) new commands.
    expect(await goodDevicesServed(good)).toBeNull();
    for (const device of good) {
      const [row] = (
        (await api('GET', `/devices?serialNumber=${device.serialNumber}`)).body as { items: { id: string }[] }
      ).items;
      expect((await api('POST', `/devices/${row!.id}/refresh`)).status).toBeLessThan(300);
      const before = device.received.length;
      const log = await device.connect(20);
      expect(log.every((e) => e.status === 200)).toBe(true);
      expect(device.received.length).toBeGreaterThan(before);
    }
    expect((await api('GET', '/status')).status).toBe(200);
  }, 240_000);
}

describe('fuzz on SQLite: hostile input never hurts', () => {
  beforeAll(() => setUp('sqlite::memory:'), 60_000);
  afterAll(tearDown);

  // Found by the fuzz run: Fastify refused these before any route, in its own error shape.
  it('a URL with broken percent-encoding is a 400 in the API error shape (ja/en)', async () => {
    for (const path of ['/api/v1/devices/%C0%80/refresh', '/api/v1/groups/%E0%A4%A']) {
      const response = await fetch(`${server.baseUrl}${path}`, {
        method: path.endsWith('refresh') ? 'POST' : 'GET',
        headers: { authorization: `Bearer ${TOKEN}`, 'accept-language': 'ja' },
      });
      expect(response.status).toBe(400);
      const body = (await response.json()) as { error: { code: string; message: string; messages: object } };
      expect(body.error.code).toBe('request.invalid');
      expect(body.error.messages).toMatchObject({ ja: expect.any(String), en: expect.any(String) });
    }
  });

  // The fuzz run found that a flipped byte outside what is signed (SignedData's version and
  // digestAlgorithms, SEQUENCE tags, NULL parameters) can pass; inside it, every single one must not.
  it('a signature with any byte of its certificate, sid, digest algorithm, signed attributes or value flipped is a 400', async () => {
    const [device] = good;
    const body = Buffer.from(buildPlist({ Status: 'Idle', UDID: device!.udid }), 'utf8');
    const raw = Buffer.from(device!.sign(body), 'base64');
    let tried = 0;
    for (const [from, to] of protectedRanges(raw)) {
      for (let i = from; i < to; i++) {
        const copy = Buffer.from(raw);
        copy[i]! ^= 0x01;
        const { status } = await device!.sendRaw('connect', body, copy.toString('base64'));
        expect(status, `byte ${i} flipped`).toBe(400);
        tried++;
      }
    }
    expect(tried).toBeGreaterThan(500);
    expect((await device!.sendRaw('connect', body, raw.toString('base64'))).status).toBe(200);
  }, 120_000);

  fuzzProperty(RUNS);
});

describe.skipIf(!postgresAvailable)('fuzz on PostgreSQL: hostile input never hurts', () => {
  let pg: ThrowawayPostgres | undefined;
  beforeAll(async () => {
    pg = await startPostgres();
    await setUp(pg.url);
  }, 120_000);
  afterAll(async () => {
    await tearDown();
    pg?.stop();
  });

  // Found by the fuzz run on PostgreSQL: text holding U+0000 failed the query (a 500); SQLite stored it.
  it('text holding U+0000 is a 400 request.nul_character in ja/en, wherever it is', async () => {
    const cases: [string, string, unknown?][] = [
      ['POST', '/groups', { name: 'a\u0000b', parentId: server.rootGroupId }],
      ['GET', '/groups/%00'],
      ['GET', '/devices?serialNumber=%00'],
      ['GET', '/audit-events?actor=x%00'],
      ['PATCH', `/groups/${server.rootGroupId}`, { name: 'ok', ['k\u0000']: 1 }],
    ];
    for (const [method, path, body] of cases) {
      const res = await api(method, path, body);
      expect(res.status, `${method} ${path}`).toBe(400);
      const error = (res.body as { error: { code: string; messages: { ja: string; en: string } } }).error;
      expect(error.code).toBe('request.nul_character');
      expect(error.messages.ja).toContain('U+0000');
    }
    expect((await api('GET', '/status')).status).toBe(200);
  });

  it('an Apps and Books notification holding U+0000 is a 400 (malformed), not a 500', async () => {
    for (const body of [
      { notificationId: 'n\u0000', notificationType: 'ASSET_MANAGEMENT', notification: {} },
      { notificationId: 'ok-nul-1', notificationType: 'ASSET_COUNT', notification: { adamId: '1\u0000' } },
    ]) {
      const response = await fetch(`${server.baseUrl}/vpp/notify`, {
        method: 'POST',
        headers: { authorization: `Bearer ${ctx.vppBearer}`, 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
      expect(response.status).toBe(400);
      expect(((await response.json()) as { error: { code: string } }).error.code).toBe('malformed');
    }
  });

  fuzzProperty(RUNS_PG);
});

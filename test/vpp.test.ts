import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { VppClient, parseRetryAfter } from '../src/apple/vpp/client.ts';
import type { VppClientOptions } from '../src/apple/vpp/client.ts';
import { VPP_ERROR_KINDS, VppError, classifyVppError } from '../src/apple/vpp/errors.ts';
import type { VppErrorKind } from '../src/apple/vpp/errors.ts';
import { RateLimiter } from '../src/apple/vpp/limiter.ts';
import { VppTokenFileError, decodeVppToken, encodeVppToken, parseExpDate } from '../src/apple/vpp/token.ts';
import { detectLegacyBody, extractError, parseEventResponse } from '../src/apple/vpp/wire.ts';
import { ManualClock, systemClock } from '../src/core/clock.ts';
import { FakeVppService } from '../src/sim/vpp/server.ts';
import type { FakeVppOptions } from '../src/sim/vpp/server.ts';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const fixtures = path.resolve(repoRoot, '../shared/fixtures/vpp');
const fixture = (name: string) => readFileSync(path.join(fixtures, name), 'utf8');

const MDM = { id: 'haishin-test-0001', name: 'haishin test' };
const closers: Array<() => Promise<void>> = [];
afterEach(async () => {
  while (closers.length > 0) await closers.pop()!();
});

/** A ManualClock whose sleeps move it, so pacing and backoff take no real time. */
function fastTime(start = '2026-03-01T00:00:00Z') {
  const clock = new ManualClock(start);
  const sleeps: number[] = [];
  const sleep = async (ms: number) => {
    sleeps.push(ms);
    clock.advance(ms);
  };
  return { clock, sleep, sleeps };
}

async function startFake(options: FakeVppOptions = {}): Promise<FakeVppService> {
  const fake = new FakeVppService(options);
  await fake.listen();
  closers.push(() => fake.close());
  return fake;
}

let tokenSeq = 0;
function seedToken(
  fake: FakeVppService,
  mode: Parameters<FakeVppService['addToken']>[0]['mode'] = 'valid',
): string {
  const sToken = FakeVppService.tokenFile(
    `tok-${++tokenSeq}`,
    'Example School Board',
    new Date('2027-01-01T00:00:00Z'),
  );
  fake.addToken({ sToken, orgName: 'Example School Board', locationName: 'Main campus', mode });
  return sToken;
}

function client(
  fake: FakeVppService,
  sToken: string,
  time: ReturnType<typeof fastTime>,
  extra: Partial<VppClientOptions> = {},
) {
  return new VppClient({
    baseUrl: fake.url,
    sToken,
    clock: time.clock,
    sleep: time.sleep,
    mdmInfo: MDM,
    backoff: { baseMs: 100, capMs: 1_000 },
    random: () => 0.5,
    ...extra,
  });
}

async function rejection(p: Promise<unknown>): Promise<VppError> {
  try {
    await p;
  } catch (err) {
    if (err instanceof VppError) return err;
    throw err;
  }
  throw new Error('expected a VppError, the call succeeded');
}

const serials = (n: number, prefix = 'SN') =>
  Array.from({ length: n }, (_, i) => `${prefix}${String(i).padStart(6, '0')}`);

describe('token file', () => {
  it('decodes the sample .vpptoken fixture (+02:00 offset)', () => {
    const text = fixture('v1-stoken-sample.vpptoken');
    const t = decodeVppToken(text);
    expect(t.sToken).toBe(text.trim());
    expect(t.orgName).toBe('blabla GmbH');
    expect(t.token.startsWith('VGhpcyBpcyBh')).toBe(true);
    expect(t.expiresAt.toISOString()).toBe('2020-12-31T11:57:19.000Z');
    // Bytes read straight from disk give the same answer.
    expect(
      decodeVppToken(readFileSync(path.join(fixtures, 'v1-stoken-sample.vpptoken'))).expiresAt.getTime(),
    ).toBe(t.expiresAt.getTime());
  });

  it("normalises Apple's +0000 form and other offsets", () => {
    const file = Buffer.from(
      JSON.stringify({ token: 'abc', expDate: '2030-11-08T22:33:22+0000', orgName: 'Org' }),
    ).toString('base64');
    expect(decodeVppToken(file).expiresAt.toISOString()).toBe('2030-11-08T22:33:22.000Z');
    expect(parseExpDate('2030-11-08T22:33:22-0530')?.toISOString()).toBe('2030-11-09T04:03:22.000Z');
    expect(parseExpDate('2030-11-08T22:33:22Z')?.toISOString()).toBe('2030-11-08T22:33:22.000Z');
    // A file whose base64 was wrapped by a mail client still decodes, to one header-safe line.
    const wrapped = `${file.slice(0, 40)}\r\n${file.slice(40)}\n`;
    expect(decodeVppToken(wrapped).sToken).toBe(file);
    // Round trip through the encoder the fake and the demo use.
    const enc = encodeVppToken({ token: 't', orgName: 'O', expiresAt: new Date('2031-02-03T04:05:06Z') });
    expect(decodeVppToken(enc)).toMatchObject({
      token: 't',
      orgName: 'O',
      expiresAt: new Date('2031-02-03T04:05:06Z'),
    });
  });

  const b64 = (s: string) => Buffer.from(s, 'utf8').toString('base64');
  const cases: Array<[string, string | Uint8Array, RegExp | string]> = [
    ['empty file', '   \n', 'not base64: the file is empty'],
    ['not base64', 'this is not base64!', 'not base64: unexpected character "!"'],
    ['binary, not text', new Uint8Array([0xff, 0xfe, 0x00, 0x81]), /^not base64/],
    ['base64 of non-JSON', b64('hello, I am not JSON'), /^not JSON: /],
    ['JSON array', b64('[1,2]'), /^not JSON object/],
    [
      'missing token',
      b64(JSON.stringify({ expDate: '2030-11-08T22:33:22+0000', orgName: 'O' })),
      'missing field "token"',
    ],
    ['missing expDate', b64(JSON.stringify({ token: 't', orgName: 'O' })), 'missing field "expDate"'],
    [
      'missing orgName',
      b64(JSON.stringify({ token: 't', expDate: '2030-11-08T22:33:22+0000' })),
      'missing field "orgName"',
    ],
    [
      'orgName not a string',
      b64(JSON.stringify({ token: 't', expDate: '2030-11-08T22:33:22+0000', orgName: 7 })),
      'field "orgName" is not a string',
    ],
    [
      'unparseable expDate',
      b64(JSON.stringify({ token: 't', expDate: '08/11/2030', orgName: 'O' })),
      'unparseable expDate "08/11/2030"',
    ],
    [
      'impossible expDate',
      b64(JSON.stringify({ token: 't', expDate: '2030-02-30T00:00:00+0000', orgName: 'O' })),
      'unparseable expDate "2030-02-30T00:00:00+0000"',
    ],
  ];
  for (const [name, input, message] of cases) {
    it(`refuses a token file: ${name}`, () => {
      let error: unknown;
      try {
        decodeVppToken(input);
      } catch (err) {
        error = err;
      }
      expect(error).toBeInstanceOf(VppTokenFileError);
      if (typeof message === 'string') expect((error as Error).message).toBe(message);
      else expect((error as Error).message).toMatch(message);
    });
  }
});

describe('error classification', () => {
  it('maps numbers and HTTP statuses to kinds', () => {
    const table: Array<[number | null, number, VppErrorKind]> = [
      [9621, 401, 'token_expired'],
      [9625, 200, 'token_revoked'],
      [9622, 200, 'token_invalid'],
      [9722, 400, 'token_invalid'],
      [9709, 200, 'insufficient_licenses'],
      [9706, 200, 'not_revocable'],
      [9707, 200, 'not_device_assignable'],
      [9610, 200, 'license_not_found'],
      [9646, 200, 'rate_limited'],
      [null, 429, 'rate_limited'],
      [9603, 500, 'transient'],
      [null, 503, 'transient'],
      [9700, 400, 'limit_exceeded'],
      [9705, 400, 'limit_exceeded'],
      [9706 + 100, 400, 'unknown'],
      [null, 404, 'unknown'],
    ];
    for (const [n, status, kind] of table)
      expect([n, status, classifyVppError(n, status)]).toEqual([n, status, kind]);
    expect(new Set(VPP_ERROR_KINDS).size).toBe(12);
  });

  it('surfaces every token mode of the fake as its kind', async () => {
    const fake = await startFake();
    const time = fastTime();
    const expected: Array<[Parameters<FakeVppService['addToken']>[0]['mode'], VppErrorKind, number, number]> =
      [
        ['expired', 'token_expired', 9621, 401],
        ['revoked', 'token_revoked', 9625, 401],
        ['invalid', 'token_invalid', 9622, 200],
      ];
    for (const [mode, kind, number, status] of expected) {
      const c = client(fake, seedToken(fake, mode), time);
      const err = await rejection(c.clientConfig());
      expect([mode, err.kind, err.errorNumber, err.httpStatus, err.attempts]).toEqual([
        mode,
        kind,
        number,
        status,
        1,
      ]);
    }
    // A token Apple never issued reads like the fixture: HTTP 200 with 9622.
    const unknown = await rejection(client(fake, 'bm90LWEtdG9rZW4=', time).assets());
    expect(unknown.kind).toBe('token_invalid');
    expect(unknown.httpStatus).toBe(200);
    expect(JSON.parse(unknown.raw!)).toEqual(JSON.parse(fixture('v2-error-9622-invalid-token-http200.json')));
  });

  it('refuses to claim a location another MDM holds, unless taking over, and then stops writing', async () => {
    const fake = await startFake();
    const time = fastTime();
    const sToken = seedToken(fake, 'other_mdm');
    fake.addAsset(sToken, { adamId: '100', total: 10 });
    const c = client(fake, sToken, time);
    const err = await rejection(
      c.claim({ notificationUrl: 'http://127.0.0.1:1/vpp/notify', notificationAuthToken: 'n' }),
    );
    expect(err.kind).toBe('other_mdm');
    expect(err.message).toContain('other-mdm-0001');
    expect(fake.calls('POST client/config')).toBe(0);
    // Having seen the foreign claim, the client sends no writes at all.
    const blocked = await rejection(c.associate(['100'], ['S1']));
    expect(blocked.kind).toBe('other_mdm');
    expect(fake.calls('POST assets/associate')).toBe(0);
    expect((await c.claimState()).state).toBe('other_mdm');

    const config = await c.claim({
      takeOver: true,
      notificationUrl: 'http://127.0.0.1:1/vpp/notify',
      notificationAuthToken: 'secret-n',
    });
    expect(config.mdmInfo).toEqual(MDM);
    expect(fake.clientState(sToken)).toMatchObject({
      mdmInfo: MDM,
      notificationUrl: 'http://127.0.0.1:1/vpp/notify',
      notificationAuthToken: 'secret-n',
      notificationTypes: ['ASSET_MANAGEMENT', 'ASSET_COUNT'],
    });
    expect((await c.claimState()).state).toBe('ours');
    expect((await c.associate(['100'], ['S1'])).events).toHaveLength(1);
  });

  it('surfaces injected 9709, 9610 and the asynchronous 9706/9707 failures as their kinds', async () => {
    const fake = await startFake();
    const time = fastTime();
    const sToken = seedToken(fake);
    fake.addAsset(sToken, { adamId: '1', total: 5 });
    fake.addAsset(sToken, { adamId: '2', total: 5, deviceAssignable: false });
    fake.addAsset(sToken, { adamId: '3', total: 5, revocable: false });
    const c = client(fake, sToken, time);

    fake.injectFault({ type: 'error9709', count: 1, endpoint: 'POST assets/associate' });
    const e9709 = await rejection(c.associate(['1'], ['A']));
    expect([e9709.kind, e9709.errorNumber, e9709.attempts]).toEqual(['insufficient_licenses', 9709, 1]);
    fake.injectFault({ type: 'error9610', count: 1 });
    const e9610 = await rejection(c.assignments({ adamId: '1' }));
    expect([e9610.kind, e9610.errorNumber]).toEqual(['license_not_found', 9610]);

    const notAssignable = await c.associate(['2'], ['A', 'B']);
    fake.assign(sToken, '3', ['C']);
    const revoke = await c.revoke(['C']);
    await fake.completePending();
    const s1 = await c.eventStatus(notAssignable.events[0]!.eventId);
    expect(s1.eventStatus).toBe('FAILED');
    expect(s1.failures.map((f) => [classifyVppError(f.errorNumber, 200), f.errorInfo.serialNumbers])).toEqual(
      [['not_device_assignable', ['A', 'B']]],
    );
    const s2 = await c.eventStatus(revoke.events[0]!.eventId);
    expect(s2.failures.map((f) => [classifyVppError(f.errorNumber, 200), f.errorInfo.serialNumbers])).toEqual(
      [['not_revocable', ['C']]],
    );
    expect(JSON.parse(s2.raw)).toMatchObject({ eventStatus: 'FAILED', eventType: 'REVOKE' });
  });

  it('surfaces a request over the service limits as limit_exceeded', async () => {
    const fake = await startFake({ limits: { maxSerialNumbers: 1000 } });
    const time = fastTime();
    const sToken = seedToken(fake);
    fake.addAsset(sToken, { adamId: '1', total: 5000 });
    // The client is told a larger limit than the service enforces.
    const lying: typeof fetch = async (input, init) => {
      const res = await fetch(input, init);
      if (!String(input).endsWith('/service/config')) return res;
      const body = (await res.json()) as { limits: Record<string, number> };
      body.limits['maxSerialNumbers'] = 5000;
      return new Response(JSON.stringify(body), {
        status: 200,
        headers: { 'content-type': 'application/json' },
      });
    };
    const err = await rejection(client(fake, sToken, time, { fetch: lying }).associate(['1'], serials(2500)));
    expect([err.kind, err.errorNumber, err.httpStatus]).toEqual(['limit_exceeded', 9701, 400]);
  });
});

describe('batching', () => {
  it('splits 2,500 serials into 3 associate calls and 30 assets into 2', async () => {
    const fake = await startFake();
    const time = fastTime();
    const sToken = seedToken(fake);
    for (let i = 0; i < 30; i++) fake.addAsset(sToken, { adamId: String(1000 + i), total: 10_000 });
    const c = client(fake, sToken, time);

    const big = await c.associate(['1000'], serials(2500));
    expect(fake.calls('POST assets/associate')).toBe(3);
    expect(big.events.map((e) => e.serialNumbers.length)).toEqual([1000, 1000, 500]);
    expect(new Set(big.events.map((e) => e.eventId)).size).toBe(3);
    expect(big.failed).toEqual([]);

    fake.resetCounters();
    const wide = await c.associate(
      Array.from({ length: 30 }, (_, i) => String(1000 + i)),
      ['X1', 'X2'],
    );
    expect(fake.calls('POST assets/associate')).toBe(2);
    expect(wide.events.map((e) => e.assets.length)).toEqual([25, 5]);

    fake.resetCounters();
    const both = await c.disassociate(
      Array.from({ length: 30 }, (_, i) => String(1000 + i)),
      serials(2500),
    );
    expect(fake.calls('POST assets/disassociate')).toBe(6);
    expect(both.events).toHaveLength(6);
  });

  it('follows the limits service/config announces, re-read after 5 minutes', async () => {
    const fake = await startFake({ limits: { maxSerialNumbers: 100, maxAssets: 2 } });
    const time = fastTime();
    const sToken = seedToken(fake);
    fake.addAsset(sToken, { adamId: '1', total: 10_000 });
    const c = client(fake, sToken, time);
    await c.associate(['1'], serials(250));
    expect(fake.calls('POST assets/associate')).toBe(3);
    await c.serviceConfig();
    expect(fake.calls('GET service/config')).toBe(1);
    time.clock.advance(5 * 60_000);
    await c.serviceConfig();
    expect(fake.calls('GET service/config')).toBe(2);
  });

  it('reports later batches a dead token stopped, without sending them', async () => {
    const fake = await startFake();
    const time = fastTime();
    const sToken = seedToken(fake);
    fake.addAsset(sToken, { adamId: '1', total: 10_000 });
    let posts = 0;
    const c = client(fake, sToken, time, {
      fetch: async (input, init) => {
        if (init?.method === 'POST' && ++posts === 2) fake.setMode(sToken, 'revoked');
        return fetch(input, init);
      },
    });
    const result = await c.associate(['1'], serials(3000));
    expect(result.events).toHaveLength(1);
    expect(result.failed.map((f) => [f.error.kind, f.serialNumbers.length])).toEqual([
      ['token_revoked', 1000],
      ['token_revoked', 1000],
    ]);
    expect(fake.calls('POST assets/associate')).toBe(2);
  });
});

describe('pacing', () => {
  const maxInAnySecond = (times: number[]) => {
    let max = 0;
    for (let i = 0, j = 0; i < times.length; i++) {
      while (times[i]! - times[j]! >= 1000) j++;
      max = Math.max(max, i - j + 1);
    }
    return max;
  };

  it('never exceeds the service rate (5/s, 20 calls, shared manual clock)', async () => {
    const time = fastTime();
    const fake = await startFake({ clock: time.clock, limits: { requestsPerSecond: 5 }, enforceRate: true });
    const c = client(fake, seedToken(fake), time, { maxRetries: 0 });
    await c.serviceConfig();
    for (let i = 0; i < 20; i++) await c.clientConfig();
    const times = fake.log().map((e) => e.at);
    expect(times).toHaveLength(21);
    expect(fake.log().filter((e) => e.status === 429)).toEqual([]);
    expect(maxInAnySecond(times)).toBe(5);
    expect(times.at(-1)! - times[0]!).toBeGreaterThanOrEqual(4000);
    expect(c.stats().pacedMs).toBeGreaterThanOrEqual(3800);
  });

  it('the same check catches an unpaced client', async () => {
    const time = fastTime();
    const fake = await startFake({ clock: time.clock, limits: { requestsPerSecond: 5 }, enforceRate: true });
    const c = client(fake, seedToken(fake), time, { maxRetries: 0, pacing: false });
    const results = await Promise.allSettled(Array.from({ length: 20 }, () => c.clientConfig()));
    expect(results.filter((r) => r.status === 'rejected')).toHaveLength(15);
    expect(maxInAnySecond(fake.log().map((e) => e.at))).toBeGreaterThan(5);
  });

  it('paces concurrent callers too, in real time', async () => {
    const fake = await startFake({ limits: { requestsPerSecond: 40 }, enforceRate: true });
    const c = new VppClient({
      baseUrl: fake.url,
      sToken: seedToken(fake),
      clock: systemClock,
      mdmInfo: MDM,
      maxRetries: 0,
    });
    await c.serviceConfig();
    await Promise.all(Array.from({ length: 20 }, () => c.clientConfig()));
    const times = fake.log().map((e) => e.at);
    expect(fake.log().filter((e) => e.status === 429)).toEqual([]);
    expect(maxInAnySecond(times)).toBeLessThanOrEqual(40);
    expect(times.at(-1)! - times[0]!).toBeGreaterThanOrEqual(20 * 25 - 50);
  });

  it('the limiter alone: burst 1 keeps every window at the rate', async () => {
    const time = fastTime();
    const limiter = new RateLimiter({ clock: time.clock, sleep: time.sleep, perSecond: 15 });
    const at: number[] = [];
    for (let i = 0; i < 100; i++) {
      await limiter.take();
      at.push(time.clock.now().getTime());
    }
    expect(maxInAnySecond(at)).toBe(15);
  });
});

describe('retries', () => {
  it('backs off exponentially with jitter under a burst of 429s, then succeeds', async () => {
    const time = fastTime();
    const fake = await startFake();
    const c = client(fake, seedToken(fake), time, {
      pacing: false,
      backoff: { baseMs: 100, capMs: 10_000 },
      random: () => 1,
    });
    fake.injectFault({ type: 'http429', count: 3 });
    await c.clientConfig();
    expect(fake.calls('GET client/config')).toBe(4);
    expect(time.sleeps).toEqual([100, 200, 400]);
    expect(c.stats()).toMatchObject({ requests: 4, retries: 3 });
  });

  it('stops after maxRetries and never waits longer than the cap', async () => {
    const time = fastTime();
    const fake = await startFake();
    const c = client(fake, seedToken(fake), time, {
      pacing: false,
      maxRetries: 6,
      backoff: { baseMs: 100, capMs: 450 },
      random: () => 1,
    });
    fake.injectFault({ type: 'http429', count: 1000 });
    const err = await rejection(c.clientConfig());
    expect([err.kind, err.errorNumber, err.httpStatus, err.attempts]).toEqual(['rate_limited', 9646, 429, 7]);
    expect(fake.calls('GET client/config')).toBe(7);
    expect(time.sleeps).toEqual([100, 200, 400, 450, 450, 450]);
  });

  it('spreads retries with jitter: half fixed, half random', async () => {
    const time = fastTime();
    const fake = await startFake();
    const c = client(fake, seedToken(fake), time, {
      pacing: false,
      backoff: { baseMs: 100, capMs: 10_000 },
      random: () => 0,
    });
    fake.injectFault({ type: 'http429', count: 2 });
    await c.clientConfig();
    expect(time.sleeps).toEqual([50, 100]);
  });

  it('honours Retry-After on 503 and 429, and gives up on an unreasonable one', async () => {
    const time = fastTime();
    const fake = await startFake();
    const c = client(fake, seedToken(fake), time, { pacing: false, maxRetryAfterMs: 60_000 });
    fake.injectFault({ type: 'http503', count: 1, retryAfterSec: 7 });
    fake.injectFault({ type: 'http429', count: 1, retryAfterSec: 3 });
    await c.clientConfig();
    expect(time.sleeps).toEqual([3000, 7000]);

    fake.injectFault({ type: 'http503', count: 1, retryAfterSec: 3600 });
    const err = await rejection(c.clientConfig());
    expect([err.kind, err.httpStatus, err.retryAfterMs, err.attempts]).toEqual([
      'transient',
      503,
      3_600_000,
      1,
    ]);
    expect(parseRetryAfter('Wed, 21 Oct 2015 07:28:30 GMT', new Date('2015-10-21T07:28:00Z'))).toBe(30_000);
  });

  it('retries 9603 (HTTP 500) and network failures; not 9622 on HTTP 200', async () => {
    const time = fastTime();
    const fake = await startFake();
    const sToken = seedToken(fake);
    const c = client(fake, sToken, time, { pacing: false });
    fake.injectFault({ type: 'error9603', count: 2 });
    await c.clientConfig();
    expect(fake.calls('GET client/config')).toBe(3);

    let failures = 2;
    const flaky = client(fake, sToken, time, {
      pacing: false,
      fetch: async (input, init) => {
        if (failures-- > 0) throw new TypeError('fetch failed');
        return fetch(input, init);
      },
    });
    await flaky.clientConfig();
    expect(flaky.stats().requests).toBe(3);

    fake.setMode(sToken, 'invalid');
    fake.resetCounters();
    const err = await rejection(c.clientConfig());
    expect([err.kind, err.attempts]).toEqual(['token_invalid', 1]);
    expect(fake.calls()).toBe(1);
  });
});

describe('reading', () => {
  it('reads every page of assets and assignments, and deltas since a version', async () => {
    const time = fastTime();
    const fake = await startFake({ pageSize: 3 });
    const sToken = seedToken(fake);
    for (let i = 0; i < 10; i++)
      fake.addAsset(sToken, { adamId: String(500 + i), total: 20, productType: i % 2 ? 'Book' : 'App' });
    fake.assign(sToken, '500', serials(7));
    const c = client(fake, sToken, time);

    const assets = await c.assets();
    expect(assets).toHaveLength(10);
    expect(fake.calls('GET assets')).toBe(4);
    expect(assets.find((a) => a.adamId === '500')).toMatchObject({
      assignedCount: 7,
      availableCount: 13,
      totalCount: 20,
      deviceAssignable: true,
    });
    expect(await c.assets({ productType: 'Book' })).toHaveLength(5);

    const first = await c.assignments({ adamId: '500' });
    expect(first.assignments).toHaveLength(7);
    expect(fake.calls('GET assignments')).toBe(3);
    expect(first.versionId).not.toBeNull();

    fake.assign(sToken, '501', ['NEW1', 'NEW2']);
    const delta = await c.assignments({ sinceVersionId: first.versionId! });
    expect(delta.assignments.map((a) => `${a.adamId}:${a.serialNumber}`)).toEqual(['501:NEW1', '501:NEW2']);
    expect(Number(delta.versionId)).toBeGreaterThan(Number(first.versionId));
  });

  it('stops a paging loop that does not advance', async () => {
    const time = fastTime();
    const body = JSON.stringify({ assets: [], currentPageIndex: 0, nextPageIndex: 0, totalPages: 5 });
    const c = new VppClient({
      baseUrl: 'http://vpp.invalid/mdm/v2',
      sToken: 'x',
      clock: time.clock,
      sleep: time.sleep,
      mdmInfo: MDM,
      fetch: async () => new Response(body, { status: 200 }),
    });
    const err = await rejection(c.assets());
    expect(err.message).toContain('paging does not advance');
  });

  it('a renewed token of the same location sees the same licences and claim', async () => {
    const time = fastTime();
    const fake = await startFake();
    const old = seedToken(fake);
    fake.addAsset(old, { adamId: '77', total: 5 });
    fake.assign(old, '77', ['A']);
    await client(fake, old, time).claim();
    const renewed = FakeVppService.tokenFile(
      'renewed',
      'Example School Board',
      new Date('2027-06-01T00:00:00Z'),
    );
    fake.addToken({
      sToken: renewed,
      orgName: 'Example School Board',
      locationName: 'Main campus',
      sameLocationAs: old,
    });
    const c = client(fake, renewed, time);
    expect((await c.claimState()).state).toBe('ours');
    expect((await c.assignments({ adamId: '77' })).assignments.map((a) => a.serialNumber)).toEqual(['A']);
    fake.setMode(old, 'expired');
    expect((await c.assets())[0]).toMatchObject({ adamId: '77', assignedCount: 1 });
  });

  it('records tokenExpirationDate during the last 15 days', async () => {
    const time = fastTime('2026-03-01T00:00:00Z');
    const fake = await startFake({ clock: time.clock });
    const sToken = FakeVppService.tokenFile('t', 'Org', new Date('2026-03-10T00:00:00Z'));
    fake.addToken({ sToken, orgName: 'Org', locationName: 'L', expiresAt: new Date('2026-03-10T00:00:00Z') });
    const c = client(fake, sToken, time);
    await c.clientConfig();
    expect(c.tokenExpirationDate?.toISOString()).toBe('2026-03-10T00:00:00.000Z');
  });
});

describe('contract: real bodies', () => {
  const stub = (status: number, body: string, calls: { n: number }) => {
    const time = fastTime();
    return new VppClient({
      baseUrl: 'http://vpp.invalid/mdm/v2',
      sToken: 'x',
      clock: time.clock,
      sleep: time.sleep,
      mdmInfo: MDM,
      maxRetries: 2,
      fetch: async () => {
        calls.n++;
        return new Response(body, { status, headers: { 'content-type': 'application/json' } });
      },
    });
  };

  it('parses the associate event body', async () => {
    const body = fixture('v2-associate-assets-event.json');
    expect(parseEventResponse(body).eventId).toBe('123');
    const calls = { n: 0 };
    const c = stub(200, body, calls);
    // service/config answered with the same body: no limits in it, so the defaults apply.
    const result = await c.associate(['1'], ['S1']);
    expect(result.events.map((e) => [e.eventId, e.raw])).toEqual([['123', body]]);
    expect((await c.limits()).maxSerialNumbers).toBe(1000);
  });

  it('reads the 9622 body served with HTTP 200 as an invalid token, not a success', async () => {
    const body = fixture('v2-error-9622-invalid-token-http200.json');
    const calls = { n: 0 };
    const err = await rejection(stub(200, body, calls).clientConfig());
    expect([err.kind, err.errorNumber, err.httpStatus, err.errorMessage, err.raw]).toEqual([
      'token_invalid',
      9622,
      200,
      'Invalid authentication token',
      body,
    ]);
    expect(calls.n).toBe(1);
  });

  it('reads the 9603 body with HTTP 500 as transient and retries it within bounds', async () => {
    const body = fixture('v2-error-9603-internal-http500.json');
    const calls = { n: 0 };
    const err = await rejection(stub(500, body, calls).eventStatus('e1'));
    expect([err.kind, err.errorNumber, err.httpStatus, err.raw]).toEqual(['transient', 9603, 500, body]);
    expect(calls.n).toBe(3);
  });

  it('recognises the v1 bodies as legacy and the v2 ones as not', () => {
    const v1 = [
      'v1-VPPClientConfigSrv-response.json',
      'v1-VPPServiceConfigSrv-with-errorCodes.json',
      'v1-error-9610-license-not-found.json',
      'v1-error-9628-not-device-assignable.json',
      'v1-getAssignments-by-adamId.json',
      'v1-getVPPAssetsSrv-with-license-counts.json',
      'v1-manageVPPLicensesByAdamIdSrv-associate-users.json',
    ];
    for (const name of v1) expect([name, detectLegacyBody(JSON.parse(fixture(name)))]).toEqual([name, true]);
    for (const name of [
      'v2-associate-assets-event.json',
      'v2-error-9622-invalid-token-http200.json',
      'v2-error-9603-internal-http500.json',
    ]) {
      expect([name, detectLegacyBody(JSON.parse(fixture(name)))]).toEqual([name, false]);
    }
    expect(
      detectLegacyBody({ assets: [], currentPageIndex: 0, totalPages: 1, versionId: '3', uId: '1' }),
    ).toBe(false);
    // v1 error bodies still classify by number.
    const e9610 = extractError(JSON.parse(fixture('v1-error-9610-license-not-found.json')))!;
    expect(classifyVppError(e9610.errorNumber, 200)).toBe('license_not_found');
    const e9628 = extractError(JSON.parse(fixture('v1-error-9628-not-device-assignable.json')))!;
    expect(classifyVppError(e9628.errorNumber, 200)).toBe('not_device_assignable');
  });

  it('refuses a legacy success body instead of reading it as v2', async () => {
    const calls = { n: 0 };
    const err = await rejection(
      stub(200, fixture('v1-getVPPAssetsSrv-with-license-counts.json'), calls).assets(),
    );
    expect(err.kind).toBe('unknown');
    expect(err.message).toContain('legacy (v1) body');
    expect(calls.n).toBe(1);
  });

  it('keeps the fake honest: its bodies are v2 and parse', async () => {
    const time = fastTime();
    const fake = await startFake();
    const sToken = seedToken(fake);
    fake.addAsset(sToken, { adamId: '1', total: 1 });
    const seen: unknown[] = [];
    const c = client(fake, sToken, time, {
      fetch: async (input, init) => {
        const res = await fetch(input, init);
        const text = await res.text();
        seen.push(JSON.parse(text));
        return new Response(text, { status: res.status, headers: res.headers });
      },
    });
    await c.serviceConfig();
    await c.clientConfig();
    await c.assets();
    const { events } = await c.associate(['1'], ['S1']);
    await c.eventStatus(events[0]!.eventId);
    expect(seen.length).toBe(5);
    for (const body of seen) expect(detectLegacyBody(body)).toBe(false);
  });
});

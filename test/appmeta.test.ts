import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { AppMetaClient, AppMetaError, parseAppMetaResult } from '../src/apple/appmeta/client.ts';
import type { AppMetaClientOptions } from '../src/apple/appmeta/client.ts';
import { isAppleBuiltinBundle, isIWorkBundle } from '../src/core/apple-apps.ts';
import { ManualClock } from '../src/core/clock.ts';
import { FakeAppMeta } from '../src/sim/appmeta/server.ts';

const HOUR = 3_600_000;
let fake: FakeAppMeta;

beforeAll(async () => {
  fake = new FakeAppMeta();
  await fake.listen();
});
afterAll(async () => {
  await fake.close();
});

/** Each test gets its own ids so cached answers and the shared fake do not leak between tests. */
let nextId = 100_000_000;
function seedApps(n: number, extra: Partial<Parameters<FakeAppMeta['add']>[0]> = {}): string[] {
  const ids: string[] = [];
  for (let i = 0; i < n; i++) {
    const adamId = String(nextId++);
    fake.add({
      adamId,
      name: `App ${adamId}`,
      bundleId: `jp.example.app${adamId}`,
      sizeBytes: 1_000_000 + i,
      ...extra,
    });
    ids.push(adamId);
  }
  return ids;
}

function client(clock: ManualClock, o: Partial<AppMetaClientOptions> = {}): AppMetaClient {
  return new AppMetaClient({ baseUrl: fake.url, clock, ...o });
}

let callsBefore = 0;
beforeEach(() => {
  callsBefore = fake.calls;
});
const callsSince = () => fake.calls - callsBefore;

describe('AppMetaClient against FakeAppMeta', () => {
  it('looks several ids up in one request and parses Apple’s shape', async () => {
    fake.add({
      adamId: '361309726',
      name: 'Pages',
      bundleId: 'com.apple.Pages',
      sizeBytes: 612_345_678,
      minimumOsVersion: '17.0',
      supportedDevices: ['iPadPro11M4-iPadPro11M4'],
      contentRating: '4+',
      version: '14.2',
    });
    const [other] = seedApps(1, { contentRating: '17+', minimumOsVersion: '16.4' });
    const c = client(new ManualClock());
    const got = await c.lookup(['361309726', other!]);

    expect(callsSince()).toBe(1);
    const last = fake.requests.at(-1)!;
    expect(last.ids).toEqual(['361309726', other]);
    expect(last.country).toBe('jp');
    expect(got.size).toBe(2);
    const pages = got.get('361309726')!;
    expect(pages).toMatchObject({
      adamId: '361309726',
      name: 'Pages',
      bundleId: 'com.apple.Pages',
      sizeBytes: 612_345_678,
      minimumOsVersion: '17.0',
      supportedDevices: ['iPadPro11M4-iPadPro11M4'],
      contentRating: '4+',
      version: '14.2',
    });
    expect(pages.artworkUrl).toMatch(/100x100bb\.jpg$/);
    const raw = JSON.parse(pages.raw) as Record<string, unknown>;
    expect(raw.fileSizeBytes).toBe('612345678');
    expect(got.get(other!)).toMatchObject({ contentRating: '17+', minimumOsVersion: '16.4' });
  });

  it('asks in batches: 250 ids with batchSize 100 → 3 requests', async () => {
    const ids = seedApps(250);
    const c = client(new ManualClock(), { batchSize: 100 });
    const got = await c.lookup(ids);
    expect(callsSince()).toBe(3);
    expect(fake.requests.slice(-3).map((r) => r.ids.length)).toEqual([100, 100, 50]);
    expect(got.size).toBe(250);
    expect(c.requests).toBe(3);
  });

  it('caches per (adamId, country) on the clock until the TTL runs out', async () => {
    const ids = seedApps(3);
    const clock = new ManualClock();
    const c = client(clock, { ttlMs: 24 * HOUR });
    await c.lookup(ids);
    expect(callsSince()).toBe(1);

    clock.advance(24 * HOUR - 1);
    const again = await c.lookup(ids);
    expect(again.size).toBe(3);
    expect(callsSince()).toBe(1);

    // Another storefront is another cache entry.
    await c.lookup(ids, 'US');
    expect(callsSince()).toBe(2);
    expect(fake.requests.at(-1)!.country).toBe('us');

    clock.advance(1);
    fake.add({ adamId: ids[0]!, name: 'Renamed', bundleId: 'jp.example.renamed', sizeBytes: 5 });
    const fresh = await c.lookup(ids);
    expect(callsSince()).toBe(3);
    expect(fresh.get(ids[0]!)?.name).toBe('Renamed');
  });

  it('asks only for the ids not cached yet, and once for duplicates', async () => {
    const ids = seedApps(4);
    const c = client(new ManualClock());
    await c.lookup(ids.slice(0, 2));
    await c.lookup([...ids, ids[3]!, ` ${ids[2]!} `]);
    expect(callsSince()).toBe(2);
    expect(fake.requests.at(-1)!.ids).toEqual(ids.slice(2));
  });

  it('leaves unknown ids out and caches "not found" for the shorter TTL', async () => {
    const [known] = seedApps(1);
    const unknown = String(nextId++);
    const clock = new ManualClock();
    const c = client(clock, { notFoundTtlMs: HOUR });
    const got = await c.lookup([known!, unknown, 'not-an-id']);
    expect([...got.keys()]).toEqual([known]);
    expect(fake.requests.at(-1)!.ids).toEqual([known, unknown]);

    clock.advance(HOUR - 1);
    expect((await c.lookup([unknown])).size).toBe(0);
    expect(callsSince()).toBe(1);

    // Released meanwhile: found once the negative entry expires.
    fake.add({ adamId: unknown, name: 'New', bundleId: 'jp.example.new', sizeBytes: 1 });
    clock.advance(1);
    expect((await c.lookup([unknown])).get(unknown)?.bundleId).toBe('jp.example.new');
    expect(callsSince()).toBe(2);
  });

  it('honours storefront availability', async () => {
    const [onlyUs] = seedApps(1, { countries: ['us'] });
    const c = client(new ManualClock());
    expect((await c.lookup([onlyUs!])).size).toBe(0);
    expect((await c.lookup([onlyUs!], 'us')).size).toBe(1);
  });

  it('shares one request between concurrent look-ups of the same ids', async () => {
    const ids = seedApps(2);
    const c = client(new ManualClock());
    const [a, b] = await Promise.all([c.lookup(ids), c.lookup(ids)]);
    expect(callsSince()).toBe(1);
    expect(a.size).toBe(2);
    expect(b.size).toBe(2);
  });

  it('turns HTTP 503 into AppMetaError and does not cache the failure', async () => {
    const ids = seedApps(1);
    const c = client(new ManualClock());
    fake.failNext(1, 503);
    const err = await c.lookup(ids).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AppMetaError);
    expect(err).toMatchObject({ kind: 'http', status: 503 });
    expect((err as Error).message).toMatch(/HTTP 503.*Service unavailable/);
    expect((await c.lookup(ids)).size).toBe(1);
  });

  it('turns a malformed body into AppMetaError', async () => {
    const ids = seedApps(1);
    const c = client(new ManualClock());
    fake.failNext(1, 200, '<html>Service temporarily unavailable</html>');
    await expect(c.lookup(ids)).rejects.toMatchObject({ name: 'AppMetaError', kind: 'malformed' });
    fake.failNext(1, 200, '{"resultCount": 1}');
    await expect(c.lookup(ids)).rejects.toThrow(/no 'results' array/);
  });

  it('keeps earlier batches cached when a later one fails', async () => {
    const ids = seedApps(3);
    const c = client(new ManualClock(), { batchSize: 2 });
    await c.lookup(ids.slice(0, 2));
    fake.failNext(1, 500);
    await expect(c.lookup(ids)).rejects.toBeInstanceOf(AppMetaError);
    expect(callsSince()).toBe(2);
    expect((await c.lookup(ids.slice(0, 2))).size).toBe(2);
    expect(callsSince()).toBe(2);
  });

  it('reports network errors and timeouts as AppMetaError', async () => {
    const refused = new AppMetaClient({ baseUrl: 'http://127.0.0.1:1', clock: new ManualClock() });
    await expect(refused.lookup(['1'])).rejects.toMatchObject({ kind: 'network' });

    const silent = http.createServer(() => {
      // never answers: the client's timeout must end the wait
    });
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    try {
      const { port } = silent.address() as AddressInfo;
      const slow = new AppMetaClient({
        baseUrl: `http://127.0.0.1:${port}`,
        clock: new ManualClock(),
        timeoutMs: 100,
      });
      await expect(slow.lookup(['1'])).rejects.toMatchObject({ kind: 'timeout' });
    } finally {
      silent.closeAllConnections();
      await new Promise<void>((resolve) => silent.close(() => resolve()));
    }
  });

  it('refuses a country that is not two letters', async () => {
    const c = client(new ManualClock());
    await expect(c.lookup(['1'], 'japan')).rejects.toMatchObject({ kind: 'invalid_argument' });
    expect(() => client(new ManualClock(), { batchSize: 0 })).toThrow(RangeError);
  });
});

describe('parseAppMetaResult', () => {
  it('tolerates missing fields and skips non-apps', () => {
    const m = parseAppMetaResult({ trackId: 42, bundleId: 'jp.example.min' });
    expect(m).toEqual({
      adamId: '42',
      name: '',
      bundleId: 'jp.example.min',
      sizeBytes: null,
      minimumOsVersion: null,
      supportedDevices: [],
      contentRating: null,
      version: null,
      artworkUrl: null,
      raw: '{"trackId":42,"bundleId":"jp.example.min"}',
    });
    expect(parseAppMetaResult({ trackId: 7, bundleId: 'x', fileSizeBytes: 'big' })?.sizeBytes).toBeNull();
    expect(parseAppMetaResult({ trackId: 7, bundleId: 'x', fileSizeBytes: 123 })?.sizeBytes).toBe(123);
    expect(parseAppMetaResult({ trackId: 7, wrapperType: 'ebook', trackName: 'A book' })).toBeNull();
    expect(parseAppMetaResult({ bundleId: 'x' })).toBeNull();
    expect(parseAppMetaResult('nope')).toBeNull();
  });
});

describe('Apple bundle helpers', () => {
  it('knows the built-in apps and leaves iWork and other App Store apps out', () => {
    for (const b of [
      'com.apple.mobilesafari',
      'com.apple.camera',
      'com.apple.MobileSMS',
      'com.apple.Maps',
      'com.apple.mobilemail',
      'com.apple.Preferences',
      'com.apple.MobileSafari',
    ]) {
      expect(isAppleBuiltinBundle(b), b).toBe(true);
    }
    for (const b of [
      'com.apple.Keynote',
      'com.apple.Pages',
      'com.apple.Numbers',
      'com.apple.mobilegarageband',
      'com.apple.iMovie',
      'jp.example.app',
      'com.applesauce.app',
      '',
    ]) {
      expect(isAppleBuiltinBundle(b), b).toBe(false);
    }
  });

  it('recognises Keynote, Pages and Numbers', () => {
    expect(isIWorkBundle('com.apple.Keynote')).toBe(true);
    expect(isIWorkBundle('com.apple.Pages')).toBe(true);
    expect(isIWorkBundle('com.apple.Numbers')).toBe(true);
    expect(isIWorkBundle('com.apple.mobilesafari')).toBe(false);
    expect(isIWorkBundle('jp.example.pages')).toBe(false);
  });
});

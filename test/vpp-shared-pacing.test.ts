// Issue 16, item 3 (decision 0021): the Apps and Books pacing per location is shared by every
// process on one PostgreSQL database — together they stay within Apple's rate, and a Retry-After
// one of them meets holds the others back.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { VppClient, locationKey } from '../src/apple/vpp/client.ts';
import type { VppClientOptions } from '../src/apple/vpp/client.ts';
import { VppError } from '../src/apple/vpp/errors.ts';
import { MemoryPacingState } from '../src/apple/vpp/limiter.ts';
import type { PacingState } from '../src/apple/vpp/limiter.ts';
import { ManualClock, systemClock } from '../src/core/clock.ts';
import type { Clock } from '../src/core/clock.ts';
import { FakeVppService } from '../src/sim/vpp/server.ts';
import type { FakeVppOptions } from '../src/sim/vpp/server.ts';
import { Store } from '../src/store/store.ts';
import { postgresAvailable, postgresSkipReason, startPostgres } from './support/pg.ts';
import type { ThrowawayPostgres } from './support/pg.ts';

if (!postgresAvailable) console.warn(`[vpp-shared-pacing.test] ${postgresSkipReason}`);

const MDM = { id: 'haishin-shared-pacing', name: 'haishin test' };
const closers: Array<() => Promise<void>> = [];
afterEach(async () => {
  while (closers.length > 0) await closers.pop()!();
});

async function startFake(options: FakeVppOptions): Promise<{ fake: FakeVppService; sToken: string }> {
  const fake = new FakeVppService(options);
  await fake.listen();
  closers.push(() => fake.close());
  const sToken = FakeVppService.tokenFile(
    `shared-${Math.random()}`,
    '教育委員会',
    new Date('2027-12-01T00:00:00Z'),
  );
  fake.addToken({ sToken, orgName: '教育委員会', locationName: '本庁' });
  return { fake, sToken };
}

/** A ManualClock whose sleeps move it (sequential callers only). */
function fastTime(start = '2026-12-07T09:00:00Z') {
  const clock = new ManualClock(start);
  const sleeps: number[] = [];
  const sleep = async (ms: number) => {
    sleeps.push(ms);
    clock.advance(ms);
  };
  return { clock, sleep, sleeps };
}

function client(
  fake: FakeVppService,
  sToken: string,
  clock: Clock,
  extra: Partial<VppClientOptions> = {},
): VppClient {
  return new VppClient({ baseUrl: fake.url, sToken, clock, mdmInfo: MDM, maxRetries: 0, ...extra });
}

const maxInAnySecond = (times: number[]) => {
  const sorted = [...times].sort((a, b) => a - b);
  let max = 0;
  for (let i = 0, j = 0; i < sorted.length; i++) {
    while (sorted[i]! - sorted[j]! >= 1000) j++;
    max = Math.max(max, i - j + 1);
  }
  return max;
};

describe('pacing shared in memory (one process, several clients of a location)', () => {
  it('two clients of one location on one MemoryPacingState keep the rate; apart they double it', async () => {
    const time = fastTime();
    const { fake, sToken } = await startFake({ clock: time.clock, limits: { requestsPerSecond: 5 } });
    const state = new MemoryPacingState();
    const paced = { perSecond: 5 };
    const a = client(fake, sToken, time.clock, { sleep: time.sleep, pacing: paced, pacingState: state });
    const b = client(fake, sToken, time.clock, { sleep: time.sleep, pacing: paced, pacingState: state });
    for (let i = 0; i < 10; i++) {
      await a.clientConfig();
      await b.clientConfig();
    }
    expect(maxInAnySecond(fake.log().map((e) => e.at))).toBe(5);

    const alone = fastTime('2026-12-08T09:00:00Z');
    const other = await startFake({ clock: alone.clock, limits: { requestsPerSecond: 5 } });
    const c = client(other.fake, other.sToken, alone.clock, { sleep: alone.sleep, pacing: paced });
    const d = client(other.fake, other.sToken, alone.clock, { sleep: alone.sleep, pacing: paced });
    for (let i = 0; i < 10; i++) {
      await c.clientConfig();
      await d.clientConfig();
    }
    expect(maxInAnySecond(other.fake.log().map((e) => e.at))).toBe(10);
  });
});

describe.skipIf(!postgresAvailable)('pacing shared through PostgreSQL (two processes)', () => {
  let pg: ThrowawayPostgres;
  /** Two stores on one database: two processes, as far as the database can tell. */
  let one: Store;
  let two: Store;
  beforeAll(async () => {
    pg = await startPostgres();
    one = await Store.open(pg.url, new Date());
    two = await Store.open(pg.url, new Date());
  }, 60_000);
  afterAll(async () => {
    await two?.close();
    await one?.close();
    pg?.stop();
  });

  it('the repo hands out each slot once, however many ask at once', async () => {
    const location = 'slots';
    const now = 1_800_000_000_000;
    const tats = await Promise.all(
      Array.from({ length: 40 }, (_, i) => (i % 2 ? one : two).vppPacing.advance(location, now, 100)),
    );
    expect(new Set(tats).size).toBe(40);
    expect([...tats].sort((x, y) => x - y)).toEqual(
      Array.from({ length: 40 }, (_, i) => now + (i + 1) * 100),
    );
    // A hold moves the bucket forward, never back.
    await one.vppPacing.holdUntil(location, now + 60_000);
    await two.vppPacing.holdUntil(location, now + 1_000);
    expect(await two.vppPacing.get(location)).toBe(now + 60_000);
    expect(await one.vppPacing.advance(location, now + 2_000, 74.07407407407408)).toBeCloseTo(
      now + 60_074.074,
      2,
    );
  });

  it(
    'two clients in real time, each with its own connection pool, stay within the rate together',
    { timeout: 20_000 },
    async () => {
      const { fake, sToken } = await startFake({ limits: { requestsPerSecond: 40 }, enforceRate: true });
      const a = client(fake, sToken, systemClock, { pacingState: one.vppPacing });
      const b = client(fake, sToken, systemClock, { pacingState: two.vppPacing });
      // service/config first: both pace at 90 % of the announced 40/s.
      await Promise.all([a.serviceConfig(), b.serviceConfig()]);
      await Promise.all(Array.from({ length: 30 }, (_, i) => ((i % 2 ? a : b) as VppClient).clientConfig()));
      const log = fake.log();
      expect(log.filter((e) => e.status === 429)).toEqual([]);
      const times = log.filter((e) => e.endpoint === 'GET client/config').map((e) => e.at);
      expect(times).toHaveLength(30);
      expect(maxInAnySecond(log.map((e) => e.at))).toBeLessThanOrEqual(40);
      // 30 calls at 36/s: the last one is paced ~29 intervals of 27.8 ms after the first.
      expect(Math.max(...times) - Math.min(...times)).toBeGreaterThanOrEqual(29 * (1000 / 36) - 50);
    },
  );

  it('a Retry-After met by one process holds the other back; a client pacing alone is not held', async () => {
    const time = fastTime('2026-12-09T09:00:00Z');
    const { fake, sToken } = await startFake({ clock: time.clock });
    const state = (store: Store): PacingState => store.vppPacing;
    const a = client(fake, sToken, time.clock, { sleep: time.sleep, pacingState: state(one) });
    const b = client(fake, sToken, time.clock, { sleep: time.sleep, pacingState: state(two) });
    await a.clientConfig();
    await b.clientConfig();
    const t0 = time.clock.now().getTime();
    fake.injectFault({ type: 'http429', count: 1, retryAfterSec: 5 });
    // A gives up at once (no retries) but Apple's "not before 5 s" holds the location for all.
    const err = await a.clientConfig().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(VppError);
    expect((err as VppError).httpStatus).toBe(429);
    time.sleeps.length = 0;
    await b.clientConfig();
    const last = fake.log().at(-1)!;
    expect(last.status).toBe(200);
    expect(last.at).toBeGreaterThanOrEqual(t0 + 5_000);
    expect(time.sleeps.reduce((x, y) => x + y, 0)).toBeGreaterThanOrEqual(4_900);
    expect(await one.vppPacing.get(locationKey(sToken))).toBeGreaterThanOrEqual(t0 + 5_000);

    // The same with a 503 and its backoff (Retry-After 2), the other way round.
    const t1 = time.clock.now().getTime();
    fake.injectFault({ type: 'http503', count: 1, retryAfterSec: 2 });
    await b.clientConfig().catch(() => undefined);
    await a.clientConfig();
    expect(fake.log().at(-1)!.at).toBeGreaterThanOrEqual(t1 + 2_000);

    // A client that paces alone (SQLite: one process) is not held by what the others met.
    const t2 = time.clock.now().getTime();
    fake.injectFault({ type: 'http429', count: 1, retryAfterSec: 30 });
    await a.clientConfig().catch(() => undefined);
    const c = client(fake, sToken, time.clock, { sleep: time.sleep });
    await c.clientConfig();
    expect(fake.log().at(-1)!.at).toBeLessThan(t2 + 1_000);
  });
});

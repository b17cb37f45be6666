// Issue 16, item 4: the event bus across processes over PostgreSQL's LISTEN/NOTIFY (decision 0020).
// The relay in memory (batching, the payload limit, a process's own messages, wake-ups), then the
// channel on a throwaway PostgreSQL: delivered between two "processes", and the LISTEN connection
// reopened after PostgreSQL terminated it.
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EventRelay, Soon, linkProcesses } from '../src/app/event-relay.ts';
import type { ProcessLink } from '../src/app/event-relay.ts';
import { EventBus } from '../src/engine/events.ts';
import type { EventOrigin, HaishinEvent, JobEvent } from '../src/engine/events.ts';
import { Store } from '../src/store/store.ts';
import { postgresAvailable, postgresSkipReason, startPostgres } from './support/pg.ts';
import { startTestServer } from './support/server.ts';
import type { TestServer } from './support/server.ts';
import type { ThrowawayPostgres } from './support/pg.ts';

if (!postgresAvailable) console.warn(`[event-relay.test] ${postgresSkipReason}`);

function job(n: number, to = 'success', reason: string | null = null): JobEvent {
  return {
    type: 'job',
    jobId: `job-${n}`,
    distributionId: 'dist-1',
    deviceId: `dev-${n}`,
    adamId: '361309726',
    from: 'executing',
    to,
    reason,
    retryCount: 0,
    at: '2026-12-07T09:00:00.000Z',
  };
}

/** Processes joined by a channel in memory: every payload reaches every relay, the sender's too (as NOTIFY does). */
function wire(count: number, maxBytes?: number) {
  const payloads: string[] = [];
  const relays: EventRelay[] = [];
  const buses: EventBus[] = [];
  const seen: { event: HaishinEvent; origin: EventOrigin }[][] = [];
  const wakes: { work: readonly string[]; released: boolean }[][] = [];
  for (let i = 0; i < count; i++) {
    const bus = new EventBus();
    const mine: { event: HaishinEvent; origin: EventOrigin }[] = [];
    bus.subscribe((event, origin) => mine.push({ event, origin }));
    const woken: { work: readonly string[]; released: boolean }[] = [];
    const relay = new EventRelay({
      bus,
      channel: {
        send: async (payload) => {
          payloads.push(payload);
          for (const r of relays) r.receive(payload);
        },
      },
      ...(maxBytes ? { maxBytes } : {}),
      onWake: (work, released) => woken.push({ work, released }),
    });
    relay.start();
    relays.push(relay);
    buses.push(bus);
    seen.push(mine);
    wakes.push(woken);
  }
  return { payloads, relays, buses, seen, wakes };
}

describe('EventRelay', () => {
  it('delivers what one process publishes to the others once, as made elsewhere, in order; never back to itself', async () => {
    const { relays, buses, seen, payloads } = wire(3);
    for (let i = 0; i < 10; i++) buses[0]!.publish(job(i));
    await relays[0]!.flush();
    // One burst, one NOTIFY.
    expect(payloads).toHaveLength(1);
    expect(seen[0]!.map((s) => s.origin)).toEqual(Array(10).fill('here'));
    for (const other of [seen[1]!, seen[2]!]) {
      expect(other.map((s) => s.origin)).toEqual(Array(10).fill('elsewhere'));
      expect(other.map((s) => (s.event as JobEvent).jobId)).toEqual(
        Array.from({ length: 10 }, (_, i) => `job-${i}`),
      );
    }
    expect(relays[0]!.stats.ignoredOwn).toBe(1);
    expect(relays[1]!.stats.received).toBe(1);
  });

  it('listeners of this process only do not see the others; the relay does not send them on', async () => {
    const { relays, buses, payloads } = wire(2);
    const counted: string[] = [];
    buses[1]!.subscribe((event) => counted.push(event.type), { only: 'here' });
    buses[0]!.publish(job(1));
    await relays[0]!.flush();
    await relays[1]!.flush();
    expect(counted).toEqual([]);
    // B received A's event and sent nothing on: one payload in all.
    expect(payloads).toHaveLength(1);
  });

  it('keeps each NOTIFY under the payload limit: a burst is split, a long reason cut', async () => {
    const { relays, buses, seen, payloads } = wire(2, 2_000);
    for (let i = 0; i < 40; i++) buses[0]!.publish(job(i));
    buses[0]!.publish(job(99, 'device_error', '理由'.repeat(2_000)));
    await relays[0]!.flush();
    expect(payloads.length).toBeGreaterThan(1);
    for (const p of payloads) expect(Buffer.byteLength(p)).toBeLessThanOrEqual(2_000);
    expect(seen[1]!).toHaveLength(41);
    const last = seen[1]!.at(-1)!.event as JobEvent;
    expect(last.jobId).toBe('job-99');
    expect(last.reason!.length).toBeLessThan(600);
    expect(relays[0]!.stats.dropped).toBe(0);
  });

  it('carries wake-ups and released leases to the others, not to itself', async () => {
    const { relays, wakes } = wire(2);
    relays[0]!.wake(['VPP event poll']);
    relays[0]!.released(['engine tick', 'queue compaction']);
    await relays[0]!.flush();
    expect(wakes[0]).toEqual([]);
    expect(wakes[1]).toEqual([
      { work: ['VPP event poll'], released: false },
      { work: ['engine tick', 'queue compaction'], released: true },
    ]);
  });

  it('a malformed payload or a failing channel never throws into the publisher', async () => {
    const bus = new EventBus();
    const errors: Error[] = [];
    const relay = new EventRelay({
      bus,
      channel: { send: () => Promise.reject(new Error('database down')) },
      onError: (err) => errors.push(err),
    });
    relay.start();
    relay.receive('not json');
    relay.receive('{"v":2}');
    bus.publish(job(1));
    await relay.flush();
    expect(errors.map((e) => e.message)).toEqual(['database down']);
    expect(relay.stats.dropped).toBe(1);
    await relay.close();
  });
});

describe('Soon', () => {
  it('runs once for a burst of requests, and once more when asked while it runs', async () => {
    let runs = 0;
    let release!: () => void;
    const soon = new Soon(
      async () => {
        runs++;
        if (runs === 1) await new Promise<void>((r) => (release = r));
      },
      5,
      () => {},
    );
    for (let i = 0; i < 10; i++) soon.request();
    await new Promise((r) => setTimeout(r, 30));
    expect(runs).toBe(1);
    soon.request();
    soon.request();
    release();
    await new Promise((r) => setTimeout(r, 40));
    expect(runs).toBe(2);
    soon.close();
    soon.request();
    await new Promise((r) => setTimeout(r, 20));
    expect(runs).toBe(2);
  });
});

describe.skipIf(!postgresAvailable)('events across processes on PostgreSQL', () => {
  let postgres: ThrowawayPostgres;
  let one: Store;
  let two: Store;
  const links: ProcessLink[] = [];
  const buses = [new EventBus(), new EventBus()];
  const seen: HaishinEvent[][] = [[], []];
  const ran: string[][] = [[], []];
  const held = [['engine tick'], [] as string[]];
  const gaps = [0, 0];

  beforeAll(async () => {
    postgres = await startPostgres();
    one = await Store.open(postgres.url, new Date());
    two = await Store.open(postgres.url, new Date());
    const log = { warn: () => {}, error: () => {} };
    for (const [i, store] of [one, two].entries()) {
      buses[i]!.subscribe((event) => seen[i]!.push(event), { only: 'elsewhere' });
      buses[i]!.onGap(() => gaps[i]!++);
      links.push(
        await linkProcesses({
          url: postgres.url,
          db: store.db.kysely,
          bus: buses[i]!,
          tickWorkIn: (event) => event.type === 'job' && event.to === 'waiting',
          held: () => held[i]!,
          run: async (work) => {
            ran[i]!.push(work);
          },
          log,
        }),
      );
    }
  }, 60_000);

  afterAll(async () => {
    for (const link of links) await link.close([]);
    await two?.close();
    await one?.close();
    postgres?.stop();
  });

  async function until<T>(what: string, check: () => T | undefined): Promise<T> {
    for (let i = 0; i < 200; i++) {
      const value = check();
      if (value !== undefined) return value;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`${what}: not within 10 s`);
  }

  it('an event published by one process reaches the other once; a job left for the tick wakes its holder', async () => {
    buses[1]!.publish(job(1, 'waiting'));
    buses[1]!.publish(job(2, 'success'));
    await until('delivered', () => (seen[0]!.length >= 2 ? true : undefined));
    expect(seen[0]!.map((e) => (e as JobEvent).jobId)).toEqual(['job-1', 'job-2']);
    // The publisher does not get its own events back.
    expect(seen[1]).toEqual([]);
    await until('the holder ran the tick', () => (ran[0]!.includes('engine tick') ? true : undefined));
    expect(ran[1]).toEqual([]);
    // A wake for the Apps and Books poll: the holder of nothing (1) runs nothing; released leases are tried by all.
    links[0]!.wake('VPP event poll');
    links[1]!.relay.released(['queue compaction']);
    await until('the released lease tried', () => (ran[0]!.includes('queue compaction') ? true : undefined));
    expect(ran[1]).not.toContain('VPP event poll');
  });

  it('the LISTEN connection is opened again after PostgreSQL ended it; events flow again', async () => {
    const admin = new pg.Client({ connectionString: postgres.url });
    await admin.connect();
    try {
      const killed = await admin.query<{ n: number }>(
        "select count(pg_terminate_backend(pid))::int as n from pg_stat_activity where application_name = 'haishin-listen'",
      );
      expect(killed.rows[0]!.n).toBe(2);
    } finally {
      await admin.end();
    }
    await until('both noticed', () => (links.every((l) => !l.channel.connected) ? true : undefined));
    await until('both listen again', () => (links.every((l) => l.channel.connected) ? true : undefined));
    // What was sent meanwhile is lost: the watchers are told to read the state again.
    expect(gaps).toEqual([1, 1]);
    const before = seen[1]!.length;
    buses[0]!.publish(job(3));
    await until('delivered after the reconnect', () => (seen[1]!.length > before ? true : undefined));
    expect((seen[1]!.at(-1) as JobEvent).jobId).toBe('job-3');
  });
});

describe.skipIf(!postgresAvailable)('two haishin on one PostgreSQL: wake-ups through the composition', () => {
  let postgres: ThrowawayPostgres;
  let a: TestServer;
  let b: TestServer;
  let aClosed = false;
  // The periods are an hour: whatever runs during the test was woken, not timed.
  const HOUR = 3_600_000;
  const ADMIN = 'event-relay-admin-token-0123456789';

  beforeAll(async () => {
    postgres = await startPostgres();
    const tuning = { engineTickMs: HOUR, vppTickMs: HOUR, queueCompactionMs: 0 };
    const env = { HAISHIN_ADMIN_TOKEN: ADMIN };
    a = await startTestServer({ db: postgres.url, tuning, env });
    b = await startTestServer({ db: postgres.url, tuning, env });
  }, 60_000);

  afterAll(async () => {
    await b?.close();
    if (!aClosed) await a?.close();
    postgres?.stop();
  });

  async function until<T>(what: string, check: () => T | undefined): Promise<T> {
    for (let i = 0; i < 200; i++) {
      const value = check();
      if (value !== undefined) return value;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`${what}: not within 10 s`);
  }

  it("a job another process moved off a device's slot runs the tick now in its holder; a clean stop hands the tick over at once", async () => {
    const ticks = { a: 0, b: 0 };
    for (const [name, server] of [
      ['a', a],
      ['b', b],
    ] as const) {
      const engine = server.haishin.engine;
      const tick = engine.tick.bind(engine);
      engine.tick = () => {
        ticks[name]++;
        return tick();
      };
    }
    // A holds the tick (its timer would first fire in an hour).
    expect(await a.haishin.leased.run('engine tick', 30_000, () => a.haishin.engine.tick())).toBe(true);
    const before = ticks.a;
    // A device's answer received by B: the job left the in-flight statuses there.
    const seenByA: HaishinEvent[] = [];
    a.haishin.events.subscribe((e) => seenByA.push(e), { only: 'elsewhere' });
    b.haishin.events.publish({
      ...job(1, 'executing'),
      from: 'awaiting_response',
    });
    await until('A ran its tick', () => (ticks.a > before ? true : undefined));
    expect(seenByA.map((e) => e.type)).toEqual(['job']);
    // B, which does not hold the tick, did not run it.
    expect(ticks.b).toBe(0);

    // Events of other processes missed (the relay's connection broke): the stream says so with
    // `dropped`, count unknown, and the console reads the state again.
    const res = await fetch(`${b.baseUrl}/api/v1/events`, {
      headers: { authorization: `Bearer ${ADMIN}` },
    });
    expect(res.status).toBe(200);
    const reader = res.body!.getReader();
    let text = '';
    const read = async (until: string) => {
      while (!text.includes(until)) {
        const { value, done } = await reader.read();
        if (done) throw new Error(`the stream ended before ${until}`);
        text += new TextDecoder().decode(value);
      }
    };
    await read('event: ready');
    b.haishin.events.gap();
    await read('event: dropped');
    expect(text).toContain('event: dropped\ndata: {"count":null,"firstDroppedId":null}');
    await reader.cancel();

    // A stops cleanly: B takes the tick over at once (not after the lease's 30 s, nor its hour).
    await a.close();
    aClosed = true;
    await until('B took the tick', () => (b.haishin.leased.held.includes('engine tick') ? true : undefined));
    expect(ticks.b).toBeGreaterThan(0);
  });
});

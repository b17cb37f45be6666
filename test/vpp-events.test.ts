import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { VppClient } from '../src/apple/vpp/client.ts';
import { VppError } from '../src/apple/vpp/errors.ts';
import type { VppSubmittedEvent } from '../src/apple/vpp/client.ts';
import { VppEventTracker, handleVppNotifyRequest } from '../src/apple/vpp/events.ts';
import type {
  VppAssetCountChange,
  VppEventOutcome,
  VppEventTrackerOptions,
} from '../src/apple/vpp/events.ts';
import { ManualClock } from '../src/core/clock.ts';
import { FakeVppService, randomNotificationToken } from '../src/sim/vpp/server.ts';
import type { FakeVppOptions } from '../src/sim/vpp/server.ts';

const MDM = { id: 'haishin-test-0001', name: 'haishin test' };
const MIN = 60_000;
const closers: Array<() => Promise<void>> = [];
afterEach(async () => {
  while (closers.length > 0) await closers.pop()!();
});

const serials = (n: number, prefix = 'SN') =>
  Array.from({ length: n }, (_, i) => `${prefix}${String(i).padStart(5, '0')}`);

interface World {
  clock: ManualClock;
  fake: FakeVppService;
  sToken: string;
  client: VppClient;
  tracker: VppEventTracker;
  outcomes: VppEventOutcome[];
  counts: VppAssetCountChange[];
  notifyToken: string;
  notifyUrl: string | null;
  answers: number[];
}

/** The fake, a client, a tracker, and (optionally) a /vpp/notify receiver mounted the way the HTTP layer will. */
async function world(
  options: { notify?: boolean; fake?: FakeVppOptions; tracker?: Partial<VppEventTrackerOptions> } = {},
): Promise<World> {
  const clock = new ManualClock('2026-04-01T09:00:00Z');
  const sleep = async (ms: number) => {
    clock.advance(ms);
  };
  const fake = new FakeVppService({ clock, ...options.fake });
  await fake.listen();
  closers.push(() => fake.close());
  const sToken = FakeVppService.tokenFile('events', 'Org', new Date('2027-01-01T00:00:00Z'));
  fake.addToken({ sToken, orgName: 'Org', locationName: 'Campus' });
  const client = new VppClient({ baseUrl: fake.url, sToken, clock, sleep, mdmInfo: MDM, pacing: false });
  const outcomes: VppEventOutcome[] = [];
  const counts: VppAssetCountChange[] = [];
  const notifyToken = randomNotificationToken();
  const tracker = new VppEventTracker({
    clock,
    client,
    notificationAuthToken: notifyToken,
    onOutcome: (o) => {
      outcomes.push(o);
    },
    onAssetCount: (c) => {
      counts.push(c);
    },
    ...options.tracker,
  });
  const answers: number[] = [];
  let notifyUrl: string | null = null;
  if (options.notify) {
    const server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        void handleVppNotifyRequest(tracker, req.headers, Buffer.concat(chunks)).then(({ status, body }) => {
          answers.push(status);
          res.writeHead(status, { 'content-type': 'application/json' });
          res.end(JSON.stringify(body));
        });
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    closers.push(
      () =>
        new Promise<void>((resolve) => {
          server.closeAllConnections();
          server.close(() => resolve());
        }),
    );
    notifyUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/vpp/notify`;
    await client.claim({ notificationUrl: notifyUrl, notificationAuthToken: notifyToken });
  }
  return { clock, fake, sToken, client, tracker, outcomes, counts, notifyToken, notifyUrl, answers };
}

const summary = (o: VppEventOutcome) => {
  const out: Record<string, number> = {};
  for (const r of o.perSerial.values()) {
    const key = r.ok ? 'ok' : `${r.kind}:${r.errorNumber}`;
    out[key] = (out[key] ?? 0) + 1;
  }
  return out;
};

describe('notifications', () => {
  it('settles a partly FAILED associate from chunked notifications, per serial', async () => {
    const w = await world({ notify: true });
    w.fake.addAsset(w.sToken, { adamId: '42', total: 200 });
    const submitted = await w.client.associate(['42'], serials(250));
    w.tracker.register(submitted);
    expect(w.tracker.pendingCount).toBe(1);
    await w.fake.completePending();

    expect(w.fake.notifications('ASSET_MANAGEMENT').map((n) => n.serials)).toEqual([100, 100, 50]);
    // The claim's TEST_NOTIFICATION, then the three chunks.
    expect(w.answers).toEqual([200, 200, 200, 200]);
    expect(w.outcomes).toHaveLength(1);
    const o = w.outcomes[0]!;
    expect([o.eventId, o.status, o.source]).toEqual([submitted.events[0]!.eventId, 'FAILED', 'notification']);
    expect(summary(o)).toEqual({ ok: 200, 'insufficient_licenses:9709': 50 });
    expect(o.perSerial.get('SN00000')).toEqual({ ok: true });
    expect(o.perSerial.get('SN00249')).toMatchObject({
      ok: false,
      kind: 'insufficient_licenses',
      errorNumber: 9709,
      adamIds: ['42'],
    });
    expect(w.tracker.pendingCount).toBe(0);
    expect(w.fake.counts(w.sToken, '42')).toEqual({ total: 200, assigned: 200, available: 0 });
  });

  it('checks the bearer and is idempotent on notificationId', async () => {
    const w = await world({ notify: true, fake: { duplicateNotifications: true } });
    w.fake.addAsset(w.sToken, { adamId: '7', total: 500 });
    w.tracker.register(await w.client.associate(['7'], serials(150)));
    await w.fake.completePending();
    // Every notification came twice; the second copy changed nothing.
    expect(w.fake.notifications('ASSET_MANAGEMENT')).toHaveLength(4);
    expect(w.outcomes).toHaveLength(1);
    expect(summary(w.outcomes[0]!)).toEqual({ ok: 150 });

    const body = JSON.stringify({
      notificationId: 'n-1',
      notificationType: 'ASSET_COUNT',
      uId: '1',
      notification: { adamId: '7', pricingParam: 'STDQ', countDelta: 25 },
    });
    expect(await handleVppNotifyRequest(w.tracker, {}, body)).toMatchObject({ status: 401 });
    expect(await handleVppNotifyRequest(w.tracker, { authorization: 'Bearer wrong' }, body)).toMatchObject({
      status: 401,
    });
    expect(
      await handleVppNotifyRequest(w.tracker, { authorization: `Basic ${w.notifyToken}` }, body),
    ).toMatchObject({ status: 401 });
    expect(w.counts).toHaveLength(0);
    const ok = await handleVppNotifyRequest(w.tracker, { Authorization: `Bearer ${w.notifyToken}` }, body);
    expect(ok).toEqual({
      status: 200,
      body: { ok: true, notificationId: 'n-1', duplicate: false },
      notificationType: 'ASSET_COUNT',
    });
    const again = await handleVppNotifyRequest(
      w.tracker,
      new Headers({ authorization: `bearer ${w.notifyToken}` }),
      body,
    );
    expect(again).toEqual({
      status: 200,
      body: { ok: true, notificationId: 'n-1', duplicate: true },
      notificationType: 'ASSET_COUNT',
    });
    expect(w.counts).toEqual([{ notificationId: 'n-1', adamId: '7', pricingParam: 'STDQ', countDelta: 25 }]);
    expect(
      await handleVppNotifyRequest(w.tracker, { authorization: `Bearer ${w.notifyToken}` }, '{nope'),
    ).toMatchObject({ status: 400 });
    expect(
      await handleVppNotifyRequest(
        w.tracker,
        { authorization: `Bearer ${w.notifyToken}` },
        '{"notificationId":"x"}',
      ),
    ).toMatchObject({
      status: 400,
    });
  });

  it('routes by bearer when one URL serves several tokens', async () => {
    const w = await world();
    const body = JSON.stringify({
      notificationId: 'r-1',
      notificationType: 'ASSET_COUNT',
      notification: { adamId: '1', countDelta: -2 },
    });
    const lookup = (bearer: string) => (bearer === w.notifyToken ? w.tracker : undefined);
    expect((await handleVppNotifyRequest(lookup, { authorization: 'Bearer nobody' }, body)).status).toBe(401);
    expect(
      (await handleVppNotifyRequest(lookup, { authorization: `Bearer ${w.notifyToken}` }, body)).status,
    ).toBe(200);
    expect(w.counts.map((c) => c.countDelta)).toEqual([-2]);
  });

  it('forwards ASSET_COUNT from the fake when licences are bought', async () => {
    const w = await world({ notify: true });
    w.fake.addAsset(w.sToken, { adamId: '9', total: 10 });
    await w.fake.adjustTotal(w.sToken, '9', 40);
    expect(w.counts.map((c) => [c.adamId, c.countDelta])).toEqual([['9', 40]]);
    expect(w.fake.counts(w.sToken, '9').total).toBe(50);
  });

  it('does not remember a notification whose outcome could not be stored, so a resend settles it', async () => {
    let fail = true;
    const delivered: VppEventOutcome[] = [];
    const w = await world({
      tracker: {
        onOutcome: (o) => {
          if (fail) throw new Error('store is down');
          delivered.push(o);
        },
      },
    });
    w.tracker.register({
      eventId: 'e-9',
      eventType: 'ASSOCIATE',
      assets: [{ adamId: '1', pricingParam: 'STDQ' }],
      serialNumbers: ['A'],
      raw: '',
    });
    const body = JSON.stringify({
      notificationId: 'n-9',
      notificationType: 'ASSET_MANAGEMENT',
      notification: {
        eventId: 'e-9',
        type: 'ASSOCIATE',
        result: 'SUCCESS',
        assignments: [{ adamId: '1', pricingParam: 'STDQ', serialNumber: 'A' }],
      },
    });
    const auth = { authorization: `Bearer ${w.notifyToken}` };
    expect((await handleVppNotifyRequest(w.tracker, auth, body)).status).toBe(500);
    fail = false;
    expect(await handleVppNotifyRequest(w.tracker, auth, body)).toMatchObject({
      status: 200,
      body: { duplicate: false },
    });
    expect(delivered.map((o) => [o.eventId, summary(o)])).toEqual([['e-9', { ok: 1 }]]);
  });
});

describe('fake service on its own timer', () => {
  it('completes events after eventDelayMs and notifies without being asked', async () => {
    const w = await world({ notify: true, fake: { eventDelayMs: 20 } });
    w.fake.addAsset(w.sToken, { adamId: '3', total: 10 });
    w.tracker.register(await w.client.associate(['3'], ['A', 'B']));
    for (let i = 0; i < 200 && w.outcomes.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
    expect(w.outcomes.map((o) => [o.source, summary(o)])).toEqual([['notification', { ok: 2 }]]);
  });

  it('settles a revoke per serial, confirming with the status once every serial was reported', async () => {
    const w = await world({ notify: true });
    w.fake.addAsset(w.sToken, { adamId: '3', total: 10 });
    w.fake.addAsset(w.sToken, { adamId: '4', total: 10, revocable: false });
    w.fake.assign(w.sToken, '3', ['A', 'B']);
    w.fake.assign(w.sToken, '4', ['B']);
    w.tracker.register(await w.client.revoke(['A', 'B', 'C']));
    await w.fake.completePending();
    // Every serial was reported, but B's second asset could still fail: the next tick confirms.
    expect(w.outcomes).toHaveLength(0);
    expect(await w.tracker.tick()).toMatchObject({ polled: 1, settled: 1 });
    const o = w.outcomes[0]!;
    expect(o.source).toBe('poll');
    expect([...o.perSerial].map(([s, r]) => `${s}:${r.ok ? 'ok' : r.kind}`)).toEqual([
      'A:ok',
      'B:not_revocable',
      'C:ok',
    ]);
    expect(w.fake.holders(w.sToken, '3')).toEqual([]);
    expect(w.fake.holders(w.sToken, '4')).toEqual(['B']);
  });
});

describe('polling fallback', () => {
  it('an event tracked again after a restart is polled at once (its notification may have come while haishin was down), then 30 s apart', async () => {
    const w = await world();
    w.fake.addAsset(w.sToken, { adamId: '6', total: 3 });
    const submitted = await w.client.associate(['6'], ['A', 'B']);
    await w.fake.completePending();
    w.tracker.register(submitted, { missedNotifications: true });
    expect(await w.tracker.tick()).toMatchObject({ polled: 1, settled: 1 });
    expect(w.outcomes.map(summary)).toEqual([{ ok: 2 }]);

    const again = await w.client.associate(['6'], ['C']);
    w.tracker.register(again, { missedNotifications: true });
    expect(await w.tracker.tick()).toMatchObject({ polled: 1, settled: 0 });
    w.clock.advance(29_999);
    expect((await w.tracker.tick()).polled).toBe(0);
  });

  it('polls after 5 quiet minutes, then at least 30 s apart, and settles from status', async () => {
    const w = await world();
    w.fake.addAsset(w.sToken, { adamId: '5', total: 3 });
    const submitted = await w.client.associate(['5'], ['A', 'B', 'C', 'D', 'E']);
    w.tracker.register(submitted);
    const polls = () => w.fake.calls('GET status');

    expect((await w.tracker.tick()).polled).toBe(0);
    w.clock.advance(5 * MIN - 1);
    expect((await w.tracker.tick()).polled).toBe(0);
    w.clock.advance(1);
    expect(await w.tracker.tick()).toMatchObject({ polled: 1, settled: 0 });
    expect(polls()).toBe(1);
    w.clock.advance(29_999);
    await w.tracker.tick();
    expect(polls()).toBe(1);
    w.clock.advance(1);
    await w.tracker.tick();
    expect(polls()).toBe(2);
    expect(w.outcomes).toHaveLength(0);

    await w.fake.completePending();
    w.clock.advance(30_000);
    expect(await w.tracker.tick()).toMatchObject({ polled: 1, settled: 1 });
    const o = w.outcomes[0]!;
    expect([o.status, o.source]).toEqual(['FAILED', 'poll']);
    expect([...o.perSerial].map(([s, r]) => `${s}:${r.ok ? 'ok' : r.kind}`)).toEqual([
      'A:ok',
      'B:ok',
      'C:ok',
      'D:insufficient_licenses',
      'E:insufficient_licenses',
    ]);
    expect(JSON.parse(o.raw!)).toMatchObject({ eventStatus: 'FAILED', eventType: 'ASSOCIATE' });
    w.clock.advance(10 * MIN);
    expect((await w.tracker.tick()).polled).toBe(0);
  });

  it('two copies of one notification handled at the same time are applied once (behind a load balancer, decision 0020)', async () => {
    let applied = 0;
    let release!: () => void;
    const slow = new Promise<void>((r) => (release = r));
    const w = await world({
      tracker: {
        onTestNotification: async () => {
          applied++;
          await slow;
        },
      },
    });
    const copy = () =>
      w.tracker.handleNotification(
        { notificationId: 't-1', notificationType: 'TEST_NOTIFICATION' },
        `Bearer ${w.notifyToken}`,
      );
    const first = copy();
    const second = copy();
    await new Promise((r) => setTimeout(r, 10));
    release();
    const results = await Promise.all([first, second]);
    expect(applied).toBe(1);
    expect(results.map((r) => r.accepted && r.duplicate)).toEqual([false, true]);
  });

  it('a notification resets the quiet timer', async () => {
    const w = await world();
    w.fake.addAsset(w.sToken, { adamId: '5', total: 10 });
    const submitted = await w.client.associate(['5'], ['A', 'B']);
    w.tracker.register(submitted);
    w.clock.advance(4 * MIN);
    await w.tracker.handleNotification(
      {
        notificationId: 'p1',
        notificationType: 'ASSET_MANAGEMENT',
        notification: {
          eventId: submitted.events[0]!.eventId,
          type: 'ASSOCIATE',
          result: 'SUCCESS',
          assignments: [{ adamId: '5', serialNumber: 'A' }],
        },
      },
      `Bearer ${w.notifyToken}`,
    );
    w.clock.advance(2 * MIN);
    expect((await w.tracker.tick()).polled).toBe(0);
    w.clock.advance(3 * MIN);
    expect((await w.tracker.tick()).polled).toBe(1);
  });

  it('resubmits an event still PENDING after 10 minutes and settles on the new one', async () => {
    const w = await world();
    w.fake.addAsset(w.sToken, { adamId: '8', total: 10 });
    const first = await w.client.associate(['8'], ['A', 'B']);
    w.tracker.register(first);
    for (let t = 0; t < 10 * MIN; t += 30_000) {
      w.clock.advance(30_000);
      await w.tracker.tick();
    }
    expect(w.fake.calls('POST assets/associate')).toBe(2);
    expect(w.outcomes).toHaveLength(0);
    await w.fake.completePending();
    // The old event answers too, late: either one settles it, exactly once.
    for (let i = 0; i < 12; i++) {
      w.clock.advance(30_000);
      await w.tracker.tick();
    }
    expect(w.outcomes).toHaveLength(1);
    const o = w.outcomes[0]!;
    expect(o.eventId).toBe(first.events[0]!.eventId);
    expect(o.eventIds).toHaveLength(2);
    expect(summary(o)).toEqual({ ok: 2 });
    expect(w.fake.counts(w.sToken, '8').assigned).toBe(2);
  });

  it('gives up after the allowed resubmissions instead of polling for ever', async () => {
    const w = await world({ tracker: { maxResubmits: 1 } });
    w.fake.addAsset(w.sToken, { adamId: '8', total: 10 });
    w.tracker.register(await w.client.associate(['8'], ['A']));
    for (let i = 0; i < 200 && w.outcomes.length === 0; i++) {
      w.clock.advance(30_000);
      await w.tracker.tick();
    }
    expect(w.fake.calls('POST assets/associate')).toBe(2);
    const o = w.outcomes[0]!;
    expect(o.source).toBe('gave_up');
    expect(o.perSerial.get('A')).toMatchObject({ ok: false, kind: 'transient' });
    expect(w.tracker.pendingCount).toBe(0);
  });

  it("settles overdue events with the token's cause once the token is dead", async () => {
    const errors: string[] = [];
    const w = await world({ tracker: { onError: (e) => errors.push((e as Error).name) } });
    w.fake.addAsset(w.sToken, { adamId: '8', total: 10 });
    w.tracker.register(await w.client.associate(['8'], ['A', 'B']));
    w.clock.advance(5 * MIN);
    w.fake.setMode(w.sToken, 'expired');
    await w.tracker.tick();
    // Not overdue yet: the failed poll is reported and the event kept.
    expect(w.outcomes).toHaveLength(0);
    expect(errors).toEqual(['VppError']);
    w.clock.advance(5 * MIN);
    await w.tracker.tick();
    expect(w.outcomes).toHaveLength(1);
    expect(summary(w.outcomes[0]!)).toEqual({ 'token_expired:9621': 2 });
  });

  it('fails the pending serials with the cause when a resubmission is refused', async () => {
    const w = await world();
    w.fake.addAsset(w.sToken, { adamId: '8', total: 10 });
    const submitted = await w.client.associate(['8'], ['A', 'B']);
    const outcomes: VppEventOutcome[] = [];
    const tracker = new VppEventTracker({
      clock: w.clock,
      notificationAuthToken: 'x',
      onOutcome: (o) => {
        outcomes.push(o);
      },
      client: {
        eventStatus: (id) => w.client.eventStatus(id),
        associate: () =>
          Promise.reject(new VppError({ errorNumber: 9625, httpStatus: 401, errorMessage: 'revoked' })),
        disassociate: () => Promise.reject(new Error('unused')),
        revoke: () => Promise.reject(new Error('unused')),
      },
    });
    tracker.register(submitted);
    w.clock.advance(10 * MIN);
    await tracker.tick();
    expect(outcomes.map((o) => [o.source, summary(o)])).toEqual([
      ['resubmit_refused', { 'token_revoked:9625': 2 }],
    ]);
  });

  it('maps a partial FAILED status with several assets per serial', async () => {
    const w = await world();
    w.fake.addAsset(w.sToken, { adamId: '1', total: 10 });
    w.fake.addAsset(w.sToken, { adamId: '2', total: 1 });
    w.fake.addAsset(w.sToken, { adamId: '3', total: 10, deviceAssignable: false });
    const submitted = await w.client.associate(['1', '2', '3'], ['A', 'B']);
    const unassignable = await w.client.associate(['1'], ['C']);
    w.tracker.register([...submitted.events, ...unassignable.events] as VppSubmittedEvent[]);
    await w.fake.completePending();
    w.clock.advance(5 * MIN);
    await w.tracker.tick();
    expect(w.outcomes).toHaveLength(2);
    const o = w.outcomes.find((x) => x.eventId === submitted.events[0]!.eventId)!;
    expect(o.perSerial.get('A')).toMatchObject({ ok: false, kind: 'not_device_assignable', adamIds: ['3'] });
    expect(o.perSerial.get('B')).toMatchObject({ ok: false, adamIds: expect.arrayContaining(['2', '3']) });
    expect(summary(w.outcomes.find((x) => x !== o)!)).toEqual({ ok: 1 });
  });
});

// Issue 16, item 3 (decision 0026): the Apps and Books notification ids already applied live in
// the database, so a notification Apple delivers twice is applied once whichever processes the
// copies reach — before and after a takeover of the events by another process.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DIALECTS, twoStores } from './support/two-stores.ts';
import { VppEventTracker } from '../src/apple/vpp/events.ts';
import type { NotificationClaims, NotificationResult } from '../src/apple/vpp/events.ts';
import type { VppEventClient } from '../src/apple/vpp/events.ts';
import { ManualClock } from '../src/core/clock.ts';
import { FakeVppService } from '../src/sim/vpp/server.ts';
import type { Store } from '../src/store/store.ts';
import { postgresAvailable, postgresSkipReason, startPostgres } from './support/pg.ts';
import type { ThrowawayPostgres } from './support/pg.ts';
import { startTestServer } from './support/server.ts';
import type { TestServer } from './support/server.ts';

if (!postgresAvailable) console.warn(`[vpp-notification-ids.test] ${postgresSkipReason}`);

const T0 = new Date('2026-12-07T09:00:00Z');
const at = (ms: number) => new Date(T0.getTime() + ms);
const DAY = 86_400_000;

describe.each(DIALECTS)('notification ids on $name', ({ name, enabled }) => {
  /** Two stores on the same database: two processes, as far as the database can tell. */
  const stores = twoStores(name, enabled, T0);

  it.skipIf(!enabled)(
    'the first claim applies; a copy is a duplicate while claimed and once applied; a failed claim is given back; a dead claim is taken over once expired; pruned after the retention',
    async () => {
      const ids = stores.one.vppNotifications;
      const other = stores.two.vppNotifications;
      expect(await ids.claim('tok', 'n-1', 'A', at(0), 60_000)).toBe(true);
      // Being applied by A: B's copy is a duplicate (A answers Apple with an error if it fails).
      expect(await other.claim('tok', 'n-1', 'B', at(1_000), 60_000)).toBe(false);
      await ids.applied('tok', 'n-1', 'A', at(2_000));
      // Applied: a duplicate however late (within the retention), the claim's expiry long past.
      expect(await other.claim('tok', 'n-1', 'B', at(10 * 60_000), 60_000)).toBe(false);
      // One id per token: the same id for another token is another notification.
      expect(await other.claim('tok-2', 'n-1', 'B', at(3_000), 60_000)).toBe(true);

      // Applying failed: given back, so Apple's next copy is applied.
      expect(await ids.claim('tok', 'n-2', 'A', at(0), 60_000)).toBe(true);
      await other.release('tok', 'n-2', 'B'); // not B's claim: nothing happens
      expect(await other.claim('tok', 'n-2', 'B', at(1_000), 60_000)).toBe(false);
      await ids.release('tok', 'n-2', 'A');
      expect(await other.claim('tok', 'n-2', 'B', at(2_000), 60_000)).toBe(true);

      // A claimed and died before applying: after the claim's expiry another process takes it over,
      // and the dead claim can no longer mark it (nor give it back).
      expect(await ids.claim('tok', 'n-3', 'A', at(0), 60_000)).toBe(true);
      expect(await other.claim('tok', 'n-3', 'B', at(59_000), 60_000)).toBe(false);
      expect(await other.claim('tok', 'n-3', 'B', at(60_001), 60_000)).toBe(true);
      await ids.release('tok', 'n-3', 'A');
      await ids.applied('tok', 'n-3', 'A', at(60_002));
      let row = (await ids.all('tok')).find((r) => r.notification_id === 'n-3');
      expect(row).toMatchObject({ claimed_by: 'B', applied_at: null });
      await other.applied('tok', 'n-3', 'B', at(60_003));
      row = (await ids.all('tok')).find((r) => r.notification_id === 'n-3');
      expect(row).toMatchObject({ claimed_by: null, applied_at: at(60_003).toISOString() });

      // The retention counts from the first copy.
      expect(await ids.claim('tok', 'n-late', 'A', at(3 * DAY), 60_000)).toBe(true);
      expect(await ids.prune(at(2 * DAY))).toBe(4);
      expect((await ids.all()).map((r) => r.notification_id)).toEqual(['n-late']);
      expect(await ids.prune(at(2 * DAY))).toBe(0);
    },
  );

  it.skipIf(!enabled)(
    'two trackers (two processes, or one before and after a restart) apply a notification once; a failure lets the next copy apply it',
    async () => {
      const clock = new ManualClock(at(DAY).toISOString());
      const counted: number[] = [];
      let failNext = false;
      const claimsOn = (store: Store, tokenId: string): NotificationClaims => ({
        claim: async (notificationId) => {
          const claimId = `${Math.random()}`;
          const ok = await store.vppNotifications.claim(
            tokenId,
            notificationId,
            claimId,
            clock.now(),
            60_000,
          );
          if (!ok) return null;
          return {
            applied: () => store.vppNotifications.applied(tokenId, notificationId, claimId, clock.now()),
            release: () => store.vppNotifications.release(tokenId, notificationId, claimId),
          };
        },
      });
      const tracker = (store: Store) =>
        new VppEventTracker({
          clock,
          client: {} as VppEventClient, // no event is followed here: never called
          notificationAuthToken: 'bearer-of-tok-3',
          onOutcome: () => {},
          onAssetCount: ({ countDelta }) => {
            if (failNext) {
              failNext = false;
              throw new Error('the database went away');
            }
            counted.push(countDelta);
          },
          claims: claimsOn(store, 'tok-3'),
        });
      const a = tracker(stores.one);
      const b = tracker(stores.two);
      const count = (id: string) => ({
        notificationId: id,
        notificationType: 'ASSET_COUNT',
        notification: { adamId: '361309726', countDelta: 5, pricingParam: 'STDQ' },
      });
      const bearer = 'Bearer bearer-of-tok-3';
      const results = await Promise.all([
        a.handleNotification(count('c-1'), bearer),
        b.handleNotification(count('c-1'), bearer),
      ]);
      expect(results.filter((r) => r.accepted && !r.duplicate)).toHaveLength(1);
      expect(counted).toEqual([5]);
      // A tracker with an empty memory (a restart, or the process that took the events over).
      const c = tracker(stores.one);
      expect(await c.handleNotification(count('c-1'), bearer)).toMatchObject({ duplicate: true });
      expect(counted).toEqual([5]);

      // Applying fails on A: Apple gets an error and sends it again, to B, which applies it.
      failNext = true;
      await expect(a.handleNotification(count('c-2'), bearer)).rejects.toThrow('went away');
      expect(await b.handleNotification(count('c-2'), bearer)).toMatchObject({ duplicate: false });
      expect(await a.handleNotification(count('c-2'), bearer)).toMatchObject({ duplicate: true });
      expect(counted).toEqual([5, 5]);
    },
  );
});

describe.skipIf(!postgresAvailable)(
  'several haishin on one PostgreSQL: Apple notifications applied once',
  () => {
    const HOUR = 3_600_000;
    const ADMIN = 'notification-ids-admin-token-0123456789';
    const ADAM = '361309726';
    let postgres: ThrowawayPostgres;
    let fake: FakeVppService;
    let a: TestServer;
    let b: TestServer;
    let c: TestServer | null = null;
    let aClosed = false;

    async function until<T>(what: string, check: () => T | undefined | Promise<T | undefined>): Promise<T> {
      for (let i = 0; i < 300; i++) {
        const value = await check();
        if (value !== undefined) return value;
        await new Promise((r) => setTimeout(r, 50));
      }
      throw new Error(`${what}: not within 15 s`);
    }

    beforeAll(async () => {
      postgres = await startPostgres();
      fake = new FakeVppService();
      const vppUrl = await fake.listen();
      // Hour-long periods: what runs during the test was woken (a kept notification, a released
      // lease) or started, not timed.
      const tuning = { engineTickMs: 0, vppTickMs: HOUR, queueCompactionMs: 0 };
      const env = { HAISHIN_ADMIN_TOKEN: ADMIN, HAISHIN_VPP_URL: vppUrl };
      a = await startTestServer({ db: postgres.url, tuning, env });
      // A follows the Apps and Books events (its poll runs at start); B does not.
      await until('A holds the poll', () =>
        a.haishin.leased.held.includes('VPP event poll') ? true : undefined,
      );
      b = await startTestServer({ db: postgres.url, tuning, env });
    }, 60_000);

    afterAll(async () => {
      await c?.close();
      await b?.close();
      if (!aClosed) await a?.close();
      await fake?.close();
      postgres?.stop();
    });

    it('a licence notification and an ASSET_COUNT, each delivered to two processes and again to the new holder after a takeover, are applied once', async () => {
      expect(b.haishin.leased.held).not.toContain('VPP event poll');
      const sToken = FakeVppService.tokenFile('ids', '教育委員会', new Date(Date.now() + 300 * DAY));
      fake.addToken({ sToken, orgName: '教育委員会', locationName: 'notification-ids' });
      fake.addAsset(sToken, { adamId: ADAM, total: 5 });
      const res = await fetch(`${a.baseUrl}/api/v1/vpp-tokens`, {
        method: 'POST',
        headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' },
        body: JSON.stringify({ groupId: a.rootGroupId, sToken }),
      });
      expect(res.status).toBe(201);
      const tokenId = ((await res.json()) as { id: string }).id;
      const bearer = fake.clientState(sToken).notificationAuthToken!;
      const store = a.haishin.store;
      expect((await store.vpp.asset(tokenId, ADAM))?.total_count).toBe(5);

      // A licence submitted by B (not the process following the events): its event stays pending in
      // the fake; Apple's notification is written here and delivered by hand.
      const change = await b.haishin.tokens.assign(tokenId, ADAM, ['SN-IDS-1'], 'manual', null);
      const eventId = change.eventIds[0]!;
      expect(eventId).toBeTruthy();

      // Every application, whichever process: each tracker's answers, and each licence settled.
      const applied: { server: string; result: NotificationResult }[] = [];
      const settled: string[] = [];
      const observe = async (name: string, server: TestServer) => {
        const row = await server.haishin.store.vpp.getToken(tokenId);
        const tracker = server.haishin.tokens.tracker(row!);
        const handle = tracker.handleNotification.bind(tracker);
        tracker.handleNotification = async (body, auth) => {
          const result = await handle(body, auth);
          applied.push({ server: name, result });
          return result;
        };
        const vpp = server.haishin.store.vpp;
        const setState = vpp.setLicenseState.bind(vpp);
        vpp.setLicenseState = async (where, state, errorCode, when) => {
          if (where.serials.includes('SN-IDS-1')) settled.push(`${name}:${state}`);
          return setState(where, state, errorCode, when);
        };
      };
      await observe('A', a);
      await observe('B', b);

      const licence = JSON.stringify({
        notificationId: 'licence-1',
        notificationType: 'ASSET_MANAGEMENT',
        notification: {
          eventId,
          type: 'ASSOCIATE',
          result: 'SUCCESS',
          assignments: [{ adamId: ADAM, serialNumber: 'SN-IDS-1', pricingParam: 'STDQ' }],
        },
      });
      const count = JSON.stringify({
        notificationId: 'count-1',
        notificationType: 'ASSET_COUNT',
        notification: { adamId: ADAM, countDelta: 3, pricingParam: 'STDQ' },
      });
      const deliver = async (server: TestServer, body: string) => {
        const r = await fetch(`${server.baseUrl}/vpp/notify`, {
          method: 'POST',
          headers: { authorization: `Bearer ${bearer}`, 'content-type': 'application/json' },
          body,
        });
        expect(r.status).toBe(200);
        return (await r.json()) as Record<string, unknown>;
      };
      const inboxEmpty = async () =>
        (await b.haishin.store.vpp.inboxOldest(10)).length === 0 ? true : undefined;
      const firsts = () =>
        applied.flatMap((x) => (x.result.accepted && !x.result.duplicate ? [x.result.notificationId] : []));

      // Apple's two copies at once: one to A (applied there), one to B (kept, A woken to apply it).
      const answers = await Promise.all([
        deliver(a, licence),
        deliver(b, licence),
        deliver(b, count),
        deliver(a, count),
      ]);
      expect(answers.filter((x) => x['kept'] === true)).toHaveLength(2);
      await until('the kept copies drained by A', inboxEmpty);
      await until('both copies of both handled', () => (applied.length === 4 ? true : undefined));
      expect(firsts().sort()).toEqual(['count-1', 'licence-1']);
      expect(applied.every((x) => x.server === 'A')).toBe(true);
      expect(settled).toEqual(['A:assigned']);
      expect((await store.vpp.licenses({ tokenId, serialNumber: 'SN-IDS-1' }))[0]?.state).toBe('assigned');
      expect((await store.vpp.asset(tokenId, ADAM))?.total_count).toBe(8);

      // Another licence under way when A stops; A had followed it (its notifications would have gone
      // to A's memory only).
      const pending = await b.haishin.tokens.assign(tokenId, ADAM, ['SN-IDS-2'], 'manual', null);
      await a.haishin.tokens.tick({ shared: true });
      expect((await b.haishin.store.vpp.licenses({ tokenId, serialNumber: 'SN-IDS-2' }))[0]?.state).toBe(
        'assigning',
      );
      const polls = () => fake.log('GET status').length;
      const pollsBefore = polls();

      // A stops: B takes the events over (a released lease is tried at once) with an empty memory of
      // notification ids. Late copies reach B directly and C, a third process, which keeps them for B.
      await a.close();
      aClosed = true;
      await until('B holds the poll', () =>
        b.haishin.leased.held.includes('VPP event poll') ? true : undefined,
      );
      // Taking over, B polls the events it adopts at once rather than after 5 minutes of quiet: late
      // copies of what A applied are duplicates now, so B asks Apple instead.
      await until('B polled the licence under way', () => (polls() > pollsBefore ? true : undefined));
      expect(
        b.haishin.tokens
          .tracker((await b.haishin.store.vpp.getToken(tokenId))!)
          .isTracking(pending.eventIds[0]!),
      ).toBe(true);
      c = await startTestServer({
        db: postgres.url,
        tuning: { engineTickMs: 0, vppTickMs: HOUR, queueCompactionMs: 0 },
        env: { HAISHIN_ADMIN_TOKEN: ADMIN, HAISHIN_VPP_URL: fake.url },
      });
      expect(c.haishin.leased.held).not.toContain('VPP event poll');
      const late = [
        await deliver(b, count),
        await deliver(b, licence),
        await deliver(c, count),
        await deliver(c, licence),
      ];
      expect(late.slice(0, 2).map((x) => x['duplicate'])).toEqual([true, true]);
      expect(late.slice(2).map((x) => x['kept'])).toEqual([true, true]);
      await until('the late kept copies drained by B', inboxEmpty);
      await until('every late copy handled', () => (applied.length === 8 ? true : undefined));
      expect(applied.slice(4).every((x) => x.server === 'B' && x.result.accepted && x.result.duplicate)).toBe(
        true,
      );
      // Applied once in all: the count moved by 3 once, the licence settled once.
      expect(firsts().sort()).toEqual(['count-1', 'licence-1']);
      expect(settled).toEqual(['A:assigned']);
      expect((await b.haishin.store.vpp.asset(tokenId, ADAM))?.total_count).toBe(8);
      const ids = await b.haishin.store.vppNotifications.all(tokenId);
      expect(ids.filter((r) => ['count-1', 'licence-1'].includes(r.notification_id))).toHaveLength(2);
      expect(ids.every((r) => r.applied_at !== null && r.claimed_by === null)).toBe(true);
    });
  },
);

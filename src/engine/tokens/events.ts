import { randomUUID } from 'node:crypto';
import { VppEventTracker } from '../../apple/vpp/events.ts';
import type { NotificationClaims, VppEventOutcome } from '../../apple/vpp/events.ts';
import type { VppTokenRow } from '../../store/vpp-repo.ts';
import type { TokenContext } from './context.ts';

/**
 * How long a notification id is remembered in the database (decision 0026). Apple sends a copy
 * again for as long as it gets no 200 — hours, not weeks; a week covers any late copy.
 */
export const NOTIFICATION_IDS_RETENTION_MS = 7 * 86_400_000;

/**
 * How long a claim on a notification lasts while it is applied (milliseconds, or seconds with a
 * slow database). A process that dies meanwhile answered Apple nothing, so Apple sends the
 * notification again: after this long, another process may take the claim over and apply it.
 */
const NOTIFICATION_CLAIM_TTL_MS = 2 * 60_000;

/**
 * Apps and Books events of every token: associate and disassociate complete later, by Apple's
 * notification or by polling. One tracker per token, held in memory; after a restart the
 * licences still `assigning`/`reclaiming` register their events again (`recover`). An event's
 * outcome settles its licences (`assigned`, `reclaimed` or `failed`); ASSET_COUNT moves an
 * asset's counts; a TEST_NOTIFICATION is audited. The notification ids applied are kept in the
 * database, so each notification is applied once by whichever process gets it (decision 0026).
 */
export class TokenEvents {
  readonly #ctx: TokenContext;
  readonly #trackers = new Map<string, VppEventTracker>();
  /** When events submitted elsewhere were last adopted (see {@link adopt}). */
  #adoptedAt: Date | null = null;

  constructor(ctx: TokenContext) {
    this.#ctx = ctx;
  }

  /**
   * The asynchronous-event tracker of a token: associate/disassociate complete later, by
   * notification or by polling. Held in memory; a full sync reconciles after a restart.
   */
  tracker(row: VppTokenRow): VppEventTracker {
    let tracker = this.#trackers.get(row.id);
    if (!tracker) {
      const ctx = this.#ctx;
      const tokenId = row.id;
      tracker = new VppEventTracker({
        clock: ctx.o.clock,
        client: ctx.client(row),
        notificationAuthToken: row.notification_auth_token,
        onOutcome: (outcome) => this.#settle(tokenId, outcome),
        claims: this.#claims(tokenId),
        onAssetCount: async (change) => {
          const asset = await ctx.store.vpp.asset(tokenId, change.adamId);
          if (!asset) return;
          // ASSET_COUNT reports licences bought or transferred: the total moves, and with it what is free.
          await ctx.store.vpp.setAssetCounts(
            tokenId,
            change.adamId,
            {
              total: asset.total_count + change.countDelta,
              available: Math.max(0, asset.available_count + change.countDelta),
            },
            ctx.now(),
          );
        },
        // Apple tried the notification URL (as it was set): evidence that notifications reach us.
        onTestNotification: ({ notificationId }) =>
          ctx.store.admin.audit({
            actor: 'apple',
            source: null,
            action: 'token.notification_test',
            objectType: 'vpp_token',
            objectId: tokenId,
            details: { notificationId },
            at: ctx.now(),
          }),
        ...(ctx.o.onError ? { onError: (e: Error) => ctx.o.onError!(e) } : {}),
        ...(ctx.o.eventTiming ?? {}),
      });
      this.#trackers.set(row.id, tracker);
    }
    return tracker;
  }

  /**
   * The notification ids applied, in the database (decision 0026): whichever process receives a
   * copy — before or after a takeover of the events, or a restart — the notification is applied once.
   */
  #claims(tokenId: string): NotificationClaims {
    const ctx = this.#ctx;
    const ids = ctx.store.vppNotifications;
    return {
      claim: async (notificationId) => {
        const claimId = randomUUID();
        if (!(await ids.claim(tokenId, notificationId, claimId, ctx.now(), NOTIFICATION_CLAIM_TTL_MS)))
          return null;
        return {
          applied: () => ids.applied(tokenId, notificationId, claimId, ctx.now()),
          release: () => ids.release(tokenId, notificationId, claimId),
        };
      },
    };
  }

  /** Drops the tracker of a token that is gone (deleted, or its registration refused). */
  forget(tokenId: string): void {
    this.#trackers.delete(tokenId);
  }

  /** The tracker Apple's notification is for, found by its bearer. */
  async trackerForNotification(bearer: string): Promise<VppEventTracker | undefined> {
    const row = await this.#ctx.store.vpp.tokenByNotificationAuth(bearer);
    return row ? this.tracker(row) : undefined;
  }

  /**
   * After a restart the trackers are empty: licences still `assigning`/`reclaiming` name their
   * Apple event, so their events are registered again and settle by notification or polling.
   */
  async recover(): Promise<number> {
    return this.#follow({ missedNotifications: true });
  }

  /**
   * Several processes on one database (decision 0019): the events another process submitted (a
   * licence assigned through its API, the work of a holder that died) are followed here too, by
   * the process holding the Apps and Books poll. Already-followed events are skipped.
   */
  async adopt(): Promise<number> {
    // Incremental after the first pass: licences changed since the last one (a minute's margin for
    // commits in flight and clocks a little apart), not every open licence at every poll.
    const since = this.#adoptedAt ? new Date(this.#adoptedAt.getTime() - 60_000) : undefined;
    const now = this.#ctx.now();
    // The first pass of this process — at its start, or taking the events over from a holder that
    // stopped or died — polls what it adopts at once: notifications the old holder applied went to
    // its memory only, and their late copies are duplicates here (decision 0026).
    const n = await this.#follow({ missedNotifications: since === undefined }, since);
    this.#adoptedAt = now;
    return n;
  }

  /**
   * A notification that reached a process not following the events: authenticated (the bearer is
   * a token's), then kept in the database for the holder, which applies it at its next poll.
   */
  async keepNotification(
    authHeader: string | undefined,
    body: Uint8Array,
  ): Promise<{ status: number; body: object }> {
    const bearer = authHeader ? /^Bearer\s+(.+)$/i.exec(authHeader.trim())?.[1]?.trim() : undefined;
    const row = bearer ? await this.#ctx.store.vpp.tokenByNotificationAuth(bearer) : undefined;
    if (!row || !this.tracker(row).authorized(authHeader))
      return {
        status: 401,
        body: { error: { code: 'unauthorized', message: 'missing or unknown notification bearer token' } },
      };
    const text = Buffer.from(body).toString('utf8');
    try {
      const parsed: unknown = JSON.parse(text);
      if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed))
        throw new Error('not an object');
    } catch {
      return {
        status: 400,
        body: { error: { code: 'malformed', message: 'the body is not a JSON object' } },
      };
    }
    await this.#ctx.store.vpp.inboxAdd(row.id, text, this.#ctx.now());
    return { status: 200, body: { ok: true, kept: true } };
  }

  /** Applies the notifications other processes kept (oldest first, a bounded batch). */
  async drainInbox(limit = 500): Promise<number> {
    const store = this.#ctx.store;
    let applied = 0;
    for (const kept of await store.vpp.inboxOldest(limit)) {
      const row = await store.vpp.getToken(kept.token_id);
      try {
        if (row)
          await this.tracker(row).handleNotification(kept.body, `Bearer ${row.notification_auth_token}`);
        applied++;
      } catch (err) {
        // Not retried: an event it concerned is settled by polling all the same.
        this.#ctx.o.onError?.(err as Error);
      }
      await store.vpp.inboxDelete(kept.id);
    }
    return applied;
  }

  async #follow(options: { missedNotifications: boolean }, updatedSince?: Date): Promise<number> {
    const store = this.#ctx.store;
    const open = await store.vpp.licenses({
      states: ['assigning', 'reclaiming'],
      ...(updatedSince ? { updatedSince } : {}),
    });
    interface OpenEvent {
      tokenId: string;
      type: 'ASSOCIATE' | 'DISASSOCIATE';
      assets: Map<string, string>;
      serials: string[];
    }
    const events = new Map<string, OpenEvent>();
    for (const l of open) {
      if (!l.event_id) continue;
      const ev: OpenEvent = events.get(l.event_id) ?? {
        tokenId: l.token_id,
        type: l.state === 'assigning' ? 'ASSOCIATE' : 'DISASSOCIATE',
        assets: new Map<string, string>(),
        serials: [],
      };
      ev.assets.set(l.adam_id, l.pricing_param);
      ev.serials.push(l.serial_number);
      events.set(l.event_id, ev);
    }
    for (const [eventId, ev] of events) {
      const row = await store.vpp.getToken(ev.tokenId);
      if (!row) continue;
      const tracker = this.tracker(row);
      // Already followed: registered again only to be polled at once (notifications were missed).
      if (tracker.isTracking(eventId) && !options.missedNotifications) continue;
      // After a restart Apple's notifications for these may have come while haishin was stopped:
      // polled at once.
      tracker.register(
        {
          eventId,
          eventType: ev.type,
          assets: [...ev.assets].map(([adamId, pricingParam]) => ({ adamId, pricingParam })),
          serialNumbers: ev.serials,
          raw: '',
        },
        options,
      );
    }
    return events.size;
  }

  /**
   * Polls overdue events of every token (the fallback when notifications do not arrive). With
   * `shared` (several processes on one database), first follows the events other processes
   * submitted and applies the notifications they kept.
   */
  async tick(o: { shared?: boolean } = {}): Promise<void> {
    if (o.shared) {
      await this.adopt();
      await this.drainInbox();
    }
    for (const tracker of this.#trackers.values()) await tracker.tick();
  }

  /** An event's outcome, serial by serial, on the licences it concerns. */
  async #settle(tokenId: string, outcome: VppEventOutcome): Promise<void> {
    const store = this.#ctx.store;
    const at = this.#ctx.now();
    const licences = await store.vpp.licenses({ tokenId, states: ['assigning', 'reclaiming'] });
    const byEvent = licences.filter((l) => l.event_id !== null && outcome.eventIds.includes(l.event_id));
    const rows =
      byEvent.length > 0 ? byEvent : licences.filter((l) => outcome.perSerial.has(l.serial_number));
    for (const licence of rows) {
      const result = outcome.perSerial.get(licence.serial_number);
      if (!result) continue;
      const assigning = licence.state === 'assigning';
      const state = result.ok ? (assigning ? 'assigned' : 'reclaimed') : assigning ? 'failed' : 'assigned';
      await store.vpp.setLicenseState(
        { tokenId, adamId: licence.adam_id, serials: [licence.serial_number] },
        state,
        result.ok ? null : result.errorNumber,
        at,
      );
    }
  }
}

import { timingSafeEqual } from 'node:crypto';
import { holdsNul } from '../../core/nul.ts';
import type { Clock } from '../../core/clock.ts';
import { VppError, classifyVppError, isTokenKind } from './errors.ts';
import type { VppErrorKind } from './errors.ts';
import type { VppEventType, VppSubmitResult, VppSubmittedEvent } from './client.ts';
import { isObject, parseErrorInfo, parseFailures } from './wire.ts';
import type { VppAssetRef, VppEventFailure, VppEventStatus } from './wire.ts';

export type SerialOutcome =
  | { ok: true }
  | {
      ok: false;
      kind: VppErrorKind;
      errorNumber: number | null;
      errorMessage: string | null;
      /** The adam ids that failed for this serial (an event may cover several). */
      adamIds: string[];
    };

export interface VppEventOutcome {
  /** The event as first registered; `eventIds` adds the resubmissions. */
  eventId: string;
  eventIds: string[];
  eventType: VppEventType;
  status: 'COMPLETE' | 'FAILED';
  /** What settled the last pending serial. */
  source: 'notification' | 'poll' | 'gave_up' | 'resubmit_refused';
  perSerial: Map<string, SerialOutcome>;
  /** The body (status response or notification) that settled it. */
  raw: string | null;
}

export interface VppAssetCountChange {
  notificationId: string;
  adamId: string;
  pricingParam: string;
  countDelta: number;
}

/**
 * Who applies a notification when more than this tracker's memory may have seen it: several
 * processes behind a load balancer, a takeover of the events by another process, a restart
 * (decision 0026). A notification is claimed before it is applied, the claim marked once it is
 * applied and given back when applying failed (Apple's next copy then gets another chance).
 */
export interface NotificationClaims {
  /** A claim on the id, or null when it was applied already or is being applied elsewhere. */
  claim(notificationId: string): Promise<NotificationClaim | null>;
}

export interface NotificationClaim {
  applied(): Promise<void>;
  release(): Promise<void>;
}

/** What the tracker needs from a {@link VppClient}. */
export interface VppEventClient {
  eventStatus(eventId: string): Promise<VppEventStatus>;
  associate(assets: VppAssetRef[], serialNumbers: string[]): Promise<VppSubmitResult>;
  disassociate(assets: VppAssetRef[], serialNumbers: string[]): Promise<VppSubmitResult>;
  revoke(serialNumbers: string[]): Promise<VppSubmitResult>;
}

export interface VppEventTrackerOptions {
  clock: Clock;
  client: VppEventClient;
  /** The bearer Apple sends with notifications (several while one is being rotated out). */
  notificationAuthToken: string | string[];
  onOutcome: (outcome: VppEventOutcome) => void | Promise<void>;
  onAssetCount?: (change: VppAssetCountChange) => void | Promise<void>;
  /** Apple's TEST_NOTIFICATION, sent when a notification URL is set (POST client/config). */
  onTestNotification?: (test: { notificationId: string }) => void | Promise<void>;
  /** Polls, resubmissions and notifications that went wrong; the tracker carries on. */
  onError?: (error: Error, eventId: string | null) => void;
  /** First poll when no notification came for this long. Default 5 min. */
  pollAfterMs?: number;
  /** Later polls at least this far apart. Default 30 s. */
  pollEveryMs?: number;
  /** An event still PENDING this long after submission is sent again. Default 10 min. */
  resubmitAfterMs?: number;
  /** Resubmissions per registered event before its pending serials are given up. Default 2. */
  maxResubmits?: number;
  /** notificationIds remembered for de-duplication (oldest forgotten first). Default 50 000. */
  rememberNotifications?: number;
  /**
   * The ids applied by anyone (the database, decision 0026); without it the tracker's memory is
   * all there is. With it the memory stays as a cache of the ids applied here.
   */
  claims?: NotificationClaims;
}

export type NotificationResult =
  | {
      accepted: true;
      duplicate: boolean;
      notificationType: string;
      notificationId: string;
      settled: string[];
    }
  | { accepted: false; reason: 'unauthorized' | 'malformed'; message: string };

export interface TickResult {
  polled: number;
  resubmitted: number;
  settled: number;
  errors: number;
}

interface TrackedEvent {
  eventId: string;
  group: Group;
  submittedAt: number;
  assets: VppAssetRef[];
  serialNumbers: string[];
  lastPollAt: number | null;
  /** Replaced by a resubmission: no longer polled, but its late notifications still count. */
  retired: boolean;
}

interface Group {
  key: string;
  eventType: VppEventType;
  serials: string[];
  eventIds: string[];
  events: TrackedEvent[];
  /** `${adamId|*}\t${serial}` pairs with no result yet. */
  pending: Set<string>;
  failures: Map<string, Extract<SerialOutcome, { ok: false }>>;
  lastNotificationAt: number | null;
  resubmits: number;
  /** onOutcome is running: a second settle must not emit twice. */
  finishing: boolean;
  done: boolean;
  /**
   * REVOKE only: every serial was reported, but Apple reports per asset and we cannot know how
   * many assets a serial held, so a failure may still come. The status call confirms it at once.
   */
  confirmDue: boolean;
  /**
   * Tracked again after a restart: notifications may have come while nobody listened, so the
   * first poll does not wait for the quiet period.
   */
  pollAtOnce: boolean;
}

const ANY_ASSET = '*';

/**
 * Follows asynchronous associate/disassociate/revoke events to a per-serial outcome: from
 * Apple's ASSET_MANAGEMENT notifications when they come, from polling GET status when they do
 * not (first poll after 5 minutes of silence, then at least 30 s apart), resubmitting an event
 * Apple still calls PENDING after 10 minutes.
 */
/** How long and how many early notifications are kept for events not registered yet. */
const EARLY_TTL_MS = 10 * 60_000;
const EARLY_MAX = 1000;

export class VppEventTracker {
  readonly #clock: Clock;
  readonly #client: VppEventClient;
  readonly #authTokens: Buffer[];
  readonly #onOutcome: VppEventTrackerOptions['onOutcome'];
  readonly #onAssetCount: VppEventTrackerOptions['onAssetCount'];
  readonly #onTestNotification: VppEventTrackerOptions['onTestNotification'];
  readonly #onError: NonNullable<VppEventTrackerOptions['onError']>;
  readonly #pollAfterMs: number;
  readonly #pollEveryMs: number;
  readonly #resubmitAfterMs: number;
  readonly #maxResubmits: number;
  readonly #remember: number;
  readonly #claims: NotificationClaims | null;

  readonly #events = new Map<string, TrackedEvent>();
  readonly #groups = new Set<Group>();
  /** Insertion-ordered, so the oldest id is the first to forget. */
  readonly #seen = new Set<string>();
  /** Notifications being applied now, by notificationId. */
  readonly #applying = new Map<string, Promise<NotificationResult>>();
  #ticking = false;

  constructor(options: VppEventTrackerOptions) {
    this.#clock = options.clock;
    this.#client = options.client;
    const tokens = Array.isArray(options.notificationAuthToken)
      ? options.notificationAuthToken
      : [options.notificationAuthToken];
    this.#authTokens = tokens.filter((t) => t.length > 0).map((t) => Buffer.from(t, 'utf8'));
    if (this.#authTokens.length === 0)
      throw new TypeError('VppEventTracker: notificationAuthToken is required');
    this.#onOutcome = options.onOutcome;
    this.#onAssetCount = options.onAssetCount;
    this.#onTestNotification = options.onTestNotification;
    this.#onError = options.onError ?? (() => {});
    this.#pollAfterMs = options.pollAfterMs ?? 5 * 60_000;
    this.#pollEveryMs = options.pollEveryMs ?? 30_000;
    this.#resubmitAfterMs = options.resubmitAfterMs ?? 10 * 60_000;
    this.#maxResubmits = options.maxResubmits ?? 2;
    this.#remember = Math.max(1, options.rememberNotifications ?? 50_000);
    this.#claims = options.claims ?? null;
  }

  /** Events not settled yet (registered ones and their resubmissions). */
  get pendingCount(): number {
    return this.#groups.size;
  }

  isTracking(eventId: string): boolean {
    return this.#events.has(eventId);
  }

  /** Starts following submitted events; each one settles into its own outcome. */
  /** Notifications for events not registered yet, oldest first; bounded in count and age. */
  readonly #early = new Map<string, { n: Record<string, unknown>; raw: string; at: number }[]>();

  #keepEarly(eventId: string, n: Record<string, unknown>, raw: string): void {
    const now = this.#clock.now().getTime();
    for (const [id, list] of this.#early) {
      if (now - (list[0]?.at ?? now) > EARLY_TTL_MS) this.#early.delete(id);
      else break;
    }
    if (this.#early.size >= EARLY_MAX && !this.#early.has(eventId)) {
      const oldest = this.#early.keys().next().value;
      if (oldest !== undefined) this.#early.delete(oldest);
    }
    const list = this.#early.get(eventId) ?? [];
    list.push({ n, raw, at: now });
    this.#early.set(eventId, list);
  }

  /** Applies notifications that arrived before their event was registered. */
  async #replayEarly(eventIds: readonly string[]): Promise<void> {
    for (const id of eventIds) {
      const list = this.#early.get(id);
      if (!list) continue;
      this.#early.delete(id);
      for (const item of list) {
        try {
          await this.#onAssetManagement(item.n, item.raw);
        } catch (err) {
          this.#onError(err as Error, id);
        }
      }
    }
  }

  register(
    events: VppSubmitResult | VppSubmittedEvent | VppSubmittedEvent[],
    options: { missedNotifications?: boolean } = {},
  ): void {
    const list = Array.isArray(events) ? events : 'events' in events ? events.events : [events];
    const now = this.#clock.now().getTime();
    for (const ev of list) {
      const known = this.#events.get(ev.eventId);
      if (known) {
        // Followed already, but notifications may have gone elsewhere meanwhile (another process
        // followed the events, decision 0026): polled at once as well.
        if (options.missedNotifications === true && !known.group.done) known.group.pollAtOnce = true;
        continue;
      }
      const group: Group = {
        key: ev.eventId,
        eventType: ev.eventType,
        serials: [...new Set(ev.serialNumbers)],
        eventIds: [],
        events: [],
        pending: new Set(),
        failures: new Map(),
        lastNotificationAt: null,
        resubmits: 0,
        finishing: false,
        done: false,
        confirmDue: false,
        pollAtOnce: options.missedNotifications === true,
      };
      for (const serial of group.serials) {
        if (ev.eventType === 'REVOKE' || ev.assets.length === 0)
          group.pending.add(pairKey(ANY_ASSET, serial));
        else for (const asset of ev.assets) group.pending.add(pairKey(asset.adamId, serial));
      }
      this.#groups.add(group);
      this.#attach(group, ev, now);
    }
    if (this.#early.size > 0) void this.#replayEarly(list.map((ev) => ev.eventId));
  }

  #attach(group: Group, ev: VppSubmittedEvent, now: number): void {
    const tracked: TrackedEvent = {
      eventId: ev.eventId,
      group,
      submittedAt: now,
      assets: ev.assets,
      serialNumbers: ev.serialNumbers,
      lastPollAt: null,
      retired: false,
    };
    group.events.push(tracked);
    group.eventIds.push(ev.eventId);
    this.#events.set(ev.eventId, tracked);
  }

  /** True when the header carries one of our notification bearers (compared in constant time). */
  authorized(authHeader: string | null | undefined): boolean {
    if (!authHeader) return false;
    const m = /^Bearer\s+(.+)$/i.exec(authHeader.trim());
    if (!m || !m[1]) return false;
    const given = Buffer.from(m[1].trim(), 'utf8');
    let ok = false;
    for (const token of this.#authTokens) {
      if (token.length === given.length && timingSafeEqual(token, given)) ok = true;
    }
    return ok;
  }

  /**
   * Apple's POST to /vpp/notify. Rejects a wrong bearer; a notificationId seen before is
   * acknowledged and ignored. Remembered only once handled, so a failure here makes Apple resend.
   */
  async handleNotification(
    body: unknown,
    authHeader: string | null | undefined,
  ): Promise<NotificationResult> {
    if (!this.authorized(authHeader)) {
      return {
        accepted: false,
        reason: 'unauthorized',
        message: 'missing or wrong notification bearer token',
      };
    }
    let json: unknown = body;
    let raw: string | null = null;
    if (typeof body === 'string' || body instanceof Uint8Array) {
      raw = typeof body === 'string' ? body : Buffer.from(body).toString('utf8');
      try {
        json = JSON.parse(raw);
      } catch {
        return { accepted: false, reason: 'malformed', message: 'the body is not JSON' };
      }
    }
    if (!isObject(json))
      return { accepted: false, reason: 'malformed', message: 'the body is not a JSON object' };
    // PostgreSQL cannot store U+0000 in text (the claim of the id failed: a 500); Apple never sends it.
    if (holdsNul(json))
      return { accepted: false, reason: 'malformed', message: 'the body holds the character U+0000' };
    const notificationId = typeof json['notificationId'] === 'string' ? json['notificationId'] : null;
    const notificationType = typeof json['notificationType'] === 'string' ? json['notificationType'] : null;
    if (!notificationId || !notificationType) {
      return {
        accepted: false,
        reason: 'malformed',
        message: 'notificationId and notificationType are required',
      };
    }
    if (this.#seen.has(notificationId)) {
      return { accepted: true, duplicate: true, notificationType, notificationId, settled: [] };
    }
    // A copy of a notification being applied now (Apple sends some twice; behind a load balancer
    // the copies may arrive together, one directly and one from another process's inbox): it waits
    // for the first and is then a duplicate — or applied, if the first failed.
    const pending = this.#applying.get(notificationId);
    if (pending) {
      await pending.catch(() => undefined);
      return this.handleNotification(body, authHeader);
    }
    const applying = this.#claimAndApply(notificationId, notificationType, json, raw);
    this.#applying.set(notificationId, applying);
    try {
      return await applying;
    } finally {
      this.#applying.delete(notificationId);
    }
  }

  /**
   * Applies the notification once whoever else received a copy: with claims, only the copy that
   * wins the claim is applied; the others are duplicates. The id is remembered (in memory, and as
   * applied in the claims) only once handled, so a failure makes Apple's next copy count.
   */
  async #claimAndApply(
    notificationId: string,
    notificationType: string,
    json: Record<string, unknown>,
    rawBody: string | null,
  ): Promise<NotificationResult> {
    const claims = this.#claims;
    const claim = claims ? await claims.claim(notificationId) : null;
    if (claims && !claim) {
      // Applied by another process (or an earlier run), or being applied by one now: if that one
      // fails, it gives the claim back and answers Apple with an error, so Apple sends it again.
      return { accepted: true, duplicate: true, notificationType, notificationId, settled: [] };
    }
    let result: NotificationResult;
    try {
      result = await this.#applyNotification(notificationId, notificationType, json, rawBody);
    } catch (err) {
      await claim?.release().catch(() => undefined);
      throw err;
    }
    if (!result.accepted) {
      await claim?.release();
      return result;
    }
    try {
      await claim?.applied();
    } catch (err) {
      // Applied all the same: Apple gets its 200. The claim lapses unmarked, so only a copy that
      // comes after its expiry to another process could be applied again.
      this.#onError(err as Error, null);
    }
    this.#rememberSeen(notificationId);
    return result;
  }

  async #applyNotification(
    notificationId: string,
    notificationType: string,
    json: Record<string, unknown>,
    rawBody: string | null,
  ): Promise<NotificationResult> {
    let raw = rawBody;
    if (notificationType === 'TEST_NOTIFICATION') {
      // Apple trying the URL and bearer it was just given: nothing to apply, whatever the body holds.
      await this.#onTestNotification?.({ notificationId });
      return { accepted: true, duplicate: false, notificationType, notificationId, settled: [] };
    }
    const payload = json['notification'];
    if (!isObject(payload))
      return { accepted: false, reason: 'malformed', message: 'notification is not an object' };
    raw ??= JSON.stringify(json);

    const settled: string[] = [];
    if (notificationType === 'ASSET_MANAGEMENT') {
      const key = await this.#onAssetManagement(payload, raw);
      if (key) settled.push(key);
    } else if (notificationType === 'ASSET_COUNT') {
      const adamId = payload['adamId'];
      const delta = Number(payload['countDelta']);
      if ((typeof adamId === 'string' || typeof adamId === 'number') && Number.isFinite(delta)) {
        await this.#onAssetCount?.({
          notificationId,
          adamId: String(adamId),
          pricingParam: typeof payload['pricingParam'] === 'string' ? payload['pricingParam'] : 'STDQ',
          countDelta: delta,
        });
      }
    }
    // Other types (USER_MANAGEMENT, USER_ASSOCIATED) are acknowledged: device licensing does not use them.
    return { accepted: true, duplicate: false, notificationType, notificationId, settled };
  }

  #rememberSeen(id: string): void {
    this.#seen.add(id);
    while (this.#seen.size > this.#remember) {
      const oldest = this.#seen.values().next();
      if (oldest.done) break;
      this.#seen.delete(oldest.value);
    }
  }

  /** Applies one chunk (Apple sends about 100 serials per asset per notification). */
  async #onAssetManagement(n: Record<string, unknown>, raw: string): Promise<string | null> {
    const eventId =
      typeof n['eventId'] === 'string' || typeof n['eventId'] === 'number' ? String(n['eventId']) : null;
    if (!eventId) return null;
    const tracked = this.#events.get(eventId);
    if (!tracked) {
      // Apple (or a fast fake) can answer before the associate call's own response has been
      // registered: keep it for a while and apply it on register().
      this.#keepEarly(eventId, n, raw);
      return null;
    }
    if (tracked.group.done) return null;
    const group = tracked.group;
    group.lastNotificationAt = this.#clock.now().getTime();

    const result = typeof n['result'] === 'string' ? n['result'].toUpperCase() : '';
    const failures: VppEventFailure[] = parseFailures(n['failures']);
    if (isObject(n['error'])) {
      const e = n['error'];
      const errorNumber = Number(e['errorNumber']);
      failures.push({
        errorNumber: Number.isFinite(errorNumber) ? errorNumber : null,
        errorMessage: typeof e['errorMessage'] === 'string' ? e['errorMessage'] : null,
        errorInfo: parseErrorInfo(e['errorInfo']),
      });
    }
    for (const f of failures) this.#applyFailure(tracked, f);

    const assignments = Array.isArray(n['assignments']) ? n['assignments'] : null;
    if (assignments) {
      for (const a of assignments) {
        if (!isObject(a)) continue;
        const serial = a['serialNumber'];
        if (typeof serial !== 'string') continue;
        const adamId = group.eventType === 'REVOKE' ? ANY_ASSET : String(a['adamId'] ?? '');
        group.pending.delete(pairKey(adamId, serial));
      }
    } else if ((result === 'SUCCESS' || result === 'COMPLETE') && failures.length === 0) {
      // An event-level success without the list: everything this event covered went through.
      this.#settleCoverage(tracked);
    } else if ((result === 'FAILURE' || result === 'FAILED') && failures.length === 0) {
      this.#applyFailure(tracked, {
        errorNumber: null,
        errorMessage: 'FAILURE without error details',
        errorInfo: {},
      });
    }

    if (group.pending.size === 0) {
      if (group.eventType === 'REVOKE') {
        group.confirmDue = true;
        return null;
      }
      await this.#finish(group, 'notification', raw);
      return group.key;
    }
    return null;
  }

  /** Marks the failure's serials × assets (all of the event's when errorInfo does not say). */
  #applyFailure(tracked: TrackedEvent, f: VppEventFailure): void {
    const group = tracked.group;
    const serials = f.errorInfo.serialNumbers?.length ? f.errorInfo.serialNumbers : tracked.serialNumbers;
    const adamIds =
      group.eventType === 'REVOKE'
        ? [ANY_ASSET]
        : f.errorInfo.assets?.length
          ? f.errorInfo.assets.map((a) => a.adamId)
          : tracked.assets.map((a) => a.adamId);
    const kind = classifyVppError(f.errorNumber, 200);
    for (const serial of serials) {
      for (const adamId of adamIds) {
        const key = pairKey(adamId, serial);
        if (!group.pending.has(key)) {
          // A revoke's serial reported revoked for one asset can still fail for another.
          if (group.eventType !== 'REVOKE' || group.failures.has(serial)) continue;
        }
        group.pending.delete(key);
        const prior = group.failures.get(serial);
        if (prior) {
          if (adamId !== ANY_ASSET && !prior.adamIds.includes(adamId)) prior.adamIds.push(adamId);
        } else {
          group.failures.set(serial, {
            ok: false,
            kind,
            errorNumber: f.errorNumber,
            errorMessage: f.errorMessage,
            adamIds: adamId === ANY_ASSET ? [] : [adamId],
          });
        }
      }
    }
  }

  /** Everything the event covered and that is still pending went through. */
  #settleCoverage(tracked: TrackedEvent): void {
    const group = tracked.group;
    const adamIds =
      group.eventType === 'REVOKE' || tracked.assets.length === 0
        ? [ANY_ASSET]
        : tracked.assets.map((a) => a.adamId);
    for (const serial of tracked.serialNumbers)
      for (const adamId of adamIds) group.pending.delete(pairKey(adamId, serial));
  }

  #failPending(group: Group, kind: VppErrorKind, errorNumber: number | null, message: string): void {
    for (const key of group.pending) {
      const [adamId, serial] = key.split('\t') as [string, string];
      const prior = group.failures.get(serial);
      if (prior) {
        if (adamId !== ANY_ASSET && !prior.adamIds.includes(adamId)) prior.adamIds.push(adamId);
      } else {
        group.failures.set(serial, {
          ok: false,
          kind,
          errorNumber,
          errorMessage: message,
          adamIds: adamId === ANY_ASSET ? [] : [adamId],
        });
      }
    }
    group.pending.clear();
  }

  async #finish(group: Group, source: VppEventOutcome['source'], raw: string | null): Promise<void> {
    if (group.done || group.finishing) return;
    group.finishing = true;
    const perSerial = new Map<string, SerialOutcome>();
    for (const serial of group.serials) perSerial.set(serial, group.failures.get(serial) ?? { ok: true });
    try {
      await this.#onOutcome({
        eventId: group.key,
        eventIds: [...group.eventIds],
        eventType: group.eventType,
        status: group.failures.size > 0 ? 'FAILED' : 'COMPLETE',
        source,
        perSerial,
        raw,
      });
    } catch (err) {
      // Kept (settled but not delivered): the next notification or tick delivers it again.
      group.finishing = false;
      throw err;
    }
    group.done = true;
    this.#groups.delete(group);
    for (const id of group.eventIds) this.#events.delete(id);
  }

  /**
   * The polling fallback; call it every few seconds (a scheduler's job). Polls are sequential
   * so they go through the client's pacing; overlapping calls return at once.
   */
  async tick(): Promise<TickResult> {
    const result: TickResult = { polled: 0, resubmitted: 0, settled: 0, errors: 0 };
    if (this.#ticking) return result;
    this.#ticking = true;
    try {
      for (const group of [...this.#groups]) {
        if (group.pending.size === 0 && !group.confirmDue) {
          if (group.finishing) continue;
          // Settled earlier but onOutcome failed then: deliver again.
          try {
            await this.#finish(group, 'poll', null);
            result.settled++;
          } catch (err) {
            result.errors++;
            this.#onError(err as Error, group.key);
          }
          continue;
        }
        for (const tracked of [...group.events]) {
          if (group.done) break;
          if (tracked.retired) continue;
          const now = this.#clock.now().getTime();
          const quietSince = Math.max(tracked.submittedAt, group.lastNotificationAt ?? 0);
          if (!group.confirmDue && !group.pollAtOnce && now - quietSince < this.#pollAfterMs) continue;
          if (tracked.lastPollAt !== null && now - tracked.lastPollAt < this.#pollEveryMs) continue;
          tracked.lastPollAt = now;
          group.pollAtOnce = false;
          result.polled++;
          let status: VppEventStatus;
          try {
            status = await this.#client.eventStatus(tracked.eventId);
          } catch (err) {
            result.errors++;
            this.#onError(err as Error, tracked.eventId);
            // A dead token never lets the event be seen again: once it is overdue, settle with the cause.
            if (
              err instanceof VppError &&
              isTokenKind(err.kind) &&
              now - tracked.submittedAt >= this.#resubmitAfterMs
            ) {
              this.#failPending(group, err.kind, err.errorNumber ?? null, err.errorMessage ?? err.message);
              try {
                await this.#finish(group, 'poll', err.raw ?? null);
                result.settled++;
              } catch (deliveryError) {
                this.#onError(deliveryError as Error, group.key);
              }
            }
            continue;
          }
          try {
            await this.#apply(tracked, status, now, result);
          } catch (err) {
            // onOutcome failed: the group stays settled-but-undelivered and the next tick retries.
            result.errors++;
            this.#onError(err as Error, tracked.eventId);
          }
        }
      }
    } finally {
      this.#ticking = false;
    }
    return result;
  }

  async #apply(
    tracked: TrackedEvent,
    status: VppEventStatus,
    now: number,
    result: TickResult,
  ): Promise<void> {
    const group = tracked.group;
    if (status.eventStatus === 'PENDING') {
      if (now - tracked.submittedAt >= this.#resubmitAfterMs) {
        const outcome = await this.#resubmit(tracked);
        if (outcome === 'resubmitted') result.resubmitted++;
        else if (outcome === 'settled') result.settled++;
        else if (outcome === 'error') result.errors++;
      }
      return;
    }
    for (const f of status.failures) this.#applyFailure(tracked, f);
    if (status.eventStatus === 'FAILED' && status.failures.length === 0) {
      this.#applyFailure(tracked, {
        errorNumber: null,
        errorMessage: 'FAILED without failures',
        errorInfo: {},
      });
    }
    // Whatever the failures did not name went through (FAILED can be partial).
    this.#settleCoverage(tracked);
    tracked.retired = true;
    if (group.pending.size === 0) {
      await this.#finish(group, 'poll', status.raw);
      result.settled++;
    }
  }

  async #resubmit(tracked: TrackedEvent): Promise<'resubmitted' | 'settled' | 'error' | 'none'> {
    const group = tracked.group;
    const adamPending = (serial: string) =>
      group.eventType === 'REVOKE' || tracked.assets.length === 0
        ? group.pending.has(pairKey(ANY_ASSET, serial))
        : tracked.assets.some((a) => group.pending.has(pairKey(a.adamId, serial)));
    const serials = tracked.serialNumbers.filter(adamPending);
    if (serials.length === 0) {
      if (!group.confirmDue) return 'none';
      // A revoke every serial of which was reported while the status still says PENDING after
      // all this time: the notifications are all there is to go by.
      await this.#finish(group, 'notification', null);
      return 'settled';
    }
    if (group.resubmits >= this.#maxResubmits) {
      tracked.retired = true;
      this.#failPending(group, 'transient', null, `still PENDING after ${group.resubmits} resubmission(s)`);
      await this.#finish(group, 'gave_up', null);
      return 'settled';
    }
    let submitted: VppSubmitResult;
    try {
      submitted =
        group.eventType === 'ASSOCIATE'
          ? await this.#client.associate(tracked.assets, serials)
          : group.eventType === 'DISASSOCIATE'
            ? await this.#client.disassociate(tracked.assets, serials)
            : await this.#client.revoke(serials);
    } catch (err) {
      this.#onError(err as Error, tracked.eventId);
      if (err instanceof VppError && isTokenKind(err.kind)) {
        // A dead token cannot be waited out: the serials fail with the token's cause.
        tracked.retired = true;
        this.#failPending(group, err.kind, err.errorNumber ?? null, err.errorMessage ?? err.message);
        await this.#finish(group, 'resubmit_refused', err.raw ?? null);
        return 'settled';
      }
      return 'error';
    }
    group.resubmits++;
    tracked.retired = true;
    const now = this.#clock.now().getTime();
    for (const ev of submitted.events) this.#attach(group, ev, now);
    for (const f of submitted.failed) {
      this.#applyFailure(
        { ...tracked, assets: f.assets.length ? f.assets : tracked.assets, serialNumbers: f.serialNumbers },
        {
          errorNumber: f.error.errorNumber ?? null,
          errorMessage: f.error.errorMessage ?? f.error.message,
          errorInfo: {},
        },
      );
    }
    if (group.pending.size === 0) {
      await this.#finish(group, 'resubmit_refused', null);
      return 'settled';
    }
    return 'resubmitted';
  }
}

function pairKey(adamId: string, serial: string): string {
  return `${adamId}\t${serial}`;
}

type HeaderBag = Headers | Record<string, string | string[] | undefined>;

function header(headers: HeaderBag, name: string): string | null {
  if (typeof (headers as Headers).get === 'function') return (headers as Headers).get(name);
  const bag = headers as Record<string, string | string[] | undefined>;
  for (const [key, value] of Object.entries(bag)) {
    if (key.toLowerCase() !== name) continue;
    if (Array.isArray(value)) return value[0] ?? null;
    return value ?? null;
  }
  return null;
}

/**
 * The whole of POST /vpp/notify, for the HTTP layer to mount. `target` is the tracker, or a
 * look-up from the bearer to the tracker of the token it belongs to (one URL serves every token).
 */
export async function handleVppNotifyRequest(
  target: VppEventTracker | ((bearer: string) => VppEventTracker | undefined),
  headers: HeaderBag,
  rawBody: string | Uint8Array,
): Promise<{ status: number; body: object; notificationType?: string }> {
  const auth = header(headers, 'authorization');
  let tracker: VppEventTracker | undefined;
  if (target instanceof VppEventTracker) {
    tracker = target;
  } else {
    const bearer = auth ? /^Bearer\s+(.+)$/i.exec(auth.trim())?.[1]?.trim() : undefined;
    tracker = bearer ? target(bearer) : undefined;
  }
  if (!tracker) {
    return {
      status: 401,
      body: { error: { code: 'unauthorized', message: 'missing or unknown notification bearer token' } },
    };
  }
  let result: NotificationResult;
  try {
    result = await tracker.handleNotification(rawBody, auth);
  } catch (err) {
    // Not remembered as seen: Apple sends it again and it gets another chance.
    return { status: 500, body: { error: { code: 'internal', message: (err as Error).message } } };
  }
  if (!result.accepted) {
    const status = result.reason === 'unauthorized' ? 401 : 400;
    return { status, body: { error: { code: result.reason, message: result.message } } };
  }
  return {
    status: 200,
    body: { ok: true, notificationId: result.notificationId, duplicate: result.duplicate },
    notificationType: result.notificationType,
  };
}

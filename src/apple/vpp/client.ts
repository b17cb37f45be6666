import { createHash } from 'node:crypto';
import type { Clock } from '../../core/clock.ts';
import { VppError, isRetryableKind, isTokenKind } from './errors.ts';
import type { VppErrorKind } from './errors.ts';
import { RateLimiter, realSleep } from './limiter.ts';
import type { PacingState, Sleep } from './limiter.ts';
import {
  DEFAULT_LIMITS,
  VppParseError,
  detectLegacyBody,
  extractError,
  isObject,
  parseAssetsPage,
  parseAssignmentsPage,
  parseClientConfig,
  parseEventResponse,
  parseEventStatus,
  parseServiceConfig,
  tokenExpirationOf,
} from './wire.ts';
import type {
  VppAsset,
  VppAssetRef,
  VppAssignment,
  VppClientConfig,
  VppEventStatus,
  VppMdmInfo,
  VppServiceConfig,
  VppServiceLimits,
} from './wire.ts';

export const DEFAULT_VPP_URL = 'https://vpp.itunes.apple.com/mdm/v2';
/** DESIGN §6: limits are re-read every 5 minutes. */
const SERVICE_CONFIG_TTL_MS = 5 * 60_000;
/** A paging loop that does not end by itself is a server bug; stop it rather than spin. */
const MAX_PAGES = 100_000;

export interface VppClientOptions {
  /** HAISHIN_VPP_URL; defaults to Apple's. */
  baseUrl?: string;
  /** The whole .vpptoken text (see decodeVppToken): the bearer. */
  sToken: string;
  clock: Clock;
  /** Every wait (pacing, backoff, Retry-After) goes through this; tests pass one that moves a ManualClock. */
  sleep?: Sleep;
  /** Who we are to Apple: written into client/config by claim(). */
  mdmInfo: VppMdmInfo;
  fetch?: typeof fetch;
  /** Retries after the first request of a call (so maxRetries + 1 requests at most). Default 5. */
  maxRetries?: number;
  /** Exponential backoff for 429/9646, 9603, 5xx without Retry-After, network errors. */
  backoff?: { baseMs: number; capMs: number };
  /** A Retry-After longer than this ends the call with the error instead of holding it. Default 2 min. */
  maxRetryAfterMs?: number;
  /**
   * `perSecond`: a fixed rate. Without it the client paces at `headroom` (default 0.9) times the
   * rate service/config announces (else 15/s): network jitter bunches requests up on the way,
   * and the service counts them on arrival. `burst` defaults to 1. `false` switches pacing off:
   * only for tests that look at backoff alone.
   */
  pacing?: { perSecond?: number; burst?: number; headroom?: number } | false;
  /**
   * Where the pacing of the token's location is kept when several processes call Apple for it
   * (the database, on PostgreSQL: decision 0021): every client of the location takes its slots
   * there, and a Retry-After or a 429/503 backoff one of them meets holds them all. Without it
   * the client paces alone, in memory.
   */
  pacingState?: PacingState;
  requestTimeoutMs?: number;
  /** In [0, 1): the jitter source. */
  random?: () => number;
  /** Told about every HTTP request as it ends (metrics, logs); what it throws is ignored. */
  onCall?: VppCallObserver;
}

/**
 * One HTTP request to the Apps and Books API as it ended (each retry is its own request). It
 * carries no token, no query and no body: safe to count and to log.
 */
export interface VppCallRecord {
  /** Method and path without the query, e.g. `POST assets/associate`. */
  endpoint: string;
  /** The HTTP status; 0 when no answer came (network error, timeout). */
  status: number;
  /** Wall-clock time from sending the request to reading the whole answer. */
  durationMs: number;
  /** 1 for the first request of a call, 2… for its retries. */
  attempt: number;
  /** Set when the request ended in an error (also an HTTP 200 carrying Apple's errorNumber). */
  error?: { kind: VppErrorKind; errorNumber: number | null };
}

export type VppCallObserver = (call: VppCallRecord) => void;

export interface AssignmentsFilter {
  adamId?: string;
  serialNumber?: string;
  clientUserId?: string;
  /** Only assignments changed since this version (from an earlier call's `versionId`). */
  sinceVersionId?: string;
}

export interface AssetsFilter {
  adamId?: string;
  pricingParam?: string;
  productType?: string;
  deviceAssignable?: boolean;
  revocable?: boolean;
}

export type VppEventType = 'ASSOCIATE' | 'DISASSOCIATE' | 'REVOKE';

export interface VppSubmittedEvent {
  eventId: string;
  eventType: VppEventType;
  /** Empty for REVOKE: Apple revokes every revocable asset of the serials. */
  assets: VppAssetRef[];
  serialNumbers: string[];
  raw: string;
}

export interface VppSubmitResult {
  events: VppSubmittedEvent[];
  /** Batches Apple refused (or that were not sent after a token-level refusal). */
  failed: Array<{ assets: VppAssetRef[]; serialNumbers: string[]; error: VppError }>;
}

export interface ClaimOptions {
  /** HAISHIN_PUBLIC_URL + /vpp/notify. */
  notificationUrl?: string;
  /** The bearer Apple will send with notifications; required with notificationUrl. */
  notificationAuthToken?: string;
  notificationTypes?: string[];
  /** Take the location from another MDM. Without it, a foreign claim is an `other_mdm` error. */
  takeOver?: boolean;
}

export type ClaimState = 'ours' | 'other_mdm' | 'unclaimed';

export interface VppClientStats {
  /** HTTP requests sent, retries included. */
  requests: number;
  retries: number;
  /** Time spent waiting for the rate limiter, ms. */
  pacedMs: number;
  byEndpoint: Record<string, number>;
}

interface RawResponse {
  status: number;
  text: string;
  json: Record<string, unknown>;
}

/**
 * The Apps and Books API v2 client for one token (one location). It paces itself below the
 * service's rate, backs off on 429/9646, honours Retry-After, looks for `errorNumber` in every
 * body (Apple answers some errors with HTTP 200), splits large requests into the service's
 * limits and refuses to write once another MDM holds the location.
 */
export class VppClient {
  readonly #baseUrl: string;
  readonly #sToken: string;
  readonly #clock: Clock;
  readonly #sleep: Sleep;
  readonly #mdmInfo: VppMdmInfo;
  readonly #fetch: typeof fetch;
  readonly #maxRetries: number;
  readonly #backoff: { baseMs: number; capMs: number };
  readonly #maxRetryAfterMs: number;
  readonly #requestTimeoutMs: number;
  readonly #random: () => number;
  readonly #limiter: RateLimiter | null;
  readonly #fixedRate: boolean;
  readonly #headroom: number;
  readonly #onCall: VppCallObserver | null;

  #serviceConfig: { value: VppServiceConfig; at: number } | null = null;
  #serviceConfigInFlight: Promise<VppServiceConfig> | null = null;
  /** Set when client/config shows another MDM: writes stop until claim({takeOver}). */
  #foreignClaim: VppMdmInfo | null = null;
  #tokenExpirationDate: Date | null = null;
  readonly #stats: VppClientStats = { requests: 0, retries: 0, pacedMs: 0, byEndpoint: {} };

  constructor(options: VppClientOptions) {
    if (!options.sToken) throw new TypeError('VppClient: sToken is required');
    if (!options.mdmInfo?.id) throw new TypeError('VppClient: mdmInfo.id is required');
    this.#baseUrl = (options.baseUrl ?? DEFAULT_VPP_URL).replace(/\/+$/, '');
    this.#sToken = options.sToken;
    this.#clock = options.clock;
    this.#sleep = options.sleep ?? realSleep;
    this.#mdmInfo = options.mdmInfo;
    this.#fetch = options.fetch ?? fetch;
    this.#maxRetries = Math.max(0, Math.floor(options.maxRetries ?? 5));
    this.#backoff = options.backoff ?? { baseMs: 500, capMs: 30_000 };
    this.#maxRetryAfterMs = options.maxRetryAfterMs ?? 120_000;
    this.#requestTimeoutMs = options.requestTimeoutMs ?? 30_000;
    this.#random = options.random ?? Math.random;
    this.#onCall = options.onCall ?? null;
    const headroom = options.pacing ? options.pacing.headroom : undefined;
    this.#headroom = headroom !== undefined && headroom > 0 && headroom <= 1 ? headroom : 0.9;
    if (options.pacing === false) {
      this.#limiter = null;
      this.#fixedRate = true;
    } else {
      this.#fixedRate = options.pacing?.perSecond !== undefined;
      const sleep = this.#sleep;
      const stats = this.#stats;
      this.#limiter = new RateLimiter({
        clock: this.#clock,
        sleep: async (ms) => {
          stats.pacedMs += ms;
          await sleep(ms);
        },
        perSecond: options.pacing?.perSecond ?? DEFAULT_LIMITS.requestsPerSecond * this.#headroom,
        burst: options.pacing?.burst ?? 1,
        ...(options.pacingState
          ? { shared: { state: options.pacingState, location: locationKey(options.sToken) } }
          : {}),
      });
    }
  }

  stats(): VppClientStats {
    return { ...this.#stats, byEndpoint: { ...this.#stats.byEndpoint } };
  }

  /** The latest `tokenExpirationDate` Apple sent (it does during the token's last 15 days). */
  get tokenExpirationDate(): Date | null {
    return this.#tokenExpirationDate;
  }

  /** The MDM holding the location, if client/config last showed one that is not us. */
  get foreignClaim(): VppMdmInfo | null {
    return this.#foreignClaim;
  }

  // ---- configuration -------------------------------------------------------------------

  /** GET service/config, cached for 5 minutes on the clock; the pacing follows its rate. */
  async serviceConfig(): Promise<VppServiceConfig> {
    const now = this.#clock.now().getTime();
    if (this.#serviceConfig && now - this.#serviceConfig.at < SERVICE_CONFIG_TTL_MS)
      return this.#serviceConfig.value;
    if (this.#serviceConfigInFlight) return this.#serviceConfigInFlight;
    const load = (async () => {
      const res = await this.#request('GET', 'service/config');
      const value = this.#parse(() => parseServiceConfig(res.text), res);
      this.#serviceConfig = { value, at: this.#clock.now().getTime() };
      if (this.#limiter && !this.#fixedRate)
        this.#limiter.setRate(value.limits.requestsPerSecond * this.#headroom);
      return value;
    })();
    this.#serviceConfigInFlight = load;
    try {
      return await load;
    } finally {
      this.#serviceConfigInFlight = null;
    }
  }

  async limits(): Promise<VppServiceLimits> {
    return (await this.serviceConfig()).limits;
  }

  /** GET client/config; remembers whether another MDM holds the location. */
  async clientConfig(): Promise<VppClientConfig> {
    const res = await this.#request('GET', 'client/config');
    const config = this.#parse(() => parseClientConfig(res.text), res);
    this.#noteClaim(config);
    return config;
  }

  /** Compare `mdmInfo.id` with ours: run it on every sync (DESIGN §6). */
  async claimState(): Promise<{ state: ClaimState; config: VppClientConfig }> {
    const config = await this.clientConfig();
    const state: ClaimState = !config.mdmInfo
      ? 'unclaimed'
      : config.mdmInfo.id === this.#mdmInfo.id
        ? 'ours'
        : 'other_mdm';
    return { state, config };
  }

  /**
   * Claims the location for us (POST client/config with our mdmInfo and the notification
   * subscription). Refuses with `other_mdm` when another MDM holds it, unless takeOver.
   */
  async claim(options: ClaimOptions = {}): Promise<VppClientConfig> {
    if (options.notificationUrl && !options.notificationAuthToken) {
      throw new TypeError('claim: notificationUrl needs a notificationAuthToken');
    }
    const current = await this.clientConfig();
    if (current.mdmInfo && current.mdmInfo.id !== this.#mdmInfo.id && !options.takeOver) {
      throw new VppError({
        kind: 'other_mdm',
        httpStatus: 200,
        endpoint: 'GET client/config',
        raw: current.raw,
        errorMessage: `the location is claimed by another MDM "${current.mdmInfo.name}" (${current.mdmInfo.id})`,
      });
    }
    const body: Record<string, unknown> = { mdmInfo: this.#mdmInfo };
    if (options.notificationUrl) {
      body['notificationUrl'] = options.notificationUrl;
      body['notificationAuthToken'] = options.notificationAuthToken;
      body['notificationTypes'] = options.notificationTypes ?? ['ASSET_MANAGEMENT', 'ASSET_COUNT'];
    }
    const res = await this.#request('POST', 'client/config', undefined, body);
    const config = this.#parse(() => parseClientConfig(res.text), res);
    // Apple echoes the new config; if it does not carry mdmInfo, what we wrote is what holds.
    this.#foreignClaim = config.mdmInfo && config.mdmInfo.id !== this.#mdmInfo.id ? config.mdmInfo : null;
    return config;
  }

  // ---- reading -------------------------------------------------------------------------

  /** Every page of GET assets, one page at a time (memory stays one page). */
  async *assetPages(
    filter: AssetsFilter = {},
  ): AsyncGenerator<{ assets: VppAsset[]; versionId: string | null }> {
    const query: Record<string, string> = {};
    for (const [key, value] of Object.entries(filter)) if (value !== undefined) query[key] = String(value);
    for await (const page of this.#pages('assets', query, parseAssetsPage)) {
      yield { assets: page.parsed.assets, versionId: page.parsed.page.versionId };
    }
  }

  /** All assets of the location, every page. */
  async assets(filter: AssetsFilter = {}): Promise<VppAsset[]> {
    const all: VppAsset[] = [];
    for await (const page of this.assetPages(filter)) all.push(...page.assets);
    return all;
  }

  async *assignmentPages(
    filter: AssignmentsFilter = {},
  ): AsyncGenerator<{ assignments: VppAssignment[]; versionId: string | null }> {
    const query: Record<string, string> = {};
    for (const [key, value] of Object.entries(filter)) if (value !== undefined) query[key] = String(value);
    for await (const page of this.#pages('assignments', query, parseAssignmentsPage)) {
      yield { assignments: page.parsed.assignments, versionId: page.parsed.page.versionId };
    }
  }

  /**
   * Every page of GET assignments. `versionId` is the first page's: changes made while the
   * pages were read then show up again in the next delta instead of being missed.
   */
  async assignments(
    filter: AssignmentsFilter = {},
  ): Promise<{ assignments: VppAssignment[]; versionId: string | null }> {
    const assignments: VppAssignment[] = [];
    let versionId: string | null = null;
    let first = true;
    for await (const page of this.assignmentPages(filter)) {
      if (first) versionId = page.versionId;
      first = false;
      assignments.push(...page.assignments);
    }
    return { assignments, versionId };
  }

  /** GET status?eventId=… */
  async eventStatus(eventId: string): Promise<VppEventStatus> {
    const res = await this.#request('GET', 'status', { eventId });
    return this.#parse(() => parseEventStatus(res.text, eventId), res);
  }

  // ---- writing -------------------------------------------------------------------------

  /** POST assets/associate, split into calls of at most maxAssets assets × maxSerialNumbers serials. */
  associate(assets: Array<string | VppAssetRef>, serialNumbers: string[]): Promise<VppSubmitResult> {
    return this.#submit('ASSOCIATE', 'assets/associate', normaliseAssets(assets), serialNumbers);
  }

  /** POST assets/disassociate, batched like associate. */
  disassociate(assets: Array<string | VppAssetRef>, serialNumbers: string[]): Promise<VppSubmitResult> {
    return this.#submit('DISASSOCIATE', 'assets/disassociate', normaliseAssets(assets), serialNumbers);
  }

  /** POST assets/revoke: every revocable licence of these serials, batched by maxSerialNumbers. */
  revoke(serialNumbers: string[]): Promise<VppSubmitResult> {
    return this.#submit('REVOKE', 'assets/revoke', [], serialNumbers);
  }

  async #submit(
    eventType: VppEventType,
    path: string,
    assets: VppAssetRef[],
    serialNumbers: string[],
  ): Promise<VppSubmitResult> {
    const serials = unique(serialNumbers.map((s) => s.trim()).filter((s) => s !== ''));
    if (serials.length === 0) throw new TypeError(`${path}: no serial numbers`);
    if (eventType !== 'REVOKE' && assets.length === 0) throw new TypeError(`${path}: no assets`);
    this.#assertWritable(path);
    const limits = await this.limits();
    const assetChunks = eventType === 'REVOKE' ? [[]] : chunk(assets, limits.maxAssets);
    const serialChunks = chunk(serials, limits.maxSerialNumbers);
    const result: VppSubmitResult = { events: [], failed: [] };
    let fatal: VppError | null = null;
    for (const assetChunk of assetChunks) {
      for (const serialChunk of serialChunks) {
        if (fatal) {
          result.failed.push({ assets: assetChunk, serialNumbers: serialChunk, error: fatal });
          continue;
        }
        const body: Record<string, unknown> = { serialNumbers: serialChunk };
        if (eventType !== 'REVOKE') body['assets'] = assetChunk;
        try {
          const res = await this.#request('POST', path, undefined, body);
          const { eventId } = this.#parse(() => parseEventResponse(res.text), res);
          result.events.push({
            eventId,
            eventType,
            assets: assetChunk,
            serialNumbers: serialChunk,
            raw: res.text,
          });
        } catch (err) {
          if (!(err instanceof VppError)) throw err;
          // Nothing sent yet: the caller gets the error itself, as from any other call.
          if (result.events.length === 0 && result.failed.length === 0 && isTokenKind(err.kind)) throw err;
          result.failed.push({ assets: assetChunk, serialNumbers: serialChunk, error: err });
          // Later batches cannot succeed with a dead token: record them unsent.
          if (isTokenKind(err.kind)) fatal = err;
        }
      }
    }
    if (result.events.length === 0 && result.failed[0]) throw result.failed[0].error;
    return result;
  }

  #assertWritable(path: string): void {
    if (this.#foreignClaim) {
      throw new VppError({
        kind: 'other_mdm',
        httpStatus: 0,
        endpoint: `POST ${path}`,
        errorMessage: `not sent: the location is claimed by another MDM "${this.#foreignClaim.name}" (${this.#foreignClaim.id})`,
      });
    }
  }

  #noteClaim(config: VppClientConfig): void {
    this.#foreignClaim = config.mdmInfo && config.mdmInfo.id !== this.#mdmInfo.id ? config.mdmInfo : null;
  }

  // ---- transport -----------------------------------------------------------------------

  async *#pages<
    T extends { page: { nextPageIndex: number | null; totalPages: number | null; currentPageIndex: number } },
  >(path: string, query: Record<string, string>, parse: (raw: string) => T): AsyncGenerator<{ parsed: T }> {
    let pageIndex: number | null = null;
    for (let n = 0; n < MAX_PAGES; n++) {
      const q = pageIndex === null ? query : { ...query, pageIndex: String(pageIndex) };
      const res = await this.#request('GET', path, q);
      const parsed = this.#parse(() => parse(res.text), res);
      yield { parsed };
      const { nextPageIndex, totalPages, currentPageIndex } = parsed.page;
      if (nextPageIndex === null) return;
      if (totalPages !== null && nextPageIndex >= totalPages) return;
      // A next index that does not move forward would loop forever.
      if (nextPageIndex <= currentPageIndex) {
        throw new VppError({
          kind: 'unknown',
          httpStatus: res.status,
          endpoint: `GET ${path}`,
          raw: res.text,
          errorMessage: `paging does not advance (nextPageIndex ${nextPageIndex} after page ${currentPageIndex})`,
        });
      }
      pageIndex = nextPageIndex;
    }
    throw new VppError({
      kind: 'unknown',
      httpStatus: 200,
      endpoint: `GET ${path}`,
      errorMessage: `more than ${MAX_PAGES} pages`,
    });
  }

  #parse<T>(fn: () => T, res: RawResponse): T {
    try {
      return fn();
    } catch (err) {
      if (err instanceof VppParseError) {
        throw new VppError({
          kind: 'unknown',
          httpStatus: res.status,
          raw: res.text,
          errorMessage: err.message,
        });
      }
      throw err;
    }
  }

  /** One API call: paced, retried within bounds, always checked for an error body. */
  async #request(
    method: 'GET' | 'POST',
    path: string,
    query?: Record<string, string>,
    body?: unknown,
  ): Promise<RawResponse> {
    const endpoint = `${method} ${path}`;
    const url = new URL(`${this.#baseUrl}/${path}`);
    if (query) for (const [key, value] of Object.entries(query)) url.searchParams.set(key, value);
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const headers: Record<string, string> = {
      authorization: `Bearer ${this.#sToken}`,
      accept: 'application/json',
    };
    if (payload !== undefined) headers['content-type'] = 'application/json';

    for (let attempt = 1; ; attempt++) {
      if (this.#limiter) await this.#limiter.take();
      this.#stats.requests++;
      this.#stats.byEndpoint[endpoint] = (this.#stats.byEndpoint[endpoint] ?? 0) + 1;
      if (attempt > 1) this.#stats.retries++;

      let error: VppError;
      const started = performance.now();
      try {
        const res = await this.#fetch(url, {
          method,
          headers,
          ...(payload !== undefined ? { body: payload } : {}),
          signal: AbortSignal.timeout(this.#requestTimeoutMs),
        });
        const text = await res.text();
        const outcome = this.#examine(endpoint, res.status, text, res.headers.get('retry-after'), attempt);
        this.#observe(endpoint, res.status, started, attempt, outcome instanceof VppError ? outcome : null);
        if (!(outcome instanceof VppError)) return outcome;
        error = outcome;
      } catch (err) {
        if (err instanceof VppError) throw err;
        error = new VppError({
          kind: 'transient',
          httpStatus: 0,
          endpoint,
          attempts: attempt,
          errorMessage: `no answer: ${(err as Error).message}`,
        });
        this.#observe(endpoint, 0, started, attempt, error);
      }

      if (!isRetryableKind(error.kind)) throw error;
      let wait: number;
      if (error.retryAfterMs !== undefined) {
        if (error.retryAfterMs > this.#maxRetryAfterMs) throw error;
        wait = error.retryAfterMs;
      } else {
        wait = this.#backoffMs(attempt);
      }
      // The service refused the location, not this call: every call to it waits as long, those of
      // other processes too when the pacing is shared (decision 0021) — even when this call gives
      // up now. A network error or another 5xx is this call's own trouble.
      if (this.#limiter && wait > 0 && holdsTheLocation(error))
        await this.#limiter.hold(this.#clock.now().getTime() + wait);
      if (attempt > this.#maxRetries) throw error;
      if (wait > 0) await this.#sleep(wait);
    }
  }

  #observe(endpoint: string, status: number, started: number, attempt: number, error: VppError | null): void {
    if (!this.#onCall) return;
    try {
      this.#onCall({
        endpoint,
        status,
        durationMs: performance.now() - started,
        attempt,
        ...(error ? { error: { kind: error.kind, errorNumber: error.errorNumber ?? null } } : {}),
      });
    } catch {
      // An observer's failure is its own; the call goes on.
    }
  }

  /** Turns an HTTP answer into a result or an error (returned, so the caller decides on retry). */
  #examine(
    endpoint: string,
    status: number,
    text: string,
    retryAfter: string | null,
    attempt: number,
  ): RawResponse | VppError {
    let json: Record<string, unknown> | null = null;
    if (text.trim() !== '') {
      try {
        const value: unknown = JSON.parse(text);
        if (isObject(value)) json = value;
      } catch {
        json = null;
      }
    }
    const retryAfterMs = parseRetryAfter(retryAfter, this.#clock.now());
    const base = {
      httpStatus: status,
      endpoint,
      raw: text,
      attempts: attempt,
      ...(retryAfterMs !== null ? { retryAfterMs } : {}),
    };
    if (json) {
      const expiry = tokenExpirationOf(json);
      if (expiry) this.#tokenExpirationDate = expiry;
      // Apple answers some errors (9622 invalid token) with HTTP 200: the body decides.
      const apple = extractError(json);
      if (apple) return new VppError({ ...base, ...apple });
      if (detectLegacyBody(json)) {
        return new VppError({
          ...base,
          kind: 'unknown',
          errorMessage: 'the server answered with a legacy (v1) body; is HAISHIN_VPP_URL the v2 endpoint?',
        });
      }
    }
    if (status < 200 || status > 299) {
      return new VppError({ ...base, errorMessage: text.slice(0, 200) || `HTTP ${status}` });
    }
    if (!json) {
      return new VppError({ ...base, kind: 'unknown', errorMessage: 'the body is not a JSON object' });
    }
    return { status, text, json };
  }

  #backoffMs(attempt: number): number {
    const exp = Math.min(this.#backoff.capMs, this.#backoff.baseMs * 2 ** Math.min(30, attempt - 1));
    // Half fixed, half random: spreads clients apart without ever retrying at once.
    return Math.round(exp / 2 + this.#random() * (exp / 2));
  }
}

/** A 429 (or Apple's 9646 on any status), a 503, or any answer carrying a Retry-After. */
function holdsTheLocation(error: VppError): boolean {
  return (
    error.retryAfterMs !== undefined ||
    error.kind === 'rate_limited' ||
    error.httpStatus === 429 ||
    error.httpStatus === 503
  );
}

/**
 * How the shared pacing names a token's location: a digest of the token (one token per location),
 * so that the database never holds the bearer itself.
 */
export function locationKey(sToken: string): string {
  return createHash('sha256').update(sToken).digest('hex').slice(0, 32);
}

/** Retry-After as seconds or an HTTP date; null when absent or unreadable. */
export function parseRetryAfter(value: string | null, now: Date): number | null {
  if (value === null) return null;
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1000;
  const at = Date.parse(trimmed);
  if (Number.isNaN(at)) return null;
  return Math.max(0, at - now.getTime());
}

function normaliseAssets(assets: Array<string | VppAssetRef>): VppAssetRef[] {
  const seen = new Set<string>();
  const out: VppAssetRef[] = [];
  for (const a of assets) {
    const ref =
      typeof a === 'string'
        ? { adamId: a, pricingParam: 'STDQ' }
        : { adamId: String(a.adamId), pricingParam: a.pricingParam || 'STDQ' };
    const key = `${ref.adamId}/${ref.pricingParam}`;
    if (seen.has(key)) continue;
    seen.add(key);
    out.push(ref);
  }
  return out;
}

function unique(values: string[]): string[] {
  return [...new Set(values)];
}

function chunk<T>(values: T[], size: number): T[][] {
  const n = Math.max(1, Math.floor(size));
  const out: T[][] = [];
  for (let i = 0; i < values.length; i += n) out.push(values.slice(i, i + n));
  return out;
}

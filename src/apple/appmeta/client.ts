import type { Clock } from '../../core/clock.ts';

/**
 * What haishin knows about an App Store app beyond its licences. The Apps and Books API gives
 * licences only; these facts feed the troubleshooter (storage against `sizeBytes`, OS and device
 * requirements, Wi-Fi-only size limits, content rating) and map an Adam ID to the bundle id that
 * ManagedApplicationList is keyed by.
 */
export interface AppMeta {
  adamId: string;
  name: string;
  bundleId: string;
  sizeBytes: number | null;
  minimumOsVersion: string | null;
  supportedDevices: string[];
  /** Apple's age rating as shown in the store: '4+', '9+', '12+', '17+' (newer storefronts: '13+', '16+', '18+'). */
  contentRating: string | null;
  version: string | null;
  artworkUrl: string | null;
  /** The result object exactly as Apple sent it, as JSON text, for support bundles and later fields. */
  raw: string;
}

/** The port the engine uses; ids Apple does not know (in that storefront) are absent from the map. */
export interface AppMetaLookup {
  lookup(adamIds: readonly string[], country?: string): Promise<Map<string, AppMeta>>;
}

export type AppMetaErrorKind =
  /** Apple answered with a non-2xx status. */
  | 'http'
  /** No answer: connection refused, reset, DNS. */
  | 'network'
  | 'timeout'
  /** An answer that is not the lookup shape (not JSON, no `results` array). */
  | 'malformed'
  /** The caller passed something that cannot be asked (e.g. a country that is not two letters). */
  | 'invalid_argument';

export class AppMetaError extends Error {
  override readonly name = 'AppMetaError';
  readonly kind: AppMetaErrorKind;
  /** The HTTP status when Apple answered, else null. */
  readonly status: number | null;
  constructor(
    kind: AppMetaErrorKind,
    message: string,
    options: { status?: number | null; cause?: unknown } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.kind = kind;
    this.status = options.status ?? null;
  }
}

export interface AppMetaClientOptions {
  /** HAISHIN_APPMETA_URL; Apple's is https://itunes.apple.com. A path prefix is kept. */
  baseUrl: string;
  clock: Clock;
  /** Storefront asked when lookup() gets none; apps can differ or be missing per storefront. */
  country?: string;
  /** How long a found app is trusted. Default 24 h: sizes and versions change with releases, not by the minute. */
  ttlMs?: number;
  /**
   * How long "Apple does not know this id" is trusted. Default 1 h: short, because an app may just
   * have been released or returned to the store, but long enough not to re-ask on every call.
   */
  notFoundTtlMs?: number;
  /** Ids per request. Default 100; Apple's lookup takes a comma-separated list and the URL must stay short. */
  batchSize?: number;
  fetch?: typeof fetch;
  /** Per request. Default 10 s. */
  timeoutMs?: number;
  /** Cache entries kept before the oldest are dropped; bounds memory with many storefronts. Default 50 000. */
  maxEntries?: number;
}

interface CacheEntry {
  meta: AppMeta | null;
  expiresAt: number;
}

const HOUR = 3_600_000;
const ADAM_ID = /^\d{1,20}$/;
const COUNTRY = /^[a-z]{2}$/;
/** Enough of an unexpected body to recognise it in a log, not so much that a HTML error page floods it. */
const SNIPPET = 200;

/**
 * Apple's public app look-up (iTunes Search API shape), cached per (adamId, country) on the
 * injected clock. Not-found answers are cached too, for a shorter time. Batches run one after
 * another because the public endpoint is rate limited per client address; a failed batch fails
 * the call, while batches that succeeded stay cached. Concurrent look-ups of the same id share
 * one request.
 */
export class AppMetaClient implements AppMetaLookup {
  readonly #baseUrl: string;
  readonly #clock: Clock;
  readonly #country: string;
  readonly #ttlMs: number;
  readonly #notFoundTtlMs: number;
  readonly #batchSize: number;
  readonly #fetch: typeof fetch;
  readonly #timeoutMs: number;
  readonly #maxEntries: number;
  readonly #cache = new Map<string, CacheEntry>();
  readonly #inflight = new Map<string, Promise<AppMeta | null>>();
  #requests = 0;

  constructor(o: AppMetaClientOptions) {
    this.#baseUrl = o.baseUrl.replace(/\/+$/, '');
    this.#clock = o.clock;
    this.#country = normalizeCountry(o.country ?? 'jp');
    this.#ttlMs = positive('ttlMs', o.ttlMs ?? 24 * HOUR);
    this.#notFoundTtlMs = positive('notFoundTtlMs', o.notFoundTtlMs ?? HOUR);
    this.#batchSize = positiveInt('batchSize', o.batchSize ?? 100);
    this.#fetch = o.fetch ?? fetch;
    this.#timeoutMs = positive('timeoutMs', o.timeoutMs ?? 10_000);
    this.#maxEntries = positiveInt('maxEntries', o.maxEntries ?? 50_000);
  }

  /** HTTP requests made so far (for metrics and tests). */
  get requests(): number {
    return this.#requests;
  }

  /**
   * Facts for each id Apple knows in the storefront. Ids that are not Adam IDs (digits) are never
   * sent and are absent, like unknown ones: Apple could not know them either.
   */
  async lookup(adamIds: readonly string[], country?: string): Promise<Map<string, AppMeta>> {
    const cc = country === undefined ? this.#country : normalizeCountry(country);
    const now = this.#clock.now().getTime();
    const found = new Map<string, AppMeta>();
    const waiting: Array<Promise<AppMeta | null>> = [];
    const toFetch: string[] = [];
    const seen = new Set<string>();

    for (const raw of adamIds) {
      const id = raw.trim();
      if (!ADAM_ID.test(id) || seen.has(id)) continue;
      seen.add(id);
      const key = cacheKey(id, cc);
      const entry = this.#cache.get(key);
      if (entry && entry.expiresAt > now) {
        if (entry.meta) found.set(id, entry.meta);
        continue;
      }
      if (entry) this.#cache.delete(key);
      const pending = this.#inflight.get(key);
      if (pending) waiting.push(pending);
      else toFetch.push(id);
    }

    if (toFetch.length > 0) waiting.push(...this.#start(toFetch, cc));

    const settled = await Promise.allSettled(waiting);
    let failure: unknown = null;
    for (const s of settled) {
      if (s.status === 'rejected') failure ??= s.reason;
      else if (s.value) found.set(s.value.adamId, s.value);
    }
    if (failure !== null) throw failure;
    return found;
  }

  /** Forgets cached answers: all, or those of one id in every storefront (e.g. after an app update). */
  invalidate(adamId?: string): void {
    if (adamId === undefined) {
      this.#cache.clear();
      return;
    }
    const suffix = `:${adamId.trim()}`;
    for (const key of [...this.#cache.keys()]) if (key.endsWith(suffix)) this.#cache.delete(key);
  }

  /** Starts the batches for `ids` and registers one shared promise per id. */
  #start(ids: string[], cc: string): Array<Promise<AppMeta | null>> {
    const perId: Array<Promise<AppMeta | null>> = [];
    let previous: Promise<unknown> = Promise.resolve();
    for (let i = 0; i < ids.length; i += this.#batchSize) {
      const batch = ids.slice(i, i + this.#batchSize);
      // A later batch waits for the earlier one and inherits its failure: when Apple is failing,
      // asking again at once only burns the rate limit.
      const request = previous.then(() => this.#fetchBatch(batch, cc));
      previous = request;
      const mine: Array<[string, Promise<AppMeta | null>]> = [];
      for (const id of batch) {
        const key = cacheKey(id, cc);
        const one = request.then((m) => m.get(id) ?? null);
        this.#inflight.set(key, one);
        mine.push([key, one]);
        perId.push(one);
      }
      const release = (): void => {
        for (const [key, one] of mine) if (this.#inflight.get(key) === one) this.#inflight.delete(key);
      };
      void request.then(release, release);
    }
    return perId;
  }

  async #fetchBatch(ids: string[], cc: string): Promise<Map<string, AppMeta>> {
    // Built by hand so the id list keeps literal commas, as Apple documents it; ids are digits and
    // the country two letters, so nothing needs escaping.
    const url = `${this.#baseUrl}/lookup?id=${ids.join(',')}&country=${cc}&entity=software`;
    const what = `app metadata lookup of ${ids.length} id(s) in storefront '${cc}' at ${this.#baseUrl}`;
    this.#requests++;

    let status: number;
    let text: string;
    try {
      const res = await this.#fetch(url, {
        headers: { accept: 'application/json' },
        signal: AbortSignal.timeout(this.#timeoutMs),
      });
      status = res.status;
      text = await res.text();
    } catch (err) {
      const e = err as Error;
      if (e.name === 'TimeoutError' || e.name === 'AbortError') {
        throw new AppMetaError('timeout', `${what}: no answer within ${this.#timeoutMs} ms`, { cause: err });
      }
      const detail = e.cause instanceof Error ? `${e.message} (${e.cause.message})` : e.message;
      throw new AppMetaError('network', `${what}: could not reach the server: ${detail}`, { cause: err });
    }

    if (status < 200 || status > 299) {
      throw new AppMetaError('http', `${what}: HTTP ${status}${describeBody(text)}`, { status });
    }

    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch (err) {
      throw new AppMetaError('malformed', `${what}: the answer is not JSON${snippet(text)}`, {
        status,
        cause: err,
      });
    }
    if (!isRecord(body) || !Array.isArray(body.results)) {
      throw new AppMetaError('malformed', `${what}: the answer has no 'results' array${snippet(text)}`, {
        status,
      });
    }

    const asked = new Set(ids);
    const result = new Map<string, AppMeta>();
    for (const item of body.results) {
      const meta = parseAppMetaResult(item);
      // Apple can add related items (e.g. a developer's other apps); only what was asked counts.
      if (meta && asked.has(meta.adamId) && !result.has(meta.adamId)) result.set(meta.adamId, meta);
    }

    const now = this.#clock.now().getTime();
    for (const id of ids) {
      const meta = result.get(id) ?? null;
      this.#remember(cacheKey(id, cc), { meta, expiresAt: now + (meta ? this.#ttlMs : this.#notFoundTtlMs) });
    }
    return result;
  }

  #remember(key: string, entry: CacheEntry): void {
    // Re-inserting moves the key to the end, so Map order is oldest-written first.
    this.#cache.delete(key);
    this.#cache.set(key, entry);
    while (this.#cache.size > this.#maxEntries) {
      const oldest = this.#cache.keys().next();
      if (oldest.done) break;
      this.#cache.delete(oldest.value);
    }
  }
}

/**
 * One lookup result to {@link AppMeta}, or null when it is not an app (no trackId or no bundleId,
 * as for books). Missing optional fields become null or [].
 */
export function parseAppMetaResult(item: unknown): AppMeta | null {
  if (!isRecord(item)) return null;
  const adamId =
    typeof item.trackId === 'number' && Number.isSafeInteger(item.trackId) && item.trackId > 0
      ? String(item.trackId)
      : typeof item.trackId === 'string' && ADAM_ID.test(item.trackId)
        ? item.trackId
        : null;
  const bundleId = nonEmpty(item.bundleId);
  if (adamId === null || bundleId === null) return null;
  return {
    adamId,
    name: nonEmpty(item.trackName) ?? nonEmpty(item.trackCensoredName) ?? '',
    bundleId,
    sizeBytes: parseSize(item.fileSizeBytes),
    minimumOsVersion: nonEmpty(item.minimumOsVersion),
    supportedDevices: Array.isArray(item.supportedDevices)
      ? item.supportedDevices.filter((d): d is string => typeof d === 'string' && d !== '')
      : [],
    contentRating: nonEmpty(item.trackContentRating) ?? nonEmpty(item.contentAdvisoryRating),
    version: nonEmpty(item.version),
    artworkUrl: nonEmpty(item.artworkUrl100) ?? nonEmpty(item.artworkUrl512) ?? nonEmpty(item.artworkUrl60),
    raw: JSON.stringify(item),
  };
}

// ---- helpers -------------------------------------------------------------------------------

function cacheKey(adamId: string, country: string): string {
  return `${country}:${adamId}`;
}

function normalizeCountry(country: string): string {
  const cc = country.trim().toLowerCase();
  if (!COUNTRY.test(cc)) {
    throw new AppMetaError(
      'invalid_argument',
      `app metadata lookup: '${country}' is not a two-letter storefront country code`,
    );
  }
  return cc;
}

function positive(name: string, value: number): number {
  if (!Number.isFinite(value) || value <= 0)
    throw new RangeError(`AppMetaClient: ${name} must be > 0, got ${value}`);
  return value;
}

function positiveInt(name: string, value: number): number {
  if (!Number.isInteger(value) || value <= 0)
    throw new RangeError(`AppMetaClient: ${name} must be a positive integer, got ${value}`);
  return value;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function nonEmpty(value: unknown): string | null {
  return typeof value === 'string' && value.trim() !== '' ? value : null;
}

/** Apple sends fileSizeBytes as a decimal string; a number is accepted too. */
function parseSize(value: unknown): number | null {
  let n: number;
  if (typeof value === 'number') n = value;
  else if (typeof value === 'string' && /^\s*\d+\s*$/.test(value)) n = Number(value);
  else return null;
  return Number.isSafeInteger(n) && n >= 0 ? n : null;
}

/** Apple's error bodies carry `errorMessage` (e.g. "Invalid value(s) for key(s): [country]"). */
function describeBody(text: string): string {
  try {
    const body: unknown = JSON.parse(text);
    if (isRecord(body) && typeof body.errorMessage === 'string') return `: ${body.errorMessage}`;
  } catch {
    // not JSON: fall through to the raw snippet
  }
  return snippet(text);
}

function snippet(text: string): string {
  const t = text.trim().replace(/\s+/g, ' ');
  if (t === '') return ' (empty body)';
  return `: ${t.length > SNIPPET ? `${t.slice(0, SNIPPET)}…` : t}`;
}

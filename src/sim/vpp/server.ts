import { randomBytes, randomUUID } from 'node:crypto';
import http from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Clock } from '../../core/clock.ts';
import { systemClock } from '../../core/clock.ts';

/**
 * How the fake answers for one token:
 * - `valid`: normally.
 * - `expired`: every call 9621 (HTTP 401).
 * - `revoked`: every call 9625 (HTTP 401).
 * - `invalid`: every call 9622 with HTTP 200, the body of fixture v2-error-9622-invalid-token-http200.json.
 * - `other_mdm`: normally, but client/config shows another MDM's mdmInfo until a POST takes it over.
 */
export type FakeTokenMode = 'valid' | 'expired' | 'revoked' | 'invalid' | 'other_mdm';

export interface FakeVppOptions {
  /** Where the API lives on the fake host; Apple's is /mdm/v2. */
  basePath?: string;
  clock?: Clock;
  /** Items per page of GET assets and GET assignments; small values exercise paging. */
  pageSize?: number;
  limits?: Partial<FakeLimits>;
  /** Answer 429/9646 when a token goes past `limits.requestsPerSecond` in a sliding second (fake clock). */
  enforceRate?: boolean;
  /** Real milliseconds before an event completes by itself; null (default): only completePending() completes. */
  eventDelayMs?: number | null;
  /** Serials per ASSET_MANAGEMENT notification (Apple sends about 100 per asset). */
  notifyChunkSize?: number;
  /** Deliver every notification twice, as Apple may. */
  duplicateNotifications?: boolean;
  /** Entries kept in {@link FakeVppService.log}. */
  keepLog?: number;
}

export interface FakeLimits {
  maxSerialNumbers: number;
  maxAssets: number;
  maxClientUserIds: number;
  requestsPerSecond: number;
}

export interface FakeTokenSeed {
  /** The bearer: the .vpptoken file text (see {@link FakeVppService.tokenFile}). */
  sToken: string;
  orgName: string;
  locationName: string;
  mode?: FakeTokenMode;
  /** Responses carry tokenExpirationDate during the last 15 days before it. */
  expiresAt?: Date;
  /** The foreign holder shown in `other_mdm` mode. */
  foreignMdm?: { id: string; name: string; metadata?: string };
  /**
   * An sToken already added: the new one is a renewal of the same location and sees the same
   * licences, events, claim and notification settings.
   */
  sameLocationAs?: string;
}

export interface FakeAssetSeed {
  adamId: string;
  pricingParam?: string;
  productType?: 'App' | 'Book';
  total: number;
  deviceAssignable?: boolean;
  revocable?: boolean;
  /**
   * Apple refuses every assignment of the asset with this error number, in the event: the
   * associate call answers an eventId and the event ends FAILED (e.g. 9624, licence refunded).
   */
  refuseWith?: number;
}

export type FakeFaultType = 'http429' | 'http503' | 'error9709' | 'error9610' | 'error9603' | 'refusal';

export interface FakeFault {
  type: FakeFaultType;
  /** How many of the next matching requests get it. */
  count: number;
  /** Sent as Retry-After (seconds) where the fault has one; 503 defaults to 1. */
  retryAfterSec?: number;
  /** "METHOD path" (e.g. `POST assets/associate`); any request when absent. */
  endpoint?: string;
  /** Only requests with this bearer (the sToken); any token when absent. */
  sToken?: string;
  /** `refusal`: Apple's error number (default 9624, licence refunded) and HTTP status (default 400). */
  errorNumber?: number;
  httpStatus?: number;
}

export interface FakeCall {
  endpoint: string;
  /** Fake clock, ms since the epoch. */
  at: number;
  status: number;
  errorNumber: number | null;
}

export interface FakeNotificationRecord {
  url: string;
  type: string;
  notificationId: string;
  status: number | null;
  serials: number;
}

interface FakeAsset {
  adamId: string;
  pricingParam: string;
  productType: string;
  total: number;
  retired: number;
  deviceAssignable: boolean;
  revocable: boolean;
  refuseWith: number | null;
  /** serial → version at which it was assigned. */
  holders: Map<string, number>;
}

interface FakeFailure {
  errorNumber: number;
  errorMessage: string;
  errorInfo: { assets?: Array<{ adamId: string; pricingParam: string }>; serialNumbers?: string[] };
}

interface FakeEvent {
  eventId: string;
  type: 'ASSOCIATE' | 'DISASSOCIATE' | 'REVOKE';
  assets: Array<{ adamId: string; pricingParam: string }>;
  serials: string[];
  status: 'PENDING' | 'COMPLETE' | 'FAILED';
  failures: FakeFailure[];
  numRequested: number;
  numCompleted: number;
  timer: ReturnType<typeof setTimeout> | null;
}

/** What a location holds; renewed tokens of the same location share it. */
interface FakeLocation {
  locationName: string;
  locationId: number;
  uId: string;
  mdmInfo: { id: string; name: string; metadata?: string } | null;
  notificationUrl: string | null;
  notificationAuthToken: string | null;
  notificationTypes: string[];
  assets: Map<string, FakeAsset>;
  events: Map<string, FakeEvent>;
  version: number;
  /** Ring of recent request times, for enforceRate. */
  recent: number[];
}

interface FakeToken {
  sToken: string;
  orgName: string;
  mode: FakeTokenMode;
  expiresAt: Date | null;
  loc: FakeLocation;
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    /** null: a plain-text answer without Apple's JSON envelope. */
    readonly errorNumber: number | null,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

// Bodies as Apple writes them (the 9622/9603 ones are the fixtures' text).
const MSG: Record<number, string> = {
  9600: 'Missing required argument',
  9602: 'Invalid argument.',
  9603: 'Internal server error',
  9610: 'License not found',
  9621: "The token has expired. You need to generate a new token online using your organization's account at either school.apple.com or business.apple.com.",
  9622: 'Invalid authentication token',
  9624: 'License was refunded and is no longer valid.',
  9625: 'The server has revoked the sToken.',
  9646: 'There are too many recent requests. Try again momentarily.',
  9650: 'The provided page index must be greater than 0, and less than the total number of pages.',
  9700: 'Too many assets in the request.',
  9701: 'Too many serial numbers in the request.',
  9702: 'Duplicate serial numbers in the request.',
  9706: 'License is not revocable.',
  9707: 'Asset is not device assignable.',
  9709: 'Not enough licenses.',
};

const DEFAULT_FAKE_LIMITS: FakeLimits = {
  maxSerialNumbers: 1000,
  maxAssets: 25,
  maxClientUserIds: 1000,
  requestsPerSecond: 15,
};
const MAX_BODY = 8 * 1024 * 1024;
const DAY = 24 * 3600_000;

/**
 * A stand-in for Apple's Apps and Books API v2 over plain HTTP on 127.0.0.1: the same paths
 * and JSON shapes, licences whose counts move, asynchronous events that complete later (or on
 * {@link completePending}) and notifications POSTed to the registered notificationUrl (a
 * TEST_NOTIFICATION as one is set, before POST client/config answers), per-token failure modes
 * and injectable faults.
 */
export class FakeVppService {
  readonly #basePath: string;
  readonly #clock: Clock;
  readonly #pageSize: number;
  readonly #limits: FakeLimits;
  readonly #enforceRate: boolean;
  readonly #eventDelayMs: number | null;
  readonly #chunk: number;
  readonly #duplicate: boolean;
  readonly #keepLog: number;
  readonly #server: Server;
  readonly #tokens = new Map<string, FakeToken>();
  readonly #faults: FakeFault[] = [];
  readonly #inflight = new Set<Promise<void>>();
  readonly #calls = new Map<string, number>();
  #log: FakeCall[] = [];
  readonly #notifications: FakeNotificationRecord[] = [];
  /** Every serial of every accepted submission, in order: duplicates show as repeats. */
  readonly #submitted: { type: string; serial: string; eventId: string; adamIds: string[] }[] = [];
  #eventSeq = 0;
  #locations = 0;
  #url: string | null = null;

  constructor(options: FakeVppOptions = {}) {
    this.#basePath = `/${(options.basePath ?? '/mdm/v2').replace(/^\/+|\/+$/g, '')}`;
    this.#clock = options.clock ?? systemClock;
    this.#pageSize = Math.max(1, options.pageSize ?? 100);
    this.#limits = { ...DEFAULT_FAKE_LIMITS, ...options.limits };
    this.#enforceRate = options.enforceRate ?? false;
    this.#eventDelayMs = options.eventDelayMs ?? null;
    this.#chunk = Math.max(1, options.notifyChunkSize ?? 100);
    this.#duplicate = options.duplicateNotifications ?? false;
    this.#keepLog = Math.max(1, options.keepLog ?? 20_000);
    this.#server = http.createServer((req, res) => {
      this.#handle(req, res).catch((err: unknown) => {
        if (!res.headersSent)
          this.#send(res, 500, { errorNumber: 9603, errorMessage: (err as Error).message });
        else res.destroy();
      });
    });
  }

  /** Builds a .vpptoken file's text (base64 of {token, expDate, orgName}); that text is the sToken. */
  static tokenFile(token: string, orgName: string, expiresAt: Date): string {
    const expDate = expiresAt.toISOString().replace(/\.\d{3}Z$/, '+0000');
    return Buffer.from(JSON.stringify({ token, expDate, orgName }), 'utf8').toString('base64');
  }

  tokenFile(token: string, orgName: string, expiresAt: Date): string {
    return FakeVppService.tokenFile(token, orgName, expiresAt);
  }

  async listen(): Promise<string> {
    await new Promise<void>((resolve, reject) => {
      this.#server.once('error', reject);
      this.#server.listen(0, '127.0.0.1', () => {
        this.#server.off('error', reject);
        resolve();
      });
    });
    const { port } = this.#server.address() as AddressInfo;
    this.#url = `http://127.0.0.1:${port}${this.#basePath}`;
    return this.#url;
  }

  /** The API base URL (what HAISHIN_VPP_URL would be). */
  get url(): string {
    if (!this.#url) throw new Error('FakeVppService: call listen() first');
    return this.#url;
  }

  async close(): Promise<void> {
    for (const token of this.#tokens.values()) {
      for (const ev of token.loc.events.values()) if (ev.timer) clearTimeout(ev.timer);
    }
    await Promise.allSettled([...this.#inflight]);
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  // ---- seeding and inspection ----------------------------------------------------------

  addToken(seed: FakeTokenSeed): void {
    const mode = seed.mode ?? 'valid';
    let loc: FakeLocation;
    if (seed.sameLocationAs !== undefined) {
      loc = this.#token(seed.sameLocationAs).loc;
    } else {
      const n = this.#locations++;
      loc = {
        locationName: seed.locationName,
        locationId: 1_000_000 + n,
        uId: String(9_000_000 + n),
        mdmInfo: null,
        notificationUrl: null,
        notificationAuthToken: null,
        notificationTypes: [],
        assets: new Map(),
        events: new Map(),
        version: 1,
        recent: [],
      };
    }
    if (mode === 'other_mdm') loc.mdmInfo = seed.foreignMdm ?? { id: 'other-mdm-0001', name: 'Another MDM' };
    this.#tokens.set(seed.sToken, {
      sToken: seed.sToken,
      orgName: seed.orgName,
      mode,
      expiresAt: seed.expiresAt ?? null,
      loc,
    });
  }

  setMode(sToken: string, mode: FakeTokenMode, foreignMdm?: { id: string; name: string }): void {
    const token = this.#token(sToken);
    token.mode = mode;
    if (mode === 'other_mdm') token.loc.mdmInfo = foreignMdm ?? { id: 'other-mdm-0001', name: 'Another MDM' };
  }

  addAsset(sToken: string, seed: FakeAssetSeed): void {
    const token = this.#token(sToken);
    const pricingParam = seed.pricingParam ?? 'STDQ';
    token.loc.assets.set(assetKey(seed.adamId, pricingParam), {
      adamId: seed.adamId,
      pricingParam,
      productType: seed.productType ?? 'App',
      total: seed.total,
      retired: 0,
      deviceAssignable: seed.deviceAssignable ?? true,
      revocable: seed.revocable ?? true,
      refuseWith: seed.refuseWith ?? null,
      holders: new Map(),
    });
  }

  /** Puts licences on serials directly, as another MDM or Apple School Manager would have. */
  assign(sToken: string, adamId: string, serials: string[], pricingParam = 'STDQ'): void {
    const token = this.#token(sToken);
    const asset = token.loc.assets.get(assetKey(adamId, pricingParam));
    if (!asset) throw new Error(`no asset ${adamId}/${pricingParam}`);
    for (const s of serials) if (!asset.holders.has(s)) asset.holders.set(s, ++token.loc.version);
  }

  /** Licences bought or transferred: changes totalCount and sends ASSET_COUNT. */
  async adjustTotal(
    sToken: string,
    adamId: string,
    countDelta: number,
    pricingParam = 'STDQ',
  ): Promise<void> {
    const token = this.#token(sToken);
    const asset = token.loc.assets.get(assetKey(adamId, pricingParam));
    if (!asset) throw new Error(`no asset ${adamId}/${pricingParam}`);
    asset.total = Math.max(asset.holders.size, asset.total + countDelta);
    if (token.loc.notificationUrl && token.loc.notificationTypes.includes('ASSET_COUNT')) {
      await this.#track(this.#notify(token, 'ASSET_COUNT', { adamId, pricingParam, countDelta }, 0));
    }
  }

  counts(
    sToken: string,
    adamId: string,
    pricingParam = 'STDQ',
  ): { total: number; assigned: number; available: number } {
    const asset = this.#token(sToken).loc.assets.get(assetKey(adamId, pricingParam));
    if (!asset) throw new Error(`no asset ${adamId}/${pricingParam}`);
    return { total: asset.total, assigned: asset.holders.size, available: asset.total - asset.holders.size };
  }

  holders(sToken: string, adamId: string, pricingParam = 'STDQ'): string[] {
    const asset = this.#token(sToken).loc.assets.get(assetKey(adamId, pricingParam));
    return asset ? [...asset.holders.keys()] : [];
  }

  /** What client/config would show: mdmInfo, notificationUrl and the bearer Apple would send. */
  clientState(sToken: string): {
    mdmInfo: FakeLocation['mdmInfo'];
    notificationUrl: string | null;
    notificationAuthToken: string | null;
    notificationTypes: string[];
  } {
    const t = this.#token(sToken);
    return {
      mdmInfo: t.loc.mdmInfo,
      notificationUrl: t.loc.notificationUrl,
      notificationAuthToken: t.loc.notificationAuthToken,
      notificationTypes: [...t.loc.notificationTypes],
    };
  }

  eventState(eventId: string): { status: FakeEvent['status']; serials: number } | null {
    for (const token of this.#tokens.values()) {
      const ev = token.loc.events.get(eventId);
      if (ev) return { status: ev.status, serials: ev.serials.length };
    }
    return null;
  }

  /** Next matching requests fail this way. */
  injectFault(fault: FakeFault): void {
    this.#faults.push({ ...fault });
  }

  clearFaults(): void {
    this.#faults.length = 0;
  }

  /** Calls per "METHOD path" (e.g. `POST assets/associate`), or all calls. */
  calls(endpoint?: string): number {
    if (endpoint === undefined) {
      let n = 0;
      for (const v of this.#calls.values()) n += v;
      return n;
    }
    return this.#calls.get(endpoint) ?? 0;
  }

  callCounts(): Record<string, number> {
    return Object.fromEntries(this.#calls);
  }

  /** The most recent calls with their fake-clock times, oldest first. */
  log(endpoint?: string): FakeCall[] {
    return endpoint === undefined ? [...this.#log] : this.#log.filter((c) => c.endpoint === endpoint);
  }

  /** The serials of every accepted associate/disassociate/revoke call, repeats included. */
  submittedSerials(type: 'ASSOCIATE' | 'DISASSOCIATE' | 'REVOKE'): string[] {
    return this.#submitted.filter((s) => s.type === type).map((s) => s.serial);
  }

  /** The accepted associate/disassociate/revoke requests, each with its serials, oldest first. */
  submittedRequests(
    type: 'ASSOCIATE' | 'DISASSOCIATE' | 'REVOKE',
  ): { eventId: string; serials: string[]; adamIds: string[] }[] {
    const byEvent = new Map<string, { serials: string[]; adamIds: string[] }>();
    for (const s of this.#submitted) {
      if (s.type !== type) continue;
      const request = byEvent.get(s.eventId) ?? { serials: [], adamIds: s.adamIds };
      request.serials.push(s.serial);
      byEvent.set(s.eventId, request);
    }
    return [...byEvent].map(([eventId, request]) => ({ eventId, ...request }));
  }

  /** Notifications sent (each copy of a duplicate is one), oldest first; optionally of one type. */
  notifications(type?: string): FakeNotificationRecord[] {
    return type === undefined ? [...this.#notifications] : this.#notifications.filter((n) => n.type === type);
  }

  resetCounters(): void {
    this.#calls.clear();
    this.#log = [];
    this.#notifications.length = 0;
  }

  /** Completes every PENDING event now and waits until its notifications are delivered. */
  async completePending(): Promise<number> {
    let n = 0;
    for (const token of this.#tokens.values()) {
      for (const ev of token.loc.events.values()) {
        if (ev.status !== 'PENDING') continue;
        n++;
        await this.#track(this.#complete(token, ev));
      }
    }
    await Promise.allSettled([...this.#inflight]);
    return n;
  }

  // ---- HTTP ----------------------------------------------------------------------------

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://fake');
    const method = req.method ?? 'GET';
    if (!url.pathname.startsWith(`${this.#basePath}/`)) {
      req.resume();
      this.#send(res, 404, { errorNumber: 9602, errorMessage: `no such path ${url.pathname}` });
      return;
    }
    const path = url.pathname.slice(this.#basePath.length + 1).replace(/\/+$/, '');
    const endpoint = `${method} ${path}`;
    this.#calls.set(endpoint, (this.#calls.get(endpoint) ?? 0) + 1);
    const at = this.#clock.now().getTime();
    const record = (status: number, errorNumber: number | null) => {
      this.#log.push({ endpoint, at, status, errorNumber });
      // Dropping half at once keeps the trimming cost amortised O(1).
      if (this.#log.length > this.#keepLog) this.#log = this.#log.slice(Math.floor(this.#keepLog / 2));
    };
    try {
      const body = await readBody(req);
      const result = await this.#route(
        method,
        path,
        url.searchParams,
        body,
        req.headers['authorization'],
        at,
        endpoint,
      );
      record(result.status, null);
      this.#send(res, result.status, result.body);
    } catch (err) {
      if (!(err instanceof HttpError)) throw err;
      record(err.status, err.errorNumber);
      if (err.errorNumber === null) {
        this.#send(res, err.status, err.message, err.headers);
      } else {
        this.#send(res, err.status, { errorNumber: err.errorNumber, errorMessage: err.message }, err.headers);
      }
    }
  }

  async #route(
    method: string,
    path: string,
    query: URLSearchParams,
    rawBody: string,
    auth: string | undefined,
    at: number,
    endpoint: string,
  ): Promise<{ status: number; body: unknown }> {
    const bearer = auth ? /^Bearer\s+(\S+)\s*$/i.exec(auth)?.[1] : undefined;
    this.#applyFault(endpoint, 'http429', bearer);
    this.#applyFault(endpoint, 'http503', bearer);
    const token = this.#authenticate(auth);
    if (this.#enforceRate) this.#checkRate(token, at);
    this.#applyFault(endpoint, 'error9603', bearer);
    this.#applyFault(endpoint, 'error9610', bearer);
    this.#applyFault(endpoint, 'error9709', bearer);
    this.#applyFault(endpoint, 'refusal', bearer);

    const body = method === 'POST' ? parseBody(rawBody) : {};
    let out: Record<string, unknown>;
    switch (endpoint) {
      case 'GET service/config':
        out = this.#serviceConfig();
        break;
      case 'GET client/config':
        out = this.#clientConfig(token);
        break;
      case 'POST client/config':
        out = this.#updateClientConfig(token, body);
        // Apple tests a notification URL as it is set, before its answer to this call: the MDM
        // must already accept the new bearer while its own request is still open.
        if (typeof body['notificationUrl'] === 'string')
          await this.#track(this.#notify(token, 'TEST_NOTIFICATION', {}, 0));
        break;
      case 'GET assets':
        out = this.#assets(token, query);
        break;
      case 'GET assignments':
        out = this.#assignments(token, query);
        break;
      case 'POST assets/associate':
        out = this.#submit(token, 'ASSOCIATE', body);
        break;
      case 'POST assets/disassociate':
        out = this.#submit(token, 'DISASSOCIATE', body);
        break;
      case 'POST assets/revoke':
        out = this.#submit(token, 'REVOKE', body);
        break;
      case 'GET status':
        out = this.#status(token, query);
        break;
      default:
        throw new HttpError(404, 9602, `unknown endpoint ${endpoint}`);
    }
    return { status: 200, body: { ...out, ...this.#envelope(token) } };
  }

  #applyFault(endpoint: string, type: FakeFaultType, bearer: string | undefined): void {
    const i = this.#faults.findIndex(
      (f) =>
        f.type === type &&
        f.count > 0 &&
        (!f.endpoint || f.endpoint === endpoint) &&
        (!f.sToken || f.sToken === bearer),
    );
    if (i < 0) return;
    const fault = this.#faults[i]!;
    fault.count--;
    if (fault.count <= 0) this.#faults.splice(i, 1);
    const retry: Record<string, string> =
      fault.retryAfterSec !== undefined ? { 'retry-after': String(fault.retryAfterSec) } : {};
    switch (type) {
      case 'http429':
        throw new HttpError(429, 9646, MSG[9646]!, retry);
      case 'http503':
        // Apple's edge answers 503 with a plain page, not the JSON envelope.
        throw new HttpError(503, null, 'Service Unavailable', {
          'retry-after': String(fault.retryAfterSec ?? 1),
        });
      case 'error9603':
        throw new HttpError(500, 9603, MSG[9603]!, retry);
      case 'error9610':
        throw new HttpError(400, 9610, MSG[9610]!);
      case 'error9709':
        throw new HttpError(400, 9709, MSG[9709]!);
      case 'refusal': {
        const n = fault.errorNumber ?? 9624;
        throw new HttpError(fault.httpStatus ?? 400, n, MSG[n] ?? 'error', retry);
      }
    }
  }

  #authenticate(auth: string | undefined): FakeToken {
    const m = auth ? /^Bearer\s+(\S+)\s*$/i.exec(auth) : null;
    if (!m || !m[1]) throw new HttpError(401, 9622, MSG[9622]!);
    const token = this.#tokens.get(m[1]);
    // Apple answers a bad bearer with HTTP 200 and an error body (fixture v2-error-9622).
    if (!token || token.mode === 'invalid') throw new HttpError(200, 9622, MSG[9622]!);
    if (token.mode === 'expired') throw new HttpError(401, 9621, MSG[9621]!);
    if (token.mode === 'revoked') throw new HttpError(401, 9625, MSG[9625]!);
    return token;
  }

  #checkRate(token: FakeToken, at: number): void {
    const n = Math.max(1, Math.floor(this.#limits.requestsPerSecond));
    if (token.loc.recent.length >= n && at - token.loc.recent[token.loc.recent.length - n]! < 1000) {
      throw new HttpError(429, 9646, MSG[9646]!);
    }
    token.loc.recent.push(at);
    if (token.loc.recent.length > n * 4) token.loc.recent = token.loc.recent.slice(-n);
  }

  #envelope(token: FakeToken): Record<string, unknown> {
    const out: Record<string, unknown> = { uId: token.loc.uId };
    if (token.expiresAt && token.expiresAt.getTime() - this.#clock.now().getTime() <= 15 * DAY) {
      out['tokenExpirationDate'] = token.expiresAt.toISOString().replace(/\.\d{3}Z$/, '+0000');
    }
    return out;
  }

  #serviceConfig(): Record<string, unknown> {
    return {
      errorCodes: Object.entries(MSG).map(([n, m]) => ({ errorNumber: Number(n), errorMessage: m })),
      // Apple documents limits as a map of any key to an int; the rate key is this fake's.
      limits: { ...this.#limits },
      notificationTypes: ['ASSET_MANAGEMENT', 'ASSET_COUNT', 'USER_MANAGEMENT', 'USER_ASSOCIATED'],
      urls: {
        clientConfig: `${this.#url}/client/config`,
        getAssets: `${this.#url}/assets`,
        getAssignments: `${this.#url}/assignments`,
        associateAssets: `${this.#url}/assets/associate`,
        disassociateAssets: `${this.#url}/assets/disassociate`,
        revokeAssets: `${this.#url}/assets/revoke`,
        status: `${this.#url}/status`,
      },
    };
  }

  #clientConfig(token: FakeToken): Record<string, unknown> {
    const out: Record<string, unknown> = {
      countryISO2ACode: 'JP',
      defaultPlatform: 'volumestore',
      locationId: token.loc.locationId,
      locationName: token.loc.locationName,
      notificationTypes: token.loc.notificationTypes,
      websiteURL: 'https://school.apple.com',
    };
    if (token.loc.mdmInfo) out['mdmInfo'] = token.loc.mdmInfo;
    if (token.loc.notificationUrl) out['notificationUrl'] = token.loc.notificationUrl;
    return out;
  }

  #updateClientConfig(token: FakeToken, body: Record<string, unknown>): Record<string, unknown> {
    const info = body['mdmInfo'];
    if (info !== undefined) {
      if (!isRecord(info) || typeof info['id'] !== 'string' || info['id'] === '') {
        throw new HttpError(400, 9600, 'mdmInfo.id is required');
      }
      token.loc.mdmInfo = { id: info['id'], name: typeof info['name'] === 'string' ? info['name'] : '' };
      if (typeof info['metadata'] === 'string') token.loc.mdmInfo.metadata = info['metadata'];
      if (token.mode === 'other_mdm') token.mode = 'valid';
    }
    if (typeof body['notificationUrl'] === 'string') {
      if (typeof body['notificationAuthToken'] !== 'string' || body['notificationAuthToken'] === '') {
        throw new HttpError(400, 9600, 'notificationAuthToken is required with notificationUrl');
      }
      token.loc.notificationUrl = body['notificationUrl'];
      token.loc.notificationAuthToken = body['notificationAuthToken'];
    }
    if (Array.isArray(body['notificationTypes'])) {
      token.loc.notificationTypes = body['notificationTypes'].filter(
        (t): t is string => typeof t === 'string',
      );
    }
    return this.#clientConfig(token);
  }

  #page<T>(items: T[], query: URLSearchParams): { slice: T[]; page: Record<string, unknown> } {
    const raw = query.get('pageIndex');
    const pageIndex = raw === null ? 0 : Number(raw);
    const totalPages = Math.max(1, Math.ceil(items.length / this.#pageSize));
    if (!Number.isInteger(pageIndex) || pageIndex < 0 || pageIndex >= totalPages) {
      throw new HttpError(400, 9650, MSG[9650]!);
    }
    const slice = items.slice(pageIndex * this.#pageSize, (pageIndex + 1) * this.#pageSize);
    const page: Record<string, unknown> = { currentPageIndex: pageIndex, size: this.#pageSize, totalPages };
    if (pageIndex + 1 < totalPages) page['nextPageIndex'] = pageIndex + 1;
    return { slice, page };
  }

  #assets(token: FakeToken, query: URLSearchParams): Record<string, unknown> {
    let list = [...token.loc.assets.values()];
    const adamId = query.get('adamId');
    if (adamId) list = list.filter((a) => a.adamId === adamId);
    const pricingParam = query.get('pricingParam');
    if (pricingParam) list = list.filter((a) => a.pricingParam === pricingParam);
    const productType = query.get('productType');
    if (productType) list = list.filter((a) => a.productType === productType);
    for (const flag of ['deviceAssignable', 'revocable'] as const) {
      const v = query.get(flag);
      if (v !== null) list = list.filter((a) => String(a[flag]) === v);
    }
    const { slice, page } = this.#page(list, query);
    return {
      assets: slice.map((a) => ({
        adamId: a.adamId,
        assignedCount: a.holders.size,
        availableCount: a.total - a.holders.size,
        deviceAssignable: a.deviceAssignable,
        pricingParam: a.pricingParam,
        productType: a.productType,
        retiredCount: a.retired,
        revocable: a.revocable,
        totalCount: a.total,
      })),
      ...page,
      versionId: String(token.loc.version),
    };
  }

  #assignments(token: FakeToken, query: URLSearchParams): Record<string, unknown> {
    const adamId = query.get('adamId');
    const serial = query.get('serialNumber');
    const since = query.get('sinceVersionId');
    if (since !== null && !/^\d+$/.test(since))
      throw new HttpError(400, 9602, 'sinceVersionId is not a version');
    // clientUserId: this fake licenses devices only, so a user filter matches nothing.
    const userFilter = query.get('clientUserId');
    const out: Array<{ adamId: string; pricingParam: string; serialNumber: string }> = [];
    if (!userFilter) {
      for (const asset of token.loc.assets.values()) {
        if (adamId && asset.adamId !== adamId) continue;
        for (const [s, version] of asset.holders) {
          if (serial && s !== serial) continue;
          if (since !== null && version <= Number(since)) continue;
          out.push({ adamId: asset.adamId, pricingParam: asset.pricingParam, serialNumber: s });
        }
      }
    }
    const { slice, page } = this.#page(out, query);
    return { assignments: slice, ...page, versionId: String(token.loc.version) };
  }

  #submit(token: FakeToken, type: FakeEvent['type'], body: Record<string, unknown>): Record<string, unknown> {
    const serials = body['serialNumbers'];
    if (
      !Array.isArray(serials) ||
      serials.length === 0 ||
      !serials.every((s) => typeof s === 'string' && s !== '')
    ) {
      throw new HttpError(400, 9600, 'serialNumbers is required');
    }
    if (serials.length > this.#limits.maxSerialNumbers) throw new HttpError(400, 9701, MSG[9701]!);
    if (new Set(serials).size !== serials.length) throw new HttpError(400, 9702, MSG[9702]!);
    let assets: Array<{ adamId: string; pricingParam: string }> = [];
    if (type !== 'REVOKE') {
      const raw = body['assets'];
      if (!Array.isArray(raw) || raw.length === 0) throw new HttpError(400, 9600, 'assets is required');
      if (raw.length > this.#limits.maxAssets) throw new HttpError(400, 9700, MSG[9700]!);
      assets = raw.map((a) => {
        if (!isRecord(a) || (typeof a['adamId'] !== 'string' && typeof a['adamId'] !== 'number')) {
          throw new HttpError(400, 9602, 'assets[].adamId is required');
        }
        return {
          adamId: String(a['adamId']),
          pricingParam: typeof a['pricingParam'] === 'string' ? a['pricingParam'] : 'STDQ',
        };
      });
    }
    const eventId = `${Date.now().toString(36)}${(++this.#eventSeq).toString(36).padStart(6, '0')}`;
    const ev: FakeEvent = {
      eventId,
      type,
      assets,
      serials: serials as string[],
      status: 'PENDING',
      failures: [],
      numRequested: Math.max(1, assets.length) * serials.length,
      numCompleted: 0,
      timer: null,
    };
    token.loc.events.set(eventId, ev);
    const adamIds = assets.map((a) => a.adamId);
    for (const serial of ev.serials) this.#submitted.push({ type, serial, eventId, adamIds });
    if (this.#eventDelayMs !== null) {
      ev.timer = setTimeout(() => {
        ev.timer = null;
        void this.#track(this.#complete(token, ev));
      }, this.#eventDelayMs);
    }
    return { eventId };
  }

  #status(token: FakeToken, query: URLSearchParams): Record<string, unknown> {
    const eventId = query.get('eventId');
    if (!eventId) throw new HttpError(400, 9600, 'eventId is required');
    const ev = token.loc.events.get(eventId);
    if (!ev) throw new HttpError(400, 9602, `unknown eventId ${eventId}`);
    const out: Record<string, unknown> = {
      eventStatus: ev.status,
      eventType: ev.type,
      numCompleted: ev.numCompleted,
      numRequested: ev.numRequested,
    };
    if (ev.failures.length > 0) out['failures'] = ev.failures;
    return out;
  }

  // ---- events --------------------------------------------------------------------------

  /** Applies the event to the licences, then notifies. */
  async #complete(token: FakeToken, ev: FakeEvent): Promise<void> {
    if (ev.status !== 'PENDING') return;
    // Per asset: serials that went through, and per error number the ones that did not.
    const results: Array<{
      asset: { adamId: string; pricingParam: string };
      ok: string[];
      failed: Map<number, string[]>;
    }> = [];
    const fail = (r: (typeof results)[number], n: number, s: string) => {
      const list = r.failed.get(n);
      if (list) list.push(s);
      else r.failed.set(n, [s]);
    };

    if (ev.type === 'REVOKE') {
      const bare = {
        asset: { adamId: '', pricingParam: '' },
        ok: [] as string[],
        failed: new Map<number, string[]>(),
      };
      const perAsset = new Map<FakeAsset, (typeof results)[number]>();
      for (const serial of ev.serials) {
        let held = false;
        for (const asset of token.loc.assets.values()) {
          if (!asset.holders.has(serial)) continue;
          held = true;
          let r = perAsset.get(asset);
          if (!r) {
            r = {
              asset: { adamId: asset.adamId, pricingParam: asset.pricingParam },
              ok: [],
              failed: new Map(),
            };
            perAsset.set(asset, r);
          }
          if (asset.revocable) {
            asset.holders.delete(serial);
            token.loc.version++;
            r.ok.push(serial);
          } else {
            fail(r, 9706, serial);
          }
        }
        // Nothing to revoke is success too; reported without an asset.
        if (!held) bare.ok.push(serial);
      }
      results.push(...perAsset.values());
      if (bare.ok.length > 0) results.push(bare);
    } else {
      for (const ref of ev.assets) {
        const r = { asset: ref, ok: [] as string[], failed: new Map<number, string[]>() };
        results.push(r);
        const asset = token.loc.assets.get(assetKey(ref.adamId, ref.pricingParam));
        for (const serial of ev.serials) {
          if (!asset) fail(r, 9610, serial);
          else if (ev.type === 'ASSOCIATE') {
            if (!asset.deviceAssignable) fail(r, 9707, serial);
            else if (asset.refuseWith !== null) fail(r, asset.refuseWith, serial);
            else if (asset.holders.has(serial)) r.ok.push(serial);
            else if (asset.holders.size < asset.total) {
              asset.holders.set(serial, ++token.loc.version);
              r.ok.push(serial);
            } else fail(r, 9709, serial);
          } else if (asset.holders.delete(serial)) {
            token.loc.version++;
            r.ok.push(serial);
          } else fail(r, 9610, serial);
        }
      }
    }

    for (const r of results) {
      for (const [n, serials] of r.failed) {
        ev.failures.push({
          errorNumber: n,
          errorMessage: MSG[n] ?? 'error',
          errorInfo: { ...(r.asset.adamId ? { assets: [r.asset] } : {}), serialNumbers: serials },
        });
      }
    }
    ev.status = ev.failures.length > 0 ? 'FAILED' : 'COMPLETE';
    ev.numCompleted = ev.numRequested;

    if (!token.loc.notificationUrl || !token.loc.notificationTypes.includes('ASSET_MANAGEMENT')) return;
    for (const r of results) {
      const withAsset = (serialNumber: string) =>
        r.asset.adamId
          ? { adamId: r.asset.adamId, pricingParam: r.asset.pricingParam, serialNumber }
          : { serialNumber };
      for (let i = 0; i < r.ok.length; i += this.#chunk) {
        const part = r.ok.slice(i, i + this.#chunk);
        await this.#notify(
          token,
          'ASSET_MANAGEMENT',
          { eventId: ev.eventId, type: ev.type, result: 'SUCCESS', assignments: part.map(withAsset) },
          part.length,
        );
      }
      for (const [n, serials] of r.failed) {
        for (let i = 0; i < serials.length; i += this.#chunk) {
          const part = serials.slice(i, i + this.#chunk);
          await this.#notify(
            token,
            'ASSET_MANAGEMENT',
            {
              eventId: ev.eventId,
              type: ev.type,
              result: 'FAILURE',
              error: {
                errorNumber: n,
                errorMessage: MSG[n] ?? 'error',
                errorInfo: { ...(r.asset.adamId ? { assets: [r.asset] } : {}), serialNumbers: part },
              },
            },
            part.length,
          );
        }
      }
    }
  }

  async #notify(token: FakeToken, type: string, notification: unknown, serials: number): Promise<void> {
    const url = token.loc.notificationUrl;
    const bearer = token.loc.notificationAuthToken;
    if (!url || !bearer) return;
    const notificationId = randomUUID();
    const body = JSON.stringify({ notificationId, notificationType: type, notification, uId: token.loc.uId });
    for (let copy = 0; copy < (this.#duplicate ? 2 : 1); copy++) {
      const record: FakeNotificationRecord = { url, type, notificationId, status: null, serials };
      this.#notifications.push(record);
      try {
        const res = await fetch(url, {
          method: 'POST',
          headers: { authorization: `Bearer ${bearer}`, 'content-type': 'application/json' },
          body,
          signal: AbortSignal.timeout(10_000),
        });
        await res.arrayBuffer();
        record.status = res.status;
      } catch {
        // Apple gives up on unreachable receivers too; the MDM's polling covers it.
        record.status = null;
      }
    }
  }

  #track(p: Promise<void>): Promise<void> {
    const tracked = p.finally(() => this.#inflight.delete(tracked));
    this.#inflight.add(tracked);
    return tracked;
  }

  #send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
    const text = typeof body === 'string' ? body : JSON.stringify(body);
    res.writeHead(status, {
      'content-type': typeof body === 'string' ? 'text/plain' : 'application/json;charset=UTF-8',
      'content-length': Buffer.byteLength(text),
      ...headers,
    });
    res.end(text);
  }

  #token(sToken: string): FakeToken {
    const token = this.#tokens.get(sToken);
    if (!token) throw new Error('FakeVppService: unknown sToken (call addToken first)');
    return token;
  }
}

/** A random notification bearer, as haishin would generate one. */
export function randomNotificationToken(): string {
  return randomBytes(24).toString('base64url');
}

function assetKey(adamId: string, pricingParam: string): string {
  return `${adamId}/${pricingParam}`;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function parseBody(raw: string): Record<string, unknown> {
  if (raw.trim() === '') return {};
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch {
    throw new HttpError(400, 9602, 'body is not JSON');
  }
  if (!isRecord(value)) throw new HttpError(400, 9602, 'body is not a JSON object');
  return value;
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    const buf = chunk as Buffer;
    size += buf.length;
    if (size > MAX_BODY) throw new HttpError(413, 9602, 'body too large');
    chunks.push(buf);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/**
 * The JSON shapes of the Apps and Books API v2 and tolerant parsers for them. Parsers accept
 * what Apple is known to send (adam ids as strings or numbers, optional keys missing) and
 * never throw on unknown keys; they throw {@link VppParseError} only when a body cannot be
 * what the endpoint promises.
 */
import type { VppErrorInfo } from './errors.ts';

export interface VppAssetRef {
  adamId: string;
  /** `STDQ` (standard quality) or `PLUS`. */
  pricingParam: string;
}

export interface VppAsset extends VppAssetRef {
  productType: string;
  assignedCount: number;
  availableCount: number;
  totalCount: number;
  retiredCount: number;
  deviceAssignable: boolean;
  revocable: boolean;
  /** This asset's JSON as Apple sent it (kept by the store next to the parsed columns). */
  raw: string;
}

export interface VppAssignment extends VppAssetRef {
  serialNumber?: string;
  clientUserId?: string;
}

export interface VppMdmInfo {
  id: string;
  name: string;
  metadata?: string;
}

export interface VppServiceLimits {
  maxSerialNumbers: number;
  maxAssets: number;
  maxClientUserIds: number;
  /** Requests per second the client allows itself. */
  requestsPerSecond: number;
}

export interface VppServiceConfig {
  limits: VppServiceLimits;
  /** Keys of `limits` as Apple sent them (Apple documents it as a map of any key to int). */
  rawLimits: Record<string, number>;
  notificationTypes: string[];
  errorCodes: Array<{ errorNumber: number; errorMessage: string }>;
  raw: string;
}

export interface VppClientConfig {
  uId: string | null;
  locationId: string | null;
  locationName: string | null;
  countryISO2ACode: string | null;
  defaultPlatform: string | null;
  mdmInfo: VppMdmInfo | null;
  notificationUrl: string | null;
  notificationTypes: string[];
  tokenExpirationDate: Date | null;
  raw: string;
}

export type VppEventStatusValue = 'PENDING' | 'COMPLETE' | 'FAILED';

export interface VppEventFailure {
  errorNumber: number | null;
  errorMessage: string | null;
  errorInfo: VppErrorInfo;
}

export interface VppEventStatus {
  eventId: string;
  eventStatus: VppEventStatusValue;
  /** `ASSOCIATE`, `DISASSOCIATE`, `REVOKE`, … */
  eventType: string | null;
  numCompleted: number | null;
  numRequested: number | null;
  failures: VppEventFailure[];
  tokenExpirationDate: Date | null;
  raw: string;
}

export interface VppPage {
  currentPageIndex: number;
  nextPageIndex: number | null;
  totalPages: number | null;
  versionId: string | null;
}

export const DEFAULT_LIMITS: VppServiceLimits = {
  maxSerialNumbers: 1000,
  maxAssets: 25,
  maxClientUserIds: 1000,
  requestsPerSecond: 15,
};

export class VppParseError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'VppParseError';
  }
}

type Json = Record<string, unknown>;

export function isObject(value: unknown): value is Json {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

function str(value: unknown): string | null {
  if (typeof value === 'string') return value;
  if (typeof value === 'number' && Number.isFinite(value)) return String(value);
  return null;
}

function num(value: unknown): number | null {
  if (typeof value === 'number' && Number.isFinite(value)) return value;
  if (typeof value === 'string' && value.trim() !== '' && Number.isFinite(Number(value)))
    return Number(value);
  return null;
}

function bool(value: unknown, fallback: boolean): boolean {
  if (typeof value === 'boolean') return value;
  if (value === 'true') return true;
  if (value === 'false') return false;
  return fallback;
}

function strings(value: unknown): string[] {
  if (!Array.isArray(value)) return [];
  const out: string[] = [];
  for (const item of value) {
    const s = str(item);
    if (s !== null) out.push(s);
  }
  return out;
}

function date(value: unknown): Date | null {
  const s = str(value);
  if (s === null) return null;
  // Apple writes `+0000` offsets that Date.parse rejects in some engines.
  const normal = s.replace(/([+-]\d{2})(\d{2})$/, '$1:$2');
  const ms = Date.parse(normal);
  return Number.isNaN(ms) ? null : new Date(ms);
}

export function parseJsonObject(text: string, what: string): Json {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new VppParseError(`${what}: body is not JSON (${(err as Error).message})`);
  }
  if (!isObject(value)) throw new VppParseError(`${what}: body is not a JSON object`);
  return value;
}

/**
 * True for bodies of the legacy (v1, `…Srv`) API: they carry `status` 0/-1, `*SrvUrl` keys,
 * `…Str` ids or the v1 `expirationMillis`. A v2 client that meets one
 * is talking to the wrong endpoint, and a token whose client config looks like this was set up
 * by a v1 MDM and still needs migrating.
 */
export function detectLegacyBody(json: unknown): boolean {
  if (!isObject(json)) return false;
  if ('status' in json && (json['status'] === 0 || json['status'] === -1)) return true;
  // v2 replaced `expirationMillis` with `tokenExpirationDate`; `clientContext` alone proves nothing.
  if ('expirationMillis' in json) return true;
  for (const key of Object.keys(json)) if (key.endsWith('SrvUrl')) return true;
  for (const listKey of ['assets', 'assignments', 'licenses', 'associations']) {
    const list = json[listKey];
    if (
      Array.isArray(list) &&
      list.some((item) => isObject(item) && ('adamIdStr' in item || 'licenseIdStr' in item))
    ) {
      return true;
    }
  }
  return false;
}

/** The error envelope if the body carries one (`errorNumber` and/or `errorMessage`), whatever the HTTP status. */
export function extractError(
  json: Json,
): { errorNumber?: number; errorMessage?: string; errorInfo?: VppErrorInfo } | null {
  const errorNumber = num(json['errorNumber']);
  const errorMessage = typeof json['errorMessage'] === 'string' ? json['errorMessage'] : null;
  if (errorNumber === null && errorMessage === null) return null;
  const out: { errorNumber?: number; errorMessage?: string; errorInfo?: VppErrorInfo } = {};
  if (errorNumber !== null) out.errorNumber = errorNumber;
  if (errorMessage !== null) out.errorMessage = errorMessage;
  if (isObject(json['errorInfo'])) out.errorInfo = parseErrorInfo(json['errorInfo']);
  return out;
}

export function parseErrorInfo(value: unknown): VppErrorInfo {
  if (!isObject(value)) return {};
  const info: VppErrorInfo = {};
  if (Array.isArray(value['assets'])) info.assets = parseAssetRefs(value['assets']);
  if (Array.isArray(value['serialNumbers'])) info.serialNumbers = strings(value['serialNumbers']);
  if (Array.isArray(value['clientUserIds'])) info.clientUserIds = strings(value['clientUserIds']);
  return info;
}

function parseAssetRefs(list: unknown[]): VppAssetRef[] {
  const out: VppAssetRef[] = [];
  for (const item of list) {
    if (!isObject(item)) continue;
    const adamId = str(item['adamId'] ?? item['adamIdStr']);
    if (adamId === null) continue;
    out.push({ adamId, pricingParam: str(item['pricingParam']) ?? 'STDQ' });
  }
  return out;
}

export function parseServiceConfig(raw: string): VppServiceConfig {
  const json = parseJsonObject(raw, 'service/config');
  const rawLimits: Record<string, number> = {};
  if (isObject(json['limits'])) {
    for (const [key, value] of Object.entries(json['limits'])) {
      const n = num(value);
      if (n !== null) rawLimits[key] = n;
    }
  }
  const positive = (value: number | undefined, fallback: number) =>
    value !== undefined && value > 0 ? value : fallback;
  const limits: VppServiceLimits = {
    maxSerialNumbers: positive(rawLimits['maxSerialNumbers'], DEFAULT_LIMITS.maxSerialNumbers),
    maxAssets: positive(rawLimits['maxAssets'], DEFAULT_LIMITS.maxAssets),
    maxClientUserIds: positive(rawLimits['maxClientUserIds'], DEFAULT_LIMITS.maxClientUserIds),
    // Apple documents no rate key; `requestsPerSecond` is read when a server (our fake) sends one.
    requestsPerSecond: positive(rawLimits['requestsPerSecond'], DEFAULT_LIMITS.requestsPerSecond),
  };
  const errorCodes: Array<{ errorNumber: number; errorMessage: string }> = [];
  if (Array.isArray(json['errorCodes'])) {
    for (const item of json['errorCodes']) {
      if (!isObject(item)) continue;
      const n = num(item['errorNumber']);
      if (n !== null) errorCodes.push({ errorNumber: n, errorMessage: str(item['errorMessage']) ?? '' });
    }
  }
  return { limits, rawLimits, notificationTypes: strings(json['notificationTypes']), errorCodes, raw };
}

export function parseClientConfig(raw: string): VppClientConfig {
  const json = parseJsonObject(raw, 'client/config');
  let mdmInfo: VppMdmInfo | null = null;
  if (isObject(json['mdmInfo'])) {
    const id = str(json['mdmInfo']['id']);
    if (id !== null && id !== '') {
      mdmInfo = { id, name: str(json['mdmInfo']['name']) ?? '' };
      const metadata = str(json['mdmInfo']['metadata']);
      if (metadata !== null) mdmInfo.metadata = metadata;
    }
  }
  return {
    uId: str(json['uId']),
    locationId: str(json['locationId']),
    locationName: str(json['locationName']),
    countryISO2ACode: str(json['countryISO2ACode']),
    defaultPlatform: str(json['defaultPlatform']),
    mdmInfo,
    notificationUrl: str(json['notificationUrl']),
    notificationTypes: strings(json['notificationTypes']),
    tokenExpirationDate: date(json['tokenExpirationDate']),
    raw,
  };
}

export function parsePage(json: Json): VppPage {
  const current = num(json['currentPageIndex']) ?? 0;
  const next = num(json['nextPageIndex']);
  return {
    currentPageIndex: current,
    nextPageIndex: next,
    totalPages: num(json['totalPages']),
    versionId: str(json['versionId']),
  };
}

export function parseAssetsPage(raw: string): { assets: VppAsset[]; page: VppPage; json: Json } {
  const json = parseJsonObject(raw, 'assets');
  if (json['assets'] !== undefined && !Array.isArray(json['assets'])) {
    throw new VppParseError('assets: "assets" is not an array');
  }
  const assets: VppAsset[] = [];
  for (const item of (json['assets'] as unknown[] | undefined) ?? []) {
    if (!isObject(item)) continue;
    const adamId = str(item['adamId']);
    if (adamId === null) continue;
    assets.push({
      adamId,
      pricingParam: str(item['pricingParam']) ?? 'STDQ',
      productType: str(item['productType']) ?? 'App',
      assignedCount: num(item['assignedCount']) ?? 0,
      availableCount: num(item['availableCount']) ?? 0,
      totalCount: num(item['totalCount']) ?? 0,
      retiredCount: num(item['retiredCount']) ?? 0,
      deviceAssignable: bool(item['deviceAssignable'], true),
      revocable: bool(item['revocable'], true),
      raw: JSON.stringify(item),
    });
  }
  return { assets, page: parsePage(json), json };
}

export function parseAssignmentsPage(raw: string): {
  assignments: VppAssignment[];
  page: VppPage;
  json: Json;
} {
  const json = parseJsonObject(raw, 'assignments');
  if (json['assignments'] !== undefined && !Array.isArray(json['assignments'])) {
    throw new VppParseError('assignments: "assignments" is not an array');
  }
  const assignments: VppAssignment[] = [];
  for (const item of (json['assignments'] as unknown[] | undefined) ?? []) {
    if (!isObject(item)) continue;
    const adamId = str(item['adamId']);
    if (adamId === null) continue;
    const a: VppAssignment = { adamId, pricingParam: str(item['pricingParam']) ?? 'STDQ' };
    const serial = str(item['serialNumber']);
    if (serial !== null) a.serialNumber = serial;
    const user = str(item['clientUserId']);
    if (user !== null) a.clientUserId = user;
    assignments.push(a);
  }
  return { assignments, page: parsePage(json), json };
}

/** `{eventId}` of associate/disassociate/revoke (fixture v2-associate-assets-event.json). */
export function parseEventResponse(raw: string): { eventId: string; tokenExpirationDate: Date | null } {
  const json = parseJsonObject(raw, 'event response');
  const eventId = str(json['eventId']);
  if (eventId === null || eventId === '') throw new VppParseError('event response: no "eventId"');
  return { eventId, tokenExpirationDate: date(json['tokenExpirationDate']) };
}

export function parseFailures(value: unknown): VppEventFailure[] {
  if (!Array.isArray(value)) return [];
  const out: VppEventFailure[] = [];
  for (const item of value) {
    if (!isObject(item)) continue;
    out.push({
      errorNumber: num(item['errorNumber']),
      errorMessage: str(item['errorMessage']),
      errorInfo: parseErrorInfo(item['errorInfo']),
    });
  }
  return out;
}

export function parseEventStatus(raw: string, eventId: string): VppEventStatus {
  const json = parseJsonObject(raw, 'status');
  const status = str(json['eventStatus']);
  if (status !== 'PENDING' && status !== 'COMPLETE' && status !== 'FAILED') {
    throw new VppParseError(`status: unknown eventStatus ${JSON.stringify(json['eventStatus'])}`);
  }
  return {
    eventId,
    eventStatus: status,
    eventType: str(json['eventType']),
    numCompleted: num(json['numCompleted']),
    numRequested: num(json['numRequested']),
    failures: parseFailures(json['failures']),
    tokenExpirationDate: date(json['tokenExpirationDate']),
    raw,
  };
}

export function tokenExpirationOf(json: Json): Date | null {
  return date(json['tokenExpirationDate']);
}

import type { Bilingual, Lang } from './messages.ts';

// The REST API's shapes, as far as the console reads them (DESIGN §7).

export interface Page<T> {
  items: T[];
  nextCursor: string | null;
}

export type Counts = Record<string, number>;

export interface Distribution {
  id: string;
  kind: string;
  tokenId: string;
  adamIds: string[];
  /** The apps with their names (null until the token's assets are synced). */
  apps: { adamId: string; name: string | null }[];
  licenseMode: string;
  /** An app update (POST /apps/:adamId/update or "keep apps up to date"). */
  isUpdate?: boolean;
  createdAt: string;
  counts: Counts;
}

/** "ロイロノート (361285480)", or the Adam ID alone when the name is not known. */
export function appLabels(d: Pick<Distribution, 'apps'>): string {
  return d.apps.map((a) => (a.name ? `${a.name} (${a.adamId})` : a.adamId)).join(', ');
}

export interface ChainItem {
  code: number | null;
  domain: string | null;
  description: string | null;
}

export interface Job {
  id: string;
  distributionId: string;
  deviceId: string;
  adamId: string;
  kind: string;
  status: string;
  reason: string | null;
  retryCount: number;
  attempt: number;
  updatedAt: string;
  error: { chain: ChainItem[]; rejectionReason: string | null } | null;
  /** 端末番号; null when the device row is gone. */
  deviceNumber: number | null;
  /** From the token's synced assets; null until a sync named the app. */
  appName: string | null;
  isUpdate?: boolean;
  /** The version the job must reach (updates) or expected (installs); null when unknown. */
  expectedVersion?: string | null;
  /** The version the device reported when the job was verified. */
  installedVersion?: string | null;
}

export interface JobDetail extends Job {
  history: { from: string | null; to: string; at: string; reason: string | null }[];
}

export interface Cause {
  code: string;
  confidence: 'confirmed' | 'likely' | 'possible';
  title: Bilingual;
  remedy: Bilingual;
  evidence: { fact: string; value: string | number | boolean | null; source: string }[];
  actions: string[];
}

export interface Diagnosis {
  jobId: string;
  status: string;
  causes: Cause[];
  askedDevice: string[];
}

export interface Remediation {
  action: string;
  done: boolean;
  detail: Bilingual;
  job: Job;
}

export interface Device {
  id: string;
  deviceNumber: number;
  udid: string;
  serialNumber: string | null;
  groupId: string;
  status: string;
  name: string | null;
  model: string | null;
  osVersion: string | null;
  productName: string | null;
  isSupervised: boolean | null;
  isSharedIPad: boolean;
  lastSeenAt: string | null;
  enrolledAt: string | null;
  /** When the identity the device signs with expires (decision 0023). */
  identityNotAfter?: string | null;
  /** A renewed identity was sent then and not used yet. */
  identityRenewalAt?: string | null;
}

export interface Stamped {
  value: unknown;
  at: string | null;
}

export interface DeviceDetail extends Device {
  facts: Stamped;
  restrictions: Stamped;
  sharedUsers: Stamped;
  installedApps: Stamped;
  managedApps: Stamped;
}

export interface Group {
  id: string;
  name: string;
  parentId: string | null;
  path: string[];
}

export interface AutoAssign {
  groupId: string;
  tokenId: string | null;
  effectiveTokenId: string | null;
  inheritedFrom: string | null;
}

export interface Token {
  id: string;
  groupId: string;
  orgName: string;
  locationName: string | null;
  expiresAt: string;
  state: string;
  daysLeft: number;
  expiryWarningDays: number | null;
  sharedTo: string[];
  lastSyncedAt: string | null;
}

export interface Asset {
  adamId: string;
  pricingParam: string;
  name: string | null;
  bundleId: string | null;
  totalCount: number;
  assignedCount: number;
  availableCount: number;
  deviceAssignable: boolean;
}

/** GET /status */
export interface ServerStatus {
  version: string;
  instanceId: string;
  now: string;
  pushCertificate: {
    topic: string;
    notAfter: string | null;
    daysLeft: number | null;
    alert: { at: string; status: number | null; reason: string | null } | null;
  } | null;
  deviceCa: { notAfter: string; verifying?: number };
  /** Device identities and their renewal (decision 0023). */
  deviceIdentities?: { expired: number; expiring: number; renewing: number };
  tokens: { total: number; expiring: number; expired: number; revoked: number; invalid: number };
  devices: { total: number; enrolled: number; pending: number; unenrolled: number; deactivated: number };
}

/** GET /apps: an app with its newest version and the devices' versions (decision 0018). */
export interface AppUpdate {
  adamId: string;
  name: string | null;
  bundleId: string | null;
  latestVersion: string | null;
  previousVersion: string | null;
  versionChangedAt: string | null;
  checkedAt: string | null;
  versions: { version: string | null; devices: number; outdated: boolean }[];
  installedDevices: number;
  outdatedDevices: number;
  updatableDevices: number;
  updateAvailable: boolean;
}

export interface UpdateResult {
  adamId: string;
  version: string;
  distributions: { id: string; tokenId: string; licenseMode: string; jobCount: number }[];
  jobCount: number;
}

export interface KeepUpdated {
  groupId: string;
  enabled: boolean | null;
  effective: boolean;
  inheritedFrom: string | null;
}

export interface Explained {
  chain: ChainItem[];
  causes: Cause[];
}

/** A refusal of the API (its `error.code` and `error.message`), or `network` when it never answered. */
export class ApiError extends Error {
  readonly status: number;
  readonly code: string;
  constructor(status: number, code: string, message: string) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

export const API = '/api/v1';

const session: { token: string | null; lang: Lang } = { token: null, lang: 'ja' };

export function setSession(token: string | null, lang: Lang): void {
  session.token = token;
  session.lang = lang;
}

export function authHeaders(accept = 'application/json'): Record<string, string> {
  return {
    accept,
    // The API picks error.message by Accept-Language (src/api/errors.ts).
    'accept-language': session.lang === 'ja' ? 'ja' : 'en',
    ...(session.token ? { authorization: `Bearer ${session.token}` } : {}),
  };
}

/** Called on 401 so that the app can return to the sign-in screen. */
let onUnauthorized: (() => void) | null = null;
export function setUnauthorizedHandler(f: (() => void) | null): void {
  onUnauthorized = f;
}

async function request(method: string, path: string, body?: unknown, accept?: string): Promise<Response> {
  let response: Response;
  try {
    response = await fetch(API + path, {
      method,
      headers: {
        ...authHeaders(accept),
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
  } catch (err) {
    throw new ApiError(0, 'network', err instanceof Error ? err.message : String(err));
  }
  if (response.ok) return response;
  let code = `http.${response.status}`;
  let message = response.statusText;
  try {
    const parsed = (await response.json()) as { error?: { code?: string; message?: string } };
    if (parsed.error?.code) code = parsed.error.code;
    if (parsed.error?.message) message = parsed.error.message;
  } catch {
    // not the API's JSON error (a proxy page): keep the HTTP status
  }
  if (response.status === 401 && onUnauthorized) onUnauthorized();
  throw new ApiError(response.status, code, message);
}

export async function api<T>(method: string, path: string, body?: unknown): Promise<T> {
  const response = await request(method, path, body);
  return (await response.json()) as T;
}

export const get = <T>(path: string) => api<T>('GET', path);
export const post = <T>(path: string, body: unknown = {}) => api<T>('POST', path, body);

/** Query string from the defined, non-empty values. */
export function qs(params: Record<string, string | number | boolean | null | undefined>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params))
    if (v !== undefined && v !== null && v !== '') q.set(k, String(v));
  const s = q.toString();
  return s ? `?${s}` : '';
}

/**
 * Downloads need the bearer header, so a plain link cannot fetch them: fetch, then hand the
 * browser a blob URL with the server's file name.
 */
export async function download(path: string, fallbackName: string, accept = '*/*'): Promise<void> {
  const response = await request('GET', path, undefined, accept);
  const disposition = response.headers.get('content-disposition') ?? '';
  const name = /filename="([^"]+)"/.exec(disposition)?.[1] ?? fallbackName;
  const url = URL.createObjectURL(await response.blob());
  const a = document.createElement('a');
  a.href = url;
  a.download = name;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}

/** Every group: the tree is small next to the fleet (one group per class), read in pages of 1000. */
export async function allGroups(): Promise<Group[]> {
  const out: Group[] = [];
  let cursor: string | null = null;
  do {
    const pageOfGroups: Page<Group> = await get<Page<Group>>(`/groups${qs({ limit: 1000, cursor })}`);
    out.push(...pageOfGroups.items);
    cursor = pageOfGroups.nextCursor;
  } while (cursor);
  return out;
}

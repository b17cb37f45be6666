/**
 * The fuzz run's harness, shared by test/fuzz.test.ts (in-process server, seeded, a few thousand
 * cases) and bench/fuzz.bench.ts (`haishin serve` as a child process, ≥ 100,000 cases): set up the
 * attacker's identities and the good devices, send a case, judge the answer (decision 0028).
 */
import { createDeviceCa, issueDeviceIdentity } from '../../src/mdm/identity/ca.ts';
import { buildPlist } from '../../src/mdm/plist.ts';
import { SimDevice } from '../../src/sim/device/device.ts';
import { CmsSigner } from '../../src/sim/device/signer.ts';
import { operationsOf } from './fuzz-inputs.ts';
import type { ApiOperation, FuzzCase, FuzzContext, Signer } from './fuzz-inputs.ts';

export interface Answer {
  status: number;
  contentType: string;
  text: string;
}

/** Sends one case; a hang is an answer with status 0 (the property then fails). */
export async function sendCase(baseUrl: string, c: FuzzCase, timeoutMs = 20_000): Promise<Answer> {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(new Error('timeout')), timeoutMs);
  try {
    const response = await fetch(`${baseUrl}${c.path}`, {
      method: c.method,
      headers: c.headers,
      ...(c.body !== undefined ? { body: c.body } : {}),
      signal: controller.signal,
    });
    const contentType = response.headers.get('content-type') ?? '';
    // An event stream never ends by itself: its status and type are the answer.
    const text = contentType.startsWith('text/event-stream') ? '' : await response.text();
    return { status: response.status, contentType, text };
  } catch (err) {
    if (controller.signal.aborted)
      return { status: 0, contentType: '', text: `no answer within ${timeoutMs} ms` };
    return { status: -1, contentType: '', text: `connection failed: ${(err as Error).message}` };
  } finally {
    clearTimeout(timer);
    controller.abort();
  }
}

/** What is wrong with an answer, or null when it is what a correct server says. */
export function judge(c: FuzzCase, a: Answer): string | null {
  if (a.status <= 0) return a.text;
  if (a.status >= 500) return `answered ${a.status}: ${a.text.slice(0, 300)}`;
  if (/root:x:0:0|HAISHIN_SECRET_KEY/.test(a.text)) return 'the answer leaks a local file or the environment';
  switch (c.expect) {
    case 'mdm-400':
      return a.status === 400 ? null : `answered ${a.status}, a refusal must be 400`;
    case 'mdm-any':
      if (a.status === 401) return 'answered 401: an iPad would drop its MDM profile (decision 0004)';
      return [200, 400, 410].includes(a.status) ? null : `answered ${a.status}`;
    case 'vpp':
      return a.status === 401 ? 'a known bearer answered 401' : null;
    case 'vpp-401':
      return a.status === 401 ? null : `answered ${a.status} without a known bearer`;
    case 'api-401':
      // 400 for a URL refused before routing, 431 for a request line over 16 KB: both before auth.
      return [400, 401, 431].includes(a.status)
        ? apiErrorShape(a)
        : `answered ${a.status} without a valid token`;
    case 'api':
      return a.status >= 400 ? apiErrorShape(a) : null;
  }
}

/**
 * API errors are `{error:{code,message}}` (DESIGN §7), whatever went wrong — except Node's own HTTP
 * parser refusing a request line and headers over 16 KB (431), before any of haishin's code runs.
 */
function apiErrorShape(a: Answer): string | null {
  if (a.status === 431) return null;
  try {
    const body = JSON.parse(a.text) as { error?: { code?: unknown; message?: unknown } };
    if (typeof body.error?.code === 'string' && typeof body.error.message === 'string') return null;
  } catch {
    // falls through
  }
  return `a ${a.status} that is not {error:{code,message}}: ${a.text.slice(0, 200)}`;
}

/** Counts by kind and status, and the problems found (first few kept in full). */
export class FuzzTally {
  cases = 0;
  readonly byStatus = new Map<number, number>();
  readonly byKind = new Map<string, number>();
  /** Milliseconds spent per kind (send and answer). */
  readonly msByKind = new Map<string, number>();
  readonly problems: { case: FuzzCase; answer: Answer; problem: string }[] = [];
  problemCount = 0;

  add(c: FuzzCase, a: Answer, problem: string | null, ms = 0): void {
    this.cases++;
    this.byStatus.set(a.status, (this.byStatus.get(a.status) ?? 0) + 1);
    const kind = c.kind
      .replace(/\(.*\)/, '')
      .replace(/ \d+ deep/, ' N deep')
      .trim();
    this.byKind.set(kind, (this.byKind.get(kind) ?? 0) + 1);
    this.msByKind.set(kind, (this.msByKind.get(kind) ?? 0) + ms);
    if (problem) {
      this.problemCount++;
      if (this.problems.length < 20) this.problems.push({ case: c, answer: a, problem });
    }
  }

  get fiveHundreds(): number {
    let n = 0;
    for (const [s, k] of this.byStatus) if (s >= 500) n += k;
    return n;
  }

  summary(): string {
    const statuses = [...this.byStatus].sort((a, b) => a[0] - b[0]).map(([s, n]) => `${s}: ${n}`);
    return `${this.cases} cases, ${this.byKind.size} kinds; statuses ${statuses.join(', ')}; ${this.problemCount} problems`;
  }
}

/** A case as one line for a report (bodies cut). */
export function describeCase(c: FuzzCase): string {
  const body = c.body ? Buffer.from(c.body.subarray(0, 200)).toString('utf8') : '';
  return `${c.kind}: ${c.method} ${c.path.slice(0, 200)} ${JSON.stringify(c.headers).slice(0, 200)} body(${c.body?.byteLength ?? 0} B)=${JSON.stringify(body)}`;
}

/** An identity from a CA haishin never issued, signing like a device. */
export function foreignSigner(now = new Date()): Signer {
  const ca = createDeviceCa({ now, commonName: 'Not haishin' });
  const identity = issueDeviceIdentity(ca, { now, commonName: 'forged-device', keyBits: 1024 });
  const signer = new CmsSigner(identity);
  return { udid: 'FORGED-0000', sign: (body) => signer.sign(body) };
}

/** Enrolls `n` simulated iPads from `enrollUrl`. */
export async function enrollDevices(enrollUrl: string, n: number, prefix: string): Promise<SimDevice[]> {
  const out: SimDevice[] = [];
  for (let i = 0; i < n; i++) {
    const device = new SimDevice({ spec: { serialNumber: `${prefix}${String(i).padStart(4, '0')}` } });
    await device.enroll(enrollUrl);
    out.push(device);
  }
  return out;
}

/**
 * Each good device opens a command session (Idle, then answers whatever is queued): every
 * exchange must be a 200. Returns what went wrong, or null.
 */
export async function goodDevicesServed(devices: readonly SimDevice[]): Promise<string | null> {
  for (const device of devices) {
    const log = await device.connect(20);
    const bad = log.find((e) => e.status !== 200);
    if (bad) return `good device ${device.udid}: ${bad.sent} answered ${bad.status}`;
  }
  return null;
}

/** The context the generators need, from a running server. */
export async function fuzzContext(o: {
  baseUrl: string;
  adminToken: string;
  attacker: SimDevice;
  good: readonly SimDevice[];
  vppBearer: string | null;
  realIds: readonly string[];
  maxBodyBytes: number;
  hugeBytes: number;
}): Promise<FuzzContext> {
  const response = await fetch(`${o.baseUrl}/api/v1/openapi.json`, {
    headers: { authorization: `Bearer ${o.adminToken}` },
  });
  if (response.status !== 200) throw new Error(`GET /api/v1/openapi.json answered ${response.status}`);
  const operations: ApiOperation[] = operationsOf(
    (await response.json()) as Parameters<typeof operationsOf>[0],
  );
  const first = o.good[0];
  if (!first) throw new Error('fuzzContext needs at least one good device');
  const capturedBody = Buffer.from(buildPlist({ Status: 'Idle', UDID: first.udid }), 'utf8');
  return {
    attacker: { udid: o.attacker.udid, sign: (body) => o.attacker.sign(body) },
    foreign: foreignSigner(),
    goodUdids: o.good.map((d) => d.udid),
    captured: { body: capturedBody, signature: first.sign(capturedBody) },
    vppBearer: o.vppBearer,
    adminToken: o.adminToken,
    realIds: o.realIds,
    operations,
    maxBodyBytes: o.maxBodyBytes,
    hugeBytes: o.hugeBytes,
  };
}

import type { CauseCode } from '../../src/diagnosis/catalogue.ts';
import type { Evidence } from '../../src/diagnosis/evidence.ts';
import type { SimDevice } from '../../src/sim/device/device.ts';
import type { World } from './world.ts';

/**
 * The diagnosis matrix (issue 13): for every code of the cause catalogue, a world in which
 * simulated iPads produce that failure through the MDM protocol and the fake Apple services — or,
 * for the few codes no world can produce, a hand-built evidence object and the reason why. This
 * module holds what test/diagnosis-matrix.test.ts shares: the API steps, the result rows and the
 * printed table.
 */

export interface ApiCause {
  code: string;
  confidence: string;
  evidence: { fact: string; value: unknown; source: string }[];
}

export interface DiagnosisAnswer {
  jobId: string;
  status: string;
  causes: ApiCause[];
  askedDevice: string[];
  awaitingDevice: string[];
}

export interface ApiJob {
  id: string;
  status: string;
  reason: string | null;
  deviceId: string;
  retryCount: number;
}

/** A world that fails a job in the way that shows `code`. */
export interface ProtocolCase {
  code: CauseCode;
  /** Which shared World it runs in (worlds differ by their timeouts). */
  world: string;
  /** What happens, as an administrator would tell it. */
  story: string;
  /** The status the job ends in. */
  status: string;
  /**
   * Builds the world's part (groups, token, iPads, faults), distributes and returns the job to
   * diagnose once it ended. `prefix` is unique to the case (serial numbers, names).
   */
  run(world: World, prefix: string): Promise<ApiJob>;
  /** The iPad answers the queries the diagnosis sends (default); false for one that is off. */
  deviceAnswers?: boolean;
}

/** A code no world can produce: its rules, on evidence built by hand. */
export interface EvidenceCase {
  code: CauseCode;
  /** Why the fakes cannot make it. */
  why: string;
  evidence: Evidence;
}

export interface MatrixRow {
  code: CauseCode;
  via: 'protocol' | 'evidence';
  /** The job's final status (protocol), or the evidence's. */
  status: string;
  top1: string | null;
  top3: string[];
  confidence: string | null;
  /** The case could not run (an exception before the diagnosis). */
  error?: string;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function deviceIdOf(world: World, device: SimDevice): Promise<string> {
  const res = await world.api<{ items: { id: string }[] }>(
    'GET',
    `/devices?serialNumber=${device.serialNumber}`,
  );
  const id = res.body.items[0]?.id;
  if (!id) throw new Error(`device ${device.serialNumber} is not known to haishin`);
  return id;
}

/** POST /distributions of one app; returns the distribution id. */
export async function distribute(
  world: World,
  tokenId: string,
  adamId: string,
  targets: { deviceIds?: string[]; groupIds?: string[] },
  licenseMode: 'auto' | 'manual' = 'auto',
): Promise<string> {
  const res = await world.api<{ id: string }>('POST', '/distributions', {
    kind: 'install',
    tokenId,
    adamIds: [adamId],
    targets,
    licenseMode,
  });
  if (res.status !== 201) throw new Error(`distribution refused: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body.id;
}

/** Every job of a distribution, once all are terminal. */
export async function settledJobs(
  world: World,
  distributionId: string,
  timeoutMs = 30_000,
): Promise<ApiJob[]> {
  await world.settle(distributionId, timeoutMs);
  return (await world.api<{ items: ApiJob[] }>('GET', `/jobs?distributionId=${distributionId}&limit=1000`))
    .body.items;
}

/** The one job of a one-device distribution, once terminal. */
export async function onlyJob(world: World, distributionId: string): Promise<ApiJob> {
  const jobs = await settledJobs(world, distributionId);
  if (jobs.length !== 1) throw new Error(`expected one job, got ${jobs.length}`);
  return jobs[0]!;
}

/**
 * GET /jobs/:id/diagnosis as an administrator would use it: when the answer says it asked the
 * device (its facts were missing or older than the job), wait for the iPad to answer — haishin
 * ranks again then — and ask once more. A device that never answers (off) gets the first answer.
 */
export async function diagnosisOf(
  world: World,
  jobId: string,
  waitForDevice = true,
  timeoutMs = 15_000,
): Promise<DiagnosisAnswer> {
  const ask = async () => {
    const res = await world.api<DiagnosisAnswer>('GET', `/jobs/${jobId}/diagnosis`);
    if (res.status !== 200) throw new Error(`GET /jobs/${jobId}/diagnosis: ${res.status}`);
    return res.body;
  };
  let answer = await ask();
  if (!waitForDevice) return answer;
  const deadline = Date.now() + timeoutMs;
  while (answer.awaitingDevice.length > 0 && Date.now() < deadline) {
    await sleep(100);
    answer = await ask();
  }
  return answer;
}

/** Polls `probe` until it gives something truthy (bounded). */
export async function until<T>(
  what: string,
  probe: () => Promise<T | null | undefined | false>,
  timeoutMs = 15_000,
) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

export function rowOf(
  code: CauseCode,
  via: MatrixRow['via'],
  status: string,
  causes: readonly { code: string; confidence: string }[],
): MatrixRow {
  return {
    code,
    via,
    status,
    top1: causes[0]?.code ?? null,
    top3: causes.slice(0, 3).map((c) => c.code),
    confidence: causes[0]?.confidence ?? null,
  };
}

export interface MatrixRates {
  total: number;
  top1: number;
  top3: number;
  protocol: number;
  evidence: number;
}

export function matrixRates(rows: readonly MatrixRow[]): MatrixRates {
  return {
    total: rows.length,
    top1: rows.filter((r) => r.top1 === r.code).length,
    top3: rows.filter((r) => r.top3.includes(r.code)).length,
    protocol: rows.filter((r) => r.via === 'protocol').length,
    evidence: rows.filter((r) => r.via === 'evidence').length,
  };
}

const percent = (n: number, of: number) => (of === 0 ? '—' : `${((100 * n) / of).toFixed(1)} %`);

/** The table `npm run diagnosis:matrix` and the CI log show: one line per code, then the rates. */
export function formatMatrix(
  rows: readonly MatrixRow[],
  order: readonly CauseCode[],
  notes: readonly string[] = [],
): string {
  const byCode = new Map(rows.map((r) => [r.code, r]));
  const header = ['', 'code', 'via', 'job status', 'top-1', 'confidence', 'top-3'];
  const lines: string[][] = [header];
  for (const code of order) {
    const r = byCode.get(code);
    if (!r) {
      lines.push(['✗', code, '—', '—', '(no case)', '—', '—']);
      continue;
    }
    const mark = r.top1 === r.code ? '✓' : r.top3.includes(r.code) ? '~' : '✗';
    lines.push([
      mark,
      code,
      r.via,
      r.status,
      r.error ? `(error: ${r.error})` : (r.top1 ?? '(none)'),
      r.confidence ?? '—',
      r.top3.join(', ') || '—',
    ]);
  }
  const widths = header.map((_, i) => Math.max(...lines.map((l) => [...l[i]!].length)));
  const render = (l: string[]) =>
    l
      .map((cell, i) => cell + ' '.repeat(widths[i]! - [...cell].length))
      .join('  ')
      .trimEnd();
  const rule = widths.map((w) => '-'.repeat(w)).join('  ');
  const rates = matrixRates(rows);
  const missing = order.filter((c) => !byCode.has(c)).length;
  const total = rates.total + missing;
  return [
    'Diagnosis matrix (issue 13): every cause of the catalogue, produced and diagnosed',
    render(lines[0]!),
    rule,
    ...lines.slice(1).map(render),
    rule,
    `top-1: ${rates.top1}/${total} (${percent(rates.top1, total)})   top-3: ${rates.top3}/${total} (${percent(rates.top3, total)})   ` +
      `through the protocol: ${rates.protocol}, evidence only: ${rates.evidence}${missing ? `, without a case: ${missing}` : ''}`,
    '(✓ top-1 right, ~ in the top 3, ✗ missed)',
    ...notes,
  ].join('\n');
}

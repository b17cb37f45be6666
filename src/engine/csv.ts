import { isTerminal, JOB_STATUSES } from '../core/jobs.ts';
import type { JobStatus } from '../core/jobs.ts';
import { jobStatusLabel } from '../diagnosis/catalogue.ts';
import type { Store } from '../store/store.ts';

/** Excel (Japanese Windows above all) reads a CSV as Shift_JIS unless it starts with a UTF-8 BOM. */
export const UTF8_BOM = '\uFEFF';
const CRLF = '\r\n';
/** Rows read from the database per page: bounded memory whatever the distribution's size. */
export const CSV_PAGE_SIZE = 1000;

/** Excel runs a cell starting with one of these as a formula (CSV injection). */
const FORMULA_START = /^[=+\-@\t\r]/;

/**
 * One RFC 4180 field. Fields holding a comma, a quote, CR or LF are quoted with quotes doubled.
 * `text` marks free text from outside haishin (app names, reasons): a leading formula character
 * gets an apostrophe so a spreadsheet shows the text instead of evaluating it. Numbers are left
 * alone — error codes such as -1009 must stay numbers.
 */
export function csvField(value: string | number | null | undefined, text = false): string {
  if (value === null || value === undefined) return '';
  let s = typeof value === 'number' ? String(value) : value;
  if (text && typeof value === 'string' && FORMULA_START.test(s)) s = `'${s}`;
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

export function csvRow(fields: readonly string[]): string {
  return fields.join(',') + CRLF;
}

interface Column<R> {
  header: string;
  cell: (row: R) => string;
}

interface ChainEntry {
  code?: unknown;
  domain?: unknown;
}

interface StoredError {
  chain?: ChainEntry[];
  rejectionReason?: unknown;
  managedStatus?: unknown;
  errorNumber?: unknown;
}

/** The job's stored error: top code and domain, and the whole chain on one line. */
export function errorSummary(stored: string | null): {
  code: number | null;
  domain: string | null;
  chain: string;
} {
  if (!stored) return { code: null, domain: null, chain: '' };
  let e: StoredError;
  try {
    e = JSON.parse(stored) as StoredError;
  } catch {
    return { code: null, domain: null, chain: '' };
  }
  const chain = Array.isArray(e.chain) ? e.chain : [];
  const parts = chain.map(
    (c) => `${typeof c.domain === 'string' ? c.domain : '?'}:${typeof c.code === 'number' ? c.code : '?'}`,
  );
  if (typeof e.rejectionReason === 'string') parts.push(`RejectionReason=${e.rejectionReason}`);
  if (typeof e.managedStatus === 'string') parts.push(`ManagedStatus=${e.managedStatus}`);
  const top = chain[0];
  if (top && typeof top.code === 'number') {
    return {
      code: top.code,
      domain: typeof top.domain === 'string' ? top.domain : null,
      chain: parts.join(' > '),
    };
  }
  // A licence refusal stores Apple's Apps and Books error number instead of a device chain.
  if (typeof e.errorNumber === 'number') {
    return {
      code: e.errorNumber,
      domain: 'AppsAndBooks',
      chain: [`AppsAndBooks:${e.errorNumber}`, ...parts].join(' > '),
    };
  }
  return { code: null, domain: null, chain: parts.join(' > ') };
}

type ExportRow = Awaited<ReturnType<Store['jobs']['exportPage']>>[number];

/** When the current attempt reached each status. */
type Reached = Map<string, string>;

const isJobStatus = (s: string): s is JobStatus => (JOB_STATUSES as readonly string[]).includes(s);

function label(row: ExportRow): { ja: string; en: string } {
  return isJobStatus(row.status)
    ? jobStatusLabel(row.status, row.retry_count)
    : { ja: row.status, en: row.status };
}

const COLUMNS: readonly Column<{ job: ExportRow; reached: Reached }>[] = [
  { header: '端末番号 / Device number', cell: ({ job }) => csvField(job.device_number) },
  { header: 'シリアル番号 / Serial number', cell: ({ job }) => csvField(job.serial_number, true) },
  { header: 'Adam ID', cell: ({ job }) => csvField(job.adam_id) },
  { header: 'アプリ名 / App name', cell: ({ job }) => csvField(job.app_name, true) },
  { header: '種別 / Kind', cell: ({ job }) => csvField(job.kind) },
  { header: 'ステータスID / Status ID', cell: ({ job }) => csvField(job.status) },
  { header: 'ステータス / Status (ja)', cell: ({ job }) => csvField(label(job).ja) },
  { header: 'ステータス / Status (en)', cell: ({ job }) => csvField(label(job).en) },
  { header: '理由 / Reason', cell: ({ job }) => csvField(job.reason, true) },
  { header: 'リトライ回数 / Retries', cell: ({ job }) => csvField(job.retry_count) },
  { header: '試行 / Attempt', cell: ({ job }) => csvField(job.attempt) },
  { header: 'エラーコード / Error code', cell: ({ job }) => csvField(errorSummary(job.error).code) },
  {
    header: 'エラードメイン / Error domain',
    cell: ({ job }) => csvField(errorSummary(job.error).domain, true),
  },
  {
    header: 'エラーチェーン / Error chain',
    cell: ({ job }) => csvField(errorSummary(job.error).chain, true),
  },
  { header: '作成日時 / Created at (UTC)', cell: ({ job }) => csvField(job.created_at) },
  { header: '更新日時 / Updated at (UTC)', cell: ({ job }) => csvField(job.updated_at) },
  {
    header: 'ライセンス準備完了 / Licence ready at',
    cell: ({ reached }) => csvField(reached.get('push_sending')),
  },
  {
    header: '端末へ送信 / Sent to device at',
    cell: ({ reached }) => csvField(reached.get('awaiting_response')),
  },
  { header: '端末受理 / Acknowledged at', cell: ({ reached }) => csvField(reached.get('executing')) },
  {
    header: '終了日時 / Finished at',
    cell: ({ job, reached }) =>
      csvField(isJobStatus(job.status) && isTerminal(job.status) ? reached.get(job.status) : null),
  },
  { header: 'ジョブID / Job ID', cell: ({ job }) => csvField(job.id) },
  { header: '端末ID / Device ID', cell: ({ job }) => csvField(job.device_id) },
];

export const CSV_HEADER = COLUMNS.map((c) => c.header);

/**
 * `GET /distributions/:id/jobs.csv`: UTF-8 with BOM, CRLF, one row per job in job order. Yields
 * one chunk per page of jobs, so 100k jobs stream without holding them all in memory.
 */
export async function* distributionJobsCsv(
  store: Store,
  distributionId: string,
  pageSize = CSV_PAGE_SIZE,
): AsyncGenerator<string> {
  yield UTF8_BOM + csvRow(CSV_HEADER.map((h) => csvField(h)));
  // The smallest 32-bit integer: `jobs.seq` is an integer column, and PostgreSQL refuses a
  // parameter outside its range (Number.MIN_SAFE_INTEGER failed every export there).
  let after = -2_147_483_648;
  for (;;) {
    const rows = await store.jobs.exportPage(distributionId, after, pageSize);
    if (rows.length === 0) return;
    const last = rows[rows.length - 1]!.seq;
    const reachedByJob = new Map<string, Reached>();
    for (const h of await store.jobs.historyOfRange(distributionId, after, last)) {
      let reached = reachedByJob.get(h.job_id);
      // Every attempt starts in `waiting` (created, schedule reached, retried): earlier steps are history.
      if (!reached || h.to_status === 'waiting') reachedByJob.set(h.job_id, (reached = new Map()));
      reached.set(h.to_status, h.at);
    }
    let chunk = '';
    for (const job of rows) {
      const row = { job, reached: reachedByJob.get(job.id) ?? new Map<string, string>() };
      chunk += csvRow(COLUMNS.map((c) => c.cell(row)));
    }
    yield chunk;
    if (rows.length < pageSize) return;
    after = last;
  }
}

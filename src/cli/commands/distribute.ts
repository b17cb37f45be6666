import { parseDuration } from '../../core/duration.ts';
import { isTerminal, JOB_STATUSES } from '../../core/jobs.ts';
import { CliError, EXIT, usageError } from '../client.ts';
import { displayWidth, padEnd, padStart } from '../output.ts';
import { emit, isJobStatus, jobLabel } from './common.ts';
import type { CauseDoc, Ctx, JobDoc } from './common.ts';

export interface DistributeOptions {
  token: string;
  group?: string[];
  includeSubgroups?: boolean;
  device?: string[];
  manual?: boolean;
  at?: string;
  wait: boolean;
  uninstall?: boolean;
  timeout: string;
}

interface DistributionDoc {
  id: string;
  kind: string;
  createdAt: string;
  counts: Record<string, number>;
}

const POLL_MS = 500;
const BAR = 30;

/** Cancelled jobs were stopped on purpose; every other unsuccessful end is a failure. */
const isFailure = (status: string) =>
  isJobStatus(status) && isTerminal(status) && status !== 'success' && status !== 'cancelled';
const finished = (counts: Record<string, number>) =>
  Object.entries(counts).every(([s, n]) => n === 0 || (isJobStatus(s) && isTerminal(s)));

function body(adamIds: string[], o: DistributeOptions) {
  for (const a of adamIds)
    if (!/^\d+$/.test(a))
      throw usageError('usage.adam_id', {
        ja: `Adam ID は数字です: ${a}`,
        en: `An Adam ID is a number: ${a}`,
      });
  const groups = o.group ?? [];
  const devices = o.device ?? [];
  if (groups.length > 0 === devices.length > 0)
    throw usageError('usage.target', {
      ja: '配信先として --group か --device のどちらか一方を指定してください。',
      en: 'Give the target as either --group or --device (one of them).',
    });
  if (o.includeSubgroups && groups.length === 0)
    throw usageError('usage.target', {
      ja: '--include-subgroups は --group と一緒に使います。',
      en: '--include-subgroups goes with --group.',
    });
  let scheduledAt: string | undefined;
  if (o.at !== undefined) {
    const t = Date.parse(o.at);
    if (Number.isNaN(t))
      throw usageError('usage.time', {
        ja: `--at には ISO 8601 形式の日時を指定してください（例: 2025-04-01T08:00:00+09:00）: ${o.at}`,
        en: `--at takes an ISO 8601 time (e.g. 2025-04-01T08:00:00+09:00): ${o.at}`,
      });
    scheduledAt = new Date(t).toISOString();
  }
  return {
    kind: o.uninstall ? 'uninstall' : 'install',
    tokenId: o.token,
    adamIds,
    targets:
      groups.length > 0
        ? { groupIds: groups, ...(o.includeSubgroups ? { includeSubgroups: true } : {}) }
        : { deviceIds: devices },
    licenseMode: o.manual ? 'manual' : 'auto',
    ...(scheduledAt ? { scheduledAt } : {}),
  };
}

function timeoutMs(text: string): number {
  try {
    return parseDuration(text);
  } catch {
    throw usageError('usage.duration', {
      ja: `--timeout には 30s、5m、1h のような時間を指定してください: ${text}`,
      en: `--timeout takes a duration such as 30s, 5m or 1h: ${text}`,
    });
  }
}

const elapsed = (ms: number) => {
  const s = Math.floor(ms / 1000);
  return `${String(Math.floor(s / 60)).padStart(2, '0')}:${String(s % 60).padStart(2, '0')}`;
};

const present = (counts: Record<string, number>) => JOB_STATUSES.filter((s) => (counts[s] ?? 0) > 0);

/**
 * The live view: on a terminal the bars are redrawn in place; in a pipe or log file each change
 * is one line, so that the log stays readable.
 */
class ProgressView {
  readonly #ctx: Ctx;
  readonly #total: number;
  readonly #tty = process.stdout.isTTY === true;
  readonly #start = Date.now();
  #drawn = 0;
  #last = '';

  constructor(ctx: Ctx, total: number) {
    this.#ctx = ctx;
    this.#total = total;
    if (this.#tty) process.stdout.write('\x1b[?25l');
  }

  update(counts: Record<string, number>): void {
    const statuses = present(counts);
    const done = statuses.filter((s) => isTerminal(s)).reduce((n, s) => n + (counts[s] ?? 0), 0);
    const header = this.#ctx.t(
      `進捗 ${done}/${this.#total} 完了  経過 ${elapsed(Date.now() - this.#start)}`,
      `progress ${done}/${this.#total} finished  elapsed ${elapsed(Date.now() - this.#start)}`,
    );
    if (this.#tty) {
      const labelWidth = Math.max(0, ...statuses.map((s) => displayWidth(jobLabel(s, this.#ctx.lang))));
      const lines = statuses.map((s) => {
        const n = counts[s] ?? 0;
        const filled = this.#total > 0 ? Math.min(BAR, Math.round((n / this.#total) * BAR)) : 0;
        const pct = this.#total > 0 ? Math.round((n / this.#total) * 100) : 0;
        return `  ${padEnd(jobLabel(s, this.#ctx.lang), labelWidth)}  ${'█'.repeat(filled)}${'░'.repeat(BAR - filled)} ${padStart(String(n), 6)} ${padStart(`${pct}%`, 4)}`;
      });
      // Up to the first line drawn last time, clear to the end of the screen, draw again.
      if (this.#drawn > 0) process.stdout.write(`\x1b[${this.#drawn}A\x1b[J`);
      process.stdout.write(`${[header, ...lines].join('\n')}\n`);
      this.#drawn = lines.length + 1;
      return;
    }
    const summary = statuses.map((s) => `${jobLabel(s, this.#ctx.lang)} ${counts[s]}`).join(', ');
    if (summary === this.#last) return;
    this.#last = summary;
    this.#ctx.out(
      `[${elapsed(Date.now() - this.#start)}] ${this.#ctx.t(`完了 ${done}/${this.#total}`, `finished ${done}/${this.#total}`)} — ${summary}`,
    );
  }

  close(): void {
    if (this.#tty) process.stdout.write('\x1b[?25h');
  }
}

async function poll(ctx: Ctx, id: string): Promise<DistributionDoc> {
  return ctx.api.get<DistributionDoc>(`/distributions/${encodeURIComponent(id)}`);
}

/** The top cause of one job per failed status: the first thing to fix. */
async function failureHints(ctx: Ctx, id: string, counts: Record<string, number>): Promise<string[]> {
  const lines: string[] = [];
  for (const status of present(counts).filter(isFailure)) {
    const jobs = await ctx.api.get<{ items: JobDoc[] }>('/jobs', { distributionId: id, status, limit: 1 });
    const job = jobs.items[0];
    if (!job) continue;
    const diagnosis = await ctx.api.get<{ causes: CauseDoc[] }>(`/jobs/${job.id}/diagnosis`);
    const top = diagnosis.causes[0];
    lines.push(`  ${jobLabel(status, ctx.lang)} (${counts[status]}):`);
    if (top) {
      lines.push(`    ${ctx.t('原因', 'Cause')}: ${top.title[ctx.lang]} [${top.code}]`);
      lines.push(`    ${ctx.t('対処', 'Remedy')}: ${top.remedy[ctx.lang]}`);
    }
    lines.push(`    ${ctx.t('詳細', 'Details')}: haishin jobs diagnose ${job.id}`);
  }
  return lines;
}

function summary(ctx: Ctx, d: DistributionDoc, total: number, ms: number): string {
  const statuses = present(d.counts);
  const width = Math.max(0, ...statuses.map((s) => displayWidth(jobLabel(s, ctx.lang))));
  return [
    ctx.t(
      `配信 ${d.id} が終わりました（ジョブ ${total} 件、${Math.round(ms / 1000)} 秒）。`,
      `Distribution ${d.id} finished (${total} jobs, ${Math.round(ms / 1000)} s).`,
    ),
    ...statuses.map((s) => `  ${padEnd(jobLabel(s, ctx.lang), width)}  ${padStart(String(d.counts[s]), 6)}`),
  ].join('\n');
}

export async function distribute(ctx: Ctx, adamIds: string[], o: DistributeOptions): Promise<void> {
  const request = body(adamIds, o);
  const limitMs = timeoutMs(o.timeout);
  const created = await ctx.api.post<{ id: string; jobCount: number }>('/distributions', request);

  if (!o.wait) {
    emit(ctx, created, () =>
      ctx.t(
        `配信 ${created.id} を作成しました（ジョブ ${created.jobCount} 件）。進捗: haishin jobs ls --distribution ${created.id}`,
        `Distribution ${created.id} created (${created.jobCount} jobs). Progress: haishin jobs ls --distribution ${created.id}`,
      ),
    );
    return;
  }
  if (!ctx.json)
    ctx.out(
      ctx.t(
        `配信 ${created.id} を作成しました（ジョブ ${created.jobCount} 件）。`,
        `Distribution ${created.id} created (${created.jobCount} jobs).`,
      ),
    );

  const start = Date.now();
  const view = ctx.json ? null : new ProgressView(ctx, created.jobCount);
  // Ctrl-C stops watching, not the distribution: say so, and leave the terminal usable.
  const onInterrupt = () => {
    view?.close();
    process.stderr.write(
      `\n${ctx.t(
        `表示を終了しました。配信 ${created.id} はサーバーで続行中です: haishin jobs ls --distribution ${created.id}`,
        `Stopped watching. Distribution ${created.id} goes on at the server: haishin jobs ls --distribution ${created.id}`,
      )}\n`,
    );
    process.exit(130);
  };
  process.once('SIGINT', onInterrupt);
  let d: DistributionDoc;
  try {
    for (;;) {
      d = await poll(ctx, created.id);
      view?.update(d.counts);
      if (finished(d.counts)) break;
      if (Date.now() - start > limitMs)
        throw new CliError(EXIT.timeout, 'distribution.wait_timeout', {
          ja: `${o.timeout} 待っても配信 ${created.id} が終わりませんでした。配信はサーバーで続行中です: haishin jobs ls --distribution ${created.id}`,
          en: `Distribution ${created.id} did not finish within ${o.timeout}. It goes on at the server: haishin jobs ls --distribution ${created.id}`,
        });
      await new Promise((r) => setTimeout(r, POLL_MS));
    }
  } finally {
    process.off('SIGINT', onInterrupt);
    view?.close();
  }

  const failed = Object.entries(d.counts)
    .filter(([s]) => isFailure(s))
    .reduce((n, [, c]) => n + c, 0);
  if (ctx.json) ctx.out(JSON.stringify(d, null, 2));
  else {
    ctx.out(summary(ctx, d, created.jobCount, Date.now() - start));
    if (failed > 0) {
      ctx.out(ctx.t('失敗したジョブ:', 'Failed jobs:'));
      for (const line of await failureHints(ctx, created.id, d.counts)) ctx.out(line);
    }
  }
  if (failed > 0) process.exitCode = EXIT.failedJobs;
}

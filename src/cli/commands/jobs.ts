import { JOB_STATUSES } from '../../core/jobs.ts';
import { usageError } from '../client.ts';
import { fields, table, when } from '../output.ts';
import { chainLine, checkChoice, emit, jobLabel, positiveInt, renderCauses } from './common.ts';
import type { CauseDoc, ChainItem, Ctx, JobDoc } from './common.ts';

export async function jobsLs(
  ctx: Ctx,
  o: { status?: string; distribution?: string; device?: string; limit?: string },
): Promise<void> {
  checkChoice({ ja: 'ジョブの状態', en: 'Job status' }, o.status, JOB_STATUSES);
  const max = positiveInt('--limit', o.limit) ?? Infinity;
  const doc = await ctx.api.all<JobDoc>(
    '/jobs',
    { status: o.status, distributionId: o.distribution, deviceId: o.device },
    max,
  );
  emit(ctx, doc, () => {
    const text = table(
      doc.items,
      [
        { header: { ja: 'ID', en: 'ID' }, value: (j) => j.id },
        { header: { ja: '配信', en: 'Distribution' }, value: (j) => j.distributionId },
        { header: { ja: '端末', en: 'Device' }, value: (j) => j.deviceId },
        { header: { ja: 'アプリ', en: 'App' }, value: (j) => j.adamId },
        { header: { ja: '状態', en: 'Status' }, value: (j) => jobLabel(j.status, ctx.lang, j.retryCount) },
        { header: { ja: '理由', en: 'Reason' }, value: (j) => j.reason },
        { header: { ja: '更新日時', en: 'Updated' }, value: (j) => when(j.updatedAt) },
      ],
      ctx.lang,
    );
    return doc.nextCursor
      ? `${text}\n${ctx.t(`（${doc.items.length} 件まで表示。続きがあります）`, `(first ${doc.items.length} shown; there are more)`)}`
      : text;
  });
}

interface JobDetail extends JobDoc {
  history: { from: string | null; to: string; at: string; reason: string | null }[];
}

export async function jobsShow(ctx: Ctx, id: string): Promise<void> {
  const j = await ctx.api.get<JobDetail>(`/jobs/${encodeURIComponent(id)}`);
  emit(ctx, j, () => {
    const parts = [
      fields(
        [
          [{ ja: 'ID', en: 'ID' }, j.id],
          [{ ja: '配信', en: 'Distribution' }, j.distributionId],
          [{ ja: '端末', en: 'Device' }, j.deviceId],
          [{ ja: 'アプリ', en: 'App' }, j.adamId],
          [
            { ja: '種別', en: 'Kind' },
            j.kind === 'uninstall' ? ctx.t('削除', 'uninstall') : ctx.t('インストール', 'install'),
          ],
          [{ ja: '状態', en: 'Status' }, jobLabel(j.status, ctx.lang, j.retryCount)],
          [{ ja: '理由', en: 'Reason' }, j.reason],
          [{ ja: '試行', en: 'Attempt' }, j.attempt],
          [{ ja: 'リトライ回数', en: 'Retries' }, j.retryCount],
          [{ ja: '更新日時', en: 'Updated' }, when(j.updatedAt)],
        ],
        ctx.lang,
      ),
    ];
    if (j.error && (j.error.chain.length > 0 || j.error.rejectionReason)) {
      parts.push(ctx.t('端末のエラー:', 'Device error:'));
      for (const c of j.error.chain) parts.push(`  ${chainLine(c)}`);
      if (j.error.rejectionReason) parts.push(`  RejectionReason: ${j.error.rejectionReason}`);
    }
    parts.push(ctx.t('状態の履歴:', 'Status history:'));
    parts.push(
      table(
        j.history ?? [],
        [
          { header: { ja: '日時', en: 'At' }, value: (h) => when(h.at) },
          {
            header: { ja: '変更前', en: 'From' },
            value: (h) => (h.from ? jobLabel(h.from, ctx.lang) : null),
          },
          { header: { ja: '変更後', en: 'To' }, value: (h) => jobLabel(h.to, ctx.lang) },
          { header: { ja: '理由', en: 'Reason' }, value: (h) => h.reason },
        ],
        ctx.lang,
      ),
    );
    parts.push(
      ctx.t(`原因の診断: haishin jobs diagnose ${j.id}`, `Diagnosis: haishin jobs diagnose ${j.id}`),
    );
    return parts.join('\n');
  });
}

export async function jobsDiagnose(ctx: Ctx, id: string): Promise<void> {
  const d = await ctx.api.get<{ jobId: string; status: string; causes: CauseDoc[] }>(
    `/jobs/${encodeURIComponent(id)}/diagnosis`,
  );
  emit(ctx, d, () =>
    [
      ctx.t(
        `ジョブ ${d.jobId}  状態: ${jobLabel(d.status, ctx.lang)}`,
        `Job ${d.jobId}  status: ${jobLabel(d.status, ctx.lang)}`,
      ),
      '',
      renderCauses(d.causes, ctx.lang),
    ].join('\n'),
  );
}

export async function jobsAction(ctx: Ctx, action: 'retry' | 'cancel', id: string): Promise<void> {
  const j = await ctx.api.post<JobDoc>(`/jobs/${encodeURIComponent(id)}/${action}`);
  emit(ctx, j, () =>
    action === 'retry'
      ? ctx.t(
          `ジョブ ${j.id} を再実行します。状態: ${jobLabel(j.status, ctx.lang)}`,
          `Job ${j.id} retried. Status: ${jobLabel(j.status, ctx.lang)}`,
        )
      : ctx.t(
          `ジョブ ${j.id} の状態: ${jobLabel(j.status, ctx.lang)}`,
          `Job ${j.id} status: ${jobLabel(j.status, ctx.lang)}`,
        ),
  );
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin)
    chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer));
  return Buffer.concat(chunks).toString('utf8');
}

/** The text as one argument (quoted), several words, or `-` / nothing to read a pasted log from stdin. */
export async function explain(ctx: Ctx, words: string[]): Promise<void> {
  const fromStdin = words.length === 0 || (words.length === 1 && words[0] === '-');
  if (fromStdin && process.stdin.isTTY)
    throw usageError('usage.no_text', {
      ja: '説明するエラーの文章を引数で渡すか、標準入力に流してください（例: haishin explain "<エラー>"）。',
      en: 'Give the error text as an argument or on stdin (e.g. haishin explain "<error>").',
    });
  const text = fromStdin ? await readStdin() : words.join(' ');
  if (!text.trim())
    throw usageError('usage.no_text', { ja: 'エラーの文章が空です。', en: 'The error text is empty.' });
  const r = await ctx.api.post<{ chain: ChainItem[]; causes: CauseDoc[] }>('/diagnose/error', { text });
  emit(ctx, r, () => {
    const parts: string[] = [];
    if (r.chain.length > 0) {
      parts.push(ctx.t('読み取ったエラー:', 'Errors read:'));
      for (const c of r.chain) parts.push(`  ${chainLine(c)}`);
      parts.push('');
    }
    parts.push(renderCauses(r.causes, ctx.lang));
    return parts.join('\n');
  });
}

export async function supportBundle(ctx: Ctx, jobId: string, o: { text?: boolean }): Promise<void> {
  const path = `/jobs/${encodeURIComponent(jobId)}/support-bundle`;
  if (o.text) {
    const text = await ctx.api.request<string>('GET', path, { accept: 'text' });
    ctx.out(text.replace(/\n$/, ''));
    return;
  }
  // The bundle is JSON for both audiences: it is meant to be saved and sent as it is.
  ctx.out(JSON.stringify(await ctx.api.get<unknown>(path), null, 2));
}

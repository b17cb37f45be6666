import { readFile } from 'node:fs/promises';
import { usageError } from '../client.ts';
import { fields, table, when } from '../output.ts';
import { emit, tokenStateLabel } from './common.ts';
import type { Ctx, GroupDoc, LicenseChangeDoc, TokenDoc } from './common.ts';

/** The .vpptoken file as downloaded from Apple Business/School Manager: one base64 line. */
async function readTokenFile(file: string): Promise<string> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    const why = (err as NodeJS.ErrnoException).code ?? String(err);
    throw usageError('usage.file_unreadable', {
      ja: `トークンファイル ${file} を読めません（${why}）。`,
      en: `Cannot read the token file ${file} (${why}).`,
    });
  }
  const sToken = text.trim();
  if (!sToken)
    throw usageError('usage.file_empty', {
      ja: `トークンファイル ${file} が空です。`,
      en: `The token file ${file} is empty.`,
    });
  return sToken;
}

function tokenFields(ctx: Ctx, tok: TokenDoc): string {
  return fields(
    [
      [{ ja: 'ID', en: 'ID' }, tok.id],
      [{ ja: '組織', en: 'Organisation' }, tok.orgName],
      [{ ja: 'ロケーション', en: 'Location' }, tok.locationName],
      [{ ja: '状態', en: 'State' }, tokenStateLabel(tok.state, ctx.lang)],
      [
        { ja: '有効期限', en: 'Expires' },
        `${when(tok.expiresAt)} (${ctx.t(`残り ${tok.daysLeft} 日`, `${tok.daysLeft} days left`)})`,
      ],
      [{ ja: '登録先グループ', en: 'Registered to' }, tok.groupId],
      [{ ja: '共有先グループ', en: 'Shared to' }, tok.sharedTo.join(', ')],
      [{ ja: '最終同期', en: 'Last sync' }, when(tok.lastSyncedAt)],
    ],
    ctx.lang,
  );
}

export async function tokensLs(ctx: Ctx): Promise<void> {
  const doc = await ctx.api.get<{ items: TokenDoc[]; nextCursor: string | null }>('/vpp-tokens');
  if (ctx.json) return emit(ctx, doc, () => '');
  const groups = await ctx.api.all<GroupDoc>('/groups');
  const paths = new Map(groups.items.map((g) => [g.id, g.path.join(' / ')]));
  ctx.out(
    table(
      doc.items,
      [
        { header: { ja: 'ID', en: 'ID' }, value: (t) => t.id },
        { header: { ja: '組織', en: 'Organisation' }, value: (t) => t.orgName },
        { header: { ja: 'ロケーション', en: 'Location' }, value: (t) => t.locationName },
        { header: { ja: '状態', en: 'State' }, value: (t) => tokenStateLabel(t.state, ctx.lang) },
        { header: { ja: '有効期限', en: 'Expires' }, value: (t) => t.expiresAt.slice(0, 10) },
        { header: { ja: '残り日数', en: 'Days left' }, value: (t) => t.daysLeft, align: 'right' },
        { header: { ja: '登録先', en: 'Registered to' }, value: (t) => paths.get(t.groupId) ?? t.groupId },
        { header: { ja: '共有先', en: 'Shares' }, value: (t) => t.sharedTo.length, align: 'right' },
        { header: { ja: '最終同期', en: 'Last sync' }, value: (t) => when(t.lastSyncedAt) },
      ],
      ctx.lang,
    ),
  );
}

export async function tokensAdd(ctx: Ctx, file: string, o: { group: string }): Promise<void> {
  const sToken = await readTokenFile(file);
  const tok = await ctx.api.post<TokenDoc>('/vpp-tokens', { groupId: o.group, sToken });
  emit(
    ctx,
    tok,
    () => `${ctx.t('VPPトークンを登録しました。', 'VPP token registered.')}\n${tokenFields(ctx, tok)}`,
  );
}

export async function tokensRenew(ctx: Ctx, id: string, file: string): Promise<void> {
  const sToken = await readTokenFile(file);
  const tok = await ctx.api.request<TokenDoc>('PUT', `/vpp-tokens/${encodeURIComponent(id)}`, {
    body: { sToken },
  });
  emit(
    ctx,
    tok,
    () => `${ctx.t('VPPトークンを更新しました。', 'VPP token renewed.')}\n${tokenFields(ctx, tok)}`,
  );
}

export async function tokensShare(ctx: Ctx, id: string, o: { group: string }): Promise<void> {
  const tok = await ctx.api.post<TokenDoc>(`/vpp-tokens/${encodeURIComponent(id)}/shares`, {
    groupId: o.group,
  });
  emit(
    ctx,
    tok,
    () =>
      `${ctx.t(`VPPトークンをグループ ${o.group} に共有しました。`, `VPP token shared to group ${o.group}.`)}\n${tokenFields(ctx, tok)}`,
  );
}

export async function tokensUnshare(ctx: Ctx, id: string, o: { group: string }): Promise<void> {
  const r = await ctx.api.request<{ reclaimed: LicenseChangeDoc[] }>(
    'DELETE',
    `/vpp-tokens/${encodeURIComponent(id)}/shares/${encodeURIComponent(o.group)}`,
  );
  const n = r.reclaimed.reduce((sum, c) => sum + c.serials.length, 0);
  emit(ctx, r, () =>
    ctx.t(
      `グループ ${o.group} への共有を解除しました。回収したライセンス: ${n}`,
      `Share to group ${o.group} removed. Licences reclaimed: ${n}`,
    ),
  );
}

export async function tokensSync(ctx: Ctx, id: string): Promise<void> {
  const r = await ctx.api.post<{ assets: number; syncedAt: string }>(
    `/vpp-tokens/${encodeURIComponent(id)}/sync`,
  );
  emit(ctx, r, () =>
    ctx.t(
      `同期しました: アプリ ${r.assets} 件（${when(r.syncedAt)}）`,
      `Synced: ${r.assets} apps (${when(r.syncedAt)})`,
    ),
  );
}

import { usageError } from '../client.ts';
import { fields, table, when } from '../output.ts';
import { terminalQr } from '../qr.ts';
import { emit } from './common.ts';
import type { Ctx } from './common.ts';

/** `haishin enrollment-links …` over `/api/v1/…/enrollment-links` (decision 0022). */

export interface EnrollmentLinkDoc {
  id: string;
  groupId: string;
  label: string | null;
  state: 'active' | 'expired' | 'used_up' | 'revoked';
  createdAt: string;
  expiresAt: string | null;
  maxUses: number | null;
  useCount: number;
  lastUsedAt: string | null;
  revokedAt: string | null;
}

const STATE = {
  active: { ja: '有効', en: 'active' },
  expired: { ja: '期限切れ', en: 'expired' },
  used_up: { ja: '回数上限', en: 'used up' },
  revoked: { ja: '無効化済み', en: 'revoked' },
} as const;

const uses = (l: EnrollmentLinkDoc) => `${l.useCount}${l.maxUses === null ? '' : ` / ${l.maxUses}`}`;

export async function linksLs(ctx: Ctx, o: { group?: string }): Promise<void> {
  const doc = await ctx.api.get<{ items: EnrollmentLinkDoc[] }>(
    o.group ? `/groups/${encodeURIComponent(o.group)}/enrollment-links` : '/enrollment-links',
  );
  emit(ctx, doc, () =>
    table(
      doc.items,
      [
        { header: { ja: 'ID', en: 'ID' }, value: (l) => l.id },
        { header: { ja: 'グループID', en: 'Group ID' }, value: (l) => l.groupId },
        { header: { ja: 'ラベル', en: 'Label' }, value: (l) => l.label ?? '' },
        { header: { ja: '状態', en: 'State' }, value: (l) => STATE[l.state][ctx.lang] },
        { header: { ja: '利用回数', en: 'Uses' }, value: uses },
        { header: { ja: '有効期限', en: 'Expires' }, value: (l) => (l.expiresAt ? when(l.expiresAt) : '—') },
      ],
      ctx.lang,
    ),
  );
}

export async function linksCreate(
  ctx: Ctx,
  o: {
    group: string;
    label?: string;
    expiresIn?: string;
    expiresAt?: string;
    maxUses?: string;
    qr?: boolean;
  },
): Promise<void> {
  let maxUses: number | undefined;
  if (o.maxUses !== undefined) {
    maxUses = Number(o.maxUses);
    if (!Number.isInteger(maxUses) || maxUses < 1)
      throw usageError('usage.max_uses', {
        ja: `--max-uses「${o.maxUses}」には 1 以上の整数を指定してください。`,
        en: `--max-uses "${o.maxUses}" must be a whole number of at least 1.`,
      });
  }
  const link = await ctx.api.post<EnrollmentLinkDoc & { url: string; token: string }>(
    `/groups/${encodeURIComponent(o.group)}/enrollment-links`,
    {
      ...(o.label !== undefined ? { label: o.label } : {}),
      ...(o.expiresIn !== undefined ? { expiresIn: o.expiresIn } : {}),
      ...(o.expiresAt !== undefined ? { expiresAt: o.expiresAt } : {}),
      ...(maxUses !== undefined ? { maxUses } : {}),
    },
  );
  emit(ctx, link, () =>
    [
      ctx.t(
        '登録用リンクを作成しました。このリンクが表示されるのは今回だけです（haishin にはハッシュしか残りません）。',
        'Enrollment link created. This is the only time it is shown (haishin keeps only its hash).',
      ),
      '',
      link.url,
      '',
      ...(o.qr === false ? [] : [terminalQr(link.url, { ansi: process.stdout.isTTY === true }), '']),
      fields(
        [
          [{ ja: 'ID', en: 'ID' }, link.id],
          [{ ja: 'グループID', en: 'Group ID' }, link.groupId],
          [{ ja: 'ラベル', en: 'Label' }, link.label],
          [{ ja: '有効期限', en: 'Expires' }, link.expiresAt ? when(link.expiresAt) : ctx.t('なし', 'never')],
          [{ ja: '利用回数の上限', en: 'Uses allowed' }, link.maxUses ?? ctx.t('制限なし', 'no limit')],
        ],
        ctx.lang,
      ),
    ].join('\n'),
  );
}

export async function linksRevoke(ctx: Ctx, id: string): Promise<void> {
  const link = await ctx.api.post<EnrollmentLinkDoc>(`/enrollment-links/${encodeURIComponent(id)}/revoke`);
  emit(ctx, link, () =>
    ctx.t(
      `登録用リンク ${link.id} を無効にしました（利用回数 ${uses(link)}）。登録済みの端末はそのまま管理されます。`,
      `Enrollment link ${link.id} revoked (used ${uses(link)}). Devices already enrolled stay managed.`,
    ),
  );
}

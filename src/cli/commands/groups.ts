import { usageError } from '../client.ts';
import { fields, table, when } from '../output.ts';
import { emit } from './common.ts';
import type { Ctx, GroupDoc } from './common.ts';

const pathOf = (g: GroupDoc) => g.path.join(' / ');

export async function groupsLs(ctx: Ctx): Promise<void> {
  const doc = await ctx.api.all<GroupDoc>('/groups');
  // Tree order reads better than creation order: a group right under its parent.
  const sorted = [...doc.items].sort((a, b) => pathOf(a).localeCompare(pathOf(b), ctx.lang));
  emit(ctx, doc, () =>
    table(
      sorted,
      [
        { header: { ja: 'ID', en: 'ID' }, value: (g) => g.id },
        { header: { ja: 'グループ', en: 'Group' }, value: (g) => pathOf(g) },
        { header: { ja: '親グループID', en: 'Parent ID' }, value: (g) => g.parentId },
      ],
      ctx.lang,
    ),
  );
}

function groupFields(ctx: Ctx, g: GroupDoc): string {
  return fields(
    [
      [{ ja: 'ID', en: 'ID' }, g.id],
      [{ ja: 'グループ', en: 'Group' }, pathOf(g)],
      [{ ja: '親グループID', en: 'Parent ID' }, g.parentId],
      [{ ja: '更新日時', en: 'Updated' }, when(g.updatedAt)],
    ],
    ctx.lang,
  );
}

/** Without --parent the group goes under the root, which every server has. */
async function rootGroupId(ctx: Ctx): Promise<string> {
  const all = await ctx.api.all<GroupDoc>('/groups');
  const root = all.items.find((g) => g.parentId === null);
  if (!root) throw new Error('the server lists no root group');
  return root.id;
}

export async function groupsAdd(ctx: Ctx, name: string, o: { parent?: string }): Promise<void> {
  const parentId = o.parent ?? (await rootGroupId(ctx));
  const g = await ctx.api.post<GroupDoc>('/groups', { name, parentId });
  emit(ctx, g, () => `${ctx.t('グループを作成しました。', 'Group created.')}\n${groupFields(ctx, g)}`);
}

export async function groupsMv(ctx: Ctx, id: string, o: { parent?: string; name?: string }): Promise<void> {
  if (o.parent === undefined && o.name === undefined)
    throw usageError('usage.nothing_to_change', {
      ja: '--parent（移動先の親グループ）か --name（新しい名前）を指定してください。',
      en: 'Give --parent (the new parent group) or --name (the new name).',
    });
  const g = await ctx.api.request<GroupDoc>('PATCH', `/groups/${encodeURIComponent(id)}`, {
    body: {
      ...(o.parent !== undefined ? { parentId: o.parent } : {}),
      ...(o.name !== undefined ? { name: o.name } : {}),
    },
  });
  emit(ctx, g, () => `${ctx.t('グループを変更しました。', 'Group changed.')}\n${groupFields(ctx, g)}`);
}

interface AutoAssignDoc {
  groupId: string;
  tokenId: string | null;
  effectiveTokenId: string | null;
  inheritedFrom: string | null;
}

/** Sets (or with --none clears) the token whose licences are assigned automatically in a group. */
export async function groupsAutoAssign(
  ctx: Ctx,
  id: string,
  o: { token?: string; none?: boolean },
): Promise<void> {
  if ((o.token === undefined) === (o.none !== true))
    throw usageError('usage.auto_assign', {
      ja: '--token <トークンID>（自動割り当てに使う VPP トークン）か --none（解除）のどちらかを指定してください。',
      en: 'Give either --token <tokenId> (the VPP token to assign licences from) or --none (clear it).',
    });
  const doc = await ctx.api.request<AutoAssignDoc>(
    'PUT',
    `/groups/${encodeURIComponent(id)}/auto-assign-token`,
    {
      body: { tokenId: o.none ? null : (o.token ?? null) },
    },
  );
  emit(ctx, doc, () =>
    [
      doc.tokenId
        ? ctx.t('自動割り当てトークンを設定しました。', 'Auto-assign token set.')
        : ctx.t('自動割り当てトークンを解除しました。', 'Auto-assign token cleared.'),
      fields(
        [
          [{ ja: 'グループID', en: 'Group ID' }, doc.groupId],
          [{ ja: '自動割り当てトークン', en: 'Auto-assign token' }, doc.tokenId],
          [{ ja: '有効なトークン', en: 'Effective token' }, doc.effectiveTokenId],
          [{ ja: '継承元グループ', en: 'Inherited from' }, doc.inheritedFrom],
        ],
        ctx.lang,
      ),
    ].join('\n'),
  );
}

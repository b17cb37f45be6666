import { usageError } from '../client.ts';
import { fields, table } from '../output.ts';
import { emit } from './common.ts';
import type { Ctx } from './common.ts';

/** App updates over the REST API (decision 0018): `apps updates`, `apps check`, `apps update`, `groups keep-updated`. */

interface AppUpdateDoc {
  adamId: string;
  name: string | null;
  latestVersion: string | null;
  previousVersion: string | null;
  versionChangedAt: string | null;
  versions: { version: string | null; devices: number; outdated: boolean }[];
  installedDevices: number;
  outdatedDevices: number;
  updatableDevices: number;
  updateAvailable: boolean;
}

interface UpdateDoc {
  adamId: string;
  version: string;
  distributions: { id: string; tokenId: string; licenseMode: string; jobCount: number }[];
  jobCount: number;
  skipped: Record<string, number>;
}

interface CheckDoc {
  checkedAt: string;
  asked: number;
  found: number;
  newVersions: { adamId: string; from: string; to: string }[];
  autoUpdates: UpdateDoc[];
}

interface KeepUpdatedDoc {
  groupId: string;
  enabled: boolean | null;
  effective: boolean;
  inheritedFrom: string | null;
  updateJobs?: number;
}

export async function appsUpdates(ctx: Ctx): Promise<void> {
  const doc = await ctx.api.get<{ items: AppUpdateDoc[]; nextCursor: string | null }>('/apps');
  emit(ctx, doc, () =>
    table(
      doc.items,
      [
        { header: { ja: 'Adam ID', en: 'Adam ID' }, value: (a) => a.adamId },
        { header: { ja: '名前', en: 'Name' }, value: (a) => a.name },
        { header: { ja: '最新', en: 'Latest' }, value: (a) => a.latestVersion },
        { header: { ja: '前', en: 'Previous' }, value: (a) => a.previousVersion },
        {
          header: { ja: 'インストール台数', en: 'Installed' },
          value: (a) => a.installedDevices,
          align: 'right',
        },
        { header: { ja: '旧バージョン', en: 'Outdated' }, value: (a) => a.outdatedDevices, align: 'right' },
        { header: { ja: '更新可能', en: 'Updatable' }, value: (a) => a.updatableDevices, align: 'right' },
        {
          header: { ja: '台数（バージョン別）', en: 'Devices by version' },
          value: (a) => a.versions.map((v) => `${v.version ?? '?'}×${v.devices}`).join(' '),
        },
      ],
      ctx.lang,
    ),
  );
}

export async function appsCheck(ctx: Ctx): Promise<void> {
  const doc = await ctx.api.post<CheckDoc>('/apps/check', {});
  emit(ctx, doc, () => {
    const lines = [
      ctx.t(
        `${doc.asked} 件のアプリを App Store で確認しました（見つかったのは ${doc.found} 件）。`,
        `${doc.asked} apps looked up in the App Store (${doc.found} found).`,
      ),
    ];
    for (const v of doc.newVersions)
      lines.push(
        ctx.t(
          `新しいバージョン: ${v.adamId} ${v.from} → ${v.to}`,
          `New version: ${v.adamId} ${v.from} → ${v.to}`,
        ),
      );
    if (doc.newVersions.length === 0) lines.push(ctx.t('新しいバージョンはありません。', 'No new versions.'));
    for (const u of doc.autoUpdates)
      lines.push(
        ctx.t(
          `自動アップデート: ${u.adamId} ${u.version} を ${u.jobCount} 台に配信（配信 ${u.distributions.map((d) => d.id).join(', ')}）`,
          `Automatic update: ${u.adamId} ${u.version} to ${u.jobCount} devices (distributions ${u.distributions.map((d) => d.id).join(', ')})`,
        ),
      );
    return lines.join('\n');
  });
}

export async function appsUpdate(
  ctx: Ctx,
  adamId: string,
  o: { group?: string[]; includeSubgroups?: boolean; device?: string[] },
): Promise<void> {
  if (!/^\d+$/.test(adamId))
    throw usageError('usage.adam_id', {
      ja: `数字の Adam ID を指定してください: ${adamId}`,
      en: `Give a numeric Adam ID: ${adamId}`,
    });
  const body = {
    ...(o.group ? { groupIds: o.group } : {}),
    ...(o.includeSubgroups ? { includeSubgroups: true } : {}),
    ...(o.device ? { deviceIds: o.device } : {}),
  };
  const doc = await ctx.api.post<UpdateDoc>(`/apps/${adamId}/update`, body);
  const skipped = Object.entries(doc.skipped)
    .filter(([, n]) => n > 0)
    .map(([reason, n]) => `${reason} ${n}`)
    .join(', ');
  emit(ctx, doc, () =>
    [
      doc.jobCount > 0
        ? ctx.t(
            `バージョン ${doc.version} を ${doc.jobCount} 台に配信します。`,
            `Distributing version ${doc.version} to ${doc.jobCount} devices.`,
          )
        : ctx.t('アップデートが必要な端末はありません。', 'No device needs the update.'),
      ...doc.distributions.map((d) =>
        ctx.t(
          `配信 ${d.id}（トークン ${d.tokenId}、${d.licenseMode}、${d.jobCount} 件）: haishin jobs ls --distribution ${d.id}`,
          `Distribution ${d.id} (token ${d.tokenId}, ${d.licenseMode}, ${d.jobCount} jobs): haishin jobs ls --distribution ${d.id}`,
        ),
      ),
      ...(skipped ? [ctx.t(`対象外: ${skipped}`, `Left out: ${skipped}`)] : []),
    ].join('\n'),
  );
}

export async function groupsKeepUpdated(ctx: Ctx, id: string, value: string): Promise<void> {
  const enabled = value === 'on' ? true : value === 'off' ? false : value === 'inherit' ? null : undefined;
  if (enabled === undefined)
    throw usageError('usage.keep_updated', {
      ja: `on、off、inherit（上位グループに従う）のどれかを指定してください: ${value}`,
      en: `Give on, off or inherit (follow the parent groups): ${value}`,
    });
  const doc = await ctx.api.request<KeepUpdatedDoc>(
    'PUT',
    `/groups/${encodeURIComponent(id)}/keep-apps-updated`,
    {
      body: { enabled },
    },
  );
  const onOff = (v: boolean | null) =>
    v === null ? ctx.t('（継承）', '(inherited)') : v ? ctx.t('オン', 'on') : ctx.t('オフ', 'off');
  emit(ctx, doc, () =>
    [
      ctx.t('「アプリを最新に保つ」を設定しました。', '"Keep apps up to date" set.'),
      fields(
        [
          [{ ja: 'グループID', en: 'Group ID' }, doc.groupId],
          [{ ja: 'このグループの設定', en: 'Own setting' }, onOff(doc.enabled)],
          [{ ja: '有効な設定', en: 'In force' }, onOff(doc.effective)],
          [{ ja: '継承元', en: 'Inherited from' }, doc.inheritedFrom],
          [{ ja: '開始したアップデート', en: 'Updates started' }, doc.updateJobs ?? 0],
        ],
        ctx.lang,
      ),
    ].join('\n'),
  );
}

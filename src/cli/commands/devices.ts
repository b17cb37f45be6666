import { fields, table, when } from '../output.ts';
import {
  checkChoice,
  DEVICE_STATUSES,
  deviceStatusLabel,
  emit,
  positiveInt,
  resolveDevice,
} from './common.ts';
import type { Ctx, DeviceDoc, GroupDoc } from './common.ts';
import type { Texts } from '../output.ts';

/** Group id → "board / school / class", so that a table says where a device is. */
async function groupPaths(ctx: Ctx): Promise<Map<string, string>> {
  const groups = await ctx.api.all<GroupDoc>('/groups');
  return new Map(groups.items.map((g) => [g.id, g.path.join(' / ')]));
}

export async function devicesLs(
  ctx: Ctx,
  o: {
    group?: string;
    includeSubgroups?: boolean;
    status?: string;
    serial?: string;
    identityExpired?: boolean;
    limit?: string;
  },
): Promise<void> {
  checkChoice({ ja: '端末の状態', en: 'Device status' }, o.status, DEVICE_STATUSES);
  const max = positiveInt('--limit', o.limit) ?? Infinity;
  const doc = await ctx.api.all<DeviceDoc>(
    '/devices',
    {
      groupId: o.group,
      includeSubgroups: o.group !== undefined && o.includeSubgroups ? true : undefined,
      status: o.status,
      serialNumber: o.serial,
      identityExpired: o.identityExpired ? true : undefined,
    },
    max,
  );
  if (ctx.json) return emit(ctx, doc, () => '');
  const paths = await groupPaths(ctx);
  ctx.out(
    table(
      doc.items,
      [
        { header: { ja: '番号', en: 'No.' }, value: (d) => d.deviceNumber, align: 'right' },
        { header: { ja: 'ID', en: 'ID' }, value: (d) => d.id },
        { header: { ja: 'シリアル番号', en: 'Serial' }, value: (d) => d.serialNumber },
        { header: { ja: '状態', en: 'Status' }, value: (d) => deviceStatusLabel(d.status, ctx.lang) },
        { header: { ja: '機種', en: 'Model' }, value: (d) => d.productName ?? d.model },
        { header: { ja: 'iOS', en: 'iOS' }, value: (d) => d.osVersion },
        { header: { ja: 'グループ', en: 'Group' }, value: (d) => paths.get(d.groupId) ?? d.groupId },
        { header: { ja: '最終通信', en: 'Last seen' }, value: (d) => when(d.lastSeenAt) },
      ],
      ctx.lang,
    ),
  );
  if (doc.nextCursor)
    ctx.out(
      ctx.t(
        `（${doc.items.length} 台まで表示。続きがあります）`,
        `(first ${doc.items.length} shown; there are more)`,
      ),
    );
}

type Pair = [Texts, string | number | null | undefined];

function devicePairs(ctx: Ctx, d: DeviceDoc, groupPath: string | undefined): Pair[] {
  const yes = (b: boolean | null) => (b === null ? null : b ? ctx.t('はい', 'yes') : ctx.t('いいえ', 'no'));
  return [
    [{ ja: 'ID', en: 'ID' }, d.id],
    [{ ja: '端末番号', en: 'Device number' }, d.deviceNumber],
    [{ ja: 'シリアル番号', en: 'Serial number' }, d.serialNumber],
    [{ ja: 'UDID', en: 'UDID' }, d.udid],
    [{ ja: '名前', en: 'Name' }, d.name],
    [{ ja: '状態', en: 'Status' }, deviceStatusLabel(d.status, ctx.lang)],
    [{ ja: '機種', en: 'Model' }, [d.productName, d.model].filter(Boolean).join(' ')],
    [{ ja: 'iOS', en: 'iOS' }, d.osVersion],
    [{ ja: '監視対象', en: 'Supervised' }, yes(d.isSupervised)],
    [{ ja: '共有iPad', en: 'Shared iPad' }, yes(d.isSharedIPad)],
    [{ ja: 'グループ', en: 'Group' }, groupPath ? `${groupPath} (${d.groupId})` : d.groupId],
    [{ ja: '登録日時', en: 'Enrolled' }, when(d.enrolledAt)],
    [{ ja: '最終通信', en: 'Last seen' }, when(d.lastSeenAt)],
    [
      { ja: '識別証明書の有効期限', en: 'Identity expires' },
      d.identityNotAfter
        ? `${when(d.identityNotAfter)}${d.identityRenewalAt ? ctx.t(`（更新を送信済み ${when(d.identityRenewalAt)}）`, ` (renewal sent ${when(d.identityRenewalAt)})`) : ''}`
        : null,
    ],
  ];
}

interface DeviceDetail extends DeviceDoc {
  facts?: { at: string | null };
  installedApps?: { value: unknown; at: string | null };
  managedApps?: { value: unknown; at: string | null };
}

export async function devicesShow(ctx: Ctx, idOrSerial: string): Promise<void> {
  const found = await resolveDevice(ctx, idOrSerial);
  // A serial match comes from the list, which has no facts: read the full record.
  const d =
    'facts' in found ? (found as DeviceDetail) : await ctx.api.get<DeviceDetail>(`/devices/${found.id}`);
  if (ctx.json) return emit(ctx, d, () => '');
  const paths = await groupPaths(ctx);
  const count = (v: unknown) =>
    Array.isArray(v) ? v.length : v && typeof v === 'object' ? Object.keys(v).length : null;
  ctx.out(
    fields(
      [
        ...devicePairs(ctx, d, paths.get(d.groupId)),
        [{ ja: '端末情報の取得', en: 'Facts read' }, when(d.facts?.at)],
        [
          { ja: 'インストール済みアプリ', en: 'Installed apps' },
          d.installedApps?.at ? `${count(d.installedApps.value) ?? '-'} (${when(d.installedApps.at)})` : null,
        ],
        [
          { ja: '管理対象アプリ', en: 'Managed apps' },
          d.managedApps?.at ? `${count(d.managedApps.value) ?? '-'} (${when(d.managedApps.at)})` : null,
        ],
      ],
      ctx.lang,
    ),
  );
}

export async function devicesMove(ctx: Ctx, idOrSerial: string, o: { group: string }): Promise<void> {
  const device = await resolveDevice(ctx, idOrSerial);
  const d = await ctx.api.request<DeviceDoc>('PATCH', `/devices/${device.id}`, {
    body: { groupId: o.group },
  });
  if (ctx.json) return emit(ctx, d, () => '');
  const paths = await groupPaths(ctx);
  ctx.out(ctx.t('端末を移動しました。', 'Device moved.'));
  ctx.out(fields(devicePairs(ctx, d, paths.get(d.groupId)), ctx.lang));
}

export async function devicesDeactivate(ctx: Ctx, idOrSerial: string): Promise<void> {
  const device = await resolveDevice(ctx, idOrSerial);
  const r = await ctx.api.post<{ device: DeviceDoc; reclaimedLicenses: number }>(
    `/devices/${device.id}/deactivate`,
  );
  emit(ctx, r, () =>
    ctx.t(
      `端末 ${r.device.serialNumber ?? r.device.id} を無効化しました。回収したライセンス: ${r.reclaimedLicenses}`,
      `Device ${r.device.serialNumber ?? r.device.id} deactivated. Licences reclaimed: ${r.reclaimedLicenses}`,
    ),
  );
}

import { bytes, table } from '../output.ts';
import { CliError, EXIT, usageError } from '../client.ts';
import { emit, renderLicenseChange } from './common.ts';
import type { Ctx, LicenseChangeDoc } from './common.ts';

interface AssetDoc {
  adamId: string;
  name: string | null;
  bundleId: string | null;
  productType: string | null;
  totalCount: number;
  assignedCount: number;
  availableCount: number;
  deviceAssignable: boolean;
  sizeBytes: number | null;
  minimumOsVersion: string | null;
}

export async function appsLs(ctx: Ctx, o: { token: string }): Promise<void> {
  const doc = await ctx.api.get<{ items: AssetDoc[]; nextCursor: string | null }>(
    `/vpp-tokens/${encodeURIComponent(o.token)}/assets`,
  );
  emit(ctx, doc, () =>
    table(
      doc.items,
      [
        { header: { ja: 'Adam ID', en: 'Adam ID' }, value: (a) => a.adamId },
        { header: { ja: '名前', en: 'Name' }, value: (a) => a.name },
        { header: { ja: 'バンドルID', en: 'Bundle ID' }, value: (a) => a.bundleId },
        { header: { ja: '購入数', en: 'Total' }, value: (a) => a.totalCount, align: 'right' },
        { header: { ja: '割当済', en: 'Assigned' }, value: (a) => a.assignedCount, align: 'right' },
        { header: { ja: '残り', en: 'Available' }, value: (a) => a.availableCount, align: 'right' },
        {
          header: { ja: '端末割当', en: 'Device' },
          value: (a) => (a.deviceAssignable ? ctx.t('可', 'yes') : ctx.t('不可', 'no')),
        },
        { header: { ja: 'サイズ', en: 'Size' }, value: (a) => bytes(a.sizeBytes), align: 'right' },
        { header: { ja: '最低iOS', en: 'Min iOS' }, value: (a) => a.minimumOsVersion },
      ],
      ctx.lang,
    ),
  );
}

export async function licenses(
  ctx: Ctx,
  action: 'assign' | 'reclaim',
  serials: string[],
  o: { token: string; app: string },
): Promise<void> {
  if (!/^\d+$/.test(o.app))
    throw usageError('usage.adam_id', {
      ja: `--app には数字の Adam ID を指定してください: ${o.app}`,
      en: `--app takes a numeric Adam ID: ${o.app}`,
    });
  const change = await ctx.api.post<LicenseChangeDoc>(`/licenses/${action}`, {
    tokenId: o.token,
    adamId: o.app,
    serialNumbers: serials,
  });
  emit(ctx, change, () =>
    renderLicenseChange(
      ctx,
      change,
      action === 'assign' ? { ja: '割り当て', en: 'Assigned' } : { ja: '回収', en: 'Reclaimed' },
    ),
  );
  if (change.failed.length > 0) {
    // Apple refused part of the batch: the server answered, but not everything was done.
    const detail = change.failed
      .map((f) => `${f.kind}${f.errorNumber === null ? '' : ` ${f.errorNumber}`}: ${f.serials.join(' ')}`)
      .join('; ');
    throw new CliError(EXIT.refused, 'license.partial', {
      ja: `Apple が一部のライセンス変更を拒否しました（${detail}）。`,
      en: `Apple refused part of the licence change (${detail}).`,
    });
  }
}

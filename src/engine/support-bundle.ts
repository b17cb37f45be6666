import { JOB_STATUSES } from '../core/jobs.ts';
import type { JobStatus } from '../core/jobs.ts';
import type { Bilingual } from '../core/messages.ts';
import { jobStatusLabel } from '../diagnosis/catalogue.ts';
import type { Cause } from '../diagnosis/index.ts';
import type { JobRow } from '../store/job-repo.ts';
import type { Store } from '../store/store.ts';
import type { DistributionEngine } from './engine.ts';
import type { VppTokens } from './vpp-tokens.ts';

export const SUPPORT_BUNDLE_FORMAT = 'haishin.support-bundle/1';

interface ChainEntry {
  code: number | null;
  domain: string | null;
  description: string | null;
}

/**
 * Everything a support desk needs about one job (DESIGN §5), and nothing secret: the token
 * appears by id, organisation, location, expiry and state — never its sToken or notification
 * bearer, which are not even read here.
 */
export interface SupportBundle {
  format: typeof SUPPORT_BUNDLE_FORMAT;
  generatedAt: string;
  /** The haishin instance id (setting `instance.id`), also sent to Apple as `mdmInfo.id`. */
  accountId: string | null;
  token: {
    id: string;
    groupId: string;
    orgName: string;
    locationName: string | null;
    expiresAt: string;
    state: string;
    claimState: string;
    lastSyncedAt: string | null;
  } | null;
  app: {
    adamId: string;
    name: string | null;
    bundleId: string | null;
    productType: string | null;
    sizeBytes: number | null;
    minimumOsVersion: string | null;
    availableCount: number | null;
    totalCount: number | null;
  };
  device: {
    id: string;
    deviceNumber: number;
    serialNumber: string | null;
    udid: string;
    model: string | null;
    productName: string | null;
    osVersion: string | null;
    status: string;
    isSharedIPad: boolean;
    isSupervised: boolean | null;
    groupId: string;
    lastSeenAt: string | null;
  } | null;
  licence: { state: string; origin: string; errorCode: number | null; updatedAt: string } | null;
  distribution: {
    id: string;
    kind: string;
    licenseMode: string;
    createdAt: string;
    createdBy: string;
  } | null;
  job: {
    id: string;
    kind: string;
    status: string;
    statusLabel: Bilingual;
    reason: string | null;
    retryCount: number;
    attempt: number;
    commandUuid: string | null;
    createdAt: string;
    updatedAt: string;
    history: { from: string | null; to: string; at: string; reason: string | null }[];
  };
  error: {
    /** Top first, as `domain:code`. */
    codes: string[];
    chain: ChainEntry[];
    rejectionReason: string | null;
    managedStatus: string | null;
    vppErrorNumber: number | null;
    /** The device's report as received (plist), holding the raw ErrorChain. */
    raw: string | null;
  } | null;
  causes: Cause[];
}

const isJobStatus = (s: string): s is JobStatus => (JOB_STATUSES as readonly string[]).includes(s);

export async function buildSupportBundle(
  o: { store: Store; tokens: VppTokens; engine: DistributionEngine; now: Date },
  job: JobRow,
): Promise<SupportBundle> {
  const { store } = o;
  const [device, tokenRow, asset, distribution, history, accountId] = await Promise.all([
    store.devices.get(job.device_id),
    store.vpp.getToken(job.token_id),
    store.vpp.asset(job.token_id, job.adam_id),
    store.jobs.getDistribution(job.distribution_id),
    store.jobs.history(job.id),
    store.getSetting('instance.id'),
  ]);
  const view = tokenRow ? await o.tokens.view(tokenRow) : null;
  const [licence] = device?.serial_number
    ? await store.vpp.licenses({
        tokenId: job.token_id,
        adamId: job.adam_id,
        serialNumber: device.serial_number,
      })
    : [];
  const causes = await o.engine.diagnose(job);
  return {
    format: SUPPORT_BUNDLE_FORMAT,
    generatedAt: o.now.toISOString(),
    accountId,
    token:
      tokenRow && view
        ? {
            id: tokenRow.id,
            groupId: tokenRow.group_id,
            orgName: tokenRow.org_name,
            locationName: tokenRow.location_name,
            expiresAt: tokenRow.expires_at,
            state: view.state,
            claimState: tokenRow.claim_state,
            lastSyncedAt: tokenRow.last_synced_at,
          }
        : null,
    app: {
      adamId: job.adam_id,
      name: asset?.name ?? null,
      bundleId: job.bundle_id ?? asset?.bundle_id ?? null,
      productType: asset?.product_type ?? null,
      sizeBytes: asset?.size_bytes ?? null,
      minimumOsVersion: asset?.minimum_os_version ?? null,
      availableCount: asset?.available_count ?? null,
      totalCount: asset?.total_count ?? null,
    },
    device: device
      ? {
          id: device.id,
          deviceNumber: device.device_number,
          serialNumber: device.serial_number,
          udid: device.udid,
          model: device.model_name ?? device.model,
          productName: device.product_name,
          osVersion: device.os_version,
          status: device.status,
          isSharedIPad: device.is_shared_ipad === 1,
          isSupervised: device.is_supervised === null ? null : device.is_supervised === 1,
          groupId: device.group_id,
          lastSeenAt: device.last_seen_at,
        }
      : null,
    licence: licence
      ? {
          state: licence.state,
          origin: licence.origin,
          errorCode: licence.error_code,
          updatedAt: licence.updated_at,
        }
      : null,
    distribution: distribution
      ? {
          id: distribution.id,
          kind: distribution.kind,
          licenseMode: distribution.license_mode,
          createdAt: distribution.created_at,
          createdBy: distribution.created_by,
        }
      : null,
    job: {
      id: job.id,
      kind: job.kind,
      status: job.status,
      statusLabel: isJobStatus(job.status)
        ? jobStatusLabel(job.status, job.retry_count)
        : { ja: job.status, en: job.status },
      reason: job.reason,
      retryCount: job.retry_count,
      attempt: job.attempt,
      commandUuid: job.command_uuid,
      createdAt: job.created_at,
      updatedAt: job.updated_at,
      history: history.map((h) => ({ from: h.from_status, to: h.to_status, at: h.at, reason: h.reason })),
    },
    error: storedError(job.error),
    causes,
  };
}

function storedError(text: string | null): SupportBundle['error'] {
  if (!text) return null;
  let e: Record<string, unknown>;
  try {
    e = JSON.parse(text) as Record<string, unknown>;
  } catch {
    return {
      codes: [],
      chain: [],
      rejectionReason: null,
      managedStatus: null,
      vppErrorNumber: null,
      raw: text,
    };
  }
  const chain: ChainEntry[] = Array.isArray(e.chain)
    ? (e.chain as Record<string, unknown>[]).map((c) => ({
        code: typeof c.code === 'number' ? c.code : null,
        domain: typeof c.domain === 'string' ? c.domain : null,
        description: typeof c.description === 'string' ? c.description : null,
      }))
    : [];
  const vppErrorNumber = typeof e.errorNumber === 'number' ? e.errorNumber : null;
  const codes = chain.map((c) => `${c.domain ?? '?'}:${c.code ?? '?'}`);
  if (vppErrorNumber !== null) codes.push(`AppsAndBooks:${vppErrorNumber}`);
  return {
    codes,
    chain,
    rejectionReason: typeof e.rejectionReason === 'string' ? e.rejectionReason : null,
    managedStatus: typeof e.managedStatus === 'string' ? e.managedStatus : null,
    vppErrorNumber,
    raw: typeof e.raw === 'string' ? e.raw : null,
  };
}

const show = (v: string | number | boolean | null | undefined): string =>
  v === null || v === undefined || v === '' ? '-' : String(v);

/** The bundle as text to paste into a support ticket: bilingual headings, both languages for causes. */
export function supportBundleText(b: SupportBundle): string {
  const lines: string[] = [];
  const section = (ja: string, en: string) => lines.push('', `== ${ja} / ${en} ==`);
  const field = (ja: string, en: string, value: string | number | boolean | null | undefined) =>
    lines.push(`${ja} / ${en}: ${show(value)}`);

  lines.push('haishin サポート情報 / Support bundle');
  field('形式', 'Format', b.format);
  field('作成日時', 'Generated at', b.generatedAt);
  field('アカウントID', 'Account ID', b.accountId);

  section('VPPトークン', 'VPP token');
  if (b.token) {
    field('ID', 'ID', b.token.id);
    field('組織', 'Organization', b.token.orgName);
    field('ロケーション', 'Location', b.token.locationName);
    field('有効期限', 'Expires at', b.token.expiresAt);
    field('状態', 'State', b.token.state);
    field('管理状態', 'Claim', b.token.claimState);
    field('最終同期', 'Last synced', b.token.lastSyncedAt);
    field('登録グループ', 'Registered group', b.token.groupId);
  } else lines.push('(なし / none)');

  section('アプリ', 'App');
  field('名前', 'Name', b.app.name);
  field('Adam ID', 'Adam ID', b.app.adamId);
  field('バンドルID', 'Bundle ID', b.app.bundleId);
  field('サイズ(バイト)', 'Size (bytes)', b.app.sizeBytes);
  field('最低OS', 'Minimum OS', b.app.minimumOsVersion);
  field(
    'ライセンス残数/総数',
    'Licences available/total',
    `${show(b.app.availableCount)}/${show(b.app.totalCount)}`,
  );

  section('端末', 'Device');
  if (b.device) {
    field('端末番号', 'Device number', b.device.deviceNumber);
    field('シリアル番号', 'Serial number', b.device.serialNumber);
    field('UDID', 'UDID', b.device.udid);
    field('機種', 'Model', b.device.model);
    field('製品名', 'Product', b.device.productName);
    field('OS', 'OS', b.device.osVersion);
    field('状態', 'Status', b.device.status);
    field('共有iPad', 'Shared iPad', b.device.isSharedIPad);
    field('監視対象', 'Supervised', b.device.isSupervised);
    field('最終接続', 'Last seen', b.device.lastSeenAt);
  } else lines.push('(なし / none)');
  if (b.licence) {
    field('ライセンス', 'Licence', `${b.licence.state} (${b.licence.origin})`);
    field('ライセンスのエラー', 'Licence error', b.licence.errorCode);
  }

  section('ジョブ', 'Job');
  field('ID', 'ID', b.job.id);
  field(
    '配信',
    'Distribution',
    b.distribution ? `${b.distribution.id} (${b.distribution.kind}, ${b.distribution.licenseMode})` : null,
  );
  field('状態', 'Status', `${b.job.status} — ${b.job.statusLabel.ja} / ${b.job.statusLabel.en}`);
  field('理由', 'Reason', b.job.reason);
  field('リトライ回数', 'Retries', b.job.retryCount);
  field('試行', 'Attempt', b.job.attempt);
  field('コマンドUUID', 'Command UUID', b.job.commandUuid);
  lines.push('ステータス履歴 / Status history:');
  for (const h of b.job.history)
    lines.push(`  ${h.at}  ${show(h.from)} -> ${h.to}${h.reason ? `  (${h.reason})` : ''}`);

  section('エラー', 'Error');
  if (b.error) {
    field('エラーコード', 'Error codes', b.error.codes.join(', '));
    b.error.chain.forEach((c, i) =>
      lines.push(`  ErrorChain[${i}]: ${show(c.domain)} ${show(c.code)}: ${show(c.description)}`),
    );
    if (b.error.rejectionReason) field('拒否理由', 'RejectionReason', b.error.rejectionReason);
    if (b.error.managedStatus) field('管理状態', 'Managed app status', b.error.managedStatus);
    if (b.error.raw) lines.push('生データ / Raw report:', b.error.raw.trimEnd());
  } else lines.push('(なし / none)');

  section('見つかった原因', 'Causes found');
  if (b.causes.length === 0) lines.push('(なし / none)');
  b.causes.forEach((c, i) => {
    lines.push(`${i + 1}. ${c.code} [${c.confidence}]`);
    lines.push(`   ${c.title.ja}`, `   ${c.title.en}`);
    lines.push(`   対処: ${c.remedy.ja}`, `   Remedy: ${c.remedy.en}`);
    for (const ev of c.evidence)
      lines.push(`   根拠 / Evidence: ${ev.fact} = ${show(ev.value)} (${ev.source})`);
    if (c.actions.length > 0) lines.push(`   操作 / Actions: ${c.actions.join(', ')}`);
  });
  return lines.join('\n') + '\n';
}

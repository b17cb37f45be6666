import { JOB_STATUSES } from '../../core/jobs.ts';
import type { JobStatus } from '../../core/jobs.ts';
import { jobStatusLabel } from '../../diagnosis/catalogue.ts';
import { CliError, usageError } from '../client.ts';
import type { ApiClient } from '../client.ts';
import { fields, pick } from '../output.ts';
import type { Lang, Texts } from '../output.ts';

/** What every admin sub-command gets: the API, the language and the output mode. */
export interface Ctx {
  api: ApiClient;
  lang: Lang;
  json: boolean;
  /** One line (or block) on stdout. */
  out(text: string): void;
  t(ja: string, en: string): string;
}

/** `--json` prints the API's document as is; otherwise the human form. */
export function emit(ctx: Ctx, doc: unknown, human: () => string): void {
  ctx.out(ctx.json ? JSON.stringify(doc, null, 2) : human());
}

export interface GroupDoc {
  id: string;
  name: string;
  parentId: string | null;
  path: string[];
  createdAt: string;
  updatedAt: string;
}

export interface DeviceDoc {
  id: string;
  deviceNumber: number;
  udid: string;
  serialNumber: string | null;
  groupId: string;
  status: string;
  name: string | null;
  model: string | null;
  osVersion: string | null;
  productName: string | null;
  isSupervised: boolean | null;
  isSharedIPad: boolean;
  lastSeenAt: string | null;
  enrolledAt: string | null;
  checkedOutAt: string | null;
  /** When the identity the device signs with expires (decision 0023). */
  identityNotAfter?: string | null;
  /** A renewed identity sent then and not used yet. */
  identityRenewalAt?: string | null;
}

export interface TokenDoc {
  id: string;
  groupId: string;
  orgName: string;
  locationName: string | null;
  expiresAt: string;
  state: string;
  daysLeft: number;
  expiryWarningDays: number | null;
  sharedTo: string[];
  lastSyncedAt: string | null;
}

export interface ChainItem {
  code: number | null;
  domain: string | null;
  description: string | null;
}

export interface JobDoc {
  id: string;
  distributionId: string;
  deviceId: string;
  adamId: string;
  kind: string;
  status: string;
  reason: string | null;
  retryCount: number;
  attempt: number;
  updatedAt: string;
  error: { chain: ChainItem[]; rejectionReason: string | null } | null;
}

export interface CauseDoc {
  code: string;
  confidence: 'confirmed' | 'likely' | 'possible';
  title: Texts;
  remedy: Texts;
  evidence: { fact: string; value: string | number | boolean | null; source: string }[];
  actions: string[];
}

export interface LicenseChangeDoc {
  tokenId: string;
  adamId: string;
  serials: string[];
  eventIds: string[];
  failed: { serials: string[]; kind: string; errorNumber: number | null }[];
}

const DEVICE_STATUS: Record<string, Texts> = {
  pending: { ja: '登録待ち', en: 'Pending' },
  enrolled: { ja: '登録済み', en: 'Enrolled' },
  unenrolled: { ja: '登録解除', en: 'Unenrolled' },
  deactivated: { ja: '無効化', en: 'Deactivated' },
};

const TOKEN_STATE: Record<string, Texts> = {
  active: { ja: '有効', en: 'Active' },
  expiring: { ja: 'まもなく期限切れ', en: 'Expiring' },
  expired: { ja: '期限切れ', en: 'Expired' },
  revoked: { ja: '失効', en: 'Revoked' },
  invalid: { ja: '無効', en: 'Invalid' },
  other_mdm: { ja: '他のMDMが管理中', en: 'Claimed by another MDM' },
  legacy_unmigrated: { ja: '未移行（旧形式）', en: 'Not migrated (legacy)' },
};

const CONFIDENCE: Record<CauseDoc['confidence'], Texts> = {
  confirmed: { ja: '確定', en: 'confirmed' },
  likely: { ja: '可能性が高い', en: 'likely' },
  possible: { ja: '可能性あり', en: 'possible' },
};

export const deviceStatusLabel = (status: string, lang: Lang) => DEVICE_STATUS[status]?.[lang] ?? status;
export const tokenStateLabel = (state: string, lang: Lang) => TOKEN_STATE[state]?.[lang] ?? state;
export const DEVICE_STATUSES = Object.keys(DEVICE_STATUS);

export const isJobStatus = (s: string): s is JobStatus => (JOB_STATUSES as readonly string[]).includes(s);

export function jobLabel(status: string, lang: Lang, retryCount?: number): string {
  return isJobStatus(status) ? jobStatusLabel(status, retryCount)[lang] : status;
}

export function checkChoice(what: Texts, value: string | undefined, allowed: readonly string[]): void {
  if (value === undefined || allowed.includes(value)) return;
  throw usageError('usage.invalid_value', {
    ja: `${what.ja}「${value}」は使えません。使える値: ${allowed.join(', ')}`,
    en: `${what.en} "${value}" is not valid; use one of: ${allowed.join(', ')}`,
  });
}

export function positiveInt(what: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value) || Number(value) < 1)
    throw usageError('usage.invalid_number', {
      ja: `${what} には 1 以上の整数を指定してください: ${value}`,
      en: `${what} must be a whole number of at least 1: ${value}`,
    });
  return Number(value);
}

/** An id, or else the serial number an administrator reads off the back of the iPad. */
export async function resolveDevice(ctx: Ctx, idOrSerial: string): Promise<DeviceDoc> {
  try {
    return await ctx.api.get<DeviceDoc>(`/devices/${encodeURIComponent(idOrSerial)}`);
  } catch (err) {
    if (!(err instanceof CliError) || err.code !== 'device.not_found') throw err;
    const bySerial = await ctx.api.get<{ items: DeviceDoc[] }>('/devices', {
      serialNumber: idOrSerial,
      limit: 2,
    });
    if (bySerial.items.length === 1) return bySerial.items[0]!;
    throw err;
  }
}

export const chainLine = (c: ChainItem) =>
  `${c.domain ?? '?'} ${c.code ?? '?'}${c.description ? `: ${c.description}` : ''}`;

/** Causes best first: title, confidence, remedy, evidence, what can be done through the API. */
export function renderCauses(causes: readonly CauseDoc[], lang: Lang): string {
  if (causes.length === 0)
    return pick(lang, {
      ja: '原因を特定できませんでした。サポートバンドル（haishin support-bundle <ジョブ>）を添えてお問い合わせください。',
      en: 'No cause could be identified. Contact support with the support bundle (haishin support-bundle <job>).',
    });
  const t = (ja: string, en: string) => pick(lang, { ja, en });
  return causes
    .map((c, i) => {
      const lines = [
        `${i + 1}. ${c.title[lang]}  [${CONFIDENCE[c.confidence]?.[lang] ?? c.confidence}] ${c.code}`,
      ];
      lines.push(`   ${t('対処', 'Remedy')}: ${c.remedy[lang]}`);
      if (c.evidence.length > 0) {
        lines.push(`   ${t('根拠', 'Evidence')}:`);
        for (const e of c.evidence) lines.push(`     - ${e.fact}: ${String(e.value)} (${e.source})`);
      }
      if (c.actions.length > 0) lines.push(`   ${t('操作', 'Actions')}: ${c.actions.join(', ')}`);
      return lines.join('\n');
    })
    .join('\n\n');
}

export function renderLicenseChange(ctx: Ctx, change: LicenseChangeDoc, verb: Texts): string {
  const lines = [
    fields(
      [
        [{ ja: 'トークン', en: 'Token' }, change.tokenId],
        [{ ja: 'アプリ', en: 'App' }, change.adamId],
        [verb, change.serials.length],
        [{ ja: '失敗', en: 'Failed' }, change.failed.reduce((n, f) => n + f.serials.length, 0)],
      ],
      ctx.lang,
    ),
  ];
  return lines.join('\n');
}

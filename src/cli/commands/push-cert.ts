import { readFileSync } from 'node:fs';
import { usageError } from '../client.ts';
import { fields, when } from '../output.ts';
import { emit } from './common.ts';
import type { Ctx } from './common.ts';

/** `haishin push-cert show|replace` over `/api/v1/push-certificate` (decision 0022). */

interface PushCertDoc {
  topic: string;
  subject: string;
  notAfter: string;
  daysLeft: number;
  expiryWarningDays: number | null;
  source: string;
  uploadedAt: string | null;
  previousTopic?: string;
  topicChanged?: boolean;
}

function read(ctx: Ctx, file: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    throw usageError('usage.unreadable_file', {
      ja: `${file} を読めません: ${(err as Error).message}`,
      en: `${file} cannot be read: ${(err as Error).message}`,
    });
  }
}

function describe(ctx: Ctx, d: PushCertDoc): string {
  return fields(
    [
      [{ ja: 'トピック', en: 'Topic' }, d.topic],
      [{ ja: 'サブジェクト', en: 'Subject' }, d.subject],
      [
        { ja: '有効期限', en: 'Expires' },
        `${when(d.notAfter)} (${ctx.t(`残り ${d.daysLeft} 日`, `${d.daysLeft} days left`)})`,
      ],
      [{ ja: '出所', en: 'Source' }, d.source === 'uploaded' ? ctx.t('アップロード', 'uploaded') : d.source],
    ],
    ctx.lang,
  );
}

export async function pushCertShow(ctx: Ctx): Promise<void> {
  const d = await ctx.api.get<PushCertDoc>('/push-certificate');
  emit(ctx, d, () => describe(ctx, d));
}

export async function pushCertReplace(
  ctx: Ctx,
  o: { cert?: string; key?: string; p12?: string; password?: string; force?: boolean },
): Promise<void> {
  let body: Record<string, unknown>;
  if (o.p12 !== undefined && o.cert === undefined && o.key === undefined) {
    body = { pkcs12: read(ctx, o.p12).toString('base64'), password: o.password ?? '' };
  } else if (o.cert !== undefined && o.key !== undefined && o.p12 === undefined) {
    body = { certPem: read(ctx, o.cert).toString('utf8'), keyPem: read(ctx, o.key).toString('utf8') };
  } else {
    throw usageError('usage.push_cert_files', {
      ja: '--cert <証明書.pem> と --key <鍵.pem>、または --p12 <ファイル.p12>（--password）のどちらかを指定してください。',
      en: 'Give --cert <certificate.pem> and --key <key.pem>, or --p12 <file.p12> (with --password).',
    });
  }
  if (o.force) body.force = true;
  const d = await ctx.api.request<PushCertDoc>('PUT', '/push-certificate', { body });
  emit(ctx, d, () =>
    [
      d.topicChanged
        ? ctx.t(
            `プッシュ証明書を置き換えました。トピックが ${d.previousTopic} から変わりました。すべての端末を登録し直してください。`,
            `Push certificate replaced. Its topic changed from ${d.previousTopic}: every device must enroll again.`,
          )
        : ctx.t(
            'プッシュ証明書を置き換えました（再起動は不要です）。',
            'Push certificate replaced (no restart needed).',
          ),
      describe(ctx, d),
    ].join('\n'),
  );
}

import { useState } from 'react';
import { useCan } from '../me.tsx';
import qrcode from 'qrcode-generator';
import { api, get, post } from '../api.ts';
import type { Page } from '../api.ts';
import type { Bilingual } from '../messages.ts';
import { ErrorLine, Time, useLoad, useT } from '../ui.tsx';

/** One enrollment link as GET /groups/:id/enrollment-links lists it (decision 0022): never its secret. */
interface EnrollmentLink {
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

// This section's words, here rather than in messages.ts: they are used nowhere else.
const W = {
  title: { ja: '登録用リンク', en: 'Enrollment links' },
  help: {
    ja: '端末はこのリンク（秘密のトークン入り）を開いて登録します。グループIDだけでは登録できません。',
    en: 'Devices enroll by opening one of these links (each holds a secret token); a group id alone does not enroll.',
  },
  none: { ja: '登録用リンクはまだありません。', en: 'No enrollment link yet.' },
  label: { ja: 'ラベル', en: 'Label' },
  state: { ja: '状態', en: 'State' },
  uses: { ja: '利用回数', en: 'Uses' },
  expires: { ja: '有効期限', en: 'Expires' },
  created: { ja: '作成', en: 'Created' },
  never: { ja: 'なし', en: 'never' },
  revoke: { ja: '無効にする', en: 'Revoke' },
  revokeConfirm: {
    ja: 'このリンクを無効にしますか？ 登録済みの端末はそのまま管理されます。',
    en: 'Revoke this link? Devices already enrolled stay managed.',
  },
  create: { ja: 'リンクを作成', en: 'Create link' },
  expiresIn: { ja: '有効期間', en: 'Valid for' },
  maxUses: { ja: '回数の上限（空欄で無制限）', en: 'Uses allowed (empty: no limit)' },
  shownOnce: {
    ja: 'このリンクが表示されるのは今回だけです（haishin にはハッシュしか残りません）。コピーするか、QR コードを端末のカメラで読み取ってください。',
    en: 'This is the only time this link is shown (haishin keeps only its hash). Copy it, or scan the QR code with the device camera.',
  },
  copy: { ja: 'コピー', en: 'Copy' },
  copied: { ja: 'コピーしました', en: 'Copied' },
  hide: { ja: '閉じる', en: 'Close' },
  active: { ja: '有効', en: 'Active' },
  expired: { ja: '期限切れ', en: 'Expired' },
  used_up: { ja: '回数上限', en: 'Used up' },
  revoked: { ja: '無効化済み', en: 'Revoked' },
} satisfies Record<string, Bilingual>;

const DURATIONS = [
  { value: '', label: { ja: '無期限', en: 'No expiry' } },
  { value: '1d', label: { ja: '1日', en: '1 day' } },
  { value: '7d', label: { ja: '7日', en: '7 days' } },
  { value: '30d', label: { ja: '30日', en: '30 days' } },
  { value: '90d', label: { ja: '90日', en: '90 days' } },
];

/** The link as a QR code (SVG, black on white with a quiet zone) for a device camera. */
function QrCode({ text }: { text: string }) {
  const qr = qrcode(0, 'M');
  qr.addData(text, 'Byte');
  qr.make();
  const n = qr.getModuleCount();
  const quiet = 4;
  let d = '';
  for (let r = 0; r < n; r++)
    for (let c = 0; c < n; c++) if (qr.isDark(r, c)) d += `M${c + quiet},${r + quiet}h1v1h-1z`;
  const size = n + quiet * 2;
  return (
    <svg
      className="qr"
      data-qr=""
      role="img"
      aria-label={text}
      viewBox={`0 0 ${size} ${size}`}
      width={size * 5}
      height={size * 5}
      shapeRendering="crispEdges"
    >
      <rect width={size} height={size} fill="#fff" />
      <path d={d} fill="#000" />
    </svg>
  );
}

/** A group's enrollment links: list, create (the URL and QR shown once), revoke. */
export function EnrollmentLinks({ groupId }: { groupId: string }) {
  const { can } = useCan();
  const { pick } = useT();
  const links = useLoad(
    () => get<Page<EnrollmentLink>>(`/groups/${encodeURIComponent(groupId)}/enrollment-links`),
    [groupId],
  );
  const [label, setLabel] = useState('');
  const [expiresIn, setExpiresIn] = useState('7d');
  const [maxUses, setMaxUses] = useState('');
  const [created, setCreated] = useState<{ url: string } | null>(null);
  const [copied, setCopied] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);

  const create = async () => {
    setError(null);
    setBusy(true);
    try {
      const uses = maxUses.trim() === '' ? undefined : Number(maxUses);
      const link = await post<EnrollmentLink & { url: string }>(
        `/groups/${encodeURIComponent(groupId)}/enrollment-links`,
        {
          ...(label.trim() ? { label: label.trim() } : {}),
          ...(expiresIn ? { expiresIn } : {}),
          ...(uses !== undefined ? { maxUses: uses } : {}),
        },
      );
      setCreated({ url: link.url });
      setCopied(false);
      setLabel('');
      links.reload();
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };

  const revoke = async (id: string) => {
    if (!window.confirm(pick(W.revokeConfirm))) return;
    setError(null);
    try {
      await api('POST', `/enrollment-links/${encodeURIComponent(id)}/revoke`);
      links.reload();
    } catch (err) {
      setError(err);
    }
  };

  return (
    <div className="enrollment-links" data-enrollment-links={groupId}>
      <h3>{pick(W.title)}</h3>
      <p className="muted">{pick(W.help)}</p>
      {created && (
        <div className="note ok" data-created-link="">
          <p>{pick(W.shownOnce)}</p>
          <p>
            <code data-link-url="">{created.url}</code>{' '}
            <button
              type="button"
              onClick={() =>
                void navigator.clipboard?.writeText(created.url).then(
                  () => setCopied(true),
                  () => setCopied(false),
                )
              }
            >
              {copied ? pick(W.copied) : pick(W.copy)}
            </button>{' '}
            <button type="button" className="link" onClick={() => setCreated(null)}>
              {pick(W.hide)}
            </button>
          </p>
          <QrCode text={created.url} />
        </div>
      )}
      {can('manage') && (
        <form
          className="inline"
          onSubmit={(e) => {
            e.preventDefault();
            void create();
          }}
        >
          <label>
            {pick(W.label)}{' '}
            <input value={label} maxLength={200} onChange={(e) => setLabel(e.target.value)} name="label" />
          </label>{' '}
          <label>
            {pick(W.expiresIn)}{' '}
            <select value={expiresIn} onChange={(e) => setExpiresIn(e.target.value)} name="expiresIn">
              {DURATIONS.map((d) => (
                <option key={d.value} value={d.value}>
                  {pick(d.label)}
                </option>
              ))}
            </select>
          </label>{' '}
          <label>
            {pick(W.maxUses)}{' '}
            <input
              type="number"
              min={1}
              value={maxUses}
              onChange={(e) => setMaxUses(e.target.value)}
              name="maxUses"
              style={{ width: '6em' }}
            />
          </label>{' '}
          <button type="submit" disabled={busy}>
            {pick(W.create)}
          </button>
        </form>
      )}
      <ErrorLine error={error ?? links.error} />
      {links.data && links.data.items.length === 0 && <p className="muted">{pick(W.none)}</p>}
      {links.data && links.data.items.length > 0 && (
        <table>
          <thead>
            <tr>
              <th>{pick(W.label)}</th>
              <th>{pick(W.state)}</th>
              <th>{pick(W.uses)}</th>
              <th>{pick(W.expires)}</th>
              <th>{pick(W.created)}</th>
              <th />
            </tr>
          </thead>
          <tbody>
            {links.data.items.map((l) => (
              <tr key={l.id} data-link={l.id} data-state={l.state}>
                <td>{l.label ?? '—'}</td>
                <td>{pick(W[l.state])}</td>
                <td>
                  {l.useCount}
                  {l.maxUses !== null ? ` / ${l.maxUses}` : ''}
                </td>
                <td>{l.expiresAt ? <Time iso={l.expiresAt} /> : pick(W.never)}</td>
                <td>
                  <Time iso={l.createdAt} />
                </td>
                <td>
                  {l.state !== 'revoked' && can('manage') && (
                    <button type="button" onClick={() => void revoke(l.id)}>
                      {pick(W.revoke)}
                    </button>
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </div>
  );
}

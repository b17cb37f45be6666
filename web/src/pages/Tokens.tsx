import { Fragment, useState } from 'react';
import { useCan } from '../me.tsx';
import { allGroups, get, post, qs } from '../api.ts';
import type { Asset, Page, Token } from '../api.ts';
import { TOKEN_STATE_LABELS } from '../messages.ts';
import { ErrorLine, Loading, Time, useLoad, useT } from '../ui.tsx';

const stateLabel = (state: string, lang: 'ja' | 'en') =>
  (TOKEN_STATE_LABELS as Record<string, { ja: string; en: string }>)[state]?.[lang] ?? state;

function Assets({ tokenId }: { tokenId: string }) {
  const { t } = useT();
  const assets = useLoad(
    () => get<Page<Asset>>(`/vpp-tokens/${encodeURIComponent(tokenId)}/assets${qs({ limit: 100 })}`),
    [tokenId],
  );
  if (assets.error) return <ErrorLine error={assets.error} />;
  if (!assets.data) return <Loading when />;
  return (
    <table className="list assets">
      <thead>
        <tr>
          <th>Adam ID</th>
          <th>{t('name')}</th>
          <th>Bundle ID</th>
          <th className="num">{t('licences')}</th>
        </tr>
      </thead>
      <tbody>
        {assets.data.items.map((a) => (
          <tr key={`${a.adamId}-${a.pricingParam}`} className={a.availableCount <= 0 ? 'warn' : ''}>
            <td>{a.adamId}</td>
            <td>{a.name ?? '—'}</td>
            <td>{a.bundleId ?? '—'}</td>
            <td className="num">
              {a.assignedCount} / {a.totalCount} ({a.availableCount})
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

export function TokensPage() {
  const { can } = useCan();
  const { t, lang } = useT();
  const data = useLoad(
    async () => ({ tokens: (await get<Page<Token>>('/vpp-tokens')).items, groups: await allGroups() }),
    [],
  );
  const [open, setOpen] = useState<string | null>(null);
  const [note, setNote] = useState('');
  const [actionError, setActionError] = useState<unknown>(null);
  const groupName = (id: string) =>
    data.data?.groups.find((g) => g.id === id)?.path.join(' / ') ?? id.slice(0, 8);
  const sync = async (id: string) => {
    setActionError(null);
    try {
      const r = await post<{ assets: number }>(`/vpp-tokens/${encodeURIComponent(id)}/sync`);
      setNote(t('syncedN', { n: r.assets }));
      data.reload();
    } catch (err) {
      setActionError(err);
    }
  };
  const tokens = data.data?.tokens ?? [];
  return (
    <section>
      <h1>{t('tokens')}</h1>
      <ErrorLine error={data.error} />
      <ErrorLine error={actionError} />
      {note && <p className="note">{note}</p>}
      <Loading when={data.loading && !data.data} />
      {data.data && tokens.length === 0 && <p className="muted">{t('noTokens')}</p>}
      {tokens.length > 0 && (
        <table className="list tokens">
          <thead>
            <tr>
              <th>{t('org')}</th>
              <th>{t('location')}</th>
              <th>{t('group')}</th>
              <th>{t('state')}</th>
              <th>{t('expires')}</th>
              <th className="num">{t('daysLeft')}</th>
              <th>{t('sharedTo')}</th>
              <th>{t('lastSynced')}</th>
              <th />
            </tr>
          </thead>
          <tbody>
            {tokens.map((tk) => {
              const warn = tk.expiryWarningDays !== null || tk.state !== 'active';
              return (
                <Fragment key={tk.id}>
                  <tr className={warn ? 'warn' : ''} data-token={tk.id}>
                    <td>{tk.orgName}</td>
                    <td>{tk.locationName ?? '—'}</td>
                    <td>{groupName(tk.groupId)}</td>
                    <td>
                      <span className={`badge tok-${tk.state}`}>{stateLabel(tk.state, lang)}</span>
                    </td>
                    <td>
                      <Time iso={tk.expiresAt} />
                    </td>
                    <td className="num">
                      {t('daysLeftN', { n: tk.daysLeft })}
                      {tk.expiryWarningDays !== null && (
                        <div className="warning" data-expiry-warning={tk.expiryWarningDays}>
                          {t('expiryWarning', { n: tk.expiryWarningDays })}
                        </div>
                      )}
                    </td>
                    <td>{tk.sharedTo.map(groupName).join(', ') || '—'}</td>
                    <td>
                      <Time iso={tk.lastSyncedAt} />
                    </td>
                    <td className="row-actions">
                      {can('operate') && (
                        <button type="button" onClick={() => void sync(tk.id)}>
                          {t('sync')}
                        </button>
                      )}
                      <button type="button" onClick={() => setOpen(open === tk.id ? null : tk.id)}>
                        {t('assets')}
                      </button>
                    </td>
                  </tr>
                  {open === tk.id && (
                    <tr>
                      <td colSpan={9}>
                        <Assets tokenId={tk.id} />
                      </td>
                    </tr>
                  )}
                </Fragment>
              );
            })}
          </tbody>
        </table>
      )}
    </section>
  );
}

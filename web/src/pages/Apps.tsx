import { useState } from 'react';
import { get, post } from '../api.ts';
import type { AppUpdate, Page, UpdateResult } from '../api.ts';
import { ErrorLine, Link, Loading, Time, useLoad, useT } from '../ui.tsx';

/**
 * Apps and updates (decision 0018): each app's newest App Store version, the devices per version
 * they report, and one button to update the devices on an older version.
 */
export function AppsPage() {
  const { t } = useT();
  const apps = useLoad(() => get<Page<AppUpdate>>('/apps'), []);
  const [busy, setBusy] = useState(false);
  const [note, setNote] = useState('');
  const [started, setStarted] = useState<UpdateResult | null>(null);
  const [actionError, setActionError] = useState<unknown>(null);

  const check = async () => {
    setBusy(true);
    setActionError(null);
    setStarted(null);
    try {
      const r = await post<{
        asked: number;
        newVersions: unknown[];
        autoUpdates: { jobCount: number }[];
      }>('/apps/check', {});
      setNote(
        t('checkedN', {
          asked: r.asked,
          n: r.newVersions.length,
          jobs: r.autoUpdates.reduce((n, u) => n + u.jobCount, 0),
        }),
      );
      apps.reload();
    } catch (err) {
      setActionError(err);
    } finally {
      setBusy(false);
    }
  };

  const update = async (a: AppUpdate) => {
    const message = t('confirmUpdate', {
      name: a.name ?? a.adamId,
      version: a.latestVersion ?? '',
      n: a.updatableDevices,
    });
    if (!window.confirm(message)) return;
    setBusy(true);
    setActionError(null);
    try {
      const r = await post<UpdateResult>(`/apps/${encodeURIComponent(a.adamId)}/update`, {});
      setStarted(r);
      setNote(
        r.jobCount > 0 ? t('updateStarted', { version: r.version, n: r.jobCount }) : t('updateNothing'),
      );
      apps.reload();
    } catch (err) {
      setActionError(err);
    } finally {
      setBusy(false);
    }
  };

  const items = apps.data?.items ?? [];
  return (
    <section>
      <h1>{t('appsTitle')}</h1>
      <p className="muted">{t('appsHelp')}</p>
      <p>
        <button type="button" disabled={busy} onClick={() => void check()} data-action="check-updates">
          {t('checkUpdates')}
        </button>
      </p>
      <ErrorLine error={apps.error} />
      <ErrorLine error={actionError} />
      {note && (
        <p className="note" data-note="updates">
          {note}{' '}
          {started?.distributions.map((d) => (
            <Link key={d.id} to={`/distributions/${encodeURIComponent(d.id)}`}>
              {t('distribution')} {d.id.slice(0, 8)}
            </Link>
          ))}
        </p>
      )}
      <Loading when={apps.loading && !apps.data} />
      {apps.data && items.length === 0 && <p className="muted">{t('noApps')}</p>}
      {items.length > 0 && (
        <table className="list apps">
          <thead>
            <tr>
              <th>{t('name')}</th>
              <th>Adam ID</th>
              <th>{t('latestVersion')}</th>
              <th>{t('previousVersion')}</th>
              <th>{t('versionSeenAt')}</th>
              <th>{t('devicesByVersion')}</th>
              <th className="num">{t('outdatedDevices')}</th>
              <th />
            </tr>
          </thead>
          <tbody>
            {items.map((a) => (
              <tr key={a.adamId} data-app={a.adamId} className={a.updateAvailable ? 'warn' : ''}>
                <td>{a.name ?? '—'}</td>
                <td>{a.adamId}</td>
                <td>
                  {a.latestVersion ?? <span className="muted">{t('versionUnknown')}</span>}{' '}
                  {a.latestVersion && (
                    <span className={`badge ${a.updateAvailable ? 'tok-expiring' : 'tok-active'}`}>
                      {a.updateAvailable ? t('updateAvailable') : t('upToDate')}
                    </span>
                  )}
                </td>
                <td>{a.previousVersion ?? '—'}</td>
                <td>
                  <Time iso={a.versionChangedAt} />
                </td>
                <td>
                  {a.versions.length === 0
                    ? '—'
                    : a.versions.map((v) => (
                        <span key={v.version ?? '?'} className={`tag${v.outdated ? ' outdated' : ''}`}>
                          {v.version ?? '?'} × {v.devices}
                        </span>
                      ))}
                </td>
                <td className="num" data-outdated={a.outdatedDevices}>
                  {a.outdatedDevices} / {a.installedDevices}
                </td>
                <td className="row-actions">
                  {a.updatableDevices > 0 && (
                    <button
                      type="button"
                      disabled={busy}
                      onClick={() => void update(a)}
                      data-update={a.adamId}
                    >
                      {t('updateN', { n: a.updatableDevices })}
                    </button>
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}

import { useState } from 'react';
import { useCan } from '../me.tsx';
import { appLabels, download, get, post, qs } from '../api.ts';
import type { Distribution, Job, Page } from '../api.ts';
import { useLive } from '../live.ts';
import { JOB_STATUSES, M, statusLabel } from '../messages.ts';
import {
  AppRef,
  CountsLegend,
  DeviceRef,
  ErrorLine,
  LiveBadge,
  Link,
  Loading,
  Pager,
  StatusBadge,
  StatusBar,
  Time,
  short,
  totalOf,
  useCursor,
  useLoad,
  useT,
} from '../ui.tsx';

const PAGE = 100;

export function DistributionPage({ id }: { id: string }) {
  const { can } = useCan();
  const { t, lang } = useT();
  const [status, setStatus] = useState('');
  const pager = useCursor(`${id}|${status}`);
  const dist = useLoad(() => get<Distribution>(`/distributions/${encodeURIComponent(id)}`), [id]);
  const jobs = useLoad(
    () => get<Page<Job>>(`/jobs${qs({ distributionId: id, status, limit: PAGE, cursor: pager.cursor })}`),
    [id, status, pager.cursor],
  );
  const mode = useLive(
    { distributionId: id },
    (e) => e.type === 'job',
    () => {
      dist.reload();
      jobs.reload();
    },
  );
  const [actionError, setActionError] = useState<unknown>(null);
  const [note, setNote] = useState('');

  const bulk = async (what: 'retry' | 'cancel') => {
    if (!window.confirm(t('confirmAll'))) return;
    setActionError(null);
    try {
      const r = await post<{ changed: number }>(`/distributions/${encodeURIComponent(id)}/${what}`);
      setNote(t('changedN', { n: r.changed }));
      dist.reload();
      jobs.reload();
    } catch (err) {
      setActionError(err);
    }
  };
  const csv = () => {
    setActionError(null);
    download(
      `/distributions/${encodeURIComponent(id)}/jobs.csv`,
      `haishin-distribution-${id}-jobs.csv`,
      'text/csv',
    ).catch(setActionError);
  };

  const d = dist.data;
  return (
    <section>
      <p className="crumbs">
        <Link to="/">{t('distributions')}</Link> ›
      </p>
      <div className="title-row">
        <h1>
          {t('distribution')} <code>{short(id)}</code>
        </h1>
        <LiveBadge mode={mode} />
      </div>
      <ErrorLine error={dist.error} />
      <Loading when={dist.loading && !d} />
      {d && (
        <>
          <dl className="facts">
            <dt>{t('created')}</dt>
            <dd>
              <Time iso={d.createdAt} />
            </dd>
            <dt>{t('kind')}</dt>
            <dd>
              {d.kind === 'uninstall'
                ? M.kind_uninstall[lang]
                : d.isUpdate
                  ? M.kind_update[lang]
                  : M.kind_install[lang]}
            </dd>
            <dt>{t('apps')}</dt>
            <dd>{appLabels(d)}</dd>
            <dt>{t('licenseMode')}</dt>
            <dd>{d.licenseMode === 'manual' ? M.licenseMode_manual[lang] : M.licenseMode_auto[lang]}</dd>
            <dt>{t('total')}</dt>
            <dd data-total>{totalOf(d.counts).toLocaleString()}</dd>
          </dl>
          <h2>{t('counts')}</h2>
          <StatusBar counts={d.counts} />
          <CountsLegend counts={d.counts} onPick={setStatus} />
          <div className="actions">
            <button type="button" onClick={csv}>
              {t('downloadCsv')}
            </button>
            {can('operate') && (
              <>
                <button type="button" onClick={() => void bulk('retry')}>
                  {t('retryFailed')}
                </button>
                <button type="button" onClick={() => void bulk('cancel')}>
                  {t('cancelPending')}
                </button>
              </>
            )}
            {note && <span className="note">{note}</span>}
          </div>
          <ErrorLine error={actionError} />
        </>
      )}
      <h2>{t('jobs')}</h2>
      <label className="filter">
        {t('filterStatus')}{' '}
        <select value={status} onChange={(e) => setStatus(e.target.value)} name="status">
          <option value="">{t('all')}</option>
          {JOB_STATUSES.map((s) => (
            <option key={s} value={s}>
              {statusLabel(s, lang)}
              {d ? ` (${d.counts[s] ?? 0})` : ''}
            </option>
          ))}
        </select>
      </label>
      <ErrorLine error={jobs.error} />
      <table className="list jobs">
        <thead>
          <tr>
            <th>{t('job')}</th>
            <th>{t('deviceNumber')}</th>
            <th>{t('app')}</th>
            <th>{t('status')}</th>
            <th className="num">{t('retries')}</th>
            <th>{t('error')}</th>
            <th>{t('updated')}</th>
          </tr>
        </thead>
        <tbody>
          {(jobs.data?.items ?? []).map((j) => (
            <tr key={j.id} data-job={j.id}>
              <td>
                <Link to={`/jobs/${j.id}`}>{short(j.id)}</Link>
              </td>
              <td>
                <DeviceRef job={j} />
              </td>
              <td>
                <AppRef job={j} />
              </td>
              <td>
                <StatusBadge status={j.status} retryCount={j.retryCount} />
              </td>
              <td className="num">{j.retryCount}</td>
              <td>
                {j.error?.chain[0]
                  ? `${j.error.chain[0].domain ?? ''} ${j.error.chain[0].code ?? ''}`
                  : (j.error?.rejectionReason ?? '')}
              </td>
              <td>
                <Time iso={j.updatedAt} />
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      <Loading when={jobs.loading && !jobs.data} />
      <Pager
        pageNo={pager.pageNo}
        nextCursor={jobs.data?.nextCursor}
        onNext={pager.next}
        onPrev={pager.prev}
        onFirst={pager.first}
      />
    </section>
  );
}

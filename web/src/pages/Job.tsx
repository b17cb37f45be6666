import { useState } from 'react';
import { useCan } from '../me.tsx';
import { download, get, post } from '../api.ts';
import type { Diagnosis, JobDetail, Remediation } from '../api.ts';
import { useLive } from '../live.ts';
import {
  AppRef,
  CauseList,
  DeviceRef,
  ChainTable,
  ErrorLine,
  isTerminal,
  LiveBadge,
  Link,
  Loading,
  StatusBadge,
  Time,
  short,
  useLoad,
  useT,
} from '../ui.tsx';

export function JobPage({ id }: { id: string }) {
  const { can } = useCan();
  const { t, pick } = useT();
  const path = `/jobs/${encodeURIComponent(id)}`;
  const job = useLoad(() => get<JobDetail>(path), [id]);
  const diagnosis = useLoad(() => get<Diagnosis>(`${path}/diagnosis`), [id]);
  const [busy, setBusy] = useState(false);
  const [actionError, setActionError] = useState<unknown>(null);
  const [outcome, setOutcome] = useState<Remediation | null>(null);
  const j = job.data;
  const mode = useLive(
    { distributionId: j?.distributionId },
    (e) => e.type === 'job' && e.jobId === id,
    () => {
      job.reload();
      diagnosis.reload();
    },
  );

  const act = async (what: () => Promise<unknown>) => {
    setBusy(true);
    setActionError(null);
    try {
      await what();
      job.reload();
      diagnosis.reload();
    } catch (err) {
      setActionError(err);
    } finally {
      setBusy(false);
    }
  };
  const remediate = (action: string) =>
    act(async () => setOutcome(await post<Remediation>(`${path}/remediate`, { action })));

  return (
    <section>
      <p className="crumbs">
        <Link to="/">{t('distributions')}</Link> ›{' '}
        {j && <Link to={`/distributions/${j.distributionId}`}>{short(j.distributionId)}</Link>} ›
      </p>
      <div className="title-row">
        <h1>
          {t('job')} <code>{short(id)}</code>{' '}
          {j && <StatusBadge status={j.status} retryCount={j.retryCount} />}
        </h1>
        {j && <LiveBadge mode={mode} />}
      </div>
      <ErrorLine error={job.error} />
      <Loading when={job.loading && !j} />
      {j && (
        <>
          <dl className="facts">
            <dt>{t('deviceNumber')}</dt>
            <dd data-job-device>
              <DeviceRef job={j} />
            </dd>
            <dt>{t('app')}</dt>
            <dd data-job-app>
              <AppRef job={j} /> {j.appName !== null && <span className="muted">({j.adamId})</span>}
            </dd>
            <dt>{t('attempt')}</dt>
            <dd data-attempt>{j.attempt}</dd>
            <dt>{t('retries')}</dt>
            <dd>{j.retryCount}</dd>
            <dt>{t('reason')}</dt>
            <dd>{j.reason ?? '—'}</dd>
            {(j.expectedVersion || j.installedVersion) && (
              <>
                <dt>{j.isUpdate ? `${t('kind_update')}: ${t('expectedVersion')}` : t('expectedVersion')}</dt>
                <dd data-expected-version>{j.expectedVersion ?? '—'}</dd>
                <dt>{t('installedVersion')}</dt>
                <dd data-installed-version>{j.installedVersion ?? '—'}</dd>
              </>
            )}
            <dt>{t('updated')}</dt>
            <dd>
              <Time iso={j.updatedAt} />
            </dd>
          </dl>
          <div className="actions">
            {can('operate') && (
              <>
                <button
                  type="button"
                  data-testid="retry"
                  disabled={busy || !isTerminal(j.status) || j.status === 'success'}
                  onClick={() => void act(() => post(`${path}/retry`))}
                >
                  {t('retry')}
                </button>
                <button
                  type="button"
                  data-testid="cancel"
                  disabled={busy || isTerminal(j.status)}
                  onClick={() => void act(() => post(`${path}/cancel`))}
                >
                  {t('cancel')}
                </button>
              </>
            )}
            <button
              type="button"
              onClick={() =>
                void act(() =>
                  download(
                    `${path}/support-bundle?format=json`,
                    `haishin-job-${id}.json`,
                    'application/json',
                  ),
                )
              }
            >
              {t('supportBundle')}
            </button>
            <button
              type="button"
              onClick={() =>
                void act(() =>
                  download(`${path}/support-bundle?format=text`, `haishin-job-${id}.txt`, 'text/plain'),
                )
              }
            >
              {t('supportBundleText')}
            </button>
          </div>
          <ErrorLine error={actionError} />
          {outcome && (
            <p className={outcome.done ? 'note ok' : 'note'} data-outcome={outcome.action}>
              <b>{outcome.done ? t('done') : t('notDone')}</b> ({outcome.action}): {pick(outcome.detail)}
            </p>
          )}
        </>
      )}

      {!j && job.error ? null : (
        <>
          <h2>{t('diagnosis')}</h2>
          <ErrorLine error={diagnosis.error} />
          <Loading when={diagnosis.loading && !diagnosis.data} />
          {diagnosis.data && (
            <>
              {diagnosis.data.askedDevice.length > 0 && (
                <p className="note">
                  {t('askedDevice', { what: diagnosis.data.askedDevice.join(', ') })}{' '}
                  <button type="button" className="link" onClick={diagnosis.reload}>
                    {t('diagnoseAgain')}
                  </button>
                </p>
              )}
              <CauseList
                causes={diagnosis.data.causes}
                onAction={can('operate') ? (a) => void remediate(a) : undefined}
                busy={busy}
              />
            </>
          )}
        </>
      )}

      {j?.error && (
        <>
          <h2>{t('errorChain')}</h2>
          {j.error.rejectionReason && (
            <p>
              {t('rejectionReason')}: <code>{j.error.rejectionReason}</code>
            </p>
          )}
          <ChainTable chain={j.error.chain} />
          <details>
            <summary>{t('rawError')}</summary>
            <pre className="raw">{JSON.stringify(j.error, null, 2)}</pre>
          </details>
        </>
      )}

      {j && (
        <>
          <h2>{t('history')}</h2>
          <table className="list history">
            <thead>
              <tr>
                <th>{t('at')}</th>
                <th>{t('from')}</th>
                <th>{t('to')}</th>
                <th>{t('reason')}</th>
              </tr>
            </thead>
            <tbody>
              {j.history.map((h, i) => (
                <tr key={i}>
                  <td>
                    <Time iso={h.at} />
                  </td>
                  <td>{h.from ? <StatusBadge status={h.from} /> : '—'}</td>
                  <td>
                    <StatusBadge status={h.to} />
                  </td>
                  <td>{h.reason ?? ''}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </>
      )}
    </section>
  );
}

import { useState } from 'react';
import { useCan } from '../me.tsx';
import { appLabels, get, qs } from '../api.ts';
import type { Distribution, Page } from '../api.ts';
import { useLive } from '../live.ts';
import { M } from '../messages.ts';
import { NewDistribution } from './NewDistribution.tsx';
import {
  CountsLegend,
  ErrorLine,
  LiveBadge,
  Link,
  Loading,
  StatusBar,
  Time,
  short,
  totalOf,
  useLoad,
  useT,
} from '../ui.tsx';

const PAGE = 25;

/** Newest distributions first; "load more" grows the list, live events refresh what is shown. */
export function DistributionsPage() {
  const { can } = useCan();
  const { t, lang } = useT();
  const [shown, setShown] = useState(PAGE);
  const [creating, setCreating] = useState(false);
  const list = useLoad(() => get<Page<Distribution>>(`/distributions${qs({ limit: shown })}`), [shown]);
  const mode = useLive({}, (e) => e.type === 'job' || e.type === 'distribution', list.reload);
  const items = list.data?.items ?? [];
  return (
    <section>
      <div className="title-row">
        <h1>{t('distributions')}</h1>
        <LiveBadge mode={mode} />
        {can('operate') && (
          <button type="button" onClick={() => setCreating((c) => !c)} data-testid="new-distribution">
            {creating ? t('closeForm') : t('newDistribution')}
          </button>
        )}
      </div>
      {creating && can('operate') && <NewDistribution />}
      <ErrorLine error={list.error} />
      <Loading when={list.loading && !list.data} />
      {list.data && items.length === 0 && <p className="muted">{t('noDistributions')}</p>}
      {items.length > 0 && (
        <table className="list distributions">
          <thead>
            <tr>
              <th>{t('created')}</th>
              <th>{t('distribution')}</th>
              <th>{t('kind')}</th>
              <th>{t('apps')}</th>
              <th className="num">{t('jobs')}</th>
              <th className="wide">{t('progress')}</th>
            </tr>
          </thead>
          <tbody>
            {items.map((d) => (
              <tr key={d.id} data-distribution={d.id}>
                <td>
                  <Time iso={d.createdAt} />
                </td>
                <td>
                  <Link to={`/distributions/${d.id}`}>{short(d.id)}</Link>
                </td>
                <td>
                  {d.kind === 'uninstall'
                    ? M.kind_uninstall[lang]
                    : d.isUpdate
                      ? M.kind_update[lang]
                      : M.kind_install[lang]}
                </td>
                <td data-apps>{appLabels(d)}</td>
                <td className="num">{totalOf(d.counts).toLocaleString()}</td>
                <td className="wide">
                  <StatusBar counts={d.counts} />
                  <CountsLegend counts={d.counts} />
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {list.data?.nextCursor && shown < 1000 && (
        <button type="button" onClick={() => setShown((n) => Math.min(1000, n + PAGE))}>
          {t('more')}
        </button>
      )}
    </section>
  );
}

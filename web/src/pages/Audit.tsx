import { useState } from 'react';
import { download, get, qs } from '../api.ts';
import type { Page } from '../api.ts';
import { ErrorLine, Loading, Pager, Time, useCursor, useLoad, useT } from '../ui.tsx';

interface AuditEvent {
  id: string;
  at: string;
  actor: { id: string; name: string | null };
  source: string | null;
  action: string;
  target: { type: string; id: string | null };
  details: unknown;
}

interface Filters {
  kind: string;
  actor: string;
  targetId: string;
  from: string;
  to: string;
}

const EMPTY: Filters = { kind: '', actor: '', targetId: '', from: '', to: '' };

/** A datetime-local value (the browser's local time) as an instant the API understands. */
const instant = (local: string) => (local ? new Date(local).toISOString() : '');

/** The audit trail (GET /audit-events): newest first, filtered, paged, and as CSV. */
export function AuditPage() {
  const { t } = useT();
  const [draft, setDraft] = useState<Filters>(EMPTY);
  const [filters, setFilters] = useState<Filters>(EMPTY);
  const query = {
    kind: filters.kind.trim(),
    actor: filters.actor.trim(),
    targetId: filters.targetId.trim(),
    from: instant(filters.from),
    to: instant(filters.to),
  };
  const filterKey = JSON.stringify(query);
  const pager = useCursor(filterKey);
  const events = useLoad(
    () => get<Page<AuditEvent>>(`/audit-events${qs({ ...query, limit: 50, cursor: pager.cursor })}`),
    [filterKey, pager.cursor],
  );
  const [downloadError, setDownloadError] = useState<unknown>(null);
  const field = (key: keyof Filters, label: string, type = 'text') => (
    <label>
      {label}{' '}
      <input
        type={type}
        name={key}
        value={draft[key]}
        onChange={(e) => setDraft({ ...draft, [key]: e.target.value })}
      />
    </label>
  );

  const items = events.data?.items ?? [];
  return (
    <section>
      <h1>{t('auditTitle')}</h1>
      <p className="muted">{t('auditHelp')}</p>
      <form
        className="filters"
        onSubmit={(e) => {
          e.preventDefault();
          setFilters(draft);
        }}
      >
        {field('kind', t('auditKind'))}
        {field('actor', t('auditActor'))}
        {field('targetId', t('auditTarget'))}
        {field('from', t('auditFrom'), 'datetime-local')}
        {field('to', t('auditTo'), 'datetime-local')}
        <button type="submit">{t('auditApply')}</button>{' '}
        <button
          type="button"
          data-action="audit-csv"
          onClick={() => {
            setDownloadError(null);
            download(`/audit-events.csv${qs(query)}`, 'haishin-audit-events.csv', 'text/csv').catch(
              setDownloadError,
            );
          }}
        >
          {t('auditCsv')}
        </button>
      </form>
      <ErrorLine error={events.error} />
      <ErrorLine error={downloadError} />
      <Loading when={events.loading && !events.data} />
      {events.data && items.length === 0 && <p className="muted">{t('auditNone')}</p>}
      {items.length > 0 && (
        <table data-table="audit">
          <thead>
            <tr>
              <th>{t('auditAt')}</th>
              <th>{t('auditWho')}</th>
              <th>{t('auditSource')}</th>
              <th>{t('auditAction')}</th>
              <th>{t('auditObject')}</th>
              <th>{t('auditDetails')}</th>
            </tr>
          </thead>
          <tbody>
            {items.map((e) => (
              <tr key={e.id} data-action={e.action}>
                <td>
                  <Time iso={e.at} />
                </td>
                <td title={e.actor.id}>{e.actor.name ?? e.actor.id}</td>
                <td>{e.source ?? ''}</td>
                <td>
                  <code>{e.action}</code>
                </td>
                <td>
                  {e.target.type} <code>{e.target.id ?? ''}</code>
                </td>
                <td>
                  <code className="details">{e.details === null ? '' : JSON.stringify(e.details)}</code>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <Pager
        pageNo={pager.pageNo}
        nextCursor={events.data?.nextCursor}
        onNext={pager.next}
        onPrev={pager.prev}
        onFirst={pager.first}
      />
    </section>
  );
}

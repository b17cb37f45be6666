import { createContext, useCallback, useContext, useEffect, useRef, useState } from 'react';
import type { MouseEvent, ReactNode } from 'react';
import { ApiError } from './api.ts';
import type { Cause, ChainItem, Counts } from './api.ts';
import type { LiveMode } from './live.ts';
import {
  ACTION_LABELS,
  CONFIDENCE_LABELS,
  format,
  JOB_STATUSES,
  M,
  statusLabel,
  TERMINAL_STATUSES,
} from './messages.ts';
import type { Bilingual, Lang, MessageKey } from './messages.ts';

// ---- language

export interface I18n {
  lang: Lang;
  t(key: MessageKey, params?: Record<string, string | number>): string;
  pick(text: Bilingual): string;
}

export const LangContext = createContext<Lang>('ja');

export function useT(): I18n {
  const lang = useContext(LangContext);
  return {
    lang,
    t: (key, params) => format(M[key][lang], params),
    pick: (text) => text[lang],
  };
}

// ---- routing: history API, so console URLs can be bookmarked; the server answers index.html for them

const listeners = new Set<() => void>();
window.addEventListener('popstate', () => listeners.forEach((l) => l()));

export function navigate(to: string, replace = false): void {
  if (replace) history.replaceState(null, '', to);
  else history.pushState(null, '', to);
  listeners.forEach((l) => l());
  if (!replace) window.scrollTo(0, 0);
}

export function useLocation(): { path: string; query: URLSearchParams } {
  const [, setTick] = useState(0);
  useEffect(() => {
    const l = () => setTick((n) => n + 1);
    listeners.add(l);
    return () => {
      listeners.delete(l);
    };
  }, []);
  return { path: location.pathname, query: new URLSearchParams(location.search) };
}

export function Link(props: { to: string; children: ReactNode; className?: string; title?: string }) {
  const onClick = (e: MouseEvent<HTMLAnchorElement>) => {
    // Let the browser handle new-tab and similar clicks.
    if (e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
    e.preventDefault();
    navigate(props.to);
  };
  return (
    <a href={props.to} onClick={onClick} className={props.className} title={props.title}>
      {props.children}
    </a>
  );
}

// ---- loading

export interface Loaded<T> {
  data: T | undefined;
  error: unknown;
  loading: boolean;
  reload(): void;
}

/** Runs `load` when `deps` change and on reload(); an answer that arrives after a newer request is dropped. */
export function useLoad<T>(load: () => Promise<T>, deps: readonly unknown[]): Loaded<T> {
  const [state, setState] = useState<{ data: T | undefined; error: unknown; loading: boolean }>({
    data: undefined,
    error: null,
    loading: true,
  });
  const seq = useRef(0);
  const loadRef = useRef(load);
  loadRef.current = load;
  const run = useCallback(() => {
    const mine = ++seq.current;
    setState((s) => ({ ...s, loading: true }));
    loadRef.current().then(
      (data) => {
        if (mine === seq.current) setState({ data, error: null, loading: false });
      },
      (error: unknown) => {
        if (mine === seq.current) setState((s) => ({ data: s.data, error, loading: false }));
      },
    );
  }, []);
  // deps are the caller's: they decide when the data is stale.
  useEffect(run, deps);
  return { ...state, reload: run };
}

// ---- pieces

/** The server's message and code on one line, in the chosen language (Accept-Language). */
export function ErrorLine({ error }: { error: unknown }) {
  const { t } = useT();
  if (!error) return null;
  const e =
    error instanceof ApiError
      ? error
      : new ApiError(0, 'client', error instanceof Error ? error.message : String(error));
  const message = e.code === 'network' ? `${t('networkError')}: ${e.message}` : e.message;
  return (
    <p className="error" role="alert">
      {message} <code className="error-code">{e.code}</code>
    </p>
  );
}

export function Loading({ when }: { when: boolean }) {
  const { t } = useT();
  return when ? <p className="muted">{t('loading')}</p> : null;
}

export function LiveBadge({ mode }: { mode: LiveMode }) {
  const { t } = useT();
  if (mode === 'connecting') return null;
  return (
    <span className={`live live-${mode}`} data-live={mode}>
      {mode === 'live' ? t('liveOn') : t('livePolling')}
    </span>
  );
}

export function StatusBadge({ status, retryCount }: { status: string; retryCount?: number | null }) {
  const { lang } = useT();
  return (
    <span className={`badge st-${status}`} data-status={status}>
      {statusLabel(status, lang, retryCount)}
    </span>
  );
}

export const totalOf = (counts: Counts) => Object.values(counts).reduce((a, b) => a + b, 0);

/** One bar, one segment per status in DESIGN §3 order, widths proportional to the counts. */
export function StatusBar({ counts }: { counts: Counts }) {
  const { lang } = useT();
  const total = totalOf(counts);
  if (total === 0) return <div className="bar bar-empty" />;
  return (
    <div className="bar" role="img" aria-label={summary(counts, lang)}>
      {JOB_STATUSES.filter((s) => (counts[s] ?? 0) > 0).map((s) => (
        <span
          key={s}
          className={`seg st-${s}`}
          style={{ width: `${((counts[s] ?? 0) / total) * 100}%` }}
          title={`${statusLabel(s, lang)} ${counts[s]}`}
        />
      ))}
    </div>
  );
}

export function summary(counts: Counts, lang: Lang): string {
  return JOB_STATUSES.filter((s) => (counts[s] ?? 0) > 0)
    .map((s) => `${statusLabel(s, lang)} ${counts[s]}`)
    .join(', ');
}

export function CountsLegend({ counts, onPick }: { counts: Counts; onPick?: (status: string) => void }) {
  const { lang } = useT();
  return (
    <ul className="legend">
      {JOB_STATUSES.filter((s) => (counts[s] ?? 0) > 0).map((s) => (
        <li key={s} data-count-status={s}>
          <span className={`dot st-${s}`} />
          {onPick ? (
            <button type="button" className="link" onClick={() => onPick(s)}>
              {statusLabel(s, lang)}
            </button>
          ) : (
            statusLabel(s, lang)
          )}{' '}
          <b>{(counts[s] ?? 0).toLocaleString()}</b>
        </li>
      ))}
    </ul>
  );
}

export const isTerminal = (status: string) => TERMINAL_STATUSES.has(status);

export function Time({ iso }: { iso: string | null | undefined }) {
  const { lang } = useT();
  if (!iso) return <span className="muted">—</span>;
  const d = new Date(iso);
  return (
    <time dateTime={iso} title={iso}>
      {d.toLocaleString(lang === 'ja' ? 'ja-JP' : 'en-GB')}
    </time>
  );
}

export const short = (id: string) => id.slice(0, 8);

/** A job's device as people know it: `#12`, the short id only when the number is unknown. */
export function DeviceRef({ job }: { job: { deviceId: string; deviceNumber: number | null } }) {
  return (
    <Link to={`/devices/${job.deviceId}`} title={job.deviceId}>
      <span data-device-number={job.deviceNumber ?? ''}>
        {job.deviceNumber !== null ? `#${job.deviceNumber}` : short(job.deviceId)}
      </span>
    </Link>
  );
}

/** A job's app by name, with the Adam ID for the support desk (in the tooltip when the name is known). */
export function AppRef({ job }: { job: { adamId: string; appName: string | null } }) {
  if (job.appName === null) return <span data-app-name="">{job.adamId}</span>;
  return (
    <span data-app-name={job.appName} title={`Adam ID ${job.adamId}`}>
      {job.appName}
    </span>
  );
}

export function ChainTable({ chain }: { chain: ChainItem[] }) {
  const { t } = useT();
  if (chain.length === 0) return <p className="muted">{t('none')}</p>;
  return (
    <table className="chain">
      <thead>
        <tr>
          <th>#</th>
          <th>{t('code')}</th>
          <th>{t('domain')}</th>
          <th>{t('description')}</th>
        </tr>
      </thead>
      <tbody>
        {chain.map((c, i) => (
          <tr key={i}>
            <td>{i}</td>
            <td className="num" data-chain-code={c.code ?? ''}>
              {c.code ?? '—'}
            </td>
            <td>{c.domain ?? '—'}</td>
            <td>{c.description ?? '—'}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

/** The ranked causes; with `onAction`, each remedy action of a cause is a button. */
export function CauseList(props: { causes: Cause[]; onAction?: (action: string) => void; busy?: boolean }) {
  const { t, pick, lang } = useT();
  if (props.causes.length === 0) return <p className="muted">{t('noCauses')}</p>;
  return (
    <ol className="causes">
      {props.causes.map((c, i) => (
        <li key={`${c.code}-${i}`} className={`cause conf-${c.confidence}`} data-cause={c.code}>
          <div className="cause-head">
            <span className={`conf conf-${c.confidence}`}>{CONFIDENCE_LABELS[c.confidence][lang]}</span>
            <h3>{pick(c.title)}</h3>
            <code className="cause-code">{c.code}</code>
          </div>
          <p className="remedy">
            <b>{t('remedy')}:</b> {pick(c.remedy)}
          </p>
          {c.evidence.length > 0 && (
            <details>
              <summary>
                {t('evidence')} ({c.evidence.length})
              </summary>
              <table>
                <thead>
                  <tr>
                    <th>{t('fact')}</th>
                    <th>{t('value')}</th>
                    <th>{t('source')}</th>
                  </tr>
                </thead>
                <tbody>
                  {c.evidence.map((e, j) => (
                    <tr key={j}>
                      <td>{e.fact}</td>
                      <td>{e.value === null ? '—' : String(e.value)}</td>
                      <td>{e.source}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </details>
          )}
          {props.onAction && c.actions.length > 0 && (
            <div className="actions">
              {c.actions.map((a) => (
                <button
                  key={a}
                  type="button"
                  disabled={props.busy}
                  data-action={a}
                  onClick={() => props.onAction?.(a)}
                >
                  {ACTION_LABELS[a]?.[lang] ?? a}
                </button>
              ))}
            </div>
          )}
        </li>
      ))}
    </ol>
  );
}

/**
 * Cursor paging for lists that can hold 100k rows: the API's nextCursor moves forward, a stack
 * of the cursors seen so far moves back. Nothing but the current page is ever held.
 */
export function useCursor(resetKey: string) {
  const [stack, setStack] = useState<(string | null)[]>([null]);
  const [key, setKey] = useState(resetKey);
  if (key !== resetKey) {
    setKey(resetKey);
    setStack([null]);
  }
  const cursor = stack[stack.length - 1] ?? null;
  return {
    cursor,
    pageNo: stack.length,
    next: (c: string) => setStack((s) => [...s, c]),
    prev: () => setStack((s) => (s.length > 1 ? s.slice(0, -1) : s)),
    first: () => setStack([null]),
  };
}

export function Pager(props: {
  pageNo: number;
  nextCursor: string | null | undefined;
  onNext(c: string): void;
  onPrev(): void;
  onFirst(): void;
}) {
  const { t } = useT();
  const next = props.nextCursor;
  return (
    <div className="pager">
      <button type="button" onClick={props.onFirst} disabled={props.pageNo <= 1}>
        {t('first')}
      </button>
      <button type="button" onClick={props.onPrev} disabled={props.pageNo <= 1}>
        {t('prev')}
      </button>
      <span>
        {t('page')} {props.pageNo}
      </span>
      <button type="button" onClick={() => next && props.onNext(next)} disabled={!next}>
        {t('next')}
      </button>
    </div>
  );
}

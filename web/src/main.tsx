import { StrictMode, useEffect, useState } from 'react';
import type { FormEvent } from 'react';
import { createRoot } from 'react-dom/client';
import { get, setSession, setUnauthorizedHandler } from './api.ts';
import type { Page, Group } from './api.ts';
import { M } from './messages.ts';
import type { Lang } from './messages.ts';
import { DistributionPage } from './pages/Distribution.tsx';
import { DistributionsPage } from './pages/Distributions.tsx';
import { DevicePage, DevicesPage } from './pages/Devices.tsx';
import { AppsPage } from './pages/Apps.tsx';
import { ExplainPage } from './pages/Explain.tsx';
import { GroupsPage } from './pages/Groups.tsx';
import { JobPage } from './pages/Job.tsx';
import { ServerPage, StatusBanner } from './pages/Server.tsx';
import { AuditPage } from './pages/Audit.tsx';
import { TokensPage } from './pages/Tokens.tsx';
import { ErrorLine, LangContext, Link, useLocation, useT } from './ui.tsx';
import './style.css';

const TOKEN_KEY = 'haishin.adminToken';
const LANG_KEY = 'haishin.lang';

function initialLang(): Lang {
  const saved = localStorage.getItem(LANG_KEY);
  if (saved === 'ja' || saved === 'en') return saved;
  return /^ja\b/i.test(navigator.language) ? 'ja' : 'en';
}

/**
 * `#token=…` from a printed link signs in once; the fragment is then removed so the token
 * is neither bookmarked nor left in the address bar (a fragment never reaches the server).
 */
function tokenFromFragment(): string | null {
  const match = /(?:^#|&)token=([^&]+)/.exec(location.hash);
  if (!match?.[1]) return null;
  history.replaceState(null, '', location.pathname + location.search);
  return decodeURIComponent(match[1]);
}

function SignIn(props: { onSignIn(token: string): Promise<void> }) {
  const { t } = useT();
  const [token, setToken] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      await props.onSignIn(token.trim());
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  return (
    <form className="signin" onSubmit={(e) => void submit(e)}>
      <h1>{t('signInTitle')}</h1>
      <p className="muted">{t('signInHelp')}</p>
      <label>
        {t('adminToken')}
        <input
          type="password"
          name="token"
          autoComplete="off"
          value={token}
          onChange={(e) => setToken(e.target.value)}
          required
        />
      </label>
      <button type="submit" disabled={busy}>
        {busy ? t('checking') : t('signIn')}
      </button>
      <ErrorLine error={error} />
    </form>
  );
}

function Routes() {
  const { path } = useLocation();
  const { t } = useT();
  const m = (re: RegExp) => re.exec(path)?.[1];
  let id: string | undefined;
  if (path === '/' || path === '/distributions') return <DistributionsPage />;
  if ((id = m(/^\/distributions\/([^/]+)$/)))
    return <DistributionPage key={id} id={decodeURIComponent(id)} />;
  if ((id = m(/^\/jobs\/([^/]+)$/))) return <JobPage key={id} id={decodeURIComponent(id)} />;
  if (path === '/devices') return <DevicesPage />;
  if ((id = m(/^\/devices\/([^/]+)$/))) return <DevicePage key={id} id={decodeURIComponent(id)} />;
  if (path === '/groups') return <GroupsPage />;
  if (path === '/tokens') return <TokensPage />;
  if (path === '/apps') return <AppsPage />;
  if (path === '/explain') return <ExplainPage />;
  if (path === '/server') return <ServerPage />;
  if (path === '/audit') return <AuditPage />;
  return <p className="muted">{t('notFound')}</p>;
}

const NAV: { to: string; label: keyof typeof M; match: RegExp }[] = [
  { to: '/', label: 'navDistributions', match: /^\/($|distributions|jobs)/ },
  { to: '/devices', label: 'navDevices', match: /^\/devices/ },
  { to: '/groups', label: 'navGroups', match: /^\/groups/ },
  { to: '/tokens', label: 'navTokens', match: /^\/tokens/ },
  { to: '/apps', label: 'navApps', match: /^\/apps/ },
  { to: '/explain', label: 'navExplain', match: /^\/explain/ },
  { to: '/audit', label: 'navAudit', match: /^\/audit/ },
  { to: '/server', label: 'navServer', match: /^\/server/ },
];

function App() {
  const [lang, setLang] = useState<Lang>(initialLang);
  const [token, setToken] = useState<string | null>(() => sessionStorage.getItem(TOKEN_KEY));
  const [fragmentError, setFragmentError] = useState<unknown>(null);
  const { path } = useLocation();
  // Set during render, before any child effect fetches: children read the session synchronously.
  setSession(token, lang);

  const signIn = async (candidate: string) => {
    setSession(candidate, lang);
    // Any authenticated call proves the token; this one is cheap.
    await get<Page<Group>>('/groups?limit=1');
    sessionStorage.setItem(TOKEN_KEY, candidate);
    setToken(candidate);
  };
  const signOut = () => {
    sessionStorage.removeItem(TOKEN_KEY);
    setToken(null);
  };

  useEffect(() => {
    // At start, and when a link is pasted into a tab that already shows the console (same document).
    const fromLink = () => {
      const candidate = tokenFromFragment();
      if (candidate) signIn(candidate).catch(setFragmentError);
    };
    fromLink();
    window.addEventListener('hashchange', fromLink);
    return () => window.removeEventListener('hashchange', fromLink);
  }, []);
  useEffect(() => {
    setUnauthorizedHandler(() => {
      sessionStorage.removeItem(TOKEN_KEY);
      setToken(null);
    });
    return () => setUnauthorizedHandler(null);
  }, []);
  useEffect(() => {
    document.documentElement.lang = lang;
    document.title = M.appName[lang];
    localStorage.setItem(LANG_KEY, lang);
  }, [lang]);

  return (
    <LangContext.Provider value={lang}>
      <header className="top">
        <span className="brand">haishin 配信</span>
        {token && (
          <nav>
            {NAV.map((n) => (
              <Link key={n.to} to={n.to} className={n.match.test(path) ? 'active' : ''}>
                {M[n.label][lang]}
              </Link>
            ))}
          </nav>
        )}
        <span className="spacer" />
        <span className="lang" role="group" aria-label={M.language[lang]}>
          <button type="button" className={lang === 'ja' ? 'on' : ''} onClick={() => setLang('ja')} lang="ja">
            日本語
          </button>
          <button type="button" className={lang === 'en' ? 'on' : ''} onClick={() => setLang('en')} lang="en">
            English
          </button>
        </span>
        {token && (
          <button type="button" className="link" onClick={signOut}>
            {M.signOut[lang]}
          </button>
        )}
      </header>
      {token && <StatusBanner path={path} />}
      <main>
        {token ? (
          <Routes />
        ) : (
          <>
            <ErrorLine error={fragmentError} />
            <SignIn onSignIn={signIn} />
          </>
        )}
      </main>
    </LangContext.Provider>
  );
}

createRoot(document.getElementById('root')!).render(
  <StrictMode>
    <App />
  </StrictMode>,
);

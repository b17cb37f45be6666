import { StrictMode, useEffect, useState } from 'react';
import type { FormEvent } from 'react';
import { createRoot } from 'react-dom/client';
import { get, setSession, setUnauthorizedHandler } from './api.ts';
import { MeContext } from './me.tsx';
import type { Me } from './me.tsx';
import { AdminsPage } from './pages/Admins.tsx';
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
  if (path === '/admins') return <AdminsPage />;
  return <p className="muted">{t('notFound')}</p>;
}

/** `shown`: whether the signed-in administrator may use the page (decision 0029); the API still decides. */
const NAV: { to: string; label: keyof typeof M; match: RegExp; shown?: (me: Me) => boolean }[] = [
  { to: '/', label: 'navDistributions', match: /^\/($|distributions|jobs)/ },
  { to: '/devices', label: 'navDevices', match: /^\/devices/ },
  { to: '/groups', label: 'navGroups', match: /^\/groups/ },
  { to: '/tokens', label: 'navTokens', match: /^\/tokens/ },
  // Fleet-wide app versions, the audit trail and the server's settings are the whole tree's.
  { to: '/apps', label: 'navApps', match: /^\/apps/, shown: (me) => me.scope.wholeTree },
  { to: '/explain', label: 'navExplain', match: /^\/explain/ },
  { to: '/audit', label: 'navAudit', match: /^\/audit/, shown: (me) => me.scope.wholeTree },
  { to: '/server', label: 'navServer', match: /^\/server/, shown: (me) => me.scope.wholeTree },
  { to: '/admins', label: 'navAdmins', match: /^\/admins/ },
];

function App() {
  const [lang, setLang] = useState<Lang>(initialLang);
  const [token, setToken] = useState<string | null>(() => sessionStorage.getItem(TOKEN_KEY));
  const [fragmentError, setFragmentError] = useState<unknown>(null);
  const [me, setMe] = useState<Me | null>(null);
  const { path } = useLocation();
  // Set during render, before any child effect fetches: children read the session synchronously.
  setSession(token, lang);

  const signIn = async (candidate: string) => {
    setSession(candidate, lang);
    // /me proves the token and says what the console may show.
    const who = await get<Me>('/me');
    sessionStorage.setItem(TOKEN_KEY, candidate);
    setMe(who);
    setToken(candidate);
  };
  const signOut = () => {
    sessionStorage.removeItem(TOKEN_KEY);
    setToken(null);
    setMe(null);
  };
  useEffect(() => {
    // A token kept from an earlier visit of this tab: who it acts for is asked again.
    // Only for the token still signed in: a link may have signed another one in meanwhile.
    if (token && !me)
      get<Me>('/me').then(
        (who) => {
          if (sessionStorage.getItem(TOKEN_KEY) === token) setMe(who);
        },
        () => undefined,
      );
  }, [token, me]);

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
      setMe(null);
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
      <MeContext.Provider value={me}>
        <header className="top">
          <span className="brand">haishin 配信</span>
          {token && (
            <nav>
              {NAV.filter((n) => me && (n.shown?.(me) ?? true)).map((n) => (
                <Link key={n.to} to={n.to} className={n.match.test(path) ? 'active' : ''}>
                  {M[n.label][lang]}
                </Link>
              ))}
            </nav>
          )}
          <span className="spacer" />
          {token && me && (
            <span className="who" data-who={me.administrator.role} title={me.token.name}>
              {me.administrator.name} · {M[`role_${me.administrator.role}`][lang]} ·{' '}
              {me.scope.path.join(' / ')}
            </span>
          )}
          <span className="lang" role="group" aria-label={M.language[lang]}>
            <button
              type="button"
              className={lang === 'ja' ? 'on' : ''}
              onClick={() => setLang('ja')}
              lang="ja"
            >
              日本語
            </button>
            <button
              type="button"
              className={lang === 'en' ? 'on' : ''}
              onClick={() => setLang('en')}
              lang="en"
            >
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
      </MeContext.Provider>
    </LangContext.Provider>
  );
}

createRoot(document.getElementById('root')!).render(
  <StrictMode>
    <App />
  </StrictMode>,
);

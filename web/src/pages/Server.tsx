import { useEffect } from 'react';
import { get } from '../api.ts';
import type { ServerStatus } from '../api.ts';
import { DEVICE_STATUS_LABELS } from '../messages.ts';
import type { I18n } from '../ui.tsx';
import { ErrorLine, Link, Loading, Time, useLoad, useT } from '../ui.tsx';
import { PushCertificateUpload } from './PushCertificateUpload.tsx';

/** Push certificate within this many days of expiry: the banner warns (as for VPP tokens). */
const PUSH_WARN_DAYS = 30;
/** The banner re-reads the status this often: an APNs 403 can happen at any time. */
const STATUS_EVERY_MS = 60_000;

const day = (iso: string, lang: 'ja' | 'en') =>
  new Date(iso).toLocaleDateString(lang === 'ja' ? 'ja-JP' : 'en-GB');

interface BannerLine {
  key: string;
  text: string;
  remedy: string;
  link: { to: string; label: string };
}

/** What the banner says, one line per problem; empty when everything is fine. */
export function bannerLines(s: ServerStatus, i18n: I18n): BannerLine[] {
  const { t, lang } = i18n;
  const lines: BannerLine[] = [];
  const push = s.pushCertificate;
  const toServer = { to: '/server', label: t('openServer') };
  if (push?.alert) {
    const detail = [push.alert.status, push.alert.reason].filter((x) => x !== null).join(' ') || 'APNs';
    lines.push({
      key: 'push-alert',
      text: t('bannerPushAlert', {
        detail,
        at: new Date(push.alert.at).toLocaleString(lang === 'ja' ? 'ja-JP' : 'en-GB'),
      }),
      remedy: t('bannerPushRemedy'),
      link: toServer,
    });
  } else if (push?.notAfter && push.daysLeft !== null && push.daysLeft <= PUSH_WARN_DAYS) {
    lines.push({
      key: 'push-expiry',
      text:
        push.daysLeft < 0
          ? t('bannerPushExpired', { date: day(push.notAfter, lang) })
          : t('bannerPushExpiring', { n: push.daysLeft, date: day(push.notAfter, lang) }),
      remedy: t('bannerPushRemedy'),
      link: toServer,
    });
  }
  if (s.tokens.expiring > 0 || s.tokens.expired > 0) {
    lines.push({
      key: 'tokens',
      text: t('bannerTokens', { expiring: s.tokens.expiring, expired: s.tokens.expired }),
      remedy: t('bannerTokensRemedy'),
      link: { to: '/tokens', label: t('openTokens') },
    });
  }
  // Apple refused the token itself (9625 revoked, 9622 invalid): no licence can be assigned with it.
  const refused = s.tokens.revoked + s.tokens.invalid;
  if (refused > 0) {
    lines.push({
      key: 'tokens-refused',
      text: t('bannerTokensRefused', { revoked: s.tokens.revoked, invalid: s.tokens.invalid }),
      remedy: t('bannerTokensRefusedRemedy'),
      link: { to: '/tokens', label: t('openTokens') },
    });
  }
  // Devices whose identity expired before it was renewed: lost until enrolled again (decision 0023).
  const expiredIdentities = s.deviceIdentities?.expired ?? 0;
  if (expiredIdentities > 0) {
    lines.push({
      key: 'identities-expired',
      text: t('bannerIdentitiesExpired', { n: expiredIdentities }),
      remedy: t('bannerIdentitiesRemedy'),
      link: { to: '/devices?identityExpired=true', label: t('openDevices') },
    });
  }
  return lines;
}

/** Shown above every page: the problems that stop distributions for the whole fleet. */
export function StatusBanner({ path }: { path: string }) {
  const i18n = useT();
  const status = useLoad(() => get<ServerStatus>('/status'), [path]);
  useEffect(() => {
    const timer = setInterval(status.reload, STATUS_EVERY_MS);
    return () => clearInterval(timer);
  }, [status.reload]);
  // A failing status read is not worth a banner of its own: the page's own request shows the error.
  if (!status.data) return null;
  const lines = bannerLines(status.data, i18n);
  if (lines.length === 0) return null;
  return (
    <div className="banner" role="alert" data-banner>
      {lines.map((l) => (
        <div key={l.key} className="banner-line" data-banner-line={l.key}>
          <p>
            <b>{l.text}</b> <Link to={l.link.to}>{l.link.label}</Link>
          </p>
          <p className="banner-remedy">{l.remedy}</p>
        </div>
      ))}
    </div>
  );
}

export function ServerPage() {
  const { t, lang } = useT();
  const status = useLoad(() => get<ServerStatus>('/status'), []);
  const s = status.data;
  const push = s?.pushCertificate;
  return (
    <section>
      <h1>{t('server')}</h1>
      <ErrorLine error={status.error} />
      <Loading when={status.loading && !s} />
      {s && (
        <>
          <dl className="facts" data-server-status>
            <dt>{t('version')}</dt>
            <dd data-version>{s.version}</dd>
            <dt>{t('instanceId')}</dt>
            <dd>
              <code>{s.instanceId}</code>
            </dd>
            <dt>{t('serverTime')}</dt>
            <dd>
              <Time iso={s.now} />
            </dd>
          </dl>
          <h2>{t('pushCertificate')}</h2>
          {push ? (
            <dl className="facts" data-push-certificate>
              <dt>{t('pushTopic')}</dt>
              <dd>
                <code>{push.topic}</code>
              </dd>
              <dt>{t('expires')}</dt>
              <dd>{push.notAfter ? <Time iso={push.notAfter} /> : t('unknown')}</dd>
              <dt>{t('daysLeft')}</dt>
              <dd className={push.daysLeft !== null && push.daysLeft <= PUSH_WARN_DAYS ? 'warning' : ''}>
                {push.daysLeft !== null ? t('daysLeftN', { n: push.daysLeft }) : t('unknown')}
              </dd>
              <dt>{t('apnsAlert')}</dt>
              <dd data-push-alert={push.alert ? 'yes' : 'no'} className={push.alert ? 'warning' : ''}>
                {push.alert ? (
                  <>
                    {[push.alert.status, push.alert.reason].filter((x) => x !== null).join(' ')} (
                    <Time iso={push.alert.at} />)
                  </>
                ) : (
                  t('noAlert')
                )}
              </dd>
            </dl>
          ) : (
            <p className="muted">{t('pushNotConfigured')}</p>
          )}
          <PushCertificateUpload onReplaced={status.reload} />
          <h2>{t('deviceCa')}</h2>
          <dl className="facts">
            <dt>{t('expires')}</dt>
            <dd>
              <Time iso={s.deviceCa.notAfter} />
            </dd>
            <dt>{t('deviceCaVerifying')}</dt>
            <dd>{s.deviceCa.verifying ?? 1}</dd>
          </dl>
          {s.deviceIdentities && (
            <>
              <h2>{t('deviceIdentities')}</h2>
              <dl className="facts" data-identity-counts>
                <dt>{t('identitiesExpired')}</dt>
                <dd className={s.deviceIdentities.expired > 0 ? 'warning' : ''} data-identities-expired>
                  {s.deviceIdentities.expired}
                </dd>
                <dt>{t('identitiesExpiring')}</dt>
                <dd>{s.deviceIdentities.expiring}</dd>
                <dt>{t('identitiesRenewing')}</dt>
                <dd>{s.deviceIdentities.renewing}</dd>
              </dl>
            </>
          )}
          <h2>{t('tokens')}</h2>
          <dl className="facts" data-token-counts>
            <dt>{t('total')}</dt>
            <dd>{s.tokens.total}</dd>
            <dt>{t('tokensExpiring')}</dt>
            <dd className={s.tokens.expiring > 0 ? 'warning' : ''}>{s.tokens.expiring}</dd>
            <dt>{t('tokensExpired')}</dt>
            <dd className={s.tokens.expired > 0 ? 'warning' : ''}>{s.tokens.expired}</dd>
            <dt>{t('tokensRevoked')}</dt>
            <dd className={s.tokens.revoked > 0 ? 'warning' : ''}>{s.tokens.revoked}</dd>
            <dt>{t('tokensInvalid')}</dt>
            <dd className={s.tokens.invalid > 0 ? 'warning' : ''}>{s.tokens.invalid}</dd>
          </dl>
          <h2>{t('deviceCounts')}</h2>
          <dl className="facts" data-device-counts>
            <dt>{t('total')}</dt>
            <dd data-device-total>{s.devices.total.toLocaleString()}</dd>
            {(Object.keys(DEVICE_STATUS_LABELS) as (keyof typeof DEVICE_STATUS_LABELS)[]).map((k) => (
              <DeviceCount key={k} label={DEVICE_STATUS_LABELS[k][lang]} value={s.devices[k]} status={k} />
            ))}
          </dl>
        </>
      )}
    </section>
  );
}

function DeviceCount(props: { label: string; value: number; status: string }) {
  return (
    <>
      <dt>{props.label}</dt>
      <dd data-device-count={props.status}>{props.value.toLocaleString()}</dd>
    </>
  );
}

import { useState } from 'react';
import { useCan } from '../me.tsx';
import type { FormEvent } from 'react';
import { allGroups, get, post, qs } from '../api.ts';
import type { DeviceDetail, Device, Group, Job, Page } from '../api.ts';
import { useLive } from '../live.ts';
import { DEVICE_STATUS_LABELS } from '../messages.ts';
import {
  AppRef,
  ErrorLine,
  LiveBadge,
  Link,
  Loading,
  Pager,
  StatusBadge,
  Time,
  short,
  useCursor,
  useLoad,
  useLocation,
  useT,
} from '../ui.tsx';

const PAGE = 100;

export const deviceStatus = (status: string, lang: 'ja' | 'en') =>
  (DEVICE_STATUS_LABELS as Record<string, { ja: string; en: string }>)[status]?.[lang] ?? status;

const groupName = (groups: Group[] | undefined, id: string) => {
  const g = groups?.find((x) => x.id === id);
  return g ? g.path.join(' / ') : short(id);
};

/** One page at a time by device number: the fleet can be 100k iPads. */
export function DevicesPage() {
  const { t, lang } = useT();
  const { query } = useLocation();
  const [groupId, setGroupId] = useState(query.get('groupId') ?? '');
  const [includeSubgroups, setIncludeSubgroups] = useState(query.get('includeSubgroups') === 'true');
  const [status, setStatus] = useState('');
  const [serialInput, setSerialInput] = useState('');
  const [serial, setSerial] = useState('');
  // The banner's link for expired identities opens the list filtered on them (decision 0023).
  const [identityExpired, setIdentityExpired] = useState(query.get('identityExpired') === 'true');
  const groups = useLoad(allGroups, []);
  const filterKey = `${groupId}|${includeSubgroups}|${status}|${serial}|${identityExpired}`;
  const pager = useCursor(filterKey);
  const devices = useLoad(
    () =>
      get<Page<Device>>(
        `/devices${qs({
          groupId,
          includeSubgroups: groupId && includeSubgroups ? true : undefined,
          status,
          serialNumber: serial,
          identityExpired: identityExpired ? true : undefined,
          limit: PAGE,
          cursor: pager.cursor,
        })}`,
      ),
    [filterKey, pager.cursor],
  );
  const mode = useLive({}, (e) => e.type === 'device', devices.reload);
  const onSearch = (e: FormEvent) => {
    e.preventDefault();
    setSerial(serialInput.trim());
  };
  return (
    <section>
      <div className="title-row">
        <h1>{t('devices')}</h1>
        <LiveBadge mode={mode} />
      </div>
      <form className="filters" onSubmit={onSearch}>
        <label>
          {t('group')}{' '}
          <select value={groupId} onChange={(e) => setGroupId(e.target.value)} name="groupId">
            <option value="">{t('all')}</option>
            {(groups.data ?? [])
              .slice()
              .sort((a, b) => a.path.join('/').localeCompare(b.path.join('/')))
              .map((g) => (
                <option key={g.id} value={g.id}>
                  {g.path.join(' / ')}
                </option>
              ))}
          </select>
        </label>
        <label>
          <input
            type="checkbox"
            checked={includeSubgroups}
            onChange={(e) => setIncludeSubgroups(e.target.checked)}
          />{' '}
          {t('includeSubgroups')}
        </label>
        <label>
          {t('status')}{' '}
          <select value={status} onChange={(e) => setStatus(e.target.value)} name="deviceStatus">
            <option value="">{t('all')}</option>
            {Object.keys(DEVICE_STATUS_LABELS).map((s) => (
              <option key={s} value={s}>
                {deviceStatus(s, lang)}
              </option>
            ))}
          </select>
        </label>
        <label>
          <input
            type="checkbox"
            checked={identityExpired}
            onChange={(e) => setIdentityExpired(e.target.checked)}
            name="identityExpired"
          />{' '}
          {t('identityExpiredOnly')}
        </label>
        <label>
          {t('serial')}{' '}
          <input value={serialInput} onChange={(e) => setSerialInput(e.target.value)} name="serial" />
        </label>
        <button type="submit">{t('search')}</button>
      </form>
      <ErrorLine error={groups.error} />
      <ErrorLine error={devices.error} />
      <table className="list devices">
        <thead>
          <tr>
            <th className="num">{t('deviceNumber')}</th>
            <th>{t('name')}</th>
            <th>{t('serial')}</th>
            <th>{t('model')}</th>
            <th>{t('os')}</th>
            <th>{t('group')}</th>
            <th>{t('status')}</th>
            <th>{t('lastSeen')}</th>
          </tr>
        </thead>
        <tbody>
          {(devices.data?.items ?? []).map((d) => (
            <tr key={d.id} data-device={d.id}>
              <td className="num">
                <Link to={`/devices/${d.id}`}>{d.deviceNumber}</Link>
              </td>
              <td>
                {d.name ?? '—'}
                {d.isSharedIPad && <span className="tag">{t('sharedIpad')}</span>}
              </td>
              <td>{d.serialNumber ?? '—'}</td>
              <td>{d.productName ?? d.model ?? '—'}</td>
              <td>{d.osVersion ?? '—'}</td>
              <td>{groupName(groups.data, d.groupId)}</td>
              <td>
                <span className={`badge dev-${d.status}`}>{deviceStatus(d.status, lang)}</span>
              </td>
              <td>
                <Time iso={d.lastSeenAt} />
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      <Loading when={devices.loading && !devices.data} />
      <Pager
        pageNo={pager.pageNo}
        nextCursor={devices.data?.nextCursor}
        onNext={pager.next}
        onPrev={pager.prev}
        onFirst={pager.first}
      />
    </section>
  );
}

function Stamp({ title, value }: { title: string; value: { value: unknown; at: string | null } }) {
  const { t } = useT();
  const v = value.value;
  return (
    <details open={v !== null && typeof v === 'object' && !Array.isArray(v)}>
      <summary>
        {title} — {t('readAt')} <Time iso={value.at} />
      </summary>
      {v === null ? (
        <p className="muted">{t('none')}</p>
      ) : v !== null && typeof v === 'object' && !Array.isArray(v) ? (
        <table className="kv">
          <tbody>
            {Object.entries(v as Record<string, unknown>).map(([k, x]) => (
              <tr key={k}>
                <th>{k}</th>
                <td>{typeof x === 'object' && x !== null ? JSON.stringify(x) : String(x)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      ) : (
        <pre className="raw">{JSON.stringify(v, null, 2)}</pre>
      )}
    </details>
  );
}

export function DevicePage({ id }: { id: string }) {
  const { can } = useCan();
  const { t, lang } = useT();
  const path = `/devices/${encodeURIComponent(id)}`;
  const device = useLoad(() => get<DeviceDetail>(path), [id]);
  const jobs = useLoad(() => get<Page<Job>>(`/jobs${qs({ deviceId: id, limit: 50 })}`), [id]);
  const groups = useLoad(allGroups, []);
  const [actionError, setActionError] = useState<unknown>(null);
  const [note, setNote] = useState('');
  useLive(
    { deviceId: id },
    () => true,
    () => {
      device.reload();
      jobs.reload();
    },
  );
  const refresh = async () => {
    setActionError(null);
    try {
      await post(`${path}/refresh`);
      setNote(t('refreshSent'));
    } catch (err) {
      setActionError(err);
    }
  };
  const d = device.data;
  return (
    <section>
      <p className="crumbs">
        <Link to="/devices">{t('devices')}</Link> ›
      </p>
      <h1>
        {t('device')} {d ? `#${d.deviceNumber}` : short(id)} {d?.name ?? ''}
      </h1>
      <ErrorLine error={device.error} />
      <Loading when={device.loading && !d} />
      {d && (
        <>
          <dl className="facts">
            <dt>{t('status')}</dt>
            <dd>{deviceStatus(d.status, lang)}</dd>
            <dt>{t('serial')}</dt>
            <dd>{d.serialNumber ?? '—'}</dd>
            <dt>UDID</dt>
            <dd>
              <code>{d.udid}</code>
            </dd>
            <dt>{t('model')}</dt>
            <dd>
              {d.productName ?? '—'} {d.model ?? ''}
            </dd>
            <dt>{t('os')}</dt>
            <dd>{d.osVersion ?? '—'}</dd>
            <dt>{t('group')}</dt>
            <dd>{groupName(groups.data, d.groupId)}</dd>
            <dt>{t('supervised')}</dt>
            <dd>{d.isSupervised === null ? '—' : d.isSupervised ? t('yes') : t('no')}</dd>
            <dt>{t('sharedIpad')}</dt>
            <dd>{d.isSharedIPad ? t('yes') : t('no')}</dd>
            <dt>{t('enrolledAt')}</dt>
            <dd>
              <Time iso={d.enrolledAt} />
            </dd>
            <dt>{t('lastSeen')}</dt>
            <dd>
              <Time iso={d.lastSeenAt} />
            </dd>
            <dt>{t('identityNotAfter')}</dt>
            <dd
              data-identity-not-after
              className={d.identityNotAfter && Date.parse(d.identityNotAfter) <= Date.now() ? 'warning' : ''}
            >
              <Time iso={d.identityNotAfter ?? null} />
              {d.identityNotAfter && Date.parse(d.identityNotAfter) <= Date.now() && (
                <> — {t('identityExpired')}</>
              )}
              {d.identityRenewalAt && (
                <> ({t('identityRenewing', { at: new Date(d.identityRenewalAt).toLocaleString() })})</>
              )}
            </dd>
          </dl>
          <div className="actions">
            {can('operate') && (
              <button type="button" onClick={() => void refresh()}>
                {t('refreshDevice')}
              </button>
            )}
            {note && <span className="note">{note}</span>}
          </div>
          <ErrorLine error={actionError} />
          <h2>{t('deviceJobs')}</h2>
          <ErrorLine error={jobs.error} />
          <table className="list jobs">
            <thead>
              <tr>
                <th>{t('job')}</th>
                <th>{t('distribution')}</th>
                <th>{t('app')}</th>
                <th>{t('status')}</th>
                <th>{t('updated')}</th>
              </tr>
            </thead>
            <tbody>
              {(jobs.data?.items ?? []).map((j) => (
                <tr key={j.id}>
                  <td>
                    <Link to={`/jobs/${j.id}`}>{short(j.id)}</Link>
                  </td>
                  <td>
                    <Link to={`/distributions/${j.distributionId}`}>{short(j.distributionId)}</Link>
                  </td>
                  <td>
                    <AppRef job={j} />
                  </td>
                  <td>
                    <StatusBadge status={j.status} retryCount={j.retryCount} />
                  </td>
                  <td>
                    <Time iso={j.updatedAt} />
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
          <h2>{t('facts')}</h2>
          <Stamp title={t('facts')} value={d.facts} />
          <Stamp title={t('restrictions')} value={d.restrictions} />
          <Stamp title={t('sharedUsers')} value={d.sharedUsers} />
          <Stamp title={t('installedApps')} value={d.installedApps} />
          <Stamp title={t('managedApps')} value={d.managedApps} />
        </>
      )}
    </section>
  );
}

import { useState } from 'react';
import type { FormEvent } from 'react';
import { allGroups, ApiError, get, post, qs } from '../api.ts';
import type { Asset, Cause, Device, Page, Token } from '../api.ts';
import { TOKEN_STATE_LABELS } from '../messages.ts';
import { ErrorLine, Loading, navigate, useLoad, useT } from '../ui.tsx';
import type { I18n } from '../ui.tsx';

interface PreflightDevice {
  deviceId: string;
  deviceNumber: number;
  serialNumber: string | null;
  factsAt: string | null;
  causes: (Cause & { adamIds: string[] })[];
}

interface Preflight {
  devices: PreflightDevice[];
  summary: { devices: number; withCauses: number; byCode: Record<string, number> };
}

/** POST /distributions body (DESIGN §7); pre-flight takes the same. */
interface DistributionBody {
  kind: 'install' | 'uninstall';
  tokenId: string;
  adamIds: string[];
  targets: { groupIds?: string[]; deviceIds?: string[]; includeSubgroups?: boolean };
  licenseMode: 'auto' | 'manual';
  scheduledAt?: string;
}

/** Serials resolved this many at a time: a pasted class list is dozens, not thousands. */
const SERIAL_LOOKUPS_IN_FLIGHT = 8;
const MAX_SERIALS = 1000;

const splitSerials = (text: string) => [
  ...new Set(
    text
      .split(/[\s,;、]+/)
      .map((s) => s.trim())
      .filter((s) => s !== ''),
  ),
];

/**
 * The API targets devices by id; people know them by serial number. Each serial is looked up
 * (GET /devices?serialNumber=); unknown ones are refused here, with a code like the API's.
 */
async function deviceIdsOf(serials: string[], t: I18n['t']): Promise<string[]> {
  if (serials.length > MAX_SERIALS)
    throw new ApiError(400, 'request.too_many_serials', t('tooManySerials', { n: MAX_SERIALS }));
  const found = new Map<string, string>();
  for (let i = 0; i < serials.length; i += SERIAL_LOOKUPS_IN_FLIGHT) {
    await Promise.all(
      serials.slice(i, i + SERIAL_LOOKUPS_IN_FLIGHT).map(async (serial) => {
        const page = await get<Page<Device>>(`/devices${qs({ serialNumber: serial, limit: 1 })}`);
        const d = page.items[0];
        if (d) found.set(serial, d.id);
      }),
    );
  }
  const missing = serials.filter((s) => !found.has(s));
  if (missing.length > 0)
    throw new ApiError(404, 'device.serial_not_found', t('serialsNotFound', { serials: missing.join(', ') }));
  return serials.map((s) => found.get(s)!);
}

function TokenAssets(props: { tokenId: string; picked: Set<string>; onToggle(adamId: string): void }) {
  const { t } = useT();
  const assets = useLoad(
    () =>
      props.tokenId
        ? get<Page<Asset>>(`/vpp-tokens/${encodeURIComponent(props.tokenId)}/assets`)
        : Promise.resolve<Page<Asset>>({ items: [], nextCursor: null }),
    [props.tokenId],
  );
  if (assets.error) return <ErrorLine error={assets.error} />;
  if (!assets.data) return <Loading when />;
  // One row per app: an app bought with two pricing params (STDQ, PLUS) is still one app to install.
  const byAdam = new Map<string, Asset & { left: number }>();
  for (const a of assets.data.items) {
    const seen = byAdam.get(a.adamId);
    if (seen) seen.left += a.availableCount;
    else byAdam.set(a.adamId, { ...a, left: a.availableCount });
  }
  if (byAdam.size === 0) return <p className="muted">{t('noAssets')}</p>;
  return (
    <ul className="pick-list" data-assets>
      {[...byAdam.values()].map((a) => (
        <li key={a.adamId} className={a.left <= 0 ? 'warn' : ''}>
          <label>
            <input
              type="checkbox"
              name="adamId"
              value={a.adamId}
              checked={props.picked.has(a.adamId)}
              onChange={() => props.onToggle(a.adamId)}
            />{' '}
            <b>{a.name ?? a.adamId}</b> <span className="muted">({a.adamId})</span>{' '}
            <span data-available={a.left}>{t('licencesLeftN', { n: a.left })}</span>
          </label>
        </li>
      ))}
    </ul>
  );
}

function PreflightResult({ result }: { result: Preflight }) {
  const { t, pick } = useT();
  const withCauses = result.devices.filter((d) => d.causes.length > 0);
  const clean = result.summary.devices - result.summary.withCauses;
  return (
    <div className="preflight" data-preflight>
      <p className={withCauses.length === 0 ? 'note ok' : 'note'}>
        <span data-preflight-clean={clean}>
          {t('preflightClean', { n: clean, total: result.summary.devices })}
        </span>
        {withCauses.length > 0 && (
          <>
            {' '}
            <span data-preflight-problems={withCauses.length}>
              {t('preflightProblems', { n: withCauses.length })}
            </span>
          </>
        )}
      </p>
      {withCauses.length > 0 && (
        <table className="list preflight-devices">
          <thead>
            <tr>
              <th>{t('deviceNumber')}</th>
              <th>{t('serial')}</th>
              <th>{t('topCause')}</th>
              <th>{t('remedy')}</th>
            </tr>
          </thead>
          <tbody>
            {withCauses.map((d) => {
              const top = d.causes[0]!;
              return (
                <tr key={d.deviceId} data-preflight-device={d.deviceId} data-cause={top.code}>
                  <td>#{d.deviceNumber}</td>
                  <td>{d.serialNumber ?? '—'}</td>
                  <td>
                    <b>{pick(top.title)}</b> <code className="cause-code">{top.code}</code>
                    {d.causes.length > 1 && (
                      <div className="muted">{t('moreCausesN', { n: d.causes.length - 1 })}</div>
                    )}
                  </td>
                  <td>{pick(top.remedy)}</td>
                </tr>
              );
            })}
          </tbody>
        </table>
      )}
    </div>
  );
}

/** The "New distribution" form: pick token, apps and targets, pre-flight it, then distribute. */
export function NewDistribution() {
  const { t, lang } = useT();
  const data = useLoad(
    async () => ({ tokens: (await get<Page<Token>>('/vpp-tokens')).items, groups: await allGroups() }),
    [],
  );
  const [kind, setKind] = useState<'install' | 'uninstall'>('install');
  const [tokenChoice, setTokenChoice] = useState('');
  const [picked, setPicked] = useState<Set<string>>(new Set());
  const [groupIds, setGroupIds] = useState<string[]>([]);
  const [includeSubgroups, setIncludeSubgroups] = useState(true);
  const [serials, setSerials] = useState('');
  const [licenseMode, setLicenseMode] = useState<'auto' | 'manual'>('auto');
  const [scheduledAt, setScheduledAt] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const [preflight, setPreflight] = useState<Preflight | null>(null);

  const tokens = data.data?.tokens ?? [];
  // Until the administrator picks one, the first token: most schools have exactly one.
  const tokenId = tokenChoice || tokens[0]?.id || '';
  const groups = (data.data?.groups ?? [])
    .slice()
    .sort((a, b) => a.path.join('/').localeCompare(b.path.join('/')));

  const body = async (): Promise<DistributionBody> => {
    const deviceIds = await deviceIdsOf(splitSerials(serials), t);
    return {
      kind,
      tokenId,
      adamIds: [...picked],
      targets: {
        ...(groupIds.length > 0 ? { groupIds, includeSubgroups } : {}),
        ...(deviceIds.length > 0 ? { deviceIds } : {}),
      },
      licenseMode,
      // datetime-local is the browser's local time without a zone; the API wants an instant.
      ...(scheduledAt ? { scheduledAt: new Date(scheduledAt).toISOString() } : {}),
    };
  };
  const run = async (what: (b: DistributionBody) => Promise<void>) => {
    setBusy(true);
    setError(null);
    try {
      await what(await body());
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  const onPreflight = () =>
    run(async (b) => {
      setPreflight(null);
      setPreflight(await post<Preflight>('/distributions/preflight', b));
    });
  const onDistribute = (e: FormEvent) => {
    e.preventDefault();
    void run(async (b) => {
      const created = await post<{ id: string; jobCount: number }>('/distributions', b);
      navigate(`/distributions/${created.id}`);
    });
  };
  const changed = () => setPreflight(null);

  if (data.error) return <ErrorLine error={data.error} />;
  if (!data.data) return <Loading when />;
  if (tokens.length === 0) return <p className="muted">{t('noTokens')}</p>;
  return (
    <form className="new-distribution" onSubmit={onDistribute} onChange={changed} data-new-distribution>
      <h2>{t('newDistribution')}</h2>
      <div className="form-grid">
        <label>
          {t('kind')}
          <select
            name="kind"
            value={kind}
            onChange={(e) => setKind(e.target.value as 'install' | 'uninstall')}
          >
            <option value="install">{t('kind_install')}</option>
            <option value="uninstall">{t('kind_uninstall')}</option>
          </select>
        </label>
        <label>
          {t('vppToken')}
          <select
            name="tokenId"
            value={tokenId}
            onChange={(e) => {
              setTokenChoice(e.target.value);
              setPicked(new Set());
            }}
          >
            {tokens.map((tk) => (
              <option key={tk.id} value={tk.id}>
                {tk.orgName}
                {tk.locationName ? ` / ${tk.locationName}` : ''} —{' '}
                {(TOKEN_STATE_LABELS as Record<string, { ja: string; en: string }>)[tk.state]?.[lang] ??
                  tk.state}
              </option>
            ))}
          </select>
        </label>
        <label>
          {t('licenseMode')}
          <select
            name="licenseMode"
            value={licenseMode}
            onChange={(e) => setLicenseMode(e.target.value as 'auto' | 'manual')}
          >
            <option value="auto">{t('licenseMode_auto')}</option>
            <option value="manual">{t('licenseMode_manual')}</option>
          </select>
        </label>
        <label>
          {t('scheduleAt')}
          <input
            type="datetime-local"
            name="scheduledAt"
            value={scheduledAt}
            onChange={(e) => setScheduledAt(e.target.value)}
          />
          <span className="muted">{t('scheduleHelp')}</span>
        </label>
      </div>
      <fieldset>
        <legend>{t('appsToDistribute')}</legend>
        <TokenAssets
          tokenId={tokenId}
          picked={picked}
          onToggle={(adamId) =>
            setPicked((s) => {
              const next = new Set(s);
              if (!next.delete(adamId)) next.add(adamId);
              return next;
            })
          }
        />
      </fieldset>
      <fieldset className="targets">
        <legend>{t('targets')}</legend>
        <label>
          {t('targetGroups')}
          <select
            name="groupIds"
            multiple
            size={Math.min(8, Math.max(3, groups.length))}
            value={groupIds}
            onChange={(e) => setGroupIds([...e.target.selectedOptions].map((o) => o.value))}
          >
            {groups.map((g) => (
              <option key={g.id} value={g.id}>
                {g.path.join(' / ')}
              </option>
            ))}
          </select>
        </label>
        <label className="inline">
          <input
            type="checkbox"
            name="includeSubgroups"
            checked={includeSubgroups}
            onChange={(e) => setIncludeSubgroups(e.target.checked)}
          />{' '}
          {t('includeSubgroups')}
        </label>
        <label>
          {t('targetSerials')}
          <textarea
            name="serials"
            rows={3}
            value={serials}
            onChange={(e) => setSerials(e.target.value)}
            placeholder="DMPXXXXXXXXX"
          />
        </label>
      </fieldset>
      <div className="actions">
        <button type="button" disabled={busy} onClick={() => void onPreflight()} data-testid="preflight">
          {t('preflight')}
        </button>
        <button type="submit" disabled={busy} data-testid="distribute">
          {t('distribute')}
        </button>
        {busy && <span className="muted">{t('checking')}</span>}
      </div>
      <ErrorLine error={error} />
      {preflight && <PreflightResult result={preflight} />}
    </form>
  );
}

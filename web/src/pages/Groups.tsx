import { useState } from 'react';
import { useCan } from '../me.tsx';
import { allGroups, api, get } from '../api.ts';
import type { AutoAssign, Group, KeepUpdated, Page, Token } from '../api.ts';
import { ErrorLine, Link, Loading, useLoad, useT } from '../ui.tsx';
import { EnrollmentLinks } from './EnrollmentLinks.tsx';

function tokenName(tokens: Token[], id: string | null): string {
  if (!id) return '—';
  const tk = tokens.find((x) => x.id === id);
  return tk ? `${tk.orgName}${tk.locationName ? ` / ${tk.locationName}` : ''}` : id.slice(0, 8);
}

function AutoAssignLine({ group, tokens, groups }: { group: Group; tokens: Token[]; groups: Group[] }) {
  const { t } = useT();
  const a = useLoad(
    () => get<AutoAssign>(`/groups/${encodeURIComponent(group.id)}/auto-assign-token`),
    [group.id],
  );
  if (a.error) return <ErrorLine error={a.error} />;
  if (!a.data) return <span className="muted">{t('loading')}</span>;
  const from = a.data.inheritedFrom ? groups.find((g) => g.id === a.data?.inheritedFrom) : undefined;
  return (
    <span data-autoassign={group.id}>
      {t('autoAssign')}: <b>{tokenName(tokens, a.data.effectiveTokenId)}</b>{' '}
      <span className="muted">
        ({a.data.tokenId ? t('ownSetting') : from ? `${t('inheritedFrom')} ${from.name}` : t('none')})
      </span>
    </span>
  );
}

/** "Keep apps up to date" of one group: its own setting (or inherit) and the one in force (decision 0018). */
function KeepUpdatedLine({ group, groups }: { group: Group; groups: Group[] }) {
  const { can } = useCan();
  const { t } = useT();
  const k = useLoad(
    () => get<KeepUpdated>(`/groups/${encodeURIComponent(group.id)}/keep-apps-updated`),
    [group.id],
  );
  const [error, setError] = useState<unknown>(null);
  const [note, setNote] = useState('');
  if (k.error) return <ErrorLine error={k.error} />;
  if (!k.data) return <span className="muted">{t('loading')}</span>;
  const from = k.data.inheritedFrom ? groups.find((g) => g.id === k.data?.inheritedFrom) : undefined;
  const change = async (value: string) => {
    setError(null);
    try {
      const r = await api<KeepUpdated & { updateJobs: number }>(
        'PUT',
        `/groups/${encodeURIComponent(group.id)}/keep-apps-updated`,
        { enabled: value === 'on' ? true : value === 'off' ? false : null },
      );
      setNote(r.updateJobs > 0 ? t('keepStartedN', { n: r.updateJobs }) : '');
      k.reload();
    } catch (err) {
      setError(err);
    }
  };
  const own = k.data.enabled === null ? 'inherit' : k.data.enabled ? 'on' : 'off';
  return (
    <span data-keep-updated={group.id}>
      <label>
        {t('keepUpdated')}:{' '}
        <select value={own} disabled={!can('manage')} onChange={(e) => void change(e.target.value)}>
          <option value="inherit">{t('keepInherit')}</option>
          <option value="on">{t('keepOn')}</option>
          <option value="off">{t('keepOff')}</option>
        </select>
      </label>{' '}
      <span className="muted">
        ({t('keepInForce', { value: k.data.effective ? t('on') : t('off') })}
        {from ? `, ${t('inheritedFrom')} ${from.name}` : ''})
      </span>
      {note && <span className="note"> {note}</span>}
      <ErrorLine error={error} />
    </span>
  );
}

function Node(props: {
  group: Group;
  children: Map<string | null, Group[]>;
  tokens: Token[];
  groups: Group[];
  depth: number;
}) {
  const { t, pick } = useT();
  const [showAuto, setShowAuto] = useState(props.depth < 2);
  const [showLinks, setShowLinks] = useState(false);
  const g = props.group;
  const registered = props.tokens.filter((x) => x.groupId === g.id);
  const shared = props.tokens.filter((x) => x.sharedTo.includes(g.id));
  const kids = props.children.get(g.id) ?? [];
  return (
    <li data-group={g.id}>
      <div className="node">
        <b>{g.name}</b>
        {registered.length > 0 && (
          <span className="tag">
            {t('tokensHere')}: {registered.map((x) => tokenName(props.tokens, x.id)).join(', ')}
          </span>
        )}
        {shared.length > 0 && (
          <span className="tag shared">
            {t('sharedHere')}: {shared.map((x) => tokenName(props.tokens, x.id)).join(', ')}
          </span>
        )}
        {showAuto ? (
          <>
            <AutoAssignLine group={g} tokens={props.tokens} groups={props.groups} />
            <KeepUpdatedLine group={g} groups={props.groups} />
          </>
        ) : (
          <button type="button" className="link" onClick={() => setShowAuto(true)}>
            {t('showAutoAssign')}
          </button>
        )}
        <Link to={`/devices?groupId=${encodeURIComponent(g.id)}&includeSubgroups=true`}>
          {t('showDevices')}
        </Link>{' '}
        <button type="button" className="link" data-show-links={g.id} onClick={() => setShowLinks((v) => !v)}>
          {pick({ ja: '登録用リンク', en: 'Enrollment links' })}
        </button>
      </div>
      {showLinks && <EnrollmentLinks groupId={g.id} />}
      {kids.length > 0 && (
        <ul>
          {kids.map((k) => (
            <Node key={k.id} {...props} group={k} depth={props.depth + 1} />
          ))}
        </ul>
      )}
    </li>
  );
}

/** The group tree with the tokens registered and shared at each level; auto-assign read per group on demand. */
export function GroupsPage() {
  const { t } = useT();
  const data = useLoad(
    async () => ({ groups: await allGroups(), tokens: (await get<Page<Token>>('/vpp-tokens')).items }),
    [],
  );
  const children = new Map<string | null, Group[]>();
  for (const g of data.data?.groups ?? []) {
    const list = children.get(g.parentId) ?? [];
    list.push(g);
    children.set(g.parentId, list);
  }
  for (const list of children.values()) list.sort((a, b) => a.name.localeCompare(b.name));
  // The tops of the tree the caller sees: the root, or the top of a school's scope (decision 0029).
  const known = new Set((data.data?.groups ?? []).map((g) => g.id));
  const tops = (data.data?.groups ?? [])
    .filter((g) => g.parentId === null || !known.has(g.parentId))
    .sort((a, b) => a.name.localeCompare(b.name));
  return (
    <section>
      <h1>{t('groups')}</h1>
      <ErrorLine error={data.error} />
      <Loading when={data.loading && !data.data} />
      {data.data && (
        <ul className="tree">
          {tops.map((g) => (
            <Node
              key={g.id}
              group={g}
              children={children}
              tokens={data.data?.tokens ?? []}
              groups={data.data?.groups ?? []}
              depth={0}
            />
          ))}
        </ul>
      )}
    </section>
  );
}

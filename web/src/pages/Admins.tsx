import { useState } from 'react';
import { allGroups, api, get, post } from '../api.ts';
import type { Group } from '../api.ts';
import { useCan } from '../me.tsx';
import type { Me } from '../me.tsx';
import type { Bilingual } from '../messages.ts';
import { ErrorLine, Loading, Time, useLoad, useT } from '../ui.tsx';

/** Administrators and their API tokens (decision 0029); owners and admins manage, everyone has their own tokens. */

type Role = Me['administrator']['role'];
interface Admin {
  id: string;
  name: string;
  role: Role;
  scopeGroupId: string;
  wholeTree: boolean;
  disabled: boolean;
  createdAt: string;
}
interface AdminToken {
  id: string;
  name: string;
  state: 'active' | 'expired' | 'revoked';
  createdAt: string;
  lastUsedAt: string | null;
  expiresAt: string | null;
}

const ROLES: Role[] = ['viewer', 'operator', 'admin', 'owner'];

// This page's words, here rather than in messages.ts: they are used nowhere else.
const W = {
  title: { ja: '管理者', en: 'Administrators' },
  help: {
    ja: '管理者ごとに役割と範囲（グループとその下）を決めます。オペレーターは配信・再実行・キャンセル・端末情報の更新ができ、閲覧者は見るだけです。',
    en: 'Each administrator has a role and a scope (a group and everything below it). Operators distribute, retry, cancel and refresh devices; viewers only read.',
  },
  name: { ja: '名前', en: 'Name' },
  role: { ja: '役割', en: 'Role' },
  scope: { ja: '範囲', en: 'Scope' },
  state: { ja: '状態', en: 'State' },
  enabled: { ja: '有効', en: 'Enabled' },
  disabledState: { ja: '無効', en: 'Disabled' },
  disable: { ja: '無効にする', en: 'Disable' },
  enable: { ja: '有効にする', en: 'Enable' },
  create: { ja: '管理者を追加', en: 'Add administrator' },
  wholeTree: { ja: '全体', en: 'Whole tree' },
  tokens: { ja: 'API トークン', en: 'API tokens' },
  myTokens: { ja: '自分の API トークン', en: 'My API tokens' },
  tokenName: { ja: 'トークンの名前', en: 'Token name' },
  newToken: { ja: 'トークンを作成', en: 'Create token' },
  expiresIn: { ja: '有効期間', en: 'Valid for' },
  never: { ja: '無期限', en: 'No expiry' },
  revoke: { ja: '失効させる', en: 'Revoke' },
  revokeConfirm: {
    ja: 'このトークンを失効させますか？ 以後このトークンでは操作できません。',
    en: 'Revoke this token? It is refused from then on.',
  },
  shownOnce: {
    ja: 'このトークンが表示されるのは今回だけです（haishin にはハッシュしか残りません）。安全な場所に保管してください。',
    en: 'This is the only time this token is shown (haishin keeps only its hash). Keep it somewhere safe.',
  },
  lastUsed: { ja: '最終利用', en: 'Last used' },
  expires: { ja: '有効期限', en: 'Expires' },
  active: { ja: '有効', en: 'Active' },
  expired: { ja: '期限切れ', en: 'Expired' },
  revoked: { ja: '失効', en: 'Revoked' },
  you: { ja: '（あなた）', en: ' (you)' },
  owner: { ja: 'オーナー', en: 'Owner' },
  admin: { ja: '管理者', en: 'Admin' },
  operator: { ja: 'オペレーター', en: 'Operator' },
  viewer: { ja: '閲覧者', en: 'Viewer' },
} satisfies Record<string, Bilingual>;

const DURATIONS = [
  { value: '', label: W.never },
  { value: '30d', label: { ja: '30日', en: '30 days' } },
  { value: '90d', label: { ja: '90日', en: '90 days' } },
  { value: '365d', label: { ja: '1年', en: '1 year' } },
];

function groupPath(groups: Group[], id: string): string {
  return groups.find((g) => g.id === id)?.path.join(' / ') ?? id;
}

/** One administrator's tokens: list, create (the secret shown once), revoke. */
function Tokens(props: { adminId: string; title: Bilingual }) {
  const { pick } = useT();
  const tokens = useLoad(
    () => get<{ items: AdminToken[] }>(`/admins/${encodeURIComponent(props.adminId)}/tokens`),
    [props.adminId],
  );
  const [name, setName] = useState('');
  const [expiresIn, setExpiresIn] = useState('');
  const [secret, setSecret] = useState<string | null>(null);
  const [error, setError] = useState<unknown>(null);
  const create = async () => {
    setError(null);
    try {
      const made = await post<{ secret: string }>(`/admins/${encodeURIComponent(props.adminId)}/tokens`, {
        name,
        ...(expiresIn ? { expiresIn } : {}),
      });
      setSecret(made.secret);
      setName('');
      tokens.reload();
    } catch (err) {
      setError(err);
    }
  };
  const revoke = async (id: string) => {
    if (!window.confirm(pick(W.revokeConfirm))) return;
    setError(null);
    try {
      await post(`/admins/${encodeURIComponent(props.adminId)}/tokens/${encodeURIComponent(id)}/revoke`);
      tokens.reload();
    } catch (err) {
      setError(err);
    }
  };
  return (
    <div className="admin-tokens" data-admin-tokens={props.adminId}>
      <h3>{pick(props.title)}</h3>
      {secret && (
        <div className="note ok" data-created-token="">
          <p>{pick(W.shownOnce)}</p>
          <p>
            <code data-token-secret="">{secret}</code>
          </p>
        </div>
      )}
      <form
        className="inline"
        onSubmit={(e) => {
          e.preventDefault();
          void create();
        }}
      >
        <label>
          {pick(W.tokenName)}{' '}
          <input
            value={name}
            required
            maxLength={200}
            onChange={(e) => setName(e.target.value)}
            name="tokenName"
          />
        </label>{' '}
        <label>
          {pick(W.expiresIn)}{' '}
          <select value={expiresIn} onChange={(e) => setExpiresIn(e.target.value)} name="tokenExpiresIn">
            {DURATIONS.map((d) => (
              <option key={d.value} value={d.value}>
                {pick(d.label)}
              </option>
            ))}
          </select>
        </label>{' '}
        <button type="submit">{pick(W.newToken)}</button>
      </form>
      <ErrorLine error={error ?? tokens.error} />
      {tokens.data && tokens.data.items.length > 0 && (
        <table>
          <thead>
            <tr>
              <th>{pick(W.tokenName)}</th>
              <th>{pick(W.state)}</th>
              <th>{pick(W.expires)}</th>
              <th>{pick(W.lastUsed)}</th>
              <th />
            </tr>
          </thead>
          <tbody>
            {tokens.data.items.map((tk) => (
              <tr key={tk.id} data-token={tk.id} data-state={tk.state}>
                <td>{tk.name}</td>
                <td>{pick(W[tk.state])}</td>
                <td>{tk.expiresAt ? <Time iso={tk.expiresAt} /> : pick(W.never)}</td>
                <td>{tk.lastUsedAt ? <Time iso={tk.lastUsedAt} /> : '—'}</td>
                <td>
                  {tk.state === 'active' && (
                    <button type="button" onClick={() => void revoke(tk.id)}>
                      {pick(W.revoke)}
                    </button>
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </div>
  );
}

export function AdminsPage() {
  const { pick } = useT();
  const { me, can } = useCan();
  const manages = can('manage');
  const data = useLoad(
    async () => ({
      admins: manages ? (await get<{ items: Admin[] }>('/admins')).items : [],
      groups: await allGroups(),
    }),
    [manages],
  );
  const [open, setOpen] = useState<string | null>(null);
  const [name, setName] = useState('');
  const [role, setRole] = useState<Role>('operator');
  const [scope, setScope] = useState('');
  const [error, setError] = useState<unknown>(null);
  if (!me) return <Loading when />;
  const myRank = ROLES.indexOf(me.administrator.role);
  const givable = ROLES.filter((r) => ROLES.indexOf(r) <= myRank);

  const create = async () => {
    setError(null);
    try {
      await post('/admins', { name, role, ...(scope ? { scopeGroupId: scope } : {}) });
      setName('');
      data.reload();
    } catch (err) {
      setError(err);
    }
  };
  const setDisabled = async (id: string, disabled: boolean) => {
    setError(null);
    try {
      await api('PATCH', `/admins/${encodeURIComponent(id)}`, { disabled });
      data.reload();
    } catch (err) {
      setError(err);
    }
  };
  const groups = data.data?.groups ?? [];

  return (
    <section className="admins">
      <h1>{pick(W.title)}</h1>
      <p className="muted">{pick(W.help)}</p>
      <ErrorLine error={error ?? data.error} />
      {manages && (
        <>
          <form
            className="inline"
            data-new-admin=""
            onSubmit={(e) => {
              e.preventDefault();
              void create();
            }}
          >
            <label>
              {pick(W.name)}{' '}
              <input
                value={name}
                required
                maxLength={200}
                onChange={(e) => setName(e.target.value)}
                name="adminName"
              />
            </label>{' '}
            <label>
              {pick(W.role)}{' '}
              <select value={role} onChange={(e) => setRole(e.target.value as Role)} name="adminRole">
                {givable.map((r) => (
                  <option key={r} value={r}>
                    {pick(W[r])}
                  </option>
                ))}
              </select>
            </label>{' '}
            <label>
              {pick(W.scope)}{' '}
              <select value={scope} onChange={(e) => setScope(e.target.value)} name="adminScope">
                {groups.map((g) => (
                  <option key={g.id} value={g.id === me.scope.groupId ? '' : g.id}>
                    {g.path.join(' / ')}
                  </option>
                ))}
              </select>
            </label>{' '}
            <button type="submit">{pick(W.create)}</button>
          </form>
          <Loading when={data.loading && !data.data} />
          <table data-admins="">
            <thead>
              <tr>
                <th>{pick(W.name)}</th>
                <th>{pick(W.role)}</th>
                <th>{pick(W.scope)}</th>
                <th>{pick(W.state)}</th>
                <th />
              </tr>
            </thead>
            <tbody>
              {(data.data?.admins ?? []).map((a) => (
                <tr key={a.id} data-admin={a.id} data-role={a.role}>
                  <td>
                    {a.name}
                    {a.id === me.administrator.id ? pick(W.you) : ''}
                  </td>
                  <td>{pick(W[a.role])}</td>
                  <td>{a.wholeTree ? pick(W.wholeTree) : groupPath(groups, a.scopeGroupId)}</td>
                  <td>{a.disabled ? pick(W.disabledState) : pick(W.enabled)}</td>
                  <td>
                    {a.id !== me.administrator.id && ROLES.indexOf(a.role) <= myRank && (
                      <button type="button" onClick={() => void setDisabled(a.id, !a.disabled)}>
                        {a.disabled ? pick(W.enable) : pick(W.disable)}
                      </button>
                    )}{' '}
                    <button
                      type="button"
                      className="link"
                      onClick={() => setOpen(open === a.id ? null : a.id)}
                    >
                      {pick(W.tokens)}
                    </button>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
          {open && open !== me.administrator.id && <Tokens adminId={open} title={W.tokens} />}
        </>
      )}
      <Tokens adminId={me.administrator.id} title={W.myTokens} />
    </section>
  );
}

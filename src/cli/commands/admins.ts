import { usageError } from '../client.ts';
import { fields, table, when } from '../output.ts';
import { emit } from './common.ts';
import type { Ctx } from './common.ts';

/** `haishin admins …` over `/api/v1/admins` and `/api/v1/me` (decision 0029). */

type Role = 'owner' | 'admin' | 'operator' | 'viewer';
const ROLES: readonly Role[] = ['owner', 'admin', 'operator', 'viewer'];

export interface AdminDoc {
  id: string;
  name: string;
  role: Role;
  scopeGroupId: string;
  wholeTree: boolean;
  disabled: boolean;
  createdAt: string;
}

export interface AdminTokenDoc {
  id: string;
  name: string;
  adminId: string;
  state: 'active' | 'expired' | 'revoked';
  createdAt: string;
  lastUsedAt: string | null;
  expiresAt: string | null;
  revokedAt: string | null;
}

const ROLE_LABEL: Record<Role, { ja: string; en: string }> = {
  owner: { ja: 'オーナー', en: 'owner' },
  admin: { ja: '管理者', en: 'admin' },
  operator: { ja: 'オペレーター', en: 'operator' },
  viewer: { ja: '閲覧者', en: 'viewer' },
};

const TOKEN_STATE = {
  active: { ja: '有効', en: 'active' },
  expired: { ja: '期限切れ', en: 'expired' },
  revoked: { ja: '失効', en: 'revoked' },
} as const;

function role(value: string): Role {
  if ((ROLES as readonly string[]).includes(value)) return value as Role;
  throw usageError('usage.role', {
    ja: `役割「${value}」は owner、admin、operator、viewer のどれかにしてください。`,
    en: `Role "${value}" must be one of owner, admin, operator, viewer.`,
  });
}

const scopeText = (ctx: Ctx, a: AdminDoc) => (a.wholeTree ? ctx.t('全体', 'whole tree') : a.scopeGroupId);

function adminFields(ctx: Ctx, a: AdminDoc): string {
  return fields(
    [
      [{ ja: 'ID', en: 'ID' }, a.id],
      [{ ja: '名前', en: 'Name' }, a.name],
      [{ ja: '役割', en: 'Role' }, ROLE_LABEL[a.role][ctx.lang]],
      [{ ja: '範囲（グループ）', en: 'Scope (group)' }, scopeText(ctx, a)],
      [{ ja: '状態', en: 'State' }, a.disabled ? ctx.t('無効', 'disabled') : ctx.t('有効', 'enabled')],
    ],
    ctx.lang,
  );
}

export async function adminsMe(ctx: Ctx): Promise<void> {
  const me = await ctx.api.get<{
    administrator: AdminDoc;
    token: { id: string; name: string };
    permissions: string[];
    scope: { groupId: string; wholeTree: boolean; path: string[] };
  }>('/me');
  emit(ctx, me, () =>
    [
      adminFields(ctx, me.administrator),
      fields(
        [
          [{ ja: 'トークン', en: 'Token' }, `${me.token.name} (${me.token.id})`],
          [{ ja: '権限', en: 'Permissions' }, me.permissions.join(', ')],
          [{ ja: '範囲', en: 'Scope' }, me.scope.path.join(' / ')],
        ],
        ctx.lang,
      ),
    ].join('\n'),
  );
}

export async function adminsLs(ctx: Ctx): Promise<void> {
  const doc = await ctx.api.get<{ items: AdminDoc[] }>('/admins');
  emit(ctx, doc, () =>
    table(
      doc.items,
      [
        { header: { ja: 'ID', en: 'ID' }, value: (a) => a.id },
        { header: { ja: '名前', en: 'Name' }, value: (a) => a.name },
        { header: { ja: '役割', en: 'Role' }, value: (a) => ROLE_LABEL[a.role][ctx.lang] },
        { header: { ja: '範囲', en: 'Scope' }, value: (a) => scopeText(ctx, a) },
        {
          header: { ja: '状態', en: 'State' },
          value: (a) => (a.disabled ? ctx.t('無効', 'disabled') : ctx.t('有効', 'enabled')),
        },
      ],
      ctx.lang,
    ),
  );
}

/** Creates the administrator and, unless told not to, a first token shown this once. */
export async function adminsCreate(
  ctx: Ctx,
  name: string,
  o: { role: string; scope?: string; tokenName?: string; expiresIn?: string; withoutToken?: boolean },
): Promise<void> {
  const admin = await ctx.api.post<AdminDoc>('/admins', {
    name,
    role: role(o.role),
    ...(o.scope !== undefined ? { scopeGroupId: o.scope } : {}),
  });
  const token =
    o.withoutToken === true
      ? null
      : await ctx.api.post<AdminTokenDoc & { secret: string }>(
          `/admins/${encodeURIComponent(admin.id)}/tokens`,
          {
            name: o.tokenName ?? name,
            ...(o.expiresIn !== undefined ? { expiresIn: o.expiresIn } : {}),
          },
        );
  emit(ctx, { administrator: admin, token }, () =>
    [
      ctx.t(`管理者「${admin.name}」を作成しました。`, `Administrator "${admin.name}" created.`),
      adminFields(ctx, admin),
      ...(token ? ['', ...secretLines(ctx, token)] : []),
    ].join('\n'),
  );
}

function secretLines(ctx: Ctx, token: AdminTokenDoc & { secret: string }): string[] {
  return [
    ctx.t(
      'API トークン（表示は今回だけです。haishin にはハッシュしか残りません）:',
      'API token (shown this once; haishin keeps only its hash):',
    ),
    '',
    token.secret,
    '',
    fields(
      [
        [{ ja: 'トークンID', en: 'Token ID' }, token.id],
        [{ ja: '名前', en: 'Name' }, token.name],
        [{ ja: '有効期限', en: 'Expires' }, token.expiresAt ? when(token.expiresAt) : ctx.t('なし', 'never')],
      ],
      ctx.lang,
    ),
  ];
}

export async function adminsSet(
  ctx: Ctx,
  id: string,
  o: { role?: string; scope?: string; name?: string; disable?: boolean; enable?: boolean },
): Promise<void> {
  if (o.disable && o.enable)
    throw usageError('usage.disable_enable', {
      ja: '--disable と --enable は同時に指定できません。',
      en: 'Give --disable or --enable, not both.',
    });
  const admin = await ctx.api.request<AdminDoc>('PATCH', `/admins/${encodeURIComponent(id)}`, {
    body: {
      ...(o.name !== undefined ? { name: o.name } : {}),
      ...(o.role !== undefined ? { role: role(o.role) } : {}),
      ...(o.scope !== undefined ? { scopeGroupId: o.scope } : {}),
      ...(o.disable ? { disabled: true } : {}),
      ...(o.enable ? { disabled: false } : {}),
    },
  });
  emit(ctx, admin, () =>
    [
      ctx.t(`管理者「${admin.name}」を変更しました。`, `Administrator "${admin.name}" changed.`),
      adminFields(ctx, admin),
    ].join('\n'),
  );
}

export async function tokensLs(ctx: Ctx, adminId: string): Promise<void> {
  const doc = await ctx.api.get<{ items: AdminTokenDoc[] }>(`/admins/${encodeURIComponent(adminId)}/tokens`);
  emit(ctx, doc, () =>
    table(
      doc.items,
      [
        { header: { ja: 'ID', en: 'ID' }, value: (t) => t.id },
        { header: { ja: '名前', en: 'Name' }, value: (t) => t.name },
        { header: { ja: '状態', en: 'State' }, value: (t) => TOKEN_STATE[t.state][ctx.lang] },
        { header: { ja: '有効期限', en: 'Expires' }, value: (t) => (t.expiresAt ? when(t.expiresAt) : '—') },
        {
          header: { ja: '最終利用', en: 'Last used' },
          value: (t) => (t.lastUsedAt ? when(t.lastUsedAt) : '—'),
        },
      ],
      ctx.lang,
    ),
  );
}

export async function tokensCreate(
  ctx: Ctx,
  adminId: string,
  o: { name: string; expiresIn?: string },
): Promise<void> {
  const token = await ctx.api.post<AdminTokenDoc & { secret: string }>(
    `/admins/${encodeURIComponent(adminId)}/tokens`,
    { name: o.name, ...(o.expiresIn !== undefined ? { expiresIn: o.expiresIn } : {}) },
  );
  emit(ctx, token, () => secretLines(ctx, token).join('\n'));
}

export async function tokensRevoke(ctx: Ctx, adminId: string, tokenId: string): Promise<void> {
  const token = await ctx.api.post<AdminTokenDoc>(
    `/admins/${encodeURIComponent(adminId)}/tokens/${encodeURIComponent(tokenId)}/revoke`,
  );
  emit(ctx, token, () =>
    ctx.t(
      `トークン「${token.name}」(${token.id}) を失効させました。以後このトークンは使えません。`,
      `Token "${token.name}" (${token.id}) revoked: it is refused from now on.`,
    ),
  );
}

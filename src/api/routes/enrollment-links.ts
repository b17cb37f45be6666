import { Type } from 'typebox';
import { enrollmentLinkState } from '../../core/enrollment-links.ts';
import { parseDuration } from '../../core/duration.ts';
import type { EnrollmentLinkRow } from '../../store/enrollment-link-repo.ts';
import type { AdminApp, AdminContext } from '../admin.ts';
import { ApiError } from '../errors.ts';
import { scopeOf } from '../authz.ts';

/**
 * Enrollment links (decision 0022): the secret a device needs to obtain an identity from
 * `GET /mdm/enroll`. The secret (and the URL holding it) is answered once, at creation; haishin
 * keeps only its SHA-256.
 */

const Iso = Type.String({ format: 'date-time' });
const Nullable = <T extends ReturnType<typeof Type.String>>(t: T) => Type.Union([t, Type.Null()]);

export const EnrollmentLink = Type.Object({
  id: Type.String(),
  groupId: Type.String(),
  label: Nullable(Type.String()),
  state: Type.Union(
    [Type.Literal('active'), Type.Literal('expired'), Type.Literal('used_up'), Type.Literal('revoked')],
    { description: 'only an active link enrolls devices' },
  ),
  createdAt: Iso,
  expiresAt: Nullable(Iso),
  maxUses: Type.Union([Type.Integer(), Type.Null()], { description: 'null: no limit' }),
  useCount: Type.Integer({ description: 'enrollment profiles issued through this link' }),
  lastUsedAt: Nullable(Iso),
  revokedAt: Nullable(Iso),
});

const CreatedLink = Type.Intersect([
  EnrollmentLink,
  Type.Object({
    url: Type.String({ description: 'the enrollment link to hand to devices; shown this one time' }),
    token: Type.String({ description: 'the secret inside the URL (≥ 256 random bits); shown this one time' }),
  }),
]);

const CreateBody = Type.Object(
  {
    label: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
    expiresAt: Type.Optional(Iso),
    expiresIn: Type.Optional(
      Type.String({ description: 'instead of expiresAt: a duration from now, e.g. 7d, 12h', minLength: 2 }),
    ),
    maxUses: Type.Optional(Type.Integer({ minimum: 1, maximum: 1_000_000 })),
  },
  { additionalProperties: false },
);

const tags = ['enrollment'];
const list = Type.Object({ items: Type.Array(EnrollmentLink), nextCursor: Type.Null() });

export function linkToApi(row: EnrollmentLinkRow, now: Date) {
  const d = (v: string | null) => (v ? new Date(v) : null);
  return {
    id: row.id,
    groupId: row.group_id,
    label: row.label,
    state: enrollmentLinkState(
      {
        expiresAt: d(row.expires_at),
        maxUses: row.max_uses,
        useCount: Number(row.use_count),
        revokedAt: d(row.revoked_at),
      },
      now,
    ),
    createdAt: row.created_at,
    expiresAt: row.expires_at,
    maxUses: row.max_uses === null ? null : Number(row.max_uses),
    useCount: Number(row.use_count),
    lastUsedAt: row.last_used_at,
    revokedAt: row.revoked_at,
  };
}

/** The URL a device opens: DESIGN §7's `?group=` form plus the link's secret. */
export function enrollmentUrl(publicUrl: string, groupId: string, secret: string): string {
  return `${publicUrl}/mdm/enroll?group=${encodeURIComponent(groupId)}&token=${encodeURIComponent(secret)}`;
}

export async function registerEnrollmentLinkRoutes(
  app: AdminApp,
  ctx: AdminContext,
  publicUrl: string,
): Promise<void> {
  const { store, clock } = ctx;

  async function mustGetGroup(id: string) {
    const group = await store.groups.get(id);
    if (!group) throw ApiError.of(404, 'group.not_found', { id });
    return group;
  }

  async function mustGetLink(id: string) {
    const link = await store.enrollmentLinks.get(id);
    if (!link)
      throw new ApiError(404, 'enrollment_link.not_found', {
        en: `Enrollment link ${id} does not exist.`,
        ja: `登録用リンク ${id} は存在しません。`,
      });
    return link;
  }

  app.post(
    '/groups/:id/enrollment-links',
    {
      config: { authz: { permission: 'manage', objects: [{ kind: 'group', at: 'params.id' }] } },
      schema: {
        tags,
        summary:
          'Create an enrollment link for a group (optional expiry and use count); the URL with its secret is answered this once',
        params: Type.Object({ id: Type.String({ minLength: 1 }) }),
        body: CreateBody,
        response: { 201: CreatedLink },
      },
    },
    async (req, reply) => {
      const group = await mustGetGroup(req.params.id);
      const now = clock.now();
      const { label, expiresAt, expiresIn, maxUses } = req.body;
      if (expiresAt !== undefined && expiresIn !== undefined)
        throw new ApiError(400, 'enrollment_link.expiry_twice', {
          en: 'Give either expiresAt or expiresIn, not both.',
          ja: 'expiresAt と expiresIn はどちらか一方だけを指定してください。',
        });
      let expires: Date | null = null;
      if (expiresAt !== undefined) expires = new Date(expiresAt);
      if (expiresIn !== undefined) {
        let ms: number;
        try {
          ms = parseDuration(expiresIn);
        } catch {
          throw new ApiError(400, 'enrollment_link.expiry_invalid', {
            en: `expiresIn "${expiresIn}" is not a duration such as 30m, 12h or 7d.`,
            ja: `expiresIn「${expiresIn}」は期間として読めません（例: 30m、12h、7d）。`,
          });
        }
        expires = new Date(now.getTime() + ms);
      }
      if (expires && (Number.isNaN(expires.getTime()) || expires.getTime() <= now.getTime()))
        throw new ApiError(400, 'enrollment_link.expiry_past', {
          en: 'The expiry of an enrollment link must be in the future.',
          ja: '登録用リンクの有効期限には未来の日時を指定してください。',
        });
      const { row, secret } = await store.enrollmentLinks.create(
        {
          groupId: group.id,
          label: label ?? null,
          expiresAt: expires,
          maxUses: maxUses ?? null,
          createdBy: req.adminTokenId ?? null,
        },
        now,
      );
      // Never the secret: the audit log is read by more people than the link was meant for.
      await ctx.audit(req, 'enrollment_link.create', 'enrollment_link', row.id, {
        groupId: group.id,
        label: row.label,
        expiresAt: row.expires_at,
        maxUses: row.max_uses,
      });
      return reply
        .code(201)
        .send({ ...linkToApi(row, now), url: enrollmentUrl(publicUrl, group.id, secret), token: secret });
    },
  );

  app.get(
    '/groups/:id/enrollment-links',
    {
      config: { authz: { permission: 'read', objects: [{ kind: 'group', at: 'params.id' }] } },
      schema: {
        tags,
        summary: "A group's enrollment links, newest first (without their secrets)",
        params: Type.Object({ id: Type.String({ minLength: 1 }) }),
        response: { 200: list },
      },
    },
    async (req) => {
      await mustGetGroup(req.params.id);
      const now = clock.now();
      const rows = await store.enrollmentLinks.list({ groupId: req.params.id });
      return { items: rows.map((r) => linkToApi(r, now)), nextCursor: null };
    },
  );

  app.get(
    '/enrollment-links',
    {
      config: { authz: { permission: 'read', filtered: true } },
      schema: {
        tags,
        summary: 'Every enrollment link, newest first (without their secrets)',
        querystring: Type.Object({ groupId: Type.Optional(Type.String({ minLength: 1 })) }),
        response: { 200: list },
      },
    },
    async (req) => {
      const now = clock.now();
      const scope = scopeOf(req);
      const rows = (
        await store.enrollmentLinks.list(
          req.query.groupId !== undefined ? { groupId: req.query.groupId } : {},
        )
      ).filter((r) => scope.has(r.group_id));
      return { items: rows.map((r) => linkToApi(r, now)), nextCursor: null };
    },
  );

  app.get(
    '/enrollment-links/:id',
    {
      config: { authz: { permission: 'read', objects: [{ kind: 'enrollment_link', at: 'params.id' }] } },
      schema: {
        tags,
        summary: 'One enrollment link (without its secret)',
        params: Type.Object({ id: Type.String({ minLength: 1 }) }),
        response: { 200: EnrollmentLink },
      },
    },
    async (req) => linkToApi(await mustGetLink(req.params.id), clock.now()),
  );

  app.post(
    '/enrollment-links/:id/revoke',
    {
      config: { authz: { permission: 'manage', objects: [{ kind: 'enrollment_link', at: 'params.id' }] } },
      schema: {
        tags,
        summary:
          'Revoke an enrollment link: from now on it enrolls no device (devices already enrolled stay)',
        params: Type.Object({ id: Type.String({ minLength: 1 }) }),
        response: { 200: EnrollmentLink },
      },
    },
    async (req) => {
      const before = await mustGetLink(req.params.id);
      const now = clock.now();
      const after = (await store.enrollmentLinks.revoke(before.id, now)) ?? before;
      if (before.revoked_at === null)
        await ctx.audit(req, 'enrollment_link.revoke', 'enrollment_link', before.id, {
          groupId: before.group_id,
          label: before.label,
          useCount: Number(before.use_count),
        });
      return linkToApi(after, now);
    },
  );
}

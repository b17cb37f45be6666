import { Readable } from 'node:stream';
import { Type } from 'typebox';
import { csvField, csvRow, UTF8_BOM } from '../../engine/csv.ts';
import type { AuditFilter, AuditRow } from '../../store/admin-repo.ts';
import type { Store } from '../../store/store.ts';
import type { AdminApp, AdminContext } from '../admin.ts';
import { decodeCursor, DEFAULT_PAGE_SIZE, page, pageOf, PageQuery } from '../pagination.ts';

const tags = ['audit'];
const Iso = Type.String({ format: 'date-time' });

const AuditEvent = Type.Object({
  id: Type.String(),
  at: Iso,
  actor: Type.Object({
    id: Type.String({ description: "the administrator's id, or haishin's own work ('system', 'apple', …)" }),
    name: Type.Union([Type.String(), Type.Null()], { description: "the administrator's name" }),
  }),
  token: Type.Union(
    [Type.Object({ id: Type.String(), name: Type.Union([Type.String(), Type.Null()]) }), Type.Null()],
    {
      description: 'the API token the administrator used; null for haishin’s own work',
    },
  ),
  source: Type.Union([Type.String(), Type.Null()], { description: 'the address the request came from' }),
  action: Type.String({ description: 'e.g. group.create, token.register, enrollment_link.revoke' }),
  target: Type.Object({ type: Type.String(), id: Type.Union([Type.String(), Type.Null()]) }),
  details: Type.Unknown({ description: 'a summary of the change (never a secret)' }),
});

const Filters = {
  from: Type.Optional({ ...Iso, description: 'events at or after this instant' }),
  to: Type.Optional({ ...Iso, description: 'events before this instant' }),
  actor: Type.Optional(
    Type.String({
      minLength: 1,
      description: "an administrator's id or name, or an admin token's id or name",
    }),
  ),
  targetType: Type.Optional(Type.String({ minLength: 1, description: 'group, device, vpp_token, …' })),
  targetId: Type.Optional(Type.String({ minLength: 1 })),
  kind: Type.Optional(
    Type.String({
      pattern: '^[a-z_]+(\\.[a-z_]+)*$',
      description: 'an action (group.create) or a kind of actions (group: every group.*)',
    }),
  ),
};

interface FilterQuery {
  from?: string;
  to?: string;
  actor?: string;
  targetType?: string;
  targetId?: string;
  kind?: string;
}

/** Timestamps are stored as ISO-8601 UTC text: a filter instant is compared in the same form. */
function filterOf(q: FilterQuery): AuditFilter {
  return {
    ...(q.from ? { from: new Date(q.from).toISOString() } : {}),
    ...(q.to ? { to: new Date(q.to).toISOString() } : {}),
    ...(q.actor ? { actor: q.actor } : {}),
    ...(q.targetType ? { objectType: q.targetType } : {}),
    ...(q.targetId ? { objectId: q.targetId } : {}),
    ...(q.kind ? { action: q.kind } : {}),
  };
}

type Row = AuditRow & { actor_name: string | null; token_name: string | null };

function details(row: Row): unknown {
  if (row.details === null) return null;
  try {
    return JSON.parse(row.details) as unknown;
  } catch {
    return row.details;
  }
}

const toApi = (row: Row) => ({
  id: row.id,
  at: row.at,
  actor: { id: row.actor, name: row.actor_name },
  token: row.actor_token_id === null ? null : { id: row.actor_token_id, name: row.token_name },
  source: row.source,
  action: row.action,
  target: { type: row.object_type, id: row.object_id },
  details: details(row),
});

const CSV_PAGE = 1000;
const CSV_HEADER = [
  'at',
  'actor_id',
  'actor_name',
  'source',
  'action',
  'target_type',
  'target_id',
  'details',
  'token_id',
  'token_name',
];

/** Every matching event, page by page (bounded memory whatever the trail's length). */
async function* auditCsv(store: Store, filter: AuditFilter): AsyncGenerator<string> {
  yield UTF8_BOM + csvRow(CSV_HEADER);
  let after: { at: string; id: string } | null = null;
  for (;;) {
    const rows: Row[] = await store.admin.auditPage(filter, after, CSV_PAGE);
    for (const r of rows)
      yield csvRow([
        csvField(r.at),
        csvField(r.actor, true),
        csvField(r.actor_name, true),
        csvField(r.source, true),
        csvField(r.action, true),
        csvField(r.object_type, true),
        csvField(r.object_id, true),
        csvField(r.details, true),
        csvField(r.actor_token_id, true),
        csvField(r.token_name, true),
      ]);
    const last = rows[rows.length - 1];
    if (rows.length < CSV_PAGE || !last) return;
    after = { at: last.at, id: last.id };
  }
}

/** GET /audit-events (JSON, newest first, cursor paging) and GET /audit-events.csv. */
export async function registerAuditRoutes(app: AdminApp, ctx: AdminContext): Promise<void> {
  const { store } = ctx;

  app.get(
    '/audit-events',
    {
      config: { authz: { permission: 'read', global: true } },
      schema: {
        tags,
        summary:
          'Who changed what: every change made through the API and by haishin itself, newest first, filtered by time, actor, target and kind',
        querystring: Type.Object({ ...PageQuery, ...Filters }),
        response: { 200: pageOf(AuditEvent) },
      },
    },
    async (req) => {
      const limit = req.query.limit ?? DEFAULT_PAGE_SIZE;
      const cursor = decodeCursor(req.query.cursor, 2);
      const after = cursor ? { at: String(cursor[0]), id: String(cursor[1]) } : null;
      const rows = await store.admin.auditPage(filterOf(req.query), after, limit + 1);
      const result = page(rows, limit, (r) => [r.at, r.id]);
      return { items: result.items.map(toApi), nextCursor: result.nextCursor };
    },
  );

  app.get(
    '/audit-events.csv',
    {
      config: { authz: { permission: 'read', global: true } },
      schema: {
        tags,
        summary: 'The audit trail as CSV (UTF-8 with BOM, CRLF), with the same filters as GET /audit-events',
        querystring: Type.Object(Filters),
      },
    },
    async (req, reply) =>
      reply
        .type('text/csv; charset=utf-8')
        .header('content-disposition', 'attachment; filename="haishin-audit-events.csv"')
        .send(Readable.from(auditCsv(store, filterOf(req.query)))),
  );
}

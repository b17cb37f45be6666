import { Type } from 'typebox';
import type { FastifyRequest } from 'fastify';
import { ancestry, checkMove } from '../../core/groups.ts';
import type { GroupRow } from '../../store/group-repo.ts';
import type { VppTokens } from '../../engine/vpp-tokens.ts';
import type { AdminApp, AdminContext } from '../admin.ts';
import { ApiError } from '../errors.ts';
import { scopeOf } from '../authz.ts';
import { decodeCursor, DEFAULT_PAGE_SIZE, page, pageOf, PageQuery } from '../pagination.ts';

export const Group = Type.Object({
  id: Type.String(),
  name: Type.String(),
  parentId: Type.Union([Type.String(), Type.Null()]),
  path: Type.Array(Type.String(), { description: 'names from the root down to this group' }),
  createdAt: Type.String({ format: 'date-time' }),
  updatedAt: Type.String({ format: 'date-time' }),
});

const Name = Type.String({ minLength: 1, maxLength: 200 });
const IdParams = Type.Object({ id: Type.String({ minLength: 1 }) });
const tags = ['groups'];

function toApi(row: GroupRow, all: GroupRow[]) {
  const byId = new Map(all.map((g) => [g.id, g]));
  const path = ancestry(
    all.map((g) => ({ id: g.id, parentId: g.parent_id })),
    row.id,
  )
    .reverse()
    .map((id) => byId.get(id)?.name ?? id);
  return {
    id: row.id,
    name: row.name,
    parentId: row.parent_id,
    path,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

/** Whether the group is the top of the caller's scope (a subtree's, not the whole tree's). */
const isScopeTop = (req: FastifyRequest, groupId: string) => {
  const scope = scopeOf(req);
  return !scope.all && scope.topGroupId === groupId;
};

const nodes = (all: GroupRow[]) => all.map((g) => ({ id: g.id, parentId: g.parent_id }));

export async function registerGroupRoutes(
  app: AdminApp,
  ctx: AdminContext,
  tokens: VppTokens,
): Promise<void> {
  const { store, clock } = ctx;

  async function mustGet(id: string): Promise<GroupRow> {
    const group = await store.groups.get(id);
    if (!group) throw ApiError.of(404, 'group.not_found', { id });
    return group;
  }

  app.post(
    '/groups',
    {
      config: { authz: { permission: 'manage', objects: [{ kind: 'group', at: 'body.parentId' }] } },
      schema: {
        tags,
        summary: 'Create a group under a parent',
        body: Type.Object(
          { name: Name, parentId: Type.String({ minLength: 1 }) },
          { additionalProperties: false },
        ),
        response: { 201: Group },
      },
    },
    async (req, reply) => {
      if (!(await store.groups.get(req.body.parentId)))
        throw ApiError.of(404, 'group.parent_not_found', { id: req.body.parentId });
      const row = await store.groups.create(req.body.name, req.body.parentId, clock.now());
      await ctx.audit(req, 'group.create', 'group', row.id, { name: row.name, parentId: row.parent_id });
      return reply.code(201).send(toApi(row, await store.groups.all()));
    },
  );

  app.get(
    '/groups',
    {
      config: { authz: { permission: 'read', filtered: true } },
      schema: {
        tags,
        summary: 'List groups (the whole tree, paginated)',
        querystring: Type.Object({ ...PageQuery, parentId: Type.Optional(Type.String()) }),
        response: { 200: pageOf(Group) },
      },
    },
    async (req) => {
      const limit = req.query.limit ?? DEFAULT_PAGE_SIZE;
      const after = decodeCursor(req.query.cursor, 2);
      const all = await store.groups.all();
      const scope = scopeOf(req);
      let rows = (
        req.query.parentId === undefined ? all : all.filter((g) => g.parent_id === req.query.parentId)
      ).filter((g) => scope.has(g.id));
      if (after)
        rows = rows.filter(
          (g) => g.created_at > String(after[0]) || (g.created_at === after[0] && g.id > String(after[1])),
        );
      const result = page(rows.slice(0, limit + 1), limit, (g) => [g.created_at, g.id]);
      return { items: result.items.map((g) => toApi(g, all)), nextCursor: result.nextCursor };
    },
  );

  app.get(
    '/groups/:id',
    {
      config: { authz: { permission: 'read', objects: [{ kind: 'group', at: 'params.id' }] } },
      schema: { tags, summary: 'One group', params: IdParams, response: { 200: Group } },
    },
    async (req) => toApi(await mustGet(req.params.id), await store.groups.all()),
  );

  app.patch(
    '/groups/:id',
    {
      config: {
        authz: {
          permission: 'manage',
          objects: [
            { kind: 'group', at: 'params.id' },
            { kind: 'group', at: 'body.parentId' },
          ],
        },
      },
      schema: {
        tags,
        summary: 'Rename a group or move it under another parent (no cycles)',
        params: IdParams,
        body: Type.Object(
          { name: Type.Optional(Name), parentId: Type.Optional(Type.String({ minLength: 1 })) },
          { additionalProperties: false },
        ),
        response: { 200: Group },
      },
    },
    async (req) => {
      const group = await mustGet(req.params.id);
      const { name, parentId } = req.body;
      // The top of a scope is placed by the administrators above it, not by those inside it.
      if (parentId !== undefined && parentId !== group.parent_id && isScopeTop(req, group.id))
        throw ApiError.of(403, 'auth.scope_top', { id: group.id });
      if (parentId !== undefined && parentId !== group.parent_id) {
        const refusal = checkMove(nodes(await store.groups.all()), group.id, parentId);
        if (refusal === 'unknown_parent') throw ApiError.of(404, 'group.parent_not_found', { id: parentId });
        if (refusal) throw ApiError.of(409, `group.${refusal}`);
      }
      if (group.parent_id === null && parentId !== undefined)
        throw ApiError.of(409, 'group.root_cannot_move');
      await store.groups.update(
        group.id,
        { ...(name !== undefined ? { name } : {}), ...(parentId !== undefined ? { parentId } : {}) },
        clock.now(),
      );
      await ctx.audit(
        req,
        parentId !== undefined && parentId !== group.parent_id ? 'group.move' : 'group.update',
        'group',
        group.id,
        {
          from: { name: group.name, parentId: group.parent_id },
          to: req.body,
        },
      );
      return toApi(await mustGet(group.id), await store.groups.all());
    },
  );

  app.delete(
    '/groups/:id',
    {
      config: { authz: { permission: 'manage', objects: [{ kind: 'group', at: 'params.id' }] } },
      schema: {
        tags,
        summary: 'Delete an empty group (409 while it holds devices, subgroups or tokens)',
        params: IdParams,
        response: { 204: Type.Null() },
      },
    },
    async (req, reply) => {
      const group = await mustGet(req.params.id);
      if (group.parent_id === null) throw ApiError.of(409, 'group.root_cannot_delete');
      if (isScopeTop(req, group.id)) throw ApiError.of(403, 'auth.scope_top', { id: group.id });
      const admins = await store.admin.scopedTo(group.id);
      if (admins > 0) throw ApiError.of(409, 'group.has_admins', { id: group.id, admins });
      const contents = await store.groups.contents(group.id);
      const registered = await store.vpp.tokensInGroup(group.id);
      if (contents.devices + contents.groups + registered > 0) {
        throw ApiError.of(409, 'group.not_empty', {
          id: group.id,
          devices: contents.devices,
          groups: contents.groups,
          tokens: registered,
        });
      }
      // Tokens shared into it are unshared the usual way: licences assigned through the share go back.
      for (const share of (await store.vpp.shares()).filter((s) => s.group_id === group.id))
        await tokens.unshare(share.token_id, group.id);
      await store.groups.delete(group.id);
      await ctx.audit(req, 'group.delete', 'group', group.id, {
        name: group.name,
        parentId: group.parent_id,
      });
      return reply.code(204).send(null);
    },
  );
}

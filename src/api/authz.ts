import type { FastifyRequest, RouteOptions } from 'fastify';
import { subtreeIds } from '../core/groups.ts';
import type { Caller } from '../store/admin-repo.ts';
import type { AdminRole } from '../store/schema.ts';
import type { Store } from '../store/store.ts';
import type { ApiMessageCode } from '../core/messages.ts';
import { ApiError } from './errors.ts';

/**
 * Authorization of the admin API (issue 18, decision 0029). Every route under /api/v1 declares
 * `config.authz`: the permission it needs, and how what it touches is placed in the group tree.
 * A route without a rule is refused at startup ({@link requireAuthzRule}); the rule is enforced
 * before validation ({@link enforceAuthz}) and published in the OpenAPI document (`x-authz`), which
 * the route-walking test (test/authz-routes.test.ts) reads.
 *
 * - Not authenticated: 401. A role without the permission: 403. A whole-tree route for an
 *   administrator of a subtree: 403.
 * - An object outside the caller's scope: 404 with the same code and message as an object that
 *   does not exist, so a school cannot learn what another school has.
 * - Lists are narrowed to the scope by their handlers ({@link scopeOf}).
 */

/** What a route needs, from least to most: each role has a prefix of this list. */
export type Permission = 'read' | 'operate' | 'manage' | 'owner';

/** viewer: reads; operator: also distributes, retries, cancels, refreshes, remediates; admin: everything in the scope; owner: everything. */
export const ROLE_PERMISSIONS: Readonly<Record<AdminRole, readonly Permission[]>> = {
  viewer: ['read'],
  operator: ['read', 'operate'],
  admin: ['read', 'operate', 'manage'],
  owner: ['read', 'operate', 'manage', 'owner'],
};

export const ROLES: readonly AdminRole[] = ['viewer', 'operator', 'admin', 'owner'];
export const roleRank = (role: AdminRole) => ROLES.indexOf(role);

/**
 * How an id in the request is placed in the tree:
 * - `group`, `device`, `job`, `distribution`, `enrollment_link`: by the group it is (in);
 * - `admin`: by the administrator's scope; `admin_token`: by its administrator's scope;
 * - `serial`: a device serial number, by the device's group;
 * - `vpp_token`: a token registered in the scope or shared into it (visible, usable to distribute);
 * - `vpp_token_registered`: a token registered in the scope (its registration may be changed).
 */
export type ObjectKind =
  | 'group'
  | 'device'
  | 'job'
  | 'distribution'
  | 'enrollment_link'
  | 'admin'
  | 'admin_token'
  | 'serial'
  | 'vpp_token'
  | 'vpp_token_registered';

/** An id (or an array of ids) at `at` in the request: `params.id`, `query.groupId`, `body.targets.deviceIds`. */
export interface ObjectRef {
  kind: ObjectKind;
  at: `${'params' | 'query' | 'body'}.${string}`;
}

export interface AuthzRule {
  permission: Permission;
  /** The objects the request names: each one given must be in the caller's scope (else 404). */
  objects?: readonly ObjectRef[];
  /**
   * The route concerns the whole server (fleet-wide counts, server settings, the audit trail):
   * only administrators whose scope is the root. `unless_objects`: unless the request names one of
   * `objects` (then those are checked instead), e.g. "cancel every pending job" vs "… of this device".
   */
  global?: true | 'unless_objects';
  /** A list (or stream) the handler narrows to the caller's scope. */
  filtered?: true;
  /** The route touches nothing placed in the tree; says why (e.g. "parses pasted text"). */
  unscoped?: string;
}

declare module 'fastify' {
  interface FastifyContextConfig {
    authz?: AuthzRule;
  }
  interface FastifyRequest {
    caller?: Caller;
    scope?: Scope;
  }
}

/** The groups an administrator acts in: a subtree, or everything. */
export class Scope {
  readonly topGroupId: string;
  /** The scope is the whole tree: nothing to narrow. */
  readonly all: boolean;
  readonly #groups: ReadonlySet<string>;

  constructor(topGroupId: string, all: boolean, groups: ReadonlySet<string>) {
    this.topGroupId = topGroupId;
    this.all = all;
    this.#groups = groups;
  }

  /** Whether a group is in the scope; null stands for the root (it is only in a whole-tree scope). */
  has(groupId: string | null | undefined): boolean {
    if (this.all) return true;
    return groupId !== null && groupId !== undefined && this.#groups.has(groupId);
  }

  /** The groups of the scope, for a query's `in` list; undefined: everything. */
  get groupIds(): string[] | undefined {
    return this.all ? undefined : [...this.#groups];
  }
}

/**
 * The scope of an administrator: their group's subtree, or the whole tree for the root (or none
 * set). `rootId`: the root group's id (it never changes: the root is neither moved nor deleted).
 */
export async function scopeFor(store: Store, rootId: string, scopeGroupId: string | null): Promise<Scope> {
  if (scopeGroupId === null || scopeGroupId === rootId) return new Scope(rootId, true, new Set());
  const all = await store.groups.all();
  if (!all.some((g) => g.id === scopeGroupId)) return new Scope(scopeGroupId, false, new Set());
  return new Scope(
    scopeGroupId,
    false,
    subtreeIds(
      all.map((g) => ({ id: g.id, parentId: g.parent_id })),
      scopeGroupId,
    ),
  );
}

/** The authenticated caller's scope; every /api/v1 route runs after authentication. */
export function scopeOf(req: FastifyRequest): Scope {
  if (!req.scope) throw new Error('scopeOf called outside the admin API');
  return req.scope;
}

export function callerOf(req: FastifyRequest): Caller {
  if (!req.caller) throw new Error('callerOf called outside the admin API');
  return req.caller;
}

/** Refuses, at startup, a route of the admin API that does not say who may call it. */
export function requireAuthzRule(route: Pick<RouteOptions, 'method' | 'url' | 'config'>): void {
  const rule = (route.config as { authz?: AuthzRule } | undefined)?.authz;
  const name = `${String(route.method)} ${route.url}`;
  if (!rule) throw new Error(`admin API route ${name} has no authorization rule (config.authz)`);
  if (!(['read', 'operate', 'manage', 'owner'] as const).includes(rule.permission))
    throw new Error(`admin API route ${name}: unknown permission ${String(rule.permission)}`);
  const hasObjects = (rule.objects?.length ?? 0) > 0;
  if (!hasObjects && !rule.global && !rule.filtered && !rule.unscoped)
    throw new Error(
      `admin API route ${name}: its rule must name its objects, or be global, filtered or unscoped (with why)`,
    );
  if (rule.global === 'unless_objects' && !hasObjects)
    throw new Error(`admin API route ${name}: global 'unless_objects' without objects`);
}

/** What GET /openapi.json says of a route's rule (`x-authz`). */
export function describeRule(rule: AuthzRule | undefined): unknown {
  if (!rule) return undefined;
  return {
    permission: rule.permission,
    ...(rule.objects ? { objects: rule.objects } : {}),
    ...(rule.global ? { global: rule.global } : {}),
    ...(rule.filtered ? { filtered: true } : {}),
    ...(rule.unscoped ? { unscoped: rule.unscoped } : {}),
  };
}

/**
 * The ids at a path of the request: a string, the strings of an array, or none. Through an array
 * of objects the path goes on in each (`body.apps.tokenId`). The body is not validated yet: any
 * other shape names nothing (validation refuses it next).
 */
export function idsAt(req: FastifyRequest, at: string): string[] {
  const [root, ...path] = at.split('.');
  const start: unknown = root === 'params' ? req.params : root === 'query' ? req.query : req.body;
  const walk = (v: unknown, rest: readonly string[]): string[] => {
    if (Array.isArray(v)) return v.flatMap((x) => walk(x, rest));
    // Validation may coerce a number into a string id: it names that id already.
    if (rest.length === 0)
      return typeof v === 'string' ? [v] : typeof v === 'number' || typeof v === 'bigint' ? [String(v)] : [];
    if (typeof v !== 'object' || v === null) return [];
    return walk((v as Record<string, unknown>)[rest[0]!], rest.slice(1));
  };
  return walk(start, path);
}

const NOT_FOUND: Record<ObjectKind, ApiMessageCode> = {
  group: 'group.not_found',
  device: 'device.not_found',
  job: 'job.not_found',
  distribution: 'distribution.not_found',
  enrollment_link: 'enrollment_link.not_found',
  admin: 'admin.not_found',
  admin_token: 'admin_token.not_found',
  serial: 'device.not_found',
  vpp_token: 'token.not_found',
  vpp_token_registered: 'token.not_found',
};

/** Whether the object is in the scope; false as well when it does not exist. */
async function inScope(store: Store, scope: Scope, kind: ObjectKind, id: string): Promise<boolean> {
  switch (kind) {
    case 'group':
      return scope.has(id);
    case 'device':
      return scope.has((await store.devices.get(id))?.group_id);
    case 'job': {
      const job = await store.jobs.get(id);
      return job !== undefined && scope.has((await store.devices.get(job.device_id))?.group_id);
    }
    case 'distribution': {
      const d = await store.jobs.getDistribution(id);
      return d !== undefined && scope.has(d.group_id);
    }
    case 'enrollment_link':
      return scope.has((await store.enrollmentLinks.get(id))?.group_id);
    case 'admin': {
      const a = await store.admin.getAdmin(id);
      return a !== undefined && scope.has(a.scope_group_id);
    }
    case 'admin_token': {
      const t = await store.admin.getToken(id);
      const a = t?.admin_id ? await store.admin.getAdmin(t.admin_id) : undefined;
      return a !== undefined && scope.has(a.scope_group_id);
    }
    case 'serial': {
      const devices = await store.devices.list({ serialNumber: id, limit: 100 });
      return devices.some((d) => scope.has(d.group_id));
    }
    case 'vpp_token':
    case 'vpp_token_registered': {
      const token = await store.vpp.getToken(id);
      if (!token) return false;
      if (scope.has(token.group_id)) return true;
      if (kind === 'vpp_token_registered') return false;
      return (await store.vpp.sharesOf(id)).some((g) => scope.has(g));
    }
  }
}

/**
 * The hook of the admin API, run twice: the caller's role must grant the route's permission
 * (403), a whole-tree route needs a whole-tree scope (403), and every object the request names
 * must be inside the scope (404, as if it did not exist). As `preValidation`, so a request about
 * another school's object learns nothing from a validation message either; and again as
 * `preHandler`, on the values validation produced (it coerces types), which the handler uses.
 */
export function enforceAuthz(store: Store) {
  return async (req: FastifyRequest): Promise<void> => {
    const rule = req.routeOptions.config.authz;
    // Only the API's not-found handler has no rule (every route has one: requireAuthzRule).
    if (!rule) return;
    const caller = callerOf(req);
    const scope = scopeOf(req);
    if (!ROLE_PERMISSIONS[caller.admin.role].includes(rule.permission)) {
      req.log.info(
        {
          adminId: caller.admin.id,
          tokenId: caller.tokenId,
          role: caller.admin.role,
          needs: rule.permission,
        },
        'admin API: refused to a role',
      );
      throw ApiError.of(403, 'auth.forbidden', { role: caller.admin.role, permission: rule.permission });
    }
    if (scope.all) return;
    const named = (rule.objects ?? []).map((ref) => ({ ref, ids: idsAt(req, ref.at) }));
    const namesAny = named.some((n) => n.ids.length > 0);
    if (rule.global === true || (rule.global === 'unless_objects' && !namesAny))
      throw ApiError.of(403, 'auth.whole_tree_only');
    for (const { ref, ids } of named) {
      for (const id of new Set(ids)) {
        if (await inScope(store, scope, ref.kind, id)) continue;
        // Missing or in another subtree (the two are not told apart); a trail of probing if repeated.
        req.log.info(
          { adminId: caller.admin.id, tokenId: caller.tokenId, kind: ref.kind, id },
          'admin API: object outside the scope or missing',
        );
        throw ApiError.of(404, NOT_FOUND[ref.kind], { id });
      }
    }
  };
}

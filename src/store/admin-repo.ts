import { createHash, randomBytes, randomUUID } from 'node:crypto';
import type { Kysely, Selectable } from 'kysely';
import type { AdminRole, AdminsTable, AdminTokensTable, AuditEventsTable, Database } from './schema.ts';

export type AuditRow = Selectable<AuditEventsTable>;

export interface AuditEntry {
  /** The administrator's id, or haishin's own work (`system`, `apple`, …). */
  actor: string;
  /** The admin token used, when an administrator acted. */
  actorTokenId?: string | null;
  source: string | null;
  action: string;
  objectType: string;
  objectId: string | null;
  details?: unknown;
  at: Date;
}

/** What GET /audit-events filters on; `from`/`to` are ISO-8601 instants (`to` excluded). */
export interface AuditFilter {
  objectType?: string;
  objectId?: string;
  /** The administrator's id or name, or the admin token's id or name. */
  actor?: string;
  /** An action (`group.create`) or a kind (`group`: every `group.*`). */
  action?: string;
  from?: string;
  to?: string;
}

export const hashToken = (token: string) => createHash('sha256').update(token, 'utf8').digest('hex');

export type AdminRow = Selectable<AdminsTable>;
export type AdminTokenRow = Omit<Selectable<AdminTokensTable>, 'token_hash'>;

/** Who a valid token acts for: the token and its administrator. */
export interface Caller {
  tokenId: string;
  tokenName: string;
  admin: AdminRow;
}

/** `last_used_at` is written at most this often per token: a request is not worth a write. */
const LAST_USED_GRANULARITY_MS = 5 * 60_000;

const newSecret = () => `hs_${randomBytes(24).toString('base64url')}`;

/** Administrators (decision 0029), their API tokens (stored hashed), and the audit trail. */
export class AdminRepo {
  readonly #db: Kysely<Database>;

  constructor(db: Kysely<Database>) {
    this.#db = db;
  }

  async tokenCount(): Promise<number> {
    const row = await this.#db
      .selectFrom('admin_tokens')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .executeTakeFirstOrThrow();
    return Number(row.n);
  }

  /**
   * Stores the hash of a token given by the operator (HAISHIN_ADMIN_TOKEN) for an owner of the
   * whole tree named `name` (made once); idempotent. A token already stored keeps its state: one
   * revoked through the API stays revoked after a restart.
   */
  async ensureToken(token: string, name: string, at: Date): Promise<void> {
    const hash = hashToken(token);
    const known = await this.#db
      .selectFrom('admin_tokens')
      .select('id')
      .where('token_hash', '=', hash)
      .executeTakeFirst();
    if (known) return;
    const owner =
      (await this.#db
        .selectFrom('admins')
        .selectAll()
        .where('name', '=', name)
        .where('role', '=', 'owner')
        .orderBy('created_at')
        .executeTakeFirst()) ??
      (await this.createAdmin({ name, role: 'owner', scopeGroupId: null, createdBy: null }, at));
    await this.#db
      .insertInto('admin_tokens')
      .values({
        id: randomUUID(),
        name,
        token_hash: hash,
        created_at: at.toISOString(),
        last_used_at: null,
        admin_id: owner.id,
        expires_at: null,
        revoked_at: null,
      })
      .onConflict((oc) => oc.column('token_hash').doNothing())
      .execute();
  }

  /** A new random token for a new owner of the whole tree (the first start); the caller shows it once. */
  async createToken(name: string, at: Date): Promise<string> {
    const token = newSecret();
    await this.ensureToken(token, name, at);
    return token;
  }

  /** The caller a token acts for, if the token is known, not revoked nor expired, and its administrator enabled. */
  async findToken(token: string, now: Date = new Date()): Promise<Caller | undefined> {
    const row = await this.#db
      .selectFrom('admin_tokens as t')
      .innerJoin('admins as a', 'a.id', 't.admin_id')
      .select([
        't.id as token_id',
        't.name as token_name',
        't.expires_at as token_expires_at',
        't.revoked_at as token_revoked_at',
        't.last_used_at as token_last_used_at',
      ])
      .selectAll('a')
      .where('t.token_hash', '=', hashToken(token))
      .executeTakeFirst();
    if (!row || row.token_revoked_at !== null || row.disabled_at !== null) return undefined;
    if (row.token_expires_at !== null && row.token_expires_at <= now.toISOString()) return undefined;
    const lastUsed = row.token_last_used_at ? Date.parse(row.token_last_used_at) : 0;
    if (now.getTime() - lastUsed >= LAST_USED_GRANULARITY_MS)
      await this.#db
        .updateTable('admin_tokens')
        .set({ last_used_at: now.toISOString() })
        .where('id', '=', row.token_id)
        .execute();
    return {
      tokenId: row.token_id,
      tokenName: row.token_name,
      admin: {
        id: row.id,
        name: row.name,
        role: row.role,
        scope_group_id: row.scope_group_id,
        disabled_at: row.disabled_at,
        created_by: row.created_by,
        created_at: row.created_at,
        updated_at: row.updated_at,
      },
    };
  }

  async createAdmin(
    a: { name: string; role: AdminRole; scopeGroupId: string | null; createdBy: string | null },
    at: Date,
  ): Promise<AdminRow> {
    const row: AdminRow = {
      id: randomUUID(),
      name: a.name,
      role: a.role,
      scope_group_id: a.scopeGroupId,
      disabled_at: null,
      created_by: a.createdBy,
      created_at: at.toISOString(),
      updated_at: at.toISOString(),
    };
    await this.#db.insertInto('admins').values(row).execute();
    return row;
  }

  getAdmin(id: string): Promise<AdminRow | undefined> {
    return this.#db.selectFrom('admins').selectAll().where('id', '=', id).executeTakeFirst();
  }

  listAdmins(): Promise<AdminRow[]> {
    return this.#db.selectFrom('admins').selectAll().orderBy('created_at').orderBy('id').execute();
  }

  async updateAdmin(
    id: string,
    changes: { name?: string; role?: AdminRole; scopeGroupId?: string | null; disabled?: boolean },
    at: Date,
  ): Promise<void> {
    await this.#db
      .updateTable('admins')
      .set({
        ...(changes.name !== undefined ? { name: changes.name } : {}),
        ...(changes.role !== undefined ? { role: changes.role } : {}),
        ...(changes.scopeGroupId !== undefined ? { scope_group_id: changes.scopeGroupId } : {}),
        ...(changes.disabled !== undefined
          ? { disabled_at: changes.disabled ? at.toISOString() : null }
          : {}),
        updated_at: at.toISOString(),
      })
      .where('id', '=', id)
      .execute();
  }

  /** Administrators whose scope is this group: a group that is someone's scope cannot be deleted. */
  async scopedTo(groupId: string): Promise<number> {
    const row = await this.#db
      .selectFrom('admins')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('scope_group_id', '=', groupId)
      .executeTakeFirstOrThrow();
    return Number(row.n);
  }

  /** Enabled owners: the last one cannot be disabled or demoted, or nobody could manage haishin. */
  async activeOwners(): Promise<number> {
    const row = await this.#db
      .selectFrom('admins')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('role', '=', 'owner')
      .where('disabled_at', 'is', null)
      .executeTakeFirstOrThrow();
    return Number(row.n);
  }

  /** A new token for an administrator; the secret is returned this once and only its hash kept. */
  async createAdminToken(
    adminId: string,
    name: string,
    expiresAt: Date | null,
    at: Date,
  ): Promise<{ row: AdminTokenRow; secret: string }> {
    const secret = newSecret();
    const row: AdminTokenRow = {
      id: randomUUID(),
      name,
      created_at: at.toISOString(),
      last_used_at: null,
      admin_id: adminId,
      expires_at: expiresAt ? expiresAt.toISOString() : null,
      revoked_at: null,
    };
    await this.#db
      .insertInto('admin_tokens')
      .values({ ...row, token_hash: hashToken(secret) })
      .execute();
    return { row, secret };
  }

  listTokens(adminId: string): Promise<AdminTokenRow[]> {
    return this.#db
      .selectFrom('admin_tokens')
      .select(['id', 'name', 'created_at', 'last_used_at', 'admin_id', 'expires_at', 'revoked_at'])
      .where('admin_id', '=', adminId)
      .orderBy('created_at')
      .orderBy('id')
      .execute();
  }

  getToken(id: string): Promise<AdminTokenRow | undefined> {
    return this.#db
      .selectFrom('admin_tokens')
      .select(['id', 'name', 'created_at', 'last_used_at', 'admin_id', 'expires_at', 'revoked_at'])
      .where('id', '=', id)
      .executeTakeFirst();
  }

  /** Revokes once: the first revocation's time stays. */
  async revokeToken(id: string, at: Date): Promise<void> {
    await this.#db
      .updateTable('admin_tokens')
      .set({ revoked_at: at.toISOString() })
      .where('id', '=', id)
      .where('revoked_at', 'is', null)
      .execute();
  }

  async audit(entry: AuditEntry): Promise<void> {
    await this.#db
      .insertInto('audit_events')
      .values({
        id: randomUUID(),
        at: entry.at.toISOString(),
        actor: entry.actor,
        actor_token_id: entry.actorTokenId ?? null,
        source: entry.source,
        action: entry.action,
        object_type: entry.objectType,
        object_id: entry.objectId,
        details: entry.details === undefined ? null : JSON.stringify(entry.details),
      })
      .execute();
  }

  listAudit(filter: AuditFilter & { limit: number }): Promise<AuditRow[]> {
    return this.auditPage(filter, null, filter.limit);
  }

  /**
   * The audit trail newest first, filtered, `limit` rows after `after` (the (at, id) of the last row
   * of the previous page). The administrator's name and the token's name come along (null for
   * haishin's own work).
   */
  auditPage(
    filter: AuditFilter,
    after: { at: string; id: string } | null,
    limit: number,
  ): Promise<(AuditRow & { actor_name: string | null; token_name: string | null })[]> {
    let q = this.#db
      .selectFrom('audit_events as e')
      .leftJoin('admins as a', 'a.id', 'e.actor')
      .leftJoin('admin_tokens as t', 't.id', 'e.actor_token_id')
      .selectAll('e')
      .select(['a.name as actor_name', 't.name as token_name']);
    if (filter.objectType) q = q.where('e.object_type', '=', filter.objectType);
    if (filter.objectId) q = q.where('e.object_id', '=', filter.objectId);
    if (filter.actor)
      q = q.where((eb) =>
        eb.or([
          eb('e.actor', '=', filter.actor!),
          eb('a.name', '=', filter.actor!),
          eb('e.actor_token_id', '=', filter.actor!),
          eb('t.name', '=', filter.actor!),
        ]),
      );
    if (filter.action) {
      // "group" is every group.* action; "group.create" that one.
      const action = filter.action;
      q = action.includes('.')
        ? q.where('e.action', '=', action)
        : // `kind.` ≤ action < `kind/` ('/' follows '.'): every `kind.*`, with no LIKE wildcards to escape.
          q.where((eb) =>
            eb.or([
              eb('e.action', '=', action),
              eb.and([eb('e.action', '>=', `${action}.`), eb('e.action', '<', `${action}/`)]),
            ]),
          );
    }
    if (filter.from) q = q.where('e.at', '>=', filter.from);
    if (filter.to) q = q.where('e.at', '<', filter.to);
    if (after)
      q = q.where((eb) =>
        eb.or([eb('e.at', '<', after.at), eb.and([eb('e.at', '=', after.at), eb('e.id', '<', after.id)])]),
      );
    return q.orderBy('e.at', 'desc').orderBy('e.id', 'desc').limit(limit).execute();
  }
}

import { createHash, randomBytes, randomUUID } from 'node:crypto';
import type { Kysely, Selectable } from 'kysely';
import type { AuditEventsTable, Database } from './schema.ts';

export type AuditRow = Selectable<AuditEventsTable>;

export interface AuditEntry {
  actor: string;
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
  /** The admin token's id or name. */
  actor?: string;
  /** An action (`group.create`) or a kind (`group`: every `group.*`). */
  action?: string;
  from?: string;
  to?: string;
}

export const hashToken = (token: string) => createHash('sha256').update(token, 'utf8').digest('hex');

/** Admin API tokens (stored hashed) and the audit trail. */
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

  /** Stores the hash of a token given by the operator (HAISHIN_ADMIN_TOKEN); idempotent. */
  async ensureToken(token: string, name: string, at: Date): Promise<void> {
    await this.#db
      .insertInto('admin_tokens')
      .values({
        id: randomUUID(),
        name,
        token_hash: hashToken(token),
        created_at: at.toISOString(),
        last_used_at: null,
      })
      .onConflict((oc) => oc.column('token_hash').doNothing())
      .execute();
  }

  /** A new random token; the caller shows it once. */
  async createToken(name: string, at: Date): Promise<string> {
    const token = `hs_${randomBytes(24).toString('base64url')}`;
    await this.ensureToken(token, name, at);
    return token;
  }

  async findToken(token: string): Promise<{ id: string; name: string } | undefined> {
    return this.#db
      .selectFrom('admin_tokens')
      .select(['id', 'name'])
      .where('token_hash', '=', hashToken(token))
      .executeTakeFirst();
  }

  async audit(entry: AuditEntry): Promise<void> {
    await this.#db
      .insertInto('audit_events')
      .values({
        id: randomUUID(),
        at: entry.at.toISOString(),
        actor: entry.actor,
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
   * of the previous page). The actor's token name comes along (null for haishin's own work).
   */
  auditPage(
    filter: AuditFilter,
    after: { at: string; id: string } | null,
    limit: number,
  ): Promise<(AuditRow & { actor_name: string | null })[]> {
    let q = this.#db
      .selectFrom('audit_events as e')
      .leftJoin('admin_tokens as t', 't.id', 'e.actor')
      .selectAll('e')
      .select('t.name as actor_name');
    if (filter.objectType) q = q.where('e.object_type', '=', filter.objectType);
    if (filter.objectId) q = q.where('e.object_id', '=', filter.objectId);
    if (filter.actor)
      q = q.where((eb) => eb.or([eb('e.actor', '=', filter.actor!), eb('t.name', '=', filter.actor!)]));
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

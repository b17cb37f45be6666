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

  listAudit(filter: { objectType?: string; objectId?: string; limit: number }): Promise<AuditRow[]> {
    let q = this.#db.selectFrom('audit_events').selectAll();
    if (filter.objectType) q = q.where('object_type', '=', filter.objectType);
    if (filter.objectId) q = q.where('object_id', '=', filter.objectId);
    return q.orderBy('at', 'desc').orderBy('id').limit(filter.limit).execute();
  }
}

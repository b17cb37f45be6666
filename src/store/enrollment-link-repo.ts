import { createHash, randomBytes, randomUUID } from 'node:crypto';
import type { Kysely, Selectable } from 'kysely';
import type { Database, EnrollmentLinksTable } from './schema.ts';

export type EnrollmentLinkRow = Selectable<EnrollmentLinksTable>;

/** 256 random bits, URL-safe; `hse_` tells it apart from an admin token (`hs_`) in a log or a paste. */
export function newEnrollmentSecret(): string {
  return `hse_${randomBytes(32).toString('base64url')}`;
}

export const hashEnrollmentSecret = (secret: string) =>
  createHash('sha256').update(secret, 'utf8').digest('hex');

export type ConsumeResult =
  { ok: true; link: EnrollmentLinkRow } | { ok: false; link: EnrollmentLinkRow | undefined };

/** Enrollment links (decision 0022). The secret is returned once by `create` and never stored. */
export class EnrollmentLinkRepo {
  readonly #db: Kysely<Database>;

  constructor(db: Kysely<Database>) {
    this.#db = db;
  }

  async create(
    input: {
      groupId: string;
      label: string | null;
      expiresAt: Date | null;
      maxUses: number | null;
      createdBy: string | null;
    },
    at: Date,
  ): Promise<{ row: EnrollmentLinkRow; secret: string }> {
    const secret = newEnrollmentSecret();
    const row: EnrollmentLinkRow = {
      id: randomUUID(),
      group_id: input.groupId,
      token_hash: hashEnrollmentSecret(secret),
      label: input.label,
      created_at: at.toISOString(),
      created_by: input.createdBy,
      expires_at: input.expiresAt?.toISOString() ?? null,
      max_uses: input.maxUses,
      use_count: 0,
      last_used_at: null,
      revoked_at: null,
    };
    await this.#db.insertInto('enrollment_links').values(row).execute();
    return { row, secret };
  }

  get(id: string): Promise<EnrollmentLinkRow | undefined> {
    return this.#db.selectFrom('enrollment_links').selectAll().where('id', '=', id).executeTakeFirst();
  }

  list(filter: { groupId?: string } = {}): Promise<EnrollmentLinkRow[]> {
    let q = this.#db.selectFrom('enrollment_links').selectAll();
    if (filter.groupId) q = q.where('group_id', '=', filter.groupId);
    return q.orderBy('created_at', 'desc').orderBy('id').execute();
  }

  /** Revokes once: the first revocation's time stays. */
  async revoke(id: string, at: Date): Promise<EnrollmentLinkRow | undefined> {
    await this.#db
      .updateTable('enrollment_links')
      .set({ revoked_at: at.toISOString() })
      .where('id', '=', id)
      .where('revoked_at', 'is', null)
      .execute();
    return this.get(id);
  }

  /**
   * Counts one use of the link holding `secret` if it is usable now, in one conditional UPDATE:
   * two devices racing for the last use of a link (or two processes on PostgreSQL) cannot both win.
   */
  async consume(secret: string, at: Date, groupId?: string): Promise<ConsumeResult> {
    const hash = hashEnrollmentSecret(secret);
    const now = at.toISOString();
    let update = this.#db
      .updateTable('enrollment_links')
      .set((eb) => ({ use_count: eb('use_count', '+', 1), last_used_at: now }))
      .where('token_hash', '=', hash)
      .where('revoked_at', 'is', null)
      .where((eb) => eb.or([eb('expires_at', 'is', null), eb('expires_at', '>', now)]))
      .where((eb) => eb.or([eb('max_uses', 'is', null), eb('use_count', '<', eb.ref('max_uses'))]));
    // A link names its group in the URL too; a link pasted onto another group's id is not a use.
    if (groupId !== undefined) update = update.where('group_id', '=', groupId);
    const result = await update.executeTakeFirst();
    const link = await this.#db
      .selectFrom('enrollment_links')
      .selectAll()
      .where('token_hash', '=', hash)
      .executeTakeFirst();
    return Number(result.numUpdatedRows) === 1 && link ? { ok: true, link } : { ok: false, link };
  }

  async deleteForGroup(groupId: string): Promise<void> {
    await this.#db.deleteFrom('enrollment_links').where('group_id', '=', groupId).execute();
  }
}

import type { Kysely } from 'kysely';
import type { Database } from './schema.ts';

export interface VppNotificationIdRow {
  token_id: string;
  notification_id: string;
  received_at: string;
  claimed_by: string | null;
  claim_expires_at: string | null;
  applied_at: string | null;
}

/**
 * The Apps and Books notification ids already applied, per token (decision 0026): whichever
 * process — or whichever run of one — receives a copy, the notification is applied once. A claim
 * is one `INSERT … ON CONFLICT DO UPDATE … WHERE` (the same SQL on SQLite and PostgreSQL, atomic
 * on both, as for leases): it inserts the id if absent, or takes over a claim whose process died
 * before applying it (expired, never applied); otherwise it changes nothing and the caller has a
 * duplicate.
 */
export class VppNotificationRepo {
  readonly #db: Kysely<Database>;

  constructor(db: Kysely<Database>) {
    this.#db = db;
  }

  /** True when `claimId` is to apply the notification; false when it was applied or is being applied. */
  async claim(
    tokenId: string,
    notificationId: string,
    claimId: string,
    now: Date,
    ttlMs: number,
  ): Promise<boolean> {
    const at = now.toISOString();
    const result = await this.#db
      .insertInto('vpp_notification_ids')
      .values({
        token_id: tokenId,
        notification_id: notificationId,
        received_at: at,
        claimed_by: claimId,
        claim_expires_at: new Date(now.getTime() + ttlMs).toISOString(),
        applied_at: null,
      })
      .onConflict((oc) =>
        oc
          .columns(['token_id', 'notification_id'])
          .doUpdateSet((eb) => ({
            claimed_by: eb.ref('excluded.claimed_by'),
            claim_expires_at: eb.ref('excluded.claim_expires_at'),
          }))
          .where((eb) =>
            eb.and([
              eb('vpp_notification_ids.applied_at', 'is', null),
              eb('vpp_notification_ids.claim_expires_at', '<', at),
            ]),
          ),
      )
      .executeTakeFirst();
    return Number(result.numInsertedOrUpdatedRows ?? 0) > 0;
  }

  /** The claim's notification was applied: every later copy is a duplicate. */
  async applied(tokenId: string, notificationId: string, claimId: string, now: Date): Promise<void> {
    await this.#db
      .updateTable('vpp_notification_ids')
      .set({ applied_at: now.toISOString(), claimed_by: null, claim_expires_at: null })
      .where('token_id', '=', tokenId)
      .where('notification_id', '=', notificationId)
      .where('claimed_by', '=', claimId)
      .execute();
  }

  /** Applying failed: the id is given up, so that Apple's next copy gets another chance. */
  async release(tokenId: string, notificationId: string, claimId: string): Promise<void> {
    await this.#db
      .deleteFrom('vpp_notification_ids')
      .where('token_id', '=', tokenId)
      .where('notification_id', '=', notificationId)
      .where('claimed_by', '=', claimId)
      .where('applied_at', 'is', null)
      .execute();
  }

  /** Forgets the ids received before `before` (the retention); how many went. */
  async prune(before: Date): Promise<number> {
    const result = await this.#db
      .deleteFrom('vpp_notification_ids')
      .where('received_at', '<', before.toISOString())
      .executeTakeFirst();
    return Number(result.numDeletedRows);
  }

  all(tokenId?: string): Promise<VppNotificationIdRow[]> {
    let q = this.#db.selectFrom('vpp_notification_ids').selectAll();
    if (tokenId !== undefined) q = q.where('token_id', '=', tokenId);
    return q.orderBy('received_at').orderBy('notification_id').execute();
  }
}

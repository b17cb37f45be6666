import { createHash, randomBytes, randomUUID } from 'node:crypto';
import type { Kysely, Selectable } from 'kysely';
import type { Database, ScepChallengesTable } from './schema.ts';

export type ScepChallengeRow = Selectable<ScepChallengesTable>;

const hashChallenge = (challenge: string) => createHash('sha256').update(challenge, 'utf8').digest('hex');

/** What a challenge admits: the group its identity is recorded under, and the device for a renewal. */
export interface ChallengeBinding {
  groupId: string;
  deviceId: string | null;
}

export type ChallengeUse =
  | { ok: true; binding: ChallengeBinding; id: string }
  /** The same transaction asked again (its answer was lost): the certificate already issued. */
  | { ok: 'repeat'; certPem: string }
  | { ok: false; reason: 'unknown' | 'expired' | 'used' };

/**
 * One-time SCEP challenges (decision 0024). The challenge is returned once, when the profile that
 * carries it is made; only its SHA-256 is stored.
 */
export class ScepChallengeRepo {
  readonly #db: Kysely<Database>;

  constructor(db: Kysely<Database>) {
    this.#db = db;
  }

  /** A new challenge for one enrollment (or renewal), valid until `expiresAt`. */
  async issue(binding: ChallengeBinding, at: Date, expiresAt: Date): Promise<string> {
    // 128 random bits: iOS sends it as a PrintableString, so letters and digits only.
    const challenge = randomBytes(16).toString('hex');
    await this.#db
      .insertInto('scep_challenges')
      .values({
        id: randomUUID(),
        challenge_hash: hashChallenge(challenge),
        group_id: binding.groupId,
        device_id: binding.deviceId,
        created_at: at.toISOString(),
        expires_at: expiresAt.toISOString(),
        used_at: null,
        transaction_id: null,
        public_key_sha256: null,
        cert_fingerprint: null,
        cert_pem: null,
      })
      .execute();
    return challenge;
  }

  /**
   * Takes the challenge for one SCEP transaction, in one conditional UPDATE: two requests racing
   * with the same challenge (or two processes on PostgreSQL) cannot both win.
   */
  async use(
    challenge: string,
    request: { transactionId: string; publicKeySha256: string },
    at: Date,
  ): Promise<ChallengeUse> {
    const hash = hashChallenge(challenge);
    const now = at.toISOString();
    const taken = await this.#db
      .updateTable('scep_challenges')
      .set({
        used_at: now,
        transaction_id: request.transactionId,
        public_key_sha256: request.publicKeySha256,
      })
      .where('challenge_hash', '=', hash)
      .where('used_at', 'is', null)
      .where('expires_at', '>', now)
      .executeTakeFirst();
    const row = await this.#db
      .selectFrom('scep_challenges')
      .selectAll()
      .where('challenge_hash', '=', hash)
      .executeTakeFirst();
    if (!row) return { ok: false, reason: 'unknown' };
    if (Number(taken.numUpdatedRows) === 1)
      return { ok: true, id: row.id, binding: { groupId: row.group_id, deviceId: row.device_id } };
    if (
      row.used_at !== null &&
      row.cert_pem !== null &&
      row.transaction_id === request.transactionId &&
      row.public_key_sha256 === request.publicKeySha256
    )
      return { ok: 'repeat', certPem: row.cert_pem };
    return { ok: false, reason: row.used_at !== null ? 'used' : 'expired' };
  }

  /** The certificate issued for a challenge's transaction (kept for a repeated request; it is public). */
  async issued(id: string, cert: { fingerprint: string; certPem: string }): Promise<void> {
    await this.#db
      .updateTable('scep_challenges')
      .set({ cert_fingerprint: cert.fingerprint, cert_pem: cert.certPem })
      .where('id', '=', id)
      .execute();
  }

  /**
   * Challenges that expired before `before`, used or not: an unused one can no longer be used, and
   * a used one was kept only for a client repeating its transaction (bounded table, decision 0024).
   */
  async purgeExpired(before: Date): Promise<number> {
    const result = await this.#db
      .deleteFrom('scep_challenges')
      .where('expires_at', '<', before.toISOString())
      .executeTakeFirst();
    return Number(result.numDeletedRows);
  }
}

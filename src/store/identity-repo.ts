import type { Kysely } from 'kysely';
import { adoptRenewedIdentity } from './mdm-store.ts';
import type { Database } from './schema.ts';

/** A device whose identity is within the renewal window (decision 0023). */
export interface RenewalCandidate {
  deviceId: string;
  udid: string;
  /** The group the installed enrollment profile was made for (its PayloadIdentifier). */
  profileGroupId: string;
  identityNotAfter: Date;
  /** The InstallProfile of a renewal already under way, if any. */
  renewalCommand: string | null;
  /** That command is still queued for the device (not answered yet). */
  renewalQueued: boolean;
}

export interface IdentityCounts {
  /** Managed devices whose identity has expired: they cannot check in until enrolled again. */
  expired: number;
  /** Managed devices whose identity is within the renewal window and not renewed yet. */
  expiring: number;
  /** Devices a renewed identity was sent to, not acknowledged yet. */
  renewing: number;
}

/** Devices that still count as managed: an expired identity matters for them only. */
const MANAGED = ['pending', 'enrolled'] as const;

/** Device identities and their renewal (decision 0023); the same SQL on SQLite and PostgreSQL. */
export class IdentityRepo {
  readonly #db: Kysely<Database>;

  constructor(db: Kysely<Database>) {
    this.#db = db;
  }

  /**
   * Enrolled devices whose identity expires after `now` and by `renewBy`, the closest to expiry
   * first. A device whose identity has already expired cannot be reached (its messages are refused):
   * it is counted, not renewed.
   */
  async renewalCandidates(now: Date, renewBy: Date, limit: number): Promise<RenewalCandidate[]> {
    const rows = await this.#db
      .selectFrom('devices')
      .innerJoin('identities', 'identities.fingerprint', 'devices.cert_fingerprint')
      .select((eb) => [
        'devices.id',
        'devices.udid',
        'devices.identity_not_after',
        'devices.identity_renewal_command',
        'identities.group_id',
        eb
          .exists(
            eb
              .selectFrom('command_queue')
              .select('command_queue.command_uuid')
              .whereRef('command_queue.command_uuid', '=', 'devices.identity_renewal_command')
              .whereRef('command_queue.enrollment_id', '=', 'devices.udid'),
          )
          .as('queued'),
      ])
      .where('devices.status', '=', 'enrolled')
      .where('devices.identity_not_after', '>', now.toISOString())
      .where('devices.identity_not_after', '<=', renewBy.toISOString())
      .orderBy('devices.identity_not_after')
      .orderBy('devices.id')
      .limit(limit)
      .execute();
    return rows.map((r) => ({
      deviceId: r.id,
      udid: r.udid,
      profileGroupId: r.group_id,
      identityNotAfter: new Date(r.identity_not_after!),
      renewalCommand: r.identity_renewal_command,
      // 0/1 on SQLite, a boolean on PostgreSQL.
      renewalQueued: Boolean(r.queued),
    }));
  }

  /** A renewed identity was issued and its InstallProfile is being queued: it is accepted from now on. */
  async startRenewal(
    deviceId: string,
    fingerprint: string | null,
    commandUuid: string,
    at: Date,
  ): Promise<void> {
    await this.#db
      .updateTable('devices')
      .set({
        pending_cert_fingerprint: fingerprint,
        identity_renewal_command: commandUuid,
        identity_renewal_at: at.toISOString(),
        updated_at: at.toISOString(),
      })
      .where('id', '=', deviceId)
      .execute();
  }

  /**
   * SCEP (decision 0024): the device of a renewal under way obtained its renewed identity with the
   * renewal profile's challenge; it is accepted for this device from now on, as a PKCS#12 renewal's
   * is from the moment it is queued. False when no renewal is under way any more.
   */
  async scepRenewalIssued(deviceId: string, fingerprint: string, at: Date): Promise<boolean> {
    const result = await this.#db
      .updateTable('devices')
      .set({ pending_cert_fingerprint: fingerprint, updated_at: at.toISOString() })
      .where('id', '=', deviceId)
      .where('identity_renewal_command', 'is not', null)
      .executeTakeFirst();
    return Number(result.numUpdatedRows) === 1;
  }

  /**
   * The device answered the renewal's InstallProfile: acknowledged, its pending identity becomes its
   * identity (unless a message signed by it did that already); refused, the renewal is over and the
   * next pass tries again. Answers to other commands change nothing.
   */
  async renewalAnswered(
    deviceId: string,
    commandUuid: string,
    acknowledged: boolean,
    at: Date,
  ): Promise<'adopted' | 'failed' | 'none'> {
    const device = await this.#db
      .selectFrom('devices')
      .select(['pending_cert_fingerprint'])
      .where('id', '=', deviceId)
      .where('identity_renewal_command', '=', commandUuid)
      .executeTakeFirst();
    if (!device) return 'none';
    if (acknowledged && device.pending_cert_fingerprint !== null) {
      return (await adoptRenewedIdentity(this.#db, deviceId, device.pending_cert_fingerprint, at))
        ? 'adopted'
        : 'none';
    }
    await this.#db
      .updateTable('devices')
      .set({ pending_cert_fingerprint: null, identity_renewal_command: null, updated_at: at.toISOString() })
      .where('id', '=', deviceId)
      .where('identity_renewal_command', '=', commandUuid)
      .execute();
    return 'failed';
  }

  /**
   * A renewal's InstallProfile carries the device's private key (in its PKCS#12): once answered or
   * superseded, the stored command keeps only its shape (`redacted`), not the key.
   */
  async redactCommand(commandUuid: string, redacted: string): Promise<void> {
    await this.#db
      .updateTable('commands')
      .set({ payload: redacted })
      .where('uuid', '=', commandUuid)
      .where('request_type', '=', 'InstallProfile')
      .execute();
  }

  async counts(now: Date, renewBy: Date, groupIds?: readonly string[]): Promise<IdentityCounts> {
    let q = this.#db.selectFrom('devices');
    // An administrator's scope (decision 0029): the devices of these groups only.
    if (groupIds) q = q.where('group_id', 'in', groupIds.length > 0 ? [...groupIds] : ['']);
    const row = await q
      .select((eb) => [
        eb.fn
          .sum<number>(eb.case().when('identity_not_after', '<=', now.toISOString()).then(1).else(0).end())
          .as('expired'),
        eb.fn
          .sum<number>(
            eb
              .case()
              .when(
                eb.and([
                  eb('identity_not_after', '>', now.toISOString()),
                  eb('identity_not_after', '<=', renewBy.toISOString()),
                  eb('pending_cert_fingerprint', 'is', null),
                ]),
              )
              .then(1)
              .else(0)
              .end(),
          )
          .as('expiring'),
        eb.fn
          .sum<number>(eb.case().when('pending_cert_fingerprint', 'is not', null).then(1).else(0).end())
          .as('renewing'),
      ])
      .where('status', 'in', MANAGED)
      .executeTakeFirstOrThrow();
    // Number(): PostgreSQL answers sum() of integers as a string (bigint/numeric); null on no rows.
    return {
      expired: Number(row.expired ?? 0),
      expiring: Number(row.expiring ?? 0),
      renewing: Number(row.renewing ?? 0),
    };
  }
}

import { randomUUID } from 'node:crypto';
import type { Kysely } from 'kysely';
import type {
  AuthenticateFacts,
  DeviceFactKind,
  IdentityRecord,
  KnownDevice,
  MdmStore,
  ReportingDevice,
  QueueEntry,
  QueuedCommand,
  RawMessage,
  ResultRecord,
  TokenUpdateFacts,
} from '../mdm/ports.ts';
import type { Db } from './db.ts';
import { installedVersions } from '../mdm/facts.ts';
import { replaceDeviceApps } from './app-update-repo.ts';
import { prepare } from './prepared.ts';
import type { Database } from './schema.ts';

const iso = (at: Date) => at.toISOString();

/** `last_seen_at` values waiting for their commit: the latest per device and per channel. */
interface SeenBatch {
  devices: Map<string, string>;
  enrollments: Map<string, string>;
  committed: Promise<void>;
}

const keepLatest = (into: Map<string, string>, id: string, at: string) => {
  const known = into.get(id);
  if (known === undefined || known < at) into.set(id, at);
};

/** The queries every command report runs, compiled once (see prepared.ts). */
export function hotQueries(db: Kysely<Database>) {
  return {
    deviceByUdid: prepare<
      [udid: string],
      {
        id: string;
        udid: string;
        cert_fingerprint: string;
        status: KnownDevice['status'];
        pending_cert_fingerprint: string | null;
        previous_cert_fingerprint: string | null;
      }
    >(db, (k, arg) =>
      k
        .selectFrom('devices')
        .select([
          'id',
          'udid',
          'cert_fingerprint',
          'status',
          'pending_cert_fingerprint',
          'previous_cert_fingerprint',
        ])
        .where('udid', '=', arg<string>(0)),
    ),
    // Most reports are Idles that find the queue empty: the device and that, in one statement.
    reportingDevice: prepare<
      [udid: string, enrollmentId: string],
      {
        id: string;
        udid: string;
        cert_fingerprint: string;
        status: KnownDevice['status'];
        pending_cert_fingerprint: string | null;
        previous_cert_fingerprint: string | null;
        queued: number | boolean;
      }
    >(db, (k, arg) =>
      k
        .selectFrom('devices')
        .select((eb) => [
          'id',
          'udid',
          'cert_fingerprint',
          'status',
          'pending_cert_fingerprint',
          'previous_cert_fingerprint',
          eb
            .exists(
              eb
                .selectFrom('command_queue')
                .select('command_uuid')
                .where('enrollment_id', '=', arg<string>(1)),
            )
            .as('queued'),
        ])
        .where('udid', '=', arg<string>(0)),
    ),
    anyQueued: prepare<[enrollmentId: string], { command_uuid: string }>(db, (k, arg) =>
      k
        .selectFrom('command_queue')
        .select('command_uuid')
        .where('enrollment_id', '=', arg<string>(0))
        .limit(1),
    ),
    nextCommand: prepare<[enrollmentId: string], { uuid: string; request_type: string; payload: string }>(
      db,
      (k, arg) =>
        k
          .selectFrom('command_queue')
          .innerJoin('commands', 'commands.uuid', 'command_queue.command_uuid')
          .innerJoin('enrollments', 'enrollments.id', 'command_queue.enrollment_id')
          .innerJoin('devices', 'devices.id', 'enrollments.device_id')
          .select(['commands.uuid', 'commands.request_type', 'commands.payload'])
          .where('command_queue.enrollment_id', '=', arg<string>(0))
          .where('enrollments.enabled', '=', 1)
          .where('devices.status', '!=', 'deactivated')
          .orderBy('command_queue.priority', 'desc')
          .orderBy('command_queue.seq', 'asc')
          .limit(1),
    ),
    markDelivered: prepare<[at: string, enrollmentId: string, commandUuid: string], never>(db, (k, arg) =>
      k
        .updateTable('command_queue')
        .set((eb) => ({ delivered_at: arg<string>(0), delivery_count: eb('delivery_count', '+', 1) }))
        .where('enrollment_id', '=', arg<string>(1))
        .where('command_uuid', '=', arg<string>(2)),
    ),
    // Never backwards: a TokenUpdate or another process may have written a later time meanwhile.
    deviceSeen: prepare<[at: string, id: string], never>(db, (k, arg) =>
      k
        .updateTable('devices')
        .set({ last_seen_at: arg<string>(0) })
        .where('id', '=', arg<string>(1))
        .where((eb) => eb.or([eb('last_seen_at', 'is', null), eb('last_seen_at', '<', arg<string>(0))])),
    ),
    enrollmentSeen: prepare<[at: string, id: string], never>(db, (k, arg) =>
      k
        .updateTable('enrollments')
        .set({ last_seen_at: arg<string>(0) })
        .where('id', '=', arg<string>(1))
        .where((eb) => eb.or([eb('last_seen_at', 'is', null), eb('last_seen_at', '<', arg<string>(0))])),
    ),
  };
}

/** Kysely implementation of the MDM protocol's storage port; the same SQL on SQLite and PostgreSQL. */
export class KyselyMdmStore implements MdmStore {
  readonly #db: Kysely<Database>;
  readonly #q: ReturnType<typeof hotQueries>;
  /** The batch of `touch`es collecting now; it commits at the end of this turn of the event loop. */
  #seen: SeenBatch | null = null;
  /** The last batch's commit (never rejects): the next one starts after it, and close waits for it. */
  #seenTail: Promise<void> = Promise.resolve();

  constructor(db: Db) {
    this.#db = db.kysely;
    this.#q = hotQueries(db.kysely);
  }

  async findIdentity(fingerprint: string): Promise<IdentityRecord | null> {
    const row = await this.#db
      .selectFrom('identities')
      .leftJoin('devices', 'devices.id', 'identities.device_id')
      .select([
        'identities.fingerprint',
        'identities.group_id',
        'identities.device_id',
        'identities.not_after',
        'devices.udid',
      ])
      .where('identities.fingerprint', '=', fingerprint)
      .executeTakeFirst();
    if (!row) return null;
    return {
      fingerprint: row.fingerprint,
      groupId: row.group_id,
      deviceId: row.device_id,
      boundUdid: row.udid ?? null,
      notAfter: new Date(row.not_after),
    };
  }

  async findDeviceByUdid(udid: string): Promise<KnownDevice | null> {
    const [row] = await this.#q.deviceByUdid.rows(this.#db, udid);
    return row
      ? {
          id: row.id,
          udid: row.udid,
          certFingerprint: row.cert_fingerprint,
          status: row.status,
          pendingCertFingerprint: row.pending_cert_fingerprint,
          previousCertFingerprint: row.previous_cert_fingerprint,
        }
      : null;
  }

  async findReportingDevice(udid: string, enrollmentId: string): Promise<ReportingDevice | null> {
    const [row] = await this.#q.reportingDevice.rows(this.#db, udid, enrollmentId);
    return row
      ? {
          id: row.id,
          udid: row.udid,
          certFingerprint: row.cert_fingerprint,
          status: row.status,
          pendingCertFingerprint: row.pending_cert_fingerprint,
          previousCertFingerprint: row.previous_cert_fingerprint,
          // 0/1 on SQLite, a boolean on PostgreSQL.
          queued: Boolean(row.queued),
        }
      : null;
  }

  async authenticate(
    facts: AuthenticateFacts,
    identity: IdentityRecord,
    at: Date,
  ): Promise<{ deviceId: string; clearedCommandUuids: string[] }> {
    const now = iso(at);
    return this.#db.transaction().execute(async (tx) => {
      const existing = await tx
        .selectFrom('devices')
        .select(['id'])
        .where('udid', '=', facts.udid)
        .executeTakeFirst();
      const values = {
        serial_number: facts.serialNumber,
        // iOS's Authenticate has no DeviceName, Model or ModelName (macOS sends them): keep what
        // DeviceInformation reported rather than forget it at re-enrolment.
        ...(facts.deviceName !== null ? { name: facts.deviceName } : {}),
        ...(facts.model !== null ? { model: facts.model } : {}),
        ...(facts.modelName !== null ? { model_name: facts.modelName } : {}),
        product_name: facts.productName,
        os_version: facts.osVersion,
        build_version: facts.buildVersion,
        imei: facts.imei,
        meid: facts.meid,
        cert_fingerprint: identity.fingerprint,
        // A new enrolment starts afresh: no renewal in flight, no older identity accepted.
        identity_not_after: iso(identity.notAfter),
        pending_cert_fingerprint: null,
        previous_cert_fingerprint: null,
        identity_renewal_command: null,
        identity_renewal_at: null,
        status: 'pending' as const,
        checked_out_at: null,
        last_seen_at: now,
        updated_at: now,
      };
      let deviceId: string;
      if (existing) {
        deviceId = existing.id;
        // Re-enrolment keeps the device's number and group: the administrator's bookkeeping survives.
        await tx.updateTable('devices').set(values).where('id', '=', deviceId).execute();
      } else {
        deviceId = randomUUID();
        const deviceNumber = await nextCounter(tx, 'device_number');
        await tx
          .insertInto('devices')
          .values({
            ...values,
            id: deviceId,
            device_number: deviceNumber,
            udid: facts.udid,
            group_id: identity.groupId,
            is_shared_ipad: 0,
            is_supervised: null,
            created_at: now,
          })
          .execute();
      }
      await tx
        .updateTable('identities')
        .set({ device_id: deviceId, bound_at: now })
        .where('fingerprint', '=', identity.fingerprint)
        .where('device_id', 'is', null)
        .execute();

      const channels = await tx
        .selectFrom('enrollments')
        .select('id')
        .where('device_id', '=', deviceId)
        .execute();
      const channelIds = channels.map((c) => c.id);
      let cleared: string[] = [];
      if (channelIds.length > 0) {
        const queued = await tx
          .selectFrom('command_queue')
          .select('command_uuid')
          .where('enrollment_id', 'in', channelIds)
          .execute();
        cleared = queued.map((q) => q.command_uuid);
        await tx.deleteFrom('command_queue').where('enrollment_id', 'in', channelIds).execute();
        await tx
          .updateTable('enrollments')
          .set({ enabled: 0, updated_at: now })
          .where('device_id', '=', deviceId)
          .execute();
      }
      return { deviceId, clearedCommandUuids: cleared };
    });
  }

  async tokenUpdate(
    deviceId: string,
    facts: TokenUpdateFacts,
    at: Date,
  ): Promise<{ firstTokenUpdate: boolean }> {
    const now = iso(at);
    return this.#db.transaction().execute(async (tx) => {
      const existing = await tx
        .selectFrom('enrollments')
        .select(['id', 'enabled'])
        .where('id', '=', facts.enrollmentId)
        .executeTakeFirst();
      const channel = {
        topic: facts.topic,
        push_token: facts.pushTokenHex,
        push_magic: facts.pushMagic,
        enabled: 1,
        last_seen_at: now,
        updated_at: now,
      };
      if (existing) {
        await tx
          .updateTable('enrollments')
          .set((eb) => ({ ...channel, token_update_count: eb('token_update_count', '+', 1) }))
          .where('id', '=', facts.enrollmentId)
          .execute();
      } else {
        await tx
          .insertInto('enrollments')
          .values({
            ...channel,
            id: facts.enrollmentId,
            device_id: deviceId,
            type: facts.user ? 'user' : 'device',
            user_id: facts.user?.userId ?? null,
            user_short_name: facts.user?.shortName ?? null,
            user_long_name: facts.user?.longName ?? null,
            token_update_count: 1,
            created_at: now,
          })
          .execute();
      }
      const firstTokenUpdate = !existing || existing.enabled === 0;
      const device: Partial<Database['devices']> = { last_seen_at: now, updated_at: now };
      if (!facts.user) {
        device.status = 'enrolled';
        if (firstTokenUpdate) device.enrolled_at = now;
      } else if (facts.user.userId?.toUpperCase() === 'FFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF') {
        device.is_shared_ipad = 1;
      }
      await tx
        .updateTable('devices')
        .set(device)
        .where('id', '=', deviceId)
        .where('status', '!=', 'deactivated')
        .execute();
      return { firstTokenUpdate };
    });
  }

  async checkOut(deviceId: string, at: Date): Promise<void> {
    const now = iso(at);
    await this.#db.transaction().execute(async (tx) => {
      await tx
        .updateTable('devices')
        .set({ status: 'unenrolled', checked_out_at: now, last_seen_at: now, updated_at: now })
        .where('id', '=', deviceId)
        .execute();
      await tx
        .updateTable('enrollments')
        .set({ enabled: 0, updated_at: now })
        .where('device_id', '=', deviceId)
        .execute();
    });
  }

  async adoptRenewedIdentity(deviceId: string, fingerprint: string, at: Date): Promise<boolean> {
    return adoptRenewedIdentity(this.#db, deviceId, fingerprint, at);
  }

  /**
   * Group commit: every touch of one turn of the event loop (dozens under load) is written in one
   * transaction at its end, one row per device and channel whatever the number of messages, and
   * each caller's promise settles with that commit — so an answer leaves only once its device's
   * `last_seen_at` is stored, as before, at a fraction of the cost (two autocommits per message).
   * While one batch commits (PostgreSQL: a round trip), the next one collects.
   */
  touch(deviceId: string, enrollmentId: string, at: Date): Promise<void> {
    const batch = this.#seen ?? this.#openSeenBatch();
    const now = iso(at);
    keepLatest(batch.devices, deviceId, now);
    keepLatest(batch.enrollments, enrollmentId, now);
    return batch.committed;
  }

  #openSeenBatch(): SeenBatch {
    const previous = this.#seenTail;
    const batch: SeenBatch = { devices: new Map(), enrollments: new Map(), committed: Promise.resolve() };
    batch.committed = new Promise<void>((resolve) => setImmediate(resolve))
      .then(() => previous)
      .then(() => {
        if (this.#seen === batch) this.#seen = null;
        return this.#db.transaction().execute(async (tx) => {
          for (const [id, seenAt] of batch.devices) await this.#q.deviceSeen.affected(tx, seenAt, id);
          for (const [id, seenAt] of batch.enrollments) await this.#q.enrollmentSeen.affected(tx, seenAt, id);
        });
      });
    this.#seen = batch;
    this.#seenTail = batch.committed.catch(() => {});
    return batch;
  }

  /** Resolves once every `touch` made so far is committed (before the database is closed). */
  async flush(): Promise<void> {
    await this.#seenTail;
  }

  async recordMessage(m: RawMessage): Promise<void> {
    await this.#db
      .insertInto('mdm_messages')
      .values({
        id: randomUUID(),
        udid: m.udid,
        enrollment_id: m.enrollmentId,
        endpoint: m.endpoint,
        message_type: m.messageType,
        command_uuid: m.commandUuid,
        raw: m.raw,
        received_at: iso(m.at),
      })
      .execute();
  }

  async enqueue(entries: readonly QueueEntry[], at: Date): Promise<void> {
    if (entries.length === 0) return;
    await this.#db.transaction().execute((tx) => queueCommands(tx, entries, at));
  }

  /**
   * For each channel, the request types among `requestTypes` it has queued and not answered yet
   * (handed out or not): what the commander must not queue twice.
   */
  async pendingRequestTypes(
    enrollmentIds: readonly string[],
    requestTypes: readonly string[],
  ): Promise<Map<string, Set<string>>> {
    const out = new Map<string, Set<string>>();
    if (enrollmentIds.length === 0 || requestTypes.length === 0) return out;
    for (let i = 0; i < enrollmentIds.length; i += INSERT_CHUNK) {
      const rows = await this.#db
        .selectFrom('command_queue')
        .innerJoin('commands', 'commands.uuid', 'command_queue.command_uuid')
        .select(['command_queue.enrollment_id', 'commands.request_type'])
        .where('command_queue.enrollment_id', 'in', enrollmentIds.slice(i, i + INSERT_CHUNK))
        .where('commands.request_type', 'in', [...requestTypes])
        .execute();
      for (const row of rows) {
        const types = out.get(row.enrollment_id) ?? new Set<string>();
        types.add(row.request_type);
        out.set(row.enrollment_id, types);
      }
    }
    return out;
  }

  /**
   * The channels among `enrollmentIds` in a session now: a command handed out to them since
   * `since` is still unanswered (and was not deferred by NotNow) — the device will ask for its
   * next command when it answers, so a push would only wake it twice.
   */
  async inSession(enrollmentIds: readonly string[], since: Date): Promise<Set<string>> {
    const out = new Set<string>();
    for (let i = 0; i < enrollmentIds.length; i += INSERT_CHUNK) {
      const rows = await this.#db
        .selectFrom('command_queue')
        .select('enrollment_id')
        .distinct()
        .where('enrollment_id', 'in', enrollmentIds.slice(i, i + INSERT_CHUNK))
        .where('delivered_at', '>', iso(since))
        .where((eb) => eb.or([eb('not_now_at', 'is', null), eb('not_now_at', '<', eb.ref('delivered_at'))]))
        .execute();
      for (const row of rows) out.add(row.enrollment_id);
    }
    return out;
  }

  /** Takes commands off every queue (a job that ended before its command was fetched). */
  async dequeue(commandUuids: readonly string[]): Promise<void> {
    if (commandUuids.length === 0) return;
    await this.#db
      .deleteFrom('command_queue')
      .where('command_uuid', 'in', [...commandUuids])
      .execute();
  }

  async nextCommand(enrollmentId: string, at: Date): Promise<QueuedCommand | null> {
    const [queued] = await this.#q.anyQueued.rows(this.#db, enrollmentId);
    if (!queued) return null;
    const [row] = await this.#q.nextCommand.rows(this.#db, enrollmentId);
    if (!row) return null;
    await this.#q.markDelivered.affected(this.#db, iso(at), enrollmentId, row.uuid);
    return { uuid: row.uuid, requestType: row.request_type, payload: row.payload };
  }

  async markNotNow(enrollmentId: string, commandUuid: string, at: Date): Promise<{ known: boolean }> {
    const result = await this.#db
      .updateTable('command_queue')
      .set((eb) => ({ not_now_at: iso(at), not_now_count: eb('not_now_count', '+', 1) }))
      .where('enrollment_id', '=', enrollmentId)
      .where('command_uuid', '=', commandUuid)
      .executeTakeFirst();
    return { known: Number(result.numUpdatedRows) > 0 };
  }

  /** A command as stored and handed to the device, queued or answered; null once compacted away. */
  async storedCommand(uuid: string): Promise<{ requestType: string; payload: string } | null> {
    const row = await this.#db
      .selectFrom('commands')
      .select(['request_type', 'payload'])
      .where('uuid', '=', uuid)
      .executeTakeFirst();
    return row ? { requestType: row.request_type, payload: row.payload } : null;
  }

  async saveResult(r: ResultRecord): Promise<{ requestType: string | null; duplicate: boolean }> {
    return this.#db.transaction().execute(async (tx) => {
      const command = await tx
        .selectFrom('commands')
        .select('request_type')
        .where('uuid', '=', r.commandUuid)
        .executeTakeFirst();
      const inserted = await tx
        .insertInto('command_results')
        .values({
          enrollment_id: r.enrollmentId,
          command_uuid: r.commandUuid,
          status: r.status,
          raw: r.raw,
          error_chain: r.errorChain ? JSON.stringify(r.errorChain) : null,
          received_at: iso(r.at),
        })
        .onConflict((oc) => oc.columns(['enrollment_id', 'command_uuid']).doNothing())
        .executeTakeFirst();
      await tx
        .deleteFrom('command_queue')
        .where('enrollment_id', '=', r.enrollmentId)
        .where('command_uuid', '=', r.commandUuid)
        .execute();
      return {
        requestType: command?.request_type ?? null,
        duplicate: Number(inserted.numInsertedOrUpdatedRows ?? 0n) === 0,
      };
    });
  }

  async saveDeviceFacts(deviceId: string, kind: DeviceFactKind, value: unknown, at: Date): Promise<void> {
    const now = iso(at);
    const json = JSON.stringify(value);
    const set: Partial<Database['devices']> = { [kind]: json, [`${kind}_at`]: now, updated_at: now };
    if (kind === 'facts' && value && typeof value === 'object') {
      const facts = value as Record<string, unknown>;
      if (typeof facts.OSVersion === 'string') set.os_version = facts.OSVersion;
      // The only place an iPad tells its name and model: its Authenticate carries neither.
      if (typeof facts.DeviceName === 'string') set.name = facts.DeviceName;
      if (typeof facts.Model === 'string') set.model = facts.Model;
      if (typeof facts.ModelName === 'string') set.model_name = facts.ModelName;
      if (typeof facts.ProductName === 'string') set.product_name = facts.ProductName;
      if (typeof facts.BuildVersion === 'string') set.build_version = facts.BuildVersion;
      if (typeof facts.IsSupervised === 'boolean') set.is_supervised = facts.IsSupervised ? 1 : 0;
      if (facts.IsMultiUser === true) set.is_shared_ipad = 1;
    }
    if (kind !== 'installed_apps') {
      await this.#db.updateTable('devices').set(set).where('id', '=', deviceId).execute();
      return;
    }
    // The list as rows too, for the fleet-wide version counts of app updates (decision 0018).
    await this.#db.transaction().execute(async (tx) => {
      await tx.updateTable('devices').set(set).where('id', '=', deviceId).execute();
      await replaceDeviceApps(tx, deviceId, installedVersions(value), at);
    });
  }
}

/** Rows per INSERT: far below SQLite's and PostgreSQL's bound-parameter limits. */
const INSERT_CHUNK = 500;

/**
 * Stores the commands and queues each for its channel, inside the caller's transaction. One
 * counter bump reserves the queue order numbers of the whole batch, so a batch costs a few
 * statements, not a few per command.
 */
export async function queueCommands(
  tx: Kysely<Database>,
  entries: readonly QueueEntry[],
  at: Date,
): Promise<void> {
  if (entries.length === 0) return;
  const now = iso(at);
  const last = await nextCounter(tx, 'command_seq', entries.length);
  const first = last - entries.length + 1;
  // A command handed to several channels is stored once.
  const commands = [...new Map(entries.map((e) => [e.command.uuid, e.command])).values()];
  for (let i = 0; i < commands.length; i += INSERT_CHUNK) {
    await tx
      .insertInto('commands')
      .values(
        commands.slice(i, i + INSERT_CHUNK).map((c) => ({
          uuid: c.uuid,
          request_type: c.requestType,
          payload: c.payload,
          created_at: now,
        })),
      )
      .execute();
  }
  for (let i = 0; i < entries.length; i += INSERT_CHUNK) {
    await tx
      .insertInto('command_queue')
      .values(
        entries.slice(i, i + INSERT_CHUNK).map((e, j) => ({
          enrollment_id: e.enrollmentId,
          command_uuid: e.command.uuid,
          priority: e.priority,
          seq: first + i + j,
          created_at: now,
          delivery_count: 0,
          not_now_count: 0,
        })),
      )
      .execute();
  }
}

/**
 * A gap-free, human-friendly number (端末番号) and other sequences. One upsert statement, so
 * concurrent callers (PostgreSQL, several processes) never collide on the first value.
 */
export async function nextCounter(db: Kysely<Database>, name: string, by = 1): Promise<number> {
  const row = await db
    .insertInto('counters')
    .values({ name, value: by })
    .onConflict((oc) => oc.column('name').doUpdateSet((eb) => ({ value: eb('counters.value', '+', by) })))
    .returning('value')
    .executeTakeFirstOrThrow();
  return row.value;
}

/**
 * Promotes the pending renewed identity `fingerprint` of the device (decision 0023): the one it
 * replaces is kept as the previous identity (accepted until it expires), the renewal is over.
 * Idempotent: false when `fingerprint` is not (or no longer) the device's pending identity.
 */
export async function adoptRenewedIdentity(
  db: Kysely<Database>,
  deviceId: string,
  fingerprint: string,
  at: Date,
): Promise<boolean> {
  const now = iso(at);
  return db.transaction().execute(async (tx) => {
    const identity = await tx
      .selectFrom('identities')
      .select(['not_after'])
      .where('fingerprint', '=', fingerprint)
      .where('device_id', '=', deviceId)
      .executeTakeFirst();
    if (!identity) return false;
    const updated = await tx
      .updateTable('devices')
      .set((eb) => ({
        previous_cert_fingerprint: eb.ref('cert_fingerprint'),
        cert_fingerprint: fingerprint,
        identity_not_after: identity.not_after,
        pending_cert_fingerprint: null,
        identity_renewal_command: null,
        updated_at: now,
      }))
      .where('id', '=', deviceId)
      .where('pending_cert_fingerprint', '=', fingerprint)
      .executeTakeFirst();
    if (Number(updated.numUpdatedRows) === 0) return false;
    await tx
      .updateTable('identities')
      .set({ bound_at: now })
      .where('fingerprint', '=', fingerprint)
      .where('bound_at', 'is', null)
      .execute();
    return true;
  });
}

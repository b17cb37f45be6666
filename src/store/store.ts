import { randomUUID } from 'node:crypto';
import { sql } from 'kysely';
import type { Kysely } from 'kysely';
import { migrate, openDb } from './db.ts';
import type { Db } from './db.ts';
import { AdminRepo } from './admin-repo.ts';
import { AppUpdateRepo } from './app-update-repo.ts';
import { LeaseRepo } from './lease-repo.ts';
import { IdentityRepo } from './identity-repo.ts';
import { DiagnosisQueueRepo } from './diagnosis-queue-repo.ts';
import { VppPacingRepo } from './vpp-pacing-repo.ts';
import { DeviceRepo } from './device-repo.ts';
import { GroupRepo } from './group-repo.ts';
import { JobRepo } from './job-repo.ts';
import { KyselyMdmStore } from './mdm-store.ts';
import { QueueCompaction } from './queue-compaction.ts';
import type { CompactionOptions, CompactionResult } from './queue-compaction.ts';
import { VppRepo } from './vpp-repo.ts';
import { VppNotificationRepo } from './vpp-notification-repo.ts';
import { EnrollmentLinkRepo } from './enrollment-link-repo.ts';
import { ScepChallengeRepo } from './scep-challenge-repo.ts';
import type { GroupRow } from './group-repo.ts';
import type { DeviceRow } from './device-repo.ts';
import type { Database } from './schema.ts';

export type { GroupRow };
export type { DeviceRow };

export const ROOT_GROUP_NAME = 'root';

/** One handle on the database: the repositories every other layer reaches through ports. */
export class Store {
  readonly db: Db;
  readonly mdm: KyselyMdmStore;
  readonly admin: AdminRepo;
  readonly groups: GroupRepo;
  readonly devices: DeviceRepo;
  readonly vpp: VppRepo;
  /** Apps and Books notification ids already applied, whichever process got them (decision 0026). */
  readonly vppNotifications: VppNotificationRepo;
  readonly jobs: JobRepo;
  /** App versions, devices' installed versions, "keep apps up to date" (decision 0018). */
  readonly appUpdates: AppUpdateRepo;
  readonly leases: LeaseRepo;
  /** Device identities and their renewal (decision 0023). */
  readonly identities: IdentityRepo;
  /** Per-group enrollment links (decision 0022). */
  readonly enrollmentLinks: EnrollmentLinkRepo;
  /** One-time SCEP challenges (decision 0024). */
  readonly scepChallenges: ScepChallengeRepo;
  /** The Apps and Books pacing per location, shared by several processes (decision 0021). */
  readonly vppPacing: VppPacingRepo;
  /** Failed jobs waiting for their background diagnosis, claimed by one process (decision 0021). */
  readonly diagnosisQueue: DiagnosisQueueRepo;
  readonly #compaction: QueueCompaction;

  private constructor(db: Db) {
    this.db = db;
    this.mdm = new KyselyMdmStore(db);
    this.admin = new AdminRepo(db.kysely);
    this.groups = new GroupRepo(db.kysely);
    this.devices = new DeviceRepo(db.kysely);
    this.vpp = new VppRepo(db.kysely);
    this.vppNotifications = new VppNotificationRepo(db.kysely);
    this.jobs = new JobRepo(db.kysely);
    this.appUpdates = new AppUpdateRepo(db.kysely);
    this.leases = new LeaseRepo(db.kysely);
    this.identities = new IdentityRepo(db.kysely);
    this.enrollmentLinks = new EnrollmentLinkRepo(db.kysely);
    this.scepChallenges = new ScepChallengeRepo(db.kysely);
    this.vppPacing = new VppPacingRepo(db.kysely);
    this.diagnosisQueue = new DiagnosisQueueRepo(db.kysely, db.dialect);
    this.#compaction = new QueueCompaction(db.kysely);
  }

  /** Removes the queue's history beyond the retention (see src/store/queue-compaction.ts). */
  compactQueue(options: CompactionOptions): Promise<CompactionResult> {
    return this.#compaction.run(options);
  }

  /** Resolves once every write made so far is committed (SQLite's group commit, see db.ts). */
  committed(): Promise<void> {
    return this.db.committed();
  }

  /** Opens HAISHIN_DB, applies pending migrations and makes sure the root group exists. */
  static async open(url: string, at: Date): Promise<Store> {
    const db = openDb(url);
    try {
      await migrate(db);
      const store = new Store(db);
      await store.ensureRootGroup(at);
      return store;
    } catch (err) {
      await db.close();
      throw err;
    }
  }

  get #k(): Kysely<Database> {
    return this.db.kysely;
  }

  async close(): Promise<void> {
    // The last `last_seen_at` batch (see KyselyMdmStore.touch) goes in before the database closes.
    await this.mdm.flush();
    await this.db.close();
  }

  async getSetting(key: string): Promise<string | null> {
    const row = await this.#k
      .selectFrom('settings')
      .select('value')
      .where('key', '=', key)
      .executeTakeFirst();
    return row?.value ?? null;
  }

  async putSetting(key: string, value: string, at: Date): Promise<void> {
    await this.#k
      .insertInto('settings')
      .values({ key, value, updated_at: at.toISOString() })
      .onConflict((oc) => oc.column('key').doUpdateSet({ value, updated_at: at.toISOString() }))
      .execute();
  }

  async deleteSetting(key: string): Promise<void> {
    await this.#k.deleteFrom('settings').where('key', '=', key).execute();
  }

  /** Writes the value only if the key is unset; returns what is stored afterwards (first writer wins). */
  async setSettingIfAbsent(key: string, value: string, at: Date): Promise<string> {
    await this.#k
      .insertInto('settings')
      .values({ key, value, updated_at: at.toISOString() })
      .onConflict((oc) => oc.column('key').doNothing())
      .execute();
    const stored = await this.getSetting(key);
    if (stored === null) throw new Error(`setting ${key} vanished right after it was written`);
    return stored;
  }

  async ensureRootGroup(at: Date): Promise<GroupRow> {
    const root = await this.rootGroup();
    if (root) return root;
    const now = at.toISOString();
    await this.#k
      .insertInto('groups')
      .values({ id: randomUUID(), name: ROOT_GROUP_NAME, parent_id: null, created_at: now, updated_at: now })
      .execute();
    const created = await this.rootGroup();
    if (!created) throw new Error('the root group could not be created');
    return created;
  }

  rootGroup(): Promise<GroupRow | undefined> {
    return this.#k
      .selectFrom('groups')
      .selectAll()
      .where('parent_id', 'is', null)
      .orderBy('created_at')
      .executeTakeFirst();
  }

  getGroup(id: string): Promise<GroupRow | undefined> {
    return this.groups.get(id);
  }

  async recordIssuedIdentity(identity: {
    fingerprint: string;
    serialHex: string;
    groupId: string;
    issuedAt: Date;
    notAfter: Date;
    deviceId?: string;
  }): Promise<void> {
    await this.#k
      .insertInto('identities')
      .values({
        fingerprint: identity.fingerprint,
        serial_hex: identity.serialHex,
        group_id: identity.groupId,
        issued_at: identity.issuedAt.toISOString(),
        not_after: identity.notAfter.toISOString(),
        // A renewal's identity belongs to its device from the start (decision 0023).
        device_id: identity.deviceId ?? null,
        bound_at: null,
      })
      .execute();
  }

  getDeviceByUdid(udid: string): Promise<DeviceRow | undefined> {
    return this.#k.selectFrom('devices').selectAll().where('udid', '=', udid).executeTakeFirst();
  }

  /** A trivial round trip: resolves when the database answers (readiness). */
  async ping(): Promise<void> {
    await sql`select 1`.execute(this.#k);
  }

  /** Commands owed to devices, every channel together (one index count: cheap enough for each scrape). */
  async queueDepth(): Promise<number> {
    const row = await this.#k
      .selectFrom('command_queue')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .executeTakeFirstOrThrow();
    return Number(row.n);
  }

  async queueLength(enrollmentId: string): Promise<number> {
    const row = await this.#k
      .selectFrom('command_queue')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('enrollment_id', '=', enrollmentId)
      .executeTakeFirstOrThrow();
    return Number(row.n);
  }
}

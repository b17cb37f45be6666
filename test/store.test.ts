import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Migrator } from 'kysely';
import { migrate } from '../src/store/db.ts';
import { migrationProvider } from '../src/store/migrations/index.ts';
import { Store } from '../src/store/store.ts';
import type { AuthenticateFacts, IdentityRecord } from '../src/mdm/ports.ts';
import { postgresAvailable, postgresSkipReason, startPostgres } from './support/pg.ts';
import type { ThrowawayPostgres } from './support/pg.ts';

const T0 = new Date('2026-03-01T09:00:00Z');
const later = (ms: number) => new Date(T0.getTime() + ms);

if (!postgresAvailable) console.warn(`[store.test] ${postgresSkipReason}`);

function facts(udid: string, serial = 'SERIAL1'): AuthenticateFacts {
  return {
    udid,
    topic: 'com.apple.mgmt.External.test',
    serialNumber: serial,
    osVersion: '18.1',
    buildVersion: '22B83',
    productName: 'iPad13,18',
    deviceName: 'iPad',
    model: 'MK2K3J/A',
    modelName: 'iPad',
    imei: null,
    meid: null,
  };
}

const dialects = [
  { name: 'sqlite', enabled: true },
  { name: 'postgres', enabled: postgresAvailable },
] as const;

describe.each(dialects)('store on $name', ({ name, enabled }) => {
  let pg: ThrowawayPostgres | null = null;
  let store: Store;

  beforeAll(async () => {
    if (!enabled) return;
    let url = 'sqlite::memory:';
    if (name === 'postgres') {
      pg = await startPostgres();
      url = pg.url;
    }
    store = await Store.open(url, T0);
  });

  afterAll(async () => {
    await store?.close();
    pg?.stop();
  });

  async function enrolledDevice(
    udid = randomUUID(),
  ): Promise<{ deviceId: string; identity: IdentityRecord }> {
    const root = await store.ensureRootGroup(T0);
    const fingerprint = randomUUID().replace(/-/g, '');
    await store.recordIssuedIdentity({
      fingerprint,
      serialHex: '01',
      groupId: root.id,
      issuedAt: T0,
      notAfter: later(1e10),
    });
    const identity = (await store.mdm.findIdentity(fingerprint))!;
    const { deviceId } = await store.mdm.authenticate(facts(udid), identity, T0);
    await store.mdm.tokenUpdate(
      deviceId,
      {
        udid,
        enrollmentId: udid,
        user: null,
        topic: 't',
        pushTokenHex: 'ab'.repeat(32),
        pushMagic: 'magic',
        awaitingConfiguration: false,
      },
      T0,
    );
    return { deviceId, identity };
  }

  const command = (type = 'DeviceInformation') => ({
    uuid: randomUUID(),
    requestType: type,
    payload: `<plist>${type}</plist>`,
  });

  it.skipIf(!enabled)('migrates idempotently and keeps exactly one root group', async () => {
    expect(await migrate(store.db)).toEqual([]);
    await store.ensureRootGroup(later(1000));
    const root = await store.rootGroup();
    expect(root?.parent_id).toBeNull();
    const all = await store.db.kysely
      .selectFrom('groups')
      .selectAll()
      .where('parent_id', 'is', null)
      .execute();
    expect(all).toHaveLength(1);
  });

  it.skipIf(!enabled)(
    "0007 moves the engine's place out of the reason into jobs.step, for the jobs in flight",
    async () => {
      // Enrolled with today's code and schema (its Authenticate writes columns added after 0006).
      const { deviceId } = await enrolledDevice();
      const migrator = new Migrator({ db: store.db.kysely, provider: migrationProvider });
      const back = await migrator.migrateTo('0006_hot_path_indexes');
      expect(back.error).toBeUndefined();
      try {
        const distributionId = randomUUID();
        await store.db.kysely
          .insertInto('distributions')
          .values({
            id: distributionId,
            kind: 'install',
            token_id: 't',
            adam_ids: '["1"]',
            targets: '{}',
            license_mode: 'auto',
            scheduled_at: null,
            created_by: 'test',
            created_at: T0.toISOString(),
            cancelled_at: null,
          })
          .execute();
        // As the engine of 0006 left them: its place in the reason.
        const rows = [
          ['license_assigning', 'submitted'],
          ['license_assigning', null],
          ['push_sending', 'retry'],
          ['push_sending', 'retry pushed'],
          ['awaiting_response', 'command fetched'],
        ] as const;
        const ids = rows.map(() => randomUUID());
        await store.db.kysely
          .insertInto('jobs')
          .values(
            rows.map(([status, reason], i) => ({
              id: ids[i]!,
              distribution_id: distributionId,
              device_id: deviceId,
              adam_id: '1',
              kind: 'install' as const,
              token_id: 't',
              license_mode: 'auto' as const,
              status,
              reason,
              retry_count: 0,
              attempt: 1,
              seq: 900_000 + i,
              bundle_id: null,
              command_uuid: null,
              next_at: null,
              push_deadline: null,
              session_deadline: null,
              request_deadline: later(1e9).toISOString(),
              error: null,
              diagnosis: null,
              scheduled_at: null,
              created_at: T0.toISOString(),
              updated_at: T0.toISOString(),
            })),
          )
          .execute();
        // 0007 and whatever came after it (0008 and on come back up too).
        expect((await migrate(store.db))[0]).toBe('0007_job_step');
        const after = await store.db.kysely
          .selectFrom('jobs')
          .select(['id', 'step', 'reason'])
          .where('id', 'in', ids)
          .execute();
        const byId = new Map(after.map((r) => [r.id, r]));
        expect(ids.map((id) => byId.get(id)?.step ?? null)).toEqual([
          'licence_requested',
          null,
          'push_due',
          null,
          null,
        ]);
        // The reasons stay as they were: they are what people read in the history.
        expect(ids.map((id) => byId.get(id)?.reason)).toEqual(rows.map(([, reason]) => reason));
      } finally {
        await migrate(store.db);
      }
    },
  );

  it.skipIf(!enabled)('gives devices consecutive device numbers and binds identities', async () => {
    const a = await enrolledDevice();
    const b = await enrolledDevice();
    const rows = await store.db.kysely
      .selectFrom('devices')
      .select(['id', 'device_number', 'status'])
      .where('id', 'in', [a.deviceId, b.deviceId])
      .orderBy('device_number')
      .execute();
    expect(rows[1]!.device_number - rows[0]!.device_number).toBe(1);
    expect(rows.every((r) => r.status === 'enrolled')).toBe(true);
    const bound = await store.mdm.findIdentity(a.identity.fingerprint);
    expect(bound?.deviceId).toBe(a.deviceId);
  });

  it.skipIf(!enabled)('serves the queue by priority then age, and answered rows leave it', async () => {
    const udid = randomUUID();
    await enrolledDevice(udid);
    const low = command('InstalledApplicationList');
    const high = command('DeviceInformation');
    const lowLater = command('Restrictions');
    await store.mdm.enqueue([{ enrollmentId: udid, command: low, priority: 0 }], later(1));
    await store.mdm.enqueue([{ enrollmentId: udid, command: lowLater, priority: 0 }], later(2));
    await store.mdm.enqueue([{ enrollmentId: udid, command: high, priority: 10 }], later(3));
    expect((await store.mdm.nextCommand(udid, later(4)))?.uuid).toBe(high.uuid);
    const saved = await store.mdm.saveResult({
      enrollmentId: udid,
      commandUuid: high.uuid,
      status: 'Acknowledged',
      raw: '<plist/>',
      errorChain: null,
      at: later(5),
    });
    expect(saved).toEqual({ requestType: 'DeviceInformation', duplicate: false });
    expect((await store.mdm.nextCommand(udid, later(6)))?.uuid).toBe(low.uuid);
    const again = await store.mdm.saveResult({
      enrollmentId: udid,
      commandUuid: high.uuid,
      status: 'Acknowledged',
      raw: '<plist/>',
      errorChain: null,
      at: later(7),
    });
    expect(again.duplicate).toBe(true);
    expect(await store.queueLength(udid)).toBe(2);
  });

  it.skipIf(!enabled)(
    'queues a batch of 1,200 entries in one call: order kept, a shared command stored once',
    async () => {
      const udids = [randomUUID(), randomUUID(), randomUUID()];
      for (const udid of udids) await enrolledDevice(udid);
      const shared = command('DeviceInformation');
      // 400 per device, interleaved, plus one command handed to all three: more than one INSERT chunk.
      const perDevice = udids.map(() => Array.from({ length: 400 }, () => command('Restrictions')));
      const entries = [
        ...udids.map((udid) => ({ enrollmentId: udid, command: shared, priority: 5 })),
        ...perDevice[0]!.flatMap((_, i) =>
          udids.map((udid, d) => ({ enrollmentId: udid, command: perDevice[d]![i]!, priority: 0 })),
        ),
      ];
      await store.mdm.enqueue(entries, later(1));
      for (const udid of udids) expect(await store.queueLength(udid)).toBe(401);
      const stored = await store.db.kysely
        .selectFrom('commands')
        .select((eb) => eb.fn.countAll<number>().as('n'))
        .where('uuid', '=', shared.uuid)
        .executeTakeFirstOrThrow();
      expect(Number(stored.n)).toBe(1);
      const second = udids[1]!;
      expect((await store.mdm.nextCommand(second, later(2)))?.uuid).toBe(shared.uuid);
      await store.mdm.saveResult({
        enrollmentId: second,
        commandUuid: shared.uuid,
        status: 'Acknowledged',
        raw: '<plist/>',
        errorChain: null,
        at: later(3),
      });
      // Equal priorities come out in the order of the batch.
      for (const expected of perDevice[1]!.slice(0, 3)) {
        const next = await store.mdm.nextCommand(second, later(4));
        expect(next?.uuid).toBe(expected.uuid);
        await store.mdm.saveResult({
          enrollmentId: second,
          commandUuid: expected.uuid,
          status: 'Acknowledged',
          raw: '<plist/>',
          errorChain: null,
          at: later(5),
        });
      }
      await store.mdm.enqueue([], later(6));
      expect(await store.queueLength(second)).toBe(397);
    },
  );

  it.skipIf(!enabled)(
    're-Authenticate clears the queue and disables the channel until TokenUpdate',
    async () => {
      const udid = randomUUID();
      const { identity } = await enrolledDevice(udid);
      const queued = command();
      await store.mdm.enqueue([{ enrollmentId: udid, command: queued, priority: 0 }], later(1));
      const { clearedCommandUuids } = await store.mdm.authenticate(facts(udid), identity, later(2));
      expect(clearedCommandUuids).toEqual([queued.uuid]);
      await store.mdm.enqueue([{ enrollmentId: udid, command: command(), priority: 0 }], later(3));
      expect(await store.mdm.nextCommand(udid, later(4))).toBeNull();
      const device = await store.getDeviceByUdid(udid);
      expect(device?.status).toBe('pending');
    },
  );

  it.skipIf(!enabled)('marks NotNow without dropping the command, and CheckOut unenrolls', async () => {
    const udid = randomUUID();
    const { deviceId } = await enrolledDevice(udid);
    const queued = command('InstallApplication');
    await store.mdm.enqueue([{ enrollmentId: udid, command: queued, priority: 0 }], later(1));
    expect(await store.mdm.markNotNow(udid, queued.uuid, later(2))).toEqual({ known: true });
    expect(await store.mdm.markNotNow(udid, randomUUID(), later(2))).toEqual({ known: false });
    expect((await store.mdm.nextCommand(udid, later(3)))?.uuid).toBe(queued.uuid);
    await store.mdm.checkOut(deviceId, later(4));
    expect((await store.getDeviceByUdid(udid))?.status).toBe('unenrolled');
  });

  it.skipIf(!enabled)('keeps device facts as JSON with their time', async () => {
    const udid = randomUUID();
    const { deviceId } = await enrolledDevice(udid);
    await store.mdm.saveDeviceFacts(
      deviceId,
      'facts',
      { OSVersion: '17.5', IsMultiUser: true, AvailableDeviceCapacity: 0.1 },
      later(9),
    );
    const device = await store.getDeviceByUdid(udid);
    expect(device?.os_version).toBe('17.5');
    expect(device?.is_shared_ipad).toBe(1);
    expect(JSON.parse(device!.facts!)).toMatchObject({ AvailableDeviceCapacity: 0.1 });
    expect(device?.facts_at).toBe(later(9).toISOString());
  });

  it.skipIf(!enabled)('push targets for a whole fleet: more ids than one statement may bind', async () => {
    const { deviceId } = await enrolledDevice();
    // 70,000 > SQLite's 32,766 and PostgreSQL's 65,535 bound parameters.
    const ids = Array.from({ length: 70_000 }, (_, i) => `no-such-device-${i}`);
    ids.splice(50_000, 0, deviceId);
    const targets = await store.devices.pushTargets(ids);
    expect(targets.map((t) => t.deviceId)).toEqual([deviceId]);
    expect(targets[0]?.pushMagic).toBe('magic');
  });

  it.skipIf(!enabled)('settings: the first writer wins', async () => {
    const key = `k-${randomUUID()}`;
    expect(await store.setSettingIfAbsent(key, 'first', T0)).toBe('first');
    expect(await store.setSettingIfAbsent(key, 'second', T0)).toBe('first');
  });
});

// Issue 14, item 5 — the store of app updates (decision 0018) on SQLite and, when its binaries are
// here, PostgreSQL: versions, devices' installed versions as rows, the counts, the update
// candidates, the per-group setting, and migration 0009 down and up again.
import { randomUUID } from 'node:crypto';
import { Migrator } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { migrate } from '../src/store/db.ts';
import { migrationProvider } from '../src/store/migrations/index.ts';
import { Store } from '../src/store/store.ts';
import { postgresAvailable, startPostgres } from './support/pg.ts';
import type { ThrowawayPostgres } from './support/pg.ts';

const T0 = new Date('2026-03-01T09:00:00Z');
const later = (ms: number) => new Date(T0.getTime() + ms);
const NOTE = { adamId: '1450088001', bundleId: 'jp.example.store.note' };

const dialects = [
  { name: 'sqlite', enabled: true },
  { name: 'postgres', enabled: postgresAvailable },
] as const;

describe.each(dialects)('app updates store on $name', ({ name, enabled }) => {
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

  /** An enrolled device with a serial number, in `groupId` (default: the root). */
  async function device(serial: string, groupId?: string): Promise<string> {
    const root = await store.ensureRootGroup(T0);
    const fingerprint = randomUUID().replace(/-/g, '');
    await store.recordIssuedIdentity({
      fingerprint,
      serialHex: '01',
      groupId: groupId ?? root.id,
      issuedAt: T0,
      notAfter: later(1e10),
    });
    const identity = (await store.mdm.findIdentity(fingerprint))!;
    const udid = randomUUID();
    const { deviceId } = await store.mdm.authenticate(
      {
        udid,
        topic: 't',
        serialNumber: serial,
        osVersion: '18.1',
        buildVersion: '22B83',
        productName: 'iPad13,18',
        deviceName: 'iPad',
        model: 'M',
        modelName: 'iPad',
        imei: null,
        meid: null,
      },
      identity,
      T0,
    );
    await store.mdm.tokenUpdate(
      deviceId,
      {
        udid,
        enrollmentId: udid,
        user: null,
        topic: 't',
        pushTokenHex: 'ab'.repeat(32),
        pushMagic: 'm',
        awaitingConfiguration: false,
      },
      T0,
    );
    return deviceId;
  }

  it.skipIf(!enabled)(
    'records versions: first sight, a newer one as a change, never an older one',
    async () => {
      const seen = (version: string) => [
        { adamId: NOTE.adamId, bundleId: NOTE.bundleId, name: 'ノート', version, minimumOsVersion: '16.0' },
      ];
      expect(await store.appUpdates.recordVersions(seen('1.0'), T0)).toEqual([]);
      expect(await store.appUpdates.recordVersions(seen('1.0.0'), later(1))).toEqual([]);
      expect(await store.appUpdates.recordVersions(seen('1.2'), later(2))).toEqual([
        { adamId: NOTE.adamId, from: '1.0', to: '1.2' },
      ]);
      expect(await store.appUpdates.recordVersions(seen('1.1'), later(3))).toEqual([]);
      const row = await store.appUpdates.version(NOTE.adamId);
      expect(row).toMatchObject({
        version: '1.2',
        previous_version: '1.0',
        changed_at: later(2).toISOString(),
        checked_at: later(3).toISOString(),
      });
    },
  );

  it.skipIf(!enabled)(
    "keeps each device's installed list as rows, replaced by every answer, and counts them per version",
    async () => {
      const a = await device('STA0001');
      const b = await device('STA0002');
      const c = await device('STA0003');
      const list = (version: string, extra: object[] = []) => [
        { Identifier: NOTE.bundleId, ShortVersion: version, Version: '100' },
        ...extra,
      ];
      await store.mdm.saveDeviceFacts(a, 'installed_apps', list('1.0', [{ Identifier: 'x.other' }]), T0);
      await store.mdm.saveDeviceFacts(b, 'installed_apps', list('1.0'), T0);
      await store.mdm.saveDeviceFacts(c, 'installed_apps', list('1.2'), T0);
      let counts = await store.appUpdates.versionCounts([NOTE.bundleId]);
      expect(counts.sort((x, y) => String(x.version).localeCompare(String(y.version)))).toEqual([
        { bundleId: NOTE.bundleId, version: '1.0', installing: false, devices: 2 },
        { bundleId: NOTE.bundleId, version: '1.2', installing: false, devices: 1 },
      ]);
      // A later answer replaces the device's rows: updated on b, removed from a.
      await store.mdm.saveDeviceFacts(b, 'installed_apps', list('1.2'), later(10));
      await store.mdm.saveDeviceFacts(a, 'installed_apps', [{ Identifier: 'x.other' }], later(10));
      counts = await store.appUpdates.versionCounts([NOTE.bundleId]);
      expect(counts).toEqual([{ bundleId: NOTE.bundleId, version: '1.2', installing: false, devices: 2 }]);
      // A deactivated device no longer counts.
      await store.devices.deactivate(c, later(11));
      expect(await store.appUpdates.versionCounts([NOTE.bundleId])).toEqual([
        { bundleId: NOTE.bundleId, version: '1.2', installing: false, devices: 1 },
      ]);
    },
  );

  it.skipIf(!enabled)(
    'finds the licensed devices with their version, and which have an install running or tried',
    async () => {
      const adamId = '1450088002';
      const bundleId = 'jp.example.store.drill';
      const old = await device('LIC0001');
      const fresh = await device('LIC0002');
      const never = await device('LIC0003');
      await device('LIC0004'); // no licence: not a candidate
      await store.mdm.saveDeviceFacts(
        old,
        'installed_apps',
        [{ Identifier: bundleId, ShortVersion: '2.0' }],
        T0,
      );
      await store.mdm.saveDeviceFacts(
        fresh,
        'installed_apps',
        [{ Identifier: bundleId, ShortVersion: '2.1' }],
        T0,
      );
      const root = await store.ensureRootGroup(T0);
      const token = await store.vpp.createToken(
        {
          groupId: root.id,
          orgName: '教育委員会',
          locationName: 'school',
          locationId: null,
          expiresAt: later(1e10),
          sealedSToken: 'sealed',
          claimState: 'ours',
          notificationAuthToken: randomUUID(),
        },
        T0,
      );
      const tok = token.id;
      const licence = (serial: string) => ({
        tokenId: tok,
        adamId,
        pricingParam: 'STDQ',
        serial,
        origin: 'auto' as const,
        viaGroupId: null,
      });
      await store.vpp.markLicenses(['LIC0001', 'LIC0002', 'LIC0003'].map(licence), 'assigned', null, T0);
      const candidates = await store.appUpdates.licensedDevices(adamId, bundleId);
      expect(
        candidates.map((c) => [c.serialNumber, c.listed, c.version, c.listedAt !== null, c.tokenId]),
      ).toEqual([
        ['LIC0001', true, '2.0', true, tok],
        ['LIC0002', true, '2.1', true, tok],
        ['LIC0003', false, null, false, tok],
      ]);
      expect(candidates.every((c) => c.status === 'enrolled' && c.origin === 'auto')).toBe(true);

      const distributionId = randomUUID();
      const job = (deviceId: string, status: string, isUpdate: number, expected: string | null) => ({
        id: randomUUID(),
        distribution_id: distributionId,
        device_id: deviceId,
        adam_id: adamId,
        kind: 'install' as const,
        token_id: tok,
        license_mode: 'auto' as const,
        status,
        reason: null,
        step: null,
        retry_count: 0,
        attempt: 1,
        bundle_id: bundleId,
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
        expected_version: expected,
        is_update: isUpdate,
      });
      await store.jobs.createDistribution(
        {
          id: distributionId,
          kind: 'install',
          token_id: tok,
          adam_ids: JSON.stringify([adamId]),
          targets: '{}',
          license_mode: 'auto',
          scheduled_at: null,
          created_by: 'test',
          created_at: T0.toISOString(),
          cancelled_at: null,
          is_update: 1,
        },
        [job(old, 'session_timeout', 1, '2.1'), job(never, 'executing', 1, '2.1')],
        T0,
      );
      const { open, tried } = await store.appUpdates.busyOrTried(adamId, [old, fresh, never], '2.1');
      expect([...open]).toEqual([never]);
      expect([...tried].sort()).toEqual([old, never].sort());
      const job0 = (await store.jobs.list({ distributionId, limit: 10 })).find((j) => j.device_id === old)!;
      expect(job0).toMatchObject({ is_update: 1, expected_version: '2.1', installed_version: null });
    },
  );

  it.skipIf(!enabled)('keeps a group’s own "keep apps up to date": on, off, or none', async () => {
    const root = await store.ensureRootGroup(T0);
    const school = await store.groups.create('学校', root.id, T0);
    await store.appUpdates.setKeepUpdated(school.id, true, T0);
    await store.appUpdates.setKeepUpdated(root.id, false, T0);
    expect(await store.appUpdates.keepUpdatedSettings()).toEqual(
      new Map([
        [school.id, true],
        [root.id, false],
      ]),
    );
    await store.appUpdates.setKeepUpdated(school.id, false, later(1));
    await store.appUpdates.setKeepUpdated(root.id, null, later(1));
    expect(await store.appUpdates.keepUpdatedSettings()).toEqual(new Map([[school.id, false]]));
  });

  it.skipIf(!enabled)('0009 goes down and up again', async () => {
    const migrator = new Migrator({ db: store.db.kysely, provider: migrationProvider });
    const down = await migrator.migrateTo('0008_queue_compaction');
    expect(down.error).toBeUndefined();
    // 0009 and every migration after it, in order.
    const after = Object.keys(await migrationProvider.getMigrations())
      .filter((m) => m > '0008_queue_compaction')
      .sort();
    expect(after[0]).toBe('0009_app_updates');
    expect(await migrate(store.db)).toEqual(after);
    expect(await store.appUpdates.versions()).toEqual([]);
  });
});

// Issue 15, item 2: the queue's history stays bounded, and compaction keeps what diagnosis,
// history and support bundles need.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../src/core/clock.ts';
import { parseConfig } from '../src/core/config.ts';
import { queueCompactionPeriodMs } from '../src/app/haishin.ts';
import { deviceInformation, restrictions } from '../src/mdm/commands.ts';
import type { BuiltCommand } from '../src/mdm/commands.ts';
import { SimDevice } from '../src/sim/device/device.ts';
import type { Store } from '../src/store/store.ts';
import { postgresAvailable, postgresSkipReason, startPostgres } from './support/pg.ts';
import type { ThrowawayPostgres } from './support/pg.ts';
import { startTestServer } from './support/server.ts';
import type { TestServer } from './support/server.ts';
import { ADMIN, World } from './support/world.ts';
import type { CatalogApp } from './support/world.ts';

if (!postgresAvailable) console.warn(`[queue-compaction.test] ${postgresSkipReason}`);

const MINUTE = 60_000;

async function rowCounts(store: Store) {
  const k = store.db.kysely;
  const count = async (table: 'mdm_messages' | 'command_results' | 'commands' | 'command_queue') =>
    Number(
      (
        await k
          .selectFrom(table)
          .select((eb) => eb.fn.countAll<number>().as('n'))
          .executeTakeFirstOrThrow()
      ).n,
    );
  return {
    messages: await count('mdm_messages'),
    results: await count('command_results'),
    commands: await count('commands'),
    queued: await count('command_queue'),
  };
}

describe('configuration', () => {
  it('HAISHIN_QUEUE_RETENTION and HAISHIN_QUEUE_KEEP_MESSAGES, with defaults and refusals', () => {
    expect(parseConfig({}).queue).toEqual({ retentionMs: 7 * 86_400_000, keepMessagesPerDevice: 20 });
    expect(parseConfig({ HAISHIN_QUEUE_RETENTION: '36h', HAISHIN_QUEUE_KEEP_MESSAGES: '0' }).queue).toEqual({
      retentionMs: 36 * 3_600_000,
      keepMessagesPerDevice: 0,
    });
    expect(() => parseConfig({ HAISHIN_QUEUE_RETENTION: 'a week' })).toThrow(/HAISHIN_QUEUE_RETENTION/);
    expect(() => parseConfig({ HAISHIN_QUEUE_RETENTION: '0s' })).toThrow(/HAISHIN_QUEUE_RETENTION/);
    expect(() => parseConfig({ HAISHIN_QUEUE_KEEP_MESSAGES: '-1' })).toThrow(/HAISHIN_QUEUE_KEEP_MESSAGES/);
    // Hourly for a retention of days; four times per retention when that is shorter.
    expect(queueCompactionPeriodMs(7 * 86_400_000)).toBe(3_600_000);
    expect(queueCompactionPeriodMs(20 * MINUTE)).toBe(5 * MINUTE);
    expect(queueCompactionPeriodMs(1000)).toBe(1000);
  });
});

const backends = [
  { name: 'sqlite', enabled: true },
  { name: 'postgres', enabled: postgresAvailable },
] as const;

describe.each(backends)('queue history on $name', ({ name, enabled }) => {
  const clock = new ManualClock('2026-03-01T08:00:00Z');
  let pg: ThrowawayPostgres | null = null;
  let server: TestServer;
  let store: Store;

  beforeAll(async () => {
    if (!enabled) return;
    if (name === 'postgres') pg = await startPostgres();
    server = await startTestServer({
      ...(pg ? { db: pg.url } : {}),
      clock,
      env: { HAISHIN_QUEUE_RETENTION: '5m', HAISHIN_QUEUE_KEEP_MESSAGES: '3' },
      // Compaction is run by the test, after each round.
      tuning: { queueCompactionMs: 0 },
    });
    store = server.haishin.store;
  }, 60_000);
  afterAll(async () => {
    await server?.close();
    pg?.stop();
  });

  const enqueue = (device: SimDevice, build: (uuid: string) => BuiltCommand) =>
    store.mdm.enqueue(
      [{ enrollmentId: device.udid, command: build(randomUUID()), priority: 0 }],
      clock.now(),
    );

  it.skipIf(!enabled)(
    'stays bounded over many check-ins with a short retention, keeping each device’s newest messages',
    async () => {
      const devices: SimDevice[] = [];
      for (let i = 0; i < 4; i++) {
        const device = new SimDevice({
          spec: { serialNumber: `QC${name.slice(0, 2)}${String(i).padStart(6, '0')}` },
        });
        await device.enroll(server.enrollUrl());
        devices.push(device);
      }
      const [silent, ...active] = devices as [SimDevice, ...SimDevice[]];
      const history: Awaited<ReturnType<typeof rowCounts>>[] = [];
      for (let round = 1; round <= 40; round++) {
        clock.advance(MINUTE);
        for (const device of round <= 3 ? devices : active) {
          await enqueue(device, (u) => deviceInformation(u));
          await enqueue(device, (u) => restrictions(u));
          // Idle, two commands answered, the closing Idle: Idles leave no row.
          const log = await device.connect();
          expect(log.map((l) => l.sent)).toEqual(['Idle', 'Acknowledged', 'Acknowledged']);
        }
        // A few Idles between sessions, as a polling device sends them.
        for (const device of active) for (let i = 0; i < 3; i++) await device.connect();
        await server.haishin.compactQueue();
        history.push(await rowCounts(store));
      }
      // Each active device adds 2 commands, 2 results and 2 messages a minute; 5 minutes are kept.
      const last = history[history.length - 1]!;
      expect(last.queued).toBe(0);
      expect(last.commands).toBeLessThanOrEqual(active.length * 2 * 6);
      expect(last.results).toBeLessThanOrEqual(active.length * 2 * 6);
      expect(last.messages).toBeLessThanOrEqual(active.length * 2 * 6 + 3);
      // Steady state: the same size after 20 minutes as after 40.
      expect(history[19]).toEqual(last);

      // The silent device keeps exactly its 3 newest messages; none of its commands or results.
      const silentMessages = await store.db.kysely
        .selectFrom('mdm_messages')
        .select(['message_type', 'received_at'])
        .where('udid', '=', silent.udid)
        .orderBy('received_at')
        .execute();
      expect(silentMessages).toHaveLength(3);
      expect(silentMessages.every((m) => m.message_type === 'Acknowledged')).toBe(true);
      expect(
        await store.db.kysely
          .selectFrom('command_results')
          .select('command_uuid')
          .where('enrollment_id', '=', silent.udid)
          .execute(),
      ).toEqual([]);
      const idles = await store.db.kysely
        .selectFrom('mdm_messages')
        .select('id')
        .where('message_type', '=', 'Idle')
        .execute();
      expect(idles).toEqual([]);
    },
    120_000,
  );

  it.skipIf(!enabled)(
    'keeps a queued command, and the command and answer of a job that has not succeeded',
    async () => {
      const device = new SimDevice({ spec: { serialNumber: `QK${name.slice(0, 2)}000001` } });
      await device.enroll(server.enrollUrl());
      const deviceId = (await store.getDeviceByUdid(device.udid))!.id;
      // Three answered commands, each the command of a job: in flight, failed, succeeded.
      const uuids: string[] = [];
      for (let i = 0; i < 3; i++) {
        const command = deviceInformation(randomUUID());
        uuids.push(command.uuid);
        await store.mdm.enqueue([{ enrollmentId: device.udid, command, priority: 0 }], clock.now());
        await device.connect();
      }
      // And one still queued (never fetched).
      const queued = restrictions(randomUUID());
      await store.mdm.enqueue([{ enrollmentId: device.udid, command: queued, priority: 0 }], clock.now());
      const distributionId = randomUUID();
      const now = clock.now().toISOString();
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
          created_at: now,
          cancelled_at: null,
        })
        .execute();
      const statuses = ['awaiting_response', 'device_error', 'success'] as const;
      await store.db.kysely
        .insertInto('jobs')
        .values(
          statuses.map((status, i) => ({
            id: randomUUID(),
            distribution_id: distributionId,
            device_id: deviceId,
            adam_id: '1',
            kind: 'install' as const,
            token_id: 't',
            license_mode: 'auto' as const,
            status,
            reason: null,
            retry_count: 0,
            attempt: 1,
            seq: 100 + i,
            bundle_id: null,
            command_uuid: uuids[i]!,
            next_at: null,
            push_deadline: null,
            session_deadline: null,
            request_deadline: now,
            error: null,
            diagnosis: null,
            scheduled_at: null,
            created_at: now,
            updated_at: now,
          })),
        )
        .execute();

      clock.advance(60 * MINUTE);
      const done = await server.haishin.compactQueue();
      expect(done.results).toBeGreaterThanOrEqual(1);
      const results = await store.db.kysely
        .selectFrom('command_results')
        .select('command_uuid')
        .where('enrollment_id', '=', device.udid)
        .execute();
      expect(results.map((r) => r.command_uuid).sort()).toEqual([uuids[0], uuids[1]].sort());
      const commands = await store.db.kysely
        .selectFrom('commands')
        .select('uuid')
        .where('uuid', 'in', [...uuids, queued.uuid])
        .execute();
      expect(commands.map((c) => c.uuid).sort()).toEqual([uuids[0], uuids[1], queued.uuid].sort());
      // The queued command is still handed out.
      const log = await device.connect();
      expect(log[0]!.command?.CommandUUID).toBe(queued.uuid);
    },
    60_000,
  );
});

const APP: CatalogApp = {
  adamId: '1460000015',
  name: 'コンパクト算数',
  bundleId: 'jp.example.compact-math',
  sizeBytes: 30_000_000,
  licences: 10,
};

describe('a failed job after compaction', () => {
  let world: World;

  beforeAll(async () => {
    // A retention of one second: the timer compacts every second while the distribution runs.
    world = await World.start([APP], { HAISHIN_QUEUE_RETENTION: '1s', HAISHIN_QUEUE_KEEP_MESSAGES: '2' });
  }, 60_000);
  afterAll(async () => {
    await world?.close();
  });

  it('keeps its history, diagnosis and support bundle complete', async () => {
    const school = await world.group('圧縮校');
    const token = await world.token(school, [APP], 'compact');
    const devices = await world.devices(3, [school], () => ({}), 'CMP');
    const broken = devices[2]!;
    broken.behaviours.set('InstallApplication', {
      kind: 'error',
      chain: [
        {
          ErrorCode: 12064,
          ErrorDomain: 'MCMDMErrorDomain',
          LocalizedDescription: 'ライセンスを取得できませんでした',
          USEnglishDescription: 'Could not retrieve license',
        },
      ],
    });
    const created = await world.api<{ id: string }>('POST', '/distributions', {
      kind: 'install',
      tokenId: token.id,
      adamIds: [APP.adamId],
      targets: { groupIds: [school] },
      licenseMode: 'auto',
    });
    expect(created.status).toBe(201);
    expect(await world.settle(created.body.id)).toEqual({ success: 2, device_error: 1 });
    const jobs = (
      await world.api<{ items: { id: string; status: string }[] }>(
        'GET',
        `/jobs?distributionId=${created.body.id}`,
      )
    ).body.items;
    const failed = jobs.find((j) => j.status === 'device_error')!;
    const succeeded = jobs.filter((j) => j.status === 'success');

    // Each reading of the diagnosis is stored with its time (and touches the job's updatedAt):
    // everything else must stay the same.
    const readingTimes = (value: unknown): unknown =>
      JSON.parse(JSON.stringify(value), function (this: Record<string, unknown>, key, v: unknown) {
        if (key === 'updatedAt' || key === 'generatedAt' || (key === 'at' && 'causes' in this))
          return undefined;
        return v;
      });
    const read = async () => {
      const detail = (await world.api('GET', `/jobs/${failed.id}`)).body;
      const diagnosis = (await world.api<{ causes: unknown[] }>('GET', `/jobs/${failed.id}/diagnosis`)).body;
      const bundle = (await world.api('GET', `/jobs/${failed.id}/support-bundle`)).body;
      const text = await (
        await fetch(`${world.server.baseUrl}/api/v1/jobs/${failed.id}/support-bundle`, {
          headers: { authorization: `Bearer ${ADMIN}`, accept: 'text/plain' },
        })
      ).text();
      return readingTimes({ detail, causes: diagnosis.causes, bundle, textLines: text.split('\n').length });
    };
    // The diagnosis may ask the device once; read until two readings agree.
    let before = await read();
    for (let i = 0; i < 20; i++) {
      await new Promise((r) => setTimeout(r, 100));
      const again = await read();
      if (JSON.stringify(again) === JSON.stringify(before)) break;
      before = again;
    }
    expect(JSON.stringify(before)).toContain('12064');
    expect(JSON.stringify(before)).toContain('raw');

    const commandOf = async (jobId: string) =>
      (await world.server.haishin.store.jobs.get(jobId))!.command_uuid!;
    const resultsOf = async (uuid: string) =>
      (
        await world.server.haishin.store.db.kysely
          .selectFrom('command_results')
          .select('raw')
          .where('command_uuid', '=', uuid)
          .execute()
      ).map((r) => r.raw);
    // The timer compacts by itself: the succeeded jobs' answers go…
    const succeededCommands = await Promise.all(succeeded.map((j) => commandOf(j.id)));
    const deadline = Date.now() + 15_000;
    while ((await Promise.all(succeededCommands.map(resultsOf))).some((r) => r.length > 0)) {
      expect(Date.now()).toBeLessThan(deadline);
      await new Promise((r) => setTimeout(r, 100));
    }
    await new Promise((r) => setTimeout(r, 1100));
    await world.server.haishin.compactQueue();
    // …the failed job's raw answer stays, and so does its command.
    const failedCommand = await commandOf(failed.id);
    const kept = await resultsOf(failedCommand);
    expect(kept).toHaveLength(1);
    expect(kept[0]).toContain('12064');
    const commands = await world.server.haishin.store.db.kysely
      .selectFrom('commands')
      .select('uuid')
      .where('uuid', 'in', [failedCommand, ...succeededCommands])
      .execute();
    expect(commands.map((c) => c.uuid)).toEqual([failedCommand]);
    // Each device keeps its 2 newest messages.
    for (const device of devices) {
      const messages = await world.server.haishin.store.db.kysely
        .selectFrom('mdm_messages')
        .select('id')
        .where('udid', '=', device.udid)
        .execute();
      expect(messages).toHaveLength(2);
    }

    const after = await read();
    expect(after).toEqual(before);
  }, 90_000);
});

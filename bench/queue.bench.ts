// S2 (issue 15): the next-command lookup of a check-in with 1 M and 10 M historical rows in the
// queue tables.
//
// For each size H, a fresh SQLite database (haishin's own migrations and settings, in a temp dir)
// gets 10,000 enrolled devices and H answered commands spread over them — H rows in `commands`
// and H in `command_results`, as a queue that was never compacted leaves them — plus a live queue
// (one device in ten owes 1–3 commands). Rows go in with one transaction per 10,000 (multi-row
// inserts compiled once), command UUIDs in creation order (see orderedUuid). Then, through
// the store as `PUT /mdm/connect` uses it:
// - an Idle with nothing queued: the device-and-queue probe (findReportingDevice);
// - an Idle with a command queued: the probe, then nextCommand (which also marks it handed out).
// Prints p50/p99/max of each over 20,000 random lookups, and the 10 M / 1 M ratio.
//
//   npm run bench queue             (or node --import tsx bench/queue.bench.ts)
// Environment: S2_ROWS (comma-separated sizes, default 1000000,10000000), S2_DEVICES (10000),
// S2_LOOKUPS (20000), S2_DB_DIR (where the databases go, default the temp dir; each is deleted).
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { deviceInformation, managedApplicationList } from '../src/mdm/commands.ts';
import { buildPlist } from '../src/mdm/plist.ts';
import { prepare } from '../src/store/prepared.ts';
import { Store } from '../src/store/store.ts';

const SIZES = (process.env.S2_ROWS ?? '1000000,10000000').split(',').map(Number);
const DEVICES = Number(process.env.S2_DEVICES ?? 10_000);
const LOOKUPS = Number(process.env.S2_LOOKUPS ?? 20_000);
const CHUNK = 500;
const T0 = Date.parse('2026-11-01T00:00:00Z');

function machine(): string {
  let commit = 'unknown';
  try {
    commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).trim();
  } catch {
    // not a checkout
  }
  return `commit ${commit}, node ${process.version}, ${availableParallelism()} cores, load ${loadavg()
    .map((l) => l.toFixed(2))
    .join(' ')}`;
}

const pct = (sorted: Float64Array, p: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!;
function summary(samples: number[]): { p50: number; p99: number; max: number } {
  const sorted = Float64Array.from(samples).sort();
  return { p50: pct(sorted, 0.5), p99: pct(sorted, 0.99), max: sorted[sorted.length - 1]! };
}
const ms = (v: number) => `${v.toFixed(3)} ms`;

/**
 * Command UUIDs in creation order (as UUIDv7 would be), so that 10 M inserts append to the
 * indexes instead of rewriting random pages of a 15 GB file for an hour. haishin itself uses
 * random (v4) UUIDs: their index is a third larger for the same depth, and a lookup by one
 * walks the same number of levels.
 */
const RUN = randomUUID().slice(0, 8).toUpperCase();
function orderedUuid(n: number): string {
  const hex = n.toString(16).toUpperCase().padStart(12, '0');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-7000-8000-${RUN}0000`;
}

async function run(
  rows: number,
): Promise<{ idle: ReturnType<typeof summary>; queued: ReturnType<typeof summary> }> {
  const dir = mkdtempSync(join(process.env.S2_DB_DIR ?? tmpdir(), 'haishin-s2-'));
  const file = join(dir, 'haishin.db');
  const store = await Store.open(`sqlite:${file}`, new Date(T0));
  try {
    const k = store.db.kysely;
    const root = (await store.rootGroup())!;
    const started = performance.now();

    // Devices and their channels.
    const udids: string[] = [];
    for (let i = 0; i < DEVICES; i += CHUNK) {
      const batch = Array.from({ length: Math.min(CHUNK, DEVICES - i) }, (_, j) => {
        const udid = randomUUID().toUpperCase();
        udids.push(udid);
        const at = new Date(T0).toISOString();
        return {
          device: {
            id: randomUUID(),
            device_number: i + j + 1,
            udid,
            serial_number: `S2${String(i + j).padStart(10, '0')}`,
            group_id: root.id,
            name: null,
            model: null,
            model_name: null,
            product_name: 'iPad13,18',
            os_version: '18.1',
            build_version: '22B83',
            imei: null,
            meid: null,
            is_supervised: 1,
            is_shared_ipad: 0,
            status: 'enrolled' as const,
            cert_fingerprint: randomUUID().replace(/-/g, '').repeat(2),
            enrolled_at: at,
            last_seen_at: at,
            created_at: at,
            updated_at: at,
          },
        };
      });
      await k.transaction().execute(async (tx) => {
        await tx
          .insertInto('devices')
          .values(batch.map((b) => b.device))
          .execute();
        await tx
          .insertInto('enrollments')
          .values(
            batch.map((b) => ({
              id: b.device.udid,
              device_id: b.device.id,
              type: 'device' as const,
              topic: 'com.apple.mgmt.External.bench',
              push_token: 'ab'.repeat(32),
              push_magic: randomUUID(),
              enabled: 1,
              token_update_count: 1,
              last_seen_at: b.device.last_seen_at,
              created_at: b.device.created_at,
              updated_at: b.device.updated_at,
            })),
          )
          .execute();
      });
    }

    // History: answered commands, compiled once as multi-row inserts of CHUNK rows.
    const payload = managedApplicationList(randomUUID(), ['jp.example.a', 'jp.example.b']).payload;
    const raw = (uuid: string, udid: string) =>
      buildPlist({
        CommandUUID: uuid,
        Status: 'Acknowledged',
        UDID: udid,
        ManagedApplicationList: { 'jp.example.a': { Status: 'Managed', HasConfiguration: false } },
      });
    const insertCommands = prepare<string[], never>(k, (db, arg) =>
      db.insertInto('commands').values(
        Array.from({ length: CHUNK }, (_, i) => ({
          uuid: arg<string>(i * 4),
          request_type: arg<string>(i * 4 + 1),
          payload: arg<string>(i * 4 + 2),
          created_at: arg<string>(i * 4 + 3),
        })),
      ),
    );
    const insertResults = prepare<string[], never>(k, (db, arg) =>
      db.insertInto('command_results').values(
        Array.from({ length: CHUNK }, (_, i) => ({
          enrollment_id: arg<string>(i * 4),
          command_uuid: arg<string>(i * 4 + 1),
          status: 'Acknowledged',
          raw: arg<string>(i * 4 + 2),
          error_chain: null,
          received_at: arg<string>(i * 4 + 3),
        })),
      ),
    );
    const spanMs = 30 * 86_400_000;
    const perTx = 20; // chunks per transaction
    for (let done = 0; done < rows;) {
      await k.transaction().execute(async (tx) => {
        for (let c = 0; c < perTx && done < rows; c++) {
          const commandArgs: string[] = [];
          const resultArgs: string[] = [];
          for (let i = 0; i < CHUNK; i++, done++) {
            const uuid = orderedUuid(done);
            const udid = udids[done % udids.length]!;
            const at = new Date(T0 - spanMs + Math.floor((done / rows) * spanMs)).toISOString();
            commandArgs.push(uuid, 'ManagedApplicationList', payload, at);
            resultArgs.push(udid, uuid, raw(uuid, udid), at);
          }
          await insertCommands.affected(tx, ...commandArgs);
          await insertResults.affected(tx, ...resultArgs);
        }
      });
    }
    // The live queue: one device in ten owes 1–3 commands.
    const queuedUdids = udids.filter((_, i) => i % 10 === 0);
    const entries = queuedUdids.flatMap((udid, i) =>
      Array.from({ length: 1 + (i % 3) }, () => ({
        enrollmentId: udid,
        command: deviceInformation(randomUUID()),
        priority: i % 2 === 0 ? 0 : 10,
      })),
    );
    for (let i = 0; i < entries.length; i += CHUNK)
      await store.mdm.enqueue(entries.slice(i, i + CHUNK), new Date(T0));
    const genS = (performance.now() - started) / 1000;
    const bytes = statSync(file).size;
    console.log(
      `${rows.toLocaleString('en')} answered commands (+${rows.toLocaleString('en')} results) over ${DEVICES.toLocaleString('en')} devices: generated in ${genS.toFixed(0)} s (${Math.round((2 * rows) / genS).toLocaleString('en')} rows/s), database ${(bytes / 1e9).toFixed(2)} GB`,
    );

    const emptyUdids = udids.filter((_, i) => i % 10 !== 0);
    const at = new Date(T0 + 60_000);
    const idle: number[] = [];
    for (let i = 0; i < 2000 + LOOKUPS; i++) {
      const udid = emptyUdids[Math.floor(Math.random() * emptyUdids.length)]!;
      const t = performance.now();
      const device = await store.mdm.findReportingDevice(udid, udid);
      if (!device || device.queued) throw new Error('expected an empty queue');
      if (i >= 2000) idle.push(performance.now() - t);
    }
    const queued: number[] = [];
    for (let i = 0; i < 2000 + LOOKUPS; i++) {
      const udid = queuedUdids[Math.floor(Math.random() * queuedUdids.length)]!;
      const t = performance.now();
      const device = await store.mdm.findReportingDevice(udid, udid);
      const next = device?.queued ? await store.mdm.nextCommand(udid, at) : null;
      if (!next) throw new Error('expected a queued command');
      if (i >= 2000) queued.push(performance.now() - t);
    }
    const result = { idle: summary(idle), queued: summary(queued) };
    console.log(
      `  Idle, empty queue      p50 ${ms(result.idle.p50)}  p99 ${ms(result.idle.p99)}  max ${ms(result.idle.max)}`,
    );
    console.log(
      `  Idle, command queued   p50 ${ms(result.queued.p50)}  p99 ${ms(result.queued.p99)}  max ${ms(result.queued.max)}`,
    );
    return result;
  } finally {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

console.log(`S2 next-command lookup, SQLite; ${machine()}`);
const results: { rows: number; r: Awaited<ReturnType<typeof run>> }[] = [];
for (const rows of SIZES) results.push({ rows, r: await run(rows) });
if (results.length >= 2) {
  const [first, last] = [results[0]!, results[results.length - 1]!];
  console.log(
    `p99 ratio ${last.rows.toLocaleString('en')} / ${first.rows.toLocaleString('en')} rows: empty queue ${(last.r.idle.p99 / first.r.idle.p99).toFixed(2)}, command queued ${(last.r.queued.p99 / first.r.queued.p99).toFixed(2)}`,
  );
}
console.log(machine());

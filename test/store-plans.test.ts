import { CompiledQuery, sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEADLINE_WATCH } from '../src/core/jobs.ts';
import type { Deadline } from '../src/core/jobs.ts';
import { deadlineWatchSql } from '../src/store/job-repo.ts';
import { hotQueries } from '../src/store/mdm-store.ts';
import { Store } from '../src/store/store.ts';

// The engine runs these queries every tick over every job of every distribution: with 300,000
// jobs a plan that scans or sorts them all is the difference between a tick of 1 ms and 1 s.
describe('query plans of the engine hot path (SQLite)', () => {
  let store: Store;
  beforeAll(async () => {
    store = await Store.open('sqlite::memory:', new Date('2026-03-01T09:00:00Z'));
  });
  afterAll(() => store.close());

  const plan = async (text: string) =>
    (await sql.raw<{ detail: string }>(`explain query plan ${text}`).execute(store.db.kysely)).rows
      .map((r) => r.detail)
      .join(' | ');

  for (const deadline of Object.keys(DEADLINE_WATCH) as Deadline[]) {
    it(`overdue ${deadline} reads its partial index, whose predicate is the repository's`, async () => {
      const predicate = deadlineWatchSql(deadline);
      const query = `select * from jobs where status ${predicate} and ${deadline} < '2030' order by ${deadline} limit 500`;
      expect(await plan(query)).toBe(`SEARCH jobs USING INDEX jobs_due_${deadline} (${deadline}<?)`);
      const index = await sql<{
        sql: string;
      }>`select sql from sqlite_master where name = ${`jobs_due_${deadline}`}`.execute(store.db.kysely);
      expect(index.rows[0]?.sql.replace(/\s+/g, ' ')).toContain(`status ${predicate}`);
    });
  }

  const IN_FLIGHT = [
    'license_assigning',
    'push_sending',
    'retry_waiting',
    'awaiting_response',
    'executing',
  ] as const;
  const planOf = async (query: CompiledQuery) =>
    (
      await store.db.kysely.executeQuery<{ detail: string }>(
        CompiledQuery.raw(`explain query plan ${query.sql}`, [...query.parameters]),
      )
    ).rows
      .map((r) => r.detail)
      .join(' | ');
  const perDevice =
    'CORRELATED SCALAR SUBQUERY 1 | SEARCH e USING COVERING INDEX jobs_device (device_id=? AND status=? AND seq<?) | CORRELATED SCALAR SUBQUERY 2 | SEARCH a USING COVERING INDEX jobs_device (device_id=? AND status=?)';

  it("activation reads a window of waiting jobs in order, and each one's device from an index", async () => {
    const query = store.jobs
      .nextToActivateQuery({ active: IN_FLIGHT, slots: 1, afterSeq: 10, throughSeq: 10_010, limit: 500 })
      .compile();
    expect(await planOf(query)).toBe(
      `SEARCH j USING INDEX jobs_status_seq (status=? AND seq>? AND seq<?) | ${perDevice}`,
    );
  });

  it('activation of devices that just finished a job starts from those devices', async () => {
    const query = store.jobs
      .nextToActivateQuery({ active: IN_FLIGHT, slots: 1, deviceIds: ['a', 'b', 'c'], limit: 500 })
      .compile();
    expect(await planOf(query)).toBe(
      `SEARCH j USING INDEX jobs_device (device_id=? AND status=?) | ${perDevice}`,
    );
  });

  it("a device's next command is the first row of its queue's index: no sort per check-in (issue 15)", async () => {
    const queries = hotQueries(store.db.kysely);
    expect(queries.nextCommand.sql).toMatch(/order by .*priority.* desc, .*seq.* asc/);
    const detail = await planOf(CompiledQuery.raw(queries.nextCommand.sql, ['E', 1, 'deactivated', 1]));
    expect(detail).toContain('SEARCH command_queue USING INDEX command_queue_next (enrollment_id=?)');
    expect(detail).not.toContain('TEMP B-TREE');
  });

  it('the next waiting jobs come in order from an index, without sorting them all', async () => {
    expect(await plan(`select * from jobs where status in ('waiting') order by seq limit 2000`)).toBe(
      'SEARCH jobs USING INDEX jobs_status_seq (status=?)',
    );
  });
});

describe('sqlite: URL options', () => {
  it('takes synchronous=off|normal|full and refuses anything else with a clear error', async () => {
    const { openDb } = await import('../src/store/db.ts');
    const off = openDb('sqlite::memory:?synchronous=off');
    const rows = await sql<{ synchronous: number }>`pragma synchronous`.execute(off.kysely);
    expect(rows.rows[0]?.synchronous).toBe(0);
    await off.close();
    const normal = openDb('sqlite::memory:');
    expect(
      (await sql<{ synchronous: number }>`pragma synchronous`.execute(normal.kysely)).rows[0]?.synchronous,
    ).toBe(1);
    await normal.close();
    expect(() => openDb('sqlite::memory:?synchronous=maybe')).toThrow(
      /synchronous must be off, normal or full/,
    );
  });
});

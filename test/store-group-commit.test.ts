// SQLite's group commit (src/store/db.ts): the writes of one turn of the event loop share one
// transaction; Kysely's transactions are savepoints inside it; `committed()` resolves when the
// group is on disk. Observed from a second, raw connection to the same file, as a crash would.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import SqliteDatabase from 'better-sqlite3';
import { sql } from 'kysely';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { migrate, openDb } from '../src/store/db.ts';
import type { Db } from '../src/store/db.ts';
import { startTestServer } from './support/server.ts';

describe('SQLite group commit', () => {
  let dir: string;
  let db: Db;
  let outside: SqliteDatabase.Database;

  const setting = (key: string, value: string) =>
    db.kysely.insertInto('settings').values({ key, value, updated_at: '2026-12-07T00:00:00.000Z' }).execute();
  /** What another connection (or the database after a crash) sees. */
  const onDisk = (key: string) =>
    (outside.prepare('select value from settings where key = ?').get(key) as { value: string } | undefined)
      ?.value;
  const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'haishin-group-commit-'));
    db = openDb(`sqlite:${join(dir, 'haishin.db')}`);
    await migrate(db);
    await db.committed();
    outside = new SqliteDatabase(join(dir, 'haishin.db'), { readonly: true });
  });

  afterEach(async () => {
    outside.close();
    await db.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('commits the writes of one turn together, at the end of the turn', async () => {
    await Promise.all([setting('a', '1'), setting('b', '2')]);
    // Written and readable on haishin's connection, not yet on disk.
    const mine = await db.kysely
      .selectFrom('settings')
      .select('value')
      .where('key', '=', 'a')
      .executeTakeFirst();
    expect(mine?.value).toBe('1');
    expect(onDisk('a')).toBeUndefined();
    await db.committed();
    expect(onDisk('a')).toBe('1');
    expect(onDisk('b')).toBe('2');
  });

  it('resolves committed() at once when nothing is being written', async () => {
    let done = false;
    void db.committed().then(() => (done = true));
    await Promise.resolve();
    expect(done).toBe(true);
  });

  it('rolls back exactly a failed transaction, and keeps the other writes of the group', async () => {
    await setting('kept', 'yes');
    await expect(
      db.kysely.transaction().execute(async (tx) => {
        await tx
          .insertInto('settings')
          .values({ key: 'undone', value: 'no', updated_at: '2026-12-07T00:00:00.000Z' })
          .execute();
        throw new Error('changed my mind');
      }),
    ).rejects.toThrow('changed my mind');
    await db.committed();
    expect(onDisk('kept')).toBe('yes');
    expect(onDisk('undone')).toBeUndefined();
  });

  it('waits for a transaction that spans turns before committing the group', async () => {
    await setting('before', '1');
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    const tx = db.kysely.transaction().execute(async (t) => {
      await t.insertInto('settings').values({ key: 'inside', value: '2', updated_at: 'x' }).execute();
      await held;
    });
    const committed = db.committed();
    await nextTurn();
    await nextTurn();
    // The transaction is still open: nothing of the group may be on disk, not even `before`.
    expect(onDisk('before')).toBeUndefined();
    release();
    await tx;
    await committed;
    expect(onDisk('before')).toBe('1');
    expect(onDisk('inside')).toBe('2');
  });

  it('keeps the group when one statement fails on a constraint', async () => {
    await setting('first', '1');
    await expect(setting('first', 'again')).rejects.toThrow(/UNIQUE|constraint/i);
    await setting('second', '2');
    await db.committed();
    expect(onDisk('first')).toBe('1');
    expect(onDisk('second')).toBe('2');
  });

  it('commits what is open when the database closes', async () => {
    await setting('last', 'words');
    await db.close();
    expect(onDisk('last')).toBe('words');
    db = openDb(`sqlite:${join(dir, 'haishin.db')}`);
  });

  it('lets raw SQL and reads run inside the group', async () => {
    await sql`insert into settings (key, value, updated_at) values ('raw', 'r', 'x')`.execute(db.kysely);
    const count = await db.kysely
      .selectFrom('settings')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('key', '=', 'raw')
      .executeTakeFirstOrThrow();
    expect(Number(count.n)).toBe(1);
    await db.committed();
    expect(onDisk('raw')).toBe('r');
  });
});

describe('answers wait for the group commit', () => {
  it('an API answer arrives only once what it wrote is on disk', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'haishin-group-commit-api-'));
    const file = join(dir, 'haishin.db');
    const token = 'group-commit-admin-token-0123456789';
    const server = await startTestServer({ db: `sqlite:${file}`, env: { HAISHIN_ADMIN_TOKEN: token } });
    const outside = new SqliteDatabase(file, { readonly: true });
    try {
      const app = server.haishin.app;
      for (let i = 0; i < 5; i++) {
        // In process (inject): the answer is handed over the moment it is sent, with no network
        // round trip in which the end of the turn could commit anyway.
        const response = await app.inject({
          method: 'POST',
          url: '/api/v1/groups',
          headers: { authorization: `Bearer ${token}` },
          payload: { name: `school ${i}`, parentId: server.rootGroupId },
        });
        expect(response.statusCode).toBe(201);
        const { id } = response.json<{ id: string }>();
        expect(outside.prepare('select name from groups where id = ?').get(id)).toEqual({
          name: `school ${i}`,
        });
      }
    } finally {
      outside.close();
      await server.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

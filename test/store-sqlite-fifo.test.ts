import { sql } from 'kysely';
import { afterEach, describe, expect, it } from 'vitest';
import { openDb } from '../src/store/db.ts';
import type { Db } from '../src/store/db.ts';

let db: Db | undefined;
afterEach(async () => {
  await db?.close();
  db = undefined;
});

describe('SQLite: the one connection handed over in order (issue 15)', () => {
  it('queries queued behind a transaction run after it, in the order they asked, and none slips into it', async () => {
    db = openDb('sqlite::memory:');
    const k = db.kysely;
    await sql`create table t (n integer)`.execute(k);
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    const order: string[] = [];
    const transaction = k.transaction().execute(async (tx) => {
      await sql`insert into t (n) values (1)`.execute(tx);
      order.push('tx: inserted');
      await held;
      await sql`insert into t (n) values (2)`.execute(tx);
      order.push('tx: done');
    });
    await new Promise((r) => setTimeout(r, 10));
    const queued = Array.from({ length: 500 }, (_, i) =>
      sql<{ c: number }>`select count(*) as c from t`.execute(k).then((r) => {
        order.push(`q${i}`);
        return r.rows[0]!.c;
      }),
    );
    await new Promise((r) => setTimeout(r, 10));
    // Nothing ran while the transaction held the connection across its await.
    expect(order).toEqual(['tx: inserted']);
    release();
    await transaction;
    const counts = await Promise.all(queued);
    expect(order).toEqual(['tx: inserted', 'tx: done', ...queued.map((_, i) => `q${i}`)]);
    // Each saw the whole transaction, never half of it.
    expect(new Set(counts)).toEqual(new Set([2]));
  });

  it('a failing query hands the connection on like any other', async () => {
    db = openDb('sqlite::memory:');
    const k = db.kysely;
    const results = await Promise.allSettled([
      sql`select * from missing_table`.execute(k),
      sql`select 1 as one`.execute(k),
      k.transaction().execute(async (tx) => {
        await sql`select * from missing_table`.execute(tx);
      }),
      sql<{ two: number }>`select 2 as two`.execute(k),
    ]);
    expect(results.map((r) => r.status)).toEqual(['rejected', 'fulfilled', 'rejected', 'fulfilled']);
    expect((await sql<{ n: number }>`select 3 as n`.execute(k)).rows).toEqual([{ n: 3 }]);
  });
});

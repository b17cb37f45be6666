// Counts the SQLite transactions `haishin serve` commits, for bench/scale.bench.ts ("commits per
// job"), without touching src/: loaded into serve with `node --import <this file>`, it wraps the
// methods of better-sqlite3's Statement (the one class every query goes through: Kysely's SQLite
// driver prepares and runs each query, `begin` and `commit` included) and writes its counters as
// JSON to the file named by HAISHIN_BENCH_SQLITE_COUNTS, every 500 ms and at exit. Plain JavaScript:
// it runs before bin/haishin.js registers tsx. Costs a property read and a few increments per
// statement.
//
// A commit is an explicit `commit` of a transaction that wrote (a non-read-only statement ran in
// it) or a write statement run outside a transaction (SQLite's autocommit) that changed a row.
// `bySql` keeps, per SQL text (shortened), how many times it ran, how many of those were
// autocommitted writes, and the time spent in SQLite for it (ms): where the database time goes.
import { renameSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { isMainThread } from 'node:worker_threads';

const file = process.env.HAISHIN_BENCH_SQLITE_COUNTS;
// `--import` runs in every worker thread too (the signature threads, decision 0030): only the
// main thread has the database, and a worker's zeros must not overwrite its counts.
if (file && isMainThread) {
  const require = createRequire(join(process.cwd(), 'package.json'));
  const Database = require('better-sqlite3');
  const probe = new Database(':memory:');
  const proto = Object.getPrototypeOf(probe.prepare('select 1'));
  probe.close();

  const counts = {
    /** Transactions that wrote, committed (explicit commits + autocommitted writes that changed rows). */
    commits: 0,
    /** `commit` of a transaction in which a write statement ran. */
    transactionCommits: 0,
    /** `commit` of a transaction that only read. */
    readOnlyCommits: 0,
    rollbacks: 0,
    /** Write statements outside a transaction that changed rows (each its own commit). */
    autocommitWrites: 0,
    /** Write statements outside a transaction that changed nothing. */
    emptyAutocommitWrites: 0,
    /** Every statement run, reads included. */
    statements: 0,
    writeStatements: 0,
    rowsChanged: 0,
  };
  /** @type {Map<string, { runs: number; autocommits: number; ms: number }>} */
  const bySql = new Map();
  /** The entry of each prepared statement, found without normalizing its text again. */
  const entries = new WeakMap();
  let wrote = false;
  const CONTROL = /^\s*(begin|commit|end|rollback|savepoint|release)\b/i;

  for (const method of ['run', 'get', 'all', 'iterate']) {
    const original = proto[method];
    proto[method] = function (...args) {
      const inTransaction = this.database.inTransaction;
      const started = performance.now();
      const result = original.apply(this, args);
      const ms = performance.now() - started;
      counts.statements++;
      let entry = entries.get(this);
      if (!entry) {
        // IN lists of every length are one entry: the map stays small (it is in serve's memory).
        const key = this.source
          .replace(/\s+/g, ' ')
          .replace(/\?(, \?)+/g, '?, …')
          .slice(0, 200);
        entry = bySql.get(key) ?? { runs: 0, autocommits: 0, ms: 0 };
        bySql.set(key, entry);
        entries.set(this, entry);
      }
      entry.runs++;
      entry.ms += ms;
      const control = this.readonly ? CONTROL.exec(this.source) : null;
      if (control) {
        const word = control[1].toLowerCase();
        if (word === 'begin') wrote = false;
        else if ((word === 'commit' || word === 'end') && inTransaction) {
          if (wrote) {
            counts.commits++;
            counts.transactionCommits++;
          } else counts.readOnlyCommits++;
          wrote = false;
        } else if (word === 'rollback' && !/\bto\b/i.test(this.source)) {
          counts.rollbacks++;
          wrote = false;
        }
      } else if (!this.readonly) {
        counts.writeStatements++;
        const changed =
          method === 'run' ? Number(result?.changes ?? 0) : Array.isArray(result) ? result.length : 1;
        counts.rowsChanged += changed;
        if (inTransaction) wrote = true;
        else if (changed > 0) {
          counts.commits++;
          counts.autocommitWrites++;
          entry.autocommits++;
        } else counts.emptyAutocommitWrites++;
      }
      return result;
    };
  }

  const flush = () => {
    try {
      writeFileSync(
        `${file}.tmp`,
        JSON.stringify({ at: Date.now(), ...counts, bySql: Object.fromEntries(bySql) }),
      );
      renameSync(`${file}.tmp`, file);
    } catch {
      // the bench reads what it finds
    }
  };
  setInterval(flush, 500).unref();
  process.on('exit', flush);
}

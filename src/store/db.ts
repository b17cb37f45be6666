import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import SqliteDatabase from 'better-sqlite3';
import { Kysely, Migrator, PostgresDialect } from 'kysely';
import type { SqliteDialectConfig, SqliteStatement } from 'kysely';
import pg from 'pg';
import { migrationProvider } from './migrations/index.ts';
import { FifoSqliteDialect } from './sqlite-fifo.ts';
import type { Database } from './schema.ts';

export type Dialect = 'sqlite' | 'postgres';

export interface Db {
  readonly kysely: Kysely<Database>;
  readonly dialect: Dialect;
  /**
   * Resolves once everything written so far is committed. SQLite groups the writes of one turn of
   * the event loop into one transaction ({@link GroupCommit}): an answer that must not leave before
   * its writes are stored waits for this. PostgreSQL commits each write itself: resolved at once.
   */
  committed(): Promise<void>;
  close(): Promise<void>;
}

// int8 (count(*), bigint) would otherwise come back as strings on PostgreSQL only.
pg.types.setTypeParser(20, (value: string) => Number(value));

/**
 * Opens `sqlite:<path>` (or `sqlite::memory:`) or `postgres://…`, the two forms of HAISHIN_DB.
 * The caller runs {@link migrate} before use.
 */
export function openDb(url: string): Db {
  if (url.startsWith('postgres://') || url.startsWith('postgresql://')) {
    const pool = new pg.Pool({ connectionString: url, max: 10 });
    // An idle connection that breaks (PostgreSQL restarted, network cut) is an 'error' event on the
    // pool; unhandled, it would end the process. The pool drops that connection by itself and the
    // next query connects anew or fails with its own error (GET /api/ready then answers 503).
    pool.on('error', () => {});
    // The same for a connection that breaks while it is checked out (a query or transaction under
    // way when PostgreSQL goes down): the query fails with its own error; the 'error' event the
    // client also emits must not end the process.
    pool.on('connect', (client) => {
      client.on('error', () => {});
    });
    const kysely = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
    return {
      kysely,
      dialect: 'postgres',
      committed: () => Promise.resolve(),
      close: () => kysely.destroy(),
    };
  }
  if (url.startsWith('sqlite:')) {
    const [path = '', query = ''] = url.slice('sqlite:'.length).split('?', 2);
    const synchronous = new URLSearchParams(query).get('synchronous') ?? 'normal';
    if (!['off', 'normal', 'full'].includes(synchronous))
      throw new Error(`synchronous must be off, normal or full (not "${synchronous}")`);
    if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
    const lock = path === ':memory:' ? null : takeInstanceLock(path);
    let sqlite: SqliteDatabase.Database;
    try {
      sqlite = new SqliteDatabase(path);
    } catch (err) {
      lock?.close();
      throw err;
    }
    sqlite.pragma('journal_mode = WAL');
    // NORMAL: durable across a crash of haishin, may lose the last commits on power loss. OFF also
    // skips the checkpoint's fsync (3× cheaper commits), for throwaway data such as the demo's.
    sqlite.pragma(`synchronous = ${synchronous.toUpperCase()}`);
    sqlite.pragma('foreign_keys = ON');
    sqlite.pragma('busy_timeout = 5000');
    // Sized for a fleet: the default 2 MB page cache re-reads index pages of a 100k-device
    // database on every query, and checkpointing every 1,000 pages rewrote the same hot pages
    // (job status indexes) over and over — most of a commit's cost in the 10,000-iPad demo.
    sqlite.pragma('cache_size = -65536');
    sqlite.pragma('mmap_size = 268435456');
    sqlite.pragma('wal_autocheckpoint = 16384');
    sqlite.pragma('temp_store = MEMORY');
    const group = new GroupCommit(sqlite);
    const kysely = new Kysely<Database>({
      dialect: new FifoSqliteDialect({ database: withStatementCache(sqlite, group) }),
    });
    return {
      kysely,
      dialect: 'sqlite',
      committed: () => group.committed(),
      close: async () => {
        await kysely.destroy();
        lock?.close();
      },
    };
  }
  throw new Error('not understood: use sqlite:<path> or postgres://user@host:port/db');
}

/**
 * One process per SQLite database (decision 0019): the engine's work is claimed in memory and by
 * leases that assume one writer per file, and two processes on one file would also fight over
 * its write lock on every check-in. A side file `<db>-lock` is held in an exclusive transaction
 * for as long as the database is open; the operating system releases it when the process ends,
 * however it ends (kill -9 included), so a restart never finds a stale lock.
 */
function takeInstanceLock(path: string): SqliteDatabase.Database {
  const lock = new SqliteDatabase(`${path}-lock`);
  try {
    lock.pragma('busy_timeout = 0');
    lock.exec('CREATE TABLE IF NOT EXISTS instance (pid INTEGER)');
    lock.exec('BEGIN EXCLUSIVE');
    lock.prepare('INSERT INTO instance (pid) VALUES (?)').run(process.pid);
    return lock;
  } catch (err) {
    lock.close();
    if ((err as { code?: string }).code === 'SQLITE_BUSY')
      throw new Error(
        'another haishin process has this SQLite database open; one process per SQLite database — to run several processes, use PostgreSQL',
      );
    throw err;
  }
}

const STATEMENT_CACHE_SIZE = 256;

/**
 * Group commit. A commit writes every page the transaction changed to the WAL: at fleet scale one
 * commit per statement or per small transaction (25 per install job at 10,000 iPads) cost a
 * quarter of the server's CPU, rewriting the same hot index pages over and over. So the writes of
 * one turn of the event loop share one transaction: the first write opens it, and it commits when
 * the turn ends (`setImmediate`) — or, if a Kysely transaction is under way then, as soon as that
 * one ends. Kysely's own `begin`/`commit`/`rollback` become a savepoint inside the group, so a
 * transaction that rolls back still undoes exactly its own writes.
 *
 * Reads on the one connection see the group's writes, so nothing in the process can tell the
 * difference — except a crash, which loses the group under way: whatever must not be answered
 * before it is stored (an MDM answer, an API reply) waits for {@link committed}.
 */
class GroupCommit {
  readonly #sqlite: SqliteDatabase.Database;
  #open = false;
  /** Kysely transactions open inside the group (at most one: Kysely holds the connection for it). */
  #depth = 0;
  #scheduled = false;
  #waiters: { resolve: () => void; reject: (err: unknown) => void }[] = [];
  /** Prepared once (and counted by bench/support/sqlite-counts.mjs, which watches statements). */
  readonly #sql: Record<
    'begin' | 'commit' | 'rollback' | 'savepoint' | 'release' | 'rollbackTo',
    SqliteDatabase.Statement
  >;

  constructor(sqlite: SqliteDatabase.Database) {
    this.#sqlite = sqlite;
    this.#sql = {
      begin: sqlite.prepare('BEGIN'),
      commit: sqlite.prepare('COMMIT'),
      rollback: sqlite.prepare('ROLLBACK'),
      savepoint: sqlite.prepare('SAVEPOINT haishin_tx'),
      release: sqlite.prepare('RELEASE haishin_tx'),
      rollbackTo: sqlite.prepare('ROLLBACK TO haishin_tx'),
    };
  }

  /** Before any statement that writes: the group is open and its commit scheduled. */
  beforeWrite(): void {
    if (!this.#open) {
      this.#sql.begin.run();
      this.#open = true;
    }
    this.#schedule();
  }

  begin(): void {
    this.beforeWrite();
    this.#sql.savepoint.run();
    this.#depth++;
  }

  commit(): void {
    this.#depth = Math.max(0, this.#depth - 1);
    if (this.#sqlite.inTransaction) this.#sql.release.run();
    this.#schedule();
  }

  rollback(): void {
    this.#depth = Math.max(0, this.#depth - 1);
    if (this.#sqlite.inTransaction) {
      this.#sql.rollbackTo.run();
      this.#sql.release.run();
    }
    this.#schedule();
  }

  /** After a statement failed: some errors (disk full, I/O) end the whole transaction in SQLite. */
  afterError(err: unknown): void {
    if (this.#open && !this.#sqlite.inTransaction) {
      this.#open = false;
      this.#depth = 0;
      this.#settle(err);
    }
  }

  committed(): Promise<void> {
    if (!this.#open) return Promise.resolve();
    return new Promise((resolve, reject) => this.#waiters.push({ resolve, reject }));
  }

  /** Commits what is open (the database is about to close). */
  finish(): void {
    if (this.#open && this.#depth === 0) this.#commitNow();
  }

  #schedule(): void {
    if (this.#scheduled || !this.#open) return;
    this.#scheduled = true;
    setImmediate(() => {
      this.#scheduled = false;
      // With a Kysely transaction under way, its commit() schedules this again.
      if (this.#open && this.#depth === 0) this.#commitNow();
    });
  }

  #commitNow(): void {
    try {
      this.#sql.commit.run();
      this.#open = false;
      this.#settle(null);
    } catch (err) {
      if (this.#sqlite.inTransaction) this.#sql.rollback.run();
      this.#open = false;
      this.#settle(err);
    }
  }

  #settle(err: unknown): void {
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const w of waiters) {
      if (err === null) w.resolve();
      else w.reject(err);
    }
  }
}

/** Kysely's transaction statements, turned into the group's savepoint. */
function groupStatement(run: () => void): SqliteStatement {
  return {
    reader: false,
    all: () => {
      run();
      return [];
    },
    run: () => {
      run();
      return { changes: 0, lastInsertRowid: 0 };
    },
    iterate: () => {
      run();
      return [][Symbol.iterator]();
    },
  };
}

/** A statement that writes: it opens the group first, and checks the group after a failure. */
function writingStatement(statement: SqliteDatabase.Statement, group: GroupCommit): SqliteStatement {
  const guarded =
    <R>(call: (parameters: readonly unknown[]) => R) =>
    (parameters: readonly unknown[]): R => {
      group.beforeWrite();
      try {
        return call(parameters);
      } catch (err) {
        group.afterError(err);
        throw err;
      }
    };
  return {
    reader: statement.reader,
    all: guarded((p) => statement.all(...p)),
    run: guarded((p) => statement.run(...p)),
    iterate: guarded((p) => statement.iterate(...p)),
  };
}

/**
 * Kysely prepares every query anew; on the engine's hot path preparing cost as much as running.
 * Statements are kept by SQL text, least recently used dropped first (IN lists of other lengths
 * make other texts). Reusing one is safe: Kysely runs one query at a time on the one connection.
 */
function withStatementCache(
  sqlite: SqliteDatabase.Database,
  group: GroupCommit,
): SqliteDialectConfig['database'] {
  const cache = new Map<string, SqliteStatement>();
  const transactionStatements = new Map<string, SqliteStatement>([
    ['begin', groupStatement(() => group.begin())],
    ['commit', groupStatement(() => group.commit())],
    ['rollback', groupStatement(() => group.rollback())],
  ]);
  return {
    prepare(sql: string) {
      const control = transactionStatements.get(sql);
      if (control) return control;
      let statement = cache.get(sql);
      if (statement) {
        cache.delete(sql);
      } else {
        const prepared = sqlite.prepare(sql);
        statement = prepared.readonly ? prepared : writingStatement(prepared, group);
        if (cache.size >= STATEMENT_CACHE_SIZE) cache.delete(cache.keys().next().value!);
      }
      cache.set(sql, statement);
      return statement;
    },
    close() {
      group.finish();
      cache.clear();
      sqlite.close();
    },
  };
}

export async function migrate(db: Db): Promise<string[]> {
  const migrator = new Migrator({ db: db.kysely, provider: migrationProvider });
  const { error, results } = await migrator.migrateToLatest();
  if (error) {
    const failed = results?.find((r) => r.status === 'Error')?.migrationName ?? 'unknown';
    throw new Error(
      `database migration ${failed} failed: ${error instanceof Error ? error.message : String(error)}`,
    );
  }
  return (results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName);
}

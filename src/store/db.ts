import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import SqliteDatabase from 'better-sqlite3';
import { Kysely, Migrator, PostgresDialect, SqliteDialect } from 'kysely';
import type { SqliteDialectConfig } from 'kysely';
import pg from 'pg';
import { migrationProvider } from './migrations/index.ts';
import type { Database } from './schema.ts';

export type Dialect = 'sqlite' | 'postgres';

export interface Db {
  readonly kysely: Kysely<Database>;
  readonly dialect: Dialect;
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
    return { kysely, dialect: 'postgres', close: () => kysely.destroy() };
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
    const kysely = new Kysely<Database>({
      dialect: new SqliteDialect({ database: withStatementCache(sqlite) }),
    });
    return {
      kysely,
      dialect: 'sqlite',
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
 * Kysely prepares every query anew; on the engine's hot path preparing cost as much as running.
 * Statements are kept by SQL text, least recently used dropped first (IN lists of other lengths
 * make other texts). Reusing one is safe: Kysely runs one query at a time on the one connection.
 */
function withStatementCache(sqlite: SqliteDatabase.Database): SqliteDialectConfig['database'] {
  const cache = new Map<string, SqliteDatabase.Statement>();
  return {
    prepare(sql: string) {
      let statement = cache.get(sql);
      if (statement) {
        cache.delete(sql);
      } else {
        statement = sqlite.prepare(sql);
        if (cache.size >= STATEMENT_CACHE_SIZE) cache.delete(cache.keys().next().value!);
      }
      cache.set(sql, statement);
      return statement;
    },
    close() {
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

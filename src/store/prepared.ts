import type { Compilable, CompiledQuery, Kysely } from 'kysely';
import type { Database } from './schema.ts';

/**
 * Queries of the hot paths (every check-in runs a few) built and compiled once: building and
 * compiling a Kysely query took about as long as SQLite took to run it. Each argument is a slot in
 * the query built once; a run puts the arguments in their slots' places among the compiled
 * parameters and hands the SQL, unchanged, to the driver — the same text each time, so SQLite's
 * statement cache (db.ts) prepares it once. One code path for SQLite and PostgreSQL: the SQL is
 * still Kysely's, for the dialect in use.
 */
export interface PreparedQuery<A extends readonly unknown[], R> {
  readonly sql: string;
  /** Runs the query with `args` on `db` (the store's Kysely or a transaction) and returns its rows. */
  rows(db: Kysely<Database>, ...args: A): Promise<R[]>;
  /** Runs the statement and returns how many rows it inserted, updated or deleted. */
  affected(db: Kysely<Database>, ...args: A): Promise<number>;
}

const MARK = '\u0000haishin-slot:';

/** A slot's stand-in value: a string no caller can send, typed as the column's type. */
function slot<T>(index: number): T {
  return `${MARK}${index}` as unknown as T;
}

/**
 * `build` receives `arg`, which gives the stand-in of the n-th argument (a slot may be used more
 * than once); every other value in the query stays what it was at build time.
 */
export function prepare<A extends readonly unknown[], R>(
  db: Kysely<Database>,
  build: (db: Kysely<Database>, arg: <T>(index: number) => T) => Compilable<R>,
): PreparedQuery<A, R> {
  const compiled = build(db, slot).compile();
  const fixed = compiled.parameters;
  const sources = fixed.map((p) =>
    typeof p === 'string' && p.startsWith(MARK) ? Number(p.slice(MARK.length)) : -1,
  );
  const withArgs = (args: A): CompiledQuery<R> => ({
    ...compiled,
    parameters: sources.map((source, i) => (source < 0 ? fixed[i] : args[source])),
  });
  return {
    sql: compiled.sql,
    rows: async (on, ...args) => (await on.executeQuery(withArgs(args))).rows,
    affected: async (on, ...args) => {
      const result = await on.executeQuery(withArgs(args));
      return Number(result.numAffectedRows ?? 0n);
    },
  };
}

// Two stores on one database — two haishin processes, as far as the database can tell — for the
// tests of work shared through the database (leases, claims, notification ids…), on SQLite and on
// a throwaway PostgreSQL when its binaries are present.
import { afterAll, beforeAll } from 'vitest';
import { Store } from '../../src/store/store.ts';
import { postgresAvailable, startPostgres } from './pg.ts';
import type { ThrowawayPostgres } from './pg.ts';

/** For `describe.each(DIALECTS)`; a test skips with `it.skipIf(!enabled)`. */
export const DIALECTS = [
  { name: 'sqlite', enabled: true },
  { name: 'postgres', enabled: postgresAvailable },
] as const;

export type DialectName = (typeof DIALECTS)[number]['name'];

/**
 * Opens the stores before the describe's tests and closes them after. On SQLite (one process per
 * database, decision 0019) both names are the same in-memory store.
 */
export function twoStores(
  name: DialectName,
  enabled: boolean,
  at: Date,
): { readonly one: Store; readonly two: Store } {
  let pg: ThrowawayPostgres | null = null;
  let one: Store | undefined;
  let two: Store | undefined;
  beforeAll(async () => {
    if (!enabled) return;
    if (name === 'postgres') {
      pg = await startPostgres();
      one = await Store.open(pg.url, at);
      two = await Store.open(pg.url, at);
    } else {
      one = await Store.open('sqlite::memory:', at);
      two = one;
    }
  }, 60_000);
  afterAll(async () => {
    if (two !== one) await two?.close();
    await one?.close();
    pg?.stop();
  });
  const opened = (store: Store | undefined): Store => {
    if (!store) throw new Error('twoStores: the stores are open only inside the tests');
    return store;
  };
  return {
    get one() {
      return opened(one);
    },
    get two() {
      return opened(two);
    },
  };
}

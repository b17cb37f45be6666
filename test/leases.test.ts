// Issue 16, item 2 (first step): timed work under leases that expire, so that several processes
// on one PostgreSQL database do it once and take it over from one that dies (decision 0019).
import { describe, expect, it } from 'vitest';
import { DIALECTS, twoStores } from './support/two-stores.ts';
import { LeasedWork } from '../src/app/leases.ts';
import { ManualClock } from '../src/core/clock.ts';

const T0 = new Date('2026-12-07T09:00:00Z');
const at = (ms: number) => new Date(T0.getTime() + ms);

describe.each(DIALECTS)('leases on $name', ({ name, enabled }) => {
  /** Two stores on the same database: two processes, as far as the database can tell. */
  const stores = twoStores(name, enabled, T0);

  it.skipIf(!enabled)(
    'one holder at a time; renewed by its holder; taken over once expired; released at once',
    async () => {
      expect(await stores.one.leases.acquire('tick', 'A', at(0), 30_000)).toBe(true);
      expect(await stores.two.leases.acquire('tick', 'B', at(1_000), 30_000)).toBe(false);
      // Renewed: still A's, acquired when A first took it.
      expect(await stores.one.leases.acquire('tick', 'A', at(20_000), 30_000)).toBe(true);
      expect(await stores.two.leases.acquire('tick', 'B', at(40_000), 30_000)).toBe(false);
      let [row] = await stores.one.leases.all();
      expect(row).toMatchObject({
        holder: 'A',
        acquired_at: at(0).toISOString(),
        expires_at: at(50_000).toISOString(),
      });
      // A stopped renewing (it died): past the expiry B takes it, anew.
      expect(await stores.two.leases.acquire('tick', 'B', at(50_001), 30_000)).toBe(true);
      [row] = await stores.one.leases.all();
      expect(row).toMatchObject({ holder: 'B', acquired_at: at(50_001).toISOString() });
      expect(await stores.one.leases.acquire('tick', 'A', at(50_002), 30_000)).toBe(false);
      // Leases are by name: another piece of work is free.
      expect(await stores.one.leases.acquire('vpp', 'A', at(50_002), 30_000)).toBe(true);
      // B stops cleanly: A takes over at once.
      await stores.one.leases.release('tick', 'A'); // not A's: nothing happens
      expect(await stores.one.leases.acquire('tick', 'A', at(50_003), 30_000)).toBe(false);
      await stores.two.leases.release('tick', 'B');
      expect(await stores.one.leases.acquire('tick', 'A', at(50_004), 30_000)).toBe(true);
    },
  );

  it.skipIf(!enabled)(
    'LeasedWork: of two processes only the holder runs the work; after a clean stop the other does',
    async () => {
      const clock = new ManualClock(at(100_000).toISOString());
      const a = new LeasedWork({ leases: stores.one.leases, clock });
      const b = new LeasedWork({ leases: stores.two.leases, clock });
      const ran: string[] = [];
      for (let i = 0; i < 3; i++) {
        await a.run('compaction', 30_000, async () => ran.push('a'));
        await b.run('compaction', 30_000, async () => ran.push('b'));
      }
      expect(ran).toEqual(['a', 'a', 'a']);
      expect(a.held).toEqual(['compaction']);
      expect(b.held).toEqual([]);
      await a.releaseAll();
      await b.run('compaction', 30_000, async () => ran.push('b'));
      await a.run('compaction', 30_000, async () => ran.push('a'));
      expect(ran).toEqual(['a', 'a', 'a', 'b']);
      expect(b.held).toEqual(['compaction']);
    },
  );
});

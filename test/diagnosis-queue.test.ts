// Issue 16, item 3 (decision 0021): failed jobs waiting for their background diagnosis are rows
// any process may claim — each diagnosed once, by whichever process claims it, a few at a time;
// the claims of a process that died lapse; a stop leaves the queue for the next start.
import { describe, expect, it } from 'vitest';
import { DIALECTS, twoStores } from './support/two-stores.ts';
import { ManualClock } from '../src/core/clock.ts';
import type { Cause } from '../src/diagnosis/index.ts';
import type { EngineContext } from '../src/engine/jobs/context.ts';
import { DiagnosisQueue } from '../src/engine/jobs/diagnosis-queue.ts';
import type { JobRow } from '../src/store/job-repo.ts';
import type { Store } from '../src/store/store.ts';

const T0 = new Date('2026-12-07T09:00:00Z');
const at = (ms: number) => new Date(T0.getTime() + ms);

/**
 * What the background diagnosis needs of the engine: the store's queue, failed jobs (read again
 * when their turn comes) and no device to ask (the ranking itself is `rank`, counted here).
 */
function contextOn(store: Store, clock: ManualClock, failed: Set<string>): EngineContext {
  const ctx = {
    closed: false,
    now: () => clock.now(),
    t: { offlineAfterMs: 86_400_000, unenrolledAfterMs: 30 * 86_400_000 },
    store: {
      diagnosisQueue: store.diagnosisQueue,
      jobs: {
        get: (id: string) =>
          Promise.resolve(
            failed.has(id)
              ? ({ id, status: 'push_timeout', device_id: 'gone', created_at: T0.toISOString() } as JobRow)
              : undefined,
          ),
      },
      devices: { get: () => Promise.resolve(undefined) },
    },
  };
  return ctx as unknown as EngineContext;
}

async function until(check: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 1_000; i++) {
    if (check()) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`never: ${what}`);
}

describe.each(DIALECTS)('the diagnosis queue on $name', ({ name, enabled }) => {
  /** Two stores on the same database: two processes, as far as the database can tell. */
  const stores = twoStores(name, enabled, T0);

  it.skipIf(!enabled)(
    'the repo: claims are disjoint, oldest first; a lapsed claim is taken over; done removes',
    async () => {
      const q1 = stores.one.diagnosisQueue;
      const q2 = stores.two.diagnosisQueue;
      for (let i = 0; i < 30; i++) await (i % 2 ? q1 : q2).add(`r-${String(i).padStart(2, '0')}`, at(i));
      // Many claims at once from both: no job in two of them. p1's claims are short.
      const claims = await Promise.all(
        Array.from({ length: 12 }, (_, i) =>
          (i % 2 ? q1 : q2).claim(`p${i % 2}`, at(100), 3, i % 2 ? 1_000 : 60_000),
        ),
      );
      const all = claims.flat();
      expect(all).toHaveLength(30);
      expect(new Set(all).size).toBe(30);
      expect(await q1.claim('p0', at(200), 5, 60_000)).toEqual([]);
      // Process p1 died: its claims lapse and p2 takes them, p0's stay p0's.
      const p1 = claims.filter((_, i) => i % 2 === 1).flat();
      const p0 = claims.filter((_, i) => i % 2 === 0).flat();
      const taken = await q2.claim('p2', at(1_101), 100, 60_000);
      expect(taken.sort()).toEqual(p1.sort());
      // Done by the one holding the claim only.
      await q1.done(p1[0]!, 'p1');
      expect((await q1.all()).map((r) => r.job_id)).toContain(p1[0]);
      for (const id of p1) await q1.done(id, 'p2');
      for (const id of p0) await q2.done(id, 'p0');
      expect(await q1.all()).toEqual([]);
      // Queued again while claimed: claimable anew, and the first claim's done leaves it.
      await q1.add('again', at(0));
      expect(await q1.claim('p0', at(1), 5, 60_000)).toEqual(['again']);
      await q2.add('again', at(2));
      expect(await q2.claim('p1', at(3), 5, 60_000)).toEqual(['again']);
      await q1.done('again', 'p0');
      expect((await q1.all()).map((r) => [r.job_id, r.claimed_by])).toEqual([['again', 'p1']]);
      await q2.release('p1');
      expect((await q1.all()).map((r) => r.claimed_by)).toEqual([null]);
      await q1.done('again', 'p1');
      expect(await q1.claim('p0', at(4), 5, 60_000)).toEqual(['again']);
      await q1.done('again', 'p0');
      expect(await q1.all()).toEqual([]);
    },
  );

  it.skipIf(!enabled)(
    'two processes: every failed job diagnosed once, by one of them, never more than 4 at once in each',
    async () => {
      const clock = new ManualClock(at(1_000).toISOString());
      const failed = new Set(Array.from({ length: 40 }, (_, i) => `job-${i}`));
      const ranked: string[] = [];
      const running = [0, 0];
      const most = [0, 0];
      const queues = [stores.one, stores.two].map(
        (store, p) =>
          new DiagnosisQueue(contextOn(store, clock, failed), async (job: JobRow): Promise<Cause[]> => {
            most[p] = Math.max(most[p]!, ++running[p]!);
            try {
              await new Promise((r) => setTimeout(r, 5));
              ranked.push(job.id);
              return [];
            } finally {
              running[p]!--;
            }
          }),
      );
      // Half the failures happen on each process; a job failed on one may be diagnosed by the other.
      for (const [i, id] of [...failed].entries()) queues[i % 2]!.queue(id);
      await until(() => queues.every((q) => q.pending === 0), 'both queues drained');
      // What the other claimed is not known here: the tick's resume finds nothing left.
      for (const q of queues) q.resume();
      await until(() => ranked.length >= 40 && queues.every((q) => q.pending === 0), 'all ranked');
      expect(ranked.sort()).toEqual([...failed].sort());
      expect(most[0]).toBeLessThanOrEqual(4);
      expect(most[1]).toBeLessThanOrEqual(4);
      expect(await stores.one.diagnosisQueue.all()).toEqual([]);
    },
  );

  it.skipIf(!enabled)(
    'a stop leaves the queue in the store; the next start (its first tick) diagnoses it',
    async () => {
      const clock = new ManualClock(at(2_000).toISOString());
      const failed = new Set(Array.from({ length: 12 }, (_, i) => `stop-${i}`));
      const ranked: string[] = [];
      let release!: () => void;
      const gate = new Promise<void>((r) => {
        release = r;
      });
      const ctx = contextOn(stores.one, clock, failed);
      const first = new DiagnosisQueue(ctx, async (job) => {
        await gate;
        ranked.push(job.id);
        return [];
      });
      for (const id of failed) first.queue(id);
      await until(() => first.pending === 12 && ranked.length === 0, 'queued');
      // Four are running (held at the gate); the stop claims no more.
      await new Promise((r) => setTimeout(r, 50));
      ctx.closed = true;
      const running = first.stop();
      release();
      await Promise.all(running);
      expect(ranked).toHaveLength(4);
      expect(await stores.one.diagnosisQueue.all()).toHaveLength(8);
      first.queue('after-stop');
      expect(first.pending).toBe(0);

      const again: string[] = [];
      const next = new DiagnosisQueue(contextOn(stores.two, clock, failed), async (job) => {
        again.push(job.id);
        return [];
      });
      next.resume();
      await until(() => again.length === 8 && next.pending === 0, 'the rest diagnosed after the restart');
      expect(new Set([...ranked, ...again])).toEqual(failed);
      expect(await stores.two.diagnosisQueue.all()).toEqual([]);
    },
  );
});

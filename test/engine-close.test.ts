// Stopping the engine: queued background work is dropped, running work gets a bounded grace.
import { describe, expect, it } from 'vitest';
import { ManualClock } from '../src/core/clock.ts';
import { DistributionEngine } from '../src/engine/engine.ts';
import type { Pusher } from '../src/engine/push.ts';
import type { VppTokens } from '../src/engine/vpp-tokens.ts';
import { Store } from '../src/store/store.ts';

/** These engines never get as far as a push. */
const NO_PUSH: Pusher = {
  push: () => Promise.reject(new Error('no push expected')),
};

const TIMINGS = {
  pushTimeoutMs: 60_000,
  requestTimeoutMs: 600_000,
  sessionTimeoutMs: 60_000,
  notNowRetryMs: 60_000,
  silentRepushMs: 180_000,
  verifyEveryMs: 60_000,
  maxTransientRetries: 3,
  transientBackoffMs: 1_000,
  offlineAfterMs: 86_400_000,
  unenrolledAfterMs: 30 * 86_400_000,
};

describe('DistributionEngine.close()', () => {
  it('does not wait longer than its grace for a tick stuck on Apple, and ticks no more afterwards', async () => {
    const clock = new ManualClock('2026-12-01T09:00:00Z');
    const store = await Store.open('sqlite::memory:', clock.now());
    let recoverCalls = 0;
    // Only what a first tick touches: recovering the VPP event trackers, which here never answers.
    const stuckTokens = {
      recover: () => {
        recoverCalls++;
        return new Promise<void>(() => undefined);
      },
    } as unknown as VppTokens;
    const engine = new DistributionEngine({
      store,
      clock,
      tokens: stuckTokens,
      pusher: NO_PUSH,
      timings: TIMINGS,
    });
    let tickSettled = false;
    void engine.tick().finally(() => {
      tickSettled = true;
    });
    await new Promise((r) => setTimeout(r, 10));
    expect(recoverCalls).toBe(1);

    const started = performance.now();
    await engine.close(100);
    const waited = performance.now() - started;
    expect(waited).toBeGreaterThanOrEqual(90);
    expect(waited).toBeLessThan(2_000);
    expect(tickSettled).toBe(false);
    // Closed: a timer that fires late starts nothing.
    await engine.tick();
    expect(recoverCalls).toBe(1);
    await store.close();
  });

  it('returns at once when nothing runs', async () => {
    const clock = new ManualClock('2026-12-01T09:00:00Z');
    const store = await Store.open('sqlite::memory:', clock.now());
    const engine = new DistributionEngine({
      store,
      clock,
      tokens: {} as unknown as VppTokens, // never reached: no tick runs
      pusher: NO_PUSH,
      timings: TIMINGS,
    });
    const started = performance.now();
    await engine.close(10_000);
    expect(performance.now() - started).toBeLessThan(1_000);
    expect(engine.pendingDiagnoses).toBe(0);
    await store.close();
  });
});

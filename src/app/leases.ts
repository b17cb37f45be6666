import { hostname } from 'node:os';
import { randomUUID } from 'node:crypto';
import type { Clock } from '../core/clock.ts';

/** What leased work needs of the store (`src/store/lease-repo.ts`). */
export interface LeaseStore {
  acquire(name: string, holder: string, now: Date, ttlMs: number): Promise<boolean>;
  release(name: string, holder: string): Promise<void>;
}

/** The timed work of a haishin process, each under a lease of this name. */
export const LEASED_WORK = [
  'engine tick',
  'VPP event poll',
  'VPP token upkeep',
  'app update check',
  'queue compaction',
  'identity renewal',
] as const;
export type LeasedWorkName = (typeof LEASED_WORK)[number];

/** A lease outlives a few periods of its work: a holder that dies is replaced after this long. */
export function leaseTtlFor(periodMs: number): number {
  return Math.max(30_000, 3 * periodMs);
}

/**
 * Work one process does for all — the engine's tick, the Apps and Books event poll, token upkeep,
 * the app update check, queue compaction — run under a lease (decision 0019): with several
 * `haishin serve` on one PostgreSQL database the holder does it and the others skip it; when the
 * holder stops (cleanly: it releases; or dies: the lease expires) another takes over. While the
 * work runs the lease is renewed, so a long pass is not taken over half-way. With SQLite there is
 * one process, which always holds them.
 */
export class LeasedWork {
  readonly #leases: LeaseStore;
  readonly #clock: Clock;
  /** This process, as other processes see it in the leases table. */
  readonly holder = `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;
  readonly #held = new Set<string>();

  constructor(o: { leases: LeaseStore; clock: Clock }) {
    this.#leases = o.leases;
    this.#clock = o.clock;
  }

  /** Runs `work` if this process holds or can take `name`; whether it ran. */
  async run(name: string, ttlMs: number, work: () => Promise<unknown>): Promise<boolean> {
    if (!(await this.#take(name, ttlMs))) return false;
    // Real time on purpose: renewing is about this process staying alive, not the domain clock.
    const renew = setInterval(
      () => {
        this.#take(name, ttlMs).catch(() => {
          // The next run tries again; until the lease expires nobody else takes it.
        });
      },
      Math.max(1_000, Math.floor(ttlMs / 3)),
    );
    renew.unref();
    try {
      await work();
    } finally {
      clearInterval(renew);
    }
    return true;
  }

  /** The leases this process holds now. */
  get held(): string[] {
    return [...this.#held].sort();
  }

  /** Gives every lease up (a clean stop): another process takes the work over at once. */
  async releaseAll(): Promise<void> {
    for (const name of this.#held) await this.#leases.release(name, this.holder);
    this.#held.clear();
  }

  async #take(name: string, ttlMs: number): Promise<boolean> {
    const ok = await this.#leases.acquire(name, this.holder, this.#clock.now(), ttlMs);
    if (ok) this.#held.add(name);
    else this.#held.delete(name);
    return ok;
  }
}

import type { Clock } from '../../core/clock.ts';

export type Sleep = (ms: number) => Promise<void>;

export const realSleep: Sleep = (ms) =>
  new Promise((resolve) => {
    setTimeout(resolve, Math.max(0, ms));
  });

/**
 * Where the pacing of a location lives when more than one process may call Apple for it (decision
 * 0021): the bucket's "theoretical arrival time" (tat), in ms since the epoch, kept by location.
 * Both operations are atomic with respect to every other user of the same state: two callers
 * never get the same slot. `src/store/vpp-pacing-repo.ts` keeps it in the database (PostgreSQL,
 * several processes); {@link MemoryPacingState} in this process.
 */
export interface PacingState {
  /** `tat = max(tat, nowMs) + intervalMs`, returning the new tat. */
  advance(location: string, nowMs: number, intervalMs: number): Promise<number>;
  /** `tat = max(tat, untilMs)`: nobody's slot comes before it (Retry-After, a 429/503 backoff). */
  holdUntil(location: string, untilMs: number): Promise<void>;
}

/** A {@link PacingState} in memory: several clients of one process sharing their locations' pacing. */
export class MemoryPacingState implements PacingState {
  readonly #tat = new Map<string, number>();

  // Synchronous up to the return: concurrent callers of one process cannot interleave.
  advance(location: string, nowMs: number, intervalMs: number): Promise<number> {
    const tat = Math.max(this.#tat.get(location) ?? Number.NEGATIVE_INFINITY, nowMs) + intervalMs;
    this.#tat.set(location, tat);
    return Promise.resolve(tat);
  }

  holdUntil(location: string, untilMs: number): Promise<void> {
    this.#tat.set(location, Math.max(this.#tat.get(location) ?? Number.NEGATIVE_INFINITY, untilMs));
    return Promise.resolve();
  }
}

/**
 * A token bucket kept as its "theoretical arrival time" (GCRA): one number of state, and a slot
 * is reserved synchronously before any await, so concurrent callers cannot both take the last
 * token. With `burst` 1 no half-open one-second window ever holds more than `perSecond`
 * requests, which is what "never exceed the service's rate" means.
 */
export class RateLimiter {
  readonly #clock: Clock;
  readonly #sleep: Sleep;
  #intervalMs: number;
  #burst: number;
  /** When the bucket would be full again if nothing else came: ms since the epoch. */
  #tat = Number.NEGATIVE_INFINITY;
  /** When the last request was let through. */
  #lastAllowed = Number.NEGATIVE_INFINITY;

  /** The state shared with other clients of the same location; null: this limiter's own fields. */
  readonly #shared: { state: PacingState; location: string } | null;

  constructor(options: {
    clock: Clock;
    sleep: Sleep;
    perSecond: number;
    burst?: number;
    /** Pace together with every other limiter of `location` on `state` (decision 0021). */
    shared?: { state: PacingState; location: string };
  }) {
    this.#clock = options.clock;
    this.#sleep = options.sleep;
    this.#intervalMs = 1000 / positive(options.perSecond);
    this.#burst = Math.max(1, Math.floor(options.burst ?? 1));
    this.#shared = options.shared ?? null;
  }

  get perSecond(): number {
    return 1000 / this.#intervalMs;
  }

  setRate(perSecond: number, burst?: number): void {
    const interval = 1000 / positive(perSecond);
    if (burst !== undefined) this.#burst = Math.max(1, Math.floor(burst));
    if (interval === this.#intervalMs) return;
    this.#intervalMs = interval;
    // Slots reserved at the old rate would otherwise let the next ones come too close together:
    // restart from an empty bucket as of the last request.
    if (Number.isFinite(this.#lastAllowed)) this.#tat = this.#lastAllowed + this.#burst * interval;
  }

  /** Waits until one more request fits in the rate, then counts it. */
  async take(): Promise<void> {
    const now = this.#clock.now().getTime();
    const tolerance = (this.#burst - 1) * this.#intervalMs;
    if (this.#shared) {
      const { state, location } = this.#shared;
      let tat: number | null = null;
      try {
        tat = await state.advance(location, now, this.#intervalMs);
      } catch {
        // The shared state cannot be reached (the database is away): pace alone until it is back
        // rather than fail a call Apple may well answer.
      }
      if (tat !== null) {
        const wait = tat - this.#intervalMs - tolerance - now;
        if (wait > 0) await this.#sleep(Math.ceil(wait));
        return;
      }
    }
    const tat = Math.max(this.#tat, now);
    const allowedAt = tat - tolerance;
    this.#tat = tat + this.#intervalMs;
    this.#lastAllowed = Math.max(this.#lastAllowed, allowedAt, now);
    const wait = allowedAt - now;
    if (wait > 0) await this.#sleep(Math.ceil(wait));
  }

  /**
   * No request before `untilMs`, whoever asks (a Retry-After, a 429 or 503 backoff): the service
   * refuses the location, not one call. With shared state, every process pacing the location waits.
   */
  async hold(untilMs: number): Promise<void> {
    const tolerance = (this.#burst - 1) * this.#intervalMs;
    this.#tat = Math.max(this.#tat, untilMs + tolerance);
    if (!this.#shared) return;
    try {
      await this.#shared.state.holdUntil(this.#shared.location, untilMs + tolerance);
    } catch {
      // As in take(): this process at least holds back.
    }
  }
}

function positive(perSecond: number): number {
  if (!Number.isFinite(perSecond) || perSecond <= 0)
    throw new RangeError(`rate must be > 0, got ${perSecond}`);
  return perSecond;
}

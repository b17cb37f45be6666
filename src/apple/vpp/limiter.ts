import type { Clock } from '../../core/clock.ts';

export type Sleep = (ms: number) => Promise<void>;

export const realSleep: Sleep = (ms) =>
  new Promise((resolve) => {
    setTimeout(resolve, Math.max(0, ms));
  });

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

  constructor(options: { clock: Clock; sleep: Sleep; perSecond: number; burst?: number }) {
    this.#clock = options.clock;
    this.#sleep = options.sleep;
    this.#intervalMs = 1000 / positive(options.perSecond);
    this.#burst = Math.max(1, Math.floor(options.burst ?? 1));
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
    const tat = Math.max(this.#tat, now);
    const allowedAt = tat - tolerance;
    this.#tat = tat + this.#intervalMs;
    this.#lastAllowed = Math.max(this.#lastAllowed, allowedAt, now);
    const wait = allowedAt - now;
    if (wait > 0) await this.#sleep(Math.ceil(wait));
  }
}

function positive(perSecond: number): number {
  if (!Number.isFinite(perSecond) || perSecond <= 0)
    throw new RangeError(`rate must be > 0, got ${perSecond}`);
  return perSecond;
}

import type { CommandReport } from '../../mdm/ports.ts';
import type { Activation } from './activation.ts';
import { BATCH } from './context.ts';
import type { EngineContext } from './context.ts';
import type { Licences } from './licences.ts';
import type { JobMover } from './mover.ts';
import type { PushPhase } from './push-phase.ts';
import { recover } from './recovery.ts';
import { timeouts } from './timeouts.ts';
import { verify } from './verification.ts';

/**
 * The tick: one pass of every time-driven step, in batches and in this order — the restart
 * recovery (first pass only), timeouts, schedules reached, activation, licences ahead, licence
 * phase, retries due, push phase, silent sessions pushed again, verification. Owns the order, the two one-line steps (schedule,
 * retry) and the pass running now, which concurrent calls share.
 */
export class Tick {
  readonly #ctx: EngineContext;
  readonly #mover: JobMover;
  readonly #activation: Activation;
  readonly #licences: Licences;
  readonly #push: PushPhase;
  readonly #onReport: (report: CommandReport) => Promise<void>;
  #running: Promise<void> | null = null;

  constructor(
    ctx: EngineContext,
    parts: {
      mover: JobMover;
      activation: Activation;
      licences: Licences;
      push: PushPhase;
      /** Where the recovery hands the answers stored but not yet applied (the device reports). */
      onReport: (report: CommandReport) => Promise<void>;
    },
  ) {
    this.#ctx = ctx;
    this.#mover = parts.mover;
    this.#activation = parts.activation;
    this.#licences = parts.licences;
    this.#push = parts.push;
    this.#onReport = parts.onReport;
  }

  /** One pass of every time-driven step; concurrent calls share the running pass. */
  run(): Promise<void> {
    if (this.#ctx.closed) return Promise.resolve();
    if (!this.#running) {
      this.#running = this.#once().finally(() => {
        this.#running = null;
      });
    }
    return this.#running;
  }

  /** The pass running now, if any (`close()` gives it its grace). */
  get running(): Promise<void> | null {
    return this.#running;
  }

  async #once(): Promise<void> {
    const ctx = this.#ctx;
    const mover = this.#mover;
    if (!ctx.recovered) await recover(ctx, this.#onReport);
    const now = ctx.now();
    await timeouts(ctx, mover, now);
    for (const job of await ctx.store.jobs.byStatus(['scheduled'], BATCH, now))
      await mover.move(job, 'waiting', 'schedule reached', { next_at: null });
    await this.#activation.run();
    await this.#licences.ahead();
    await this.#licences.phase();
    for (const job of await ctx.store.jobs.byStatus(['retry_waiting'], BATCH, now)) {
      await mover.move(job, 'push_sending', 'retry', { next_at: null, step: 'push_due' });
    }
    await this.#push.run(now);
    await this.#push.resumeSilent(now);
    await verify(ctx, now);
  }
}

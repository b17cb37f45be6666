import { BATCH } from './context.ts';
import type { EngineContext } from './context.ts';
import type { JobMover } from './mover.ts';

/**
 * The timeouts, first step of the tick: jobs past their push, session or request deadline end
 * with it, their command taken off the queue (the device must not fetch it after all).
 */
export async function timeouts(ctx: EngineContext, mover: JobMover, now: Date): Promise<void> {
  const { jobs } = ctx.store;
  for (const job of await jobs.overdue('push_deadline', now, BATCH)) {
    await mover.dropCommand(job);
    await mover.move(job, 'push_timeout', 'push timeout');
  }
  for (const job of await jobs.overdue('session_deadline', now, BATCH)) {
    await mover.dropCommand(job);
    await mover.move(job, 'session_timeout', 'session timeout');
  }
  for (const job of await jobs.overdue('request_deadline', now, BATCH)) {
    await mover.dropCommand(job);
    await mover.move(job, 'request_timeout', 'request timeout');
  }
}

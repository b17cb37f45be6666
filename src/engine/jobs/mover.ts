import { isTerminal, transition } from '../../core/jobs.ts';
import type { JobStatus } from '../../core/jobs.ts';
import type { JobPatch, JobRow } from '../../store/job-repo.ts';
import { IN_FLIGHT } from './context.ts';
import type { EngineContext } from './context.ts';
import type { DiagnosisQueue } from './diagnosis-queue.ts';

/**
 * The one way the engine changes a job's status: `transition()` of `src/core/jobs.ts` and
 * `JobRepo.apply`, guarded by the previous status (a job another call moved meanwhile is left as
 * it is: `move` answers null). Around it, what every status change entails: the job event on the
 * bus, the device noted as freed when the job leaves the in-flight statuses (the activation looks
 * at its next job first), and the background diagnosis of a job that failed.
 */
export class JobMover {
  readonly #ctx: EngineContext;
  readonly #diagnoses: DiagnosisQueue;

  constructor(ctx: EngineContext, diagnoses: DiagnosisQueue) {
    this.#ctx = ctx;
    this.#diagnoses = diagnoses;
  }

  async move(
    job: JobRow,
    to: JobStatus,
    reason: string | null,
    patch: JobPatch = {},
  ): Promise<JobRow | null> {
    const ctx = this.#ctx;
    const now = ctx.now();
    const { state, change } = transition(
      { status: job.status as JobStatus, retryCount: job.retry_count, attempt: job.attempt },
      to,
      now,
      reason,
    );
    // A step belongs to the status it was taken in: a change clears it unless it sets one.
    const applied = await ctx.store.jobs.apply(job, change, {
      step: null,
      ...patch,
      retry_count: state.retryCount,
      attempt: state.attempt,
    });
    if (applied) {
      ctx.events?.publish({
        type: 'job',
        jobId: job.id,
        distributionId: job.distribution_id,
        deviceId: job.device_id,
        adamId: job.adam_id,
        from: change.from,
        to: change.to,
        reason: change.reason,
        retryCount: state.retryCount,
        at: change.at.toISOString(),
      });
    }
    const moved = applied
      ? {
          ...job,
          step: null,
          ...patch,
          status: to,
          reason,
          retry_count: state.retryCount,
          attempt: state.attempt,
        }
      : null;
    if (moved && IN_FLIGHT.includes(job.status as JobStatus) && !IN_FLIGHT.includes(to))
      ctx.freed.add(job.device_id);
    // A job that fails carries its diagnosis from that moment on (refreshed on demand later).
    if (moved && isTerminal(to) && to !== 'success' && to !== 'cancelled') this.#diagnoses.queue(job.id);
    return moved;
  }

  /** Takes the job's command off the queue (a job cancelled or timed out: the device must not fetch it). */
  async dropCommand(job: JobRow): Promise<void> {
    await this.#ctx.commander.drop([job.command_uuid]);
  }
}

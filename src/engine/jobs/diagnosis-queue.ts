import { isTerminal } from '../../core/jobs.ts';
import type { JobStatus } from '../../core/jobs.ts';
import { diagnose } from '../../diagnosis/index.ts';
import type { Cause } from '../../diagnosis/index.ts';
import type { JobRow } from '../../store/job-repo.ts';
import { askDeviceForJob, questionsOf } from '../ask-device.ts';
import { gatherEvidence } from '../evidence.ts';
import type { EngineContext } from './context.ts';

/** Background diagnoses at once: each is a dozen queries, and MDM requests share the database. */
const DIAGNOSIS_CONCURRENCY = 4;

/**
 * The diagnoses of jobs: on demand (`diagnose`, `diagnoseJob`, for the routes) and in the
 * background for every job that fails (`queue`, from the mover and from the device's answers to
 * the troubleshooter's questions). Owns the queue of job ids and the diagnoses running now.
 *
 * Failed jobs are diagnosed in the background, a few at a time: a mass failure (an APNs outage,
 * a fleet switched off for the weekend) must queue ids, not start a hundred thousand diagnoses
 * at once. Each is read again when its turn comes, so it sees the evidence of that moment.
 */
export class DiagnosisQueue {
  readonly #ctx: EngineContext;
  readonly #queue = new Set<string>();
  readonly #running = new Set<Promise<void>>();
  readonly #rank: (job: JobRow) => Promise<Cause[]>;

  /**
   * `rank` is the diagnosis the background and `diagnoseJob` run: the engine passes its own
   * public `diagnose`, looked up at each call, so that a wrapper set on the engine sees every
   * diagnosis (a test counts how many run at once). Without it, {@link diagnose}.
   */
  constructor(ctx: EngineContext, rank?: (job: JobRow) => Promise<Cause[]>) {
    this.#ctx = ctx;
    this.#rank = rank ?? ((job) => this.diagnose(job));
  }

  queue(jobId: string): void {
    if (this.#ctx.closed) return;
    this.#queue.add(jobId);
    this.#startDiagnoses();
  }

  #startDiagnoses(): void {
    while (this.#running.size < DIAGNOSIS_CONCURRENCY && this.#queue.size > 0) {
      const jobId = this.#queue.values().next().value!;
      this.#queue.delete(jobId);
      const run: Promise<void> = this.#diagnoseStored(jobId)
        .catch(() => {
          // best effort: GET /jobs/:id/diagnosis computes it again on demand
        })
        .finally(() => {
          this.#running.delete(run);
          this.#startDiagnoses();
        });
      this.#running.add(run);
    }
  }

  async #diagnoseStored(jobId: string): Promise<void> {
    const job = await this.#ctx.store.jobs.get(jobId);
    if (
      job &&
      isTerminal(job.status as JobStatus) &&
      job.status !== 'success' &&
      job.status !== 'cancelled'
    ) {
      const causes = await this.#rank(job);
      // Facts that cannot settle the ranking: ask a device that is talking; the answers rank it again.
      await askDeviceForJob(this.#askOptions(false), job, causes);
    }
  }

  /** Failed jobs still waiting for their background diagnosis (and those being diagnosed now). */
  get pending(): number {
    return this.#queue.size + this.#running.size;
  }

  /**
   * Drops the queued diagnoses (each is computed on demand when someone asks); the running ones,
   * for `close()` to give them their grace.
   */
  stop(): Promise<void>[] {
    this.#queue.clear();
    return [...this.#running];
  }

  /** Gathers what haishin knows about the job, ranks the causes, and keeps the answer on the job. */
  async diagnose(job: JobRow): Promise<Cause[]> {
    const { store, t } = this.#ctx;
    const now = this.#ctx.now();
    const evidence = await gatherEvidence(store, job, now, {
      offlineAfterMs: t.offlineAfterMs,
      unenrolledAfterMs: t.unenrolledAfterMs,
    });
    const causes = diagnose(evidence);
    // Re-read: questions to the device recorded meanwhile outlive a new ranking (src/engine/ask-device.ts).
    const questions = questionsOf((await store.jobs.get(job.id))?.diagnosis ?? null);
    await store.jobs.patch(
      job.id,
      { diagnosis: JSON.stringify({ at: now.toISOString(), causes, ...questions }) },
      now,
    );
    return causes;
  }

  #askOptions(onDemand: boolean) {
    return {
      store: this.#ctx.store,
      commander: this.#ctx.commander,
      now: this.#ctx.now(),
      offlineAfterMs: this.#ctx.t.offlineAfterMs,
      onDemand,
    };
  }

  /**
   * Diagnoses the job and, when the device's facts are missing, older than the offline threshold,
   * or older than the job while they could change the ranking, asks the device for fresh ones
   * (DeviceInformation, Restrictions, app list, users) and says so: `askedDevice` is what was sent
   * now, `awaitingDevice` what the job waits for; the stored diagnosis is ranked again once the
   * device answered.
   */
  async diagnoseJob(
    job: JobRow,
  ): Promise<{ causes: Cause[]; askedDevice: string[]; awaitingDevice: string[] }> {
    const causes = await this.#rank(job);
    const { asked, awaiting } = await askDeviceForJob(this.#askOptions(true), job, causes);
    return { causes, askedDevice: asked, awaitingDevice: awaiting };
  }
}

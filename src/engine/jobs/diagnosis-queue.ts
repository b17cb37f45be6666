import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
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
 * How long a claim holds a queued job for the process that took it: far beyond a diagnosis (a
 * dozen queries), short enough that the jobs of a process that died are diagnosed soon after.
 */
const CLAIM_TTL_MS = 2 * 60_000;

/**
 * The diagnoses of jobs: on demand (`diagnose`, `diagnoseJob`, for the routes) and in the
 * background for every job that fails (`queue`, from the mover and from the device's answers to
 * the troubleshooter's questions). Owns the diagnoses running now in this process.
 *
 * Failed jobs are diagnosed in the background, a few at a time: a mass failure (an APNs outage,
 * a fleet switched off for the weekend) must queue ids, not start a hundred thousand diagnoses
 * at once. Each is read again when its turn comes, so it sees the evidence of that moment.
 *
 * The queue is rows in the store (decision 0021), claimed a few at a time by whichever process has
 * room: with several processes on one PostgreSQL database, a job failed on one is diagnosed once,
 * by one of them; a process that dies leaves its claims to lapse, and a stop or a restart leaves
 * the queue where it was. Each process claims when it queues, when a diagnosis of its own ends and
 * at each tick of the engine (`resume`: what others left behind).
 */
export class DiagnosisQueue {
  readonly #ctx: EngineContext;
  readonly #rank: (job: JobRow) => Promise<Cause[]>;
  /** This process, as the queue's rows name the one that claimed them. */
  readonly #holder = `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;
  /** Rows being written by `queue`. */
  readonly #writes = new Set<Promise<void>>();
  /** Jobs queued here, their row written, not yet claimed here (`pending` counts them). */
  readonly #waiting = new Set<string>();
  /** The diagnoses running here, by job id. */
  readonly #running = new Map<string, Promise<void>>();
  /** The claim under way, if any; `#again` asks for one more after it. */
  #claiming: Promise<void> | null = null;
  #again = false;

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
    const write: Promise<void> = this.#ctx.store.diagnosisQueue
      .add(jobId, this.#ctx.now())
      .then(() => {
        this.#waiting.add(jobId);
        this.#claim();
      })
      .catch(() => {
        // best effort: GET /jobs/:id/diagnosis computes it on demand
      })
      .finally(() => this.#writes.delete(write));
    this.#writes.add(write);
  }

  /** Claims queued jobs if there is room: those of other processes, and those whose claim lapsed. */
  resume(): void {
    this.#claim();
  }

  #claim(): void {
    if (this.#ctx.closed) return;
    if (this.#claiming) {
      this.#again = true;
      return;
    }
    this.#claiming = this.#claimOnce()
      .catch(() => {
        // The store is away: the rows stay, the next tick claims them.
      })
      .finally(() => {
        this.#claiming = null;
        if (this.#again) {
          this.#again = false;
          this.#claim();
        }
      });
  }

  async #claimOnce(): Promise<void> {
    const room = DIAGNOSIS_CONCURRENCY - this.#running.size;
    if (room <= 0) return;
    const known = [...this.#waiting];
    const queue = this.#ctx.store.diagnosisQueue;
    const ids = await queue.claim(this.#holder, this.#ctx.now(), room, CLAIM_TTL_MS);
    if (this.#ctx.closed) {
      // Stopped while claiming: give them back for another process or the next start.
      await queue.release(this.#holder);
      return;
    }
    // Fewer than there was room for: nothing else is claimable; what this process queued and did
    // not get is being diagnosed by another one.
    if (ids.length < room) for (const id of known) this.#waiting.delete(id);
    for (const jobId of ids) {
      this.#waiting.delete(jobId);
      this.#start(jobId);
    }
  }

  #start(jobId: string): void {
    const run: Promise<void> = this.#diagnoseStored(jobId)
      .catch(() => {
        // best effort: GET /jobs/:id/diagnosis computes it again on demand
      })
      .then(() => this.#ctx.store.diagnosisQueue.done(jobId, this.#holder))
      .catch(() => {
        // The claim lapses; the job is diagnosed once more, by whoever claims it.
      })
      .finally(() => {
        if (this.#running.get(jobId) === run) this.#running.delete(jobId);
        this.#claim();
      });
    this.#running.set(jobId, run);
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

  /** Failed jobs queued here still waiting for their background diagnosis, and those being diagnosed here now. */
  get pending(): number {
    return this.#writes.size + this.#waiting.size + this.#running.size;
  }

  /**
   * Claims no more (the engine is closed): the queued jobs stay in the store for another process
   * or the next start. Returns the work under way — rows being written, a claim, the running
   * diagnoses — for `close()` to give it its grace.
   */
  stop(): Promise<void>[] {
    this.#waiting.clear();
    return [...this.#writes, ...(this.#claiming ? [this.#claiming] : []), ...this.#running.values()];
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

import type { Cause } from '../diagnosis/index.ts';
import type { CommandReport, MdmListener } from '../mdm/ports.ts';
import type { DeviceRow } from '../store/device-repo.ts';
import type { JobRow } from '../store/job-repo.ts';
import { Activation } from './jobs/activation.ts';
import type { JobStatus } from '../core/jobs.ts';
import type { HaishinEvent } from './events.ts';
import { EngineContext, IN_FLIGHT } from './jobs/context.ts';
import type { EngineOptions } from './jobs/context.ts';
import { DiagnosisQueue } from './jobs/diagnosis-queue.ts';
import { Distributions } from './jobs/distributions.ts';
import type { DistributionInput } from './jobs/distributions.ts';
import { Licences } from './jobs/licences.ts';
import { JobMover } from './jobs/mover.ts';
import { PushPhase } from './jobs/push-phase.ts';
import { DeviceReports } from './jobs/reports.ts';
import { Tick } from './jobs/tick.ts';

/** Statuses whose next step is the tick's (activation, licence phase, retries, push phase). */
const TICK_WORK: readonly JobStatus[] = ['waiting', 'license_assigning', 'retry_waiting', 'push_sending'];

export { DEFAULT_INSTALLS_PER_DEVICE, DEFAULT_TIMINGS } from './jobs/context.ts';
export type { EngineOptions, EngineTimings } from './jobs/context.ts';
export type { DistributionInput };

/**
 * The distribution engine: one job per device × app, moved through the DESIGN §3 state machine
 * by `tick()` (time-driven work, in batches) and by what devices report (the MdmListener).
 * All state is in the store, so a restart resumes where it stopped.
 *
 * The one entry point the app, the API, the CLI and the other engine modules use; the work is done
 * by the parts in `./jobs/`, split by what triggers it — administrators (`distributions.ts`), the
 * tick and its phases (`tick.ts`), devices (`reports.ts`), failures (`diagnosis-queue.ts`) — which
 * share one {@link EngineContext} and move jobs through one {@link JobMover}.
 */
export class DistributionEngine implements MdmListener {
  readonly #ctx: EngineContext;
  readonly #diagnoses: DiagnosisQueue;
  readonly #distributions: Distributions;
  readonly #tick: Tick;
  readonly #reports: DeviceReports;

  constructor(o: EngineOptions) {
    this.#ctx = new EngineContext(o);
    // Through the public methods, as before the split: a wrapper set on the engine sees the calls.
    this.#diagnoses = new DiagnosisQueue(this.#ctx, (job) => this.diagnose(job));
    const mover = new JobMover(this.#ctx, this.#diagnoses);
    this.#distributions = new Distributions(this.#ctx, mover);
    const activation = new Activation(this.#ctx, mover);
    const push = new PushPhase(this.#ctx, mover);
    this.#reports = new DeviceReports(this.#ctx, {
      mover,
      diagnoses: this.#diagnoses,
      distributions: this.#distributions,
      activation,
      push,
    });
    this.#tick = new Tick(this.#ctx, {
      mover,
      activation,
      licences: new Licences(this.#ctx, mover),
      push,
      onReport: (report) => this.onCommandReport(report),
    });
  }

  // ---- the tick (jobs/tick.ts) -----------------------------------------------------------

  /** One pass of every time-driven step; concurrent calls share the running pass. */
  tick(): Promise<void> {
    // Failed jobs queued by a process that died, or left queued by a stop, are claimed here too.
    this.#diagnoses.resume();
    return this.#tick.run();
  }

  /**
   * Stops background work before the store closes: queued diagnoses stay queued in the store (for
   * another process or the next start), the running tick and diagnoses may finish within `graceMs`.
   * Bounded, because a tick can be waiting out Apple's backoff: a stop must not take minutes.
   */
  async close(graceMs = 5_000): Promise<void> {
    this.#ctx.closed = true;
    const diagnosing = this.#diagnoses.stop();
    const running = Promise.all([this.#tick.running, ...diagnosing]).catch(() => undefined);
    let timer: NodeJS.Timeout | undefined;
    // Real time on purpose: how long a shutdown may take is about the process, not the domain clock.
    const grace = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, graceMs);
      timer.unref();
    });
    await Promise.race([running, grace]);
    clearTimeout(timer);
  }

  /**
   * A change another process made (relayed over LISTEN/NOTIFY, decision 0020): whether it leaves
   * work for the tick — a job back to `waiting`, waiting for its licence, a retry or a push, a
   * distribution created — so the process holding the tick runs it now rather than at its next
   * period. A job that left the in-flight statuses there freed a slot of its device: its next job
   * is looked at first here, as for a slot freed in this process.
   */
  changedElsewhere(event: HaishinEvent): boolean {
    if (event.type === 'distribution') return event.change === 'created';
    if (event.type !== 'job') return false;
    const from = event.from as JobStatus | null;
    const to = event.to as JobStatus;
    const freed = from !== null && IN_FLIGHT.includes(from) && !IN_FLIGHT.includes(to);
    if (freed) this.#ctx.freed.add(event.deviceId);
    return freed || TICK_WORK.includes(to);
  }

  // ---- distributions and administrator actions (jobs/distributions.ts) --------------------

  create(input: DistributionInput, createdBy: string): Promise<{ id: string; jobCount: number }> {
    return this.#distributions.create(input, createdBy);
  }

  /**
   * Removes a managed app from one device (the device route's uninstall): an uninstall
   * distribution of one job, its licence reclaimed once the device acknowledged the removal.
   */
  uninstallFromDevice(
    deviceId: string,
    adamId: string,
    createdBy: string,
  ): Promise<{ distributionId: string; jobId: string }> {
    return this.#distributions.uninstallFromDevice(deviceId, adamId, createdBy);
  }

  /** The devices `create()` would make jobs for (preflight predicts on the same set). */
  resolveTargets(targets: DistributionInput['targets']): Promise<DeviceRow[]> {
    return this.#distributions.resolveTargets(targets);
  }

  /** The apps a group's devices get on enrollment: its own list plus every ancestor's. */
  autoDistributionFor(groupId: string): Promise<{ adamId: string; tokenId: string; fromGroupId: string }[]> {
    return this.#distributions.autoDistributionFor(groupId);
  }

  cancelJob(id: string): Promise<JobRow | null> {
    return this.#distributions.cancel(id);
  }

  /** Cancels many jobs; the licences taken for those that never reached their device go back together. */
  cancelJobs(ids: readonly string[]): Promise<number> {
    return this.#distributions.cancelMany(ids);
  }

  /** Ends every unfinished job of a device (deactivated, wiped) with `reason`; how many. */
  cancelDeviceJobs(deviceId: string, reason: string): Promise<number> {
    return this.#distributions.cancelDeviceJobs(deviceId, reason);
  }

  retryJob(id: string): Promise<JobRow | null> {
    return this.#distributions.retry(id);
  }

  /** HAISHIN_OFFLINE_AFTER / HAISHIN_UNENROLLED_AFTER, as the diagnosis reads them. */
  get thresholds(): { offlineAfterMs: number; unenrolledAfterMs: number } {
    return { offlineAfterMs: this.#ctx.t.offlineAfterMs, unenrolledAfterMs: this.#ctx.t.unenrolledAfterMs };
  }

  // ---- diagnosis (jobs/diagnosis-queue.ts) -------------------------------------------------

  /** Gathers what haishin knows about the job, ranks the causes, and keeps the answer on the job. */
  diagnose(job: JobRow): Promise<Cause[]> {
    return this.#diagnoses.diagnose(job);
  }

  /**
   * Diagnoses the job and asks the device for the facts that are missing or stale (see
   * {@link DiagnosisQueue.diagnoseJob}): `askedDevice` is what was sent now, `awaitingDevice`
   * what the job waits for.
   */
  diagnoseJob(job: JobRow): Promise<{ causes: Cause[]; askedDevice: string[]; awaitingDevice: string[] }> {
    return this.#diagnoses.diagnoseJob(job);
  }

  /** Failed jobs still waiting for their background diagnosis (and those being diagnosed now). */
  get pendingDiagnoses(): number {
    return this.#diagnoses.pending;
  }

  // ---- what devices say (jobs/reports.ts) --------------------------------------------------

  onCommandSent(deviceId: string, enrollmentId: string, commandUuid: string): Promise<void> {
    return this.#reports.onCommandSent(deviceId, enrollmentId, commandUuid);
  }

  /** A device that (re-)enrolls gets its group's auto-distribution list, one distribution per token. */
  onTokenUpdate(deviceId: string, enrollmentId: string, first: boolean): Promise<void> {
    return this.#reports.onTokenUpdate(deviceId, enrollmentId, first);
  }

  onCheckOut(deviceId: string): void {
    this.#reports.onCheckOut(deviceId);
  }

  onAuthenticate(deviceId: string, cleared: string[]): Promise<void> {
    return this.#reports.onAuthenticate(deviceId, cleared);
  }

  onCommandReport(report: CommandReport): Promise<void> {
    return this.#reports.onCommandReport(report);
  }
}

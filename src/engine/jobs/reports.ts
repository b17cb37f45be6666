import { DEADLINE_WATCH, isTerminal } from '../../core/jobs.ts';
import type { JobStatus } from '../../core/jobs.ts';
import type { CommandReport, MdmListener } from '../../mdm/ports.ts';
import type { JobRow } from '../../store/job-repo.ts';
import { askInstalledVersions, checkVersion, versionFacts } from '../app-verify.ts';
import { FACT_QUERIES, factsAnswered } from '../ask-device.ts';
import type { Activation } from './activation.ts';
import { IN_FLIGHT } from './context.ts';
import type { EngineContext } from './context.ts';
import type { DiagnosisQueue } from './diagnosis-queue.ts';
import type { Distributions } from './distributions.ts';
import type { JobMover } from './mover.ts';
import type { PushPhase } from './push-phase.ts';

const PUSH_STATES: readonly JobStatus[] = DEADLINE_WATCH.push_deadline;
/** Error codes a retry can cure (DESIGN §6): duplicate request, store busy. */
const TRANSIENT = new Set(['ASDErrorDomain:506']);
const FAILED_MANAGED_STATES = new Set([
  'Failed',
  'UserRejected',
  'ManagementRejected',
  'UserInstalledApp',
  'ManagedButUninstalled',
]);

/**
 * The `MdmListener` side of the engine: jobs moved on what devices report — a command fetched,
 * Acknowledged, Error, NotNow, the ManagedApplicationList (typed by `src/mdm/results.ts`), the
 * queue cleared by a new Authenticate, the answers to the troubleshooter's questions — plus an
 * enrollment's auto-distribution and the device events on the bus. A device whose jobs end while
 * it is in session gets its next install commands in the same session (decision 0017).
 */
export class DeviceReports implements MdmListener {
  readonly #ctx: EngineContext;
  readonly #mover: JobMover;
  readonly #diagnoses: DiagnosisQueue;
  readonly #distributions: Distributions;
  readonly #activation: Activation;
  readonly #push: PushPhase;

  constructor(
    ctx: EngineContext,
    parts: {
      mover: JobMover;
      diagnoses: DiagnosisQueue;
      distributions: Distributions;
      activation: Activation;
      push: PushPhase;
    },
  ) {
    this.#ctx = ctx;
    this.#mover = parts.mover;
    this.#diagnoses = parts.diagnoses;
    this.#distributions = parts.distributions;
    this.#activation = parts.activation;
    this.#push = parts.push;
  }

  async onCommandSent(_deviceId: string, _enrollmentId: string, commandUuid: string): Promise<void> {
    const job = await this.#ctx.store.jobs.byCommand(commandUuid);
    if (!job || !PUSH_STATES.includes(job.status as JobStatus)) return;
    const now = this.#ctx.now();
    await this.#mover.move(job, 'awaiting_response', 'command fetched', {
      session_deadline:
        job.session_deadline ?? new Date(now.getTime() + this.#ctx.t.sessionTimeoutMs).toISOString(),
      next_at: new Date(now.getTime() + this.#ctx.t.silentRepushMs).toISOString(),
    });
  }

  /** A device that (re-)enrolls gets its group's auto-distribution list, one distribution per token. */
  async onTokenUpdate(deviceId: string, enrollmentId: string, first: boolean): Promise<void> {
    if (!first) return;
    const device = await this.#ctx.store.devices.get(deviceId);
    if (!device || enrollmentId !== device.udid) return;
    this.#ctx.deviceChanged(device.id, 'enrolled');
    const apps = await this.#distributions.autoDistributionFor(device.group_id);
    const byToken = new Map<string, string[]>();
    for (const a of apps) byToken.set(a.tokenId, [...(byToken.get(a.tokenId) ?? []), a.adamId]);
    for (const [tokenId, adamIds] of byToken) {
      await this.#distributions.create(
        { kind: 'install', tokenId, adamIds, targets: { deviceIds: [deviceId] }, licenseMode: 'auto' },
        'auto-distribution',
      );
    }
  }

  onCheckOut(deviceId: string): void {
    this.#ctx.deviceChanged(deviceId, 'checked_out');
  }

  async onAuthenticate(_deviceId: string, cleared: string[]): Promise<void> {
    for (const uuid of cleared) {
      const job = await this.#ctx.store.jobs.byCommand(uuid);
      if (job && !isTerminal(job.status as JobStatus) && job.status !== 'retry_waiting') {
        await this.#mover.move(job, 'retry_waiting', 're-Authenticate cleared the queue', {
          command_uuid: null,
          push_deadline: null,
          session_deadline: null,
          next_at: this.#ctx.now().toISOString(),
        });
      }
    }
  }

  async onCommandReport(report: CommandReport): Promise<void> {
    await this.#onReport(report);
    await this.#continueDevice(report.deviceId);
  }

  /**
   * A device in session whose jobs just ended here (verified, failed): its next jobs start now,
   * and the commands of those whose licence is held ride this session — the device fetches them
   * after this answer, no push needed.
   */
  async #continueDevice(deviceId: string): Promise<void> {
    const ctx = this.#ctx;
    if (ctx.closed || !ctx.freed.delete(deviceId)) return;
    const next = await ctx.store.jobs.nextToActivate({
      active: IN_FLIGHT,
      slots: ctx.slots,
      deviceIds: [deviceId],
      limit: ctx.slots,
    });
    if (next.length === 0) return;
    await this.#activation.start(next);
    await this.#push.queueCommands(await ctx.store.jobs.forDevice(deviceId, ['push_sending']), ctx.now());
  }

  async #onReport(report: CommandReport): Promise<void> {
    const ctx = this.#ctx;
    const mover = this.#mover;
    if (report.requestType && FACT_QUERIES.has(report.requestType)) {
      const now = ctx.now();
      const answered = { store: ctx.store, commander: ctx.commander, now };
      for (const jobId of await factsAnswered(answered, report.deviceId, report.requestType))
        this.#diagnoses.queue(jobId);
      return;
    }
    if (report.requestType === 'ManagedApplicationList' && report.status === 'Acknowledged') {
      await this.#onManagedList(report);
      return;
    }
    const found = await ctx.store.jobs.byCommand(report.commandUuid);
    if (!found || isTerminal(found.status as JobStatus)) return;
    let job: JobRow = found;
    if (job.status === 'push_sending' || job.status === 'retry_waiting') {
      // The device answers a command whose hand-over was never recorded (a stop between sending
      // it and recording it): it evidently has it, so the hand-over happened.
      const handedOver = await mover.move(job, 'awaiting_response', 'answer for a hand-over not recorded', {
        session_deadline: new Date(ctx.now().getTime() + ctx.t.sessionTimeoutMs).toISOString(),
        next_at: new Date(ctx.now().getTime() + ctx.t.silentRepushMs).toISOString(),
      });
      if (!handedOver) return;
      job = handedOver;
    }
    const now = ctx.now();
    if (report.status === 'NotNow') {
      // A deferral ends the hand-over: the session clock starts again when the device next fetches
      // (a Shared iPad may defer for hours while a student is logged in, then install).
      await mover.move(job, 'retry_waiting', 'NotNow', {
        session_deadline: null,
        next_at: new Date(now.getTime() + ctx.t.notNowRetryMs).toISOString(),
      });
      return;
    }
    if (report.status === 'Acknowledged') {
      if (job.kind === 'uninstall') {
        await mover.move(job, 'success', 'removed');
        await this.#reclaimAfterUninstall(job);
        return;
      }
      const bundleId =
        report.result.identifier !== null
          ? report.result.identifier
          : (job.bundle_id ?? (await ctx.store.vpp.asset(job.token_id, job.adam_id))?.bundle_id ?? null);
      const moved = await mover.move(
        job,
        'executing',
        report.result.state !== null ? `State ${report.result.state}` : 'acknowledged',
        {
          bundle_id: bundleId,
          next_at: new Date(now.getTime() + ctx.t.verifyEveryMs).toISOString(),
        },
      );
      // Queued now, the check rides the same session: the device gets it after the installs
      // queued with this one, and one list answers for all of them.
      if (moved && bundleId)
        await ctx.commander.verify([{ deviceId: job.device_id, enrollmentId: report.enrollmentId }], now);
      return;
    }
    const chain = report.result.errorChain;
    const rejectionReason = report.result.rejectionReason;
    const error = JSON.stringify({ chain, rejectionReason, status: report.status, raw: report.raw });
    const top = chain[0];
    const transient = chain.some((c) => TRANSIENT.has(`${c.domain}:${c.code}`));
    if (report.status === 'Error' && transient && job.retry_count < ctx.t.maxTransientRetries) {
      const backoff = ctx.t.transientBackoffMs * 2 ** job.retry_count;
      const retryAt = new Date(now.getTime() + backoff);
      // A retry must fit the job's request deadline (decision 0015): one that cannot finish in time
      // would only end as a timeout that hides the transient error, so the job ends with it now.
      // The session deadline does not bound it: the retry is a new hand-over with its own session.
      const miss = retryMissesDeadline(job, retryAt, backoff);
      if (!miss) {
        await mover.move(job, 'retry_waiting', `transient ${top?.domain}:${top?.code}`, {
          error,
          command_uuid: null,
          push_deadline: null,
          session_deadline: null,
          next_at: retryAt.toISOString(),
        });
        return;
      }
      await mover.move(job, 'device_error', 'device.store_transient', {
        error: JSON.stringify({
          chain,
          rejectionReason,
          status: report.status,
          raw: report.raw,
          retryWouldMiss: { ...miss, retryAt: retryAt.toISOString() },
        }),
      });
      return;
    }
    await mover.move(
      job,
      'device_error',
      top ? `${top.domain}:${top.code}` : (rejectionReason ?? report.status),
      {
        error,
      },
    );
  }

  async #onManagedList(report: CommandReport): Promise<void> {
    const ctx = this.#ctx;
    const list = report.result.managedApps ?? new Map();
    const jobs = await ctx.store.jobs.forDevice(report.deviceId, ['executing']);
    // `Managed` is judged with the version the device reports too (decision 0018, app-verify.ts).
    const versions = await versionFacts(ctx.store, report.deviceId, report.commandUuid, jobs);
    let askVersions = false;
    for (const job of jobs) {
      if (!job.bundle_id) continue;
      const status = list.get(job.bundle_id)?.status ?? null;
      if (status === 'Managed') {
        const check = checkVersion(job, versions);
        if (check.kind === 'ask') askVersions = true;
        else if (check.kind === 'older') {
          // Still the old version: verified again next round, until the session or request deadline.
          if (check.installed !== job.installed_version)
            await ctx.store.jobs.patch(job.id, { installed_version: check.installed }, ctx.now());
        } else await this.#mover.move(job, 'success', 'Managed', { installed_version: check.installed });
      } else if (
        status !== null &&
        (FAILED_MANAGED_STATES.has(status) || (status === 'UpdateRejected' && job.is_update === 1))
      ) {
        await this.#mover.move(job, 'device_error', status, {
          error: JSON.stringify({ chain: [], managedStatus: status, raw: report.raw }),
        });
      }
    }
    if (askVersions)
      await askInstalledVersions(
        ctx.commander,
        { deviceId: report.deviceId, enrollmentId: report.enrollmentId },
        ctx.now(),
      );
  }

  /** The licence haishin auto-assigned for the app removed, reclaimed once the device confirmed. */
  async #reclaimAfterUninstall(job: JobRow): Promise<void> {
    const { store, tokens } = this.#ctx;
    const device = await store.devices.get(job.device_id);
    if (!device?.serial_number) return;
    const [licence] = await store.vpp.licenses({
      tokenId: job.token_id,
      adamId: job.adam_id,
      serialNumber: device.serial_number,
      origin: 'auto',
    });
    if (licence && (licence.state === 'assigned' || licence.state === 'assigning')) {
      await tokens.reclaim(job.token_id, job.adam_id, [device.serial_number]);
    }
  }
}

/**
 * The deadline a transient retry at `retryAt` could not finish before, or null when it fits. The
 * retry needs time after it starts (push, fetch, install, verification): as much again as its own
 * backoff is asked for — the device that was busy now is given as long to do the work. Only the
 * request deadline counts: the retry is handed over anew, with a session clock of its own.
 * (`'session'` remains in the type for errors stored by earlier versions.)
 */
function retryMissesDeadline(
  job: JobRow,
  retryAt: Date,
  backoffMs: number,
): { deadline: 'request' | 'session'; at: string } | null {
  const done = retryAt.getTime() + backoffMs;
  const at = job.request_deadline;
  return done > new Date(at).getTime() ? { deadline: 'request', at } : null;
}

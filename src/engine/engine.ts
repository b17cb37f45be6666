import { randomUUID } from 'node:crypto';
import type { Clock } from '../core/clock.ts';
import { ancestry, subtreeIds } from '../core/groups.ts';
import { DEADLINE_WATCH, isTerminal, JOB_STATUSES, transition } from '../core/jobs.ts';
import type { JobStatus } from '../core/jobs.ts';
import { Refusal } from '../core/refusal.ts';
import { effectiveAutoAssign, tokenReachGap } from '../core/tokens.ts';
import { VppError, isTokenKind } from '../apple/vpp/errors.ts';
import { installVppApplication, removeApplication } from '../mdm/commands.ts';
import { parseStoredAnswer } from '../mdm/results.ts';
import type { CommandReport, MdmListener } from '../mdm/ports.ts';
import type { DeviceRow } from '../store/device-repo.ts';
import type { JobPatch, JobRow, LicenceRow } from '../store/job-repo.ts';
import type { Store } from '../store/store.ts';
import type { Pusher } from './push.ts';
import { Commander, PRIORITY, newCommandUuid } from './commander.ts';
import type { DeviceChange, EventBus } from './events.ts';
import type { VppTokens } from './vpp-tokens.ts';
import { causeOfVppErrorKind, diagnose } from '../diagnosis/index.ts';
import type { Cause } from '../diagnosis/index.ts';
import { gatherEvidence } from './evidence.ts';
import { askInstalledVersions, checkVersion, versionFacts } from './app-verify.ts';
import { askDeviceForJob, FACT_QUERIES, factsAnswered, questionsOf } from './ask-device.ts';

export interface EngineTimings {
  pushTimeoutMs: number;
  requestTimeoutMs: number;
  sessionTimeoutMs: number;
  /** How long after a NotNow the job is pushed again. */
  notNowRetryMs: number;
  /** Between ManagedApplicationList checks while an install runs. */
  verifyEveryMs: number;
  /** Transient device errors (ASDErrorDomain 506, store busy) are retried this many times. */
  maxTransientRetries: number;
  transientBackoffMs: number;
  /** HAISHIN_OFFLINE_AFTER / HAISHIN_UNENROLLED_AFTER: when silence counts as offline / gone. */
  offlineAfterMs: number;
  unenrolledAfterMs: number;
  /** Jobs started per tick by the activation (default 500; tests use a handful). */
  activationBatch?: number;
  /** HAISHIN_INSTALLS_PER_DEVICE: jobs of one device in flight at once (default 5). */
  installsPerDevice?: number;
}

export const DEFAULT_TIMINGS: Omit<
  EngineTimings,
  'pushTimeoutMs' | 'requestTimeoutMs' | 'sessionTimeoutMs' | 'offlineAfterMs' | 'unenrolledAfterMs'
> = {
  notNowRetryMs: 5 * 60_000,
  verifyEveryMs: 60_000,
  maxTransientRetries: 3,
  transientBackoffMs: 60_000,
};

export interface DistributionInput {
  kind: 'install' | 'uninstall';
  tokenId: string;
  adamIds: string[];
  targets: { deviceIds?: string[]; groupIds?: string[]; includeSubgroups?: boolean };
  licenseMode: 'auto' | 'manual';
  scheduledAt?: Date | null;
}

/** Statuses in which a job takes one of its device's slots: beyond them, the next one waits. */
const IN_FLIGHT: JobStatus[] = [
  'license_assigning',
  'push_sending',
  'retry_waiting',
  'awaiting_response',
  'executing',
];
const PUSH_STATES: readonly JobStatus[] = DEADLINE_WATCH.push_deadline;
const BATCH = 500;
/** Waiting jobs read per activation pass, in batches: bounded work per tick, see `#toActivate`. */
const ACTIVATION_WINDOW = 20;
export const DEFAULT_INSTALLS_PER_DEVICE = 5;
/** Background diagnoses at once: each is a dozen queries, and MDM requests share the database. */
const DIAGNOSIS_CONCURRENCY = 4;
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
 * The distribution engine: one job per device × app, moved through the DESIGN §3 state machine
 * by `tick()` (time-driven work, in batches) and by what devices report (the MdmListener).
 * All state is in the store, so a restart resumes where it stopped.
 */
export class DistributionEngine implements MdmListener {
  readonly #store: Store;
  readonly #clock: Clock;
  readonly #tokens: VppTokens;
  readonly #pusher: Pusher;
  readonly #t: EngineTimings;
  readonly #events: EventBus | null;
  readonly #commander: Commander;
  readonly #slots: number;
  #ticking: Promise<void> | null = null;
  /** Devices whose job left the in-flight statuses here: their next job is looked at first. */
  readonly #freed = new Set<string>();
  /** Where the activation's round-robin over the waiting jobs goes on (a job seq; 0: the start). */
  #activationCursor = 0;
  /** Where the taking of licences ahead for waiting jobs goes on (a job seq; 0: the start). */
  #licenceAheadCursor = 0;
  #recovered = false;
  #closed = false;
  readonly #diagnosisQueue = new Set<string>();
  readonly #diagnosing = new Set<Promise<void>>();

  constructor(o: {
    store: Store;
    clock: Clock;
    tokens: VppTokens;
    pusher: Pusher;
    /** The one that queues and pushes (shared with the device actions); one of its own if absent. */
    commander?: Commander;
    timings: EngineTimings;
    events?: EventBus;
  }) {
    this.#store = o.store;
    this.#clock = o.clock;
    this.#tokens = o.tokens;
    this.#pusher = o.pusher;
    this.#t = o.timings;
    this.#events = o.events ?? null;
    this.#commander = o.commander ?? new Commander({ queue: o.store.mdm, pusher: o.pusher });
    this.#slots = Math.max(1, o.timings.installsPerDevice ?? DEFAULT_INSTALLS_PER_DEVICE);
  }

  #deviceChanged(deviceId: string, change: DeviceChange): void {
    this.#events?.publish({ type: 'device', deviceId, change, at: this.#clock.now().toISOString() });
  }

  // ---- creating work -------------------------------------------------------------------

  async create(
    input: DistributionInput & {
      /** An app update (decision 0018): the devices already have the apps. */
      update?: boolean;
    },
    createdBy: string,
  ): Promise<{ id: string; jobCount: number }> {
    const token = await this.#tokens.mustGet(input.tokenId);
    const now = this.#clock.now();
    // App updates (decision 0018): an install expects the version the look-up knows now; an update
    // succeeds only at that version, a first install records the version it got.
    const isUpdate = input.kind === 'install' && input.update === true ? 1 : 0;
    const expected = new Map(
      input.kind === 'install'
        ? (await this.#store.appUpdates.versions(input.adamIds)).map((v) => [v.adam_id, v.version])
        : [],
    );
    const groups = await this.#store.groups.all();
    const nodes = groups.map((g) => ({ id: g.id, parentId: g.parent_id }));
    const devices = await this.#targetDevices(input.targets, nodes);
    const shares = await this.#store.vpp.shares();
    const placements = (await this.#store.vpp.allTokens()).map((t) => ({
      tokenId: t.id,
      registeredGroupId: t.group_id,
      sharedGroupIds: shares.filter((s) => s.token_id === t.id).map((s) => s.group_id),
    }));
    const placement = placements.find((p) => p.tokenId === token.id)!;
    const reach = new Map<string, ReturnType<typeof tokenReachGap>>();
    const id = randomUUID();
    const scheduled =
      input.scheduledAt && input.scheduledAt.getTime() > now.getTime() ? input.scheduledAt : null;
    const jobs: Omit<JobRow, 'seq'>[] = [];
    for (const device of devices) {
      for (const adamId of input.adamIds) {
        let status: JobStatus = scheduled ? 'scheduled' : 'waiting';
        let reason: string | null = scheduled ? 'scheduled' : null;
        // Nothing is dropped silently: a target that cannot receive the app gets a job that says why.
        if (!reach.has(device.group_id))
          reach.set(device.group_id, tokenReachGap(nodes, placements, placement, device.group_id));
        const gap = reach.get(device.group_id);
        if (device.status === 'deactivated') [status, reason] = ['cancelled', 'device.deactivated'];
        // No token in the group or above it is `token.not_registered`; one that could be shared,
        // `token.not_shared`. A removal needs no licence: it goes ahead wherever the device is now.
        else if (gap && input.kind === 'install') [status, reason] = ['license_failed', `token.${gap}`];
        jobs.push({
          id: randomUUID(),
          distribution_id: id,
          device_id: device.id,
          adam_id: adamId,
          kind: input.kind,
          token_id: token.id,
          license_mode: input.licenseMode,
          status,
          reason,
          step: null,
          retry_count: 0,
          attempt: 1,
          bundle_id: null,
          command_uuid: null,
          next_at: scheduled ? scheduled.toISOString() : null,
          push_deadline: null,
          session_deadline: null,
          request_deadline: new Date((scheduled ?? now).getTime() + this.#t.requestTimeoutMs).toISOString(),
          error: null,
          diagnosis: null,
          scheduled_at: scheduled ? scheduled.toISOString() : null,
          created_at: now.toISOString(),
          updated_at: now.toISOString(),
          expected_version: expected.get(adamId) ?? null,
          installed_version: null,
          is_update: isUpdate,
        });
      }
    }
    await this.#store.jobs.createDistribution(
      {
        id,
        kind: input.kind,
        token_id: token.id,
        adam_ids: JSON.stringify(input.adamIds),
        targets: JSON.stringify(input.targets),
        license_mode: input.licenseMode,
        scheduled_at: scheduled ? scheduled.toISOString() : null,
        created_by: createdBy,
        created_at: now.toISOString(),
        cancelled_at: null,
        is_update: isUpdate,
      },
      jobs,
      now,
    );
    this.#events?.publish({
      type: 'distribution',
      distributionId: id,
      change: 'created',
      jobCount: jobs.length,
      at: now.toISOString(),
    });
    return { id, jobCount: jobs.length };
  }

  /**
   * Removes a managed app from one device (the device route's uninstall): an uninstall
   * distribution of one job, the same path as any other — `RemoveApplication` through the push
   * phase, the licence haishin auto-assigned reclaimed once the device acknowledged the removal
   * (never before: an app still on the device keeps its licence until it is gone). The job takes
   * the token of the device's licence for the app, an auto-assigned one first.
   */
  async uninstallFromDevice(
    deviceId: string,
    adamId: string,
    createdBy: string,
  ): Promise<{ distributionId: string; jobId: string }> {
    const device = await this.#store.devices.get(deviceId);
    if (!device) throw new Refusal(404, 'device.not_found', { id: deviceId });
    if (device.status === 'deactivated') throw new Refusal(409, 'device.deactivated', { id: device.id });
    const licences = device.serial_number
      ? await this.#store.vpp.licenses({
          serialNumber: device.serial_number,
          adamId,
          states: ['assigned', 'assigning'],
        })
      : [];
    licences.sort((a, b) => Number(b.origin === 'auto') - Number(a.origin === 'auto'));
    let tokenId: string | null = null;
    for (const licence of licences) {
      if ((await this.#store.vpp.asset(licence.token_id, licence.adam_id))?.bundle_id) {
        tokenId = licence.token_id;
        break;
      }
    }
    if (!tokenId) throw new Refusal(409, 'app.bundle_unknown', { adamId });
    const created = await this.create(
      {
        kind: 'uninstall',
        tokenId,
        adamIds: [adamId],
        targets: { deviceIds: [device.id] },
        licenseMode: 'auto',
      },
      createdBy,
    );
    const [job] = await this.#store.jobs.list({ distributionId: created.id, limit: 1 });
    return { distributionId: created.id, jobId: job!.id };
  }

  /** The devices `create()` would make jobs for (preflight predicts on the same set). */
  async resolveTargets(targets: DistributionInput['targets']): Promise<DeviceRow[]> {
    const nodes = (await this.#store.groups.all()).map((g) => ({ id: g.id, parentId: g.parent_id }));
    return this.#targetDevices(targets, nodes);
  }

  /** HAISHIN_OFFLINE_AFTER / HAISHIN_UNENROLLED_AFTER, as the diagnosis reads them. */
  get thresholds(): { offlineAfterMs: number; unenrolledAfterMs: number } {
    return { offlineAfterMs: this.#t.offlineAfterMs, unenrolledAfterMs: this.#t.unenrolledAfterMs };
  }

  async #targetDevices(
    targets: DistributionInput['targets'],
    nodes: { id: string; parentId: string | null }[],
  ): Promise<DeviceRow[]> {
    const byId = new Map<string, DeviceRow>();
    for (const deviceId of targets.deviceIds ?? []) {
      const d = await this.#store.devices.get(deviceId);
      if (!d) throw new Refusal(404, 'device.not_found', { id: deviceId });
      byId.set(d.id, d);
    }
    const groupIds = new Set<string>();
    for (const g of targets.groupIds ?? []) {
      if (!nodes.some((n) => n.id === g)) throw new Refusal(404, 'group.not_found', { id: g });
      for (const id of targets.includeSubgroups ? subtreeIds(nodes, g) : [g]) groupIds.add(id);
    }
    if (groupIds.size > 0) {
      for (const d of await this.#store.devices.list({ groupIds: [...groupIds], limit: 1_000_000 }))
        byId.set(d.id, d);
    }
    return [...byId.values()];
  }

  // ---- moving jobs ---------------------------------------------------------------------

  async #move(
    job: JobRow,
    to: JobStatus,
    reason: string | null,
    patch: JobPatch = {},
  ): Promise<JobRow | null> {
    const now = this.#clock.now();
    const { state, change } = transition(
      { status: job.status as JobStatus, retryCount: job.retry_count, attempt: job.attempt },
      to,
      now,
      reason,
    );
    // A step belongs to the status it was taken in: a change clears it unless it sets one.
    const applied = await this.#store.jobs.apply(job, change, {
      step: null,
      ...patch,
      retry_count: state.retryCount,
      attempt: state.attempt,
    });
    if (applied) {
      this.#events?.publish({
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
      this.#freed.add(job.device_id);
    // A job that fails carries its diagnosis from that moment on (refreshed on demand later).
    if (moved && isTerminal(to) && to !== 'success' && to !== 'cancelled') this.#queueDiagnosis(job.id);
    return moved;
  }

  /**
   * Failed jobs are diagnosed in the background, a few at a time: a mass failure (an APNs outage,
   * a fleet switched off for the weekend) must queue ids, not start a hundred thousand diagnoses
   * at once. Each is read again when its turn comes, so it sees the evidence of that moment.
   */
  #queueDiagnosis(jobId: string): void {
    if (this.#closed) return;
    this.#diagnosisQueue.add(jobId);
    this.#startDiagnoses();
  }

  #startDiagnoses(): void {
    while (this.#diagnosing.size < DIAGNOSIS_CONCURRENCY && this.#diagnosisQueue.size > 0) {
      const jobId = this.#diagnosisQueue.values().next().value!;
      this.#diagnosisQueue.delete(jobId);
      const run: Promise<void> = this.#diagnoseStored(jobId)
        .catch(() => {
          // best effort: GET /jobs/:id/diagnosis computes it again on demand
        })
        .finally(() => {
          this.#diagnosing.delete(run);
          this.#startDiagnoses();
        });
      this.#diagnosing.add(run);
    }
  }

  async #diagnoseStored(jobId: string): Promise<void> {
    const job = await this.#store.jobs.get(jobId);
    if (
      job &&
      isTerminal(job.status as JobStatus) &&
      job.status !== 'success' &&
      job.status !== 'cancelled'
    ) {
      const causes = await this.diagnose(job);
      // Facts that cannot settle the ranking: ask a device that is talking; the answers rank it again.
      await askDeviceForJob(this.#askOptions(false), job, causes);
    }
  }

  /** Failed jobs still waiting for their background diagnosis (and those being diagnosed now). */
  get pendingDiagnoses(): number {
    return this.#diagnosisQueue.size + this.#diagnosing.size;
  }

  /**
   * Stops background work before the store closes: queued diagnoses are dropped (each is computed
   * on demand when someone asks), the running tick and diagnoses may finish within `graceMs`.
   * Bounded, because a tick can be waiting out Apple's backoff: a stop must not take minutes.
   */
  async close(graceMs = 5_000): Promise<void> {
    this.#closed = true;
    this.#diagnosisQueue.clear();
    const running = Promise.all([this.#ticking, ...this.#diagnosing]).catch(() => undefined);
    let timer: NodeJS.Timeout | undefined;
    // Real time on purpose: how long a shutdown may take is about the process, not the domain clock.
    const grace = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, graceMs);
      timer.unref();
    });
    await Promise.race([running, grace]);
    clearTimeout(timer);
  }

  /** One pass of every time-driven step; concurrent calls share the running pass. */
  tick(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    if (!this.#ticking) {
      this.#ticking = this.#tickOnce().finally(() => {
        this.#ticking = null;
      });
    }
    return this.#ticking;
  }

  /**
   * First pass after a (re)start: Apple events still open are tracked again, and every device
   * with work in flight is pushed once — a device cut off mid-session waits for a push. The jobs
   * are read a page at a time, each page with the answers stored for its commands in one query.
   */
  async #recover(): Promise<void> {
    this.#recovered = true;
    await this.#tokens.recover();
    const pushed = new Set<string>();
    for (const status of ['push_sending', 'retry_waiting', 'awaiting_response', 'executing'] as const) {
      for (let after = 0; ;) {
        const page = await this.#store.jobs.withStoredAnswers(status, after, BATCH);
        if (page.length === 0) break;
        after = page.at(-1)!.seq;
        // An answer stored just before the stop, but not yet applied to its job: apply it now.
        for (const row of page) {
          const { answer_enrollment_id: enrollmentId, answer_status, answer_raw, answer_at, ...job } = row;
          if (!job.command_uuid || job.status === 'executing') continue;
          if (!enrollmentId || !answer_status || answer_raw === null || !answer_at) continue;
          const answer = parseStoredAnswer(answer_raw);
          if (!answer) continue;
          await this.onCommandReport({
            deviceId: job.device_id,
            enrollmentId,
            commandUuid: job.command_uuid,
            requestType: job.kind === 'install' ? 'InstallApplication' : 'RemoveApplication',
            status: answer.result.status,
            result: answer.result,
            report: answer.report,
            raw: answer_raw,
            at: new Date(answer_at),
          });
        }
        const devices = [
          ...new Set(page.filter((j) => j.command_uuid && !pushed.has(j.device_id)).map((j) => j.device_id)),
        ];
        for (const d of devices) pushed.add(d);
        await this.#commander.push(devices);
        if (page.length < BATCH) break;
      }
    }
  }

  async #tickOnce(): Promise<void> {
    if (!this.#recovered) await this.#recover();
    const now = this.#clock.now();
    await this.#timeouts(now);
    for (const job of await this.#store.jobs.byStatus(['scheduled'], BATCH, now))
      await this.#move(job, 'waiting', 'schedule reached', { next_at: null });
    await this.#activate();
    await this.#licenceAhead();
    await this.#licensePhase();
    for (const job of await this.#store.jobs.byStatus(['retry_waiting'], BATCH, now)) {
      await this.#move(job, 'push_sending', 'retry', { next_at: null, step: 'push_due' });
    }
    await this.#pushPhase(now);
    await this.#verify(now);
  }

  /**
   * The jobs to start now: the oldest waiting jobs of devices with free slots (up to
   * HAISHIN_INSTALLS_PER_DEVICE in flight each), a bounded batch. First those of devices whose
   * job just ended here (their next apps start at once), then a window of the round-robin over
   * all waiting jobs: each pass reads the next `ACTIVATION_WINDOW × batch` of them after where the
   * last stopped, so a device whose jobs come after thousands of busy devices' jobs is reached
   * within a few passes, and after a restart (or another node's work) nothing waits for a hint.
   */
  async #toActivate(): Promise<JobRow[]> {
    const batch = this.#t.activationBatch ?? BATCH;
    const picked = new Map<string, JobRow>();
    const freed = [...this.#freed].slice(0, batch);
    for (const deviceId of freed) this.#freed.delete(deviceId);
    if (freed.length > 0)
      for (const job of await this.#store.jobs.nextToActivate({
        active: IN_FLIGHT,
        slots: this.#slots,
        deviceIds: freed,
        limit: batch,
      }))
        picked.set(job.id, job);
    if (picked.size < batch) {
      const after = this.#activationCursor;
      const through = await this.#store.jobs.waitingSeqAt(after, batch * ACTIVATION_WINDOW);
      const limit = batch - picked.size;
      const found = await this.#store.jobs.nextToActivate({
        active: IN_FLIGHT,
        slots: this.#slots,
        afterSeq: after,
        throughSeq: through,
        limit,
      });
      for (const job of found) picked.set(job.id, job);
      // A full batch stops at its last job; otherwise the window was read to its end (or to the
      // last waiting job: the next pass starts from the oldest again).
      this.#activationCursor = found.length === limit ? found.at(-1)!.seq : (through ?? 0);
    }
    return [...picked.values()].sort((a, b) => a.seq - b.seq);
  }

  /** Starts the oldest waiting jobs of devices with free slots (see {@link #toActivate}). */
  async #activate(): Promise<void> {
    await this.#start(await this.#toActivate());
  }

  /**
   * Moves waiting jobs on: an uninstall to its command; a manual licence checked against Apple's
   * list; an auto licence checked against the group's auto-assign token, then straight to its
   * command when the licence is already held (taken ahead, or left from an earlier job), else to
   * the licence phase.
   */
  async #start(waiting: readonly JobRow[]): Promise<void> {
    if (waiting.length === 0) return;
    const manualChecks = new Map<string, Set<string> | LicenceFailure>();
    const manualListsReadAt = this.#clock.now();
    const groups = (await this.#store.groups.all()).map((g) => ({ id: g.id, parentId: g.parent_id }));
    const autoAssign = await this.#store.vpp.autoAssignSettings();
    const devices = await this.#store.devices.briefs(waiting.map((j) => j.device_id));
    const licences = new Map(
      (
        await this.#store.jobs.licencePhase(waiting.length, {
          jobIds: waiting.filter((j) => j.kind === 'install' && j.license_mode === 'auto').map((j) => j.id),
        })
      ).map((row) => [row.id, row.licence_state]),
    );
    for (const job of waiting) {
      const device = devices.get(job.device_id);
      if (!device) continue;
      if (job.kind === 'uninstall') {
        await this.#move(job, 'push_sending', null);
        continue;
      }
      if (job.license_mode === 'manual') {
        const key = `${job.token_id}\u0000${job.adam_id}`;
        let assigned = manualChecks.get(key);
        if (!assigned) {
          try {
            assigned = await this.#tokens.appleAssignedSerials(job.token_id, job.adam_id);
          } catch (err) {
            // Apple's list could not be read: say why (a dead token, Apple busy), not "no licence".
            assigned = licenceFailure(err);
          }
          manualChecks.set(key, assigned);
        }
        if (!(assigned instanceof Set)) {
          await this.#move(
            job,
            'license_failed',
            assigned.reason,
            assigned.error ? { error: assigned.error } : {},
          );
          continue;
        }
        if (device.serial_number && assigned.has(device.serial_number))
          await this.#move(job, 'push_sending', 'licence assigned (manual)');
        else if (
          device.serial_number &&
          (await this.#assigningNow(job, device.serial_number, manualListsReadAt))
        )
          continue;
        else await this.#move(job, 'license_failed', 'license.not_assigned');
        continue;
      }
      const effective = effectiveAutoAssign(groups, autoAssign, device.group_id);
      if (effective.tokenId !== job.token_id) {
        await this.#move(
          job,
          'license_failed',
          effective.inheritedFrom && effective.tokenId
            ? 'autoassign.inherited_only'
            : 'autoassign.token_misconfigured',
        );
        continue;
      }
      if (licences.get(job.id) === 'assigned') await this.#move(job, 'push_sending', 'licence assigned');
      else await this.#move(job, 'license_assigning', null);
    }
  }

  /**
   * Takes the licences of waiting auto-mode installs ahead, while the jobs wait for a slot on
   * their device: a device with twenty apps to install gets its twenty licences in the same few
   * batched calls, and each job goes to its install command as soon as a slot frees — in the
   * same session when the device just reported others finished. A job whose licence Apple
   * refuses fails now; one outside its group's auto-assign token is left to the activation,
   * which says why. Bounded per tick, resumed where it stopped.
   */
  async #licenceAhead(): Promise<void> {
    const limit = BATCH * 4;
    const rows = await this.#store.jobs.licenceAhead(this.#licenceAheadCursor, limit);
    this.#licenceAheadCursor = rows.length === limit ? rows.at(-1)!.seq : 0;
    if (rows.length === 0) return;
    const groups = (await this.#store.groups.all()).map((g) => ({ id: g.id, parentId: g.parent_id }));
    const autoAssign = await this.#store.vpp.autoAssignSettings();
    const eligible = rows.filter(
      (row) => effectiveAutoAssign(groups, autoAssign, row.device_group_id).tokenId === row.token_id,
    );
    await this.#requestLicences(eligible);
  }

  /**
   * A manual assignment haishin sent and Apple has not confirmed yet: wait for it rather than fail.
   * A licence confirmed after Apple's list was read (`listReadAt`) counts too: the next tick's
   * list will show it.
   */
  async #assigningNow(job: JobRow, serial: string, listReadAt: Date): Promise<boolean> {
    const [licence] = await this.#store.vpp.licenses({
      tokenId: job.token_id,
      adamId: job.adam_id,
      serialNumber: serial,
    });
    if (licence?.state === 'assigning') return true;
    return licence?.state === 'assigned' && new Date(licence.updated_at).getTime() >= listReadAt.getTime();
  }

  /** Batches licence assignment per (token, app); jobs whose serial already holds one skip ahead. */
  async #licensePhase(): Promise<void> {
    await this.#requestLicences(await this.#store.jobs.licencePhase(BATCH * 4));
  }

  /**
   * For jobs in `license_assigning`, and waiting jobs whose licence is taken ahead: a licence
   * held moves the job on (a waiting one stays waiting for its slot), one Apple refused fails
   * it, the others are asked of Apple in one call per (token, app) and marked `licence_requested`.
   */
  async #requestLicences(rows: readonly LicenceRow[]): Promise<void> {
    const submit = new Map<
      string,
      { tokenId: string; adamId: string; items: { job: JobRow; serial: string; groupId: string }[] }
    >();
    const now = this.#clock.now();
    const requested: string[] = [];
    for (const row of rows) {
      const {
        serial,
        device_group_id: groupId,
        licence_state: state,
        licence_error: errorCode,
        ...job
      } = row;
      const ahead = job.status === 'waiting';
      if (!serial) {
        // A waiting job is failed by its activation, with the same words.
        if (!ahead) await this.#move(job, 'license_failed', 'device has no serial number');
        continue;
      }
      if (state === 'assigned') {
        if (ahead) requested.push(job.id);
        else await this.#move(job, 'push_sending', 'licence assigned');
        continue;
      }
      const wasRequested = job.step === 'licence_requested';
      if (state === 'failed' && wasRequested) {
        await this.#move(job, 'license_failed', `license ${errorCode ?? 'refused'}`, {
          error: JSON.stringify({ errorNumber: errorCode }),
        });
        continue;
      }
      if (wasRequested) continue;
      // A reclaim still in flight (reclaim_and_reassign): a new assignment sent now could cross it at Apple.
      if (state === 'reclaiming') continue;
      if (state === 'assigning') {
        // Already asked for (a previous pass or process got this far): wait for Apple's answer.
        requested.push(job.id);
        continue;
      }
      const key = `${job.token_id}\u0000${job.adam_id}`;
      const entry = submit.get(key) ?? { tokenId: job.token_id, adamId: job.adam_id, items: [] };
      entry.items.push({ job, serial, groupId });
      submit.set(key, entry);
    }
    await this.#store.jobs.patchMany(requested, { step: 'licence_requested' }, now);
    for (const entry of submit.values()) {
      // One call for the whole batch (the client splits at Apple's limits); each licence remembers its group.
      const via = new Map(entry.items.map((i) => [i.serial, i.groupId]));
      let failedSerials = new Map<string, LicenceFailure>();
      try {
        const change = await this.#tokens.assign(
          entry.tokenId,
          entry.adamId,
          entry.items.map((i) => i.serial),
          'auto',
          via,
        );
        failedSerials = new Map(
          change.failed.flatMap((f) => {
            const failure = {
              reason: vppFailureReason(f.kind, f.errorNumber),
              error: JSON.stringify({ kind: f.kind, errorNumber: f.errorNumber }),
            };
            return f.serials.map((s) => [s, failure] as const);
          }),
        );
      } catch (err) {
        const failure = licenceFailure(err);
        failedSerials = new Map(entry.items.map((i) => [i.serial, failure]));
      }
      const now = this.#clock.now();
      const asked: string[] = [];
      for (const item of entry.items) {
        const failure = failedSerials.get(item.serial);
        if (failure)
          await this.#move(
            item.job,
            'license_failed',
            failure.reason,
            failure.error ? { error: failure.error } : {},
          );
        else asked.push(item.job.id);
      }
      await this.#store.jobs.patchMany(asked, { step: 'licence_requested' }, now);
    }
  }

  /** Queues the install/remove command of each job that has none yet, then pushes the devices once. */
  async #pushPhase(now: Date): Promise<void> {
    const jobs = await this.#store.jobs.byStatus(['push_sending'], BATCH * 2);
    const toPush = await this.#queueCommands(jobs, now);
    // Jobs back from retry_waiting keep their queued command: the device only needs a push —
    // one per retry, so the step is cleared once it is sent (else every tick would push again).
    // (A job that had to queue a new command above was pushed with it: attachCommand cleared it.)
    const due = jobs.filter((job) => job.step === 'push_due' && job.command_uuid);
    for (const job of due) toPush.add(job.device_id);
    await this.#store.jobs.patchMany(
      due.map((j) => j.id),
      { step: null },
      now,
    );
    await this.#commander.push(toPush);
  }

  /**
   * Queues the install or remove command of each job in `push_sending` that has none yet, bound to
   * the job in one transaction; the devices that got one. The caller pushes (or not: a device in
   * session fetches them next).
   */
  async #queueCommands(jobs: readonly JobRow[], now: Date): Promise<Set<string>> {
    const queued = new Set<string>();
    const devices = await this.#store.devices.briefs(
      jobs.filter((j) => !j.command_uuid).map((j) => j.device_id),
    );
    for (const job of jobs) {
      if (job.command_uuid || job.status !== 'push_sending') continue;
      const device = devices.get(job.device_id);
      if (!device) continue;
      const uuid = newCommandUuid();
      let command;
      if (job.kind === 'install') {
        command = installVppApplication(uuid, { adamId: Number(job.adam_id) });
      } else {
        const asset = await this.#store.vpp.asset(job.token_id, job.adam_id);
        const bundleId = job.bundle_id ?? asset?.bundle_id;
        if (!bundleId) {
          await this.#move(job, 'device_error', 'app.bundle_unknown');
          continue;
        }
        command = removeApplication(uuid, bundleId);
      }
      const deadline = job.push_deadline ?? new Date(now.getTime() + this.#t.pushTimeoutMs).toISOString();
      if (!(await this.#store.jobs.attachCommand(job, device.udid, command, PRIORITY.install, deadline, now)))
        continue;
      queued.add(device.id);
    }
    return queued;
  }

  /**
   * Asks each device with installs to check whether they finished: one ManagedApplicationList per
   * device for all its executing jobs (none queued while one is pending), and a push.
   */
  async #verify(now: Date): Promise<void> {
    const due = await this.#store.jobs.byStatus(['executing'], BATCH, now);
    const briefs = await this.#store.devices.briefs(due.map((j) => j.device_id));
    const recipients = [...briefs.values()].map((d) => ({ deviceId: d.id, enrollmentId: d.udid }));
    await this.#commander.verify(recipients, now);
    await this.#store.jobs.patchMany(
      due.map((j) => j.id),
      { next_at: new Date(now.getTime() + this.#t.verifyEveryMs).toISOString() },
      now,
    );
    await this.#commander.push(recipients.map((r) => r.deviceId));
  }

  async #timeouts(now: Date): Promise<void> {
    for (const job of await this.#store.jobs.overdue('push_deadline', now, BATCH)) {
      await this.#dropCommand(job);
      await this.#move(job, 'push_timeout', 'push timeout');
    }
    for (const job of await this.#store.jobs.overdue('session_deadline', now, BATCH)) {
      await this.#dropCommand(job);
      await this.#move(job, 'session_timeout', 'session timeout');
    }
    for (const job of await this.#store.jobs.overdue('request_deadline', now, BATCH)) {
      await this.#dropCommand(job);
      await this.#move(job, 'request_timeout', 'request timeout');
    }
  }

  async #dropCommand(job: JobRow): Promise<void> {
    await this.#commander.drop([job.command_uuid]);
  }

  // ---- what devices say ----------------------------------------------------------------

  async onCommandSent(_deviceId: string, _enrollmentId: string, commandUuid: string): Promise<void> {
    const job = await this.#store.jobs.byCommand(commandUuid);
    if (!job || !PUSH_STATES.includes(job.status as JobStatus)) return;
    const now = this.#clock.now();
    await this.#move(job, 'awaiting_response', 'command fetched', {
      session_deadline:
        job.session_deadline ?? new Date(now.getTime() + this.#t.sessionTimeoutMs).toISOString(),
    });
  }

  /** The apps a group's devices get on enrollment: its own list plus every ancestor's. */
  async autoDistributionFor(
    groupId: string,
  ): Promise<{ adamId: string; tokenId: string; fromGroupId: string }[]> {
    const groups = (await this.#store.groups.all()).map((g) => ({ id: g.id, parentId: g.parent_id }));
    const chain = ancestry(groups, groupId);
    const entries = await this.#store.vpp.autoDistributions();
    const seen = new Set<string>();
    const out: { adamId: string; tokenId: string; fromGroupId: string }[] = [];
    // Nearest group first: a subgroup's choice of token for an app wins over an ancestor's.
    for (const id of chain) {
      for (const e of entries.filter((x) => x.group_id === id)) {
        if (seen.has(e.adam_id)) continue;
        seen.add(e.adam_id);
        out.push({ adamId: e.adam_id, tokenId: e.token_id, fromGroupId: id });
      }
    }
    return out;
  }

  /** A device that (re-)enrolls gets its group's auto-distribution list, one distribution per token. */
  async onTokenUpdate(deviceId: string, enrollmentId: string, first: boolean): Promise<void> {
    if (!first) return;
    const device = await this.#store.devices.get(deviceId);
    if (!device || enrollmentId !== device.udid) return;
    this.#deviceChanged(device.id, 'enrolled');
    const apps = await this.autoDistributionFor(device.group_id);
    const byToken = new Map<string, string[]>();
    for (const a of apps) byToken.set(a.tokenId, [...(byToken.get(a.tokenId) ?? []), a.adamId]);
    for (const [tokenId, adamIds] of byToken) {
      await this.create(
        { kind: 'install', tokenId, adamIds, targets: { deviceIds: [deviceId] }, licenseMode: 'auto' },
        'auto-distribution',
      );
    }
  }

  onCheckOut(deviceId: string): void {
    this.#deviceChanged(deviceId, 'checked_out');
  }

  async onAuthenticate(_deviceId: string, cleared: string[]): Promise<void> {
    for (const uuid of cleared) {
      const job = await this.#store.jobs.byCommand(uuid);
      if (job && !isTerminal(job.status as JobStatus) && job.status !== 'retry_waiting') {
        await this.#move(job, 'retry_waiting', 're-Authenticate cleared the queue', {
          command_uuid: null,
          push_deadline: null,
          session_deadline: null,
          next_at: this.#clock.now().toISOString(),
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
    if (this.#closed || !this.#freed.delete(deviceId)) return;
    const next = await this.#store.jobs.nextToActivate({
      active: IN_FLIGHT,
      slots: this.#slots,
      deviceIds: [deviceId],
      limit: this.#slots,
    });
    if (next.length === 0) return;
    await this.#start(next);
    await this.#queueCommands(
      await this.#store.jobs.forDevice(deviceId, ['push_sending']),
      this.#clock.now(),
    );
  }

  async #onReport(report: CommandReport): Promise<void> {
    if (report.requestType && FACT_QUERIES.has(report.requestType)) {
      const now = this.#clock.now();
      const answered = { store: this.#store, pusher: this.#pusher, now };
      for (const jobId of await factsAnswered(answered, report.deviceId, report.requestType))
        this.#queueDiagnosis(jobId);
      return;
    }
    if (report.requestType === 'ManagedApplicationList' && report.status === 'Acknowledged') {
      await this.#onManagedList(report);
      return;
    }
    const found = await this.#store.jobs.byCommand(report.commandUuid);
    if (!found || isTerminal(found.status as JobStatus)) return;
    let job: JobRow = found;
    if (job.status === 'push_sending' || job.status === 'retry_waiting') {
      // The device answers a command whose hand-over was never recorded (a stop between sending
      // it and recording it): it evidently has it, so the hand-over happened.
      const handedOver = await this.#move(job, 'awaiting_response', 'answer for a hand-over not recorded', {
        session_deadline: new Date(this.#clock.now().getTime() + this.#t.sessionTimeoutMs).toISOString(),
      });
      if (!handedOver) return;
      job = handedOver;
    }
    const now = this.#clock.now();
    if (report.status === 'NotNow') {
      // A deferral ends the hand-over: the session clock starts again when the device next fetches
      // (a Shared iPad may defer for hours while a student is logged in, then install).
      await this.#move(job, 'retry_waiting', 'NotNow', {
        session_deadline: null,
        next_at: new Date(now.getTime() + this.#t.notNowRetryMs).toISOString(),
      });
      return;
    }
    if (report.status === 'Acknowledged') {
      if (job.kind === 'uninstall') {
        await this.#move(job, 'success', 'removed');
        await this.#reclaimAfterUninstall(job);
        return;
      }
      const bundleId =
        report.result.identifier !== null
          ? report.result.identifier
          : (job.bundle_id ?? (await this.#store.vpp.asset(job.token_id, job.adam_id))?.bundle_id ?? null);
      const moved = await this.#move(
        job,
        'executing',
        report.result.state !== null ? `State ${report.result.state}` : 'acknowledged',
        {
          bundle_id: bundleId,
          next_at: new Date(now.getTime() + this.#t.verifyEveryMs).toISOString(),
        },
      );
      // Queued now, the check rides the same session: the device gets it after the installs
      // queued with this one, and one list answers for all of them.
      if (moved && bundleId)
        await this.#commander.verify([{ deviceId: job.device_id, enrollmentId: report.enrollmentId }], now);
      return;
    }
    const chain = report.result.errorChain;
    const rejectionReason = report.result.rejectionReason;
    const error = JSON.stringify({ chain, rejectionReason, status: report.status, raw: report.raw });
    const top = chain[0];
    const transient = chain.some((c) => TRANSIENT.has(`${c.domain}:${c.code}`));
    if (report.status === 'Error' && transient && job.retry_count < this.#t.maxTransientRetries) {
      const backoff = this.#t.transientBackoffMs * 2 ** job.retry_count;
      const retryAt = new Date(now.getTime() + backoff);
      // A retry must fit the job's request deadline (decision 0015): one that cannot finish in time
      // would only end as a timeout that hides the transient error, so the job ends with it now.
      // The session deadline does not bound it: the retry is a new hand-over with its own session.
      const miss = retryMissesDeadline(job, retryAt, backoff);
      if (!miss) {
        await this.#move(job, 'retry_waiting', `transient ${top?.domain}:${top?.code}`, {
          error,
          command_uuid: null,
          push_deadline: null,
          session_deadline: null,
          next_at: retryAt.toISOString(),
        });
        return;
      }
      await this.#move(job, 'device_error', 'device.store_transient', {
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
    await this.#move(
      job,
      'device_error',
      top ? `${top.domain}:${top.code}` : (rejectionReason ?? report.status),
      { error },
    );
  }

  async #onManagedList(report: CommandReport): Promise<void> {
    const list = report.result.managedApps ?? new Map();
    const jobs = await this.#store.jobs.forDevice(report.deviceId, ['executing']);
    // `Managed` is judged with the version the device reports too (decision 0018, app-verify.ts).
    const versions = await versionFacts(this.#store, report.deviceId, report.commandUuid, jobs);
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
            await this.#store.jobs.patch(job.id, { installed_version: check.installed }, this.#clock.now());
        } else await this.#move(job, 'success', 'Managed', { installed_version: check.installed });
      } else if (
        status !== null &&
        (FAILED_MANAGED_STATES.has(status) || (status === 'UpdateRejected' && job.is_update === 1))
      ) {
        await this.#move(job, 'device_error', status, {
          error: JSON.stringify({ chain: [], managedStatus: status, raw: report.raw }),
        });
      }
    }
    if (askVersions)
      await askInstalledVersions(
        this.#commander,
        { deviceId: report.deviceId, enrollmentId: report.enrollmentId },
        this.#clock.now(),
      );
  }

  async #reclaimAfterUninstall(job: JobRow): Promise<void> {
    const device = await this.#store.devices.get(job.device_id);
    if (!device?.serial_number) return;
    const [licence] = await this.#store.vpp.licenses({
      tokenId: job.token_id,
      adamId: job.adam_id,
      serialNumber: device.serial_number,
      origin: 'auto',
    });
    if (licence && (licence.state === 'assigned' || licence.state === 'assigning')) {
      await this.#tokens.reclaim(job.token_id, job.adam_id, [device.serial_number]);
    }
  }

  // ---- diagnosis -----------------------------------------------------------------------

  /** Gathers what haishin knows about the job, ranks the causes, and keeps the answer on the job. */
  async diagnose(job: JobRow): Promise<Cause[]> {
    const now = this.#clock.now();
    const evidence = await gatherEvidence(this.#store, job, now, {
      offlineAfterMs: this.#t.offlineAfterMs,
      unenrolledAfterMs: this.#t.unenrolledAfterMs,
    });
    const causes = diagnose(evidence);
    // Re-read: questions to the device recorded meanwhile outlive a new ranking (src/engine/ask-device.ts).
    const questions = questionsOf((await this.#store.jobs.get(job.id))?.diagnosis ?? null);
    await this.#store.jobs.patch(
      job.id,
      { diagnosis: JSON.stringify({ at: now.toISOString(), causes, ...questions }) },
      now,
    );
    return causes;
  }

  #askOptions(onDemand: boolean) {
    return {
      store: this.#store,
      pusher: this.#pusher,
      now: this.#clock.now(),
      offlineAfterMs: this.#t.offlineAfterMs,
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
    const causes = await this.diagnose(job);
    const { asked, awaiting } = await askDeviceForJob(this.#askOptions(true), job, causes);
    return { causes, askedDevice: asked, awaitingDevice: awaiting };
  }

  // ---- administrator actions -----------------------------------------------------------

  async cancelJob(id: string): Promise<JobRow | null> {
    const job = await this.#store.jobs.get(id);
    if (!job || isTerminal(job.status as JobStatus)) return job ?? null;
    await this.#dropCommand(job);
    return this.#move(job, 'cancelled', 'admin');
  }

  /** Ends every unfinished job of a device (deactivated, wiped) with `reason`; how many. */
  async cancelDeviceJobs(deviceId: string, reason: string): Promise<number> {
    const open = JOB_STATUSES.filter((s) => !isTerminal(s));
    let cancelled = 0;
    for (const job of await this.#store.jobs.forDevice(deviceId, open)) {
      await this.#dropCommand(job);
      if (await this.#move(job, 'cancelled', reason)) cancelled++;
    }
    return cancelled;
  }

  async retryJob(id: string): Promise<JobRow | null> {
    const job = await this.#store.jobs.get(id);
    if (!job || !isTerminal(job.status as JobStatus) || job.status === 'success') return job ?? null;
    const now = this.#clock.now();
    return this.#move(job, 'waiting', 'admin retry', {
      command_uuid: null,
      push_deadline: null,
      session_deadline: null,
      next_at: null,
      error: null,
      request_deadline: new Date(now.getTime() + this.#t.requestTimeoutMs).toISOString(),
    });
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

/** Why a licence could not be had, as the job's reason, and Apple's answer for the job's error. */
interface LicenceFailure {
  reason: string;
  error: string | null;
}

/**
 * The reason a job gets when Apple refuses its licence: for a token-level error the token's cause
 * (`token.revoked`, …) — the number says which, and no other licence of the token can succeed
 * either —; otherwise Apple's number (`license 9709`, read by the diagnosis), or the kind's cause.
 */
function vppFailureReason(kind: string, errorNumber: number | null): string {
  if (isTokenKind(kind as VppError['kind'])) return causeOfVppErrorKind(kind);
  return errorNumber !== null ? `license ${errorNumber}` : causeOfVppErrorKind(kind);
}

function licenceFailure(err: unknown): LicenceFailure {
  if (err instanceof Refusal) return { reason: err.code, error: null };
  if (!(err instanceof VppError)) return { reason: 'license.apple_refused', error: null };
  return {
    reason: vppFailureReason(err.kind, err.errorNumber ?? null),
    error: JSON.stringify({
      kind: err.kind,
      errorNumber: err.errorNumber ?? null,
      errorMessage: err.errorMessage ?? null,
      httpStatus: err.httpStatus,
    }),
  };
}

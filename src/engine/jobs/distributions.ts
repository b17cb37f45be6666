import { randomUUID } from 'node:crypto';
import { ancestry, commonAncestor, subtreeIds } from '../../core/groups.ts';
import type { GroupNode } from '../../core/groups.ts';
import { isTerminal, JOB_STATUSES } from '../../core/jobs.ts';
import type { JobStatus } from '../../core/jobs.ts';
import { Refusal } from '../../core/refusal.ts';
import { tokenReachGap } from '../../core/tokens.ts';
import type { DeviceRow } from '../../store/device-repo.ts';
import type { JobRow } from '../../store/job-repo.ts';
import type { EngineContext } from './context.ts';
import type { JobMover } from './mover.ts';

export interface DistributionInput {
  kind: 'install' | 'uninstall';
  tokenId: string;
  adamIds: string[];
  targets: { deviceIds?: string[]; groupIds?: string[]; includeSubgroups?: boolean };
  licenseMode: 'auto' | 'manual';
  scheduledAt?: Date | null;
  /** An app update (decision 0018): the devices already have the apps. */
  update?: boolean;
}

/**
 * What administrators (and enrollments) ask of the engine: a distribution becomes one job per
 * device × app, each created in the status it can start from (or failed at once, saying why);
 * a device's removal of one app; the targets and the auto-distribution list as `create()` reads
 * them; and the administrator's moves of existing jobs (cancel, retry, cancel a device's jobs).
 */
/** Statuses in which an install's command has not reached the device (nothing to license yet). */
const BEFORE_THE_DEVICE: ReadonlySet<JobStatus> = new Set([
  'waiting',
  'scheduled',
  'license_assigning',
  'push_sending',
]);

export class Distributions {
  readonly #ctx: EngineContext;
  readonly #mover: JobMover;

  constructor(ctx: EngineContext, mover: JobMover) {
    this.#ctx = ctx;
    this.#mover = mover;
  }

  async create(input: DistributionInput, createdBy: string): Promise<{ id: string; jobCount: number }> {
    const { store } = this.#ctx;
    const token = await this.#ctx.tokens.mustGet(input.tokenId);
    const now = this.#ctx.now();
    // App updates (decision 0018): an install expects the version the look-up knows now; an update
    // succeeds only at that version, a first install records the version it got.
    const isUpdate = input.kind === 'install' && input.update === true ? 1 : 0;
    const expected = new Map(
      input.kind === 'install'
        ? (await store.appUpdates.versions(input.adamIds)).map((v) => [v.adam_id, v.version])
        : [],
    );
    const nodes = await this.#ctx.groupNodes();
    const devices = await this.#targetDevices(input.targets, nodes);
    const shares = await store.vpp.shares();
    const placements = (await store.vpp.allTokens()).map((t) => ({
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
          request_deadline: new Date(
            (scheduled ?? now).getTime() + this.#ctx.t.requestTimeoutMs,
          ).toISOString(),
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
    await store.jobs.createDistribution(
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
        // Its place in the tree: the smallest group holding every target (decision 0029).
        group_id: commonAncestor(nodes, [
          ...devices.map((d) => d.group_id),
          ...(input.targets.groupIds ?? []),
        ]),
      },
      jobs,
      now,
    );
    this.#ctx.events?.publish({
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
    const { store } = this.#ctx;
    const device = await store.devices.get(deviceId);
    if (!device) throw new Refusal(404, 'device.not_found', { id: deviceId });
    if (device.status === 'deactivated') throw new Refusal(409, 'device.deactivated', { id: device.id });
    const licences = device.serial_number
      ? await store.vpp.licenses({
          serialNumber: device.serial_number,
          adamId,
          states: ['assigned', 'assigning'],
        })
      : [];
    licences.sort((a, b) => Number(b.origin === 'auto') - Number(a.origin === 'auto'));
    let tokenId: string | null = null;
    for (const licence of licences) {
      if ((await store.vpp.asset(licence.token_id, licence.adam_id))?.bundle_id) {
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
    const [job] = await store.jobs.list({ distributionId: created.id, limit: 1 });
    return { distributionId: created.id, jobId: job!.id };
  }

  /** The devices `create()` would make jobs for (preflight predicts on the same set). */
  async resolveTargets(targets: DistributionInput['targets']): Promise<DeviceRow[]> {
    return this.#targetDevices(targets, await this.#ctx.groupNodes());
  }

  async #targetDevices(targets: DistributionInput['targets'], nodes: GroupNode[]): Promise<DeviceRow[]> {
    const { store } = this.#ctx;
    const byId = new Map<string, DeviceRow>();
    for (const deviceId of targets.deviceIds ?? []) {
      const d = await store.devices.get(deviceId);
      if (!d) throw new Refusal(404, 'device.not_found', { id: deviceId });
      byId.set(d.id, d);
    }
    const groupIds = new Set<string>();
    for (const g of targets.groupIds ?? []) {
      if (!nodes.some((n) => n.id === g)) throw new Refusal(404, 'group.not_found', { id: g });
      for (const id of targets.includeSubgroups ? subtreeIds(nodes, g) : [g]) groupIds.add(id);
    }
    if (groupIds.size > 0) {
      for (const d of await store.devices.list({ groupIds: [...groupIds], limit: 1_000_000 }))
        byId.set(d.id, d);
    }
    return [...byId.values()];
  }

  /** The apps a group's devices get on enrollment: its own list plus every ancestor's. */
  async autoDistributionFor(
    groupId: string,
  ): Promise<{ adamId: string; tokenId: string; fromGroupId: string }[]> {
    const chain = ancestry(await this.#ctx.groupNodes(), groupId);
    const entries = await this.#ctx.store.vpp.autoDistributions();
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

  async cancel(id: string): Promise<JobRow | null> {
    const { job, cancelled, giveBack } = await this.#cancelOne(id);
    if (giveBack) await this.#giveBackLicences([giveBack]);
    return cancelled ?? job;
  }

  /** Cancels each unfinished job of `ids`; licences are given back in one call per app. How many moved. */
  async cancelMany(ids: readonly string[]): Promise<number> {
    let moved = 0;
    const giveBack: JobRow[] = [];
    for (const id of ids) {
      const one = await this.#cancelOne(id);
      if (one.cancelled) moved++;
      if (one.giveBack) giveBack.push(one.giveBack);
    }
    await this.#giveBackLicences(giveBack);
    return moved;
  }

  async #cancelOne(
    id: string,
  ): Promise<{ job: JobRow | null; cancelled: JobRow | null; giveBack: JobRow | null }> {
    const job = (await this.#ctx.store.jobs.get(id)) ?? null;
    if (!job || isTerminal(job.status as JobStatus)) return { job, cancelled: null, giveBack: null };
    await this.#mover.dropCommand(job);
    const cancelled = await this.#mover.move(job, 'cancelled', 'admin');
    const beforeTheDevice = job.kind === 'install' && BEFORE_THE_DEVICE.has(job.status as JobStatus);
    return { job, cancelled, giveBack: cancelled && beforeTheDevice ? job : null };
  }

  /**
   * Jobs cancelled before their command reached the device leave no app to license: the licence
   * haishin assigned automatically since such a job was made goes back to the pool — unless another
   * job of the same app on that device is still open or succeeded (the licence is theirs too). A
   * licence Apple is still assigning is left alone (its event settles it); so are the licences of
   * an app if Apple refuses the reclaim now (the cancel stands; the reclaim remedy remains).
   */
  async #giveBackLicences(jobs: readonly JobRow[]): Promise<void> {
    const { store, tokens } = this.#ctx;
    const byApp = new Map<string, { tokenId: string; adamId: string; serials: string[] }>();
    for (const job of jobs) {
      const device = await store.devices.get(job.device_id);
      if (!device?.serial_number) continue;
      const others = await store.jobs.forDevice(job.device_id, [...JOB_STATUSES]);
      const stillNeeded = others.some(
        (o) =>
          o.id !== job.id &&
          o.token_id === job.token_id &&
          o.adam_id === job.adam_id &&
          (o.status === 'success' || !isTerminal(o.status as JobStatus)),
      );
      if (stillNeeded) continue;
      const [licence] = await store.vpp.licenses({
        tokenId: job.token_id,
        adamId: job.adam_id,
        serialNumber: device.serial_number,
        origin: 'auto',
        states: ['assigned'],
        updatedSince: new Date(job.created_at),
      });
      if (!licence) continue;
      const key = `${job.token_id}\u0000${job.adam_id}`;
      const entry = byApp.get(key) ?? { tokenId: job.token_id, adamId: job.adam_id, serials: [] };
      entry.serials.push(device.serial_number);
      byApp.set(key, entry);
    }
    for (const { tokenId, adamId, serials } of byApp.values()) {
      try {
        await tokens.reclaim(tokenId, adamId, serials);
      } catch {
        // Apple refused or was out of reach: the licences show as assigned, the reclaim remedy remains.
      }
    }
  }

  /** Ends every unfinished job of a device (deactivated, wiped) with `reason`; how many. */
  async cancelDeviceJobs(deviceId: string, reason: string): Promise<number> {
    const open = JOB_STATUSES.filter((s) => !isTerminal(s));
    let cancelled = 0;
    for (const job of await this.#ctx.store.jobs.forDevice(deviceId, open)) {
      await this.#mover.dropCommand(job);
      if (await this.#mover.move(job, 'cancelled', reason)) cancelled++;
    }
    return cancelled;
  }

  async retry(id: string): Promise<JobRow | null> {
    const job = await this.#ctx.store.jobs.get(id);
    if (!job || !isTerminal(job.status as JobStatus) || job.status === 'success') return job ?? null;
    const now = this.#ctx.now();
    return this.#mover.move(job, 'waiting', 'admin retry', {
      command_uuid: null,
      push_deadline: null,
      session_deadline: null,
      next_at: null,
      error: null,
      request_deadline: new Date(now.getTime() + this.#ctx.t.requestTimeoutMs).toISOString(),
    });
  }
}

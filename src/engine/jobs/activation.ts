import { effectiveAutoAssign } from '../../core/tokens.ts';
import type { JobRow } from '../../store/job-repo.ts';
import { BATCH, IN_FLIGHT } from './context.ts';
import type { EngineContext } from './context.ts';
import { assigningNow, licenceFailure } from './licences.ts';
import type { LicenceFailure } from './licences.ts';
import type { JobMover } from './mover.ts';

/** Waiting jobs read per activation pass, in batches: bounded work per tick, see `#toActivate`. */
const ACTIVATION_WINDOW = 20;

/**
 * The activation (decision 0017): fills each device's free slots with its oldest waiting jobs and
 * starts them — by the tick, and by the device reports for a device in session whose jobs just
 * ended. Owns the fairness of the choice; its round-robin cursor and the freed devices are kept
 * in the {@link EngineContext}.
 */
export class Activation {
  readonly #ctx: EngineContext;
  readonly #mover: JobMover;

  constructor(ctx: EngineContext, mover: JobMover) {
    this.#ctx = ctx;
    this.#mover = mover;
  }

  /** Starts the oldest waiting jobs of devices with free slots (see {@link #toActivate}). */
  async run(): Promise<void> {
    await this.start(await this.#toActivate());
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
    const ctx = this.#ctx;
    const batch = ctx.t.activationBatch ?? BATCH;
    const picked = new Map<string, JobRow>();
    const freed = [...ctx.freed].slice(0, batch);
    for (const deviceId of freed) ctx.freed.delete(deviceId);
    if (freed.length > 0)
      for (const job of await ctx.store.jobs.nextToActivate({
        active: IN_FLIGHT,
        slots: ctx.slots,
        deviceIds: freed,
        limit: batch,
      }))
        picked.set(job.id, job);
    if (picked.size < batch) {
      const after = ctx.activationCursor;
      const through = await ctx.store.jobs.waitingSeqAt(after, batch * ACTIVATION_WINDOW);
      const limit = batch - picked.size;
      const found = await ctx.store.jobs.nextToActivate({
        active: IN_FLIGHT,
        slots: ctx.slots,
        afterSeq: after,
        throughSeq: through,
        limit,
      });
      for (const job of found) picked.set(job.id, job);
      // A full batch stops at its last job; otherwise the window was read to its end (or to the
      // last waiting job: the next pass starts from the oldest again).
      ctx.activationCursor = found.length === limit ? found.at(-1)!.seq : (through ?? 0);
    }
    return [...picked.values()].sort((a, b) => a.seq - b.seq);
  }

  /**
   * Moves waiting jobs on: an uninstall to its command; a manual licence checked against Apple's
   * list; an auto licence checked against the group's auto-assign token, then straight to its
   * command when the licence is already held (taken ahead, or left from an earlier job), else to
   * the licence phase.
   */
  async start(waiting: readonly JobRow[]): Promise<void> {
    if (waiting.length === 0) return;
    const ctx = this.#ctx;
    const mover = this.#mover;
    const manualChecks = new Map<string, Set<string> | LicenceFailure>();
    const manualListsReadAt = ctx.now();
    const groups = await ctx.groupNodes();
    const autoAssign = await ctx.store.vpp.autoAssignSettings();
    const devices = await ctx.store.devices.briefs(waiting.map((j) => j.device_id));
    const licences = new Map(
      (
        await ctx.store.jobs.licencePhase(waiting.length, {
          jobIds: waiting.filter((j) => j.kind === 'install' && j.license_mode === 'auto').map((j) => j.id),
        })
      ).map((row) => [row.id, row.licence_state]),
    );
    for (const job of waiting) {
      const device = devices.get(job.device_id);
      if (!device) continue;
      if (job.kind === 'uninstall') {
        await mover.move(job, 'push_sending', null);
        continue;
      }
      if (job.license_mode === 'manual') {
        const key = `${job.token_id}\u0000${job.adam_id}`;
        let assigned = manualChecks.get(key);
        if (!assigned) {
          try {
            assigned = await ctx.tokens.appleAssignedSerials(job.token_id, job.adam_id);
          } catch (err) {
            // Apple's list could not be read: say why (a dead token, Apple busy), not "no licence".
            assigned = licenceFailure(err);
          }
          manualChecks.set(key, assigned);
        }
        if (!(assigned instanceof Set)) {
          await mover.move(
            job,
            'license_failed',
            assigned.reason,
            assigned.error ? { error: assigned.error } : {},
          );
          continue;
        }
        if (device.serial_number && assigned.has(device.serial_number))
          await mover.move(job, 'push_sending', 'licence assigned (manual)');
        else if (
          device.serial_number &&
          (await assigningNow(ctx.store, job, device.serial_number, manualListsReadAt))
        )
          continue;
        else await mover.move(job, 'license_failed', 'license.not_assigned');
        continue;
      }
      const effective = effectiveAutoAssign(groups, autoAssign, device.group_id);
      if (effective.tokenId !== job.token_id) {
        await mover.move(
          job,
          'license_failed',
          effective.inheritedFrom && effective.tokenId
            ? 'autoassign.inherited_only'
            : 'autoassign.token_misconfigured',
        );
        continue;
      }
      if (licences.get(job.id) === 'assigned') await mover.move(job, 'push_sending', 'licence assigned');
      else await mover.move(job, 'license_assigning', null);
    }
  }
}

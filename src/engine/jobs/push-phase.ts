import { installVppApplication, removeApplication } from '../../mdm/commands.ts';
import type { JobRow } from '../../store/job-repo.ts';
import { PRIORITY, newCommandUuid } from '../commander.ts';
import { BATCH } from './context.ts';
import type { EngineContext } from './context.ts';
import type { JobMover } from './mover.ts';

/**
 * The push phase: the install or remove command of each job in `push_sending`, queued bound to the
 * job, and one push per device — by the tick, and (without the push) by the device reports for a
 * device in session, which fetches the commands as the reply to its answer.
 */
export class PushPhase {
  readonly #ctx: EngineContext;
  readonly #mover: JobMover;

  constructor(ctx: EngineContext, mover: JobMover) {
    this.#ctx = ctx;
    this.#mover = mover;
  }

  /**
   * Queues the install/remove command of each job that has none yet, then wakes each device once.
   * A device in a session now is not pushed: it fetches the new commands when it answers. Its jobs
   * stay due for a push (`push_due`) until it fetched them or its session ended without them.
   */
  async run(now: Date): Promise<void> {
    const { store, commander } = this.#ctx;
    const jobs = await store.jobs.byStatus(['push_sending'], BATCH * 2);
    const queued = await this.queueCommands(jobs, now);
    // Jobs back from retry_waiting (or left to a session) keep their queued command: the device
    // needs one push, then the step is cleared (else every tick would push again).
    const due = jobs.filter((job) => job.step === 'push_due' && job.command_uuid);
    const dueDevices = await store.devices.briefs(
      due.filter((j) => !queued.has(j.device_id)).map((j) => j.device_id),
    );
    const recipients = [
      ...[...queued].map(([deviceId, q]) => ({ deviceId, enrollmentId: q.enrollmentId })),
      ...[...dueDevices.values()].map((d) => ({ deviceId: d.id, enrollmentId: d.udid })),
    ];
    const inSession = await commander.wake(recipients, now);
    await store.jobs.patchMany(
      due.filter((j) => !inSession.has(j.device_id)).map((j) => j.id),
      { step: null },
      now,
    );
    await store.jobs.patchMany(
      [...queued].filter(([deviceId]) => inSession.has(deviceId)).flatMap(([, q]) => q.jobIds),
      { step: 'push_due' },
      now,
    );
  }

  /**
   * Devices handed a job's command that went silent (`awaiting_response` past its `next_at`): their
   * session broke before the answer — the command stays queued until answered, so one push brings
   * it back. A device still in a session is left to it. Each is due again `silentRepushMs` later,
   * until the session deadline ends the job.
   */
  async resumeSilent(now: Date): Promise<void> {
    const { store, commander, t } = this.#ctx;
    const silent = await store.jobs.byStatus(['awaiting_response'], BATCH, now);
    if (silent.length === 0) return;
    const devices = await store.devices.briefs(silent.map((j) => j.device_id));
    await commander.wake(
      [...devices.values()].map((d) => ({ deviceId: d.id, enrollmentId: d.udid })),
      now,
      t.silentRepushMs,
    );
    await store.jobs.patchMany(
      silent.map((j) => j.id),
      { next_at: new Date(now.getTime() + t.silentRepushMs).toISOString() },
      now,
    );
  }

  /**
   * Queues the install or remove command of each job in `push_sending` that has none yet, bound to
   * the job in one transaction; per device that got one, its channel and those jobs. The caller
   * pushes (or not: a device in session fetches them next).
   */
  async queueCommands(
    jobs: readonly JobRow[],
    now: Date,
  ): Promise<Map<string, { enrollmentId: string; jobIds: string[] }>> {
    const { store, t } = this.#ctx;
    const queued = new Map<string, { enrollmentId: string; jobIds: string[] }>();
    const devices = await store.devices.briefs(jobs.filter((j) => !j.command_uuid).map((j) => j.device_id));
    for (const job of jobs) {
      if (job.command_uuid || job.status !== 'push_sending') continue;
      const device = devices.get(job.device_id);
      if (!device) continue;
      const uuid = newCommandUuid();
      let command;
      if (job.kind === 'install') {
        command = installVppApplication(uuid, { adamId: Number(job.adam_id) });
      } else {
        const asset = await store.vpp.asset(job.token_id, job.adam_id);
        const bundleId = job.bundle_id ?? asset?.bundle_id;
        if (!bundleId) {
          await this.#mover.move(job, 'device_error', 'app.bundle_unknown');
          continue;
        }
        command = removeApplication(uuid, bundleId);
      }
      const deadline = job.push_deadline ?? new Date(now.getTime() + t.pushTimeoutMs).toISOString();
      if (!(await store.jobs.attachCommand(job, device.udid, command, PRIORITY.install, deadline, now)))
        continue;
      const entry = queued.get(device.id) ?? { enrollmentId: device.udid, jobIds: [] };
      entry.jobIds.push(job.id);
      queued.set(device.id, entry);
    }
    return queued;
  }
}

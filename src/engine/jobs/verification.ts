import { BATCH } from './context.ts';
import type { EngineContext } from './context.ts';

/**
 * The verification step of the tick: asks each device with installs due for a check whether they
 * finished — one ManagedApplicationList per device for all its executing jobs (none queued while
 * one is pending), and a push to those not in a session. The answer is read by the device reports (`reports.ts`).
 */
export async function verify(ctx: EngineContext, now: Date): Promise<void> {
  const { store, commander, t } = ctx;
  const due = await store.jobs.byStatus(['executing'], BATCH, now);
  const briefs = await store.devices.briefs(due.map((j) => j.device_id));
  const recipients = [...briefs.values()].map((d) => ({ deviceId: d.id, enrollmentId: d.udid }));
  await commander.verify(recipients, now);
  await store.jobs.patchMany(
    due.map((j) => j.id),
    { next_at: new Date(now.getTime() + t.verifyEveryMs).toISOString() },
    now,
  );
  // A device in session gets the check with its next fetch.
  await commander.wake(recipients, now);
}

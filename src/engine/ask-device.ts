import { randomUUID } from 'node:crypto';
import { JOB_STATUSES } from '../core/jobs.ts';
import type { Cause, EvidenceSource } from '../diagnosis/index.ts';
import { userList } from '../mdm/commands.ts';
import type { BuiltCommand } from '../mdm/commands.ts';
import type { DeviceRow } from '../store/device-repo.ts';
import type { JobRow } from '../store/job-repo.ts';
import type { Store } from '../store/store.ts';
import type { Commander } from './commander.ts';
import { refreshCommands } from './refresh.ts';

/**
 * When the troubleshooter asks the device (issue 13): a diagnosis that cannot tell causes apart
 * from the facts haishin holds — missing, or read before the job began — queues the fact queries
 * (DeviceInformation, Restrictions, InstalledApplicationList, UserList on a Shared iPad), pushes,
 * and says so; the job's stored diagnosis remembers the questions (`awaitingDevice`) and is
 * ranked again once the device has answered all of them (`deviceAnswered`).
 */

/** The queries whose answers the troubleshooter reads (src/engine/refresh.ts sends them). */
export const FACT_QUERIES: ReadonlySet<string> = new Set([
  'DeviceInformation',
  'Restrictions',
  'InstalledApplicationList',
  'UserList',
]);

/** Evidence read from those answers: a cause resting on it is only as current as they are. */
const DEVICE_FACT_SOURCES: ReadonlySet<EvidenceSource> = new Set([
  'device_information',
  'installed_application_list',
  'restrictions',
  'user_list',
]);

/** Statuses whose stored diagnosis is ranked again when the device answers. */
const FAILED: ReadonlySet<string> = new Set([
  'push_timeout',
  'request_timeout',
  'session_timeout',
  'device_error',
  'server_error',
  'license_failed',
]);
/** Jobs that can carry questions to the device: every one that did not succeed. */
const ASKING = JOB_STATUSES.filter((s) => s !== 'success' && s !== 'cancelled');

/** What a stored diagnosis says about questions to the device, besides the ranking itself. */
export interface DeviceQuestions {
  /** Queries sent for this diagnosis and not all answered yet. */
  awaitingDevice?: string[];
  askedAt?: string;
  /** The queries whose answers the current ranking already used. */
  deviceAnswered?: string[];
  answeredAt?: string;
}

export interface StoredDiagnosis extends DeviceQuestions {
  at: string;
  causes: Cause[];
}

function parseStored(text: string | null): Partial<StoredDiagnosis> | null {
  if (!text) return null;
  try {
    const value = JSON.parse(text) as unknown;
    return value && typeof value === 'object' ? (value as Partial<StoredDiagnosis>) : null;
  } catch {
    return null;
  }
}

const strings = (v: unknown): string[] | undefined =>
  Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : undefined;

/** The question state of a stored diagnosis, to carry over when the job is ranked again. */
export function questionsOf(text: string | null): DeviceQuestions {
  const stored = parseStored(text);
  if (!stored) return {};
  const awaiting = strings(stored.awaitingDevice);
  if (awaiting && awaiting.length > 0) return { awaitingDevice: awaiting, askedAt: String(stored.askedAt) };
  const answered = strings(stored.deviceAnswered);
  if (answered && answered.length > 0)
    return { deviceAnswered: answered, answeredAt: String(stored.answeredAt) };
  return {};
}

/** Fact queries queued for the device and not answered yet. */
export async function pendingFactQueries(store: Store, udid: string): Promise<string[]> {
  const pending = await store.mdm.pendingRequestTypes([udid], [...FACT_QUERIES]);
  return [...(pending.get(udid) ?? [])];
}

async function patchQuestions(
  store: Store,
  jobId: string,
  questions: DeviceQuestions,
  at: Date,
): Promise<void> {
  const job = await store.jobs.get(jobId);
  const stored = parseStored(job?.diagnosis ?? null);
  if (!job || !stored) return;
  const { awaitingDevice: _a, askedAt: _b, deviceAnswered: _c, answeredAt: _d, ...ranking } = stored;
  await store.jobs.patch(jobId, { diagnosis: JSON.stringify({ ...ranking, ...questions }) }, at);
}

function factTimes(device: DeviceRow): (string | null)[] {
  const times = [device.facts_at, device.restrictions_at, device.installed_apps_at];
  if (device.is_shared_ipad === 1) times.push(device.shared_users_at);
  return times;
}

export interface AskOptions {
  store: Store;
  commander: Commander;
  now: Date;
  offlineAfterMs: number;
  /**
   * An administrator asked (GET /jobs/:id/diagnosis): facts older than the offline threshold are
   * refreshed too, and the device is asked even when it has been silent since the job began.
   */
  onDemand: boolean;
}

/**
 * Asks the device for fresh facts when those haishin holds cannot settle the job's ranking:
 * missing, or read before the job began while the top cause is not confirmed or rests on them.
 * In the background only a device that talked since the job began is asked (one that is off would
 * only pile queries up). Queries already waiting for an answer are not sent twice; the job then
 * waits for them too. Returns the queries sent now and those the job waits for.
 */
export async function askDeviceForJob(
  o: AskOptions,
  job: JobRow,
  causes: readonly Cause[],
): Promise<{ asked: string[]; awaiting: string[] }> {
  const none = { asked: [], awaiting: [] };
  const device = await o.store.devices.get(job.device_id);
  if (!device || device.status !== 'enrolled' || job.status === 'success') return none;
  const jobStart = new Date(job.created_at).getTime();
  const top = causes[0];
  const couldChange =
    !top || top.confidence !== 'confirmed' || top.evidence.some((ev) => DEVICE_FACT_SOURCES.has(ev.source));
  const stale = factTimes(device).some((at) => {
    if (at === null) return true;
    const t = new Date(at).getTime();
    return (couldChange && t < jobStart) || (o.onDemand && o.now.getTime() - t > o.offlineAfterMs);
  });
  if (!stale) return none;
  const talkedSinceStart = device.last_seen_at !== null && device.last_seen_at > job.created_at;
  if (!o.onDemand && (!couldChange || !talkedSinceStart)) return none;
  const pending = await pendingFactQueries(o.store, device.udid);
  if (pending.length > 0) {
    await patchQuestions(o.store, job.id, { awaitingDevice: pending, askedAt: o.now.toISOString() }, o.now);
    return { asked: [], awaiting: pending };
  }
  const commands = refreshCommands(device);
  const asked = commands.map((c) => c.requestType);
  // Remembered before they go out: a device in session can answer before the push is even sent.
  await patchQuestions(o.store, job.id, { awaitingDevice: asked, askedAt: o.now.toISOString() }, o.now);
  await ask(o.commander, device, commands, o.now);
  await o.commander.push([device.id]);
  return { asked, awaiting: asked };
}

async function ask(
  commander: Commander,
  device: Pick<DeviceRow, 'id' | 'udid'>,
  commands: BuiltCommand[],
  at: Date,
): Promise<void> {
  await commander.queue('facts', [{ to: { deviceId: device.id, enrollmentId: device.udid }, commands }], at);
}

/**
 * A fact query was answered. Once the device has answered every one it owed, the jobs that were
 * waiting for them are marked answered and returned, to be ranked again. DeviceInformation can
 * reveal a Shared iPad whose users nobody asked for: the user list is asked then, and waited for.
 */
export async function factsAnswered(
  o: { store: Store; commander: Commander; now: Date },
  deviceId: string,
  requestType: string,
): Promise<string[]> {
  // Most answers (a refresh nobody diagnosed with) stop here, after one indexed query.
  const waiting = (await o.store.jobs.forDevice(deviceId, ASKING)).filter(
    (j) => (questionsOf(j.diagnosis).awaitingDevice ?? []).length > 0,
  );
  if (waiting.length === 0) return [];
  const device = await o.store.devices.get(deviceId);
  if (!device) return [];
  let pending = await pendingFactQueries(o.store, device.udid);
  if (
    requestType === 'DeviceInformation' &&
    device.is_shared_ipad === 1 &&
    !pending.includes('UserList') &&
    waiting.some((j) => !(questionsOf(j.diagnosis).awaitingDevice ?? []).includes('UserList'))
  ) {
    const command = userList(randomUUID().toUpperCase());
    // The device is in session (answering DeviceInformation): it fetches the user list next.
    await ask(o.commander, device, [command], o.now);
    for (const job of waiting) {
      const q = questionsOf(job.diagnosis);
      await patchQuestions(
        o.store,
        job.id,
        {
          awaitingDevice: [...(q.awaitingDevice ?? []), 'UserList'],
          askedAt: q.askedAt ?? o.now.toISOString(),
        },
        o.now,
      );
    }
    pending = [...pending, 'UserList'];
  }
  if (pending.length > 0) return [];
  const failed = waiting.filter((j) => FAILED.has(j.status));
  for (const job of waiting) {
    const answered = questionsOf(job.diagnosis).awaitingDevice ?? [];
    // A job still running is diagnosed again when it ends; it waits for nothing any more.
    const questions = FAILED.has(job.status)
      ? { deviceAnswered: answered, answeredAt: o.now.toISOString() }
      : {};
    await patchQuestions(o.store, job.id, questions, o.now);
  }
  return failed.map((j) => j.id);
}

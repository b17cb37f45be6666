import { compareAppVersions } from '../core/app-versions.ts';
import { installedVersions } from '../mdm/facts.ts';
import type { InstalledVersion } from '../core/app-versions.ts';
import { installedApplicationList, managedApplicationList } from '../mdm/commands.ts';
import type { JobRow } from '../store/job-repo.ts';
import type { Store } from '../store/store.ts';
import { newCommandUuid } from './commander.ts';
import type { Commander, Recipient } from './commander.ts';

/**
 * The version half of install verification (decision 0018). ManagedApplicationList says whether
 * an app is `Managed` but not at which version (only an ExternalVersionIdentifier, which the
 * look-up does not give); the device's InstalledApplicationList does (`ShortVersion`). So when
 * an install with an expected version is reported `Managed`, the engine reads the installed list
 * the device sent *after* this ManagedApplicationList was asked for; when there is none, it asks
 * for the installed list and for the managed list again, in the same session, and decides on
 * that answer. Each verification round asks at most once, so a device never loops.
 */

/** The device's installed list, and whether it is recent enough to judge this round by. */
export interface VersionFacts {
  fresh: boolean;
  apps: ReadonlyMap<string, InstalledVersion>;
}

export type VersionCheck =
  /** Verified: the installed version (null when the device reported none) goes on the job. */
  | { kind: 'success'; installed: string | null }
  /** No installed list since this check was asked for: ask for one. */
  | { kind: 'ask' }
  /** An update still older than expected (or still downloading): keep verifying. */
  | { kind: 'older'; installed: string | null };

/**
 * What a job reported `Managed` amounts to. Without an expected version (the look-up never gave
 * one) it is a success as before; with one: at least that version is a success; an older one is
 * a success for a first install (the App Store gave what it had; the app is counted as having an
 * update) and not yet one for an update; no version reported for the app is a success (nothing
 * says it is old).
 */
export function checkVersion(
  job: Pick<JobRow, 'bundle_id' | 'expected_version' | 'is_update'>,
  facts: VersionFacts | null,
): VersionCheck {
  const entry = facts?.fresh && job.bundle_id ? facts.apps.get(job.bundle_id) : undefined;
  if (!job.expected_version) return { kind: 'success', installed: entry?.version ?? null };
  if (!facts?.fresh) return { kind: 'ask' };
  if (!entry?.version) return { kind: 'success', installed: null };
  if (entry.installing && job.is_update === 1) return { kind: 'older', installed: entry.version };
  if (compareAppVersions(entry.version, job.expected_version) >= 0 || job.is_update !== 1)
    return { kind: 'success', installed: entry.version };
  return { kind: 'older', installed: entry.version };
}

/**
 * The device's stored InstalledApplicationList, fresh when it arrived at or after the moment the
 * ManagedApplicationList being answered (`commandUuid`) was queued. Read only when one of the jobs
 * has an expected version (the list can be large).
 */
export async function versionFacts(
  store: Store,
  deviceId: string,
  commandUuid: string,
  jobs: readonly Pick<JobRow, 'expected_version'>[],
): Promise<VersionFacts | null> {
  if (!jobs.some((j) => j.expected_version)) return null;
  const device = await store.devices.get(deviceId);
  if (!device) return null;
  const asked = await store.appUpdates.commandQueuedAt(commandUuid);
  const fresh = device.installed_apps_at !== null && asked !== null && device.installed_apps_at >= asked;
  let list: unknown = null;
  try {
    list = device.installed_apps ? JSON.parse(device.installed_apps) : null;
  } catch {
    list = null;
  }
  return { fresh, apps: new Map(installedVersions(list).map((a) => [a.bundleId, a])) };
}

/**
 * Asks the device, in the session it is in, for its installed list (facts: answered first) and
 * then for the managed list again: that second answer is judged on the fresh installed list. When
 * an installed list is pending already (a refresh, an earlier round the device has not answered),
 * only that one is awaited: the next verification round judges — never a loop of managed lists.
 * No push: the device is in session.
 */
export async function askInstalledVersions(commander: Commander, to: Recipient, at: Date): Promise<void> {
  const queued = await commander.queue(
    'facts',
    [{ to, commands: [installedApplicationList(newCommandUuid())] }],
    at,
  );
  if (!queued.get(to.enrollmentId)?.includes('InstalledApplicationList')) return;
  await commander.queue('verify', [{ to, commands: [managedApplicationList(newCommandUuid())] }], at);
}

import type { InstalledVersion } from '../core/app-versions.ts';

/**
 * Device facts as typed values. haishin keeps each fact answer as the device sent it (the
 * DeviceInformation QueryResponses, the InstalledApplicationList and UserList arrays, the
 * ManagedApplicationList dictionary, as JSON — raw next to parsed, for support bundles); these
 * readers are the one place that knows Apple's field names in them, so the engine and the store
 * read types. Anything malformed reads as absent, never as a guess.
 */

type Json = Record<string, unknown>;

const dict = (v: unknown): Json => (v && typeof v === 'object' && !Array.isArray(v) ? (v as Json) : {});
const text = (v: unknown): string | null => (typeof v === 'string' && v.trim() !== '' ? v : null);
const flag = (v: unknown): boolean | null => (typeof v === 'boolean' ? v : null);
const number = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);

/** One app of an InstalledApplicationList answer. */
export interface InstalledAppFact {
  bundleId: string;
  /** ShortVersion, else Version (the build); null when the device reported neither. */
  version: string | null;
  /** `Installing`: downloading or about to. */
  installing: boolean;
  /** `DownloadWaiting`: waiting for a condition (Wi-Fi for a large app, space, …). */
  downloadWaiting: boolean;
}

/** The apps of an InstalledApplicationList answer; entries without an identifier are skipped. */
export function installedApps(value: unknown): InstalledAppFact[] {
  if (!Array.isArray(value)) return [];
  const out: InstalledAppFact[] = [];
  for (const item of value) {
    const o = dict(item);
    const bundleId = text(o.Identifier);
    if (!bundleId) continue;
    out.push({
      bundleId,
      version: text(o.ShortVersion) ?? text(o.Version),
      installing: o.Installing === true,
      downloadWaiting: o.DownloadWaiting === true,
    });
  }
  return out;
}

/** The same list as the versions app updates count (src/core/app-versions.ts). */
export function installedVersions(value: unknown): InstalledVersion[] {
  return installedApps(value).map((a) => ({
    bundleId: a.bundleId,
    version: a.version,
    installing: a.installing || a.downloadWaiting,
  }));
}

/** The statuses of a stored ManagedApplicationList answer, by bundle identifier. */
export function managedAppStatuses(value: unknown): Map<string, string | null> {
  return new Map(
    Object.entries(dict(value)).map(([bundleId, entry]) => [bundleId, text(dict(entry).Status)]),
  );
}

/** The users of a Shared iPad's UserList answer. */
export interface UserFact {
  userName: string | null;
  loggedIn: boolean;
}

/** The users of a UserList answer; null when the stored value is not a list. */
export function users(value: unknown): UserFact[] | null {
  if (!Array.isArray(value)) return null;
  return value.map((item) => {
    const o = dict(item);
    return { userName: text(o.UserName), loggedIn: o.IsLoggedIn === true };
  });
}

/** What the troubleshooter reads of a DeviceInformation answer (its QueryResponses). */
export interface DeviceInformationFact {
  /** AvailableDeviceCapacity, GB (10^9 bytes, as iOS counts). */
  availableCapacityGb: number | null;
  isMultiUser: boolean | null;
  /** CellularTechnology: 0 none, 1 GSM, 2 CDMA, 3 both. */
  cellularTechnology: number | null;
}

export function deviceInformation(value: unknown): DeviceInformationFact {
  const o = dict(value);
  return {
    availableCapacityGb: number(o.AvailableDeviceCapacity),
    isMultiUser: flag(o.IsMultiUser),
    cellularTechnology: number(o.CellularTechnology),
  };
}

import { ancestry } from './groups.ts';
import type { GroupNode } from './groups.ts';

/**
 * App versions as the App Store and iOS write them (decision 0018): the look-up's `version` is the
 * app's CFBundleShortVersionString, which a device reports as `ShortVersion` in its
 * InstalledApplicationList (`Version` is the build number, used only when there is no short one).
 * Pure: no I/O.
 */

/**
 * Negative when `a` is older than `b`, 0 when they are the same version, positive when newer.
 * Dotted parts compare one by one, numbers as numbers (`1.10` after `1.9`), missing parts as 0
 * (`2.0` = `2.0.0` = `2`); a part that is not a number (`1.0b3`) compares digit runs as numbers
 * and the rest as text, so every pair of strings has an order.
 */
export function compareAppVersions(a: string, b: string): number {
  const pa = a.trim().split('.');
  const pb = b.trim().split('.');
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const x = pa[i] ?? '0';
    const y = pb[i] ?? '0';
    if (x === y) continue;
    const nx = /^\d+$/.test(x) ? Number(x) : null;
    const ny = /^\d+$/.test(y) ? Number(y) : null;
    if (nx !== null && ny !== null) {
      if (nx !== ny) return nx < ny ? -1 : 1;
      continue;
    }
    const c = x.localeCompare(y, 'en', { numeric: true });
    if (c !== 0) return c < 0 ? -1 : 1;
  }
  return 0;
}

/** `installed` is known and older than `expected`. */
export function isOlderVersion(
  installed: string | null | undefined,
  expected: string | null | undefined,
): boolean {
  return !!installed && !!expected && compareAppVersions(installed, expected) < 0;
}

/** One app of a device's InstalledApplicationList, as haishin keeps it. */
export interface InstalledVersion {
  bundleId: string;
  /** ShortVersion, else Version; null when the device reported neither. */
  version: string | null;
  /** Still downloading or waiting to (`Installing`, `DownloadWaiting`): the version is not the new one yet. */
  installing: boolean;
}

/** The per-group "keep apps up to date" setting in force for a group, and where it comes from. */
export interface EffectiveKeepUpdated {
  enabled: boolean;
  /** The group whose own setting applies (the group itself or an ancestor); null: none is set (off). */
  fromGroupId: string | null;
}

/**
 * Inherited like auto-assign: a group's own setting (on or off) wins, else the nearest ancestor's,
 * else off. An explicit off lets a subgroup (an exam class) opt out of a school's on.
 */
export function effectiveKeepUpdated(
  groups: readonly GroupNode[],
  settings: ReadonlyMap<string, boolean>,
  groupId: string,
): EffectiveKeepUpdated {
  for (const id of ancestry(groups, groupId)) {
    const own = settings.get(id);
    if (own !== undefined) return { enabled: own, fromGroupId: id };
  }
  return { enabled: false, fromGroupId: null };
}

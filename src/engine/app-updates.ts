import type { AppMetaLookup } from '../apple/appmeta/client.ts';
import type { Clock } from '../core/clock.ts';
import { compareAppVersions, effectiveKeepUpdated } from '../core/app-versions.ts';
import type { EffectiveKeepUpdated } from '../core/app-versions.ts';
import { subtreeIds } from '../core/groups.ts';
import { Refusal } from '../core/refusal.ts';
import { effectiveAutoAssign } from '../core/tokens.ts';
import type { AppVersionRow, LicensedDevice, VersionChange } from '../store/app-update-repo.ts';
import type { Store } from '../store/store.ts';
import type { DistributionEngine } from './engine.ts';

/**
 * App updates (issue 14, item 5; decision 0018): which apps have a newer version in the App Store
 * than devices run, an administrator's update distribution, and the per-group "keep apps up to
 * date" setting that makes haishin distribute updates by itself after a look-up found them.
 *
 * Versions come from the app look-up (`check()`: after a token sync, on a timer, on demand);
 * what devices run comes from their InstalledApplicationList (`device_apps`). An update is an
 * install distribution whose jobs carry `is_update`: InstallApplication to a device that manages
 * the app installs the new version, and the job succeeds only once the device reports it.
 */

/** The look-up, with the cache of `AppMetaClient` skipped for a check (a new version must show). */
export type VersionLookup = AppMetaLookup & { invalidate?(adamId?: string): void };

export interface AppUpdatesOptions {
  store: Store;
  clock: Clock;
  engine: DistributionEngine;
  appMeta?: VersionLookup;
}

/** Which devices an update goes to; absent: every device haishin can update. */
export interface UpdateTargets {
  groupIds?: string[];
  includeSubgroups?: boolean;
  deviceIds?: string[];
}

/** Devices of one app, counted from their last InstalledApplicationList. */
export interface VersionCount {
  version: string | null;
  devices: number;
  /** Older than the newest version. */
  outdated: boolean;
}

export interface AppUpdateView {
  adamId: string;
  name: string | null;
  bundleId: string | null;
  /** The newest version the look-up reported; null until a check found the app. */
  latestVersion: string | null;
  previousVersion: string | null;
  /** When haishin first saw `latestVersion`. */
  versionChangedAt: string | null;
  checkedAt: string | null;
  minimumOsVersion: string | null;
  /** Devices (not deactivated) whose installed list has the app, by version, newest first. */
  versions: VersionCount[];
  installedDevices: number;
  outdatedDevices: number;
  /** Outdated (or not yet reported) devices haishin holds a licence for and can update now. */
  updatableDevices: number;
  updateAvailable: boolean;
}

/** Why a candidate device gets no update job. */
export type SkipReason = 'up_to_date' | 'not_installed' | 'not_enrolled' | 'in_flight' | 'already_tried';

export interface UpdateResult {
  adamId: string;
  version: string;
  distributions: { id: string; tokenId: string; licenseMode: 'auto' | 'manual'; jobCount: number }[];
  jobCount: number;
  skipped: Record<SkipReason, number>;
}

export interface CheckResult {
  checkedAt: string;
  /** Apps asked of the look-up, and found by it. */
  asked: number;
  found: number;
  changes: VersionChange[];
  /** Distributions the "keep apps up to date" setting made. */
  autoUpdates: UpdateResult[];
}

const CHECKED_AT = 'app_updates.checked_at';

export class AppUpdates {
  readonly #store: Store;
  readonly #clock: Clock;
  readonly #engine: DistributionEngine;
  readonly #appMeta: VersionLookup | null;
  #checking: Promise<CheckResult> | null = null;

  constructor(o: AppUpdatesOptions) {
    this.#store = o.store;
    this.#clock = o.clock;
    this.#engine = o.engine;
    this.#appMeta = o.appMeta ?? null;
  }

  /**
   * Asks the look-up for the current version of every app haishin can distribute (or of
   * `adamIds`), bypassing its cache, records the versions, and lets the groups that keep their
   * apps up to date get the updates. Concurrent calls share the running check.
   */
  check(o: { adamIds?: readonly string[] } = {}): Promise<CheckResult> {
    this.#checking ??= this.#check(o).finally(() => {
      this.#checking = null;
    });
    return this.#checking;
  }

  async #check(o: { adamIds?: readonly string[] }): Promise<CheckResult> {
    const now = this.#clock.now();
    const wanted = o.adamIds ? new Set(o.adamIds) : null;
    const apps = (await this.#store.appUpdates.knownApps()).filter((a) => !wanted || wanted.has(a.adamId));
    const ids = apps.map((a) => a.adamId);
    let changes: VersionChange[] = [];
    let found = 0;
    if (this.#appMeta && ids.length > 0) {
      for (const id of ids) this.#appMeta.invalidate?.(id);
      const meta = await this.#appMeta.lookup(ids);
      const seen = [...meta.values()]
        .filter((m) => m.version !== null)
        .map((m) => ({
          adamId: m.adamId,
          bundleId: m.bundleId,
          name: m.name || null,
          version: m.version!,
          minimumOsVersion: m.minimumOsVersion,
        }));
      found = seen.length;
      changes = await this.#store.appUpdates.recordVersions(seen, now);
    }
    await this.#store.putSetting(CHECKED_AT, now.toISOString(), now);
    const autoUpdates = await this.autoUpdate(o.adamIds);
    return { checkedAt: now.toISOString(), asked: ids.length, found, changes, autoUpdates };
  }

  /** A check when the last one is `everyMs` old (or none ran): for the server's timer. */
  async maintenance(everyMs: number): Promise<CheckResult | null> {
    const last = await this.#store.getSetting(CHECKED_AT);
    if (last && this.#clock.now().getTime() - new Date(last).getTime() < everyMs) return null;
    return this.check();
  }

  /** After a token sync (its apps were just looked up): check that token's apps. */
  async afterSync(tokenId: string): Promise<CheckResult> {
    const assets = await this.#store.vpp.assets(tokenId);
    return this.check({ adamIds: assets.filter((a) => a.product_type !== 'Book').map((a) => a.adam_id) });
  }

  /** Every app haishin can distribute, with its newest version and the devices' versions. */
  async list(): Promise<AppUpdateView[]> {
    const apps = await this.#store.appUpdates.knownApps();
    const versions = new Map((await this.#store.appUpdates.versions()).map((v) => [v.adam_id, v]));
    const bundles = apps
      .map((a) => versions.get(a.adamId)?.bundle_id ?? a.bundleId)
      .filter((b): b is string => b !== null);
    const counts = await this.#store.appUpdates.versionCounts(bundles);
    const out: AppUpdateView[] = [];
    for (const app of apps) {
      const v = versions.get(app.adamId);
      const bundleId = v?.bundle_id ?? app.bundleId;
      out.push(
        await this.#view(
          app,
          v,
          counts.filter((c) => c.bundleId === bundleId),
        ),
      );
    }
    return out;
  }

  async get(adamId: string): Promise<AppUpdateView> {
    const app = (await this.#store.appUpdates.knownApps()).find((a) => a.adamId === adamId);
    if (!app) throw new Refusal(404, 'app.not_found', { adamId });
    const v = await this.#store.appUpdates.version(adamId);
    const bundleId = v?.bundle_id ?? app.bundleId;
    return this.#view(app, v, bundleId ? await this.#store.appUpdates.versionCounts([bundleId]) : []);
  }

  async #view(
    app: { adamId: string; name: string | null; bundleId: string | null },
    v: AppVersionRow | undefined,
    counts: { version: string | null; devices: number }[],
  ): Promise<AppUpdateView> {
    const latest = v?.version ?? null;
    const byVersion = new Map<string | null, number>();
    for (const c of counts) byVersion.set(c.version, (byVersion.get(c.version) ?? 0) + c.devices);
    const versions: VersionCount[] = [...byVersion.entries()]
      .map(([version, devices]) => ({
        version,
        devices,
        outdated: latest !== null && version !== null && compareAppVersions(version, latest) < 0,
      }))
      .sort((a, b) =>
        a.version === null ? 1 : b.version === null ? -1 : compareAppVersions(b.version, a.version),
      );
    const outdated = versions.filter((x) => x.outdated).reduce((n, x) => n + x.devices, 0);
    const bundleId = v?.bundle_id ?? app.bundleId;
    const updatable =
      latest !== null && bundleId !== null
        ? (await this.#plan(app.adamId, bundleId, latest, null, { auto: false })).targets.length
        : 0;
    return {
      adamId: app.adamId,
      name: v?.name ?? app.name,
      bundleId,
      latestVersion: latest,
      previousVersion: v?.previous_version ?? null,
      versionChangedAt: v?.changed_at ?? null,
      checkedAt: v?.checked_at ?? null,
      minimumOsVersion: v?.minimum_os_version ?? null,
      versions,
      installedDevices: versions.reduce((n, x) => n + x.devices, 0),
      outdatedDevices: outdated,
      updatableDevices: updatable,
      updateAvailable: outdated > 0,
    };
  }

  /**
   * An administrator's update of one app: install distributions (one per token and licence mode)
   * to the devices of `targets` (absent: all) that hold a licence for the app through haishin and
   * run an older version of it — or have not reported their apps yet: InstallApplication is
   * harmless on a device that has the newest version already. Devices with an install of the app
   * still running are left to it.
   */
  async distribute(
    adamId: string,
    targets: UpdateTargets | undefined,
    createdBy: string,
  ): Promise<UpdateResult> {
    const app = (await this.#store.appUpdates.knownApps()).find((a) => a.adamId === adamId);
    if (!app) throw new Refusal(404, 'app.not_found', { adamId });
    const v = await this.#store.appUpdates.version(adamId);
    const bundleId = v?.bundle_id ?? app.bundleId;
    if (!v || !bundleId) throw new Refusal(409, 'app.version_unknown', { adamId });
    const scope = targets ? await this.#scope(targets) : null;
    const plan = await this.#plan(adamId, bundleId, v.version, scope, { auto: false });
    return this.#create(adamId, v.version, plan, createdBy);
  }

  /**
   * The "keep apps up to date" setting at work: for each app (or `adamIds`) with a known version,
   * an update to the devices of groups where the setting is on that run an older version — each
   * version tried once per device (a failed update is the administrator's to retry).
   */
  async autoUpdate(adamIds?: readonly string[]): Promise<UpdateResult[]> {
    const settings = await this.#store.appUpdates.keepUpdatedSettings();
    if (![...settings.values()].some(Boolean)) return [];
    const wanted = adamIds ? new Set(adamIds) : null;
    const out: UpdateResult[] = [];
    for (const v of await this.#store.appUpdates.versions()) {
      if ((wanted && !wanted.has(v.adam_id)) || !v.bundle_id) continue;
      const plan = await this.#plan(v.adam_id, v.bundle_id, v.version, null, { auto: true });
      if (plan.targets.length === 0) continue;
      out.push(await this.#create(v.adam_id, v.version, plan, 'auto-update'));
    }
    return out;
  }

  /** The group's own setting (null: inherit) and the one in force. */
  async keepUpdated(
    groupId: string,
  ): Promise<{ groupId: string; enabled: boolean | null; effective: EffectiveKeepUpdated }> {
    const groups = await this.#store.groups.all();
    if (!groups.some((g) => g.id === groupId)) throw new Refusal(404, 'group.not_found', { id: groupId });
    const settings = await this.#store.appUpdates.keepUpdatedSettings();
    const nodes = groups.map((g) => ({ id: g.id, parentId: g.parent_id }));
    return {
      groupId,
      enabled: settings.get(groupId) ?? null,
      effective: effectiveKeepUpdated(nodes, settings, groupId),
    };
  }

  /**
   * Sets a group's own "keep apps up to date" (null: inherit). Switched on, the outdated devices it
   * now covers get their updates at once, not at the next check.
   */
  async setKeepUpdated(
    groupId: string,
    value: boolean | null,
  ): Promise<{ view: Awaited<ReturnType<AppUpdates['keepUpdated']>>; autoUpdates: UpdateResult[] }> {
    await this.keepUpdated(groupId);
    await this.#store.appUpdates.setKeepUpdated(groupId, value, this.#clock.now());
    const view = await this.keepUpdated(groupId);
    return { view, autoUpdates: view.effective.enabled ? await this.autoUpdate() : [] };
  }

  /** The device ids `targets` name, as the distribution form does (groups with or without subgroups). */
  async #scope(targets: UpdateTargets): Promise<Set<string>> {
    const nodes = (await this.#store.groups.all()).map((g) => ({ id: g.id, parentId: g.parent_id }));
    const groupIds = new Set<string>();
    for (const g of targets.groupIds ?? []) {
      if (!nodes.some((n) => n.id === g)) throw new Refusal(404, 'group.not_found', { id: g });
      for (const id of targets.includeSubgroups ? subtreeIds(nodes, g) : [g]) groupIds.add(id);
    }
    const ids = new Set(targets.deviceIds ?? []);
    if (groupIds.size > 0)
      for (const d of await this.#store.devices.list({ groupIds: [...groupIds], limit: 1_000_000 }))
        ids.add(d.id);
    return ids;
  }

  /** Which licensed devices get the update, and why the others do not. */
  async #plan(
    adamId: string,
    bundleId: string,
    version: string,
    scope: ReadonlySet<string> | null,
    o: { auto: boolean },
  ): Promise<{ targets: LicensedDevice[]; skipped: Record<SkipReason, number> }> {
    const skipped: Record<SkipReason, number> = {
      up_to_date: 0,
      not_installed: 0,
      not_enrolled: 0,
      in_flight: 0,
      already_tried: 0,
    };
    let candidates = await this.#store.appUpdates.licensedDevices(adamId, bundleId);
    if (scope) candidates = candidates.filter((c) => scope.has(c.deviceId));
    if (o.auto) {
      const groups = (await this.#store.groups.all()).map((g) => ({ id: g.id, parentId: g.parent_id }));
      const settings = await this.#store.appUpdates.keepUpdatedSettings();
      const on = new Map<string, boolean>();
      candidates = candidates.filter((c) => {
        if (!on.has(c.groupId)) on.set(c.groupId, effectiveKeepUpdated(groups, settings, c.groupId).enabled);
        return on.get(c.groupId);
      });
      // Automatic updates go only where an older version is known to run.
      candidates = candidates.filter((c) => c.listed && c.version !== null);
    }
    const wanted: LicensedDevice[] = [];
    for (const c of candidates) {
      if (c.status !== 'enrolled') skipped.not_enrolled++;
      else if (c.version !== null && !c.installing && compareAppVersions(c.version, version) >= 0)
        skipped.up_to_date++;
      else if (!c.listed && c.listedAt !== null) skipped.not_installed++;
      else wanted.push(c);
    }
    const { open, tried } = await this.#store.appUpdates.busyOrTried(
      adamId,
      wanted.map((c) => c.deviceId),
      o.auto ? version : null,
    );
    const targets: LicensedDevice[] = [];
    for (const c of wanted) {
      if (open.has(c.deviceId)) skipped.in_flight++;
      else if (tried.has(c.deviceId)) skipped.already_tried++;
      else targets.push(c);
    }
    return { targets, skipped };
  }

  /**
   * One install distribution per (token, licence mode): auto where the device's group
   * auto-assigns with the token of its licence (the licence is found held and the job goes
   * straight to its command), manual elsewhere (checked against Apple's list of assignments).
   */
  async #create(
    adamId: string,
    version: string,
    plan: { targets: LicensedDevice[]; skipped: Record<SkipReason, number> },
    createdBy: string,
  ): Promise<UpdateResult> {
    const groups = (await this.#store.groups.all()).map((g) => ({ id: g.id, parentId: g.parent_id }));
    const autoAssign = await this.#store.vpp.autoAssignSettings();
    const batches = new Map<string, { tokenId: string; mode: 'auto' | 'manual'; deviceIds: string[] }>();
    for (const t of plan.targets) {
      const mode =
        effectiveAutoAssign(groups, autoAssign, t.groupId).tokenId === t.tokenId ? 'auto' : 'manual';
      const key = `${t.tokenId}\u0000${mode}`;
      const batch = batches.get(key) ?? { tokenId: t.tokenId, mode, deviceIds: [] };
      batch.deviceIds.push(t.deviceId);
      batches.set(key, batch);
    }
    const distributions: UpdateResult['distributions'] = [];
    for (const b of batches.values()) {
      const created = await this.#engine.create(
        {
          kind: 'install',
          update: true,
          tokenId: b.tokenId,
          adamIds: [adamId],
          targets: { deviceIds: b.deviceIds },
          licenseMode: b.mode,
        },
        createdBy,
      );
      distributions.push({
        id: created.id,
        tokenId: b.tokenId,
        licenseMode: b.mode,
        jobCount: created.jobCount,
      });
    }
    return {
      adamId,
      version,
      distributions,
      jobCount: distributions.reduce((n, d) => n + d.jobCount, 0),
      skipped: plan.skipped,
    };
  }
}

import type { Kysely, Selectable, Transaction } from 'kysely';
import { compareAppVersions } from '../core/app-versions.ts';
import type { InstalledVersion } from '../core/app-versions.ts';
import { isTerminal } from '../core/jobs.ts';
import type { JobStatus } from '../core/jobs.ts';
import { inChunks } from './chunks.ts';
import type { AppVersionsTable, Database } from './schema.ts';

export type AppVersionRow = Selectable<AppVersionsTable>;

/** What the look-up said about one app. */
export interface SeenVersion {
  adamId: string;
  bundleId: string | null;
  name: string | null;
  version: string;
  minimumOsVersion: string | null;
}

/** A newer version than the one haishin knew. */
export interface VersionChange {
  adamId: string;
  from: string;
  to: string;
}

/** A device holding a licence for an app, with the version of the app it last reported. */
export interface LicensedDevice {
  deviceId: string;
  udid: string;
  serialNumber: string;
  groupId: string;
  status: string;
  tokenId: string;
  origin: 'auto' | 'manual';
  /** The app is in the device's last InstalledApplicationList (false also when it never sent one). */
  listed: boolean;
  /** Its version there; null when it is not listed or the device reported no version. */
  version: string | null;
  installing: boolean;
  /** When the device last sent its InstalledApplicationList; null: never. */
  listedAt: string | null;
}

/** Rows per INSERT: far below SQLite's and PostgreSQL's bound-parameter limits. */
const CHUNK = 200;

/** App versions, devices' installed versions and the per-group "keep apps up to date" setting (decision 0018). */
export class AppUpdateRepo {
  readonly #db: Kysely<Database>;

  constructor(db: Kysely<Database>) {
    this.#db = db;
  }

  /**
   * Records what the look-up reported. A version newer than the one known becomes the app's
   * version (the old one kept as `previous_version`) and is returned as a change; an app seen for
   * the first time is recorded without a change (nothing was installed at an "older" version by
   * haishin's knowledge); an older answer (a storefront or cache behind the others) is ignored.
   */
  async recordVersions(seen: readonly SeenVersion[], at: Date): Promise<VersionChange[]> {
    const now = at.toISOString();
    const changes: VersionChange[] = [];
    if (seen.length === 0) return changes;
    const known = new Map((await this.versions(seen.map((s) => s.adamId))).map((r) => [r.adam_id, r]));
    await this.#db.transaction().execute(async (tx) => {
      for (const s of seen) {
        const row = known.get(s.adamId);
        if (!row) {
          await tx
            .insertInto('app_versions')
            .values({
              adam_id: s.adamId,
              bundle_id: s.bundleId,
              name: s.name,
              version: s.version,
              previous_version: null,
              minimum_os_version: s.minimumOsVersion,
              checked_at: now,
              changed_at: now,
            })
            .onConflict((oc) => oc.column('adam_id').doNothing())
            .execute();
          continue;
        }
        const newer = compareAppVersions(s.version, row.version) > 0;
        const same = !newer && compareAppVersions(s.version, row.version) === 0;
        await tx
          .updateTable('app_versions')
          .set({
            checked_at: now,
            ...(newer || same
              ? {
                  ...(s.bundleId ? { bundle_id: s.bundleId } : {}),
                  ...(s.name ? { name: s.name } : {}),
                  minimum_os_version: s.minimumOsVersion,
                }
              : {}),
            ...(newer ? { version: s.version, previous_version: row.version, changed_at: now } : {}),
          })
          .where('adam_id', '=', s.adamId)
          .execute();
        if (newer) changes.push({ adamId: s.adamId, from: row.version, to: s.version });
      }
    });
    return changes;
  }

  async versions(adamIds?: readonly string[]): Promise<AppVersionRow[]> {
    if (adamIds === undefined)
      return this.#db.selectFrom('app_versions').selectAll().orderBy('adam_id').execute();
    const pages = await inChunks([...new Set(adamIds)], (chunk) =>
      this.#db.selectFrom('app_versions').selectAll().where('adam_id', 'in', chunk).execute(),
    );
    return pages.flat();
  }

  /**
   * The apps haishin can distribute — every app (not book) among the tokens' assets — with the
   * name and bundle id the sync found, one row per Adam ID.
   */
  async knownApps(): Promise<{ adamId: string; name: string | null; bundleId: string | null }[]> {
    const rows = await this.#db
      .selectFrom('vpp_assets')
      .select(['adam_id', 'name', 'bundle_id', 'product_type'])
      .orderBy('adam_id')
      .execute();
    const out = new Map<string, { adamId: string; name: string | null; bundleId: string | null }>();
    for (const r of rows) {
      if (r.product_type === 'Book') continue;
      const known = out.get(r.adam_id);
      out.set(r.adam_id, {
        adamId: r.adam_id,
        name: known?.name ?? r.name,
        bundleId: known?.bundleId ?? r.bundle_id,
      });
    }
    return [...out.values()];
  }

  async version(adamId: string): Promise<AppVersionRow | undefined> {
    return this.#db.selectFrom('app_versions').selectAll().where('adam_id', '=', adamId).executeTakeFirst();
  }

  /**
   * How many devices (not deactivated) have each of these apps at each version, from their last
   * InstalledApplicationList: one grouped query.
   */
  async versionCounts(
    bundleIds: readonly string[],
  ): Promise<{ bundleId: string; version: string | null; installing: boolean; devices: number }[]> {
    const pages = await inChunks([...new Set(bundleIds)], (chunk) =>
      this.#db
        .selectFrom('device_apps')
        .innerJoin('devices', 'devices.id', 'device_apps.device_id')
        .select([
          'device_apps.bundle_id',
          'device_apps.version',
          'device_apps.installing',
          (eb) => eb.fn.countAll<number>().as('n'),
        ])
        .where('device_apps.bundle_id', 'in', chunk)
        .where('devices.status', '!=', 'deactivated')
        .groupBy(['device_apps.bundle_id', 'device_apps.version', 'device_apps.installing'])
        .execute(),
    );
    return pages.flat().map((r) => ({
      bundleId: r.bundle_id,
      version: r.version,
      installing: Number(r.installing) === 1,
      devices: Number(r.n),
    }));
  }

  /**
   * Every device (not deactivated) holding an assigned licence for the app, with the token and the
   * version it last reported for `bundleId`: the candidates for an update, in one query.
   */
  async licensedDevices(adamId: string, bundleId: string): Promise<LicensedDevice[]> {
    const rows = await this.#db
      .selectFrom('licenses')
      .innerJoin('devices', 'devices.serial_number', 'licenses.serial_number')
      .leftJoin('device_apps', (join) =>
        join.onRef('device_apps.device_id', '=', 'devices.id').on('device_apps.bundle_id', '=', bundleId),
      )
      .select([
        'devices.id as device_id',
        'devices.udid',
        'devices.serial_number',
        'devices.group_id',
        'devices.status',
        'devices.installed_apps_at',
        'licenses.token_id',
        'licenses.origin',
        'device_apps.bundle_id as listed_bundle',
        'device_apps.version',
        'device_apps.installing',
      ])
      .where('licenses.adam_id', '=', adamId)
      .where('licenses.state', '=', 'assigned')
      .where('devices.status', '!=', 'deactivated')
      .orderBy('devices.device_number')
      .execute();
    const seen = new Set<string>();
    const out: LicensedDevice[] = [];
    for (const r of rows) {
      // A device licensed by two tokens is one candidate (the first licence found).
      if (seen.has(r.device_id)) continue;
      seen.add(r.device_id);
      out.push({
        deviceId: r.device_id,
        udid: r.udid,
        serialNumber: r.serial_number!,
        groupId: r.group_id,
        status: r.status,
        tokenId: r.token_id,
        origin: r.origin,
        listed: r.listed_bundle !== null,
        version: r.version ?? null,
        installing: Number(r.installing ?? 0) === 1,
        listedAt: r.installed_apps_at,
      });
    }
    return out;
  }

  /**
   * Of these devices, those with an install job of the app that has not ended (a new job would
   * only queue behind it), and — with `version` — those that already had an update to that version
   * (whatever its outcome: the automatic update tries each version once per device).
   */
  async busyOrTried(
    adamId: string,
    deviceIds: readonly string[],
    version: string | null,
  ): Promise<{ open: Set<string>; tried: Set<string> }> {
    const open = new Set<string>();
    const tried = new Set<string>();
    const pages = await inChunks([...new Set(deviceIds)], (chunk) =>
      this.#db
        .selectFrom('jobs')
        .select(['device_id', 'status', 'is_update', 'expected_version'])
        .where('adam_id', '=', adamId)
        .where('kind', '=', 'install')
        .where('device_id', 'in', chunk)
        .execute(),
    );
    for (const r of pages.flat()) {
      if (!isTerminal(r.status as JobStatus)) open.add(r.device_id);
      if (version !== null && r.is_update === 1 && r.expected_version === version) tried.add(r.device_id);
    }
    return { open, tried };
  }

  /**
   * When a command was queued (its `commands` row), or null when it is unknown or compacted away:
   * the version check judges an installed list by whether it came after the check was asked for.
   */
  async commandQueuedAt(commandUuid: string): Promise<string | null> {
    const row = await this.#db
      .selectFrom('commands')
      .select('created_at')
      .where('uuid', '=', commandUuid)
      .executeTakeFirst();
    return row?.created_at ?? null;
  }

  async keepUpdatedSettings(): Promise<Map<string, boolean>> {
    const rows = await this.#db
      .selectFrom('group_app_updates')
      .select(['group_id', 'keep_updated'])
      .execute();
    return new Map(rows.map((r) => [r.group_id, Number(r.keep_updated) === 1]));
  }

  /** A group's own setting: on, off, or null (none: inherit). */
  async setKeepUpdated(groupId: string, value: boolean | null, at: Date): Promise<void> {
    if (value === null) {
      await this.#db.deleteFrom('group_app_updates').where('group_id', '=', groupId).execute();
      return;
    }
    const now = at.toISOString();
    const keep = value ? 1 : 0;
    await this.#db
      .insertInto('group_app_updates')
      .values({ group_id: groupId, keep_updated: keep, updated_at: now })
      .onConflict((oc) => oc.column('group_id').doUpdateSet({ keep_updated: keep, updated_at: now }))
      .execute();
  }
}

/**
 * Replaces a device's rows with its InstalledApplicationList, inside the caller's transaction.
 * haishin asks for the whole list (refresh, troubleshooter, version check), so apps not in it are
 * gone from the device.
 */
export async function replaceDeviceApps(
  tx: Kysely<Database> | Transaction<Database>,
  deviceId: string,
  apps: readonly InstalledVersion[],
  at: Date,
): Promise<void> {
  const now = at.toISOString();
  await tx.deleteFrom('device_apps').where('device_id', '=', deviceId).execute();
  const unique = [...new Map(apps.map((a) => [a.bundleId, a])).values()];
  for (let i = 0; i < unique.length; i += CHUNK) {
    await tx
      .insertInto('device_apps')
      .values(
        unique.slice(i, i + CHUNK).map((a) => ({
          device_id: deviceId,
          bundle_id: a.bundleId,
          version: a.version,
          installing: a.installing ? 1 : 0,
          reported_at: now,
        })),
      )
      .execute();
  }
}

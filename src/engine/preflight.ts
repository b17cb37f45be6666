import type { Clock } from '../core/clock.ts';
import { diagnose, mergeHits, rankHits, toCause } from '../diagnosis/index.ts';
import type { Cause, Evidence, LicenceFacts } from '../diagnosis/index.ts';
import type { DeviceRow } from '../store/device-repo.ts';
import type { JobRow } from '../store/job-repo.ts';
import type { Store } from '../store/store.ts';
import type { LicenseRow } from '../store/vpp-repo.ts';
import type { DistributionEngine, DistributionInput } from './engine.ts';
import { gatherEvidence } from './evidence.ts';
import type { VppTokens } from './vpp-tokens.ts';

/** A predicted cause, with the apps of the distribution it concerns. */
export interface PreflightCause extends Cause {
  adamIds: string[];
}

export interface PreflightDevice {
  deviceId: string;
  deviceNumber: number;
  serialNumber: string | null;
  /** When DeviceInformation was last read: null means storage, network and the like could not be predicted. */
  factsAt: string | null;
  causes: PreflightCause[];
}

export interface PreflightResult {
  devices: PreflightDevice[];
  summary: { devices: number; withCauses: number; byCode: Record<string, number> };
}

const PREFLIGHT_PREFIX = 'preflight:';

/**
 * `POST /distributions/preflight`: what would go wrong, per device, if this distribution were
 * created now. Nothing is written. Each device × app is diagnosed as a planned job by the
 * troubleshooter itself — `diagnose` over the evidence `gatherEvidence` reads for a job, so the
 * same rules, tables and ranking as after a failure; only the job's own past (status, reason,
 * errors, the command sent) is absent, and the licence count is the whole distribution's need
 * against what the token has left. A device's predictions across the apps are merged and ranked
 * by the troubleshooter's mergeHits / rankHits, so its first cause is what the diagnosis of the
 * job that then fails puts first.
 */
export async function preflight(
  o: { store: Store; clock: Clock; tokens: VppTokens; engine: DistributionEngine },
  input: DistributionInput,
): Promise<PreflightResult> {
  const token = await o.tokens.mustGet(input.tokenId);
  const devices = await o.engine.resolveTargets(input.targets);
  const now = o.clock.now();
  const reads = cachedReads(o.store, devices);
  const install = input.kind === 'install';

  // Manual mode installs only what Apple lists as assigned; ask once per app, like the engine does.
  const appleAssigned = new Map<string, Set<string> | null>();
  if (install && input.licenseMode === 'manual') {
    for (const adamId of input.adamIds) {
      appleAssigned.set(adamId, await o.tokens.appleAssignedSerials(token.id, adamId).catch(() => null));
    }
  }

  interface Planned {
    device: DeviceRow;
    adamId: string;
    evidence: Evidence;
    needsLicence: boolean;
  }
  const planned: Planned[] = [];
  const needed = new Map<string, number>();
  for (const device of devices) {
    for (const adamId of input.adamIds) {
      const evidence = await gatherEvidence(
        reads,
        plannedJob(device, adamId, input, now),
        now,
        o.engine.thresholds,
      );
      evidence.job = {
        kind: input.kind,
        status: null,
        licenseMode: input.licenseMode,
        retryCount: 0,
        errorChain: [],
        // Nothing is sent before the job exists.
        sentAsVpp: null,
        notNowCount: 0,
      };
      let needsLicence = false;
      if (install && device.serial_number) {
        const [licence] = await reads.vpp.licenses({
          tokenId: token.id,
          adamId,
          serialNumber: device.serial_number,
        });
        const facts = licenceFacts(
          licence,
          appleAssigned.get(adamId),
          device.serial_number,
          input.licenseMode,
        );
        needsLicence =
          device.status !== 'deactivated' &&
          evidence.groups?.tokenReachable !== false &&
          (input.licenseMode === 'manual' || evidence.groups?.effectiveAutoAssignTokenId === token.id) &&
          facts.assignedToSerial !== true &&
          licence?.state !== 'assigning';
        evidence.licence = facts;
      } else {
        evidence.licence = null;
      }
      if (needsLicence) needed.set(adamId, (needed.get(adamId) ?? 0) + 1);
      planned.push({ device, adamId, evidence, needsLicence });
    }
  }

  const predicted = new Map<string, { adamId: string; causes: Cause[] }[]>();
  for (const p of planned) {
    if (p.needsLicence && p.evidence.licence) {
      const asset = await reads.vpp.asset(token.id, p.adamId);
      // An app the token holds no licences of (not bought for this location) has none to give: 0 left.
      p.evidence.licence.availableCount = asset ? asset.available_count : 0;
      p.evidence.licence.neededCount = needed.get(p.adamId) ?? 0;
    }
    const perApp = predicted.get(p.device.id) ?? [];
    perApp.push({ adamId: p.adamId, causes: diagnose(p.evidence) });
    predicted.set(p.device.id, perApp);
  }
  const result: PreflightDevice[] = devices.map((device) => ({
    deviceId: device.id,
    deviceNumber: device.device_number,
    serialNumber: device.serial_number,
    factsAt: device.facts_at,
    causes: rankedAcrossApps(predicted.get(device.id) ?? []),
  }));
  const byCode: Record<string, number> = {};
  for (const d of result) for (const c of d.causes) byCode[c.code] = (byCode[c.code] ?? 0) + 1;
  return {
    devices: result,
    summary: { devices: result.length, withCauses: result.filter((d) => d.causes.length > 0).length, byCode },
  };
}

/**
 * Licence facts for a planned job. A stale failure of an earlier assignment is left out: the
 * new distribution asks again, so only holdings and counts predict anything.
 */
function licenceFacts(
  licence: LicenseRow | undefined,
  appleAssigned: Set<string> | null | undefined,
  serial: string,
  mode: 'auto' | 'manual',
): LicenceFacts {
  const held = licence?.state === 'assigned';
  let assignedToSerial: boolean | undefined;
  if (mode === 'manual' && appleAssigned) assignedToSerial = appleAssigned.has(serial);
  else if (held) assignedToSerial = true;
  return {
    ...(assignedToSerial === undefined ? {} : { assignedToSerial }),
    assignmentState: licence && licence.state !== 'failed' ? licence.state : null,
    lastVppError: null,
  };
}

/**
 * One cause per code across the apps of the distribution, as the troubleshooter merges and ranks
 * the hits of one job (strongest confidence, evidence unioned, then confidence and priority),
 * each with the apps it concerns.
 */
function rankedAcrossApps(perApp: readonly { adamId: string; causes: readonly Cause[] }[]): PreflightCause[] {
  return rankHits(mergeHits(perApp.flatMap((p) => p.causes))).map((hit) => ({
    ...toCause(hit),
    adamIds: [
      ...new Set(perApp.filter((p) => p.causes.some((c) => c.code === hit.code)).map((p) => p.adamId)),
    ],
  }));
}

function plannedJob(device: DeviceRow, adamId: string, input: DistributionInput, now: Date): JobRow {
  const at = now.toISOString();
  return {
    id: `${PREFLIGHT_PREFIX}${device.id}:${adamId}`,
    distribution_id: '',
    device_id: device.id,
    adam_id: adamId,
    kind: input.kind,
    token_id: input.tokenId,
    license_mode: input.licenseMode,
    status: 'waiting',
    reason: null,
    step: null,
    retry_count: 0,
    attempt: 1,
    seq: 0,
    bundle_id: null,
    command_uuid: null,
    next_at: null,
    push_deadline: null,
    session_deadline: null,
    request_deadline: at,
    error: null,
    diagnosis: null,
    scheduled_at: null,
    created_at: at,
    updated_at: at,
    expected_version: null,
    installed_version: null,
    is_update: 0,
  };
}

/**
 * The store as gatherEvidence reads it, with the reads every device shares (groups, tokens,
 * shares, settings, assets, an app's licences) made once per preflight instead of once per
 * device. Anything not listed goes to the real store.
 */
function cachedReads(store: Store, devices: readonly DeviceRow[]): Store {
  const byId = new Map(devices.map((d) => [d.id, d]));
  const licencesByAsset = keyed((tokenId: string, adamId: string) =>
    store.vpp.licenses({ tokenId, adamId }).then((rows) => new Map(rows.map((r) => [r.serial_number, r]))),
  );
  const licenses: Store['vpp']['licenses'] = async (filter) => {
    const keys = Object.keys(filter).sort().join(',');
    if (keys !== 'adamId,serialNumber,tokenId') return store.vpp.licenses(filter);
    const row = (await licencesByAsset(filter.tokenId!, filter.adamId!)).get(filter.serialNumber!);
    return row ? [row] : [];
  };
  return overlay(store, {
    devices: overlay(store.devices, {
      get: async (id: string) => byId.get(id) ?? store.devices.get(id),
    }),
    groups: overlay(store.groups, { all: once(() => store.groups.all()) }),
    jobs: overlay(store.jobs, {
      history: (jobId: string) =>
        jobId.startsWith(PREFLIGHT_PREFIX) ? Promise.resolve([]) : store.jobs.history(jobId),
    }),
    vpp: overlay(store.vpp, {
      getToken: keyed((id: string) => store.vpp.getToken(id)),
      asset: keyed((tokenId: string, adamId: string) => store.vpp.asset(tokenId, adamId)),
      sharesOf: keyed((tokenId: string) => store.vpp.sharesOf(tokenId)),
      shares: once(() => store.vpp.shares()),
      allTokens: once(() => store.vpp.allTokens()),
      autoAssignSettings: once(() => store.vpp.autoAssignSettings()),
      licenses,
    }),
  });
}

/** `real` with some members replaced; the rest stay bound to `real` (its private fields keep working). */
function overlay<T extends object>(real: T, replaced: Partial<T>): T {
  return new Proxy(real, {
    get(target, key) {
      if (Object.prototype.hasOwnProperty.call(replaced, key)) return replaced[key as keyof T];
      const value: unknown = Reflect.get(target, key, target);
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
}

function once<R>(load: () => Promise<R>): () => Promise<R> {
  let loaded: Promise<R> | undefined;
  return () => (loaded ??= load());
}

function keyed<A extends string[], R>(load: (...args: A) => Promise<R>): (...args: A) => Promise<R> {
  const cache = new Map<string, Promise<R>>();
  return (...args: A) => {
    const key = args.join('\u0000');
    let hit = cache.get(key);
    if (!hit) cache.set(key, (hit = load(...args)));
    return hit;
  };
}

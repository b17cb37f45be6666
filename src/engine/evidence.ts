import { PUSH_CERTIFICATE_NOT_AFTER } from './push.ts';
import { isAppleBuiltinBundle, isIWorkBundle } from '../core/apple-apps.ts';
import { effectiveAutoAssign, tokensWithinReach, tokenState, tokenUsableIn } from '../core/tokens.ts';
import type { JobStatus } from '../core/jobs.ts';
import type { ChainItem, ContentRating, Evidence, InstalledApp, PushResultKind } from '../diagnosis/index.ts';
import { deviceInformation, installedApps, managedAppStatuses, users } from '../mdm/facts.ts';
import { parsePlistDict } from '../mdm/plist.ts';
import type { JobRow } from '../store/job-repo.ts';
import type { Store } from '../store/store.ts';

type Json = Record<string, unknown>;

const parse = (text: string | null): unknown => {
  if (text === null) return null;
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
};
const obj = (v: unknown): Json => (v && typeof v === 'object' && !Array.isArray(v) ? (v as Json) : {});
const num = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);
const strings = (v: unknown): string[] | null =>
  Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : null;
const date = (v: string | null | undefined): Date | null => (v ? new Date(v) : null);

/** `{deadline, at, retryAt}` as the engine stores it on a job whose transient error was not retried. */
function retryWouldMiss(v: unknown): NonNullable<Evidence['job']>['retryWouldMiss'] {
  const o = obj(v);
  if ((o.deadline !== 'request' && o.deadline !== 'session') || typeof o.at !== 'string') return null;
  if (typeof o.retryAt !== 'string') return null;
  return { deadline: o.deadline, at: new Date(o.at), retryAt: new Date(o.retryAt) };
}

/** InstallApplication `Options.PurchaseMethod` of a VPP assignment (DESIGN §6, src/mdm/commands.ts). */
const VPP_PURCHASE_METHOD = 1;

/**
 * Whether the install command haishin queued for this job carried the VPP purchase method, read
 * from the command as stored and handed to the device. null: no install command was queued for
 * this job (nothing to judge); undefined: not known (an uninstall, a command no longer stored or
 * unreadable).
 */
async function sentAsVpp(store: Store, job: JobRow): Promise<boolean | null | undefined> {
  if (job.kind !== 'install') return undefined;
  if (!job.command_uuid) return null;
  const command = await store.mdm.storedCommand(job.command_uuid);
  if (command?.requestType !== 'InstallApplication') return undefined;
  try {
    return obj(obj(parsePlistDict(command.payload).Command).Options).PurchaseMethod === VPP_PURCHASE_METHOD;
  } catch {
    return undefined;
  }
}

/**
 * Everything haishin knows that bears on a job, shaped as the troubleshooter's Evidence. Facts
 * it does not have stay undefined (unknown), facts known to be absent are null.
 */
export async function gatherEvidence(
  store: Store,
  job: JobRow,
  now: Date,
  thresholds: { offlineAfterMs: number; unenrolledAfterMs: number },
): Promise<Evidence> {
  const device = await store.devices.get(job.device_id);
  const token = await store.vpp.getToken(job.token_id);
  const asset = await store.vpp.asset(job.token_id, job.adam_id);
  const history = await store.jobs.history(job.id);
  const error = obj(parse(job.error));
  const chain = Array.isArray(error.chain)
    ? (error.chain as ChainItem[]).filter((c) => typeof c.code === 'number')
    : [];
  const evidence: Evidence = {
    now,
    thresholds,
    job: {
      kind: job.kind,
      status: job.status as JobStatus,
      retryCount: job.retry_count,
      licenseMode: job.license_mode,
      errorChain: chain,
      rawError: typeof error.raw === 'string' ? error.raw : null,
      rejectionReason: typeof error.rejectionReason === 'string' ? error.rejectionReason : null,
      managedAppStatusesSeen: typeof error.managedStatus === 'string' ? [error.managedStatus] : [],
      sentAsVpp: await sentAsVpp(store, job),
      notNowCount: history.filter((h) => h.reason === 'NotNow').length,
      commandSentAt: date(history.find((h) => h.to_status === 'awaiting_response')?.at),
      ackAt: date(history.find((h) => h.to_status === 'executing')?.at),
      reason: job.reason,
      retryWouldMiss: retryWouldMiss(error.retryWouldMiss),
      isUpdate: job.is_update === 1,
      expectedVersion: job.expected_version,
      installedVersion: job.installed_version,
    },
  };

  if (token && device) {
    const groups = (await store.groups.all()).map((g) => ({ id: g.id, parentId: g.parent_id }));
    const shares = await store.vpp.sharesOf(token.id);
    const placement = { tokenId: token.id, registeredGroupId: token.group_id, sharedGroupIds: shares };
    const effective = effectiveAutoAssign(groups, await store.vpp.autoAssignSettings(), device.group_id);
    const allTokens = await store.vpp.allTokens();
    const allShares = await store.vpp.shares();
    const placements = allTokens.map((t) => ({
      tokenId: t.id,
      registeredGroupId: t.group_id,
      sharedGroupIds: allShares.filter((s) => s.token_id === t.id).map((s) => s.group_id),
    }));
    const usable = placements.filter((p) => tokenUsableIn(p, device.group_id));
    const lastError = obj(parse(token.last_error));
    evidence.token = {
      id: token.id,
      state: tokenState(
        { expiresAt: new Date(token.expires_at), claim: token.claim_state, appleState: token.apple_state },
        now,
      ),
      expiresAt: new Date(token.expires_at),
      registeredGroupId: token.group_id,
      sharedToDeviceGroup: shares.includes(device.group_id),
      vppErrorNumbers: typeof lastError.errorNumber === 'number' ? [lastError.errorNumber] : [],
      otherMdmName:
        typeof obj(lastError.other).name === 'string' ? (obj(lastError.other).name as string) : null,
    };
    evidence.groups = {
      deviceGroupId: device.group_id,
      tokenReachable: tokenUsableIn(placement, device.group_id),
      tokensUsableInGroup: usable.length,
      tokensWithinReach: tokensWithinReach(groups, placements, device.group_id),
      effectiveAutoAssignTokenId: effective.tokenId,
      autoAssignInheritedFrom: effective.inheritedFrom,
      distributionTokenId: token.id,
    };
  }

  if (device?.serial_number) {
    const [licence] = await store.vpp.licenses({
      tokenId: job.token_id,
      adamId: job.adam_id,
      serialNumber: device.serial_number,
    });
    // Apple's number: in the reason (`license 9709`), on the job's error (a refused call), on the licence.
    const vppNumber =
      /^license (\d{4})$/.exec(job.reason ?? '')?.[1] ??
      (typeof error.errorNumber === 'number' ? String(error.errorNumber) : undefined) ??
      (licence?.error_code ? String(licence.error_code) : undefined);
    evidence.licence = {
      assignmentState: licence?.state ?? null,
      ...(licence ? { assignedToSerial: licence.state === 'assigned' } : {}),
      availableCount: asset?.available_count ?? null,
      neededCount: 1,
      lastVppError: vppNumber
        ? {
            errorNumber: Number(vppNumber),
            errorMessage: typeof error.errorMessage === 'string' ? error.errorMessage : null,
          }
        : null,
    };
  }

  if (device) {
    const push = obj(parse(device.last_push_result));
    const facts = deviceInformation(parse(device.facts));
    const restrictions = obj(parse(device.restrictions));
    const sharedUsers = users(parse(device.shared_users));
    const installedValue = parse(device.installed_apps);
    const installed = Array.isArray(installedValue) ? installedApps(installedValue) : null;
    const managed = managedAppStatuses(parse(device.managed_apps));
    evidence.push = {
      lastResult: typeof push.kind === 'string' ? (push.kind as PushResultKind) : null,
      lastReason: typeof push.reason === 'string' ? push.reason : null,
      lastPushAt: date(device.last_push_at),
      // An expired push certificate is `push.certificate_invalid` before APNs even answers.
      certificateNotAfter: date(await store.getSetting(PUSH_CERTIFICATE_NOT_AFTER)),
    };
    const installedList: InstalledApp[] | null = installed
      ? installed.map((a) => ({
          bundleId: a.bundleId,
          managed: managed.has(a.bundleId),
          ...(a.installing ? { installing: true } : {}),
          ...(a.downloadWaiting ? { downloadWaiting: true } : {}),
        }))
      : null;
    // The app's status in the last ManagedApplicationList, when read during this job: a job that
    // timed out keeps no status of its own, and "Installing" is what tells a download that waits.
    const bundleId = job.bundle_id ?? asset?.bundle_id ?? null;
    const current = bundleId ? managed.get(bundleId) : undefined;
    if (
      typeof current === 'string' &&
      device.managed_apps_at !== null &&
      device.managed_apps_at >= job.created_at &&
      evidence.job &&
      evidence.job.managedAppStatusesSeen?.at(-1) !== current
    ) {
      evidence.job.managedAppStatusesSeen = [...(evidence.job.managedAppStatusesSeen ?? []), current];
    }
    const multiUser = device.is_shared_ipad === 1 ? true : facts.isMultiUser === false ? false : undefined;
    const cellularTechnology = facts.cellularTechnology;
    const cellular =
      cellularTechnology !== null
        ? cellularTechnology !== 0
        : device.imei || device.meid
          ? true
          : device.facts
            ? false
            : undefined;
    evidence.device = {
      status: device.status,
      lastSeenAt: date(device.last_seen_at),
      checkedOutAt: date(device.checked_out_at),
      identityNotAfter: date(device.identity_not_after),
      osVersion: device.os_version,
      productName: device.product_name,
      // Unknown until DeviceInformation (IsMultiUser) or a Shared iPad user channel says.
      ...(multiUser !== undefined ? { isSharedIPad: multiUser } : {}),
      ...(cellular !== undefined ? { cellular } : {}),
      ...(device.facts ? { availableCapacityGb: facts.availableCapacityGb } : {}),
      ...(sharedUsers ? { loggedInUsers: sharedUsers.filter((u) => u.loggedIn).length } : {}),
      ...(device.restrictions
        ? {
            restrictions: {
              ratingApps: num(obj(obj(restrictions.restrictedValue).ratingApps).value),
              allowListedAppBundleIDs: strings(
                obj(obj(restrictions.intersection).allowListedAppBundleIDs).values,
              ),
              blockedAppBundleIDs: strings(obj(obj(restrictions.union).blockedAppBundleIDs).values),
              allowAppInstallation:
                typeof obj(obj(restrictions.restrictedBool).allowAppInstallation).value === 'boolean'
                  ? (obj(obj(restrictions.restrictedBool).allowAppInstallation).value as boolean)
                  : null,
            },
          }
        : {}),
      ...(installedList ? { installedApps: installedList } : {}),
      managedButUninstalledBundleIds: [...managed]
        .filter(([, status]) => status === 'ManagedButUninstalled')
        .map(([bundleId]) => bundleId),
    };
  }

  if (asset) {
    evidence.app = {
      adamId: asset.adam_id,
      bundleId: asset.bundle_id,
      name: asset.name,
      sizeBytes: asset.size_bytes,
      minimumOsVersion: asset.minimum_os_version,
      supportedDevices: strings(parse(asset.supported_devices)),
      contentRating: (asset.content_rating as ContentRating | null) ?? null,
      deviceAssignable: asset.device_assignable === 1,
      isAppleBuiltin: asset.bundle_id ? isAppleBuiltinBundle(asset.bundle_id) : null,
      isIWork: asset.bundle_id ? isIWorkBundle(asset.bundle_id) : null,
    };
  }
  return evidence;
}

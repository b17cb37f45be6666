import type { Confidence, Evidence, EvidenceItem } from '../evidence.ts';
import {
  CELLULAR_LIMIT_IOS13,
  CELLULAR_LIMIT_OLDER,
  HANDED_OVER,
  NOT_DOWNLOADED,
  STALL_AFTER_ACK_MS,
} from '../tables.ts';
import { deviceFresh, fact, hit, majorVersion, silenceMs, weaker } from './facts.ts';
import type { Rule, RuleHit } from './facts.ts';

/** The network between the device and Apple: installs that stall, apps too large for cellular. */

/** Acknowledged but never finished: something between the device and Apple stops the download. */
export const stalledInstallRule: Rule = (e) => {
  const j = e.job;
  if (!j?.status) return [];
  const ackAge = j.ackAt ? e.now.getTime() - j.ackAt.getTime() : undefined;
  const stalled =
    j.status === 'session_timeout' ||
    ((j.status === 'executing' || j.status === 'request_timeout') &&
      ackAge !== undefined &&
      ackAge > STALL_AFTER_ACK_MS);
  if (!stalled) return [];
  const ev: EvidenceItem[] = [fact('job.status', j.status, 'job')];
  if (j.ackAt) ev.push(fact('job.ackAt', j.ackAt, 'job'));
  const lastStatus = j.managedAppStatusesSeen?.at(-1);
  if (lastStatus) ev.push(fact('managedApp.lastStatus', lastStatus, 'managed_application_list'));
  const out: RuleHit[] = [];
  const others = e.network?.otherDevicesSameNetworkStalled ?? 0;
  const reachable = deviceFresh(e);
  if (reachable) ev.push(fact('device.lastSeenAt', e.device!.lastSeenAt!, 'checkin'));
  if (others >= 2 && (reachable || silenceMs(e) === undefined)) {
    out.push(
      hit('network.apple_blocked', 'likely', ...ev, fact('network.otherDevicesStalled', others, 'haishin')),
    );
  } else {
    out.push(hit('network.apple_blocked', 'possible', ...ev));
  }
  if (e.network?.filteringDetected === true) {
    out.push(hit('network.filtering', 'likely', ...ev, fact('network.filteringDetected', true, 'haishin')));
  } else {
    out.push(hit('network.filtering', 'possible', ...ev));
  }
  // A device that reached haishin recently has a working network; otherwise losing it is a candidate.
  if (!reachable) out.push(hit('network.inactive', 'possible', ...ev));
  return out;
};

/** Large apps wait for Wi-Fi: ≥ 200 MB on iOS 13+, ≥ 150 MB before (DESIGN §4). */
export const wifiSizeRule: Rule = (e) => {
  const size = e.app?.sizeBytes;
  const d = e.device;
  if (typeof size !== 'number' || !d || d.onWifi === true) return [];
  const major = majorVersion(d.osVersion);
  const limit =
    major === null ? CELLULAR_LIMIT_OLDER : major >= 13 ? CELLULAR_LIMIT_IOS13 : CELLULAR_LIMIT_OLDER;
  if (size < limit) return [];
  // The device took the install and then did not download it: what one waiting for Wi-Fi does.
  const waiting = downloadWaitingFacts(e);
  let confidence: Confidence;
  if (d.onWifi === false && d.cellular === true) confidence = 'confirmed';
  else if (d.onWifi === false) confidence = 'likely';
  else if (d.cellular === true) confidence = waiting.length > 0 ? 'likely' : 'possible';
  else return [];
  // With the OS unknown only the lower limit is certain; a size between the two limits may pass.
  if (major === null && size < CELLULAR_LIMIT_IOS13) confidence = weaker(confidence);
  const ev = [
    fact('app.sizeBytes', size, 'app_metadata'),
    fact('device.cellular', d.cellular ?? null, 'device_information'),
  ];
  if (d.onWifi === false) ev.push(fact('device.onWifi', false, 'device_information'));
  if (d.osVersion) ev.push(fact('device.osVersion', d.osVersion, 'device_information'));
  return [hit('network.wifi_required_for_size', confidence, ...ev, ...waiting)];
};

/**
 * Signs that the accepted install sits undownloaded: InstalledApplicationList says
 * `DownloadWaiting` (or `Installing`) for the app, or a job that did not finish last saw the app
 * `Installing` / `Queued` in ManagedApplicationList.
 */
function downloadWaitingFacts(e: Evidence): EvidenceItem[] {
  const j = e.job;
  if (!j?.status || j.status === 'success') return [];
  const out: EvidenceItem[] = [];
  const bundle = e.app?.bundleId;
  const copy = bundle ? e.device?.installedApps?.find((a) => a.bundleId === bundle) : undefined;
  if (copy?.downloadWaiting === true)
    out.push(fact('installedApp.downloadWaiting', true, 'installed_application_list'));
  else if (copy?.installing === true)
    out.push(fact('installedApp.installing', true, 'installed_application_list'));
  const last = j.managedAppStatusesSeen?.at(-1);
  if (last && NOT_DOWNLOADED.has(last) && (j.ackAt || HANDED_OVER.has(j.status)))
    out.push(fact('managedApp.lastStatus', last, 'managed_application_list'));
  return out;
}

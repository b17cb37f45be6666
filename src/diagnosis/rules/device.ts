import { BYTES_PER_GB, STORAGE_MARGIN } from '../tables.ts';
import { compareVersions, deviceFamily, fact, hit } from './facts.ts';
import type { Rule, RuleHit } from './facts.ts';

/** The device against the app: free storage, OS and family, a Shared iPad in use. */

/** No device code says "disk full": compare free space with the app's size (DESIGN §6). */
export const storageRule: Rule = (e) => {
  const size = e.app?.sizeBytes;
  const gb = e.device?.availableCapacityGb;
  if (typeof size !== 'number' || typeof gb !== 'number' || size <= 0) return [];
  const free = gb * BYTES_PER_GB;
  const ev = [
    fact('device.availableCapacityGb', gb, 'device_information'),
    fact('app.sizeBytes', size, 'app_metadata'),
  ];
  if (free < size) return [hit('device.storage_insufficient', 'confirmed', ...ev)];
  if (free < size * STORAGE_MARGIN) return [hit('device.storage_insufficient', 'likely', ...ev)];
  return [];
};

/**
 * The device accepted the install, then ManagedApplicationList said `Failed`: no code says why
 * (DESIGN §6). Too little free space and an OS below the app's minimum are the App Store's own
 * checks; the device's facts decide between them, and when they are missing both stay candidates
 * (the engine then asks the device). Nothing in the facts that explains it: an unknown device error.
 */
export const installFailedRule: Rule = (e) => {
  if (!(e.job?.managedAppStatusesSeen ?? []).includes('Failed')) return [];
  const failed = fact('managedApp.status', 'Failed', 'managed_application_list');
  const out: RuleHit[] = [];
  const size = e.app?.sizeBytes;
  const gb = e.device?.availableCapacityGb;
  const sizeFact = typeof size === 'number' ? [fact('app.sizeBytes', size, 'app_metadata')] : [];
  const storageKnown = typeof size === 'number' && size > 0 && typeof gb === 'number';
  let explained = false;
  if (!storageKnown) {
    out.push(hit('device.storage_insufficient', 'possible', failed, ...sizeFact));
  } else if (gb * BYTES_PER_GB < size * STORAGE_MARGIN) {
    // Tight space and a failed install: the download or its unpacking did not fit.
    out.push(
      hit(
        'device.storage_insufficient',
        'confirmed',
        failed,
        fact('device.availableCapacityGb', gb, 'device_information'),
        ...sizeFact,
      ),
    );
    explained = true;
  }
  const minimum = e.app?.minimumOsVersion;
  const os = e.device?.osVersion;
  if (!minimum || !os) {
    const known = minimum ? [fact('app.minimumOsVersion', minimum, 'app_metadata')] : [];
    out.push(hit('app.requirements_unmet', 'possible', failed, ...known));
  } else if (compareVersions(os, minimum) < 0) {
    out.push(
      hit(
        'app.requirements_unmet',
        'confirmed',
        failed,
        fact('app.minimumOsVersion', minimum, 'app_metadata'),
        fact('device.osVersion', os, 'device_information'),
      ),
    );
    explained = true;
  }
  if (!explained) {
    const ruledOut = storageKnown && !!minimum && !!os;
    out.push(hit('device.error_unknown', ruledOut ? 'likely' : 'possible', failed));
  }
  return out;
};

/** Minimum OS, device family, Apple Account. */
export const requirementsRule: Rule = (e) => {
  const a = e.app;
  const d = e.device;
  if (!a || !d) return [];
  const out: RuleHit[] = [];
  if (a.minimumOsVersion && d.osVersion && compareVersions(d.osVersion, a.minimumOsVersion) < 0) {
    out.push(
      hit(
        'app.requirements_unmet',
        'confirmed',
        fact('app.minimumOsVersion', a.minimumOsVersion, 'app_metadata'),
        fact('device.osVersion', d.osVersion, 'device_information'),
      ),
    );
  }
  const family = d.productName ? deviceFamily(d.productName) : null;
  const supported = a.supportedDevices ?? [];
  if (family && supported.length > 0) {
    const families = new Set(supported.map(deviceFamily).filter((f) => f !== null));
    if (families.size > 0 && !families.has(family)) {
      out.push(
        hit(
          'app.requirements_unmet',
          'confirmed',
          fact('app.supportedDeviceFamilies', [...families].join(', '), 'app_metadata'),
          fact('device.productName', d.productName!, 'device_information'),
        ),
      );
    }
  }
  if (a.requiresAppleId === true && d.appleIdSignedIn === false) {
    out.push(
      hit(
        'app.requirements_unmet',
        'likely',
        fact('app.requiresAppleId', true, 'app_metadata'),
        fact('device.appleIdSignedIn', false, 'device_information'),
      ),
    );
  }
  return out;
};

/** A Shared iPad installs only while nobody is logged in (DESIGN §4). */
export const sharedIpadRule: Rule = (e) => {
  const d = e.device;
  if (d?.isSharedIPad === false) return [];
  if (d?.isSharedIPad !== true) {
    // Not known to be a Shared iPad yet (no DeviceInformation): deferring an install is what one in use does.
    const deferred = e.job?.notNowCount ?? 0;
    return deferred > 0
      ? [hit('shared_ipad.users_logged_in', 'possible', fact('job.notNowCount', deferred, 'job'))]
      : [];
  }
  const shared = fact('device.isSharedIPad', true, 'device_information');
  if (typeof d.loggedInUsers === 'number' && d.loggedInUsers > 0) {
    return [
      hit(
        'shared_ipad.users_logged_in',
        'confirmed',
        shared,
        fact('device.loggedInUsers', d.loggedInUsers, 'user_list'),
      ),
    ];
  }
  const notNow = e.job?.notNowCount ?? 0;
  if (notNow > 0 && d.loggedInUsers !== 0) {
    return [hit('shared_ipad.users_logged_in', 'likely', shared, fact('job.notNowCount', notNow, 'job'))];
  }
  return [];
};

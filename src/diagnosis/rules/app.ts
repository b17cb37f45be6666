import { isAppleBuiltinBundle } from '../../core/apple-apps.ts';
import { isOlderVersion } from '../../core/app-versions.ts';
import { fact, hit, isIWork } from './facts.ts';
import type { Rule } from './facts.ts';

/** The app itself against the device: Apple's own apps, iWork, a copy already there, how it was sent. */

/** Apple's built-in apps have no App Store copy to license (src/core/apple-apps.ts). */
export const builtinAppRule: Rule = (e) => {
  const a = e.app;
  if (!a) return [];
  if (a.isAppleBuiltin === true)
    return [hit('app.apple_builtin', 'confirmed', fact('app.isAppleBuiltin', true, 'app_metadata'))];
  if (a.bundleId && isAppleBuiltinBundle(a.bundleId)) {
    return [hit('app.apple_builtin', 'confirmed', fact('app.bundleId', a.bundleId, 'app_metadata'))];
  }
  return [];
};

/** Keynote, Pages and Numbers may come pre-installed and must be deleted first (DESIGN §4). */
export const iworkRule: Rule = (e) => {
  if (!isIWork(e)) return [];
  const bundle = e.app?.bundleId ?? null;
  const ev = [fact('app.isIWork', true, 'app_metadata')];
  const installed = e.device?.installedApps;
  if (!installed) return [hit('app.iwork_preinstalled', 'possible', ...ev)];
  const copy = installed.find((a) => a.bundleId === bundle);
  if (!copy || copy.managed === true) return [];
  return [
    hit(
      'app.iwork_preinstalled',
      copy.managed === false ? 'confirmed' : 'likely',
      ...ev,
      fact('device.installedApp', copy.bundleId, 'installed_application_list'),
    ),
  ];
};

/** A user-installed copy of the app on the device (InstalledApplicationList). */
export const installedUnmanagedRule: Rule = (e) => {
  if (isIWork(e)) return [];
  const bundle = e.app?.bundleId;
  const installed = e.device?.installedApps;
  if (!bundle || !installed) return [];
  const copy = installed.find((a) => a.bundleId === bundle);
  if (!copy || copy.managed === true) return [];
  const ev = [
    fact('device.installedApp', bundle, 'installed_application_list'),
    fact('installedApp.managed', copy.managed ?? null, 'managed_application_list'),
  ];
  return [hit('app.installed_unmanaged', copy.managed === false ? 'confirmed' : 'possible', ...ev)];
};

/**
 * A VPP app must be sent with PurchaseMethod 1; otherwise the device wants an Apple Account.
 * `sentAsVpp` is read from the command sent for the job: false proves it; true, or null (nothing
 * sent), leaves this rule nothing to say. Only when what was sent is unknown does a
 * PromptingForLogin status suggest it. (Device codes such as 12040 still name it, through the
 * tables.)
 */
export const distributedAsStoreAppRule: Rule = (e) => {
  const j = e.job;
  if (!j) return [];
  if (j.sentAsVpp === false)
    return [
      hit('app.distributed_as_store_app', 'confirmed', fact('command.purchaseMethodVpp', false, 'job')),
    ];
  if (j.sentAsVpp === undefined && (j.managedAppStatusesSeen ?? []).includes('PromptingForLogin')) {
    return [
      hit(
        'app.distributed_as_store_app',
        'likely',
        fact('managedApp.status', 'PromptingForLogin', 'managed_application_list'),
      ),
    ];
  }
  return [];
};

/**
 * An app update the device did not apply (decision 0018): after the install command, the device
 * reported the app managed at a version older than the one the job expects. (A declined update,
 * `UpdateRejected`, is read through the status table by the device-error rule.)
 */
export const updateNotAppliedRule: Rule = (e) => {
  const j = e.job;
  if (!j || j.status === 'success') return [];
  if (!isOlderVersion(j.installedVersion, j.expectedVersion)) return [];
  return [
    hit(
      'app.update_not_applied',
      'confirmed',
      fact('job.expectedVersion', j.expectedVersion!, 'job'),
      fact('installedApp.version', j.installedVersion!, 'installed_application_list'),
      ...(j.isUpdate ? [fact('job.isUpdate', true, 'job')] : []),
    ),
  ];
};

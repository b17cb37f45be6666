import { engineVerdictRule } from '../verdict.ts';
import { appPolicyRule, contentRatingRule, restoredFromBackupRule } from './visibility.ts';
import {
  builtinAppRule,
  distributedAsStoreAppRule,
  installedUnmanagedRule,
  iworkRule,
  updateNotAppliedRule,
} from './app.ts';
import { installFailedRule, requirementsRule, sharedIpadRule, storageRule } from './device.ts';
import { deviceErrorRule } from './device-error.ts';
import { autoAssignRule, licenceRule, vppErrorRule } from './licence.ts';
import { stalledInstallRule, wifiSizeRule } from './network.ts';
import { pushRule, reachabilityRule } from './reachability.ts';
import { identityRule } from './identity.ts';
import { tokenPlacementRule, tokenStateRule } from './token.ts';
import type { Rule } from './facts.ts';

export type { Rule, RuleHit } from './facts.ts';
export { answeredSinceLastPush, compareVersions } from './facts.ts';
export { fallbackHits } from './fallback.ts';
export {
  appPolicyRule,
  autoAssignRule,
  builtinAppRule,
  contentRatingRule,
  deviceErrorRule,
  distributedAsStoreAppRule,
  identityRule,
  installFailedRule,
  installedUnmanagedRule,
  iworkRule,
  licenceRule,
  pushRule,
  reachabilityRule,
  requirementsRule,
  restoredFromBackupRule,
  sharedIpadRule,
  stalledInstallRule,
  storageRule,
  tokenPlacementRule,
  tokenStateRule,
  updateNotAppliedRule,
  vppErrorRule,
  wifiSizeRule,
};

export interface NamedRule {
  name: string;
  /** Meaningless for an uninstall (licences, size, requirements, visibility of the app). */
  installOnly: boolean;
  run: Rule;
}

/**
 * Every rule, each one concern, run on the same evidence by diagnose() (rank.ts) — for a job that
 * ended and for a planned one (pre-flight). The order only decides whose evidence comes first
 * when hits of one code merge.
 */
export const RULES: readonly NamedRule[] = [
  { name: 'engine_verdict', installOnly: false, run: engineVerdictRule },
  { name: 'token_state', installOnly: false, run: tokenStateRule },
  { name: 'token_placement', installOnly: true, run: tokenPlacementRule },
  { name: 'auto_assign', installOnly: true, run: autoAssignRule },
  { name: 'licence', installOnly: true, run: licenceRule },
  { name: 'vpp_error', installOnly: false, run: vppErrorRule },
  { name: 'push', installOnly: false, run: pushRule },
  { name: 'reachability', installOnly: false, run: reachabilityRule },
  { name: 'identity', installOnly: false, run: identityRule },
  { name: 'stalled_install', installOnly: true, run: stalledInstallRule },
  { name: 'storage', installOnly: true, run: storageRule },
  { name: 'install_failed', installOnly: true, run: installFailedRule },
  { name: 'wifi_size', installOnly: true, run: wifiSizeRule },
  { name: 'requirements', installOnly: true, run: requirementsRule },
  { name: 'content_rating', installOnly: true, run: contentRatingRule },
  { name: 'app_policy', installOnly: true, run: appPolicyRule },
  { name: 'shared_ipad', installOnly: true, run: sharedIpadRule },
  { name: 'builtin_app', installOnly: true, run: builtinAppRule },
  { name: 'iwork', installOnly: true, run: iworkRule },
  { name: 'installed_unmanaged', installOnly: true, run: installedUnmanagedRule },
  { name: 'restored_from_backup', installOnly: true, run: restoredFromBackupRule },
  { name: 'distributed_as_store_app', installOnly: true, run: distributedAsStoreAppRule },
  { name: 'update_not_applied', installOnly: true, run: updateNotAppliedRule },
  { name: 'device_error', installOnly: false, run: deviceErrorRule },
];

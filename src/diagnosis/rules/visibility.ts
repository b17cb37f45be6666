import type { EvidenceItem, EvidenceSource } from '../evidence.ts';
import { RATING_VALUE } from '../tables.ts';
import { fact, hit } from './facts.ts';
import type { Rule, RuleHit } from './facts.ts';

/**
 * What can hide an app that installed (the causes AFTER_SUCCESS keeps): a content-rating limit,
 * an allow or block list, a restored backup's cloud icons.
 */

/** ratingApps in force below the app's rating hides it (100 = 4+, 200 = 9+, 300 = 12+, 600 = 17+, 1000 = all). */
export const contentRatingRule: Rule = (e) => {
  const rating = e.app?.contentRating;
  const limit = e.device?.restrictions?.ratingApps;
  if (!rating || typeof limit !== 'number') return [];
  if (limit >= RATING_VALUE[rating]) return [];
  return [
    hit(
      'restriction.content_rating',
      'confirmed',
      fact('restrictions.ratingApps', limit, 'restrictions'),
      fact('app.contentRating', rating, 'app_metadata'),
    ),
  ];
};

/** Allow/block lists in force on the device, or a haishin app policy on the group. */
export const appPolicyRule: Rule = (e) => {
  const bundle = e.app?.bundleId;
  const out: RuleHit[] = [];
  const r = e.device?.restrictions;
  if (r?.allowAppInstallation === false) {
    out.push(
      hit(
        'policy.app_status_blocks',
        'likely',
        fact('restrictions.allowAppInstallation', false, 'restrictions'),
      ),
    );
  }
  if (!bundle) return out;
  const lists: {
    allow?: readonly string[] | null;
    block?: readonly string[] | null;
    source: EvidenceSource;
    prefix: string;
  }[] = [
    {
      allow: r?.allowListedAppBundleIDs,
      block: r?.blockedAppBundleIDs,
      source: 'restrictions',
      prefix: 'restrictions',
    },
    {
      allow: e.groups?.appPolicy?.allowListedAppBundleIDs,
      block: e.groups?.appPolicy?.blockedAppBundleIDs,
      source: 'group_settings',
      prefix: 'group.appPolicy',
    },
  ];
  for (const l of lists) {
    if (l.allow && l.allow.length > 0 && !l.allow.includes(bundle)) {
      out.push(
        hit(
          'policy.app_status_blocks',
          'confirmed',
          fact(`${l.prefix}.allowListedAppBundleIDs`, l.allow.join(', '), l.source),
          fact('app.bundleId', bundle, 'app_metadata'),
        ),
      );
    }
    if (l.block?.includes(bundle)) {
      out.push(
        hit(
          'policy.app_status_blocks',
          'confirmed',
          fact(`${l.prefix}.blockedAppBundleIDs`, bundle, l.source),
        ),
      );
    }
  }
  return out;
};

/** Cloud icons after restoring another device's backup (DESIGN §4). */
export const restoredFromBackupRule: Rule = (e) => {
  const d = e.device;
  const bundle = e.app?.bundleId;
  const fromList = !!bundle && (d?.managedButUninstalledBundleIds ?? []).includes(bundle);
  const fromJob = (e.job?.managedAppStatusesSeen ?? []).includes('ManagedButUninstalled');
  const restored = d?.restoredFromBackup === true;
  const ev: EvidenceItem[] = [];
  if (restored) ev.push(fact('device.restoredFromBackup', true, 'haishin'));
  if (fromList || fromJob)
    ev.push(fact('managedApp.status', 'ManagedButUninstalled', 'managed_application_list'));
  if (restored && (fromList || fromJob)) return [hit('device.restored_from_backup', 'confirmed', ...ev)];
  if (restored) return [hit('device.restored_from_backup', 'likely', ...ev)];
  // ManagedButUninstalled alone also means the user deleted the app.
  if (fromList || fromJob) return [hit('device.restored_from_backup', 'possible', ...ev)];
  return [];
};

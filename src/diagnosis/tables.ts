import type { CauseCode } from './catalogue.ts';
import { normaliseDomain } from './error-chain.ts';
import type { ChainItem } from './error-chain.ts';
import type { Confidence, ContentRating } from './evidence.ts';

/**
 * The troubleshooter's data: which cause each code names, which causes come first, and the limits
 * the rules compare facts with. No logic beyond looking a code up; the rules (rules/) read these
 * tables and the ranking (rank.ts) orders what they find. Exported so the support bundle, the
 * docs and the tests can list what is known.
 */

// Apple's built-in and iWork apps: one list for the whole server, kept in src/core.
export { APPLE_BUILTIN_BUNDLE_IDS, IWORK_BUNDLE_IDS } from '../core/apple-apps.ts';

// ---------------------------------------------------------------------------------------------
// Ranking

/**
 * Among causes of equal confidence, root causes come before the symptoms they produce: a dead
 * push certificate or an expired token makes every later step fail, so fixing it first is what
 * the administrator should see first. Lower is earlier. Typed as a full Record so a new code
 * cannot be added without a place here.
 */
export const CAUSE_PRIORITY: Readonly<Record<CauseCode, number>> = {
  'push.certificate_invalid': 1,
  'token.expired': 2,
  'token.revoked': 3,
  'token.invalid': 4,
  'token.other_mdm': 5,
  'token.not_migrated': 6,
  'token.not_registered': 7,
  'token.not_shared': 8,
  // Before "unenrolled" and "offline": an expired identity is why the device looks silent (decision 0023).
  'device.identity_expired': 8.5,
  'device.unenrolled': 9,
  'app.apple_builtin': 10,
  'app.not_device_assignable': 11,
  'app.requirements_unmet': 12,
  'autoassign.inherited_only': 13,
  'autoassign.token_misconfigured': 14,
  'license.insufficient': 15,
  'license.not_assigned': 16,
  'license.apple_refused': 17,
  'app.iwork_preinstalled': 18,
  'app.installed_unmanaged': 19,
  'app.distributed_as_store_app': 20,
  'shared_ipad.users_logged_in': 21,
  'device.storage_insufficient': 22,
  'network.wifi_required_for_size': 23,
  'device.powered_off_or_offline': 24,
  'network.inactive': 25,
  'network.apple_blocked': 26,
  'network.filtering': 27,
  'device.restored_from_backup': 28,
  'restriction.content_rating': 29,
  'policy.app_status_blocks': 30,
  'device.store_transient': 31,
  // After the causes that keep an update from applying (requirements, storage, Shared iPad users):
  // the symptom, confirmed by the version the device reported.
  'app.update_not_applied': 32,
  'device.error_unknown': 33,
};

/** After a success only what can hide an installed app is worth reporting (DESIGN §7, diagnosis). */
export const AFTER_SUCCESS: ReadonlySet<CauseCode> = new Set([
  'restriction.content_rating',
  'policy.app_status_blocks',
  'device.restored_from_backup',
]);

// ---------------------------------------------------------------------------------------------
// Limits the rules compare facts with

const MINUTE = 60_000;
/** A push younger than this is not yet a sign of silence: devices take a moment to answer. */
export const PUSH_GRACE_MS = 15 * MINUTE;
/** An acknowledged install still unverified after this long counts as stalled. */
export const STALL_AFTER_ACK_MS = 60 * MINUTE;
/** Download plus unpacking: free space below twice the app's size is tight. */
export const STORAGE_MARGIN = 2;
export const BYTES_PER_GB = 1e9;
/** DESIGN §4; sizes as Apple states them, in decimal megabytes. */
export const CELLULAR_LIMIT_IOS13 = 200e6;
export const CELLULAR_LIMIT_OLDER = 150e6;

/** The Restrictions payload's ratingApps value of each App Store age rating. */
export const RATING_VALUE: Record<ContentRating, number> = { '4+': 100, '9+': 200, '12+': 300, '17+': 600 };

// ---------------------------------------------------------------------------------------------
// Where a job stopped

/** Statuses in which a job has not failed (yet): nothing to fall back on. */
export const NOT_FAILED: ReadonlySet<string> = new Set(['success', 'waiting', 'scheduled']);
/** Statuses before the device took the command. */
export const NOT_HANDED_OVER: ReadonlySet<string> = new Set([
  'push_sending',
  'retry_waiting',
  'push_timeout',
]);
/** Statuses after the device took the command. */
export const HANDED_OVER: ReadonlySet<string> = new Set([
  'awaiting_response',
  'executing',
  'session_timeout',
]);
/** Statuses in which an unanswered push is what holds the job. */
export const PUSH_PHASE: ReadonlySet<string> = new Set([
  'push_sending',
  'push_timeout',
  'retry_waiting',
  'request_timeout',
]);
/** ManagedApplicationList statuses of an install the device accepted but has not downloaded yet. */
export const NOT_DOWNLOADED: ReadonlySet<string> = new Set(['Queued', 'Installing']);
/** How much of a raw error the fallback shows as evidence. */
export const RAW_EVIDENCE_MAX = 500;

// ---------------------------------------------------------------------------------------------
// Error code tables (DESIGN §6)

export interface CodeMapping {
  code: number;
  /** Normalised domain family (see normaliseDomain); null matches any domain. */
  family: string | null;
  meaning: string;
  causes: ReadonlyArray<readonly [CauseCode, Confidence]>;
}

const LICENCE_RETRIEVAL: CodeMapping['causes'] = [
  ['license.not_assigned', 'likely'],
  ['autoassign.token_misconfigured', 'possible'],
  ['device.powered_off_or_offline', 'possible'],
  ['network.inactive', 'possible'],
];

export const DEVICE_ERROR_MAP: readonly CodeMapping[] = [
  { code: 12064, family: 'MDMErrorDomain', meaning: 'could not retrieve licence', causes: LICENCE_RETRIEVAL },
  { code: 2605, family: 'DeviceManagement.error', meaning: 'licence not found', causes: LICENCE_RETRIEVAL },
  {
    code: 12026,
    family: 'MDMErrorDomain',
    meaning: 'licence not found',
    causes: [
      ['license.not_assigned', 'likely'],
      ['autoassign.token_misconfigured', 'possible'],
    ],
  },
  {
    code: 12047,
    family: 'MDMErrorDomain',
    meaning: 'VPP assignment not found',
    causes: [
      ['license.not_assigned', 'likely'],
      ['autoassign.token_misconfigured', 'possible'],
    ],
  },
  {
    code: 12023,
    family: 'MDMErrorDomain',
    meaning: 'Store ID could not be validated',
    causes: [
      ['app.requirements_unmet', 'likely'],
      ['license.not_assigned', 'possible'],
    ],
  },
  {
    code: 12025,
    family: 'MDMErrorDomain',
    meaning: 'app already installed',
    causes: [['app.installed_unmanaged', 'confirmed']],
  },
  {
    code: 12031,
    family: 'MDMErrorDomain',
    meaning: 'app installation disabled',
    causes: [['policy.app_status_blocks', 'likely']],
  },
  {
    code: 12035,
    family: 'MDMErrorDomain',
    meaning: 'app cannot be purchased',
    causes: [
      ['license.not_assigned', 'likely'],
      ['app.distributed_as_store_app', 'possible'],
      ['app.not_device_assignable', 'possible'],
    ],
  },
  {
    code: 12040,
    family: 'MDMErrorDomain',
    meaning: 'iTunes Store login required',
    causes: [
      ['app.distributed_as_store_app', 'likely'],
      ['app.not_device_assignable', 'possible'],
      ['app.requirements_unmet', 'possible'],
    ],
  },
  // The user declined the install prompt: no catalogue row fits, the unknown-error advice (retry) does.
  {
    code: 12063,
    family: 'MDMErrorDomain',
    meaning: 'user rejected the install',
    causes: [['device.error_unknown', 'likely']],
  },
  {
    code: 12065,
    family: 'MDMErrorDomain',
    meaning: 'system (built-in) app',
    causes: [['app.apple_builtin', 'confirmed']],
  },
  {
    code: 12021,
    family: 'MDMErrorDomain',
    meaning: 'unknown command',
    causes: [['device.error_unknown', 'likely']],
  },
  {
    code: 506,
    family: 'ASDErrorDomain',
    meaning: 'duplicate request',
    causes: [['device.store_transient', 'confirmed']],
  },
  {
    code: 9610,
    family: null,
    meaning: 'licence not found',
    causes: [
      ['license.not_assigned', 'likely'],
      ['token.other_mdm', 'possible'],
    ],
  },
  {
    code: -1009,
    family: 'NSURLErrorDomain',
    meaning: 'not connected to the internet',
    causes: [['network.inactive', 'confirmed']],
  },
  ...[-1001, -1003, -1004, -1005, -1020].map((code): CodeMapping => ({
    code,
    family: 'NSURLErrorDomain',
    meaning: 'network unreachable or timed out',
    causes: [
      ['network.inactive', 'likely'],
      ['network.apple_blocked', 'possible'],
    ],
  })),
  // TLS failures towards Apple are the mark of a filter that inspects traffic.
  ...[-1200, -1202, -1205, -1206].map((code): CodeMapping => ({
    code,
    family: 'NSURLErrorDomain',
    meaning: 'secure connection failed',
    causes: [
      ['network.filtering', 'likely'],
      ['network.apple_blocked', 'possible'],
    ],
  })),
  ...[50, 51, 60, 65].map((code): CodeMapping => ({
    code,
    family: 'NSPOSIXErrorDomain',
    meaning: 'network down or unreachable',
    causes: [['network.inactive', 'likely']],
  })),
];

export interface VppMapping {
  meaning: string;
  causes: CodeMapping['causes'];
}

const APPLE_REFUSED: VppMapping = {
  meaning: 'refused by Apple',
  causes: [['license.apple_refused', 'confirmed']],
};

export const VPP_ERROR_MAP: ReadonlyMap<number, VppMapping> = new Map<number, VppMapping>([
  [9621, { meaning: 'token expired', causes: [['token.expired', 'confirmed']] }],
  [9625, { meaning: 'token revoked', causes: [['token.revoked', 'confirmed']] }],
  [9622, { meaning: 'token invalid', causes: [['token.invalid', 'confirmed']] }],
  [9722, { meaning: 'token invalid', causes: [['token.invalid', 'confirmed']] }],
  [9709, { meaning: 'not enough licences', causes: [['license.insufficient', 'confirmed']] }],
  [9631, { meaning: 'repeated assignment without licences', causes: [['license.insufficient', 'likely']] }],
  [9707, { meaning: 'not device-assignable', causes: [['app.not_device_assignable', 'confirmed']] }],
  [
    9628,
    { meaning: 'not eligible for device assignment', causes: [['app.not_device_assignable', 'confirmed']] },
  ],
  [
    9610,
    {
      meaning: 'licence not found',
      causes: [
        ['license.not_assigned', 'likely'],
        ['token.other_mdm', 'possible'],
      ],
    },
  ],
  [9603, { meaning: 'internal error (transient)', causes: [['device.store_transient', 'likely']] }],
  [
    9643,
    { meaning: 'licence locked for a pending transfer', causes: [['device.store_transient', 'likely']] },
  ],
  [9644, { meaning: 'maintenance', causes: [['device.store_transient', 'likely']] }],
  [9646, { meaning: 'too many requests', causes: [['device.store_transient', 'likely']] }],
  ...[9624, 9626, 9627, 9630, 9632, 9700, 9701, 9702, 9703, 9704, 9705, 9706].map(
    (n): [number, VppMapping] => [n, APPLE_REFUSED],
  ),
]);

/** Token-level numbers: these concern the token, whichever device or call received them. */
export const TOKEN_VPP_NUMBERS: ReadonlySet<number> = new Set([9621, 9622, 9625, 9722]);

export const REJECTION_MAP: ReadonlyMap<string, CodeMapping['causes']> = new Map<
  string,
  CodeMapping['causes']
>([
  ['AppAlreadyInstalled', [['app.installed_unmanaged', 'confirmed']]],
  ['AppAlreadyQueued', [['device.store_transient', 'likely']]],
  ['AppStoreDisabled', [['policy.app_status_blocks', 'likely']]],
  [
    'CouldNotVerifyAppID',
    [
      ['app.requirements_unmet', 'likely'],
      ['license.not_assigned', 'possible'],
    ],
  ],
  ['ManagementChangeNotSupported', [['app.installed_unmanaged', 'likely']]],
  ['NotAnApp', [['device.error_unknown', 'likely']]],
  ['NotSupported', [['app.requirements_unmet', 'confirmed']]],
  [
    'PurchaseMethodNotSupported',
    [
      ['app.requirements_unmet', 'likely'],
      ['app.not_device_assignable', 'possible'],
    ],
  ],
  [
    'PurchaseMethodNotSupportedInMultiUser',
    [
      ['app.distributed_as_store_app', 'likely'],
      ['app.not_device_assignable', 'possible'],
    ],
  ],
  ['Other', [['device.error_unknown', 'possible']]],
]);

export const MANAGED_STATUS_MAP: ReadonlyMap<string, CodeMapping['causes']> = new Map<
  string,
  CodeMapping['causes']
>([
  ['UserInstalledApp', [['app.installed_unmanaged', 'confirmed']]],
  ['ManagementRejected', [['app.installed_unmanaged', 'likely']]],
  ['UserRejected', [['device.error_unknown', 'likely']]],
  // The user declined an update of a managed app: reported once, the old version stays.
  ['UpdateRejected', [['app.update_not_applied', 'confirmed']]],
  ['NeedsRedemption', [['app.distributed_as_store_app', 'likely']]],
  ['ManagedButUninstalled', [['device.restored_from_backup', 'possible']]],
]);
/**
 * The row of DEVICE_ERROR_MAP for an ErrorChain item: code and domain family; `exact` is false
 * when the item has no domain and the code alone matched (it could belong to another domain).
 */
export function matchDeviceCode(item: ChainItem): { mapping: CodeMapping; exact: boolean } | null {
  const family = normaliseDomain(item.domain);
  for (const mapping of DEVICE_ERROR_MAP) {
    if (mapping.code !== item.code) continue;
    if (mapping.family === null || family === mapping.family) return { mapping, exact: true };
    if (family === null) return { mapping, exact: false };
  }
  return null;
}

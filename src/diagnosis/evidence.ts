import type { JobStatus } from '../core/jobs.ts';
import type { Bilingual } from '../core/messages.ts';
import type { TokenState } from '../core/tokens.ts';
import type { Action, CauseCode } from './catalogue.ts';
import type { ChainItem, VppError } from './error-chain.ts';

/**
 * The facts the engine gathers before asking for a diagnosis. Facts can be missing or stale, so
 * every one is optional, with one convention throughout:
 *   `undefined` — haishin does not know (not gathered, not reported);
 *   `null`      — known to be absent (no auto-assign token applies, the device never checked in).
 * Rules only conclude from facts they have; an unknown fact never counts as proof either way.
 */
export interface Evidence {
  /** The diagnosis is pure: "now" comes in with the facts, never from a clock. */
  now: Date;
  job?: JobFacts | null;
  token?: TokenFacts | null;
  groups?: GroupFacts | null;
  licence?: LicenceFacts | null;
  push?: PushFacts | null;
  device?: DeviceFacts | null;
  app?: AppFacts | null;
  thresholds?: Thresholds | null;
  network?: NetworkFacts | null;
}

export interface JobFacts {
  kind?: 'install' | 'uninstall' | null;
  status?: JobStatus | null;
  retryCount?: number | null;
  licenseMode?: 'auto' | 'manual' | null;
  /** The device's ErrorChain, first item = top error. */
  errorChain?: readonly ChainItem[] | null;
  /** The raw error as received or pasted, shown when nothing in it is recognised. */
  rawError?: string | null;
  rejectionReason?: string | null;
  /**
   * Every ManagedApplicationList status seen for the app during this job, oldest first —
   * including the one-shot ones (Failed, UserRejected, ManagementRejected, UserInstalledApp)
   * that the device reports once and then drops.
   */
  managedAppStatusesSeen?: readonly string[] | null;
  /**
   * Whether the InstallApplication command sent for this job carried PurchaseMethod 1 (a VPP
   * assignment), as read from the command itself; null when no install command was sent.
   */
  sentAsVpp?: boolean | null;
  /** How many NotNow answers this job received (Shared iPad with users, busy device). */
  notNowCount?: number | null;
  /** When the command was handed to the device. */
  commandSentAt?: Date | null;
  /** When the device acknowledged it. */
  ackAt?: Date | null;
  /**
   * The reason the engine gave when it moved the job to its status (`license.not_assigned`,
   * `token.revoked`, `license 9709`, …). When it names a cause, that is the engine's verdict:
   * established before the job failed, so the diagnosis takes it as confirmed.
   */
  reason?: string | null;
  /** The job updates an app the device already has (an app update, decision 0018). */
  isUpdate?: boolean | null;
  /** The version the job must reach: the look-up's when the job was made. */
  expectedVersion?: string | null;
  /** The version the device reported for the app after the install command (its InstalledApplicationList). */
  installedVersion?: string | null;
  /** A transient error was not retried because the retry could not finish before this deadline. */
  retryWouldMiss?: { deadline: 'request' | 'session'; at: Date; retryAt: Date } | null;
}

export interface TokenFacts {
  id?: string | null;
  state?: TokenState | null;
  expiresAt?: Date | null;
  registeredGroupId?: string | null;
  /** The token is shared to the device's group (registration alone does not reach subgroups). */
  sharedToDeviceGroup?: boolean | null;
  /** Apps and Books error numbers this token received recently (9610 repeating hints at another MDM). */
  vppErrorNumbers?: readonly number[] | null;
  /** The other server's name from `mdmInfo`, when another MDM claims the location. */
  otherMdmName?: string | null;
}

export interface GroupFacts {
  deviceGroupId?: string | null;
  /** The distribution token is registered or shared to the device's group. */
  tokenReachable?: boolean | null;
  /** Tokens registered or shared to the device's group, all of them. */
  tokensUsableInGroup?: number | null;
  /**
   * Tokens the device's group could have: registered to it or to an ancestor (shareable down to
   * it), or shared to it. 0 means nothing to share from — a token must be registered first.
   */
  tokensWithinReach?: number | null;
  /** The auto-assign token in force for the device's group; null when none applies. */
  effectiveAutoAssignTokenId?: string | null;
  /** The ancestor whose setting applies; null when the group's own setting does (or there is none). */
  autoAssignInheritedFrom?: string | null;
  distributionTokenId?: string | null;
  /** A haishin app policy on the group (app-status monitoring). */
  appPolicy?: AppRestrictionLists | null;
}

export interface LicenceFacts {
  /** From Apple's assignment list: a licence of the app is assigned to the device's serial. */
  assignedToSerial?: boolean | null;
  assignmentState?: 'assigning' | 'assigned' | 'reclaiming' | 'reclaimed' | 'failed' | null;
  availableCount?: number | null;
  neededCount?: number | null;
  lastVppError?: VppError | null;
}

export type PushResultKind = 'sent' | 'unregistered' | 'bad_token' | 'certificate_problem' | 'failed';

export interface PushFacts {
  lastResult?: PushResultKind | null;
  /** APNs's reason string (`BadCertificate`, `Unregistered`, …). */
  lastReason?: string | null;
  lastPushAt?: Date | null;
  certificateNotAfter?: Date | null;
  /** Server-wide: jobs in push_sending that have waited long. Many means the push channel is down. */
  stuckInPushSendingCount?: number | null;
  /** Server-wide: enrolled devices, to read the count above as a share. */
  enrolledDeviceCount?: number | null;
}

export interface AppRestrictionLists {
  allowListedAppBundleIDs?: readonly string[] | null;
  blockedAppBundleIDs?: readonly string[] | null;
}

export interface DeviceRestrictions extends AppRestrictionLists {
  /** Numeric app rating limit: 0 none, 100 = 4+, 200 = 9+, 300 = 12+, 600 = 17+, 1000 = all. */
  ratingApps?: number | null;
  /** allowAppInstallation in force. */
  allowAppInstallation?: boolean | null;
}

export interface InstalledApp {
  bundleId: string;
  /** Managed by haishin (ManagedApplicationList), or unknown. */
  managed?: boolean | null;
  /** InstalledApplicationList `Installing`: still downloading, not installed yet. */
  installing?: boolean | null;
  /** InstalledApplicationList `DownloadWaiting`: accepted, waiting to start its download. */
  downloadWaiting?: boolean | null;
}

export interface DeviceFacts {
  status?: 'pending' | 'enrolled' | 'unenrolled' | 'deactivated' | null;
  /** Last check-in or connect; null when the device never contacted haishin. */
  lastSeenAt?: Date | null;
  /** When a CheckOut was received. */
  checkedOutAt?: Date | null;
  /** When the identity certificate the device signs with expires (decision 0023). */
  identityNotAfter?: Date | null;
  osVersion?: string | null;
  /** `iPad13,1`, `iPhone14,2`, … */
  productName?: string | null;
  /** AvailableDeviceCapacity, in GB (10^9 bytes, as iOS counts). */
  availableCapacityGb?: number | null;
  isSharedIPad?: boolean | null;
  loggedInUsers?: number | null;
  /**
   * The device has a cellular data connection (a modem: CellularTechnology other than 0, or an
   * IMEI / MEID at enrolment). Whether it is on Wi-Fi at the moment is `onWifi`.
   */
  cellular?: boolean | null;
  onWifi?: boolean | null;
  /** haishin's own signs that a backup of another device was restored onto this one. */
  restoredFromBackup?: boolean | null;
  /** Bundle ids ManagedApplicationList reports as ManagedButUninstalled. */
  managedButUninstalledBundleIds?: readonly string[] | null;
  appleIdSignedIn?: boolean | null;
  restrictions?: DeviceRestrictions | null;
  installedApps?: readonly InstalledApp[] | null;
}

export type ContentRating = '4+' | '9+' | '12+' | '17+';

export interface AppFacts {
  adamId?: string | null;
  bundleId?: string | null;
  name?: string | null;
  sizeBytes?: number | null;
  minimumOsVersion?: string | null;
  /** As the lookup API gives them (`iPadPro-iPadPro`, `iPhone12-iPhone12`, …). */
  supportedDevices?: readonly string[] | null;
  contentRating?: ContentRating | null;
  deviceAssignable?: boolean | null;
  isAppleBuiltin?: boolean | null;
  isIWork?: boolean | null;
  requiresAppleId?: boolean | null;
}

export interface Thresholds {
  /** HAISHIN_OFFLINE_AFTER. */
  offlineAfterMs?: number | null;
  /** HAISHIN_UNENROLLED_AFTER. */
  unenrolledAfterMs?: number | null;
}

export interface NetworkFacts {
  /** Other devices on the same network (same public address) whose installs stall the same way. */
  otherDevicesSameNetworkStalled?: number | null;
  /** A filtering service is known on the device or its network (content filter payload, admin note). */
  filteringDetected?: boolean | null;
}

export const DEFAULT_THRESHOLDS = { offlineAfterMs: 86_400_000, unenrolledAfterMs: 30 * 86_400_000 } as const;

export type Confidence = 'confirmed' | 'likely' | 'possible';

/** Strongest first. */
export const CONFIDENCES: readonly Confidence[] = ['confirmed', 'likely', 'possible'];

/** Where a fact came from, so the administrator can check it. */
export type EvidenceSource =
  | 'job'
  | 'error_chain'
  | 'rejection_reason'
  | 'managed_application_list'
  | 'installed_application_list'
  | 'device_information'
  | 'restrictions'
  | 'user_list'
  | 'checkin'
  | 'apns'
  | 'vpp_token'
  | 'vpp_api'
  | 'vpp_assignments'
  | 'app_metadata'
  | 'group_settings'
  | 'haishin';

export interface EvidenceItem {
  fact: string;
  value: string | number | boolean | null;
  source: EvidenceSource;
}

/** DESIGN §7. */
export interface Cause {
  code: CauseCode;
  confidence: Confidence;
  title: Bilingual;
  remedy: Bilingual;
  evidence: EvidenceItem[];
  actions: Action[];
}

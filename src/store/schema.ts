import type { ColumnType } from 'kysely';
import type { JobStep } from '../core/jobs.ts';

/**
 * Row shapes of every table. Both dialects store the same values: booleans as 0/1,
 * timestamps as ISO-8601 UTC text (sortable), JSON as text — better-sqlite3 cannot
 * bind booleans or dates, and identical rows keep one code path.
 */
export interface Database {
  settings: SettingsTable;
  leases: LeasesTable;
  vpp_notification_inbox: VppNotificationInboxTable;
  vpp_notification_ids: VppNotificationIdsTable;
  vpp_pacing: VppPacingTable;
  diagnosis_queue: DiagnosisQueueTable;
  counters: CountersTable;
  groups: GroupsTable;
  devices: DevicesTable;
  identities: IdentitiesTable;
  enrollments: EnrollmentsTable;
  commands: CommandsTable;
  command_queue: CommandQueueTable;
  command_results: CommandResultsTable;
  mdm_messages: MdmMessagesTable;
  admin_tokens: AdminTokensTable;
  admins: AdminsTable;
  audit_events: AuditEventsTable;
  vpp_tokens: VppTokensTable;
  vpp_token_shares: VppTokenSharesTable;
  auto_assign_settings: AutoAssignSettingsTable;
  vpp_assets: VppAssetsTable;
  licenses: LicensesTable;
  distributions: DistributionsTable;
  jobs: JobsTable;
  job_history: JobHistoryTable;
  auto_distributions: AutoDistributionsTable;
  app_versions: AppVersionsTable;
  device_apps: DeviceAppsTable;
  group_app_updates: GroupAppUpdatesTable;
  enrollment_links: EnrollmentLinksTable;
  scep_challenges: ScepChallengesTable;
}

export interface SettingsTable {
  key: string;
  value: string;
  updated_at: string;
}

export interface CountersTable {
  name: string;
  value: number;
}

export interface GroupsTable {
  id: string;
  name: string;
  parent_id: string | null;
  created_at: string;
  updated_at: string;
}

export type DeviceStatus = 'pending' | 'enrolled' | 'unenrolled' | 'deactivated';

export interface DevicesTable {
  id: string;
  device_number: number;
  udid: string;
  serial_number: string | null;
  group_id: string;
  name: string | null;
  model: string | null;
  model_name: string | null;
  product_name: string | null;
  os_version: string | null;
  build_version: string | null;
  imei: string | null;
  meid: string | null;
  is_supervised: number | null;
  is_shared_ipad: number;
  status: DeviceStatus;
  /** SHA-256 of the identity certificate bound at the last Authenticate (or promoted by a renewal). */
  cert_fingerprint: string;
  /** When that certificate expires (decision 0023). */
  identity_not_after: string | null;
  /** A renewed identity sent to the device and not seen yet: accepted for this device only. */
  pending_cert_fingerprint: string | null;
  /** The identity a renewal replaced: accepted until it expires. */
  previous_cert_fingerprint: string | null;
  /** The InstallProfile of the renewal in flight, and when it was queued. */
  identity_renewal_command: string | null;
  identity_renewal_at: string | null;
  enrolled_at: string | null;
  last_seen_at: string | null;
  checked_out_at: string | null;
  last_push_at: string | null;
  last_push_result: string | null;
  /** DeviceInformation QueryResponses (JSON) and when they were read. */
  facts: string | null;
  facts_at: string | null;
  restrictions: string | null;
  restrictions_at: string | null;
  shared_users: string | null;
  shared_users_at: string | null;
  installed_apps: string | null;
  installed_apps_at: string | null;
  managed_apps: string | null;
  managed_apps_at: string | null;
  created_at: string;
  updated_at: string;
}

/** Every device identity haishin issued; `device_id` is the binding made at Authenticate. */
export interface IdentitiesTable {
  fingerprint: string;
  serial_hex: string;
  group_id: string;
  issued_at: string;
  not_after: string;
  device_id: string | null;
  bound_at: string | null;
}

export type EnrollmentType = 'device' | 'user';

/** A command channel: the device itself, or a (Shared iPad) user on it. */
export interface EnrollmentsTable {
  id: string;
  device_id: string;
  type: EnrollmentType;
  user_id: string | null;
  user_short_name: string | null;
  user_long_name: string | null;
  topic: string | null;
  push_token: string | null;
  push_magic: string | null;
  /** 0 from Authenticate until the next TokenUpdate: no push, no commands. */
  enabled: number;
  token_update_count: number;
  last_seen_at: string | null;
  created_at: string;
  updated_at: string;
}

export interface CommandsTable {
  uuid: string;
  request_type: string;
  /** The complete command plist as sent to the device. */
  payload: string;
  created_at: string;
}

/** Only commands still owed to a device: answered rows leave this table, so it stays small. */
export interface CommandQueueTable {
  enrollment_id: string;
  command_uuid: string;
  priority: number;
  /** Enqueue order: timestamps tie within a millisecond, this never does. */
  seq: number;
  created_at: string;
  delivered_at: string | null;
  delivery_count: number;
  not_now_at: string | null;
  not_now_count: number;
}

export interface CommandResultsTable {
  enrollment_id: string;
  command_uuid: string;
  status: string;
  /** Raw report plist, kept for the troubleshooter and support bundles. */
  raw: string;
  error_chain: string | null;
  received_at: string;
}

export interface MdmMessagesTable {
  id: string;
  udid: string | null;
  enrollment_id: string | null;
  endpoint: 'checkin' | 'connect';
  message_type: string;
  command_uuid: string | null;
  raw: string;
  received_at: string;
}

export interface AdminTokensTable {
  id: string;
  name: string;
  /** SHA-256 of the token: the token itself is shown once and never stored. */
  token_hash: string;
  created_at: string;
  last_used_at: string | null;
  /** The administrator the token acts for (decision 0029); null only before migration 0019 ran. */
  admin_id: string | null;
  /** After this instant the token is refused; null: it does not expire. */
  expires_at: string | null;
  revoked_at: string | null;
}

export type AdminRole = 'owner' | 'admin' | 'operator' | 'viewer';

/** An administrator (decision 0029): a role, a scope (a group subtree), and API tokens of their own. */
export interface AdminsTable {
  id: string;
  name: string;
  role: AdminRole;
  /** The top group of the administrator's subtree; null: the root, the whole tree. */
  scope_group_id: string | null;
  disabled_at: string | null;
  /** The administrator who created this one; null for the first owner. */
  created_by: string | null;
  created_at: string;
  updated_at: string;
}

export interface AuditEventsTable {
  id: string;
  at: string;
  /** The administrator's id (or `system`, `apple`, … for haishin's own work; a token id before migration 0019). */
  actor: string;
  /** The admin token the administrator used (decision 0029); null for haishin's own work. */
  actor_token_id: ColumnType<string | null, string | null | undefined, string | null>;
  /** Client address of the request. */
  source: string | null;
  action: string;
  object_type: string;
  object_id: string | null;
  details: string | null;
}

export type ClaimState = 'ours' | 'other_mdm' | 'unclaimed' | 'legacy_unmigrated';

export interface VppTokensTable {
  id: string;
  group_id: string;
  org_name: string;
  location_name: string | null;
  location_id: string | null;
  expires_at: string;
  /** The sToken, sealed with HAISHIN_SECRET_KEY; never returned by the API. */
  sealed_stoken: string;
  claim_state: ClaimState;
  /** What Apple last said about the token itself: 'revoked' | 'invalid' | 'expired' | null. */
  apple_state: string | null;
  last_error: string | null;
  /** Bearer Apple sends with notifications for this token. */
  notification_auth_token: string;
  /** The last expiry warning emitted (30, 14, 7, 1 days), so each fires once. */
  last_warning_days: number | null;
  last_synced_at: string | null;
  created_at: string;
  updated_at: string;
}

export interface VppTokenSharesTable {
  token_id: string;
  group_id: string;
  created_at: string;
}

export interface AutoAssignSettingsTable {
  group_id: string;
  token_id: string;
  updated_at: string;
}

export interface VppAssetsTable {
  token_id: string;
  /** Adam ids are kept as text: Apple sends them as strings and they are identifiers, not numbers. */
  adam_id: string;
  pricing_param: string;
  product_type: string | null;
  name: string | null;
  bundle_id: string | null;
  total_count: number;
  assigned_count: number;
  available_count: number;
  device_assignable: number;
  revocable: number;
  size_bytes: number | null;
  minimum_os_version: string | null;
  supported_devices: string | null;
  content_rating: string | null;
  raw: string | null;
  synced_at: string;
}

export type LicenseState = 'assigning' | 'assigned' | 'reclaiming' | 'reclaimed' | 'failed';

export interface LicensesTable {
  id: string;
  token_id: string;
  adam_id: string;
  pricing_param: string;
  serial_number: string;
  state: LicenseState;
  origin: 'auto' | 'manual';
  /** The group whose registration or share the licence was assigned through (unsharing reclaims it). */
  via_group_id: string | null;
  event_id: string | null;
  error_code: number | null;
  created_at: string;
  updated_at: string;
}

export interface DistributionsTable {
  id: string;
  kind: 'install' | 'uninstall';
  token_id: string;
  /** JSON array of adam ids (text). */
  adam_ids: string;
  /** JSON {deviceIds?, groupIds?, includeSubgroups?}. */
  targets: string;
  license_mode: 'auto' | 'manual';
  scheduled_at: string | null;
  created_by: string;
  created_at: string;
  cancelled_at: string | null;
  /** 1: an app update (decision 0018): its jobs install a newer version over the one the device has. */
  is_update: ColumnType<number, number | undefined, number>;
  /**
   * The smallest group holding every target (decision 0029): administrators whose scope holds it
   * see the distribution. Null: the root (rows older than migration 0019).
   */
  group_id: ColumnType<string | null, string | null | undefined, string | null>;
}

export interface JobsTable {
  id: string;
  distribution_id: string;
  device_id: string;
  adam_id: string;
  kind: 'install' | 'uninstall';
  token_id: string;
  license_mode: 'auto' | 'manual';
  /** A JobStatus of src/core/jobs.ts. */
  status: string;
  /**
   * Why the job is in its status, as a short code (e.g. 'NotNow', 'license 9709',
   * 'token.not_shared'), for people: the engine never steers by it (see `step`).
   */
  reason: string | null;
  /** The engine's place within the status (a JobStep of src/core/jobs.ts); null: none. */
  step: JobStep | null;
  retry_count: number;
  attempt: number;
  /** Order of jobs on one device: one in flight, the rest wait in this order. */
  seq: number;
  bundle_id: string | null;
  command_uuid: string | null;
  /** When a worker should look at the job again (retry, verification); null: not time-driven. */
  next_at: string | null;
  push_deadline: string | null;
  session_deadline: string | null;
  request_deadline: string;
  /** JSON: {chain, rejectionReason, errorNumber, raw} of the last failure. */
  error: string | null;
  diagnosis: string | null;
  scheduled_at: string | null;
  created_at: string;
  updated_at: string;
  /**
   * The app version the look-up knew when the job was made (decision 0018): an update succeeds only
   * when the device reports at least this version; a first install records what it got.
   */
  expected_version: ColumnType<string | null, string | null | undefined, string | null>;
  /** The version the device reported for the app (ShortVersion) when the job was verified. */
  installed_version: ColumnType<string | null, string | null | undefined, string | null>;
  /** 1: the device already had the app; the job installs the newer version over it. */
  is_update: ColumnType<number, number | undefined, number>;
}

export interface JobHistoryTable {
  job_id: string;
  seq: number;
  from_status: string | null;
  to_status: string;
  at: string;
  reason: string | null;
}

/** Apps installed automatically on every device that enrolls into the group or a subgroup. */
export interface AutoDistributionsTable {
  group_id: string;
  adam_id: string;
  token_id: string;
  created_at: string;
}

/** The newest version of an app the look-up reported (decision 0018). */
export interface AppVersionsTable {
  adam_id: string;
  bundle_id: string | null;
  name: string | null;
  version: string;
  /** The version seen before `version`; null until the look-up saw a change. */
  previous_version: string | null;
  minimum_os_version: string | null;
  checked_at: string;
  /** When `version` was first seen. */
  changed_at: string;
}

/** One app of a device's last InstalledApplicationList. */
export interface DeviceAppsTable {
  device_id: string;
  bundle_id: string;
  /** ShortVersion (else Version) as the device reported it. */
  version: string | null;
  /** 1 while the app was still downloading (its version is not the one being installed yet). */
  installing: number;
  reported_at: string;
}

/** A group's own "keep apps up to date" setting; descendants without one inherit it. */
export interface GroupAppUpdatesTable {
  group_id: string;
  keep_updated: number;
  updated_at: string;
}

export interface LeasesTable {
  name: string;
  /** The process holding it (host, pid and a random suffix). */
  holder: string;
  expires_at: string;
  /** When the current holder took it (kept while it renews). */
  acquired_at: string;
}

export interface VppNotificationInboxTable {
  id: string;
  token_id: string;
  body: string;
  received_at: string;
}

/** Per-group enrollment links (decision 0022): only the token's SHA-256 is stored. */
export interface EnrollmentLinksTable {
  id: string;
  group_id: string;
  token_hash: string;
  label: string | null;
  created_at: string;
  created_by: string | null;
  expires_at: string | null;
  max_uses: number | null;
  use_count: ColumnType<number, number | undefined, number>;
  last_used_at: string | null;
  revoked_at: string | null;
}

/** The Apps and Books pacing per location, shared by every process (decision 0021). */
export interface VppPacingTable {
  location: string;
  /** The token bucket's theoretical arrival time, ms since the epoch. */
  tat: number;
}

/** Failed jobs waiting for their background diagnosis, claimed by one process at a time (decision 0021). */
export interface DiagnosisQueueTable {
  job_id: string;
  queued_at: string;
  claimed_by: string | null;
  claim_expires_at: string | null;
}

/** One-time SCEP challenges (decision 0024): only the challenge's SHA-256 is stored. */
export interface ScepChallengesTable {
  id: string;
  challenge_hash: string;
  group_id: string;
  device_id: string | null;
  created_at: string;
  expires_at: string;
  used_at: string | null;
  transaction_id: string | null;
  public_key_sha256: string | null;
  cert_fingerprint: string | null;
  cert_pem: string | null;
}

/** Apps and Books notification ids claimed or applied, per token (decision 0026). */
export interface VppNotificationIdsTable {
  token_id: string;
  notification_id: string;
  received_at: string;
  claimed_by: string | null;
  claim_expires_at: string | null;
  applied_at: string | null;
}

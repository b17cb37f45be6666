import { isAppleBuiltinBundle, isIWorkBundle } from '../core/apple-apps.ts';
import { CATALOGUE } from './catalogue.ts';
import type { CauseCode } from './catalogue.ts';
import { isVppErrorNumber, normaliseDomain } from './error-chain.ts';
import type { ChainItem } from './error-chain.ts';
import { DEFAULT_THRESHOLDS } from './evidence.ts';
import type { Cause, Confidence, ContentRating, Evidence, EvidenceItem, EvidenceSource } from './evidence.ts';
import { engineVerdictRule } from './verdict.ts';

// Apple's built-in and iWork apps: one list for the whole server, kept in src/core.
export { APPLE_BUILTIN_BUNDLE_IDS, IWORK_BUNDLE_IDS } from '../core/apple-apps.ts';

/** One finding of one rule: a cause, how sure, and the facts that say so. */
export interface RuleHit {
  code: CauseCode;
  confidence: Confidence;
  evidence: EvidenceItem[];
}

export type Rule = (e: Evidence) => RuleHit[];

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
  'device.error_unknown': 32,
};

/** After a success only what can hide an installed app is worth reporting (DESIGN §7, diagnosis). */
const AFTER_SUCCESS: ReadonlySet<CauseCode> = new Set([
  'restriction.content_rating',
  'policy.app_status_blocks',
  'device.restored_from_backup',
]);

// ---------------------------------------------------------------------------------------------
// Small helpers

const MINUTE = 60_000;
/** A push younger than this is not yet a sign of silence: devices take a moment to answer. */
const PUSH_GRACE_MS = 15 * MINUTE;
/** An acknowledged install still unverified after this long counts as stalled. */
const STALL_AFTER_ACK_MS = 60 * MINUTE;
/** Download plus unpacking: free space below twice the app's size is tight. */
const STORAGE_MARGIN = 2;
const BYTES_PER_GB = 1e9;
/** DESIGN §4; sizes as Apple states them, in decimal megabytes. */
const CELLULAR_LIMIT_IOS13 = 200e6;
const CELLULAR_LIMIT_OLDER = 150e6;

const RATING_VALUE: Record<ContentRating, number> = { '4+': 100, '9+': 200, '12+': 300, '17+': 600 };

function hit(code: CauseCode, confidence: Confidence, ...evidence: EvidenceItem[]): RuleHit {
  return { code, confidence, evidence };
}

function fact(f: string, value: EvidenceItem['value'] | Date, source: EvidenceSource): EvidenceItem {
  return { fact: f, value: value instanceof Date ? value.toISOString() : value, source };
}

/** One step weaker; used when a fact is indirect (no domain on a code, an unknown mode). */
function weaker(c: Confidence): Confidence {
  return c === 'confirmed' ? 'likely' : 'possible';
}

function thresholds(e: Evidence): { offlineAfterMs: number; unenrolledAfterMs: number } {
  return {
    offlineAfterMs: e.thresholds?.offlineAfterMs ?? DEFAULT_THRESHOLDS.offlineAfterMs,
    unenrolledAfterMs: e.thresholds?.unenrolledAfterMs ?? DEFAULT_THRESHOLDS.unenrolledAfterMs,
  };
}

/** Milliseconds since the device last contacted haishin; undefined when unknown or never. */
function silenceMs(e: Evidence): number | undefined {
  const seen = e.device?.lastSeenAt;
  return seen ? e.now.getTime() - seen.getTime() : undefined;
}

function deviceFresh(e: Evidence): boolean {
  const s = silenceMs(e);
  return s !== undefined && s <= thresholds(e).offlineAfterMs;
}

/**
 * The device contacted haishin after the last push (an Idle poll, a NotNow, any answer): by that
 * evidence it is on and on a network, whatever happened to the job. A push younger than the grace
 * counts as not yet due when the device answered this job; a silence past the offline threshold
 * is silence. Returns the facts that show it, or null when they do not.
 */
export function answeredSinceLastPush(e: Evidence): EvidenceItem[] | null {
  const seen = e.device?.lastSeenAt;
  if (!seen || !deviceFresh(e)) return null;
  const pushed = e.push?.lastPushAt ?? null;
  const j = e.job;
  const answeredJob =
    !!j && (!!j.commandSentAt || !!j.ackAt || (j.notNowCount ?? 0) > 0 || (j.errorChain?.length ?? 0) > 0);
  const seenFact = fact('device.lastSeenAt', seen, 'checkin');
  if (pushed && seen.getTime() >= pushed.getTime())
    return [seenFact, fact('push.lastPushAt', pushed, 'apns')];
  const pushDue =
    pushed !== null && (j?.status === 'push_timeout' || e.now.getTime() - pushed.getTime() > PUSH_GRACE_MS);
  if (!answeredJob || pushDue) return null;
  const ev = [seenFact];
  if ((j?.notNowCount ?? 0) > 0) ev.push(fact('job.notNowCount', j!.notNowCount!, 'job'));
  else if (j?.commandSentAt) ev.push(fact('job.commandSentAt', j.commandSentAt, 'job'));
  return ev;
}

function versionParts(v: string): number[] {
  return v
    .split(/[^\d]+/)
    .filter((p) => p !== '')
    .map(Number);
}

/** Negative when a < b, as iOS orders versions (13.0 = 13 = 13.0.0). */
export function compareVersions(a: string, b: string): number {
  const pa = versionParts(a);
  const pb = versionParts(b);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

function majorVersion(v: string | null | undefined): number | null {
  if (!v) return null;
  const first = versionParts(v)[0];
  return first === undefined ? null : first;
}

function deviceFamily(name: string): string | null {
  const m = /^(iPad|iPhone|iPod|AppleTV|Watch|Mac|RealityDevice)/i.exec(name);
  return m ? m[1]!.toLowerCase() : null;
}

function isIWork(e: Evidence): boolean {
  const bundle = e.app?.bundleId;
  return e.app?.isIWork === true || (bundle !== null && bundle !== undefined && isIWorkBundle(bundle));
}

function chainOf(e: Evidence): readonly ChainItem[] {
  return e.job?.errorChain ?? [];
}

function describeItem(item: ChainItem): string {
  const domain = item.domain ? `${item.domain} ` : '';
  const text = item.description ?? item.englishDescription;
  return `${domain}${item.code}${text ? `: ${text}` : ''}`;
}

function chainEvidence(chain: readonly ChainItem[]): EvidenceItem[] {
  return chain.map((item, i) => fact(`error_chain[${i}]`, describeItem(item), 'error_chain'));
}

// ---------------------------------------------------------------------------------------------
// Error code tables (DESIGN §6). Exported so the support bundle and docs can list what is known.

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
const TOKEN_VPP_NUMBERS = new Set([9621, 9622, 9625, 9722]);

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
  ['NeedsRedemption', [['app.distributed_as_store_app', 'likely']]],
  ['ManagedButUninstalled', [['device.restored_from_backup', 'possible']]],
]);

function matchDeviceCode(item: ChainItem): { mapping: CodeMapping; exact: boolean } | null {
  const family = normaliseDomain(item.domain);
  for (const mapping of DEVICE_ERROR_MAP) {
    if (mapping.code !== item.code) continue;
    if (mapping.family === null || family === mapping.family) return { mapping, exact: true };
    if (family === null) return { mapping, exact: false };
  }
  return null;
}

/** An unmanaged copy of an iWork app is the pre-installed one: a different remedy (delete it). */
function swapForIWork(e: Evidence, hits: RuleHit[]): RuleHit[] {
  if (!isIWork(e)) return hits;
  return hits.map((h) =>
    h.code === 'app.installed_unmanaged' ? { ...h, code: 'app.iwork_preinstalled' } : h,
  );
}

// ---------------------------------------------------------------------------------------------
// Rules, one concern each

/** Token state as haishin and Apple see it. */
export const tokenStateRule: Rule = (e) => {
  const t = e.token;
  if (!t) return [];
  const out: RuleHit[] = [];
  const state = t.state ? fact('token.state', t.state, 'vpp_token') : null;
  const withState = (...more: EvidenceItem[]) => (state ? [state, ...more] : more);
  if (t.state === 'expired' || (t.expiresAt && t.expiresAt.getTime() <= e.now.getTime())) {
    out.push(
      hit(
        'token.expired',
        'confirmed',
        ...withState(...(t.expiresAt ? [fact('token.expiresAt', t.expiresAt, 'vpp_token')] : [])),
      ),
    );
  }
  if (t.state === 'revoked') out.push(hit('token.revoked', 'confirmed', ...withState()));
  if (t.state === 'invalid') out.push(hit('token.invalid', 'confirmed', ...withState()));
  if (t.state === 'legacy_unmigrated') out.push(hit('token.not_migrated', 'confirmed', ...withState()));
  if (t.state === 'other_mdm') {
    out.push(
      hit(
        'token.other_mdm',
        'confirmed',
        ...withState(...(t.otherMdmName ? [fact('token.otherMdm', t.otherMdmName, 'vpp_api')] : [])),
      ),
    );
  } else {
    // Licences vanishing now and then (9610) is how a second MDM on the same location shows.
    const notFound = (t.vppErrorNumbers ?? []).filter((n) => n === 9610).length;
    if (notFound > 0) {
      out.push(
        hit(
          'token.other_mdm',
          notFound >= 3 ? 'likely' : 'possible',
          fact('token.vppError9610Count', notFound, 'vpp_api'),
        ),
      );
    }
  }
  return out;
};

/** The distribution token must be registered or shared to the device's group (docs/decisions/0005). */
export const tokenPlacementRule: Rule = (e) => {
  const g = e.groups;
  const t = e.token;
  const out: RuleHit[] = [];
  const deviceGroup = g?.deviceGroupId;
  let reachable = g?.tokenReachable;
  if (reachable === undefined || reachable === null) {
    if (deviceGroup && t?.registeredGroupId && typeof t.sharedToDeviceGroup === 'boolean') {
      reachable = t.registeredGroupId === deviceGroup || t.sharedToDeviceGroup;
    }
  }
  if (reachable === false) {
    const ev: EvidenceItem[] = [fact('token.reachableFromDeviceGroup', false, 'group_settings')];
    if (t?.registeredGroupId) ev.push(fact('token.registeredGroupId', t.registeredGroupId, 'vpp_token'));
    if (deviceGroup) ev.push(fact('device.groupId', deviceGroup, 'group_settings'));
    if (typeof t?.sharedToDeviceGroup === 'boolean')
      ev.push(fact('token.sharedToDeviceGroup', t.sharedToDeviceGroup, 'vpp_token'));
    if (g?.tokensWithinReach === 0) {
      // No token in the group or above it: nothing could be shared here, one must be registered.
      // The distribution's token sits beside or below the group, where no share can come from.
      const none = fact('group.tokensRegisteredOrSharedUpTheTree', 0, 'group_settings');
      out.push(hit('token.not_registered', 'confirmed', none, ...ev));
      out.push(hit('token.not_shared', 'likely', ...ev));
    } else {
      if (typeof g?.tokensWithinReach === 'number')
        ev.push(fact('group.tokensRegisteredOrSharedUpTheTree', g.tokensWithinReach, 'group_settings'));
      out.push(hit('token.not_shared', 'confirmed', ...ev));
    }
  } else if (g?.tokensUsableInGroup === 0) {
    out.push(hit('token.not_registered', 'confirmed', fact('group.tokensUsable', 0, 'group_settings')));
  } else if (g?.distributionTokenId === null && e.job?.status === 'license_failed') {
    out.push(hit('token.not_registered', 'likely', fact('distribution.tokenId', null, 'job')));
  }
  return out;
};

/** The auto-assign token in force for the device's group must be the distribution's token (DESIGN §4). */
export const autoAssignRule: Rule = (e) => {
  const g = e.groups;
  const mode = e.job?.licenseMode;
  if (mode === 'manual' || !g || g.effectiveAutoAssignTokenId === undefined || !g.distributionTokenId)
    return [];
  const effective = g.effectiveAutoAssignTokenId;
  const distribution = g.distributionTokenId;
  if (effective === distribution) return [];
  // Without the mode known, the distribution may not have relied on auto-assignment at all.
  const base: Confidence = mode === 'auto' ? 'confirmed' : 'likely';
  const ev: EvidenceItem[] = [
    fact('group.effectiveAutoAssignTokenId', effective, 'group_settings'),
    fact('distribution.tokenId', distribution, 'job'),
  ];
  if (mode) ev.push(fact('job.licenseMode', mode, 'job'));
  const inheritedFrom = g.autoAssignInheritedFrom;
  if (effective !== null && inheritedFrom) {
    ev.push(fact('group.autoAssignInheritedFrom', inheritedFrom, 'group_settings'));
    return [
      hit('autoassign.inherited_only', base, ...ev),
      hit('autoassign.token_misconfigured', weaker(base), ...ev),
    ];
  }
  return [hit('autoassign.token_misconfigured', base, ...ev)];
};

/** Apple's assignment list and licence counts. */
export const licenceRule: Rule = (e) => {
  const l = e.licence;
  if (!l) return [];
  const out: RuleHit[] = [];
  // Apple refused the assignment and said why (9709, 9707, 9624, …): that refusal is the cause, read
  // by the VPP-number rule; "no licence on the serial" is only its consequence.
  const refused = l.assignmentState === 'failed' && !!l.lastVppError;
  if (l.assignedToSerial === false && !refused) {
    // While the assignment is in flight, "not assigned yet" is expected rather than a cause.
    const inFlight = e.job?.status === 'license_assigning' || l.assignmentState === 'assigning';
    out.push(
      hit(
        'license.not_assigned',
        inFlight ? 'possible' : 'confirmed',
        fact('licence.assignedToSerial', false, 'vpp_assignments'),
      ),
    );
  }
  const avail = l.availableCount;
  const needed = l.neededCount;
  if (typeof avail === 'number' && typeof needed === 'number' && avail < needed) {
    out.push(
      hit(
        'license.insufficient',
        'confirmed',
        fact('licence.availableCount', avail, 'vpp_api'),
        fact('licence.neededCount', needed, 'haishin'),
      ),
    );
  } else if (avail === 0 && l.assignedToSerial !== true) {
    out.push(hit('license.insufficient', 'likely', fact('licence.availableCount', 0, 'vpp_api')));
  }
  if (l.assignmentState === 'failed' && !l.lastVppError) {
    out.push(hit('license.apple_refused', 'likely', fact('licence.assignmentState', 'failed', 'vpp_api')));
  }
  return out;
};

/** Apps and Books error numbers, from the last licence call, the token, or a pasted error. */
export const vppErrorRule: Rule = (e) => {
  const seen: { n: number; message: string | null; source: EvidenceSource; fact: string }[] = [];
  const last = e.licence?.lastVppError;
  if (last)
    seen.push({ n: last.errorNumber, message: last.errorMessage, source: 'vpp_api', fact: 'vpp.lastError' });
  for (const n of new Set(e.token?.vppErrorNumbers ?? [])) {
    if (TOKEN_VPP_NUMBERS.has(n))
      seen.push({ n, message: null, source: 'vpp_token', fact: 'token.vppError' });
  }
  for (const item of chainOf(e)) {
    if (item.domain === null && isVppErrorNumber(item.code)) {
      seen.push({ n: item.code, message: item.description, source: 'error_chain', fact: 'error.vppNumber' });
    }
  }
  const out: RuleHit[] = [];
  for (const s of seen) {
    const ev = fact(s.fact, s.message ? `${s.n}: ${s.message}` : s.n, s.source);
    const known = VPP_ERROR_MAP.get(s.n);
    if (known) for (const [code, conf] of known.causes) out.push(hit(code, conf, ev));
    else out.push(hit('license.apple_refused', 'likely', ev));
  }
  return out;
};

/** The push channel: certificate, and what APNs says about this device. */
export const pushRule: Rule = (e) => {
  const p = e.push;
  if (!p) return [];
  const out: RuleHit[] = [];
  if (p.lastResult === 'certificate_problem') {
    out.push(
      hit(
        'push.certificate_invalid',
        'confirmed',
        fact(
          'push.lastResult',
          p.lastReason ? `certificate_problem (${p.lastReason})` : 'certificate_problem',
          'apns',
        ),
      ),
    );
  }
  if (p.certificateNotAfter && p.certificateNotAfter.getTime() <= e.now.getTime()) {
    out.push(
      hit(
        'push.certificate_invalid',
        'confirmed',
        fact('push.certificateNotAfter', p.certificateNotAfter, 'haishin'),
      ),
    );
  }
  const stuck = p.stuckInPushSendingCount;
  if (typeof stuck === 'number' && stuck > 0) {
    const fleet = p.enrolledDeviceCount;
    const ev = [fact('server.jobsStuckInPushSending', stuck, 'haishin')];
    if (typeof fleet === 'number' && fleet > 0 && stuck >= 5 && stuck / fleet >= 0.5) {
      out.push(
        hit('push.certificate_invalid', 'likely', ...ev, fact('server.enrolledDevices', fleet, 'haishin')),
      );
    } else if (stuck >= 20) {
      out.push(hit('push.certificate_invalid', 'possible', ...ev));
    }
  }
  if (p.lastResult === 'unregistered')
    out.push(hit('device.unenrolled', 'confirmed', fact('push.lastResult', 'unregistered (410)', 'apns')));
  if (p.lastResult === 'bad_token') {
    out.push(
      hit(
        'device.unenrolled',
        'possible',
        fact('push.lastResult', p.lastReason ? `bad_token (${p.lastReason})` : 'bad_token', 'apns'),
      ),
    );
  }
  return out;
};

const PUSH_PHASE = new Set(['push_sending', 'push_timeout', 'retry_waiting', 'request_timeout']);

/** Is the device there? Enrollment state, check-out, and how long it has been silent. */
export const reachabilityRule: Rule = (e) => {
  const d = e.device;
  if (!d) return [];
  const out: RuleHit[] = [];
  if (d.status === 'unenrolled')
    out.push(hit('device.unenrolled', 'confirmed', fact('device.status', 'unenrolled', 'haishin')));
  if (d.checkedOutAt)
    out.push(hit('device.unenrolled', 'confirmed', fact('device.checkedOutAt', d.checkedOutAt, 'checkin')));

  const silence = silenceMs(e);
  const { offlineAfterMs, unenrolledAfterMs } = thresholds(e);
  if (silence !== undefined) {
    const seen = fact('device.lastSeenAt', d.lastSeenAt!, 'checkin');
    if (silence > unenrolledAfterMs) {
      const limit = fact(
        'threshold.unenrolledAfterDays',
        Math.round(unenrolledAfterMs / 86_400_000),
        'haishin',
      );
      out.push(hit('device.unenrolled', 'confirmed', seen, limit));
      out.push(hit('device.powered_off_or_offline', 'likely', seen));
      out.push(hit('network.inactive', 'possible', seen));
    } else if (silence > offlineAfterMs) {
      const limit = fact('threshold.offlineAfterHours', Math.round(offlineAfterMs / 3_600_000), 'haishin');
      out.push(hit('device.powered_off_or_offline', 'confirmed', seen, limit));
      out.push(hit('network.inactive', 'possible', seen));
    } else {
      // Recently seen, but a push sent since has gone unanswered.
      const pushedAt = e.push?.lastPushAt;
      const status = e.job?.status;
      if (
        pushedAt &&
        e.push?.lastResult === 'sent' &&
        status &&
        PUSH_PHASE.has(status) &&
        pushedAt.getTime() > d.lastSeenAt!.getTime() &&
        // A push timeout is itself the proof that the push went unanswered long enough.
        (status === 'push_timeout' || e.now.getTime() - pushedAt.getTime() > PUSH_GRACE_MS)
      ) {
        const pushed = fact('push.lastPushAt', pushedAt, 'apns');
        out.push(hit('device.powered_off_or_offline', 'likely', seen, pushed));
        out.push(hit('network.inactive', 'possible', seen, pushed));
      }
    }
  }
  return out;
};

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

/** Statuses of an install the device accepted but has not downloaded yet. */
const NOT_DOWNLOADED = new Set(['Queued', 'Installing']);

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

/** A VPP app must be sent with PurchaseMethod 1; otherwise the device wants an Apple Account. */
export const distributedAsStoreAppRule: Rule = (e) => {
  const j = e.job;
  if (!j) return [];
  if (j.sentAsVpp === false)
    return [
      hit('app.distributed_as_store_app', 'confirmed', fact('command.purchaseMethodVpp', false, 'job')),
    ];
  if (j.sentAsVpp !== true && (j.managedAppStatusesSeen ?? []).includes('PromptingForLogin')) {
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

/** The device's ErrorChain, RejectionReason and the one-shot ManagedApplicationList statuses. */
export const deviceErrorRule: Rule = (e) => {
  const j = e.job;
  if (!j) return [];
  let out: RuleHit[] = [];
  const chain = chainOf(e);
  let recognised = false;
  chain.forEach((item, i) => {
    if (item.domain === null && isVppErrorNumber(item.code)) {
      recognised = true; // vppErrorRule reads these
      return;
    }
    const m = matchDeviceCode(item);
    if (!m) return;
    recognised = true;
    const ev = fact(`error_chain[${i}]`, describeItem(item), 'error_chain');
    // A code read without its domain could belong to another domain: it proves less.
    for (const [code, conf] of m.mapping.causes)
      out.push(hit(code, m.exact || conf !== 'confirmed' ? conf : 'likely', ev));
  });
  if (chain.length > 0 && !recognised)
    out.push(hit('device.error_unknown', 'likely', ...chainEvidence(chain)));

  const reason = j.rejectionReason;
  if (reason) {
    const causes = REJECTION_MAP.get(reason) ?? [['device.error_unknown', 'possible'] as const];
    for (const [code, conf] of causes)
      out.push(hit(code, conf, fact('rejectionReason', reason, 'rejection_reason')));
  }
  for (const status of new Set(j.managedAppStatusesSeen ?? [])) {
    if (status === 'ManagedButUninstalled') continue; // restoredFromBackupRule weighs it with the restore signs
    for (const [code, conf] of MANAGED_STATUS_MAP.get(status) ?? []) {
      out.push(hit(code, conf, fact('managedApp.status', status, 'managed_application_list')));
    }
  }
  out = swapForIWork(e, out);
  return refineWithFacts(e, out);
};

/**
 * A code names several candidate causes; facts haishin holds rule some of them out (DESIGN §5:
 * 12064/2605 "ranked by the evidence haishin has"). Confirmations come from the concern rules;
 * this only removes or weakens what the facts contradict.
 */
function refineWithFacts(e: Evidence, hits: RuleHit[]): RuleHit[] {
  const g = e.groups;
  const autoAssignFine =
    e.job?.licenseMode === 'manual' ||
    (g?.distributionTokenId !== undefined &&
      g?.effectiveAutoAssignTokenId !== undefined &&
      g.distributionTokenId === g.effectiveAutoAssignTokenId);
  const licenceThere = e.licence?.assignedToSerial === true;
  const online = deviceFresh(e);
  const out: RuleHit[] = [];
  for (const h of hits) {
    if (h.code === 'autoassign.token_misconfigured' && autoAssignFine) continue;
    // A device that reached haishin recently is on; it may still be unable to reach Apple.
    if (h.code === 'device.powered_off_or_offline' && online) continue;
    if (h.code === 'license.not_assigned' && licenceThere) {
      out.push({
        ...h,
        confidence: 'possible',
        evidence: [...h.evidence, fact('licence.assignedToSerial', true, 'vpp_assignments')],
      });
      continue;
    }
    out.push(h);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// The engine

export interface NamedRule {
  name: string;
  /** Meaningless for an uninstall (licences, size, requirements, visibility of the app). */
  installOnly: boolean;
  run: Rule;
}

export const RULES: readonly NamedRule[] = [
  { name: 'engine_verdict', installOnly: false, run: engineVerdictRule },
  { name: 'token_state', installOnly: false, run: tokenStateRule },
  { name: 'token_placement', installOnly: true, run: tokenPlacementRule },
  { name: 'auto_assign', installOnly: true, run: autoAssignRule },
  { name: 'licence', installOnly: true, run: licenceRule },
  { name: 'vpp_error', installOnly: false, run: vppErrorRule },
  { name: 'push', installOnly: false, run: pushRule },
  { name: 'reachability', installOnly: false, run: reachabilityRule },
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
  { name: 'device_error', installOnly: false, run: deviceErrorRule },
];

const CONFIDENCE_RANK: Record<Confidence, number> = { confirmed: 0, likely: 1, possible: 2 };

/** One hit per code: the strongest confidence, the union of the evidence (first seen first). */
export function mergeHits(hits: readonly RuleHit[]): RuleHit[] {
  const byCode = new Map<
    CauseCode,
    { confidence: Confidence; evidence: EvidenceItem[]; keys: Set<string> }
  >();
  for (const h of hits) {
    let m = byCode.get(h.code);
    if (!m) {
      m = { confidence: h.confidence, evidence: [], keys: new Set() };
      byCode.set(h.code, m);
    } else if (CONFIDENCE_RANK[h.confidence] < CONFIDENCE_RANK[m.confidence]) {
      m.confidence = h.confidence;
    }
    for (const ev of h.evidence) {
      const key = `${ev.fact}\u0000${String(ev.value)}\u0000${ev.source}`;
      if (m.keys.has(key)) continue;
      m.keys.add(key);
      m.evidence.push(ev);
    }
  }
  return [...byCode.entries()].map(([code, m]) => ({ code, confidence: m.confidence, evidence: m.evidence }));
}

/** Confirmed before likely before possible; then root causes before symptoms (CAUSE_PRIORITY). */
export function rankHits(hits: readonly RuleHit[]): RuleHit[] {
  return [...hits].sort(
    (a, b) =>
      CONFIDENCE_RANK[a.confidence] - CONFIDENCE_RANK[b.confidence] ||
      CAUSE_PRIORITY[a.code] - CAUSE_PRIORITY[b.code] ||
      a.code.localeCompare(b.code),
  );
}

const NOT_FAILED = new Set(['success', 'waiting', 'scheduled']);
const NOT_HANDED_OVER = new Set(['push_sending', 'retry_waiting', 'push_timeout']);
const HANDED_OVER = new Set(['awaiting_response', 'executing', 'session_timeout']);
const RAW_EVIDENCE_MAX = 500;

/**
 * What to say when no rule found anything for a job that did not succeed: the raw error when
 * there is one, otherwise the causes that fit the stage where the job stopped. An empty answer
 * would leave the administrator with nothing to try.
 */
export function fallbackHits(e: Evidence): RuleHit[] {
  const j = e.job;
  const status = j?.status;
  if (!j || !status || NOT_FAILED.has(status)) return [];
  const statusFact = fact('job.status', status, 'job');
  const chain = chainOf(e);
  if (chain.length > 0) return [hit('device.error_unknown', 'likely', statusFact, ...chainEvidence(chain))];
  if (j.rawError || j.rejectionReason) {
    const ev = [statusFact];
    if (j.rejectionReason) ev.push(fact('rejectionReason', j.rejectionReason, 'rejection_reason'));
    if (j.rawError) ev.push(fact('error.raw', j.rawError.slice(0, RAW_EVIDENCE_MAX), 'job'));
    return [hit('device.error_unknown', 'possible', ...ev)];
  }
  if (status === 'license_failed') {
    const last = e.licence?.lastVppError;
    const ev = last ? [statusFact, fact('vpp.lastError', last.errorNumber, 'vpp_api')] : [statusFact];
    return [hit('license.apple_refused', 'possible', ...ev)];
  }
  // Apple has not confirmed the assignment yet: slow or busy on Apple's side, which passes.
  if (status === 'license_assigning') return [hit('device.store_transient', 'possible', statusFact)];
  const acked = j.ackAt !== undefined && j.ackAt !== null;
  if (NOT_HANDED_OVER.has(status) || (status === 'request_timeout' && !acked)) {
    // It answered after the push, so it is on: the guide's last resort, not "offline".
    const answered = answeredSinceLastPush(e);
    if (answered) return [hit('device.error_unknown', 'possible', statusFact, ...answered)];
    return [
      hit('device.powered_off_or_offline', 'possible', statusFact),
      hit('network.inactive', 'possible', statusFact),
    ];
  }
  if (HANDED_OVER.has(status) || status === 'request_timeout') {
    return [
      hit('network.apple_blocked', 'possible', statusFact),
      hit('network.filtering', 'possible', statusFact),
      hit('network.inactive', 'possible', statusFact),
    ];
  }
  // device_error without a chain, server_error, cancelled: the guide's last resort.
  return [hit('device.error_unknown', 'possible', statusFact)];
}

/**
 * A device that answered after the last push is not off (DESIGN §5 evidence for
 * `device.powered_off_or_offline` is a push with no check-in since): whichever rule suggested it,
 * the device's own answer rules it out.
 */
export function notOfflineWhenAnswering(e: Evidence, hits: readonly RuleHit[]): RuleHit[] {
  const answered = hits.some((h) => h.code === 'device.powered_off_or_offline')
    ? answeredSinceLastPush(e)
    : null;
  if (!answered) return [...hits];
  const rest = hits.filter((h) => h.code !== 'device.powered_off_or_offline');
  return rest.length > 0 ? rest : [hit('device.error_unknown', 'possible', ...answered)];
}

export function toCause(h: RuleHit): Cause {
  const entry = CATALOGUE[h.code];
  return {
    code: h.code,
    confidence: h.confidence,
    title: { ...entry.title },
    remedy: { ...entry.remedy },
    evidence: h.evidence.map((ev) => ({ ...ev })),
    actions: [...entry.actions],
  };
}

/**
 * The ranked causes for a job (or a planned job when `job` is absent), best first. Never empty
 * for a job that did not succeed; may be empty for a success or a planned job with nothing wrong.
 */
export function diagnose(e: Evidence): Cause[] {
  const install = e.job?.kind !== 'uninstall';
  let hits = RULES.filter((r) => install || !r.installOnly).flatMap((r) => r.run(e));
  if (e.job?.status === 'success') hits = hits.filter((h) => AFTER_SUCCESS.has(h.code));
  let merged = mergeHits(hits);
  if (merged.length === 0) merged = mergeHits(fallbackHits(e));
  return rankHits(notOfflineWhenAnswering(e, merged)).map(toCause);
}

import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { JOB_STATUSES, TERMINAL_STATUSES } from '../src/core/jobs.ts';
import type { JobStatus } from '../src/core/jobs.ts';
import {
  ACTIONS,
  CATALOGUE,
  CAUSE_CODES,
  JOB_STATUS_LABELS,
  jobStatusLabel,
} from '../src/diagnosis/catalogue.ts';
import type { CauseCode } from '../src/diagnosis/catalogue.ts';
import {
  chainFromObjects,
  normaliseDomain,
  parseErrorText,
  sameDomainFamily,
} from '../src/diagnosis/error-chain.ts';
import type { ChainItem } from '../src/diagnosis/error-chain.ts';
import type { Evidence } from '../src/diagnosis/evidence.ts';
import {
  CAUSE_PRIORITY,
  compareVersions,
  diagnose,
  diagnoseErrorText,
  mergeHits,
} from '../src/diagnosis/index.ts';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const designPath = path.resolve(repoRoot, '../shared/DESIGN.md');
const fixtures = path.resolve(repoRoot, '../shared/fixtures');
const design = fs.readFileSync(designPath, 'utf8');

/** The rows of the first table in the DESIGN section whose heading starts with `heading`. */
function designTableRows(heading: string): string[][] {
  const start = design.indexOf(`\n## ${heading}`);
  expect(start, `DESIGN section ${heading}`).toBeGreaterThan(0);
  const end = design.indexOf('\n## ', start + 1);
  const section = design.slice(start, end < 0 ? undefined : end);
  return section
    .split('\n')
    .filter((l) => /^\|\s*`/.test(l))
    .map((l) =>
      l
        .split('|')
        .slice(1, -1)
        .map((c) => c.trim()),
    );
}

const JAPANESE = /[\u3040-\u30ff\u4e00-\u9fff]/;
const NOW = new Date('2026-11-23T09:00:00Z');
const hoursAgo = (h: number) => new Date(NOW.getTime() - h * 3_600_000);
const daysAgo = (d: number) => hoursAgo(d * 24);

/** The mobiconnect-style line of the guide, with the descriptions a Japanese iPad sends. */
const MOBICONNECT_12064 =
  'ErrorChain=ErrorCode[0]=12064, ErrorDomain[0]=MCMDMErrorDomain, LocalizedDescription[0]=iTunes Store ID 361309726 の App のライセンスを取得できませんでした。, USEnglishDescription[0]=Could not retrieve license for the app with iTunes Store ID 361309726., ErrorCode[1]=2605, ErrorDomain[1]=DeviceManagement.error, LocalizedDescription[1]=ライセンスが見つかりません, USEnglishDescription[1]=license not found';

const CHAIN_12064: ChainItem[] = parseErrorText(MOBICONNECT_12064).chain;

function codes(e: Evidence): CauseCode[] {
  return diagnose(e).map((c) => c.code);
}

// -------------------------------------------------------------------------------------------------

/** Causes added after DESIGN §5's table, each with the decision that added it. */
const ADDED_SINCE_DESIGN: readonly CauseCode[] = [
  // docs/decisions/0018-app-updates.md
  'app.update_not_applied',
  // docs/decisions/0023-device-identity-renewal.md
  'device.identity_expired',
];

describe('cause catalogue', () => {
  it('has exactly the codes of DESIGN §5, and those added since by a decision', () => {
    const designCodes = designTableRows('5.').map((cells) => /^`([^`]+)`$/.exec(cells[0]!)?.[1]);
    expect(designCodes.every((c) => typeof c === 'string')).toBe(true);
    expect(designCodes).toHaveLength(32);
    expect(new Set(CAUSE_CODES).size).toBe(CAUSE_CODES.length);
    expect([...CAUSE_CODES].sort()).toEqual([...(designCodes as string[]), ...ADDED_SINCE_DESIGN].sort());
    // Codes only ever grow: the added ones come after the design's, in the order they were added.
    expect(CAUSE_CODES.slice(-ADDED_SINCE_DESIGN.length)).toEqual(ADDED_SINCE_DESIGN);
    expect(Object.keys(CATALOGUE).sort()).toEqual([...CAUSE_CODES].sort());
  });

  it.each(CAUSE_CODES)('%s has titles and remedies in both languages and usable actions', (code) => {
    const entry = CATALOGUE[code];
    expect(entry.code).toBe(code);
    for (const text of [entry.title, entry.remedy]) {
      expect(text.ja.trim().length).toBeGreaterThan(0);
      expect(text.en.trim().length).toBeGreaterThan(0);
      expect(text.ja).toMatch(JAPANESE);
      expect(text.en).not.toMatch(JAPANESE);
    }
    // A remedy says what to do and where: long enough to hold both.
    expect(entry.remedy.ja.length).toBeGreaterThan(60);
    expect(entry.remedy.en.length).toBeGreaterThan(100);
    expect(entry.actions.length).toBeGreaterThan(0);
    for (const a of entry.actions) expect(ACTIONS).toContain(a);
    expect(entry.automatic).toBe(code === 'device.store_transient');
  });

  it('gives every code a distinct rank', () => {
    const ranks = CAUSE_CODES.map((c) => CAUSE_PRIORITY[c]);
    expect(new Set(ranks).size).toBe(CAUSE_CODES.length);
  });

  it('labels every job status as DESIGN §3 does', () => {
    const rows = designTableRows('3.');
    expect(rows.map((r) => /^`([^`]+)`/.exec(r[0]!)?.[1]).sort()).toEqual([...JOB_STATUSES].sort());
    for (const row of rows) {
      const id = /^`([^`]+)`/.exec(row[0]!)![1] as JobStatus;
      const ja = row[1]!.replace('(n)', '');
      expect(JOB_STATUS_LABELS[id].ja).toBe(ja);
      expect(JOB_STATUS_LABELS[id].en.length).toBeGreaterThan(0);
    }
    expect(jobStatusLabel('retry_waiting', 3)).toEqual({
      ja: 'リトライ待機中(3)',
      en: 'Waiting to retry (3)',
    });
    expect(jobStatusLabel('retry_waiting')).toEqual(JOB_STATUS_LABELS.retry_waiting);
    expect(jobStatusLabel('success', 3)).toEqual({ ja: '成功', en: 'Succeeded' });
  });
});

// -------------------------------------------------------------------------------------------------

describe('parseErrorText', () => {
  it('reads the mobiconnect-style 12064/2605 line with Japanese descriptions', () => {
    const parsed = parseErrorText(MOBICONNECT_12064);
    expect(parsed.format).toBe('mobiconnect');
    expect(parsed.vppError).toBeNull();
    expect(parsed.rejectionReason).toBeNull();
    expect(parsed.chain).toEqual([
      {
        code: 12064,
        domain: 'MCMDMErrorDomain',
        description: 'iTunes Store ID 361309726 の App のライセンスを取得できませんでした。',
        englishDescription: 'Could not retrieve license for the app with iTunes Store ID 361309726.',
      },
      {
        code: 2605,
        domain: 'DeviceManagement.error',
        description: 'ライセンスが見つかりません',
        englishDescription: 'license not found',
      },
    ]);
  });

  it('keeps commas inside descriptions and ignores text around the chain', () => {
    const text =
      '2026/11/20 10:15:03 [配信履歴 #88] 端末 0123 エラー: ErrorChain=ErrorCode[0]=12064, ErrorDomain[0]=MDMErrorDomain, LocalizedDescription[0]=Could not retrieve license, please try again, later\n2026/11/20 10:15:04 next line ErrorDomain';
    const parsed = parseErrorText(text);
    expect(parsed.format).toBe('mobiconnect');
    expect(parsed.chain).toEqual([
      {
        code: 12064,
        domain: 'MDMErrorDomain',
        description: 'Could not retrieve license, please try again, later',
      },
    ]);
  });

  it('tolerates spaces, missing fields, out-of-order indexes and full-width punctuation', () => {
    const text =
      'ＥｒｒｏｒＣｈａｉｎ＝ ErrorCode［１］＝２６０５，ErrorDomain [1] = DeviceManagement.error， ErrorCode［０］＝１２０６４，LocalizedDescription［０］＝ライセンスを取得できませんでした、管理者に連絡してください。';
    const parsed = parseErrorText(text);
    expect(parsed.format).toBe('mobiconnect');
    expect(parsed.chain).toEqual([
      {
        code: 12064,
        domain: null,
        description: 'ライセンスを取得できませんでした、管理者に連絡してください。',
      },
      { code: 2605, domain: 'DeviceManagement.error', description: null },
    ]);
  });

  it('keeps quotes that are part of a description', () => {
    const parsed = parseErrorText(
      'ErrorCode[0]=12021, ErrorDomain[0]=MCMDMErrorDomain, LocalizedDescription[0]=“OSUpdateStatus” is not a valid request type., USEnglishDescription[0]="quoted", ',
    );
    expect(parsed.chain[0]!.description).toBe('“OSUpdateStatus” is not a valid request type.');
    expect(parsed.chain[0]!.englishDescription).toBe('quoted');
  });

  it('uses USEnglishDescription when there is no localized one, and brackets around the list', () => {
    const parsed = parseErrorText(
      'ErrorChain=(ErrorCode[0]=12025, ErrorDomain[0]=MCMDMErrorDomain, USEnglishDescription[0]=The app (Pages) is already installed)',
    );
    expect(parsed.chain).toEqual([
      {
        code: 12025,
        domain: 'MCMDMErrorDomain',
        description: 'The app (Pages) is already installed',
        englishDescription: 'The app (Pages) is already installed',
      },
    ]);
  });

  it('reads the OpenStep-style dump of a device log', () => {
    const parsed = parseErrorText(
      'ErrorChain = ( { ErrorCode = 12064; ErrorDomain = MCMDMErrorDomain; LocalizedDescription = "Could not retrieve license; the app is 361309726"; }, { ErrorCode = 2605; ErrorDomain = "DeviceManagement.error"; } )',
    );
    expect(parsed.format).toBe('mobiconnect');
    expect(parsed.chain.map((c) => [c.code, c.domain])).toEqual([
      [12064, 'MCMDMErrorDomain'],
      [2605, 'DeviceManagement.error'],
    ]);
    expect(parsed.chain[0]!.description).toBe('Could not retrieve license; the app is 361309726');
  });

  it('reads a plist ErrorChain fragment (synthetic: no public capture exists)', () => {
    const fragment = `<array>
      <dict>
        <key>ErrorCode</key><integer>12064</integer>
        <key>ErrorDomain</key><string>MCMDMErrorDomain</string>
        <key>LocalizedDescription</key><string>App のライセンスを取得できませんでした &amp; 再試行します</string>
        <key>USEnglishDescription</key><string>Could not retrieve license for the app with iTunes Store ID 361309726.</string>
      </dict>
      <dict><key>ErrorDomain</key><string>DeviceManagement.error</string><key>ErrorCode</key><integer>2605</integer></dict>
    </array>`;
    const parsed = parseErrorText(fragment);
    expect(parsed.format).toBe('plist');
    expect(parsed.chain).toEqual([
      {
        code: 12064,
        domain: 'MCMDMErrorDomain',
        description: 'App のライセンスを取得できませんでした & 再試行します',
        englishDescription: 'Could not retrieve license for the app with iTunes Store ID 361309726.',
      },
      { code: 2605, domain: 'DeviceManagement.error', description: null },
    ]);
  });

  it('reads whole command reports from public fixtures', () => {
    const macos = parseErrorText(
      fs.readFileSync(
        path.join(fixtures, 'mdm/micromdm/macos-10.11-error_invalid_request_type.plist'),
        'utf8',
      ),
    );
    expect(macos.format).toBe('plist');
    expect(macos.chain).toEqual([
      {
        code: 12021,
        domain: 'MCMDMErrorDomain',
        description: '“OSUpdateStatus” is not a valid request type.',
        englishDescription: '“OSUpdateStatus” is not a valid request type.',
      },
    ]);
    const osstatus = parseErrorText(
      fs.readFileSync(path.join(fixtures, 'mdm/nanocmd/resp-error.plist'), 'utf8'),
    );
    expect(osstatus.chain).toEqual([
      { code: -909, domain: 'NSOSStatusErrorDomain', description: '<NSOSStatusErrorDomain:-909>' },
    ]);
  });

  it('reads the RejectionReason of an InstallApplication error report', () => {
    const report = `<?xml version="1.0" encoding="UTF-8"?>
<plist version="1.0"><dict>
  <key>CommandUUID</key><string>5B7E0C0A-0000-4000-8000-000000000001</string>
  <key>ErrorChain</key><array><dict><key>ErrorCode</key><integer>12025</integer><key>ErrorDomain</key><string>MDMErrorDomain</string></dict></array>
  <key>RejectionReason</key><string>AppAlreadyInstalled</string>
  <key>Status</key><string>Error</string>
</dict></plist>`;
    const parsed = parseErrorText(report);
    expect(parsed.rejectionReason).toBe('AppAlreadyInstalled');
    expect(parsed.chain).toEqual([{ code: 12025, domain: 'MDMErrorDomain', description: null }]);
    expect(
      parseErrorText('InstallApplication failed: RejectionReason = CouldNotVerifyAppID').rejectionReason,
    ).toBe('CouldNotVerifyAppID');
    expect(parseErrorText('the device said PurchaseMethodNotSupportedInMultiUser').rejectionReason).toBe(
      'PurchaseMethodNotSupportedInMultiUser',
    );
  });

  it('reads Apps and Books JSON errors, alone or inside other text', () => {
    expect(
      parseErrorText('{"errorNumber":9709,"errorMessage":"There are not enough licenses, {sic}"}'),
    ).toEqual({
      chain: [],
      vppError: { errorNumber: 9709, errorMessage: 'There are not enough licenses, {sic}' },
      rejectionReason: null,
      format: 'vpp_json',
    });
    const logged = parseErrorText(
      'POST /mdm/v2/assets/associate -> 200 {"eventId":null,"error":{"errorMessage":"The token has expired.","errorInfo":{"serialNumbers":["DMPX1234"]},"errorNumber":9621}} (took 120 ms)',
    );
    expect(logged.vppError).toEqual({ errorNumber: 9621, errorMessage: 'The token has expired.' });
    expect(logged.format).toBe('vpp_json');
    for (const [file, n] of [
      ['vpp/v2-error-9622-invalid-token-http200.json', 9622],
      ['vpp/v2-error-9603-internal-http500.json', 9603],
      ['vpp/v1-error-9610-license-not-found.json', 9610],
    ] as const) {
      expect(parseErrorText(fs.readFileSync(path.join(fixtures, file), 'utf8')).vppError?.errorNumber).toBe(
        n,
      );
    }
    // A JavaScript-style dump is not JSON; the fallback still reads it.
    expect(parseErrorText("{ errorNumber: 9707, errorMessage: 'not device assignable' }").vppError).toEqual({
      errorNumber: 9707,
      errorMessage: 'not device assignable',
    });
  });

  it('reads bare mentions', () => {
    expect(parseErrorText('12064')).toEqual({
      chain: [{ code: 12064, domain: null, description: null }],
      vppError: null,
      rejectionReason: null,
      format: 'bare',
    });
    expect(parseErrorText('error 9610 when assigning')).toMatchObject({
      chain: [],
      vppError: { errorNumber: 9610, errorMessage: null },
      format: 'bare',
    });
    expect(parseErrorText('ASDErrorDomain 506 が出てインストールできません').chain).toEqual([
      { code: 506, domain: 'ASDErrorDomain', description: null },
    ]);
    expect(parseErrorText('配信すると12064エラーが出ます（Adam ID 361309726、2026年11月）').chain).toEqual([
      { code: 12064, domain: null, description: null },
    ]);
    expect(parseErrorText('エラーコード：１２０４０').chain).toEqual([
      { code: 12040, domain: null, description: null },
    ]);
    expect(
      parseErrorText(
        'Error Domain=ASDErrorDomain Code=506 "Duplicate request" UserInfo={NSUnderlyingError=0x600 {Error Domain=NSURLErrorDomain Code=-1009 "The Internet connection appears to be offline."}}',
      ).chain,
    ).toEqual([
      { code: 506, domain: 'ASDErrorDomain', description: 'Duplicate request' },
      {
        code: -1009,
        domain: 'NSURLErrorDomain',
        description: 'The Internet connection appears to be offline.',
      },
    ]);
  });

  it('does not invent errors from ordinary numbers', () => {
    expect(parseErrorText('Adam ID 361309726 on 32 iPads since 2026')).toEqual({
      chain: [],
      vppError: null,
      rejectionReason: null,
      format: 'unknown',
    });
    expect(parseErrorText('').format).toBe('unknown');
  });

  it('treats MCMDMErrorDomain and MDMErrorDomain as one family', () => {
    expect(normaliseDomain('MCMDMErrorDomain')).toBe(normaliseDomain('MDMErrorDomain'));
    expect(normaliseDomain(' mdmerrordomain ')).toBe('MDMErrorDomain');
    expect(normaliseDomain('ASDErrorDomain')).toBe('ASDErrorDomain');
    expect(normaliseDomain('')).toBeNull();
    expect(normaliseDomain(null)).toBeNull();
    expect(sameDomainFamily('MCMDMErrorDomain', 'MDMErrorDomain')).toBe(true);
    expect(sameDomainFamily('MCMDMErrorDomain', 'DeviceManagement.error')).toBe(false);
  });

  it('converts an ErrorChain decoded from a device plist', () => {
    expect(
      chainFromObjects([
        { ErrorCode: 12064, ErrorDomain: 'MCMDMErrorDomain', LocalizedDescription: ' ライセンスなし ' },
        { ErrorDomain: 'no code' },
        'junk',
        {
          ErrorCode: '2605',
          ErrorDomain: 'DeviceManagement.error',
          USEnglishDescription: 'license not found',
        },
      ]),
    ).toEqual([
      { code: 12064, domain: 'MCMDMErrorDomain', description: 'ライセンスなし' },
      {
        code: 2605,
        domain: 'DeviceManagement.error',
        description: 'license not found',
        englishDescription: 'license not found',
      },
    ]);
    expect(chainFromObjects(undefined)).toEqual([]);
  });
});

// -------------------------------------------------------------------------------------------------

const failed = (extra: NonNullable<Evidence['job']> = {}): NonNullable<Evidence['job']> => ({
  kind: 'install',
  status: 'device_error',
  ...extra,
});

/** For every code, the least evidence that makes it the top-ranked cause. */
const TOP_CAUSE: Record<CauseCode, Evidence> = {
  'token.expired': {
    now: NOW,
    job: { status: 'license_failed' },
    token: { state: 'expired', expiresAt: daysAgo(2) },
  },
  'token.not_migrated': {
    now: NOW,
    job: { status: 'license_failed' },
    token: { state: 'legacy_unmigrated' },
  },
  'token.not_shared': {
    now: NOW,
    job: { status: 'license_failed' },
    token: { registeredGroupId: 'g-school', sharedToDeviceGroup: false },
    groups: { deviceGroupId: 'g-class-3' },
  },
  'token.not_registered': {
    now: NOW,
    job: { status: 'license_failed' },
    groups: { deviceGroupId: 'g-branch', tokensUsableInGroup: 0, distributionTokenId: null },
  },
  'token.other_mdm': {
    now: NOW,
    job: { status: 'license_failed' },
    token: { state: 'other_mdm', otherMdmName: 'OtherMDM' },
  },
  'token.revoked': {
    now: NOW,
    job: { status: 'license_failed' },
    licence: { lastVppError: { errorNumber: 9625, errorMessage: null } },
  },
  'token.invalid': {
    now: NOW,
    job: { status: 'license_failed' },
    licence: { lastVppError: { errorNumber: 9622, errorMessage: 'Invalid authentication token' } },
  },
  'push.certificate_invalid': {
    now: NOW,
    job: { status: 'push_sending' },
    push: { lastResult: 'certificate_problem', lastReason: 'BadCertificate' },
  },
  'device.powered_off_or_offline': {
    now: NOW,
    job: { status: 'push_timeout' },
    device: { lastSeenAt: daysAgo(3) },
  },
  'device.unenrolled': { now: NOW, job: { status: 'push_sending' }, push: { lastResult: 'unregistered' } },
  'network.inactive': {
    now: NOW,
    job: failed({
      errorChain: [{ code: -1009, domain: 'NSURLErrorDomain', description: 'オフラインのようです。' }],
    }),
  },
  'network.wifi_required_for_size': {
    now: NOW,
    job: { status: 'executing' },
    app: { sizeBytes: 450_000_000 },
    device: { osVersion: '17.5', cellular: true, onWifi: false },
  },
  'network.apple_blocked': {
    now: NOW,
    job: { status: 'session_timeout', ackAt: hoursAgo(3) },
    device: { lastSeenAt: hoursAgo(0.2) },
    network: { otherDevicesSameNetworkStalled: 12 },
  },
  'network.filtering': {
    now: NOW,
    job: { status: 'session_timeout', ackAt: hoursAgo(3) },
    network: { filteringDetected: true },
  },
  'autoassign.token_misconfigured': {
    now: NOW,
    job: { status: 'license_failed', licenseMode: 'auto' },
    groups: {
      distributionTokenId: 't-2026',
      effectiveAutoAssignTokenId: null,
      autoAssignInheritedFrom: null,
    },
  },
  'autoassign.inherited_only': {
    now: NOW,
    job: { status: 'license_failed', licenseMode: 'auto' },
    groups: {
      distributionTokenId: 't-branch',
      effectiveAutoAssignTokenId: 't-hq',
      autoAssignInheritedFrom: 'g-root',
    },
  },
  'license.not_assigned': {
    now: NOW,
    job: failed({ licenseMode: 'manual' }),
    licence: { assignedToSerial: false },
  },
  'license.insufficient': {
    now: NOW,
    job: { status: 'license_failed' },
    licence: { availableCount: 3, neededCount: 40 },
  },
  'license.apple_refused': {
    now: NOW,
    job: { status: 'license_failed' },
    licence: { lastVppError: { errorNumber: 9702, errorMessage: 'too many serial numbers' } },
  },
  'app.not_device_assignable': {
    now: NOW,
    job: { status: 'license_failed' },
    licence: { lastVppError: { errorNumber: 9707, errorMessage: null } },
  },
  'app.installed_unmanaged': {
    now: NOW,
    job: failed({ rejectionReason: 'AppAlreadyInstalled' }),
    app: { bundleId: 'jp.example.drill' },
  },
  'device.store_transient': {
    now: NOW,
    job: {
      status: 'retry_waiting',
      errorChain: [{ code: 506, domain: 'ASDErrorDomain', description: null }],
    },
  },
  'app.distributed_as_store_app': { now: NOW, job: failed({ sentAsVpp: false }) },
  'app.requirements_unmet': {
    now: NOW,
    job: failed(),
    app: { minimumOsVersion: '17.0' },
    device: { osVersion: '15.7.9', productName: 'iPad7,11' },
  },
  'app.apple_builtin': { now: NOW, job: failed(), app: { bundleId: 'com.apple.mobilesafari' } },
  'app.iwork_preinstalled': {
    now: NOW,
    job: failed(),
    app: { bundleId: 'com.apple.Keynote' },
    device: { installedApps: [{ bundleId: 'com.apple.Keynote', managed: false }] },
  },
  'device.storage_insufficient': {
    now: NOW,
    job: failed({ managedAppStatusesSeen: ['Installing', 'Failed'] }),
    app: { sizeBytes: 2_400_000_000 },
    device: { availableCapacityGb: 1.1 },
  },
  'policy.app_status_blocks': {
    now: NOW,
    job: { status: 'success' },
    app: { bundleId: 'jp.example.drill' },
    device: { restrictions: { allowListedAppBundleIDs: ['com.apple.mobilesafari', 'jp.example.browser'] } },
  },
  'restriction.content_rating': {
    now: NOW,
    job: { status: 'success' },
    app: { contentRating: '12+' },
    device: { restrictions: { ratingApps: 200 } },
  },
  'shared_ipad.users_logged_in': {
    now: NOW,
    job: { status: 'retry_waiting', notNowCount: 4 },
    device: { isSharedIPad: true, loggedInUsers: 2 },
  },
  'device.restored_from_backup': {
    now: NOW,
    job: { status: 'success', managedAppStatusesSeen: ['Managed', 'ManagedButUninstalled'] },
    device: { restoredFromBackup: true },
  },
  'device.error_unknown': {
    now: NOW,
    job: failed({
      errorChain: [{ code: 4711, domain: 'com.example.UnheardOfDomain', description: 'something odd' }],
    }),
  },
  'app.update_not_applied': {
    now: NOW,
    job: {
      kind: 'install',
      status: 'session_timeout',
      isUpdate: true,
      expectedVersion: '2.1',
      installedVersion: '2.0.3',
      ackAt: new Date(NOW.getTime() - 20 * 60_000),
    },
  },
  // Silent for 40 days because its identity expired 35 days ago: not "unenrolled", not "offline".
  'device.identity_expired': {
    now: NOW,
    job: { status: 'push_timeout' },
    device: { status: 'enrolled', lastSeenAt: daysAgo(40), identityNotAfter: daysAgo(35) },
  },
};

describe('diagnose: every catalogue code can be the top cause', () => {
  it.each(CAUSE_CODES)('%s', (code) => {
    const causes = diagnose(TOP_CAUSE[code]);
    expect(causes[0]?.code, JSON.stringify(causes.map((c) => [c.code, c.confidence]))).toBe(code);
    const top = causes[0]!;
    expect(top.evidence.length).toBeGreaterThan(0);
    expect(top.title).toEqual(CATALOGUE[code].title);
    expect(top.remedy).toEqual(CATALOGUE[code].remedy);
    expect(top.actions).toEqual([...CATALOGUE[code].actions]);
    expect(new Set(causes.map((c) => c.code)).size).toBe(causes.length);
  });
});

describe('diagnose: the 12064 / 2605 chain is ranked by the evidence', () => {
  const base = (extra: Partial<Evidence> = {}): Evidence => ({
    now: NOW,
    job: failed({ errorChain: CHAIN_12064 }),
    ...extra,
  });

  it('without more facts: licence not assigned (likely) first, the others possible', () => {
    const causes = diagnose(base());
    expect(causes.map((c) => [c.code, c.confidence])).toEqual([
      ['license.not_assigned', 'likely'],
      ['autoassign.token_misconfigured', 'possible'],
      ['device.powered_off_or_offline', 'possible'],
      ['network.inactive', 'possible'],
    ]);
    expect(causes[0]!.evidence.map((e) => e.fact)).toEqual(['error_chain[0]', 'error_chain[1]']);
  });

  it("Apple's assignment list has no licence for the serial → license.not_assigned confirmed first", () => {
    const causes = diagnose(base({ licence: { assignedToSerial: false } }));
    expect(causes[0]).toMatchObject({ code: 'license.not_assigned', confidence: 'confirmed' });
    expect(causes[0]!.evidence).toContainEqual({
      fact: 'licence.assignedToSerial',
      value: false,
      source: 'vpp_assignments',
    });
  });

  it('the effective auto-assign token differs from the distribution token → autoassign.token_misconfigured confirmed first', () => {
    const causes = diagnose(
      base({
        job: failed({ errorChain: CHAIN_12064, licenseMode: 'auto' }),
        groups: {
          distributionTokenId: 't-new',
          effectiveAutoAssignTokenId: 't-old',
          autoAssignInheritedFrom: null,
        },
      }),
    );
    expect(causes[0]).toMatchObject({ code: 'autoassign.token_misconfigured', confidence: 'confirmed' });
    expect(causes[1]).toMatchObject({ code: 'license.not_assigned', confidence: 'likely' });
  });

  it('an inherited auto-assign setting with another token → autoassign.inherited_only first', () => {
    const causes = diagnose(
      base({
        job: failed({ errorChain: CHAIN_12064, licenseMode: 'auto' }),
        groups: {
          distributionTokenId: 't-branch',
          effectiveAutoAssignTokenId: 't-hq',
          autoAssignInheritedFrom: 'g-root',
        },
      }),
    );
    expect(causes.slice(0, 2).map((c) => [c.code, c.confidence])).toEqual([
      ['autoassign.inherited_only', 'confirmed'],
      ['autoassign.token_misconfigured', 'likely'],
    ]);
  });

  it('the last check-in is older than offlineAfter → device.powered_off_or_offline first', () => {
    const causes = diagnose(
      base({ device: { lastSeenAt: hoursAgo(30) }, thresholds: { offlineAfterMs: 86_400_000 } }),
    );
    expect(causes[0]).toMatchObject({ code: 'device.powered_off_or_offline', confidence: 'confirmed' });
    expect(causes[0]!.evidence).toContainEqual({
      fact: 'device.lastSeenAt',
      value: hoursAgo(30).toISOString(),
      source: 'checkin',
    });
    expect(causes[1]).toMatchObject({ code: 'license.not_assigned', confidence: 'likely' });
    expect(codes(base({ device: { lastSeenAt: hoursAgo(30) } }))).toContain('network.inactive');
  });

  it('facts that rule candidates out remove or weaken them', () => {
    const manualOnline = diagnose(
      base({
        job: failed({ errorChain: CHAIN_12064, licenseMode: 'manual' }),
        device: { lastSeenAt: hoursAgo(0.1) },
      }),
    );
    expect(manualOnline.map((c) => c.code)).toEqual(['license.not_assigned', 'network.inactive']);
    const licenceThere = diagnose(base({ licence: { assignedToSerial: true } }));
    expect(licenceThere.find((c) => c.code === 'license.not_assigned')?.confidence).toBe('possible');
  });

  it('works from the pasted text alone (POST /diagnose/error)', () => {
    const answer = diagnoseErrorText(MOBICONNECT_12064, NOW);
    expect(answer.chain.map((c) => c.code)).toEqual([12064, 2605]);
    expect(answer.causes.map((c) => c.code)).toEqual([
      'license.not_assigned',
      'autoassign.token_misconfigured',
      'device.powered_off_or_offline',
      'network.inactive',
    ]);
  });
});

describe('diagnose: other mappings', () => {
  it.each([
    ['{"errorNumber":9709,"errorMessage":"Not enough licenses"}', 'license.insufficient', 'confirmed'],
    ['error 9621', 'token.expired', 'confirmed'],
    ['VPP error 9722', 'token.invalid', 'confirmed'],
    ['ErrorCode[0]=12065, ErrorDomain[0]=MDMErrorDomain', 'app.apple_builtin', 'confirmed'],
    ['ErrorCode[0]=12025, ErrorDomain[0]=MCMDMErrorDomain', 'app.installed_unmanaged', 'confirmed'],
    ['ErrorCode[0]=12040, ErrorDomain[0]=MCMDMErrorDomain', 'app.distributed_as_store_app', 'likely'],
    ['ErrorCode[0]=12031, ErrorDomain[0]=MCMDMErrorDomain', 'policy.app_status_blocks', 'likely'],
    ['ErrorCode[0]=12023, ErrorDomain[0]=MCMDMErrorDomain', 'app.requirements_unmet', 'likely'],
    ['ErrorCode[0]=12026, ErrorDomain[0]=MCMDMErrorDomain', 'license.not_assigned', 'likely'],
    ['ErrorCode[0]=12047, ErrorDomain[0]=MDMErrorDomain', 'license.not_assigned', 'likely'],
    ['ErrorCode[0]=12035, ErrorDomain[0]=MDMErrorDomain', 'license.not_assigned', 'likely'],
    ['ErrorCode[0]=12063, ErrorDomain[0]=MDMErrorDomain', 'device.error_unknown', 'likely'],
    ['ASDErrorDomain 506', 'device.store_transient', 'confirmed'],
    // Without its domain 506 could be anything: the code proves less.
    ['RejectionReason=AppAlreadyQueued', 'device.store_transient', 'likely'],
    ['{"errorNumber": 9603,"errorMessage": "Internal server error"}', 'device.store_transient', 'likely'],
    ['error 9610', 'license.not_assigned', 'likely'],
    ['something went wrong, no code at all', 'device.error_unknown', 'possible'],
  ] as const)('%s → %s (%s)', (text, code, confidence) => {
    const causes = diagnoseErrorText(text, NOW).causes;
    expect(causes[0]).toMatchObject({ code, confidence });
  });

  it('9610 also points at a second MDM; repeated 9610 on the token makes it likely', () => {
    expect(diagnoseErrorText('error 9610', NOW).causes.map((c) => c.code)).toContain('token.other_mdm');
    const causes = diagnose({
      now: NOW,
      job: { status: 'license_failed' },
      token: { vppErrorNumbers: [9610, 9610, 9610] },
    });
    expect(causes[0]).toMatchObject({ code: 'token.other_mdm', confidence: 'likely' });
  });

  it('an unmanaged iWork app is the pre-installed one, not a takeover case', () => {
    const causes = diagnose({
      now: NOW,
      job: failed({ rejectionReason: 'AppAlreadyInstalled' }),
      app: { bundleId: 'com.apple.Pages' },
    });
    expect(causes[0]).toMatchObject({ code: 'app.iwork_preinstalled', confidence: 'confirmed' });
    expect(causes.map((c) => c.code)).not.toContain('app.installed_unmanaged');
  });

  it("reads the server's one list of Apple apps (src/core/apple-apps.ts), whatever the bundle id's case", () => {
    const top = (bundleId: string) => diagnose({ now: NOW, job: failed(), app: { bundleId } })[0]?.code;
    for (const builtin of ['com.apple.Maps', 'com.apple.freeform', 'com.apple.MobileSafari'])
      expect(top(builtin), builtin).toBe('app.apple_builtin');
    expect(top('com.apple.keynote')).toBe('app.iwork_preinstalled');
    for (const distributable of ['com.apple.mobilegarageband', 'com.apple.iMovie'])
      expect(top(distributable), distributable).not.toBe('app.apple_builtin');
  });

  it('applies the Wi-Fi size limits of DESIGN §4', () => {
    const wifi = (sizeBytes: number, osVersion: string) =>
      diagnose({ now: NOW, app: { sizeBytes }, device: { osVersion, cellular: true, onWifi: false } }).map(
        (c) => c.code,
      );
    expect(wifi(199_000_000, '16.0')).not.toContain('network.wifi_required_for_size');
    expect(wifi(200_000_000, '16.0')).toContain('network.wifi_required_for_size');
    expect(wifi(160_000_000, '12.5.7')).toContain('network.wifi_required_for_size');
    expect(wifi(149_000_000, '12.5.7')).not.toContain('network.wifi_required_for_size');
    expect(
      diagnose({ now: NOW, app: { sizeBytes: 900_000_000 }, device: { osVersion: '17.0', onWifi: true } }),
    ).toEqual([]);
  });

  it('reads ratingApps numerically (100 = 4+, 200 = 9+, 300 = 12+, 600 = 17+, 1000 = all)', () => {
    const hidden = (ratingApps: number, contentRating: '4+' | '9+' | '12+' | '17+') =>
      codes({ now: NOW, app: { contentRating }, device: { restrictions: { ratingApps } } }).includes(
        'restriction.content_rating',
      );
    expect(hidden(1000, '17+')).toBe(false);
    expect(hidden(600, '17+')).toBe(false);
    expect(hidden(300, '17+')).toBe(true);
    expect(hidden(300, '12+')).toBe(false);
    expect(hidden(100, '9+')).toBe(true);
    expect(hidden(0, '4+')).toBe(true);
  });

  it('reads block lists and the group app policy', () => {
    const blocked = diagnose({
      now: NOW,
      job: failed(),
      app: { bundleId: 'jp.example.game' },
      device: { restrictions: { blockedAppBundleIDs: ['jp.example.game'] } },
    });
    expect(blocked[0]).toMatchObject({ code: 'policy.app_status_blocks', confidence: 'confirmed' });
    const group = diagnose({
      now: NOW,
      app: { bundleId: 'jp.example.game' },
      groups: { appPolicy: { blockedAppBundleIDs: ['jp.example.game'] } },
    });
    expect(group[0]?.code).toBe('policy.app_status_blocks');
  });

  it('compares OS versions numerically and checks the device family', () => {
    expect(compareVersions('9.3.5', '10.0')).toBeLessThan(0);
    expect(compareVersions('17.0', '17')).toBe(0);
    expect(compareVersions('16.10', '16.9')).toBeGreaterThan(0);
    const iphoneOnly = diagnose({
      now: NOW,
      job: failed(),
      app: { supportedDevices: ['iPhone12-iPhone12', 'iPhone14Pro-iPhone14Pro'] },
      device: { productName: 'iPad13,1' },
    });
    expect(iphoneOnly[0]).toMatchObject({ code: 'app.requirements_unmet', confidence: 'confirmed' });
  });

  it('uses the unenrolled threshold and APNs 410', () => {
    const silent = diagnose({
      now: NOW,
      job: { status: 'request_timeout' },
      device: { lastSeenAt: daysAgo(45) },
    });
    expect(silent.slice(0, 2).map((c) => [c.code, c.confidence])).toEqual([
      ['device.unenrolled', 'confirmed'],
      ['device.powered_off_or_offline', 'likely'],
    ]);
    const checkedOut = diagnose({
      now: NOW,
      job: { status: 'push_sending' },
      device: { checkedOutAt: daysAgo(1) },
    });
    expect(checkedOut[0]?.code).toBe('device.unenrolled');
  });

  it('a deactivated device gets nothing from haishin; one whose enrollment never finished cannot be pushed', () => {
    // The rule pre-flight predicts these with: a planned job has no status yet.
    const planned = (status: 'deactivated' | 'pending') =>
      diagnose({ now: NOW, job: { kind: 'install', status: null }, device: { status } })[0];
    expect(planned('deactivated')).toMatchObject({ code: 'device.unenrolled', confidence: 'confirmed' });
    expect(planned('pending')).toMatchObject({ code: 'device.unenrolled', confidence: 'likely' });
    expect(planned('pending')?.evidence).toContainEqual({
      fact: 'device.status',
      value: 'pending',
      source: 'haishin',
    });
  });

  it('a push unanswered since the last check-in makes the device likely off', () => {
    const causes = diagnose({
      now: NOW,
      job: { status: 'push_sending' },
      device: { lastSeenAt: hoursAgo(5) },
      push: { lastResult: 'sent', lastPushAt: hoursAgo(2) },
    });
    expect(causes[0]).toMatchObject({ code: 'device.powered_off_or_offline', confidence: 'likely' });
  });

  it('a push timeout shorter than the grace still makes the device likely off, ahead of a possible iWork copy', () => {
    const pushedAt = new Date(NOW.getTime() - 30_000);
    const evidence: Evidence = {
      now: NOW,
      job: { status: 'push_timeout' },
      app: { bundleId: 'com.apple.Keynote' },
      device: { lastSeenAt: new Date(NOW.getTime() - 90_000) },
      push: { lastResult: 'sent', lastPushAt: pushedAt },
    };
    const causes = diagnose(evidence);
    expect(causes[0]).toMatchObject({ code: 'device.powered_off_or_offline', confidence: 'likely' });
    expect(causes.find((c) => c.code === 'app.iwork_preinstalled')?.confidence).toBe('possible');
    // Still in push_sending 30 s after the push: too early to blame the device.
    const early = diagnose({ ...evidence, job: { status: 'push_sending' }, app: null });
    expect(early.some((c) => c.code === 'device.powered_off_or_offline' && c.confidence === 'likely')).toBe(
      false,
    );
  });

  it('many jobs stuck in push_sending across the fleet point at the push certificate', () => {
    const causes = diagnose({
      now: NOW,
      job: { status: 'push_sending' },
      push: { stuckInPushSendingCount: 180, enrolledDeviceCount: 200 },
    });
    expect(causes[0]).toMatchObject({ code: 'push.certificate_invalid', confidence: 'likely' });
    const expired = diagnose({
      now: NOW,
      job: { status: 'push_timeout' },
      push: { certificateNotAfter: daysAgo(1) },
    });
    expect(expired[0]).toMatchObject({ code: 'push.certificate_invalid', confidence: 'confirmed' });
  });

  it('ranks root causes before symptoms at equal confidence', () => {
    const causes = diagnose({
      now: NOW,
      job: failed({ errorChain: CHAIN_12064 }),
      token: { state: 'expired' },
      licence: { assignedToSerial: false },
      device: { lastSeenAt: daysAgo(2) },
    });
    expect(causes.slice(0, 3).map((c) => c.code)).toEqual([
      'token.expired',
      'license.not_assigned',
      'device.powered_off_or_offline',
    ]);
  });

  it('an uninstall ignores install-only concerns', () => {
    const e: Evidence = {
      now: NOW,
      job: { kind: 'uninstall', status: 'push_timeout' },
      app: { sizeBytes: 3e9, bundleId: 'com.apple.Pages' },
      device: { availableCapacityGb: 0.5, lastSeenAt: daysAgo(3) },
      licence: { assignedToSerial: false },
    };
    expect(codes(e)).toEqual(['device.powered_off_or_offline', 'network.inactive']);
  });

  it('after a success only reports what hides an installed app', () => {
    expect(
      diagnose({
        now: NOW,
        job: { status: 'success' },
        device: { lastSeenAt: daysAgo(5) },
        token: { state: 'expired' },
      }),
    ).toEqual([]);
    expect(
      codes({
        ...TOP_CAUSE['restriction.content_rating'],
        device: { lastSeenAt: daysAgo(5), restrictions: { ratingApps: 100 } },
      }),
    ).toEqual(['restriction.content_rating']);
  });
});

describe('diagnose: never empty for a job that did not succeed', () => {
  const notSucceeded = JOB_STATUSES.filter((s) => !['success', 'waiting', 'scheduled'].includes(s));

  it.each(notSucceeded)('%s with nothing known', (status) => {
    const causes = diagnose({ now: NOW, job: { status } });
    expect(causes.length).toBeGreaterThan(0);
    expect(causes[0]!.evidence).toContainEqual({ fact: 'job.status', value: status, source: 'job' });
  });

  it('a failed job with nothing known at all still gets advice', () => {
    expect(
      diagnose({ now: NOW, job: { status: 'device_error' } }).map((c) => [c.code, c.confidence]),
    ).toEqual([['device.error_unknown', 'possible']]);
    expect(TERMINAL_STATUSES.has('device_error')).toBe(true);
  });

  it('stalled jobs get the reachability causes', () => {
    expect(codes({ now: NOW, job: { status: 'push_timeout' } })).toEqual([
      'device.powered_off_or_offline',
      'network.inactive',
    ]);
    expect(codes({ now: NOW, job: { status: 'session_timeout' } })).toEqual([
      'network.inactive',
      'network.apple_blocked',
      'network.filtering',
    ]);
    expect(codes({ now: NOW, job: { status: 'awaiting_response' } })).toEqual([
      'network.inactive',
      'network.apple_blocked',
      'network.filtering',
    ]);
  });

  it('an unknown chain is shown raw as evidence', () => {
    const chain: ChainItem[] = [
      { code: 4711, domain: 'com.example.Odd', description: '想定外のエラー' },
      { code: 42, domain: 'NSCocoaErrorDomain', description: null },
    ];
    const [top] = diagnose({ now: NOW, job: failed({ errorChain: chain }) });
    expect(top).toMatchObject({ code: 'device.error_unknown', confidence: 'likely' });
    expect(top!.evidence).toEqual([
      { fact: 'error_chain[0]', value: 'com.example.Odd 4711: 想定外のエラー', source: 'error_chain' },
      { fact: 'error_chain[1]', value: 'NSCocoaErrorDomain 42', source: 'error_chain' },
    ]);
  });

  it('a planned job with nothing wrong may have no causes', () => {
    expect(diagnose({ now: NOW })).toEqual([]);
  });
});

describe('diagnose is pure', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('depends on evidence.now, not on the clock', () => {
    const e = TOP_CAUSE['device.powered_off_or_offline'];
    vi.useFakeTimers();
    vi.setSystemTime(new Date('2001-01-01T00:00:00Z'));
    const a = diagnose(e);
    vi.setSystemTime(new Date('2099-01-01T00:00:00Z'));
    const b = diagnose(e);
    expect(a).toEqual(b);
  });

  it('merges hits per code: strongest confidence, union of evidence', () => {
    const merged = mergeHits([
      {
        code: 'network.inactive',
        confidence: 'possible',
        evidence: [{ fact: 'a', value: 1, source: 'job' }],
      },
      {
        code: 'network.inactive',
        confidence: 'confirmed',
        evidence: [{ fact: 'b', value: 2, source: 'job' }],
      },
      { code: 'network.inactive', confidence: 'likely', evidence: [{ fact: 'a', value: 1, source: 'job' }] },
    ]);
    expect(merged).toEqual([
      {
        code: 'network.inactive',
        confidence: 'confirmed',
        evidence: [
          { fact: 'a', value: 1, source: 'job' },
          { fact: 'b', value: 2, source: 'job' },
        ],
      },
    ]);
  });

  it('returns copies: changing a cause does not change the catalogue', () => {
    const [cause] = diagnose(TOP_CAUSE['token.expired']);
    cause!.title.ja = 'changed';
    cause!.actions.push('cancel');
    expect(CATALOGUE['token.expired'].title.ja).not.toBe('changed');
    expect(CATALOGUE['token.expired'].actions).not.toContain('cancel');
  });
});

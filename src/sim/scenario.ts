import type { FakeAppSeed } from './appmeta/server.ts';
import type { Behaviour, SimDeviceSpec } from './device/device.ts';

/** The apps of the demo school board, with realistic sizes and requirements. */
export interface ScenarioApp {
  adamId: string;
  name: string;
  bundleId: string;
  sizeBytes: number;
  minimumOsVersion: string;
  contentRating: '4+' | '9+' | '12+' | '17+';
  /** The App Store's version (default 1.0); `haishin fakes` can publish a newer one. */
  version?: string;
  /** Licences bought, as a function of the fleet size. */
  licences: (fleet: number) => number;
}

export const SCENARIO_APPS: ScenarioApp[] = [
  {
    adamId: '1450000001',
    name: 'まなびノート',
    bundleId: 'jp.example.manabi-note',
    sizeBytes: 180_000_000,
    minimumOsVersion: '15.0',
    contentRating: '4+',
    licences: (n) => n + 50,
  },
  {
    adamId: '361285480',
    name: 'Keynote',
    bundleId: 'com.apple.Keynote',
    sizeBytes: 600_000_000,
    minimumOsVersion: '16.0',
    contentRating: '4+',
    licences: (n) => n + 50,
  },
  {
    adamId: '1450000003',
    name: '数学ラボ',
    bundleId: 'jp.example.math-lab',
    sizeBytes: 350_000_000,
    minimumOsVersion: '17.0',
    contentRating: '12+',
    licences: (n) => Math.max(1, n - 6),
  },
];

/**
 * `count` more apps for benchmarks (`haishin fakes --apps N`): distinct, installable on any iPad of
 * the demo (iOS 15, 4+), 50–200 MB. adamIds 1460000001 onwards.
 */
export function extraApps(count: number): ScenarioApp[] {
  return Array.from({ length: count }, (_, i) => {
    const n = String(i + 1).padStart(3, '0');
    return {
      adamId: String(1_460_000_001 + i),
      name: `教材アプリ ${n}`,
      bundleId: `jp.example.kyozai-${n}`,
      sizeBytes: (50 + ((i * 37) % 151)) * 1_000_000,
      minimumOsVersion: '15.0',
      contentRating: '4+',
      licences: (fleet: number) => fleet + 50,
    };
  });
}

/** What the fake app look-up answers for a scenario app. */
export function lookupSeedOf(app: ScenarioApp): FakeAppSeed {
  const { adamId, name, bundleId, sizeBytes, minimumOsVersion, contentRating } = app;
  return {
    adamId,
    name,
    bundleId,
    sizeBytes,
    minimumOsVersion,
    contentRating,
    version: app.version ?? '1.0',
  };
}

/** One simulated iPad's story: its facts and what goes wrong with it, if anything. */
export interface ScenarioDevice {
  spec: SimDeviceSpec;
  /** Which group it sits in, by key of the demo tree. */
  group: string;
  /** What the administrator would see, for the demo's summary. */
  story: string | null;
  online: boolean;
  checkOutAfterEnroll: boolean;
  behaviours: [string, Behaviour][];
  preinstalled: string[];
}

const CLASSES = ['school1/1-1', 'school1/2-1', 'school2/1-1', 'school2/2-1', 'junior/1-1', 'junior/2-1'];

/**
 * Device `i` of the demo: most are healthy; the first ones each carry one failure of the
 * troubleshooting guide so every cause the world can produce shows up.
 */
export function scenarioDevice(i: number): ScenarioDevice {
  const base: ScenarioDevice = {
    spec: {
      udid: `DEMO-${String(i).padStart(6, '0')}-0000-0000-000000000000`,
      serialNumber: `DMO${String(i).padStart(9, '0')}`,
      osVersion: '18.1',
      availableGb: 24,
    },
    group: CLASSES[i % CLASSES.length]!,
    story: null,
    online: true,
    checkOutAfterEnroll: false,
    behaviours: [],
    preinstalled: [],
  };
  switch (i) {
    case 0:
      return { ...base, online: false, story: 'powered off' };
    case 1:
      return { ...base, checkOutAfterEnroll: true, story: 'MDM profile removed' };
    case 2:
      return { ...base, spec: { ...base.spec, availableGb: 0.1 }, story: '0.1 GB free' };
    case 3:
      return {
        ...base,
        spec: { ...base.spec, restrictions: { ratingApps: 200 } },
        story: 'content rating limited to 9+',
      };
    case 4:
      return {
        ...base,
        spec: {
          ...base.spec,
          sharedIpad: true,
          users: [{ shortName: 'student04@school.example', loggedIn: true }],
        },
        story: 'Shared iPad with a student logged in',
      };
    case 5:
      return { ...base, spec: { ...base.spec, osVersion: '15.8' }, story: 'old iOS 15.8' };
    case 6:
      return { ...base, preinstalled: ['com.apple.Keynote'], story: 'Keynote pre-installed' };
    case 7:
      return {
        ...base,
        behaviours: [['InstallApplication', { kind: 'silent' }]],
        story: 'never answers the install',
      };
    case 8:
    case 9:
      return { ...base, group: 'branch', story: 'in a group the token is not shared to' };
    case 10:
      return {
        ...base,
        behaviours: [
          [
            'InstallApplication',
            {
              kind: 'error',
              chain: [
                {
                  ErrorCode: 12064,
                  ErrorDomain: 'MCMDMErrorDomain',
                  LocalizedDescription:
                    'iTunes Store ID 1450000001 の App のライセンスを取得できませんでした。',
                },
                {
                  ErrorCode: 2605,
                  ErrorDomain: 'DeviceManagement.error',
                  LocalizedDescription: 'ライセンスが見つかりません',
                },
              ],
            },
          ],
        ],
        story: 'error 12064 / 2605',
      };
    case 11:
      return { ...base, group: 'junior/3-2', story: 'class whose auto-assign token is another one' };
    default:
      return base;
  }
}

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CauseCode } from '../src/diagnosis/catalogue.ts';
import type { SimDevice } from '../src/sim/device/device.ts';
import { deviceIdOf, diagnosisOf, distribute, onlyJob, settledJobs, until } from './support/matrix.ts';
import type { ApiJob } from './support/matrix.ts';
import { World } from './support/world.ts';
import type { CatalogApp } from './support/world.ts';

/**
 * Issue 13, item 4: pre-flight and the diagnosis share the same rules, so a cause predicted before
 * distributing is the one reported after the failure. For each cause pre-flight can predict — from
 * what haishin knows before a job exists: the token, the groups, Apple's licences, the device's
 * facts, the app — a world makes that cause true, POST /distributions/preflight predicts it, the
 * same distribution is then made, and GET /jobs/:id/diagnosis of each job that did not succeed
 * (or, for what hides an installed app, of the job that did) must put the predicted code first.
 *
 * Not here: causes that only the job's own course shows (a device's ErrorChain or RejectionReason,
 * an install that stalls or fails after acknowledgement, a transient store error, a network that
 * blocks Apple), `device.powered_off_or_offline` (predicted only after HAISHIN_OFFLINE_AFTER of
 * silence), `token.not_migrated` (never recorded, see the diagnosis matrix) and
 * `app.not_device_assignable` (no rule reads the asset's deviceAssignable before Apple answers 9707).
 */

const APP: CatalogApp = {
  adamId: '1450041001',
  name: '予測の教材',
  bundleId: 'jp.example.preflight.drill',
  sizeBytes: 20_000_000,
  licences: 20,
};
/** Over Apple's cellular download limit (200 MB on iOS 13 and later). */
const BIG: CatalogApp = {
  adamId: '1450041002',
  name: '予測の映像教材',
  bundleId: 'jp.example.preflight.video',
  sizeBytes: 250_000_000,
  licences: 20,
};
const NEEDS_IOS_26: CatalogApp = {
  adamId: '1450041003',
  name: '予測・最新OS専用',
  bundleId: 'jp.example.preflight.ios26',
  sizeBytes: 20_000_000,
  licences: 20,
  minimumOsVersion: '26.0',
};
const RATED_17: CatalogApp = {
  adamId: '1450041004',
  name: '予測・17+',
  bundleId: 'jp.example.preflight.news',
  sizeBytes: 20_000_000,
  licences: 20,
  contentRating: '17+',
};
/** One licence for two iPads. */
const SCARCE: CatalogApp = {
  adamId: '1450041005',
  name: '予測・限定ライセンス',
  bundleId: 'jp.example.preflight.scarce',
  sizeBytes: 20_000_000,
  licences: 1,
};
const KEYNOTE: CatalogApp = {
  adamId: '361285480',
  name: 'Keynote',
  bundleId: 'com.apple.Keynote',
  sizeBytes: 600_000_000,
  licences: 20,
};
/** Freeform ships with iPadOS: a system app. */
const FREEFORM: CatalogApp = {
  adamId: '6443742539',
  name: 'Freeform',
  bundleId: 'com.apple.freeform',
  sizeBytes: 30_000_000,
  licences: 20,
};
const APPS = [APP, BIG, NEEDS_IOS_26, RATED_17, SCARCE, KEYNOTE, FREEFORM];

/** What to plan and then distribute: one app to some iPads. */
interface Plan {
  tokenId: string;
  adamId: string;
  devices: SimDevice[];
  licenseMode?: 'auto' | 'manual';
  /** Ask the iPads for fresh facts before pre-flight (default); false for one haishin cannot reach. */
  refresh?: boolean;
}

interface PreflightCase {
  code: CauseCode;
  world: 'fast' | 'timed';
  story: string;
  arrange(world: World, prefix: string): Promise<Plan>;
  /** The job succeeds and the app is hidden: its diagnosis is compared, not a failure's. */
  installsHidden?: boolean;
  /** The iPad answers the queries the diagnosis sends (default); false for one haishin cannot reach. */
  deviceAnswers?: boolean;
}

interface PreflightAnswer {
  devices: { deviceId: string; causes: { code: string; confidence: string; adamIds: string[] }[] }[];
}

/** One school, one iPad, `app`. */
async function oneIpad(
  world: World,
  prefix: string,
  app: CatalogApp,
  spec: Parameters<World['devices']>[2] = () => ({}),
): Promise<Plan> {
  const s = await world.school(prefix, [app], spec);
  return { tokenId: s.token.id, adamId: app.adamId, devices: s.devices };
}

/**
 * Asks each iPad for fresh facts (DeviceInformation, Restrictions, installed apps; the users of a
 * Shared iPad) and waits for them. A Shared iPad is asked again when haishin learnt it is one only
 * from this refresh's DeviceInformation (the user list is asked of Shared iPads only).
 */
async function refreshed(world: World, deviceIds: readonly string[]): Promise<void> {
  type At = { at: string | null };
  type View = { isSharedIPad: boolean; facts: At; restrictions: At; installedApps: At; sharedUsers: At };
  const since = new Date(Date.now() - 1_000).toISOString();
  const fresh = (f: At) => f.at !== null && f.at >= since;
  const view = async (id: string) => (await world.api<View>('GET', `/devices/${id}`)).body;
  const refresh = async (id: string) =>
    expect((await world.api('POST', `/devices/${id}/refresh`)).status).toBe(202);
  for (const id of deviceIds) await refresh(id);
  for (const id of deviceIds) {
    await until(`the facts of ${id}`, async () => {
      const d = await view(id);
      return fresh(d.facts) && fresh(d.restrictions) && fresh(d.installedApps);
    });
    if (!(await view(id)).isSharedIPad) continue;
    if (!fresh((await view(id)).sharedUsers)) await refresh(id);
    await until(`the users of ${id}`, async () => fresh((await view(id)).sharedUsers));
  }
}

interface Outcome {
  job: ApiJob;
  predicted: string | null;
  diagnosed: string | null;
}

/** Pre-flight, then the same distribution; for each job that ended wrong, both first causes. */
async function predictThenDistribute(world: World, c: PreflightCase, prefix: string): Promise<Outcome[]> {
  const plan = await c.arrange(world, prefix);
  const deviceIds = await Promise.all(plan.devices.map((d) => deviceIdOf(world, d)));
  if (plan.refresh !== false) await refreshed(world, deviceIds);
  const body = {
    kind: 'install',
    tokenId: plan.tokenId,
    adamIds: [plan.adamId],
    targets: { deviceIds },
    licenseMode: plan.licenseMode ?? 'auto',
  };
  const pre = await world.api<PreflightAnswer>('POST', '/distributions/preflight', body);
  expect(pre.status, JSON.stringify(pre.body)).toBe(200);
  const predicted = new Map(pre.body.devices.map((d) => [d.deviceId, d.causes[0]?.code ?? null]));

  const jobs = await settledJobs(
    world,
    await distribute(world, plan.tokenId, plan.adamId, { deviceIds }, plan.licenseMode),
  );
  const out: Outcome[] = [];
  for (const job of jobs) {
    if ((job.status === 'success') !== (c.installsHidden === true)) continue;
    const answer = await diagnosisOf(world, job.id, c.deviceAnswers !== false);
    out.push({
      job,
      predicted: predicted.get(job.deviceId) ?? null,
      diagnosed: answer.causes[0]?.code ?? null,
    });
  }
  return out;
}

const CASES: PreflightCase[] = [
  {
    code: 'token.not_shared',
    world: 'fast',
    story: 'the board registered the token and did not share it to the school the iPad is in',
    arrange: async (w, p) => {
      const board = await w.group(`${p} 教育委員会`);
      const token = await w.token(board, [APP], p);
      const west = await w.group(`${p} 西小`, board);
      return { tokenId: token.id, adamId: APP.adamId, devices: await w.devices(1, [west], () => ({}), p) };
    },
  },
  {
    code: 'token.not_registered',
    world: 'fast',
    story: 'the iPad sits in a school with no token in it or above it',
    arrange: async (w, p) => {
      const other = await w.group(`${p} 隣の学校`);
      const token = await w.token(other, [APP], p);
      const annex = await w.group(`${p} 独立分校`);
      return { tokenId: token.id, adamId: APP.adamId, devices: await w.devices(1, [annex], () => ({}), p) };
    },
  },
  {
    code: 'token.revoked',
    world: 'fast',
    story: 'Apple revoked the token during an earlier distribution (9625); the next one is planned',
    arrange: async (w, p) => {
      const s = await w.school(p, [APP]);
      w.vpp.setMode(s.token.sToken, 'revoked');
      await onlyJob(w, await distribute(w, s.token.id, APP.adamId, { groupIds: [s.group] }));
      return { tokenId: s.token.id, adamId: APP.adamId, devices: s.devices };
    },
  },
  {
    code: 'token.other_mdm',
    world: 'fast',
    story: 'another MDM server claimed the location of the token (seen at the last sync)',
    arrange: async (w, p) => {
      const s = await w.school(p, [APP]);
      w.vpp.setMode(s.token.sToken, 'other_mdm', { id: 'mobiconnect-0042', name: 'mobiconnect' });
      await w.api('POST', `/vpp-tokens/${s.token.id}/sync`);
      return { tokenId: s.token.id, adamId: APP.adamId, devices: s.devices };
    },
  },
  {
    code: 'device.unenrolled',
    world: 'fast',
    story: 'the iPad was deactivated in haishin',
    arrange: async (w, p) => {
      const plan = await oneIpad(w, p, APP);
      const id = await deviceIdOf(w, plan.devices[0]!);
      expect((await w.api('POST', `/devices/${id}/deactivate`)).status).toBeLessThan(300);
      return { ...plan, refresh: false };
    },
    deviceAnswers: false,
  },
  {
    code: 'autoassign.token_misconfigured',
    world: 'fast',
    story: 'the school has the token but no auto-assign token, and none above it',
    arrange: async (w, p) => {
      const s = await w.school(p, [APP]);
      await w.api('PUT', `/groups/${s.group}/auto-assign-token`, { tokenId: null });
      return { tokenId: s.token.id, adamId: APP.adamId, devices: s.devices };
    },
  },
  {
    code: 'autoassign.inherited_only',
    world: 'fast',
    story: 'a class with its own token inherits the district’s auto-assign token, another one',
    arrange: async (w, p) => {
      const district = await w.group(`${p} 学区`);
      await w.token(district, [APP], `${p}-district`);
      const klass = await w.group(`${p} 1組`, district);
      const token = await w.token(klass, [APP], `${p}-class`);
      await w.api('PUT', `/groups/${klass}/auto-assign-token`, { tokenId: null });
      return { tokenId: token.id, adamId: APP.adamId, devices: await w.devices(1, [klass], () => ({}), p) };
    },
  },
  {
    code: 'license.not_assigned',
    world: 'fast',
    story: 'manual licence mode, and nobody assigned a licence to the iPad’s serial number',
    arrange: async (w, p) => ({ ...(await oneIpad(w, p, APP)), licenseMode: 'manual' }),
  },
  {
    code: 'license.insufficient',
    world: 'fast',
    story: 'one licence bought, two iPads',
    arrange: async (w, p) => {
      const s = await w.school(p, [SCARCE], () => ({}), 2);
      return { tokenId: s.token.id, adamId: SCARCE.adamId, devices: s.devices };
    },
  },
  {
    code: 'app.requirements_unmet',
    world: 'fast',
    story: 'an iPad on iOS 17.5 and an app for iOS 26',
    arrange: (w, p) => oneIpad(w, p, NEEDS_IOS_26, () => ({ osVersion: '17.5' })),
  },
  {
    code: 'device.storage_insufficient',
    world: 'fast',
    story: '0.1 GB free for a 250 MB app',
    arrange: (w, p) => oneIpad(w, p, BIG, () => ({ availableGb: 0.1 })),
  },
  {
    code: 'app.apple_builtin',
    world: 'fast',
    story: 'Freeform, a system app, distributed as a VPP app (the iPad answers 12065)',
    arrange: async (w, p) => {
      const plan = await oneIpad(w, p, FREEFORM);
      plan.devices[0]!.behaviours.set('InstallApplication', {
        kind: 'error',
        chain: [
          {
            ErrorCode: 12065,
            ErrorDomain: 'MCMDMErrorDomain',
            LocalizedDescription: 'システム App はインストールできません。',
            USEnglishDescription: 'System apps cannot be installed.',
          },
        ],
      });
      return plan;
    },
  },
  {
    code: 'app.iwork_preinstalled',
    world: 'fast',
    story: 'Keynote came pre-installed (unmanaged)',
    arrange: (w, p) =>
      oneIpad(w, p, KEYNOTE, () => ({
        installedApps: [
          { bundleId: KEYNOTE.bundleId, name: KEYNOTE.name, version: '13.1', sizeBytes: KEYNOTE.sizeBytes },
        ],
      })),
  },
  {
    code: 'app.installed_unmanaged',
    world: 'fast',
    story: 'a student installed the app from the App Store before',
    arrange: (w, p) =>
      oneIpad(w, p, APP, () => ({
        installedApps: [{ bundleId: APP.bundleId, name: APP.name, version: '0.9', sizeBytes: APP.sizeBytes }],
      })),
  },
  {
    code: 'restriction.content_rating',
    world: 'fast',
    story: 'apps limited to 12+ on the iPad, a 17+ app: installed, and hidden',
    arrange: (w, p) => oneIpad(w, p, RATED_17, () => ({ restrictions: { ratingApps: 300 } })),
    installsHidden: true,
  },
  {
    code: 'policy.app_status_blocks',
    world: 'fast',
    story: 'an allow-list of apps in force that does not hold the app: installed, and hidden',
    arrange: (w, p) =>
      oneIpad(w, p, APP, () => ({
        restrictions: { allowListedAppBundleIDs: ['jp.example.preflight.other', 'com.apple.mobilesafari'] },
      })),
    installsHidden: true,
  },
  {
    code: 'device.unenrolled',
    world: 'timed',
    story: 'the MDM profile was removed on the iPad (CheckOut) before the distribution',
    arrange: async (w, p) => {
      const plan = await oneIpad(w, p, APP);
      const device = plan.devices[0]!;
      expect(await device.checkOut()).toBe(200);
      device.online = false;
      return { ...plan, refresh: false };
    },
    deviceAnswers: false,
  },
  {
    code: 'push.certificate_invalid',
    world: 'timed',
    story: 'APNs refused the last push to the iPad with 403 BadCertificate',
    arrange: async (w, p) => {
      const plan = await oneIpad(w, p, APP);
      const device = plan.devices[0]!;
      w.apnsFake.failToken(device.pushToken.toString('hex'), { status: 403, reason: 'BadCertificate' });
      const id = await deviceIdOf(w, device);
      await w.api('POST', `/devices/${id}/refresh`);
      await until('the refused push', async () =>
        ((await w.server.haishin.store.devices.get(id))?.last_push_result ?? '').includes(
          'certificate_problem',
        ),
      );
      return { ...plan, refresh: false };
    },
    deviceAnswers: false,
  },
  {
    code: 'shared_ipad.users_logged_in',
    world: 'timed',
    story: 'a Shared iPad with a student logged in',
    arrange: (w, p) =>
      oneIpad(w, p, APP, () => ({
        sharedIpad: true,
        users: [{ shortName: 'student01@school.example', loggedIn: true }],
      })),
  },
  {
    code: 'network.wifi_required_for_size',
    world: 'timed',
    story: 'a cellular iPad without Wi-Fi and a 250 MB app',
    arrange: (w, p) => oneIpad(w, p, BIG, () => ({ cellular: true, wifi: false })),
  },
];

/** As the diagnosis matrix: production's timeouts, or seconds for the failures that are silences. */
const WORLDS: Record<PreflightCase['world'], Record<string, string>> = {
  fast: {},
  timed: { HAISHIN_PUSH_TIMEOUT: '3s', HAISHIN_SESSION_TIMEOUT: '3s', HAISHIN_REQUEST_TIMEOUT: '4s' },
};

for (const [name, env] of Object.entries(WORLDS)) {
  describe(`pre-flight predicts what the diagnosis then reports, world "${name}"`, () => {
    let world: World;
    beforeAll(async () => {
      world = await World.start(APPS, env);
    });
    afterAll(async () => {
      await world?.close();
    });

    CASES.filter((c) => c.world === name).forEach((c, i) => {
      it.concurrent(`${c.code}: ${c.story}`, async ({ expect }) => {
        const outcomes = await predictThenDistribute(world, c, `P${name[0]!.toUpperCase()}${i}`);
        expect(outcomes.length, 'no job to compare').toBeGreaterThan(0);
        for (const o of outcomes) {
          const job = `job ${o.job.id} (${o.job.status}, reason ${o.job.reason})`;
          expect(o.predicted, `pre-flight, ${job}`).toBe(c.code);
          expect(o.diagnosed, `diagnosis, ${job}`).toBe(o.predicted);
        }
      });
    });
  });
}

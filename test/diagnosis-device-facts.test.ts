import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { diagnose } from '../src/diagnosis/index.ts';
import type { Evidence } from '../src/diagnosis/index.ts';
import type { SimDevice } from '../src/sim/device/device.ts';
import { World } from './support/world.ts';
import type { CatalogApp } from './support/world.ts';

/**
 * Issue 13: the diagnosis reads the device's facts, asks the device when they are missing or
 * older than the job, and ranks again when it answered — through the protocol: simulated iPads,
 * the fake Apple services, the engine, and GET /jobs/:id/diagnosis.
 */

/** Over Apple's cellular limit (200 MB on iOS 13 and later). */
const BIG: CatalogApp = {
  adamId: '1450013001',
  name: '大容量教材',
  bundleId: 'jp.example.facts.big',
  sizeBytes: 250_000_000,
  licences: 50,
};
const NEEDS_IOS_26: CatalogApp = {
  adamId: '1450013002',
  name: '最新OS教材',
  bundleId: 'jp.example.facts.ios26',
  sizeBytes: 20_000_000,
  licences: 50,
  minimumOsVersion: '26.0',
};

const SMALL: CatalogApp = {
  adamId: '1450013003',
  name: '小容量教材',
  bundleId: 'jp.example.facts.small',
  sizeBytes: 120_000_000,
  licences: 50,
};

interface Cause {
  code: string;
  confidence: string;
  evidence: { fact: string; value: unknown; source: string }[];
}
interface Stored {
  at: string;
  causes: Cause[];
  awaitingDevice?: string[];
  deviceAnswered?: string[];
}
interface Answer {
  causes: Cause[];
  askedDevice: string[];
  awaitingDevice: string[];
}

let world: World;
beforeAll(async () => {
  world = await World.start([BIG, NEEDS_IOS_26, SMALL], {
    HAISHIN_SESSION_TIMEOUT: '3s',
    HAISHIN_REQUEST_TIMEOUT: '4s',
  });
});
afterAll(async () => {
  await world?.close();
});

async function until<T>(
  what: string,
  probe: () => Promise<T | undefined | null | false>,
  timeoutMs = 15_000,
) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 40));
  }
}

/** One school with its token, one iPad, one distribution of `app`; the job once it ended. */
async function oneJob(
  name: string,
  app: CatalogApp,
  spec: Parameters<World['devices']>[2],
  before: (device: SimDevice, deviceId: string) => Promise<void> | void = () => {},
): Promise<{ device: SimDevice; deviceId: string; jobId: string; status: string }> {
  const school = await world.group(name);
  const token = await world.token(school, [app], name);
  const [device] = await world.devices(1, [school], spec, name.toUpperCase().slice(0, 4));
  const deviceId = (
    await world.api<{ items: { id: string }[] }>('GET', `/devices?serialNumber=${device!.serialNumber}`)
  ).body.items[0]!.id;
  await before(device!, deviceId);
  const created = await world.api<{ id: string }>('POST', '/distributions', {
    kind: 'install',
    tokenId: token.id,
    adamIds: [app.adamId],
    targets: { deviceIds: [deviceId] },
    licenseMode: 'auto',
  });
  expect(created.status, JSON.stringify(created.body)).toBe(201);
  const counts = await world.settle(created.body.id, 20_000);
  const [job] = (
    await world.api<{ items: { id: string; status: string }[] }>(
      'GET',
      `/jobs?distributionId=${created.body.id}`,
    )
  ).body.items;
  expect(Object.values(counts)).toEqual([1]);
  return { device: device!, deviceId, jobId: job!.id, status: job!.status };
}

const stored = async (jobId: string) =>
  (await world.api<{ diagnosis: Stored | null }>('GET', `/jobs/${jobId}`)).body.diagnosis;
const codes = (causes: Cause[]) => causes.map((c) => `${c.code}:${c.confidence}`);
const factOf = (cause: Cause | undefined, name: string) => cause?.evidence.find((e) => e.fact === name);

describe('installs that fail after acknowledgement (ManagedApplicationList says Failed)', () => {
  it('too little free space: the job waits for the device, which it asked, then ranks storage first', async () => {
    const { device, jobId, status } = await oneJob(
      '空き容量',
      BIG,
      () => ({ availableGb: 0.1 }),
      (d) => {
        // The iPad takes its time with the first query: the question is visibly pending.
        d.behaviours.set('DeviceInformation', { kind: 'silent' });
      },
    );
    expect(status).toBe('device_error');
    // Diagnosed in the background as it failed; nothing was known of the iPad, so it was asked.
    const before = await until('the stored diagnosis to wait for the device', async () => {
      const s = await stored(jobId);
      return s?.awaitingDevice?.includes('DeviceInformation') ? s : null;
    });
    // Free space unknown: a candidate, not a finding. The OS (from Authenticate) meets the minimum.
    expect(codes(before.causes)).toEqual([
      'device.storage_insufficient:possible',
      'device.error_unknown:possible',
    ]);
    const pending = await world.api<Answer>('GET', `/jobs/${jobId}/diagnosis`);
    expect(pending.body.askedDevice).toEqual([]); // already asked, not asked twice
    expect(pending.body.awaitingDevice).toContain('DeviceInformation');

    // The iPad answers (the query handed out again on its next connection): ranked again.
    device.behaviours.delete('DeviceInformation');
    await device.connect();
    const after = await until('the stored diagnosis to be ranked again', async () => {
      const s = await stored(jobId);
      return s?.deviceAnswered?.includes('DeviceInformation') && s.causes[0]?.confidence === 'confirmed'
        ? s
        : null;
    });
    expect(after.awaitingDevice).toBeUndefined();
    expect(codes(after.causes)[0]).toBe('device.storage_insufficient:confirmed');
    expect(factOf(after.causes[0], 'device.availableCapacityGb')).toMatchObject({
      value: 0.1,
      source: 'device_information',
    });
    expect(factOf(after.causes[0], 'app.sizeBytes')).toMatchObject({
      value: BIG.sizeBytes,
      source: 'app_metadata',
    });
    expect(factOf(after.causes[0], 'managedApp.status')?.value).toBe('Failed');
    expect(after.causes.map((c) => c.code)).not.toContain('device.error_unknown');

    const answer = await world.api<Answer>('GET', `/jobs/${jobId}/diagnosis`);
    expect(answer.body.causes[0]!.code).toBe('device.storage_insufficient');
    expect(answer.body.askedDevice).toEqual([]);
    expect(answer.body.awaitingDevice).toEqual([]);
  });

  it('facts read before the job are not trusted: the iPad filled up since, it is asked again', async () => {
    const { jobId, status } = await oneJob(
      '満杯',
      BIG,
      () => ({ availableGb: 40 }),
      async (d, deviceId) => {
        expect((await world.api('POST', `/devices/${deviceId}/refresh`)).status).toBe(202);
        await until('the refreshed facts', async () => {
          const res = await world.api<{ facts: { at: string | null } }>('GET', `/devices/${deviceId}`);
          return res.body.facts.at !== null;
        });
        await new Promise((r) => setTimeout(r, 5)); // the job starts after the facts were read
        d.spec.availableGb = 0.1; // photos, videos… since the last DeviceInformation
      },
    );
    expect(status).toBe('device_error');
    const after = await until('the ranking from the fresh facts', async () => {
      const s = await stored(jobId);
      return s?.deviceAnswered && s.causes[0]?.code === 'device.storage_insufficient' ? s : null;
    });
    expect(after.causes[0]!.confidence).toBe('confirmed');
    expect(factOf(after.causes[0], 'device.availableCapacityGb')?.value).toBe(0.1);
  });

  it("an OS below the app's minimum (MinimumOSVersion from the look-up) is ranked first", async () => {
    const { jobId, status } = await oneJob('旧OS', NEEDS_IOS_26, () => ({ osVersion: '17.5' }));
    expect(status).toBe('device_error');
    const answer = await world.api<Answer>('GET', `/jobs/${jobId}/diagnosis`);
    expect(codes(answer.body.causes)[0]).toBe('app.requirements_unmet:confirmed');
    const top = answer.body.causes[0];
    expect(factOf(top, 'app.minimumOsVersion')).toMatchObject({ value: '26.0', source: 'app_metadata' });
    expect(factOf(top, 'device.osVersion')?.value).toBe('17.5');
    expect(factOf(top, 'managedApp.status')?.value).toBe('Failed');
    expect(answer.body.causes.map((c) => c.code)).not.toContain('device.error_unknown');
  });
});

describe('a device that talks is not offline', () => {
  it('a Shared iPad answering NotNow with a student logged in: shared_ipad.users_logged_in first, never offline', async () => {
    const { device, jobId, status } = await oneJob(
      '共有iPad',
      NEEDS_IOS_26,
      () => ({ sharedIpad: true, osVersion: '26.1' }),
      (d) => {
        // A student logs in after enrolment; haishin has not yet learnt that this is a Shared iPad.
        d.users = [{ shortName: 'student07@school.example', loggedIn: true }];
        d.behaviours.set('DeviceInformation', { kind: 'silent' });
      },
    );
    expect(status).toBe('request_timeout');
    expect(device.received).toContain('InstallApplication');
    const before = await until('the question to the device', async () => {
      const s = await stored(jobId);
      return s?.awaitingDevice ? s : null;
    });
    // The NotNow alone already points at a Shared iPad in use; the device answered, so it is on.
    expect(before.causes[0]!.code).toBe('shared_ipad.users_logged_in');
    expect(before.causes.map((c) => c.code)).not.toContain('device.powered_off_or_offline');

    device.behaviours.delete('DeviceInformation');
    await device.connect();
    // DeviceInformation says IsMultiUser: the user list is asked for as well, then ranked again.
    const after = await until('the ranking with the user list', async () => {
      const s = await stored(jobId);
      return s?.deviceAnswered?.includes('UserList') ? s : null;
    });
    expect(device.received).toContain('UserList');
    expect(codes(after.causes)[0]).toBe('shared_ipad.users_logged_in:confirmed');
    expect(factOf(after.causes[0], 'device.loggedInUsers')).toMatchObject({ value: 1, source: 'user_list' });
    expect(after.causes.map((c) => c.code)).not.toContain('device.powered_off_or_offline');
    const answer = await world.api<Answer>('GET', `/jobs/${jobId}/diagnosis`);
    expect(answer.body.causes[0]!.code).toBe('shared_ipad.users_logged_in');
  });

  it('an iPad that keeps answering NotNow is on: no offline cause, whatever else is said', async () => {
    const { jobId, status } = await oneJob(
      '多忙',
      NEEDS_IOS_26,
      () => ({ osVersion: '26.1' }),
      (d) => {
        d.behaviours.set('InstallApplication', { kind: 'not_now' });
      },
    );
    expect(status).toBe('request_timeout');
    const after = await until('the ranking with the device facts', async () => {
      const s = await stored(jobId);
      return s?.deviceAnswered ? s : null;
    });
    expect(after.causes.length).toBeGreaterThan(0);
    expect(after.causes.map((c) => c.code)).not.toContain('device.powered_off_or_offline');
    // DeviceInformation said it is no Shared iPad: that candidate is gone too.
    expect(after.causes.map((c) => c.code)).not.toContain('shared_ipad.users_logged_in');
    const answer = await world.api<Answer>('GET', `/jobs/${jobId}/diagnosis`);
    expect(answer.body.causes.map((c) => c.code)).not.toContain('device.powered_off_or_offline');
  });

  it('an iPad that is off is still diagnosed offline (and not asked in the background)', async () => {
    const { device, jobId, status } = await oneJob(
      '電源オフ',
      NEEDS_IOS_26,
      () => ({ osVersion: '26.1' }),
      (d) => {
        d.online = false;
      },
    );
    expect(status).toBe('request_timeout');
    const s = await until('the background diagnosis', () => stored(jobId));
    expect(s.causes.map((c) => c.code)).toContain('device.powered_off_or_offline');
    expect(s.awaitingDevice).toBeUndefined();
    expect(device.received).toEqual([]);
  });
});

describe('an app over the cellular download limit on a cellular iPad without Wi-Fi', () => {
  it('stays Installing / DownloadWaiting and is diagnosed network.wifi_required_for_size first', async () => {
    const { device, jobId, status } = await oneJob('モバイル回線', BIG, () => ({
      cellular: true,
      wifi: false,
    }));
    expect(status).toBe('session_timeout');
    expect(device.apps.get(BIG.bundleId)).toMatchObject({
      managedStatus: 'Installing',
      downloadWaiting: true,
    });
    const after = await until('the ranking with the installed app list', async () => {
      const s = await stored(jobId);
      return s?.deviceAnswered?.includes('InstalledApplicationList') ? s : null;
    });
    expect(codes(after.causes)[0]).toBe('network.wifi_required_for_size:likely');
    const top = after.causes[0];
    expect(factOf(top, 'app.sizeBytes')?.value).toBe(BIG.sizeBytes);
    expect(factOf(top, 'device.cellular')?.value).toBe(true);
    expect(factOf(top, 'installedApp.downloadWaiting')).toMatchObject({
      value: true,
      source: 'installed_application_list',
    });
    expect(factOf(top, 'managedApp.lastStatus')?.value).toBe('Installing');
    const answer = await world.api<Answer>('GET', `/jobs/${jobId}/diagnosis`);
    expect(answer.body.causes[0]!.code).toBe('network.wifi_required_for_size');

    // On Wi-Fi the download goes ahead: the retry succeeds.
    device.spec.wifi = true;
    expect((await world.api('POST', `/jobs/${jobId}/retry`)).status).toBe(200);
    await until('the retried job to succeed', async () => {
      const res = await world.api<{ status: string }>('GET', `/jobs/${jobId}`);
      return res.body.status === 'success';
    });
  });

  it('an app under the limit installs over cellular', async () => {
    const { status } = await oneJob('小容量', SMALL, () => ({ cellular: true, wifi: false }));
    expect(status).toBe('success');
  });
});

describe('the rules behind it, on evidence alone', () => {
  const NOW = new Date('2026-06-01T09:00:00Z');
  const minutesAgo = (m: number) => new Date(NOW.getTime() - m * 60_000);

  it('Failed with no facts names storage and requirements as candidates; facts that rule both out leave an unknown error', () => {
    const failed: Evidence = {
      now: NOW,
      job: { status: 'device_error', managedAppStatusesSeen: ['Failed'], ackAt: minutesAgo(2) },
      app: { sizeBytes: 250_000_000 },
    };
    expect(diagnose(failed).map((c) => `${c.code}:${c.confidence}`)).toEqual([
      'app.requirements_unmet:possible',
      'device.storage_insufficient:possible',
      'device.error_unknown:possible',
    ]);
    const fine: Evidence = {
      ...failed,
      app: { sizeBytes: 250_000_000, minimumOsVersion: '15.0' },
      device: { availableCapacityGb: 30, osVersion: '18.1' },
    };
    expect(diagnose(fine).map((c) => `${c.code}:${c.confidence}`)).toEqual(['device.error_unknown:likely']);
    // Tight space (under twice the size) and a failed install: confirmed.
    const tight: Evidence = { ...fine, device: { availableCapacityGb: 0.4, osVersion: '18.1' } };
    expect(diagnose(tight)[0]).toMatchObject({
      code: 'device.storage_insufficient',
      confidence: 'confirmed',
    });
  });

  it('whether the device answered after the last push decides "offline", not the status', () => {
    const base: Evidence = {
      now: NOW,
      job: { status: 'request_timeout', notNowCount: 0 },
      device: { lastSeenAt: minutesAgo(30), isSharedIPad: false },
      push: { lastResult: 'sent', lastPushAt: minutesAgo(20) },
    };
    // A push 20 minutes old with no contact since: the device may be off.
    expect(diagnose(base).map((c) => c.code)).toContain('device.powered_off_or_offline');
    // It answered after that push: on.
    const answered: Evidence = { ...base, device: { ...base.device, lastSeenAt: minutesAgo(1) } };
    expect(diagnose(answered).map((c) => c.code)).not.toContain('device.powered_off_or_offline');
    expect(diagnose(answered).length).toBeGreaterThan(0);
    // It answered NotNow to this job and a retry push went out a moment ago: not yet due.
    const deferred: Evidence = {
      ...base,
      job: { status: 'request_timeout', notNowCount: 2, commandSentAt: minutesAgo(6) },
      device: { lastSeenAt: minutesAgo(5) },
      push: { lastResult: 'sent', lastPushAt: minutesAgo(1) },
    };
    const causes = diagnose(deferred);
    expect(causes.map((c) => c.code)).not.toContain('device.powered_off_or_offline');
    expect(causes[0]).toMatchObject({ code: 'shared_ipad.users_logged_in', confidence: 'possible' });
  });

  it('a cellular iPad that has not downloaded the accepted app makes the Wi-Fi size cause likely', () => {
    const e: Evidence = {
      now: NOW,
      job: { status: 'session_timeout', ackAt: minutesAgo(90), managedAppStatusesSeen: ['Installing'] },
      app: { bundleId: 'jp.example.big', sizeBytes: 250_000_000 },
      device: {
        osVersion: '18.1',
        cellular: true,
        lastSeenAt: minutesAgo(1),
        installedApps: [
          { bundleId: 'jp.example.big', managed: true, installing: true, downloadWaiting: true },
        ],
      },
    };
    const causes = diagnose(e);
    expect(causes[0]).toMatchObject({ code: 'network.wifi_required_for_size', confidence: 'likely' });
    // Under the limit the size is no reason.
    expect(diagnose({ ...e, app: { ...e.app, sizeBytes: 150_000_000 } }).map((c) => c.code)).not.toContain(
      'network.wifi_required_for_size',
    );
  });
});

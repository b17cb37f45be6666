import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { World } from './support/world.ts';
import type { CatalogApp } from './support/world.ts';

const KEYNOTE_LIKE: CatalogApp = {
  adamId: '361285480',
  name: 'ロイロノート',
  bundleId: 'jp.loilo.note',
  sizeBytes: 180_000_000,
  licences: 1000,
};
const SCARCE: CatalogApp = {
  adamId: '409183694',
  name: '少ない教材',
  bundleId: 'jp.example.scarce',
  sizeBytes: 20_000_000,
  licences: 3,
};

let world: World;
beforeAll(async () => {
  world = await World.start([KEYNOTE_LIKE, SCARCE]);
});
afterAll(async () => {
  await world?.close();
});

interface Job {
  id: string;
  status: string;
  reason: string | null;
  deviceId: string;
  error: { chain: { code: number | null; domain: string | null }[]; rejectionReason: string | null } | null;
}

const jobs = async (distributionId: string) =>
  (await world.api<{ items: Job[] }>('GET', `/jobs?distributionId=${distributionId}&limit=1000`)).body.items;

describe('distribution engine in the simulated world', () => {
  it('installs an app on 120 iPads in a group tree: every job succeeds, licences batched, ~one push per device', async () => {
    const board = await world.group('教育委員会');
    const schools = [await world.group('第一小学校', board), await world.group('第二小学校', board)];
    const classes = [await world.group('1年1組', schools[0]), await world.group('1年2組', schools[1])];
    const token = await world.token(board, [KEYNOTE_LIKE, SCARCE], 'tree');
    // Registration reaches the board only; the schools and classes get the token by sharing.
    for (const g of [...schools, ...classes])
      expect((await world.api('POST', `/vpp-tokens/${token.id}/shares`, { groupId: g })).status).toBe(201);
    const devices = await world.devices(120, [board, ...schools, ...classes]);
    world.vpp.resetCounters();
    const pushesBefore = world.apnsFake.stats.requests;

    const created = await world.api<{ id: string; jobCount: number }>('POST', '/distributions', {
      kind: 'install',
      tokenId: token.id,
      adamIds: [KEYNOTE_LIKE.adamId],
      targets: { groupIds: [board], includeSubgroups: true },
      licenseMode: 'auto',
    });
    expect(created.status).toBe(201);
    expect(created.body.jobCount).toBe(120);
    // Auto-assign is set on the board only: the schools and classes inherit it.
    const counts = await world.settle(created.body.id);
    expect(counts).toEqual({ success: 120 });
    expect(world.vpp.calls('POST assets/associate')).toBeLessThanOrEqual(2);
    const pushes = world.apnsFake.stats.requests - pushesBefore;
    expect(pushes / devices.length).toBeLessThanOrEqual(1.2);
    expect(devices.every((d) => d.apps.get(KEYNOTE_LIKE.bundleId)?.managedStatus === 'Managed')).toBe(true);
    expect(world.vpp.holders(token.sToken, KEYNOTE_LIKE.adamId)).toHaveLength(120);

    const one = (await jobs(created.body.id))[0]!;
    const detail = await world.api<{ history: { to: string }[] }>('GET', `/jobs/${one.id}`);
    expect(detail.body.history.map((h) => h.to)).toEqual([
      'waiting',
      'license_assigning',
      'push_sending',
      'awaiting_response',
      'executing',
      'success',
    ]);
  });

  it('fails only the jobs Apple has no licence for (9709), with the reason', async () => {
    const school = await world.group('不足校');
    const token = await world.token(school, [SCARCE], 'scarce');
    await world.devices(5, [school], () => ({}), 'SC');
    const created = await world.api<{ id: string }>('POST', '/distributions', {
      kind: 'install',
      tokenId: token.id,
      adamIds: [SCARCE.adamId],
      targets: { groupIds: [school] },
      licenseMode: 'auto',
    });
    const counts = await world.settle(created.body.id);
    expect(counts).toEqual({ success: 3, license_failed: 2 });
    const failed = (await jobs(created.body.id)).filter((j) => j.status === 'license_failed');
    expect(failed.every((j) => j.reason === 'license 9709')).toBe(true);
    // Diagnosed as it failed, without anyone asking.
    let stored: { causes: { code: string }[] } | null = null;
    for (let i = 0; i < 100 && !stored; i++) {
      stored = (
        await world.api<{ diagnosis: { causes: { code: string }[] } | null }>('GET', `/jobs/${failed[0]!.id}`)
      ).body.diagnosis;
      if (!stored) await new Promise((r) => setTimeout(r, 20));
    }
    expect(stored?.causes[0]?.code).toBe('license.insufficient');
    const diagnosis = await world.api<{
      causes: { code: string; confidence: string; remedy: { ja: string } }[];
    }>('GET', `/jobs/${failed[0]!.id}/diagnosis`);
    expect(diagnosis.body.causes[0]).toMatchObject({ code: 'license.insufficient' });
    expect(diagnosis.body.causes[0]!.remedy.ja.length).toBeGreaterThan(10);
    // Nothing was known about the iPad yet: the diagnosis asked it, once.
    expect((diagnosis.body as unknown as { askedDevice: string[] }).askedDevice).toContain(
      'DeviceInformation',
    );
    const again = await world.api<{ askedDevice: string[] }>('GET', `/jobs/${failed[0]!.id}/diagnosis`);
    expect(again.body.askedDevice).toEqual([]);
  });

  it('devices without a reachable token, or with the wrong auto-assign token, get a job that says why', async () => {
    const registered = await world.group('登録校');
    const other = await world.group('共有なし校');
    const token = await world.token(registered, [KEYNOTE_LIKE], 'reach');
    const [outside] = await world.devices(1, [other], () => ({}), 'NS');
    const inside = await world.devices(1, [registered], () => ({}), 'IN');
    await world.api('PUT', `/groups/${registered}/auto-assign-token`, { tokenId: null });
    const outsideId = (
      await world.api<{ items: { id: string }[] }>('GET', `/devices?serialNumber=${outside!.serialNumber}`)
    ).body.items[0]!.id;
    const insideId = (
      await world.api<{ items: { id: string }[] }>('GET', `/devices?serialNumber=${inside[0]!.serialNumber}`)
    ).body.items[0]!.id;
    const created = await world.api<{ id: string }>('POST', '/distributions', {
      kind: 'install',
      tokenId: token.id,
      adamIds: [KEYNOTE_LIKE.adamId],
      targets: { deviceIds: [outsideId, insideId] },
      licenseMode: 'auto',
    });
    await world.settle(created.body.id);
    const byDevice = new Map((await jobs(created.body.id)).map((j) => [j.deviceId, j]));
    // The token sits in a sibling school and nothing is registered above 共有なし校: nothing to share from.
    expect(byDevice.get(outsideId)).toMatchObject({
      status: 'license_failed',
      reason: 'token.not_registered',
    });
    expect(byDevice.get(insideId)).toMatchObject({
      status: 'license_failed',
      reason: 'autoassign.token_misconfigured',
    });
    const top = async (jobId: string) =>
      (await world.api<{ causes: { code: string }[] }>('GET', `/jobs/${jobId}/diagnosis`)).body.causes[0]
        ?.code;
    expect(await top(byDevice.get(outsideId)!.id)).toBe('token.not_registered');
    expect(await top(byDevice.get(insideId)!.id)).toBe('autoassign.token_misconfigured');
  });

  it('NotNow → retry_waiting, then success once the device accepts; a device Error keeps its ErrorChain', async () => {
    const school = await world.group('応答校');
    const token = await world.token(school, [KEYNOTE_LIKE], 'answers');
    const [busy, broken] = await world.devices(2, [school], () => ({}), 'AN');
    busy!.behaviours.set('InstallApplication', { kind: 'not_now' });
    broken!.behaviours.set('InstallApplication', {
      kind: 'error',
      chain: [
        {
          ErrorCode: 12064,
          ErrorDomain: 'MCMDMErrorDomain',
          LocalizedDescription: 'Could not retrieve license for the app with iTunes Store ID 361285480.',
        },
        { ErrorCode: 2605, ErrorDomain: 'DeviceManagement.error', LocalizedDescription: 'License not found' },
      ],
    });
    const created = await world.api<{ id: string }>('POST', '/distributions', {
      kind: 'install',
      tokenId: token.id,
      adamIds: [KEYNOTE_LIKE.adamId],
      targets: { groupIds: [school] },
      licenseMode: 'auto',
    });
    const deadline = Date.now() + 20_000;
    let busyJob: Job | undefined;
    while (Date.now() < deadline) {
      busyJob = (await jobs(created.body.id)).find((j) => j.status === 'retry_waiting');
      if (busyJob) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(busyJob?.reason).toBe('NotNow');
    busy!.behaviours.set('InstallApplication', { kind: 'acknowledge' });
    await busy!.connect();
    const counts = await world.settle(created.body.id);
    expect(counts).toEqual({ success: 1, device_error: 1 });
    const failed = (await jobs(created.body.id)).find((j) => j.status === 'device_error')!;
    expect(failed.reason).toBe('MCMDMErrorDomain:12064');
    expect(failed.error?.chain.map((c) => c.code)).toEqual([12064, 2605]);
    const diagnosis = await world.api<{ causes: { code: string }[] }>('GET', `/jobs/${failed.id}/diagnosis`);
    expect(diagnosis.body.causes.map((c) => c.code)).toContain('license.not_assigned');
  });

  it('explains an error pasted from another console', async () => {
    const text =
      'ErrorChain=ErrorCode[0]=12064, ErrorDomain[0]=MCMDMErrorDomain, LocalizedDescription[0]=iTunes Store ID 361285480 のApp のライセンスを取得できませんでした。, ErrorCode[1]=2605, ErrorDomain[1]=DeviceManagement.error, LocalizedDescription[1]=ライセンスが見つかりません';
    const res = await world.api<{ chain: { code: number }[]; causes: { code: string }[] }>(
      'POST',
      '/diagnose/error',
      { text },
    );
    expect(res.status).toBe(200);
    expect(res.body.chain.map((c) => c.code)).toEqual([12064, 2605]);
    expect(res.body.causes[0]!.code).toBe('license.not_assigned');
  });

  it('an iPad that is off stays in push_sending until cancelled; a retry is a new attempt that succeeds', async () => {
    const school = await world.group('電源オフ校');
    const token = await world.token(school, [KEYNOTE_LIKE], 'off');
    const [off] = await world.devices(1, [school], () => ({}), 'OFF');
    off!.online = false;
    const created = await world.api<{ id: string }>('POST', '/distributions', {
      kind: 'install',
      tokenId: token.id,
      adamIds: [KEYNOTE_LIKE.adamId],
      targets: { groupIds: [school] },
      licenseMode: 'auto',
    });
    const deadline = Date.now() + 20_000;
    let job: Job | undefined;
    while (Date.now() < deadline) {
      job = (await jobs(created.body.id))[0];
      if (job?.status === 'push_sending') break;
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(job?.status).toBe('push_sending');
    const cancelled = await world.api<{ changed: number }>('POST', '/jobs/cancel-pending', {
      deviceId: job!.deviceId,
    });
    expect(cancelled.body.changed).toBe(1);
    expect((await world.api<Job>('GET', `/jobs/${job!.id}`)).body.status).toBe('cancelled');
    off!.online = true;
    const retried = await world.api<Job>('POST', `/jobs/${job!.id}/retry`);
    expect(retried.body).toMatchObject({ status: 'waiting', attempt: 2 });
    expect(await world.settle(created.body.id)).toEqual({ success: 1 });
  });
});

describe('auto-distribution lists', () => {
  it('a device enrolling into a subgroup gets the apps listed on its ancestors, without anyone asking', async () => {
    const school = await world.group('自動配信校');
    const klass = await world.group('自動配信校-1組', school);
    const token = await world.token(school, [KEYNOTE_LIKE], 'auto-dist');
    await world.api('POST', `/vpp-tokens/${token.id}/shares`, { groupId: klass });
    const set = await world.api<{ apps: { adamId: string; inheritedFrom: string | null }[] }>(
      'PUT',
      `/groups/${school}/auto-distribution`,
      {
        apps: [{ adamId: KEYNOTE_LIKE.adamId, tokenId: token.id }],
      },
    );
    expect(set.status).toBe(200);
    const inherited = await world.api<{ apps: { adamId: string; inheritedFrom: string | null }[] }>(
      'GET',
      `/groups/${klass}/auto-distribution`,
    );
    expect(inherited.body.apps).toEqual([
      { adamId: KEYNOTE_LIKE.adamId, tokenId: token.id, inheritedFrom: school },
    ]);
    const notUsable = await world.api<{ error: { code: string } }>(
      'PUT',
      `/groups/${world.server.rootGroupId}/auto-distribution`,
      {
        apps: [{ adamId: KEYNOTE_LIKE.adamId, tokenId: token.id }],
      },
    );
    expect(notUsable.body.error.code).toBe('autoassign.token_not_usable');

    const [device] = await world.devices(1, [klass], () => ({}), 'AUTO');
    const deadline = Date.now() + 20_000;
    while (Date.now() < deadline && device!.apps.get(KEYNOTE_LIKE.bundleId)?.managedStatus !== 'Managed') {
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(device!.apps.get(KEYNOTE_LIKE.bundleId)?.managedStatus).toBe('Managed');
  });
});

describe('every status of the field (DESIGN §3)', () => {
  const NEEDS_IOS_26: CatalogApp = {
    adamId: '1450003333',
    name: '最新OS専用',
    bundleId: 'jp.example.ios26',
    sizeBytes: 30_000_000,
    licences: 10,
    minimumOsVersion: '26.0',
  };

  async function distribute(
    tokenId: string,
    groupId: string,
    adamIds: string[],
    extra: Record<string, unknown> = {},
  ) {
    const res = await world.api<{ id: string }>('POST', '/distributions', {
      kind: 'install',
      tokenId,
      adamIds,
      targets: { groupIds: [groupId] },
      licenseMode: 'auto',
      ...extra,
    });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    return res.body.id;
  }

  it('ASDErrorDomain 506 once → retry_waiting, then success with retryCount 1', async () => {
    const school = await world.group('506校');
    const token = await world.token(school, [KEYNOTE_LIKE], 'asd506');
    const [device] = await world.devices(1, [school], () => ({}), 'ASD');
    device!.behaviours.set('InstallApplication', {
      kind: 'error',
      chain: [{ ErrorCode: 506, ErrorDomain: 'ASDErrorDomain', LocalizedDescription: 'Duplicate request' }],
    });
    const id = await distribute(token.id, school, [KEYNOTE_LIKE.adamId]);
    const deadline = Date.now() + 15_000;
    while (Date.now() < deadline && device!.received.filter((r) => r === 'InstallApplication').length < 1)
      await new Promise((r) => setTimeout(r, 20));
    device!.behaviours.delete('InstallApplication');
    expect(await world.settle(id)).toEqual({ success: 1 });
    const [job] = (
      await world.api<{ items: { id: string; retryCount: number }[] }>('GET', `/jobs?distributionId=${id}`)
    ).body.items;
    expect(job!.retryCount).toBe(1);
    const history = (
      await world.api<{ history: { to: string; reason: string }[] }>('GET', `/jobs/${job!.id}`)
    ).body.history;
    expect(history.map((h) => h.to)).toContain('retry_waiting');
    expect(history.find((h) => h.to === 'retry_waiting')?.reason).toBe('transient ASDErrorDomain:506');
  });

  it('a scheduled distribution waits in scheduled, then runs', async () => {
    const school = await world.group('予約校');
    const token = await world.token(school, [KEYNOTE_LIKE], 'scheduled');
    await world.devices(1, [school], () => ({}), 'SCH');
    const id = await distribute(token.id, school, [KEYNOTE_LIKE.adamId], {
      scheduledAt: new Date(Date.now() + 1500).toISOString(),
    });
    expect(
      (await world.api<{ counts: Record<string, number> }>('GET', `/distributions/${id}`)).body.counts,
    ).toEqual({ scheduled: 1 });
    expect(await world.settle(id)).toEqual({ success: 1 });
  });

  it('acknowledged but ManagedApplicationList says Failed → device_error, never success', async () => {
    const newWorldApp = NEEDS_IOS_26;
    world.catalog.set(Number(newWorldApp.adamId), {
      bundleId: newWorldApp.bundleId,
      name: newWorldApp.name,
      version: '1.0',
      sizeBytes: newWorldApp.sizeBytes,
      minimumOsVersion: '26.0',
    });
    world.appMeta.add({
      adamId: newWorldApp.adamId,
      name: newWorldApp.name,
      bundleId: newWorldApp.bundleId,
      sizeBytes: newWorldApp.sizeBytes,
      minimumOsVersion: '26.0',
      contentRating: '4+',
    });
    const school = await world.group('古いOS校');
    const token = await world.token(school, [newWorldApp], 'old-os');
    await world.devices(1, [school], () => ({ osVersion: '17.5' }), 'OLD');
    const id = await distribute(token.id, school, [newWorldApp.adamId]);
    expect(await world.settle(id)).toEqual({ device_error: 1 });
    const [job] = (
      await world.api<{ items: { id: string; reason: string }[] }>('GET', `/jobs?distributionId=${id}`)
    ).body.items;
    expect(job!.reason).toBe('Failed');
    const history = (
      await world.api<{ history: { to: string }[] }>('GET', `/jobs/${job!.id}`)
    ).body.history.map((h) => h.to);
    expect(history).toContain('executing');
    expect(history).not.toContain('success');
    const causes = (await world.api<{ causes: { code: string }[] }>('GET', `/jobs/${job!.id}/diagnosis`)).body
      .causes;
    expect(causes[0]!.code).toBe('app.requirements_unmet');
  });

  it('an uninstall distribution removes the app and reclaims the auto-assigned licence', async () => {
    const school = await world.group('削除配信校');
    const token = await world.token(school, [KEYNOTE_LIKE], 'uninstall');
    const [device] = await world.devices(1, [school], () => ({}), 'UNI');
    expect(await world.settle(await distribute(token.id, school, [KEYNOTE_LIKE.adamId]))).toEqual({
      success: 1,
    });
    expect(world.vpp.holders(token.sToken, KEYNOTE_LIKE.adamId)).toContain(device!.serialNumber);
    world.vpp.resetCounters();
    const id = await distribute(token.id, school, [KEYNOTE_LIKE.adamId], { kind: 'uninstall' });
    expect(await world.settle(id)).toEqual({ success: 1 });
    expect(device!.apps.has(KEYNOTE_LIKE.bundleId)).toBe(false);
    expect(world.vpp.calls('POST assets/disassociate')).toBe(1);
    await world.vpp.completePending();
    expect(world.vpp.holders(token.sToken, KEYNOTE_LIKE.adamId)).not.toContain(device!.serialNumber);
  });

  it("the seed's example error text is parsed into both chain entries and answered with the licence causes", async () => {
    const text =
      '"Exec", "4010", "500", "" . ErrorChain=ErrorCode[0]=12064, ErrorDomain[0]=MCMDMErrorDomain, LocalizedDescription[0]=Could not retrieve license for the app with iTunes Store ID 361285480., ErrorCode[1]=2605, ErrorDomain[1]=DeviceManagement.error, LocalizedDescription[1]=License not found';
    const res = await world.api<{ chain: { code: number; domain: string }[]; causes: { code: string }[] }>(
      'POST',
      '/diagnose/error',
      { text },
    );
    expect(res.body.chain.map((c) => `${c.domain}:${c.code}`)).toEqual([
      'MCMDMErrorDomain:12064',
      'DeviceManagement.error:2605',
    ]);
    expect(res.body.causes.map((c) => c.code)).toEqual(
      expect.arrayContaining(['license.not_assigned', 'autoassign.token_misconfigured']),
    );
  });
});

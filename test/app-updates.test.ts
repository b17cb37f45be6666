// Issue 14, item 5 — app updates in the simulated world (decision 0018): a newer version published
// in the App Store is detected by the look-up, shown with the devices that run an older one,
// distributed by an administrator or by a group's "keep apps up to date", installed by the iPads
// over the managed app, and verified by the version they then report.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { World } from './support/world.ts';
import type { CatalogApp } from './support/world.ts';

const NOTE: CatalogApp = {
  adamId: '1450077001',
  name: 'まなびノート',
  bundleId: 'jp.example.updates.note',
  sizeBytes: 30_000_000,
  licences: 100,
};
const DRILL: CatalogApp = {
  adamId: '1450077002',
  name: '計算ドリル',
  bundleId: 'jp.example.updates.drill',
  sizeBytes: 30_000_000,
  licences: 100,
};
const QUIZ: CatalogApp = {
  adamId: '1450077003',
  name: '単語クイズ',
  bundleId: 'jp.example.updates.quiz',
  sizeBytes: 30_000_000,
  licences: 100,
};

interface ApiJob {
  id: string;
  deviceId: string;
  status: string;
  reason: string | null;
  isUpdate: boolean;
  expectedVersion: string | null;
  installedVersion: string | null;
}
interface AppView {
  adamId: string;
  latestVersion: string | null;
  previousVersion: string | null;
  versions: { version: string | null; devices: number; outdated: boolean }[];
  installedDevices: number;
  outdatedDevices: number;
  updatableDevices: number;
  updateAvailable: boolean;
}
interface UpdateAnswer {
  version: string;
  distributions: { id: string; tokenId: string; licenseMode: string; jobCount: number }[];
  jobCount: number;
  skipped: Record<string, number>;
}

let world: World;
beforeAll(async () => {
  // Short sessions: an update a device does not apply ends in session_timeout within the test.
  world = await World.start([NOTE, DRILL, QUIZ], { HAISHIN_SESSION_TIMEOUT: '4s' });
});
afterAll(async () => {
  await world?.close();
});

const jobsOf = async (distributionId: string) =>
  (await world.api<{ items: ApiJob[] }>('GET', `/jobs?distributionId=${distributionId}&limit=1000`)).body
    .items;
const app = async (adamId: string) => (await world.api<AppView>('GET', `/apps/${adamId}`)).body;

async function install(tokenId: string, groupId: string, adamId: string): Promise<string> {
  const res = await world.api<{ id: string }>('POST', '/distributions', {
    kind: 'install',
    tokenId,
    adamIds: [adamId],
    targets: { groupIds: [groupId] },
    licenseMode: 'auto',
  });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return res.body.id;
}

async function update(adamId: string, body?: unknown): Promise<UpdateAnswer> {
  const res = await world.api<UpdateAnswer>('POST', `/apps/${adamId}/update`, body);
  expect(res.status, JSON.stringify(res.body)).toBe(202);
  return res.body;
}

async function settleAll(ids: readonly string[]): Promise<Record<string, number>> {
  const total: Record<string, number> = {};
  for (const id of ids)
    for (const [status, n] of Object.entries(await world.settle(id)))
      total[status] = (total[status] ?? 0) + n;
  return total;
}

describe('app updates through the protocol', () => {
  it('a first install records the version; a newer one is detected, distributed and verified', async () => {
    const school = await world.school('UPD', [NOTE], () => ({}), 3);
    const first = await install(school.token.id, school.group, NOTE.adamId);
    expect(await world.settle(first)).toEqual({ success: 3 });
    for (const job of await jobsOf(first)) {
      expect(job).toMatchObject({ isUpdate: false, expectedVersion: '1.0', installedVersion: '1.0' });
    }
    // The first install asked the devices for their installed apps: the versions are known.
    let view = await app(NOTE.adamId);
    expect(view).toMatchObject({ latestVersion: '1.0', installedDevices: 3, outdatedDevices: 0 });
    expect(view.updateAvailable).toBe(false);

    world.publishVersion(NOTE.adamId, '1.1');
    const check = await world.api<{ newVersions: { adamId: string; from: string; to: string }[] }>(
      'POST',
      '/apps/check',
    );
    expect(check.status).toBe(200);
    expect(check.body.newVersions).toContainEqual({ adamId: NOTE.adamId, from: '1.0', to: '1.1' });
    view = await app(NOTE.adamId);
    expect(view).toMatchObject({
      latestVersion: '1.1',
      previousVersion: '1.0',
      outdatedDevices: 3,
      updatableDevices: 3,
      updateAvailable: true,
    });
    expect(view.versions).toEqual([{ version: '1.0', devices: 3, outdated: true }]);
    const listed = (await world.api<{ items: AppView[] }>('GET', '/apps')).body.items;
    expect(listed.find((a) => a.adamId === NOTE.adamId)?.outdatedDevices).toBe(3);

    const answer = await update(NOTE.adamId);
    expect(answer).toMatchObject({ version: '1.1', jobCount: 3 });
    expect(answer.distributions).toHaveLength(1);
    expect(answer.distributions[0]!.licenseMode).toBe('auto');
    const distribution = (
      await world.api<{ isUpdate: boolean }>('GET', `/distributions/${answer.distributions[0]!.id}`)
    ).body;
    expect(distribution.isUpdate).toBe(true);
    expect(await world.settle(answer.distributions[0]!.id)).toEqual({ success: 3 });
    for (const job of await jobsOf(answer.distributions[0]!.id))
      expect(job).toMatchObject({ isUpdate: true, expectedVersion: '1.1', installedVersion: '1.1' });
    for (const d of school.devices) expect(d.apps.get(NOTE.bundleId)?.version).toBe('1.1');
    view = await app(NOTE.adamId);
    expect(view).toMatchObject({ outdatedDevices: 0, updatableDevices: 0, updateAvailable: false });
    expect(view.versions).toEqual([{ version: '1.1', devices: 3, outdated: false }]);
    // Nothing more to update: every candidate is counted as up to date.
    const again = await update(NOTE.adamId);
    expect(again.jobCount).toBe(0);
    expect(again.skipped.up_to_date).toBe(3);
  });

  it('an update the iPad does not apply is not a success: it times out with app.update_not_applied', async () => {
    const school = await world.school(
      'STUCK',
      [DRILL],
      (i) => ({ updates: i === 0 ? 'ignore' : 'apply' }),
      2,
    );
    expect(await world.settle(await install(school.token.id, school.group, DRILL.adamId))).toEqual({
      success: 2,
    });
    world.publishVersion(DRILL.adamId, '2.0');
    expect((await world.api('POST', '/apps/check', { adamIds: [DRILL.adamId] })).status).toBe(200);
    const answer = await update(DRILL.adamId, { groupIds: [school.group] });
    expect(answer.jobCount).toBe(2);
    expect(await settleAll(answer.distributions.map((d) => d.id))).toEqual({
      success: 1,
      session_timeout: 1,
    });
    const jobs = (await Promise.all(answer.distributions.map((d) => jobsOf(d.id)))).flat();
    const stuck = jobs.find((j) => j.status === 'session_timeout')!;
    expect(stuck).toMatchObject({ expectedVersion: '2.0', installedVersion: '1.0' });
    // The history shows it was verified (executing) but never called a success.
    const history = (await world.api<{ history: { to: string }[] }>('GET', `/jobs/${stuck.id}`)).body.history;
    expect(history.map((h) => h.to)).toContain('executing');
    expect(history.map((h) => h.to)).not.toContain('success');
    const diagnosis = await world.api<{ causes: { code: string; confidence: string }[] }>(
      'GET',
      `/jobs/${stuck.id}/diagnosis`,
    );
    expect(diagnosis.body.causes[0]).toMatchObject({
      code: 'app.update_not_applied',
      confidence: 'confirmed',
    });
    expect((await app(DRILL.adamId)).versions).toEqual([
      { version: '2.0', devices: 1, outdated: false },
      { version: '1.0', devices: 1, outdated: true },
    ]);
  });

  it('a declined update (UpdateRejected) fails at once with the cause', async () => {
    const school = await world.school('REJ', [DRILL], () => ({ updates: 'reject' }), 1);
    expect(await world.settle(await install(school.token.id, school.group, DRILL.adamId))).toEqual({
      success: 1,
    });
    world.publishVersion(DRILL.adamId, '2.1');
    expect((await world.api('POST', '/apps/check', { adamIds: [DRILL.adamId] })).status).toBe(200);
    const answer = await update(DRILL.adamId, { groupIds: [school.group] });
    expect(await world.settle(answer.distributions[0]!.id)).toEqual({ device_error: 1 });
    const [job] = await jobsOf(answer.distributions[0]!.id);
    expect(job!.reason).toBe('UpdateRejected');
    const causes = (await world.api<{ causes: { code: string }[] }>('GET', `/jobs/${job!.id}/diagnosis`)).body
      .causes;
    expect(causes[0]!.code).toBe('app.update_not_applied');
  });

  it('"keep apps up to date" on a school updates its devices by itself; a class that opts out keeps the old version', async () => {
    const school = await world.group('自動更新校');
    const exam = await world.group('試験クラス', school);
    const token = await world.token(school, [QUIZ], 'auto-update');
    expect((await world.api('POST', `/vpp-tokens/${token.id}/shares`, { groupId: exam })).status).toBe(201);
    const devices = await world.devices(2, [school], () => ({}), 'AUT');
    const [examDevice] = await world.devices(1, [exam], () => ({}), 'EXM');
    for (const g of [school, exam])
      expect(await world.settle(await install(token.id, g, QUIZ.adamId))).toEqual({
        success: g === school ? 2 : 1,
      });

    const on = await world.api<{ enabled: boolean | null; effective: boolean; inheritedFrom: string | null }>(
      'PUT',
      `/groups/${school}/keep-apps-updated`,
      { enabled: true },
    );
    expect(on.body).toMatchObject({ enabled: true, effective: true, inheritedFrom: null });
    // Inherited by the class until it says otherwise.
    expect((await world.api('GET', `/groups/${exam}/keep-apps-updated`)).body).toMatchObject({
      enabled: null,
      effective: true,
      inheritedFrom: school,
    });
    expect(
      (await world.api('PUT', `/groups/${exam}/keep-apps-updated`, { enabled: false })).body,
    ).toMatchObject({ enabled: false, effective: false, inheritedFrom: null });

    world.publishVersion(QUIZ.adamId, '3.1');
    const check = await world.api<{ autoUpdates: UpdateAnswer[] }>('POST', '/apps/check', {
      adamIds: [QUIZ.adamId],
    });
    expect(check.status).toBe(200);
    expect(check.body.autoUpdates).toHaveLength(1);
    expect(check.body.autoUpdates[0]!.jobCount).toBe(2);
    expect(await settleAll(check.body.autoUpdates[0]!.distributions.map((d) => d.id))).toEqual({
      success: 2,
    });
    for (const d of devices) expect(d.apps.get(QUIZ.bundleId)?.version).toBe('3.1');
    expect(examDevice!.apps.get(QUIZ.bundleId)?.version).toBe('1.0');
    // A second check finds nothing new to do: each version is tried once per device.
    const second = await world.api<{ autoUpdates: UpdateAnswer[] }>('POST', '/apps/check', {
      adamIds: [QUIZ.adamId],
    });
    expect(second.body.autoUpdates).toEqual([]);
  });

  it('refuses an update of an app haishin does not have, with both languages', async () => {
    const res = await world.api<{ error: { code: string; messages: { ja: string; en: string } } }>(
      'POST',
      '/apps/1999999999/update',
    );
    expect(res.status).toBe(404);
    expect(res.body.error.code).toBe('app.not_found');
    expect(res.body.error.messages.ja).toContain('1999999999');
  });
});

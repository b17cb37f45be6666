import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verdictOfReason } from '../src/diagnosis/index.ts';
import { gatherEvidence } from '../src/engine/evidence.ts';
import { buildPlist, parsePlistDict } from '../src/mdm/plist.ts';
import type { PlistDict } from '../src/mdm/plist.ts';
import type { SimDevice } from '../src/sim/device/device.ts';
import { World } from './support/world.ts';
import type { CatalogApp } from './support/world.ts';

// Issue 13: the engine's verdict, Apple's token errors and the registered/shared distinction, each
// produced through the protocol (simulated iPads, fake Apps and Books API, the engine) and asked of
// GET /jobs/:id/diagnosis.

const APP: CatalogApp = {
  adamId: '1450013001',
  name: '判定の教材',
  bundleId: 'jp.example.verdict',
  sizeBytes: 20_000_000,
  licences: 100,
};

interface Job {
  id: string;
  status: string;
  reason: string | null;
  deviceId: string;
  retryCount: number;
}
interface Cause {
  code: string;
  confidence: string;
  evidence: { fact: string; value: unknown; source: string }[];
}

async function deviceIdOf(world: World, device: SimDevice): Promise<string> {
  const res = await world.api<{ items: { id: string }[] }>(
    'GET',
    `/devices?serialNumber=${device.serialNumber}`,
  );
  return res.body.items[0]!.id;
}

async function distribute(
  world: World,
  tokenId: string,
  targets: Record<string, unknown>,
  licenseMode: 'auto' | 'manual' = 'auto',
): Promise<string> {
  const res = await world.api<{ id: string }>('POST', '/distributions', {
    kind: 'install',
    tokenId,
    adamIds: [APP.adamId],
    targets,
    licenseMode,
  });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return res.body.id;
}

async function onlyJob(world: World, distributionId: string): Promise<Job> {
  await world.settle(distributionId);
  const jobs = (await world.api<{ items: Job[] }>('GET', `/jobs?distributionId=${distributionId}`)).body
    .items;
  expect(jobs).toHaveLength(1);
  return jobs[0]!;
}

async function diagnosis(world: World, jobId: string): Promise<Cause[]> {
  const res = await world.api<{ causes: Cause[] }>('GET', `/jobs/${jobId}/diagnosis`);
  expect(res.status).toBe(200);
  return res.body.causes;
}

/**
 * The invariant of issue 13: a failed job's diagnosis is never empty and, when its reason names a
 * cause, holds that cause as confirmed — first, or behind only confirmed causes.
 */
function expectAgreesWithReason(job: Job, causes: Cause[]): void {
  expect(causes.length, `job ${job.id} (${job.status}) has no cause`).toBeGreaterThan(0);
  const verdict = verdictOfReason(job.reason);
  if (!verdict) return;
  const index = causes.findIndex((c) => c.code === verdict);
  expect(index, `${verdict} missing from ${causes.map((c) => c.code).join(', ')}`).toBeGreaterThanOrEqual(0);
  expect(causes[index]!.confidence).toBe('confirmed');
  for (const before of causes.slice(0, index)) expect(before.confidence).toBe('confirmed');
  expect(causes[index]!.evidence).toContainEqual({ fact: 'job.reason', value: job.reason, source: 'job' });
}

describe('the diagnosis agrees with the engine and with Apple', () => {
  let world: World;
  beforeAll(async () => {
    world = await World.start([APP]);
  });
  afterAll(async () => {
    await world?.close();
  });

  it('manual mode without a licence for the serial: license.not_assigned, confirmed, first', async () => {
    const school = await world.group('手動割当校');
    const token = await world.token(school, [APP], 'manual');
    const [device] = await world.devices(1, [school], () => ({}), 'MAN');
    const job = await onlyJob(world, await distribute(world, token.id, { groupIds: [school] }, 'manual'));
    expect(job).toMatchObject({ status: 'license_failed', reason: 'license.not_assigned' });
    const causes = await diagnosis(world, job.id);
    expect(causes[0]).toMatchObject({ code: 'license.not_assigned', confidence: 'confirmed' });
    expect(causes.map((c) => c.code)).not.toContain('license.apple_refused');
    expectAgreesWithReason(job, causes);
    expect(device!.received).not.toContain('InstallApplication');
  });

  it('auto-assign verdicts (own setting missing, inherited from above) are confirmed and first', async () => {
    // No auto-assign anywhere above 未設定校: the token is usable there but nothing assigns with it.
    const unset = await world.group('未設定校');
    const unsetToken = await world.token(unset, [APP], 'unset');
    await world.api('PUT', `/groups/${unset}/auto-assign-token`, { tokenId: null });
    await world.devices(1, [unset], () => ({}), 'UNS');
    const misconfigured = await onlyJob(world, await distribute(world, unsetToken.id, { groupIds: [unset] }));
    expect(misconfigured.reason).toBe('autoassign.token_misconfigured');
    const misCauses = await diagnosis(world, misconfigured.id);
    expect(misCauses[0]).toMatchObject({ code: 'autoassign.token_misconfigured', confidence: 'confirmed' });
    expectAgreesWithReason(misconfigured, misCauses);

    // The district auto-assigns with its token; a class with a token of its own inherits the district's.
    const district = await world.group('学区');
    await world.token(district, [APP], 'district');
    const klass = await world.group('学区の1組', district);
    const classToken = await world.token(klass, [APP], 'class');
    await world.api('PUT', `/groups/${klass}/auto-assign-token`, { tokenId: null });
    await world.devices(1, [klass], () => ({}), 'INH');
    const inherited = await onlyJob(world, await distribute(world, classToken.id, { groupIds: [klass] }));
    expect(inherited.reason).toBe('autoassign.inherited_only');
    const inhCauses = await diagnosis(world, inherited.id);
    expect(inhCauses[0]).toMatchObject({ code: 'autoassign.inherited_only', confidence: 'confirmed' });
    expectAgreesWithReason(inherited, inhCauses);
  });

  it('a deactivated device gets a cancelled job whose diagnosis says it left management', async () => {
    const school = await world.group('停止校');
    const token = await world.token(school, [APP], 'deactivated');
    const [device] = await world.devices(1, [school], () => ({}), 'DEA');
    const id = await deviceIdOf(world, device!);
    expect((await world.api('POST', `/devices/${id}/deactivate`)).status).toBeLessThan(300);
    const job = await onlyJob(world, await distribute(world, token.id, { deviceIds: [id] }));
    expect(job).toMatchObject({ status: 'cancelled', reason: 'device.deactivated' });
    const causes = await diagnosis(world, job.id);
    expect(causes[0]).toMatchObject({ code: 'device.unenrolled', confidence: 'confirmed' });
    expectAgreesWithReason(job, causes);
  });

  for (const [mode, code, number, state] of [
    ['revoked', 'token.revoked', 9625, 'revoked'],
    ['invalid', 'token.invalid', 9622, 'invalid'],
    ['expired', 'token.expired', 9621, 'expired'],
  ] as const) {
    it(`Apple's ${number} while assigning licences: ${code}, and the token is ${state} at once`, async () => {
      const school = await world.group(`トークン${mode}校`);
      const token = await world.token(school, [APP], `dead-${mode}`);
      await world.devices(2, [school], () => ({}), `T${mode.slice(0, 2).toUpperCase()}`);
      const before = await world.api<{ tokens: Record<string, number> }>('GET', '/status');
      // Apple turns the token down from now on (9622 comes as HTTP 200 with an error body).
      world.vpp.setMode(token.sToken, mode);
      const id = await distribute(world, token.id, { groupIds: [school] });
      await world.settle(id);
      const jobs = (await world.api<{ items: Job[] }>('GET', `/jobs?distributionId=${id}`)).body.items;
      expect(jobs).toHaveLength(2);
      for (const job of jobs) {
        expect(job).toMatchObject({ status: 'license_failed', reason: code });
        const causes = await diagnosis(world, job.id);
        expect(causes[0]).toMatchObject({ code, confidence: 'confirmed' });
        expect(causes.map((c) => c.code)).not.toContain('license.apple_refused');
        expectAgreesWithReason(job, causes);
        // Apple's number is in the evidence too.
        expect(causes[0]!.evidence.some((e) => String(e.value).includes(String(number)))).toBe(true);
      }

      const view = await world.api<{ state: string; lastError: { errorNumber: number } | null }>(
        'GET',
        `/vpp-tokens/${token.id}`,
      );
      expect(view.body.state).toBe(state);
      expect(view.body.lastError?.errorNumber).toBe(number);
      const listed = await world.api<{ items: { id: string; state: string }[] }>('GET', '/vpp-tokens');
      expect(listed.body.items.find((t) => t.id === token.id)?.state).toBe(state);
      const after = await world.api<{ tokens: Record<string, number> }>('GET', '/status');
      expect(after.body.tokens[state]).toBe((before.body.tokens[state] ?? 0) + 1);
      world.vpp.setMode(token.sToken, 'valid');
    });
  }

  it('the evidence says whether the install command sent for the job carried the VPP purchase method', async () => {
    const { store, engine } = world.server.haishin;
    const school = await world.group('購入方法校');
    const token = await world.token(school, [APP], 'purchase-method');
    const [device] = await world.devices(1, [school], () => ({}), 'PMV');
    device!.behaviours.set('InstallApplication', {
      kind: 'error',
      chain: [
        {
          ErrorCode: 12040,
          ErrorDomain: 'MCMDMErrorDomain',
          LocalizedDescription: 'iTunes Store へのサインインが必要です。',
          USEnglishDescription: 'An iTunes Store login is required.',
        },
      ],
    });
    const failed = await onlyJob(world, await distribute(world, token.id, { groupIds: [school] }));
    expect(failed.status).toBe('device_error');
    const row = (await store.jobs.get(failed.id))!;
    const evidence = () => gatherEvidence(store, row, new Date(), engine.thresholds);
    // haishin's InstallApplication carries Options.PurchaseMethod 1 (src/mdm/commands.ts).
    expect((await evidence()).job?.sentAsVpp).toBe(true);
    let causes = await engine.diagnose(row);
    expect(causes.find((c) => c.code === 'app.distributed_as_store_app')?.confidence).toBe('likely');

    // The same job, had its command gone out without the purchase method: proven, from the command.
    const sent = await store.db.kysely
      .selectFrom('commands')
      .select('payload')
      .where('uuid', '=', row.command_uuid!)
      .executeTakeFirstOrThrow();
    const plist = parsePlistDict(sent.payload);
    delete (plist.Command as PlistDict).Options;
    await store.db.kysely
      .updateTable('commands')
      .set({ payload: buildPlist(plist) })
      .where('uuid', '=', row.command_uuid!)
      .execute();
    expect((await evidence()).job?.sentAsVpp).toBe(false);
    causes = await engine.diagnose(row);
    expect(causes[0]).toMatchObject({ code: 'app.distributed_as_store_app', confidence: 'confirmed' });
    expect(causes[0]!.evidence).toContainEqual({
      fact: 'command.purchaseMethodVpp',
      value: false,
      source: 'job',
    });

    // A job that never got a command has nothing to judge: another iPad, no licence, manual mode.
    const [other] = await world.devices(1, [school], () => ({}), 'PMN');
    const manual = await onlyJob(
      world,
      await distribute(world, token.id, { deviceIds: [await deviceIdOf(world, other!)] }, 'manual'),
    );
    expect(manual.status).toBe('license_failed');
    const manualRow = (await store.jobs.get(manual.id))!;
    expect(manualRow.command_uuid).toBeNull();
    expect((await gatherEvidence(store, manualRow, new Date(), engine.thresholds)).job?.sentAsVpp).toBeNull();
  });

  it("POST /diagnose/error names the token cause for Apple's token errors, as JSON or as a number", async () => {
    for (const [text, code] of [
      ['{"errorNumber":9625,"errorMessage":"The server has revoked the sToken."}', 'token.revoked'],
      ['{"errorNumber": 9622,"errorMessage": "Invalid authentication token"}', 'token.invalid'],
      ['{"errorNumber":9621,"errorMessage":"The token has expired."}', 'token.expired'],
      ['Apps and Books error 9625', 'token.revoked'],
    ] as const) {
      const res = await world.api<{ chain: unknown[]; causes: Cause[] }>('POST', '/diagnose/error', { text });
      expect(res.status).toBe(200);
      expect(res.body.causes[0], text).toMatchObject({ code, confidence: 'confirmed' });
    }
  });

  it('no token in the group or above it: token.not_registered; a token above it not shared: token.not_shared; pre-flight says the same', async () => {
    // 教育委員会 registers a token and shares it to 東小 — not to 西小. 分校 is beside them with nothing above.
    const board = await world.group('登録判定の教育委員会');
    const east = await world.group('東小', board);
    const west = await world.group('西小', board);
    const annex = await world.group('独立分校');
    const token = await world.token(board, [APP], 'placement');
    expect((await world.api('POST', `/vpp-tokens/${token.id}/shares`, { groupId: east })).status).toBe(201);
    const [inEast] = await world.devices(1, [east], () => ({}), 'EAS');
    const [inWest] = await world.devices(1, [west], () => ({}), 'WES');
    const [inAnnex] = await world.devices(1, [annex], () => ({}), 'ANN');
    const ids = {
      east: await deviceIdOf(world, inEast!),
      west: await deviceIdOf(world, inWest!),
      annex: await deviceIdOf(world, inAnnex!),
    };
    const targets = { deviceIds: Object.values(ids) };

    const planned = await world.api<{ devices: { deviceId: string; causes: Cause[] }[] }>(
      'POST',
      '/distributions/preflight',
      { kind: 'install', tokenId: token.id, adamIds: [APP.adamId], targets, licenseMode: 'auto' },
    );
    expect(planned.status).toBe(200);
    const predicted = new Map(planned.body.devices.map((d) => [d.deviceId, d.causes]));
    expect(predicted.get(ids.east)).toEqual([]);
    expect(predicted.get(ids.west)![0]).toMatchObject({ code: 'token.not_shared', confidence: 'confirmed' });
    expect(predicted.get(ids.annex)![0]).toMatchObject({
      code: 'token.not_registered',
      confidence: 'confirmed',
    });

    const id = await distribute(world, token.id, targets);
    const counts = await world.settle(id);
    expect(counts).toEqual({ success: 1, license_failed: 2 });
    const jobs = new Map(
      (await world.api<{ items: Job[] }>('GET', `/jobs?distributionId=${id}`)).body.items.map((j) => [
        j.deviceId,
        j,
      ]),
    );
    expect(jobs.get(ids.west)?.reason).toBe('token.not_shared');
    expect(jobs.get(ids.annex)?.reason).toBe('token.not_registered');
    const west_ = await diagnosis(world, jobs.get(ids.west)!.id);
    const annex_ = await diagnosis(world, jobs.get(ids.annex)!.id);
    expect(west_[0]).toMatchObject({ code: 'token.not_shared', confidence: 'confirmed' });
    expect(west_.map((c) => c.code)).not.toContain('token.not_registered');
    expect(annex_[0]).toMatchObject({ code: 'token.not_registered', confidence: 'confirmed' });
    expect(annex_[0]!.evidence).toContainEqual({
      fact: 'group.tokensRegisteredOrSharedUpTheTree',
      value: 0,
      source: 'group_settings',
    });
    expectAgreesWithReason(jobs.get(ids.west)!, west_);
    expectAgreesWithReason(jobs.get(ids.annex)!, annex_);
    // Pre-flight predicted what the diagnosis reports.
    expect(predicted.get(ids.west)![0]!.code).toBe(west_[0]!.code);
    expect(predicted.get(ids.annex)![0]!.code).toBe(annex_[0]!.code);
  });
});

describe('transient store errors and the job deadlines', () => {
  let world: World;
  beforeAll(async () => {
    // Retries wait 1 s, then 2 s; the request deadline is 4 s after the distribution.
    world = await World.start([APP], { HAISHIN_REQUEST_TIMEOUT: '4s' }, { transientBackoffMs: 1_000 });
  });
  afterAll(async () => {
    await world?.close();
  });

  it('ASDErrorDomain 506 again and again: retried while a retry fits, then device_error with the transient cause — not request_timeout', async () => {
    const school = await world.group('506期限校');
    const token = await world.token(school, [APP], 'transient');
    const [device] = await world.devices(1, [school], () => ({}), 'DUP');
    device!.behaviours.set('InstallApplication', {
      kind: 'error',
      chain: [{ ErrorCode: 506, ErrorDomain: 'ASDErrorDomain', LocalizedDescription: 'Duplicate request' }],
    });
    const job = await onlyJob(world, await distribute(world, token.id, { groupIds: [school] }));
    expect(job).toMatchObject({ status: 'device_error', reason: 'device.store_transient' });
    expect(job.retryCount).toBeGreaterThanOrEqual(1);

    const history = (
      await world.api<{ history: { to: string; reason: string | null }[] }>('GET', `/jobs/${job.id}`)
    ).body.history;
    expect(
      history
        .filter((h) => h.to === 'retry_waiting')
        .every((h) => h.reason === 'transient ASDErrorDomain:506'),
    ).toBe(true);
    expect(history.at(-1)).toMatchObject({ to: 'device_error', reason: 'device.store_transient' });
    expect(history.map((h) => h.to)).not.toContain('request_timeout');

    const causes = await diagnosis(world, job.id);
    expect(causes[0]).toMatchObject({ code: 'device.store_transient', confidence: 'confirmed' });
    const facts = causes[0]!.evidence.map((e) => e.fact);
    expect(facts).toContain('retry.wouldStartAt');
    expect(facts).toContain('job.requestDeadline');
    expect(facts).toContain('error_chain[0]');
    expectAgreesWithReason(job, causes);
  });
});

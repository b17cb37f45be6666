import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { FakeVppService } from '../src/sim/vpp/server.ts';
import { SimDevice } from '../src/sim/device/device.ts';
import { startTestServer } from './support/server.ts';
import type { TestServer } from './support/server.ts';

const TOKEN = 'test-admin-token-vpp-0123456789';
const ADAM = '361309726';
const YEAR_MS = 365 * 86_400_000;
let server: TestServer;
let fake: FakeVppService;

const file = (name: string, days = 300, org = '教育委員会') =>
  FakeVppService.tokenFile(`tok-${name}`, org, new Date(Date.now() + days * 86_400_000));

beforeAll(async () => {
  fake = new FakeVppService();
  const url = await fake.listen();
  server = await startTestServer({
    env: { HAISHIN_ADMIN_TOKEN: TOKEN, HAISHIN_VPP_URL: url },
    tuning: { vppClientOptions: { pacing: false } },
  });
});
afterAll(async () => {
  await server?.close();
  await fake?.close();
});
beforeEach(() => fake.resetCounters());

interface ErrorBody {
  error: { code: string; message: string; messages: { ja: string; en: string } };
}
interface TokenBody {
  id: string;
  state: string;
  groupId: string;
  sharedTo: string[];
  expiresAt: string;
}

async function api<T = Record<string, unknown>>(
  method: string,
  path: string,
  body?: unknown,
): Promise<{ status: number; body: T }> {
  const response = await fetch(`${server.baseUrl}/api/v1${path}`, {
    method,
    headers: {
      authorization: `Bearer ${TOKEN}`,
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await response.text();
  return { status: response.status, body: (text ? JSON.parse(text) : null) as T };
}

const group = async (name: string, parentId: string) =>
  (await api<{ id: string }>('POST', '/groups', { name, parentId })).body.id;

function seedToken(sToken: string, location: string, total = 50) {
  fake.addToken({ sToken, orgName: '教育委員会', locationName: location });
  fake.addAsset(sToken, { adamId: ADAM, total });
}

async function register(groupId: string, sToken: string): Promise<TokenBody> {
  const res = await api<TokenBody>('POST', '/vpp-tokens', { groupId, sToken });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return res.body;
}

async function enrolled(groupId: string, serial: string): Promise<{ id: string; serial: string }> {
  const device = new SimDevice({ spec: { serialNumber: serial } });
  await device.enroll(server.enrollUrl(groupId));
  const list = await api<{ items: { id: string }[] }>('GET', `/devices?serialNumber=${serial}`);
  return { id: list.body.items[0]!.id, serial };
}

async function settle() {
  await fake.completePending();
}

describe('VPP tokens', () => {
  it('registers a token: decoded, claimed with our mdmInfo, assets synced; the secret never shows', async () => {
    const sToken = file('register');
    seedToken(sToken, '本部');
    const token = await register(server.rootGroupId, sToken);
    expect(token.state).toBe('active');
    expect(JSON.stringify(token)).not.toContain(sToken);
    expect(fake.clientState(sToken).mdmInfo?.name).toBe('haishin');
    expect(fake.clientState(sToken).notificationUrl).toBe(`${server.baseUrl}/vpp/notify`);
    const assets = await api<{ items: { adamId: string; totalCount: number; availableCount: number }[] }>(
      'GET',
      `/vpp-tokens/${token.id}/assets`,
    );
    expect(assets.body.items).toEqual([
      expect.objectContaining({ adamId: ADAM, totalCount: 50, availableCount: 50 }),
    ]);
    const list = await api<{ items: TokenBody[] }>('GET', '/vpp-tokens');
    expect(JSON.stringify(list.body)).not.toContain(sToken);
  });

  it('refuses a damaged file, an expired file and Apple-refused tokens with clear messages', async () => {
    const bad = await api<ErrorBody>('POST', '/vpp-tokens', {
      groupId: server.rootGroupId,
      sToken: 'not a token!',
    });
    expect(bad.status).toBe(400);
    expect(bad.body.error.code).toBe('token.file_invalid');
    const expired = await api<ErrorBody>('POST', '/vpp-tokens', {
      groupId: server.rootGroupId,
      sToken: file('old', -3),
    });
    expect(expired.status).toBe(409);
    expect(expired.body.error.code).toBe('token.expired_file');
    expect(expired.body.error.messages.ja).toContain('期限切れ');
    const revoked = file('revoked');
    fake.addToken({ sToken: revoked, orgName: 'x', locationName: 'y', mode: 'revoked' });
    const refused = await api<ErrorBody>('POST', '/vpp-tokens', {
      groupId: server.rootGroupId,
      sToken: revoked,
    });
    expect(refused.status).toBe(409);
    expect(refused.body.error.code).toBe('token.apple_refused');
    expect(refused.body.error.message).toContain('token_revoked');
  });

  it('a location claimed by another MDM is registered as other_mdm and is not written until an explicit takeover', async () => {
    const sToken = file('foreign');
    seedToken(sToken, '他社');
    fake.setMode(sToken, 'other_mdm', { id: 'mobi-1', name: 'Other MDM' });
    const token = await register(server.rootGroupId, sToken);
    expect(token.state).toBe('other_mdm');
    expect(fake.calls('POST client/config')).toBe(0);
    expect(fake.clientState(sToken).mdmInfo?.id).toBe('mobi-1');
    const takeover = await api<TokenBody>('POST', `/vpp-tokens/${token.id}/takeover`);
    expect(takeover.status).toBe(200);
    expect(takeover.body.state).toBe('active');
    expect(fake.clientState(sToken).mdmInfo?.name).toBe('haishin');
  });
});

describe('sharing and auto-assign over a 4-level tree', () => {
  it('shares only down the tree, inherits auto-assign, and stays right after moves and unshares', async () => {
    const l1 = await group('L1 教育委員会', server.rootGroupId);
    const l2 = await group('L2 学校', l1);
    const l3 = await group('L3 学年', l2);
    const l4 = await group('L4 学級', l3);
    const sibling = await group('S 別の教育委員会', server.rootGroupId);
    const t1File = file('tree1');
    const t2File = file('tree2');
    seedToken(t1File, 'tree-1');
    seedToken(t2File, 'tree-2');
    const t1 = await register(l1, t1File);
    const t2 = await register(l2, t2File);

    expect(
      (await api<TokenBody>('POST', `/vpp-tokens/${t1.id}/shares`, { groupId: l3 })).body.sharedTo,
    ).toEqual([l3]);
    const toSibling = await api<ErrorBody>('POST', `/vpp-tokens/${t1.id}/shares`, { groupId: sibling });
    expect(toSibling.status).toBe(409);
    expect(toSibling.body.error.code).toBe('share.share_not_descendant');
    expect(toSibling.body.error.messages.ja).toContain('下位グループ');
    const toAncestor = await api<ErrorBody>('POST', `/vpp-tokens/${t2.id}/shares`, { groupId: l1 });
    expect(toAncestor.body.error.code).toBe('share.share_not_descendant');
    expect(
      (await api<ErrorBody>('POST', `/vpp-tokens/${t1.id}/shares`, { groupId: l3 })).body.error.code,
    ).toBe('share.share_already');
    const onward = await api<ErrorBody>('POST', `/vpp-tokens/${t1.id}/shares`, {
      groupId: l4,
      fromGroupId: l3,
    });
    expect(onward.status).toBe(409);
    expect(onward.body.error.code).toBe('share.share_from_shared');
    expect(onward.body.error.messages.en).toContain('cannot be shared onward');

    const notUsable = await api<ErrorBody>('PUT', `/groups/${l2}/auto-assign-token`, { tokenId: t1.id });
    expect(notUsable.body.error.code).toBe('autoassign.token_not_usable');
    await api('PUT', `/groups/${l2}/auto-assign-token`, { tokenId: t2.id });
    expect((await api('GET', `/groups/${l4}/auto-assign-token`)).body).toEqual({
      groupId: l4,
      tokenId: null,
      effectiveTokenId: t2.id,
      inheritedFrom: l2,
    });
    await api('PUT', `/groups/${l3}/auto-assign-token`, { tokenId: t1.id });
    expect((await api('GET', `/groups/${l4}/auto-assign-token`)).body).toMatchObject({
      effectiveTokenId: t1.id,
      inheritedFrom: l3,
    });

    // Move L4 out from under L3: it now inherits nothing.
    await api('PATCH', `/groups/${l4}`, { parentId: sibling });
    expect((await api('GET', `/groups/${l4}/auto-assign-token`)).body).toMatchObject({
      effectiveTokenId: null,
      inheritedFrom: null,
    });
    await api('PATCH', `/groups/${l4}`, { parentId: l3 });
    expect((await api('GET', `/groups/${l4}/auto-assign-token`)).body).toMatchObject({
      effectiveTokenId: t1.id,
      inheritedFrom: l3,
    });

    // An empty group with settings naming it (its own auto-assign token, a share into it, apps on
    // enrollment, keep apps up to date) is deleted with them, not refused by the database.
    const spare = await group('L3b 空の学年', l2);
    expect((await api('POST', `/vpp-tokens/${t1.id}/shares`, { groupId: spare })).status).toBe(201);
    expect((await api('PUT', `/groups/${spare}/auto-assign-token`, { tokenId: t1.id })).status).toBe(200);
    expect((await api('PUT', `/groups/${spare}/keep-apps-updated`, { enabled: true })).status).toBe(200);
    expect((await api('DELETE', `/groups/${spare}`)).status).toBe(204);
    expect((await api<TokenBody>('GET', `/vpp-tokens/${t1.id}`)).body.sharedTo).toEqual([l3]);

    // Unsharing T1 from L3 removes L3's setting: L3 and L4 fall back to L2's token.
    expect((await api('DELETE', `/vpp-tokens/${t1.id}/shares/${l3}`)).status).toBe(200);
    expect((await api('GET', `/groups/${l3}/auto-assign-token`)).body).toMatchObject({
      tokenId: null,
      effectiveTokenId: t2.id,
      inheritedFrom: l2,
    });
    expect((await api('GET', `/groups/${l4}/auto-assign-token`)).body).toMatchObject({
      effectiveTokenId: t2.id,
      inheritedFrom: l2,
    });

    const groupDelete = await api<ErrorBody>('DELETE', `/groups/${l2}`);
    expect(groupDelete.status).toBe(409);
    expect(groupDelete.body.error.messages.en).toContain('1 VPP token');
  });
});

describe('renewal', () => {
  it('accepts only the same location with a later expiry; auto-assign keeps working', async () => {
    const school = await group('更新校', server.rootGroupId);
    const current = file('renew-a', 20);
    seedToken(current, 'renew-loc');
    const token = await register(school, current);
    expect(token.state).toBe('expiring');
    await api('PUT', `/groups/${school}/auto-assign-token`, { tokenId: token.id });

    const otherLocation = file('renew-other', 400);
    seedToken(otherLocation, 'somewhere-else');
    const wrong = await api<ErrorBody>('PUT', `/vpp-tokens/${token.id}`, { sToken: otherLocation });
    expect(wrong.status).toBe(409);
    expect(wrong.body.error.code).toBe('token.renew_other_location');
    expect(wrong.body.error.messages.ja).toContain('同じロケーション');

    const renewed = file('renew-b', 380);
    fake.addToken({
      sToken: renewed,
      orgName: '教育委員会',
      locationName: 'renew-loc',
      sameLocationAs: current,
    });
    const earlier = file('renew-c', 5);
    fake.addToken({
      sToken: earlier,
      orgName: '教育委員会',
      locationName: 'renew-loc',
      sameLocationAs: current,
    });
    const notLater = await api<ErrorBody>('PUT', `/vpp-tokens/${token.id}`, { sToken: earlier });
    expect(notLater.body.error.code).toBe('token.renew_not_later');

    const ok = await api<TokenBody>('PUT', `/vpp-tokens/${token.id}`, { sToken: renewed });
    expect(ok.status).toBe(200);
    expect(ok.body.id).toBe(token.id);
    expect(ok.body.state).toBe('active');
    expect(new Date(ok.body.expiresAt).getTime()).toBeGreaterThan(Date.now() + YEAR_MS);
    expect((await api('GET', `/groups/${school}/auto-assign-token`)).body).toMatchObject({
      tokenId: token.id,
      effectiveTokenId: token.id,
    });
    // The renewed secret is what the licence calls now use.
    fake.resetCounters();
    const device = await enrolled(school, 'RENEW0000001');
    const assign = await api<{ eventIds: string[] }>('POST', '/licenses/assign', {
      tokenId: token.id,
      adamId: ADAM,
      serialNumbers: [device.serial],
    });
    expect(assign.status).toBe(202);
    await settle();
    expect(fake.holders(renewed, ADAM)).toContain(device.serial);
  });
});

describe('Apple refusing the claim of a renewal or a takeover', () => {
  it('answers 409 token.apple_refused in both languages, and the token stays as it was', async () => {
    const school = await group('更新拒否校', server.rootGroupId);
    const current = file('refuse-a', 20);
    seedToken(current, 'refuse-loc');
    const token = await register(school, current);
    const renewed = file('refuse-b', 380);
    fake.addToken({
      sToken: renewed,
      orgName: '教育委員会',
      locationName: 'refuse-loc',
      sameLocationAs: current,
    });
    fake.injectFault({
      type: 'refusal',
      endpoint: 'POST client/config',
      sToken: renewed,
      count: 1,
      errorNumber: 9601,
    });
    const refused = await api<ErrorBody>('PUT', `/vpp-tokens/${token.id}`, { sToken: renewed });
    expect(refused.status).toBe(409);
    expect(refused.body.error.code).toBe('token.apple_refused');
    expect(refused.body.error.message).toContain('9601');
    expect(refused.body.error.messages.ja.length).toBeGreaterThan(0);
    expect(refused.body.error.messages.en.length).toBeGreaterThan(0);
    const after = await api<TokenBody>('GET', `/vpp-tokens/${token.id}`);
    expect(after.body.expiresAt).toBe(token.expiresAt);

    const foreign = file('refuse-foreign');
    seedToken(foreign, '他社拒否');
    fake.setMode(foreign, 'other_mdm', { id: 'mobi-2', name: 'Other MDM' });
    const held = await register(school, foreign);
    expect(held.state).toBe('other_mdm');
    fake.injectFault({
      type: 'refusal',
      endpoint: 'POST client/config',
      sToken: foreign,
      count: 1,
      errorNumber: 9601,
    });
    const takeover = await api<ErrorBody>('POST', `/vpp-tokens/${held.id}/takeover`);
    expect(takeover.status).toBe(409);
    expect(takeover.body.error.code).toBe('token.apple_refused');
    expect((await api<TokenBody>('GET', `/vpp-tokens/${held.id}`)).body.state).toBe('other_mdm');
    expect(fake.clientState(foreign).mdmInfo?.id).toBe('mobi-2');
  });
});

describe('licences and automatic reclaim', () => {
  let tokenId: string;
  let sToken: string;
  let school: string;
  let shared: string;
  beforeAll(async () => {
    school = await group('回収校', server.rootGroupId);
    shared = await group('回収校-1組', school);
    sToken = file('reclaim');
    seedToken(sToken, 'reclaim-loc', 100);
    tokenId = (await register(school, sToken)).id;
    await api('POST', `/vpp-tokens/${tokenId}/shares`, { groupId: shared });
  });

  const licenceStates = async (serial: string) =>
    (
      await api<{ items: { state: string; origin: string }[] }>(
        'GET',
        `/licenses?tokenId=${tokenId}&serialNumber=${serial}`,
      )
    ).body.items;

  it('assigns by serial and records the licence once Apple completes the event', async () => {
    const device = await enrolled(school, 'LIC000000001');
    const res = await api<{ serials: string[]; eventIds: string[] }>('POST', '/licenses/assign', {
      tokenId,
      adamId: ADAM,
      serialNumbers: [device.serial],
    });
    expect(res.body.eventIds).toHaveLength(1);
    expect((await licenceStates(device.serial))[0]).toMatchObject({ state: 'assigning', origin: 'manual' });
    await settle();
    expect((await licenceStates(device.serial))[0]!.state).toBe('assigned');
    expect(fake.holders(sToken, ADAM)).toContain(device.serial);
  });

  it('deactivating a device reclaims its licences with exactly one disassociate', async () => {
    const device = await enrolled(school, 'LIC000000002');
    await api('POST', '/licenses/assign', { tokenId, adamId: ADAM, serialNumbers: [device.serial] });
    await settle();
    fake.resetCounters();
    const res = await api<{ reclaimedLicenses: number; device: { status: string } }>(
      'POST',
      `/devices/${device.id}/deactivate`,
    );
    expect(res.body).toMatchObject({ reclaimedLicenses: 1, device: { status: 'deactivated' } });
    expect(fake.calls('POST assets/disassociate')).toBe(1);
    await settle();
    expect(fake.holders(sToken, ADAM)).not.toContain(device.serial);
    expect((await licenceStates(device.serial))[0]!.state).toBe('reclaimed');
  });

  it('unsharing reclaims exactly the licences assigned through the share', async () => {
    const viaShare = ['SHR000000001', 'SHR000000002'];
    const direct = 'SHR000000003';
    await server.haishin.tokens.assign(tokenId, ADAM, viaShare, 'auto', shared);
    await server.haishin.tokens.assign(tokenId, ADAM, [direct], 'auto', school);
    await settle();
    fake.resetCounters();
    await api('DELETE', `/vpp-tokens/${tokenId}/shares/${shared}`);
    expect(fake.calls('POST assets/disassociate')).toBe(1);
    await settle();
    const holders = fake.holders(sToken, ADAM);
    expect(holders).not.toContain(viaShare[0]);
    expect(holders).not.toContain(viaShare[1]);
    expect(holders).toContain(direct);
  });

  it('a remote wipe reclaims every licence of the device with one disassociate', async () => {
    const device = await enrolled(school, 'WIPE00000001');
    await server.haishin.tokens.assign(tokenId, ADAM, [device.serial], 'auto', school);
    await settle();
    fake.resetCounters();
    const wipe = await api<{ reclaimedLicenses: number; commandUuid: string }>(
      'POST',
      `/devices/${device.id}/wipe`,
    );
    expect(wipe.status).toBe(202);
    expect(wipe.body.reclaimedLicenses).toBe(1);
    expect(fake.calls('POST assets/disassociate')).toBe(1);
    const queued = await server.haishin.store.db.kysely
      .selectFrom('commands')
      .select('request_type')
      .where('uuid', '=', wipe.body.commandUuid)
      .executeTakeFirstOrThrow();
    expect(queued.request_type).toBe('EraseDevice');
  });

  it('deleting the token reclaims its auto-assigned licences only, in one disassociate', async () => {
    const autoSerials = ['DEL000000001', 'DEL000000002'];
    await server.haishin.tokens.assign(tokenId, ADAM, autoSerials, 'auto', school);
    await server.haishin.tokens.assign(tokenId, ADAM, ['DEL000000003'], 'manual', null);
    await settle();
    fake.resetCounters();
    const res = await api<{ reclaimed: { serials: string[] }[] }>('DELETE', `/vpp-tokens/${tokenId}`);
    expect(res.status).toBe(200);
    expect(fake.calls('POST assets/disassociate')).toBe(1);
    const reclaimed = res.body.reclaimed.flatMap((c) => c.serials);
    expect(reclaimed).toEqual(expect.arrayContaining(autoSerials));
    expect(reclaimed).not.toContain('DEL000000003');
    expect((await api('GET', `/vpp-tokens/${tokenId}`)).status).toBe(404);
  });

  it('a user deleting the app on the device reclaims nothing', async () => {
    const school2 = await group('ローカル削除校', server.rootGroupId);
    const s = file('local');
    seedToken(s, 'local-loc');
    const t = await register(school2, s);
    const device = new SimDevice({ spec: { serialNumber: 'LOCAL0000001' } });
    await device.enroll(server.enrollUrl(school2));
    await server.haishin.tokens.assign(t.id, ADAM, [device.serialNumber], 'auto', school2);
    await settle();
    fake.resetCounters();
    device.apps.clear();
    const id = (await api<{ items: { id: string }[] }>('GET', `/devices?serialNumber=${device.serialNumber}`))
      .body.items[0]!.id;
    await api('POST', `/devices/${id}/refresh`);
    await device.connect();
    expect(fake.calls('POST assets/disassociate')).toBe(0);
    expect(fake.holders(s, ADAM)).toContain(device.serialNumber);
  });
});

describe('asset counts', () => {
  it('an ASSET_COUNT notification (licences bought) moves the counts without a sync', async () => {
    const school = await group('購入校', server.rootGroupId);
    const s = file('counts');
    seedToken(s, 'counts-loc', 40);
    const token = await register(school, s);
    await fake.adjustTotal(s, ADAM, 25);
    const assets = await api<{ items: { totalCount: number; availableCount: number }[] }>(
      'GET',
      `/vpp-tokens/${token.id}/assets`,
    );
    expect(assets.body.items[0]).toMatchObject({ totalCount: 65, availableCount: 65 });
  });
});

describe('expiry warnings', () => {
  it('a token 10 days from expiry shows the 14-day warning and raises one audit event', async () => {
    const school = await group('期限校', server.rootGroupId);
    const s = file('warn', 10);
    seedToken(s, 'warn-loc');
    const token = await register(school, s);
    expect(token).toMatchObject({ state: 'expiring', expiryWarningDays: 14 });
    await server.haishin.tokens.maintenance(3_600_000);
    await server.haishin.tokens.maintenance(3_600_000);
    const events = await server.haishin.store.admin.listAudit({
      objectType: 'vpp_token',
      objectId: token.id,
      limit: 20,
    });
    const warnings = events.filter((e) => e.action === 'token.expiry_warning');
    expect(warnings).toHaveLength(1);
    expect(JSON.parse(warnings[0]!.details!)).toMatchObject({ daysLeft: 14 });
  });
});

describe('Apple notifications', () => {
  it('POST /vpp/notify refuses a wrong bearer and is idempotent on notificationId', async () => {
    const wrong = await fetch(`${server.baseUrl}/vpp/notify`, {
      method: 'POST',
      headers: { authorization: 'Bearer nope', 'content-type': 'application/json' },
      body: '{}',
    });
    expect(wrong.status).toBe(401);
    const delivered = fake.notifications();
    expect(delivered.every((n) => n.status === 200)).toBe(true);
  });
});

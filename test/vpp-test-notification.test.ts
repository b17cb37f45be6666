import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { FakeVppService } from '../src/sim/vpp/server.ts';
import { startTestServer } from './support/server.ts';
import type { TestServer } from './support/server.ts';

// Apple sends a TEST_NOTIFICATION to the notificationUrl that POST client/config sets, with the
// new notificationAuthToken, before it answers that call (decision 0013).

const TOKEN = 'test-admin-token-vpp-test-notification';
let server: TestServer;
let fake: FakeVppService;
let seq = 0;

beforeAll(async () => {
  fake = new FakeVppService();
  const url = await fake.listen();
  // Default pacing: each token's client has its own burst, enough for these few calls.
  server = await startTestServer({ env: { HAISHIN_ADMIN_TOKEN: TOKEN, HAISHIN_VPP_URL: url } });
});
afterAll(async () => {
  await server?.close();
  await fake?.close();
});
beforeEach(() => fake.resetCounters());

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

/** A fresh location in the fake; its .vpptoken text is the sToken. */
function seed(days = 300): string {
  const n = ++seq;
  const sToken = FakeVppService.tokenFile(`tn-${n}`, '教育委員会', new Date(Date.now() + days * 86_400_000));
  fake.addToken({ sToken, orgName: '教育委員会', locationName: `test-notification-${n}` });
  fake.addAsset(sToken, { adamId: '361309726', total: 5 });
  return sToken;
}

async function testNotificationsAudited(tokenId: string) {
  const events = await server.haishin.store.admin.listAudit({
    objectType: 'vpp_token',
    objectId: tokenId,
    limit: 50,
  });
  return events.filter((e) => e.action === 'token.notification_test');
}

function notify(body: unknown, bearer?: string): Promise<Response> {
  return fetch(`${server.baseUrl}/vpp/notify`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      ...(bearer === undefined ? {} : { authorization: `Bearer ${bearer}` }),
    },
    body: JSON.stringify(body),
  });
}

describe('TEST_NOTIFICATION', () => {
  it('sent during POST client/config of a registration is answered 200 and recorded on the token', async () => {
    const sToken = seed();
    const res = await api<{ id: string; state: string }>('POST', '/vpp-tokens', {
      groupId: server.rootGroupId,
      sToken,
    });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    expect(res.body.state).toBe('active');

    // The fake delivered it before answering client/config, with the bearer haishin had just chosen.
    const tests = fake.notifications('TEST_NOTIFICATION');
    expect(tests).toEqual([
      expect.objectContaining({ url: `${server.baseUrl}/vpp/notify`, status: 200, serials: 0 }),
    ]);
    expect(fake.calls('POST client/config')).toBe(1);
    const row = await server.haishin.store.vpp.getToken(res.body.id);
    expect(row?.claim_state).toBe('ours');
    expect(fake.clientState(sToken).notificationAuthToken).toBe(row?.notification_auth_token);

    const audited = await testNotificationsAudited(res.body.id);
    expect(audited).toHaveLength(1);
    expect(audited[0]!.actor).toBe('apple');
    expect(JSON.parse(audited[0]!.details!)).toEqual({ notificationId: tests[0]!.notificationId });
  });

  it('renewal and takeover send the bearer the token already holds: their tests are answered 200 too', async () => {
    const current = seed(20);
    const token = (
      await api<{ id: string }>('POST', '/vpp-tokens', { groupId: server.rootGroupId, sToken: current })
    ).body;
    const renewed = FakeVppService.tokenFile(
      `tn-renewed-${seq}`,
      '教育委員会',
      new Date(Date.now() + 380 * 86_400_000),
    );
    fake.addToken({
      sToken: renewed,
      orgName: '教育委員会',
      locationName: 'renewed',
      sameLocationAs: current,
    });
    fake.resetCounters();

    expect((await api('PUT', `/vpp-tokens/${token.id}`, { sToken: renewed })).status).toBe(200);
    fake.setMode(renewed, 'other_mdm', { id: 'mobi-1', name: 'Other MDM' });
    expect((await api('POST', `/vpp-tokens/${token.id}/takeover`)).status).toBe(200);

    expect(fake.notifications('TEST_NOTIFICATION').map((n) => n.status)).toEqual([200, 200]);
    expect(await testNotificationsAudited(token.id)).toHaveLength(3);
  });

  it('a claim Apple refuses leaves no token behind, so the location can be registered again', async () => {
    const sToken = seed();
    fake.injectFault({ type: 'error9610', count: 1, endpoint: 'POST client/config' });
    const refused = await api<{ error: { code: string } }>('POST', '/vpp-tokens', {
      groupId: server.rootGroupId,
      sToken,
    });
    expect(refused.status).toBe(409);
    expect(refused.body.error.code).toBe('token.apple_refused');
    const list = await api<{ items: { locationName: string | null }[] }>('GET', '/vpp-tokens');
    const location = `test-notification-${seq}`;
    expect(list.body.items.map((t) => t.locationName)).not.toContain(location);

    const again = await api<{ id: string }>('POST', '/vpp-tokens', { groupId: server.rootGroupId, sToken });
    expect(again.status, JSON.stringify(again.body)).toBe(201);
    expect(fake.notifications('TEST_NOTIFICATION').map((n) => n.status)).toEqual([200]);
  });

  it('an unknown or missing bearer is still 401, and nothing is recorded', async () => {
    const body = {
      notificationId: 'test-unknown',
      notificationType: 'TEST_NOTIFICATION',
      notification: {},
      uId: '1',
    };
    const unknown = await notify(body, 'not-a-bearer-haishin-gave');
    expect(unknown.status).toBe(401);
    expect(await unknown.json()).toMatchObject({ error: { code: 'unauthorized' } });
    expect((await notify(body)).status).toBe(401);
    const all = await server.haishin.store.admin.listAudit({ objectType: 'vpp_token', limit: 500 });
    expect(all.some((e) => e.details?.includes('test-unknown'))).toBe(false);
  });

  it('is accepted without a notification object and once per notificationId', async () => {
    const sToken = seed();
    const token = (await api<{ id: string }>('POST', '/vpp-tokens', { groupId: server.rootGroupId, sToken }))
      .body;
    const bearer = fake.clientState(sToken).notificationAuthToken!;
    const body = { notificationId: `again-${token.id}`, notificationType: 'TEST_NOTIFICATION', uId: '1' };
    const first = await notify(body, bearer);
    expect(first.status).toBe(200);
    expect(await first.json()).toMatchObject({ ok: true, duplicate: false });
    const second = await notify(body, bearer);
    expect(await second.json()).toMatchObject({ ok: true, duplicate: true });
    // The registration's own test, then this one once.
    expect(await testNotificationsAudited(token.id)).toHaveLength(2);
  });

  it('another process keeps it in the database for the one that follows the events (decision 0019): a wrong bearer is 401, a body that is not JSON 400, and the holder applies what was kept once', async () => {
    const sToken = seed();
    const token = (await api<{ id: string }>('POST', '/vpp-tokens', { groupId: server.rootGroupId, sToken }))
      .body;
    const bearer = fake.clientState(sToken).notificationAuthToken!;
    const tokens = server.haishin.tokens;
    const body = (id: string) =>
      Buffer.from(JSON.stringify({ notificationId: id, notificationType: 'TEST_NOTIFICATION', uId: '1' }));
    expect((await tokens.keepNotification('Bearer not-a-token', body('kept-0'))).status).toBe(401);
    expect((await tokens.keepNotification(undefined, body('kept-0'))).status).toBe(401);
    const malformed = await tokens.keepNotification(`Bearer ${bearer}`, Buffer.from('{"notificationId":'));
    expect(malformed).toMatchObject({ status: 400, body: { error: { code: 'malformed' } } });
    expect(await tokens.keepNotification(`Bearer ${bearer}`, body(`kept-${token.id}`))).toEqual({
      status: 200,
      body: { ok: true, kept: true },
    });
    // Kept twice (Apple repeats itself): applied once all the same.
    await tokens.keepNotification(`Bearer ${bearer}`, body(`kept-${token.id}`));
    expect(await server.haishin.store.vpp.inboxOldest(10)).toHaveLength(2);
    expect(await testNotificationsAudited(token.id)).toHaveLength(1);
    await tokens.tick({ shared: true });
    expect(await server.haishin.store.vpp.inboxOldest(10)).toEqual([]);
    expect(await testNotificationsAudited(token.id)).toHaveLength(2);
  });
});

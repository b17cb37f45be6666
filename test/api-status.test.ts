// GET /api/v1/status: what an administrator checks first — the push certificate (its expiry and
// the alert written when APNs refuses it), the device CA, VPP tokens near expiry, devices.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateDemoPushIdentity } from '../src/apple/apns/pushcert.ts';
import { FakeVppService } from '../src/sim/vpp/server.ts';
import { startTestServer } from './support/server.ts';
import { World } from './support/world.ts';
import type { CatalogApp } from './support/world.ts';

const APP: CatalogApp = {
  adamId: '361285711',
  name: '理科図鑑',
  bundleId: 'jp.example.zukan',
  sizeBytes: 10_000_000,
  licences: 5,
};

interface Status {
  version: string;
  instanceId: string;
  now: string;
  pushCertificate: {
    topic: string;
    notAfter: string | null;
    daysLeft: number | null;
    alert: { at: string; status: number | null; reason: string | null } | null;
  } | null;
  deviceCa: { notAfter: string };
  tokens: { total: number; expiring: number; expired: number; revoked: number; invalid: number };
  devices: Record<'total' | 'enrolled' | 'pending' | 'unenrolled' | 'deactivated', number>;
}

const VERSION = (JSON.parse(readFileSync('package.json', 'utf8')) as { version: string }).version;

describe('GET /api/v1/status in the simulated world', () => {
  let world: World;
  let deviceIds: string[] = [];

  beforeAll(async () => {
    world = await World.start([APP]);
    const school = await world.group('状態小学校');
    await world.token(school, [APP], 'status');
    // A second token ten days from expiry: the status must count it as expiring.
    const soon = FakeVppService.tokenFile('world-soon', '教育委員会', new Date(Date.now() + 10 * 86_400_000));
    world.vpp.addToken({ sToken: soon, orgName: '教育委員会', locationName: 'soon' });
    expect((await world.api('POST', '/vpp-tokens', { groupId: school, sToken: soon })).status).toBe(201);
    await world.devices(2, [school], () => ({}), 'STA');
    const devices = await world.api<{ items: { id: string }[] }>('GET', `/devices?groupId=${school}`);
    deviceIds = devices.body.items.map((d) => d.id);
  }, 60_000);

  afterAll(async () => {
    await world?.close();
  });

  it('reports the loaded push certificate without an alert, the device CA, tokens and devices', async () => {
    const res = await world.api<Status>('GET', '/status');
    expect(res.status).toBe(200);
    const s = res.body;
    expect(s.version).toBe(VERSION);
    expect(s.instanceId).toBe(await world.server.haishin.store.getSetting('instance.id'));
    expect(Math.abs(Date.parse(s.now) - Date.now())).toBeLessThan(60_000);
    expect(s.pushCertificate).toEqual({
      topic: expect.stringMatching(/^com\.apple\.mgmt\.External\./),
      notAfter: world.pushNotAfter.toISOString(),
      daysLeft: 364,
      expiryWarningDays: null,
      alert: null,
    });
    expect(Date.parse(s.deviceCa.notAfter)).toBeGreaterThan(Date.now() + 365 * 86_400_000);
    expect(s.tokens).toEqual({ total: 2, expiring: 1, expired: 0, revoked: 0, invalid: 0 });
    expect(s.devices).toEqual({ total: 2, enrolled: 2, pending: 0, unenrolled: 0, deactivated: 0 });
  });

  it('shows the alert push.ts stores once the fake APNs answers 403 for the certificate', async () => {
    world.apnsFake.failAll({ status: 403, reason: 'BadCertificate' });
    try {
      expect((await world.api('POST', `/devices/${deviceIds[0]}/refresh`)).status).toBe(202);
      await expect
        .poll(async () => (await world.api<Status>('GET', '/status')).body.pushCertificate?.alert, {
          timeout: 10_000,
        })
        .toMatchObject({ status: 403, reason: 'BadCertificate' });
      const alert = (await world.api<Status>('GET', '/status')).body.pushCertificate!.alert!;
      expect(Math.abs(Date.parse(alert.at) - Date.now())).toBeLessThan(60_000);
    } finally {
      world.apnsFake.clearFailures();
    }
    // Once APNs accepts pushes again (a renewed certificate), the alert goes away.
    expect((await world.api('POST', `/devices/${deviceIds[0]}/refresh`)).status).toBe(202);
    await expect
      .poll(async () => (await world.api<Status>('GET', '/status')).body.pushCertificate?.alert, {
        timeout: 10_000,
      })
      .toBeNull();
  });

  it('answers 401 without a token or with a wrong one, in the caller’s language', async () => {
    const bare = await fetch(`${world.server.baseUrl}/api/v1/status`);
    expect(bare.status).toBe(401);
    expect(((await bare.json()) as { error: { code: string } }).error.code).toBe('auth.required');
    const wrong = await fetch(`${world.server.baseUrl}/api/v1/status`, {
      headers: { authorization: 'Bearer hs_wrong', 'accept-language': 'ja' },
    });
    expect(wrong.status).toBe(401);
    const body = (await wrong.json()) as { error: { code: string; message: string } };
    expect(body.error.code).toBe('auth.invalid');
    expect(body.error.message).toMatch(/[\u3040-\u30ff\u4e00-\u9fff]/);
  });

  it('is in the OpenAPI document with its response schema', async () => {
    const doc = (await (await fetch(`${world.server.baseUrl}/api/v1/openapi.json`)).json()) as {
      paths: Record<
        string,
        { get?: { responses: Record<string, { content?: Record<string, { schema: unknown }> }> } }
      >;
    };
    const schema = doc.paths['/api/v1/status']?.get?.responses['200']?.content?.['application/json']
      ?.schema as { properties: Record<string, unknown> };
    expect(Object.keys(schema.properties)).toEqual(
      expect.arrayContaining([
        'version',
        'instanceId',
        'pushCertificate',
        'deviceCa',
        'tokens',
        'devices',
        'now',
      ]),
    );
  });
});

describe('GET /api/v1/status on bare servers', () => {
  const ADMIN = 'test-admin-token-status-0123456789';
  const get = async (baseUrl: string) =>
    (await (
      await fetch(`${baseUrl}/api/v1/status`, { headers: { authorization: `Bearer ${ADMIN}` } })
    ).json()) as Status;

  it('a certificate ten days from expiry is reported with its days left', async () => {
    // Issued 355 days ago for a year: ten days (and a bit) left.
    const push = generateDemoPushIdentity(new Date(Date.now() - 355 * 86_400_000 + 3_600_000));
    const dir = mkdtempSync(join(tmpdir(), 'haishin-status-'));
    writeFileSync(join(dir, 'push.pem'), push.certPem);
    writeFileSync(join(dir, 'push.key'), push.keyPem);
    const server = await startTestServer({
      env: {
        HAISHIN_ADMIN_TOKEN: ADMIN,
        HAISHIN_APNS_CERT: join(dir, 'push.pem'),
        HAISHIN_APNS_KEY: join(dir, 'push.key'),
      },
    });
    try {
      const s = await get(server.baseUrl);
      expect(s.pushCertificate).toEqual({
        topic: push.topic,
        // The certificate keeps whole seconds.
        notAfter: new Date(Math.floor(push.notAfter.getTime() / 1000) * 1000).toISOString(),
        daysLeft: 10,
        // The warning in force (decision 0022): 30, 14, 7 or 1 days.
        expiryWarningDays: 14,
        alert: null,
      });
      expect(s.tokens).toEqual({ total: 0, expiring: 0, expired: 0, revoked: 0, invalid: 0 });
      expect(s.devices.total).toBe(0);
    } finally {
      await server.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

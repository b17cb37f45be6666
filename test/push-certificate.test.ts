// The push certificate's life (issue 17 item 3, decision 0022): replaced at run time through the
// REST API (PEM and .p12), pushes go on with the new identity, another topic is refused unless
// forced, a restart keeps the uploaded certificate, expiry warnings and the diagnosis.
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import forge from 'node-forge';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateDemoPushIdentity } from '../src/apple/apns/pushcert.ts';
import type { PushIdentity } from '../src/apple/apns/pushcert.ts';
import { ManualClock } from '../src/core/clock.ts';
import { PushCertificates } from '../src/app/push-certificate.ts';
import { SecretBox } from '../src/store/secretbox.ts';
import { startFakes } from '../src/sim/fakes.ts';
import type { Fakes } from '../src/sim/fakes.ts';
import { SimDevice } from '../src/sim/device/device.ts';
import { SimFleet } from '../src/sim/fleet.ts';
import { startTestServer } from './support/server.ts';
import type { TestServer } from './support/server.ts';

const TOKEN = 'test-admin-token-pushcert-0123456789';
const DAY = 86_400_000;
const fleet = new SimFleet();
const dir = mkdtempSync(join(tmpdir(), 'haishin-pushcert-'));
const clock = new ManualClock(new Date());
let fakes: Fakes;
let server: TestServer;
const env = () => ({
  HAISHIN_ADMIN_TOKEN: TOKEN,
  ...fakes.env,
  HAISHIN_DB: `sqlite:${join(dir, 'haishin.db')}`,
  HAISHIN_DATA_DIR: join(dir, 'data'),
});

beforeAll(async () => {
  fakes = await startFakes({ dir: join(dir, 'apple'), onPush: (token) => void fleet.wake(token) });
  server = await startTestServer({
    clock,
    env: env(),
    tuning: { apnsRetry: { attempts: 2, baseMs: 10, capMs: 20 } },
  });
});
afterAll(async () => {
  await server?.close();
  await fakes?.close();
  rmSync(dir, { recursive: true, force: true });
});

async function api<T = Record<string, unknown>>(method: string, path: string, body?: unknown, lang = 'en') {
  const r = await fetch(`${server.baseUrl}/api/v1${path}`, {
    method,
    headers: {
      authorization: `Bearer ${TOKEN}`,
      'accept-language': lang,
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  return { status: r.status, body: (await r.json()) as T };
}

const fingerprint = (pem: string) => new X509Certificate(pem).fingerprint256;
/** notAfter as the certificate holds it (whole seconds). */
const notAfterOf = (pem: string) => new Date(new X509Certificate(pem).validTo).toISOString();

/** Apple's portal, renewing (same topic) or creating (new topic); the fake APNs trusts the result. */
function portal(mode: 'renew' | 'create', validDays = 365): PushIdentity {
  const identity = generateDemoPushIdentity(new Date(), {
    ...(mode === 'renew' ? { topic: fakes.push.topic } : {}),
    validDays,
  });
  fakes.apns.trust(identity.certPem);
  return identity;
}

async function refreshAndWait(device: SimDevice): Promise<void> {
  const id = (await api<{ items: { id: string }[] }>('GET', `/devices?serialNumber=${device.serialNumber}`))
    .body.items[0]!.id;
  const refresh = await api<{ push: string }>('POST', `/devices/${id}/refresh`);
  expect(refresh.body.push).toBe('sent');
  await new Promise((r) => setTimeout(r, 50));
  await fleet.idle();
}

describe('push certificate replaced at run time', () => {
  let device: SimDevice;

  it('a renewed certificate (PEM) replaces the one in use; pushes go on with it', async () => {
    device = fleet.add(new SimDevice({ spec: { serialNumber: 'PCERT0000001' } }));
    await device.enroll(server.enrollUrl());
    await refreshAndWait(device);
    expect(fakes.apns.recent().at(-1)!.certificate).toBe(fingerprint(fakes.push.certPem));

    // A renewal expires after the certificate it renews (the rule at restart: the later one wins).
    const renewed = portal('renew', 400);
    const put = await api<{ topic: string; topicChanged: boolean; source: string; notAfter: string }>(
      'PUT',
      '/push-certificate',
      { certPem: renewed.certPem, keyPem: renewed.keyPem },
    );
    expect(put.status).toBe(200);
    expect(put.body).toMatchObject({ topic: fakes.push.topic, topicChanged: false, source: 'uploaded' });
    await refreshAndWait(device);
    const last = fakes.apns.recent().at(-1)!;
    expect(last.status).toBe(200);
    expect(last.certificate).toBe(fingerprint(renewed.certPem));
    expect(last.headers['apns-topic']).toBe(fakes.push.topic);
    const shown = await api<{ notAfter: string; source: string }>('GET', '/push-certificate');
    expect(shown.body).toMatchObject({ notAfter: notAfterOf(renewed.certPem), source: 'uploaded' });
    const audit = await server.haishin.store.admin.listAudit({ objectType: 'push_certificate', limit: 5 });
    expect(audit.map((a) => a.action)).toContain('push_certificate.replace');
  });

  it('a certificate of another topic is refused (409, ja/en); a key that does not match is 400', async () => {
    const created = portal('create', 300);
    const refused = await api<{ error: { code: string; message: string } }>('PUT', '/push-certificate', {
      certPem: created.certPem,
      keyPem: created.keyPem,
    });
    expect(refused.status).toBe(409);
    expect(refused.body.error.code).toBe('push_certificate.topic_changed');
    expect(refused.body.error.message).toContain(
      'it was created instead of renewed; every enrolled device would stop answering',
    );
    const ja = await api<{ error: { message: string } }>(
      'PUT',
      '/push-certificate',
      { certPem: created.certPem, keyPem: created.keyPem },
      'ja',
    );
    expect(ja.body.error.message).toMatch(/「新規作成」されたもの/);
    // Nothing changed: the renewed certificate still pushes.
    expect((await api<{ topic: string }>('GET', '/push-certificate')).body.topic).toBe(fakes.push.topic);

    const wrongKey = await api<{ error: { code: string } }>('PUT', '/push-certificate', {
      certPem: created.certPem,
      keyPem: generateDemoPushIdentity(new Date()).keyPem,
    });
    expect(wrongKey.status).toBe(400);
    expect(wrongKey.body.error.code).toBe('push_certificate.unusable');
  });

  it('a .p12 upload works, and a restart keeps the uploaded certificate (stored sealed)', async () => {
    const renewed = portal('renew', 450);
    const key = forge.pki.privateKeyFromPem(renewed.keyPem);
    const p12 = forge.pkcs12.toPkcs12Asn1(key, [forge.pki.certificateFromPem(renewed.certPem)], 'secret', {
      algorithm: '3des',
    });
    const der = Buffer.from(forge.asn1.toDer(p12).getBytes(), 'binary');
    const put = await api<{ notAfter: string }>('PUT', '/push-certificate', {
      pkcs12: der.toString('base64'),
      password: 'secret',
    });
    expect(put.status).toBe(200);
    expect(put.body.notAfter).toBe(notAfterOf(renewed.certPem));
    const sealed = await server.haishin.store.getSetting('push_certificate.key');
    expect(sealed).not.toContain('PRIVATE KEY');

    await server.close();
    server = await startTestServer({
      clock,
      env: env(),
      tuning: { apnsRetry: { attempts: 2, baseMs: 10, capMs: 20 } },
    });
    const shown = await api<{ notAfter: string; source: string }>('GET', '/push-certificate');
    expect(shown.body).toMatchObject({ notAfter: notAfterOf(renewed.certPem), source: 'uploaded' });
    expect(fingerprint(server.haishin.push.certPem)).toBe(fingerprint(renewed.certPem));
    // (The restarted server listens on another port: a device enrolled there.)
    device = fleet.add(new SimDevice({ spec: { serialNumber: 'PCERT0000003' } }));
    await device.enroll(server.enrollUrl());
    await refreshAndWait(device);
    expect(fakes.apns.recent().at(-1)!.certificate).toBe(fingerprint(renewed.certPem));
  });

  it('expiry warnings at 30/14/7/1 days: in GET /status and in the audit log once per threshold', async () => {
    const notAfter = server.haishin.push.notAfter;
    clock.set(new Date(notAfter.getTime() - 20 * DAY));
    const status = await api<{ pushCertificate: { daysLeft: number; expiryWarningDays: number | null } }>(
      'GET',
      '/status',
    );
    expect(status.body.pushCertificate).toMatchObject({ daysLeft: 20, expiryWarningDays: 30 });
    expect(await server.haishin.pushCertificates.warnings(clock.now())).toBe(30);
    expect(await server.haishin.pushCertificates.warnings(clock.now())).toBeNull();
    clock.set(new Date(notAfter.getTime() - 6 * DAY));
    expect(await server.haishin.pushCertificates.warnings(clock.now())).toBe(7);
    const warnings = (
      await server.haishin.store.admin.listAudit({ objectType: 'push_certificate', limit: 20 })
    ).filter((a) => a.action === 'push_certificate.expiry_warning');
    expect(warnings.map((w) => JSON.parse(w.details!).threshold).sort()).toEqual([30, 7]);
    clock.set(new Date());
  });

  it('an expired push certificate is a confirmed push.certificate_invalid in the diagnosis', async () => {
    const { diagnose } = await import('../src/diagnosis/index.ts');
    const { gatherEvidence } = await import('../src/engine/evidence.ts');
    const row = (await server.haishin.store.devices.list({ limit: 1 }))[0]!;
    const job = {
      id: 'j',
      device_id: row.id,
      token_id: 'none',
      adam_id: '1',
      kind: 'install',
      status: 'push_sending',
      error: null,
      command_uuid: null,
      bundle_id: null,
    } as unknown as Parameters<typeof gatherEvidence>[1];
    const later = new Date(server.haishin.push.notAfter.getTime() + DAY);
    const evidence = await gatherEvidence(server.haishin.store, job, later, {
      offlineAfterMs: DAY,
      unenrolledAfterMs: 30 * DAY,
    });
    const cause = diagnose(evidence).find((c) => c.code === 'push.certificate_invalid');
    expect(cause?.confidence).toBe('confirmed');
    expect(cause?.evidence.map((e) => e.fact)).toContain('push.certificateNotAfter');
    // Before expiry, no such cause from the date alone.
    const before = await gatherEvidence(server.haishin.store, job, new Date(), {
      offlineAfterMs: DAY,
      unenrolledAfterMs: 30 * DAY,
    });
    expect(diagnose(before).some((c) => c.code === 'push.certificate_invalid')).toBe(false);
  });

  it('with force, a certificate of another topic is used, and new enrollment profiles carry its topic', async () => {
    const created = portal('create', 500);
    const put = await api<{ topic: string; topicChanged: boolean; previousTopic: string }>(
      'PUT',
      '/push-certificate',
      {
        certPem: created.certPem,
        keyPem: created.keyPem,
        force: true,
      },
    );
    expect(put.status).toBe(200);
    expect(put.body).toMatchObject({
      topic: created.topic,
      topicChanged: true,
      previousTopic: fakes.push.topic,
    });
    const fresh = fleet.add(new SimDevice({ spec: { serialNumber: 'PCERT0000002' } }));
    await fresh.enroll(server.enrollUrl());
    expect(fresh.topic).toBe(created.topic);
    const audit = await server.haishin.store.admin.listAudit({ objectType: 'push_certificate', limit: 20 });
    const forced = audit.find(
      (a) => a.action === 'push_certificate.replace' && a.object_id === created.topic,
    );
    expect(JSON.parse(forced!.details!)).toMatchObject({ forced: true, topicChanged: true });
  });

  it('another process that replaces the certificate is followed at the next upkeep', async () => {
    // A second holder of the same database (as a second serve on PostgreSQL would be).
    const seen: string[] = [];
    const other = await PushCertificates.open({
      store: server.haishin.store,
      box: new SecretBox('test-secret-key-0123456789'),
      apns: { setIdentity: (identity) => seen.push(identity.topic) },
      configured: server.haishin.push,
      now: new Date(),
    });
    const renewed = portal('renew', 600);
    await other.replace(
      { certPem: renewed.certPem, keyPem: renewed.keyPem },
      { force: true, now: new Date() },
    );
    expect(fingerprint(server.haishin.push.certPem)).not.toBe(fingerprint(renewed.certPem));
    expect(await server.haishin.pushCertificates.refresh(new Date())).toBe(true);
    expect(fingerprint(server.haishin.push.certPem)).toBe(fingerprint(renewed.certPem));
    expect(await server.haishin.pushCertificates.refresh(new Date())).toBe(false);
  });
});

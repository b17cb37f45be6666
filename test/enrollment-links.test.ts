// Enrollment links (issue 17 item 4, decision 0022) through the REST API and GET /mdm/enroll.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../src/core/clock.ts';
import { hashEnrollmentSecret } from '../src/store/enrollment-link-repo.ts';
import { SimDevice } from '../src/sim/device/device.ts';
import { startTestServer } from './support/server.ts';
import type { TestServer } from './support/server.ts';

const ADMIN = 'links-admin-token-0123456789';
const clock = new ManualClock(new Date());
let server: TestServer;

beforeAll(async () => {
  // The product's default: the bare group form is refused.
  server = await startTestServer({
    clock,
    env: { HAISHIN_ADMIN_TOKEN: ADMIN, HAISHIN_ENROLL_OPEN_GROUPS: 'false' },
  });
});
afterAll(async () => {
  await server?.close();
});

async function api<T = Record<string, unknown>>(method: string, path: string, body?: unknown) {
  const res = await fetch(`${server.baseUrl}/api/v1${path}`, {
    method,
    headers: {
      authorization: `Bearer ${ADMIN}`,
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  return { status: res.status, body: (await res.json()) as T };
}

interface Created {
  id: string;
  groupId: string;
  url: string;
  token: string;
  state: string;
  useCount: number;
  maxUses: number | null;
  expiresAt: string | null;
}

const enroll = async (url: string, lang = 'en') => {
  const res = await fetch(url, { headers: { 'accept-language': lang } });
  return { status: res.status, text: await res.text() };
};

describe('enrollment links', () => {
  it('the bare group form answers 403 with one line in ja and en', async () => {
    const res = await enroll(`${server.baseUrl}/mdm/enroll?group=${server.rootGroupId}`);
    expect(res.status).toBe(403);
    const body = JSON.parse(res.text) as {
      error: { code: string; message: string; messages: { ja: string } };
    };
    expect(body.error.code).toBe('enroll.link_required');
    expect(body.error.message).toMatch(/enrollment link/);
    expect(body.error.messages.ja).toMatch(/登録用リンク/);
    const ja = JSON.parse(
      (await enroll(`${server.baseUrl}/mdm/enroll?group=${server.rootGroupId}`, 'ja')).text,
    ) as {
      error: { message: string };
    };
    expect(ja.error.message).toMatch(/登録用リンク/);
    expect((await enroll(`${server.baseUrl}/mdm/enroll`)).status).toBe(403);
  });

  it('a valid link enrolls a device; the secret is stored only hashed and shown only at creation', async () => {
    const created = await api<Created>('POST', `/groups/${server.rootGroupId}/enrollment-links`, {
      label: 'class 1-1',
    });
    expect(created.status).toBe(201);
    expect(created.body.token).toMatch(/^hse_[A-Za-z0-9_-]{43}$/);
    expect(created.body.url).toBe(
      `${server.baseUrl}/mdm/enroll?group=${server.rootGroupId}&token=${created.body.token}`,
    );
    const device = new SimDevice();
    await device.enroll(created.body.url);
    const row = await server.haishin.store.enrollmentLinks.get(created.body.id);
    expect(row?.token_hash).toBe(hashEnrollmentSecret(created.body.token));
    expect(JSON.stringify(row)).not.toContain(created.body.token);
    const shown = await api<Record<string, unknown>>('GET', `/enrollment-links/${created.body.id}`);
    expect(shown.body).toMatchObject({ state: 'active', useCount: 1, label: 'class 1-1' });
    expect(shown.body).not.toHaveProperty('token');
    expect(shown.body).not.toHaveProperty('url');
    const listed = await api<{ items: { id: string }[] }>(
      'GET',
      `/groups/${server.rootGroupId}/enrollment-links`,
    );
    expect(listed.body.items.map((l) => l.id)).toContain(created.body.id);
    const devices = await api<{ items: { udid: string; groupId: string }[] }>('GET', '/devices');
    expect(devices.body.items.find((d) => d.udid === device.udid)?.groupId).toBe(server.rootGroupId);
    // The token alone works too; pasted next to another group's id it is not accepted.
    expect((await enroll(`${server.baseUrl}/mdm/enroll?token=${created.body.token}`)).status).toBe(200);
    const other = await api<{ id: string }>('POST', '/groups', {
      name: 'other',
      parentId: server.rootGroupId,
    });
    const wrong = await enroll(
      `${server.baseUrl}/mdm/enroll?group=${other.body.id}&token=${created.body.token}`,
    );
    expect(wrong.status).toBe(403);
    expect(wrong.text).toContain('enroll.link_unknown');
    expect((await enroll(`${server.baseUrl}/mdm/enroll?token=hse_nope`)).text).toContain(
      'enroll.link_unknown',
    );
  });

  it('a revoked link is refused (403, ja/en), and the revocation is audited', async () => {
    const created = await api<Created>('POST', `/groups/${server.rootGroupId}/enrollment-links`, {});
    const revoked = await api<{ state: string; revokedAt: string }>(
      'POST',
      `/enrollment-links/${created.body.id}/revoke`,
    );
    expect(revoked.status).toBe(200);
    expect(revoked.body.state).toBe('revoked');
    const res = await enroll(created.body.url);
    expect(res.status).toBe(403);
    expect(JSON.parse(res.text)).toMatchObject({ error: { code: 'enroll.link_revoked' } });
    expect(JSON.parse((await enroll(created.body.url, 'ja')).text).error.message).toMatch(/無効/);
    await expect(new SimDevice().enroll(created.body.url)).rejects.toThrow(/HTTP 403/);
    const audit = await server.haishin.store.admin.listAudit({
      objectType: 'enrollment_link',
      objectId: created.body.id,
      limit: 10,
    });
    expect(audit.map((a) => a.action).sort()).toEqual(['enrollment_link.create', 'enrollment_link.revoke']);
    expect(audit.map((a) => a.details ?? '').join('')).not.toContain(created.body.token);
  });

  it('an expired link is refused; expiresIn and expiresAt are honoured', async () => {
    const created = await api<Created>('POST', `/groups/${server.rootGroupId}/enrollment-links`, {
      expiresIn: '1h',
    });
    expect(new Date(created.body.expiresAt!).getTime()).toBe(clock.now().getTime() + 3_600_000);
    expect((await enroll(created.body.url)).status).toBe(200);
    clock.advance(3_600_000);
    const res = await enroll(created.body.url);
    expect(res.status).toBe(403);
    expect(JSON.parse(res.text)).toMatchObject({ error: { code: 'enroll.link_expired' } });
    expect((await api<{ state: string }>('GET', `/enrollment-links/${created.body.id}`)).body.state).toBe(
      'expired',
    );
    const past = await api('POST', `/groups/${server.rootGroupId}/enrollment-links`, {
      expiresAt: new Date(clock.now().getTime() - 1000).toISOString(),
    });
    expect(past.status).toBe(400);
  });

  it('a link with a use count enrolls that many devices, then answers 403', async () => {
    const created = await api<Created>('POST', `/groups/${server.rootGroupId}/enrollment-links`, {
      maxUses: 2,
    });
    const results = await Promise.all([1, 2, 3, 4].map(() => enroll(created.body.url)));
    expect(results.map((r) => r.status).sort()).toEqual([200, 200, 403, 403]);
    expect(results.find((r) => r.status === 403)!.text).toContain('enroll.link_used_up');
    expect(
      (await api<{ state: string; useCount: number }>('GET', `/enrollment-links/${created.body.id}`)).body,
    ).toMatchObject({
      state: 'used_up',
      useCount: 2,
    });
  });

  it('links of an unknown group, and an unknown link, are 404', async () => {
    expect((await api('POST', '/groups/nope/enrollment-links', {})).status).toBe(404);
    expect((await api('POST', '/enrollment-links/nope/revoke')).status).toBe(404);
  });
});

// Issue 18, item 4: every change made through the API leaves an audit event. The mutating routes
// are read from the OpenAPI document, so a new route that is neither exercised here nor declared
// read-only fails the first test; each one is then called for real and must add its event.
import { generateDemoPushIdentity } from '../src/apple/apns/pushcert.ts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SimDevice } from '../src/sim/device/device.ts';
import { FakeVppService } from '../src/sim/vpp/server.ts';
import { World } from './support/world.ts';
import type { CatalogApp } from './support/world.ts';

const APP: CatalogApp = {
  adamId: '7100000001',
  name: '監査テストアプリ',
  bundleId: 'jp.example.audit',
  sizeBytes: 5_000_000,
  licences: 50,
};

/** POSTs that change nothing: they answer a question. */
const READ_ONLY = new Set(['POST /distributions/preflight', 'POST /diagnose/error']);

let world: World;
let school: { group: string; token: { id: string; sToken: string }; devices: SimDevice[] };
const deviceIds: string[] = [];
let distributionId = '';
let jobId = '';

type Call = () => Promise<{ status: number }>;
interface Case {
  /** The audit action the call must add. */
  action: string;
  call: Call;
}

/** In the order they run: later calls may depend on what earlier ones made. */
function cases(): Map<string, Case> {
  const api = (method: string, path: string, body?: unknown) => world.api(method, path, body);
  const ids: Record<string, string> = {};
  const c = new Map<string, Case>();
  const add = (route: string, action: string, call: Call) => c.set(route, { action, call });

  add('POST /groups', 'group.create', async () => {
    const r = await world.api<{ id: string }>('POST', '/groups', {
      name: '監査の子',
      parentId: school.group,
    });
    ids.child = r.body.id;
    return r;
  });
  add('PATCH /groups/{id}', 'group.update', () =>
    api('PATCH', `/groups/${ids.child}`, { name: '監査の子 (改)' }),
  );
  add('PUT /groups/{id}/auto-distribution', 'group.auto_distribution', () =>
    api('PUT', `/groups/${ids.child}/auto-distribution`, { apps: [] }),
  );
  add('PUT /groups/{id}/keep-apps-updated', 'group.keep_apps_updated', () =>
    api('PUT', `/groups/${ids.child}/keep-apps-updated`, { enabled: true }),
  );
  add('POST /groups/{id}/enrollment-links', 'enrollment_link.create', async () => {
    const r = await world.api<{ id: string }>('POST', `/groups/${ids.child}/enrollment-links`, {
      label: '監査',
    });
    ids.link = r.body.id;
    return r;
  });
  add('POST /enrollment-links/{id}/revoke', 'enrollment_link.revoke', () =>
    api('POST', `/enrollment-links/${ids.link}/revoke`),
  );
  add('POST /vpp-tokens/{id}/shares', 'token.share', () =>
    api('POST', `/vpp-tokens/${school.token.id}/shares`, { groupId: ids.child }),
  );
  add('DELETE /vpp-tokens/{id}/shares/{groupId}', 'token.unshare', () =>
    api('DELETE', `/vpp-tokens/${school.token.id}/shares/${ids.child}`),
  );
  add('POST /vpp-tokens/{id}/sync', 'token.sync', () => api('POST', `/vpp-tokens/${school.token.id}/sync`));
  add('POST /vpp-tokens', 'token.register', async () => {
    const second = await world.token(school.group, [APP], 'second');
    ids.second = second.id;
    ids.secondToken = second.sToken;
    return { status: 201 };
  });
  add('PUT /vpp-tokens/{id}', 'token.renew', () => {
    // Apple's portal gives a renewed token of the same location, expiring later.
    const renewed = FakeVppService.tokenFile(
      'world-second-renewed',
      '教育委員会',
      new Date(Date.now() + 400 * 86_400_000),
    );
    world.vpp.addToken({
      sToken: renewed,
      orgName: '教育委員会',
      locationName: 'second',
      sameLocationAs: ids.secondToken,
    });
    return api('PUT', `/vpp-tokens/${ids.second}`, { sToken: renewed });
  });
  add('POST /vpp-tokens/{id}/takeover', 'token.takeover', () =>
    api('POST', `/vpp-tokens/${ids.second}/takeover`),
  );
  add('PUT /groups/{id}/auto-assign-token', 'group.auto_assign', () =>
    api('PUT', `/groups/${school.group}/auto-assign-token`, { tokenId: school.token.id }),
  );
  add('DELETE /vpp-tokens/{id}', 'token.delete', () => api('DELETE', `/vpp-tokens/${ids.second}`));
  add('POST /licenses/assign', 'license.assign', () =>
    api('POST', '/licenses/assign', {
      tokenId: school.token.id,
      adamId: APP.adamId,
      serialNumbers: [school.devices[1]!.serialNumber],
    }),
  );
  add('POST /licenses/reclaim', 'license.reclaim', () =>
    api('POST', '/licenses/reclaim', {
      tokenId: school.token.id,
      adamId: APP.adamId,
      serialNumbers: [school.devices[1]!.serialNumber],
    }),
  );
  add('POST /distributions', 'distribution.create', async () => {
    const r = await world.api<{ id: string }>('POST', '/distributions', {
      kind: 'install',
      tokenId: school.token.id,
      adamIds: [APP.adamId],
      targets: { deviceIds: [deviceIds[0]] },
      licenseMode: 'auto',
    });
    distributionId = r.body.id;
    return r;
  });
  add('POST /distributions/{id}/cancel', 'distribution.cancel', () =>
    api('POST', `/distributions/${distributionId}/cancel`),
  );
  add('POST /distributions/{id}/retry', 'distribution.retry', () =>
    api('POST', `/distributions/${distributionId}/retry`),
  );
  add('POST /jobs/{id}/cancel', 'job.cancel', async () => {
    const jobs = await world.api<{ items: { id: string }[] }>(
      'GET',
      `/jobs?distributionId=${distributionId}`,
    );
    jobId = jobs.body.items[0]!.id;
    return world.api('POST', `/jobs/${jobId}/cancel`);
  });
  add('POST /jobs/{id}/retry', 'job.retry', () => api('POST', `/jobs/${jobId}/retry`));
  add('POST /jobs/{id}/remediate', 'job.remediate', () =>
    api('POST', `/jobs/${jobId}/remediate`, { action: 'refresh_device_info' }),
  );
  add('POST /jobs/cancel-pending', 'jobs.cancel_pending', () =>
    api('POST', '/jobs/cancel-pending', { deviceId: deviceIds[0] }),
  );
  add('POST /apps/check', 'app.check', () => api('POST', '/apps/check', {}));
  add('POST /apps/{adamId}/update', 'app.update', () =>
    api('POST', `/apps/${APP.adamId}/update`, { groupIds: [school.group] }),
  );
  add('PATCH /devices/{id}', 'device.update', () =>
    api('PATCH', `/devices/${deviceIds[0]}`, { deviceNumber: 4242 }),
  );
  add('POST /devices/{id}/refresh', 'device.refresh', () => api('POST', `/devices/${deviceIds[0]}/refresh`));
  add('POST /devices/{id}/uninstall', 'device.uninstall', async () => {
    // The cancels above gave back the licence the distribution took (it never reached the iPad):
    // the app to remove is found through the device's licence, so it gets one by hand.
    await api('POST', '/licenses/assign', {
      tokenId: school.token.id,
      adamId: APP.adamId,
      serialNumbers: [school.devices[0]!.serialNumber],
    });
    return api('POST', `/devices/${deviceIds[0]}/uninstall`, { adamId: APP.adamId });
  });
  add('POST /devices/{id}/deactivate', 'device.deactivate', () =>
    api('POST', `/devices/${deviceIds[1]}/deactivate`),
  );
  add('POST /devices/{id}/wipe', 'device.wipe', () => api('POST', `/devices/${deviceIds[2]}/wipe`));
  add('PUT /push-certificate', 'push_certificate.replace', () => {
    const renewed = generateDemoPushIdentity(new Date(), { topic: world.fakes.push.topic, validDays: 400 });
    world.fakes.apns.trust(renewed.certPem);
    return api('PUT', '/push-certificate', { certPem: renewed.certPem, keyPem: renewed.keyPem });
  });
  add('POST /admins', 'admin.create', async () => {
    const r = await world.api<{ id: string }>('POST', '/admins', {
      name: '監査の学校管理者',
      role: 'operator',
      scopeGroupId: school.group,
    });
    ids.admin = r.body.id;
    return r;
  });
  add('PATCH /admins/{id}', 'admin.update', () => api('PATCH', `/admins/${ids.admin}`, { role: 'viewer' }));
  add('POST /admins/{id}/tokens', 'admin_token.create', async () => {
    const r = await world.api<{ id: string }>('POST', `/admins/${ids.admin}/tokens`, { name: 'ノート PC' });
    ids.adminToken = r.body.id;
    return r;
  });
  add('POST /admins/{id}/tokens/{tokenId}/revoke', 'admin_token.revoke', () =>
    api('POST', `/admins/${ids.admin}/tokens/${ids.adminToken}/revoke`),
  );
  add('DELETE /groups/{id}', 'group.delete', async () => {
    const empty = await world.group('消えるグループ', school.group);
    return api('DELETE', `/groups/${empty}`);
  });
  return c;
}

async function auditCount(action: string): Promise<number> {
  const r = await world.api<{ items: unknown[] }>('GET', `/audit-events?kind=${action}&limit=1000`);
  expect(r.status).toBe(200);
  return r.body.items.length;
}

beforeAll(async () => {
  world = await World.start([APP]);
  school = await world.school('AUD', [APP], () => ({}), 3);
  const devices = await world.api<{ items: { id: string; serialNumber: string }[] }>(
    'GET',
    `/devices?groupId=${school.group}`,
  );
  for (const d of school.devices)
    deviceIds.push(devices.body.items.find((i) => i.serialNumber === d.serialNumber)!.id);
}, 120_000);
afterAll(async () => {
  await world?.close();
});

describe('every change through the API is audited', () => {
  it('each mutating route of the OpenAPI document is exercised here or declared read-only', async () => {
    const doc = (await (await fetch(`${world.server.baseUrl}/api/v1/openapi.json`)).json()) as {
      paths: Record<string, Record<string, unknown>>;
    };
    const mutating = Object.entries(doc.paths).flatMap(([path, methods]) =>
      Object.keys(methods)
        .map((m) => m.toUpperCase())
        .filter((m) => ['POST', 'PUT', 'PATCH', 'DELETE'].includes(m))
        .map((m) => `${m} ${path.replace(/^\/api\/v1/, '').replace(/:(\w+)/g, '{$1}')}`),
    );
    expect(mutating.length).toBeGreaterThan(20);
    const covered = new Set([...cases().keys()].map((k) => k.replace(/#.*$/, '')));
    expect(mutating.filter((r) => !covered.has(r) && !READ_ONLY.has(r))).toEqual([]);
    expect([...covered].filter((r) => !mutating.includes(r))).toEqual([]);
  });

  it('each one, called for real, answers 2xx and adds its event to the trail', async () => {
    const missing: string[] = [];
    for (const [route, { action, call }] of cases()) {
      const before = await auditCount(action);
      const { status } = await call();
      expect(status, route).toBeGreaterThanOrEqual(200);
      expect(status, route).toBeLessThan(300);
      if ((await auditCount(action)) <= before) missing.push(`${route} → ${action}`);
    }
    expect(missing).toEqual([]);
  }, 120_000);
});

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startFakes } from '../src/sim/fakes.ts';
import type { Fakes } from '../src/sim/fakes.ts';
import type { FakeApns } from '../src/sim/apns/server.ts';
import { SimDevice } from '../src/sim/device/device.ts';
import { SimFleet } from '../src/sim/fleet.ts';
import { startTestServer } from './support/server.ts';
import type { TestServer } from './support/server.ts';

const TOKEN = 'test-admin-token-push-0123456789';
const fleet = new SimFleet();
const dir = mkdtempSync(join(tmpdir(), 'haishin-push-'));
let fakes: Fakes;
let fakeApns: FakeApns;
let server: TestServer;

beforeAll(async () => {
  fakes = await startFakes({ dir, onPush: (token) => void fleet.wake(token) });
  fakeApns = fakes.apns;
  server = await startTestServer({
    env: { HAISHIN_ADMIN_TOKEN: TOKEN, ...fakes.env },
    tuning: { apnsRetry: { attempts: 2, baseMs: 10, capMs: 20 } },
  });
});
afterAll(async () => {
  await server?.close();
  await fakes?.close();
  rmSync(dir, { recursive: true, force: true });
});

const api = async <T>(method: string, path: string) => {
  const r = await fetch(`${server.baseUrl}/api/v1${path}`, {
    method,
    headers: { authorization: `Bearer ${TOKEN}` },
  });
  return { status: r.status, body: (await r.json()) as T };
};

async function deviceId(serial: string): Promise<string> {
  return (await api<{ items: { id: string }[] }>('GET', `/devices?serialNumber=${serial}`)).body.items[0]!.id;
}

describe('refresh through APNs', () => {
  it('queues the queries, pushes, and the woken iPad answers them: facts land on the device', async () => {
    const device = fleet.add(
      new SimDevice({
        spec: {
          serialNumber: 'PUSH00000001',
          sharedIpad: true,
          availableGb: 3.5,
          restrictions: { ratingApps: 300 },
          users: [{ shortName: 'student01', loggedIn: true }],
        },
      }),
    );
    await device.enroll(server.enrollUrl());
    await device.connect();
    const id = await deviceId(device.serialNumber);
    const refresh = await api<{ commands: { requestType: string }[]; push: string }>(
      'POST',
      `/devices/${id}/refresh`,
    );
    expect(refresh.status).toBe(202);
    expect(refresh.body.push).toBe('sent');
    expect(refresh.body.commands.map((c) => c.requestType)).toEqual([
      'DeviceInformation',
      'Restrictions',
      'InstalledApplicationList',
      'UserList',
    ]);
    const seen = fakeApns.recent().at(-1)!;
    expect(seen.path).toBe(`/3/device/${device.pushToken.toString('hex')}`);
    expect(JSON.parse(seen.body)).toEqual({ mdm: device.pushMagic });
    await new Promise((r) => setTimeout(r, 50));
    await fleet.idle();
    const detail = await api<{
      facts: { value: Record<string, unknown> };
      restrictions: { value: { restrictedValue: { ratingApps: { value: number } } } };
      sharedUsers: { value: { UserName: string; IsLoggedIn: boolean }[] };
    }>('GET', `/devices/${id}`);
    expect(detail.body.facts.value.AvailableDeviceCapacity).toBe(3.5);
    expect(detail.body.restrictions.value.restrictedValue.ratingApps.value).toBe(300);
    expect(detail.body.sharedUsers.value).toEqual([
      expect.objectContaining({ UserName: 'student01', IsLoggedIn: true }),
    ]);
  });

  it('APNs 410 marks the device as gone from management and keeps the outcome as evidence', async () => {
    const device = fleet.add(new SimDevice({ spec: { serialNumber: 'PUSH00000002' } }));
    await device.enroll(server.enrollUrl());
    const id = await deviceId(device.serialNumber);
    fakeApns.failToken(device.pushToken.toString('hex'), {
      status: 410,
      reason: 'Unregistered',
      timestamp: Date.now() + 1000,
    });
    const refresh = await api<{ push: string }>('POST', `/devices/${id}/refresh`);
    expect(refresh.body.push).toBe('unregistered');
    const row = await server.haishin.store.getDeviceByUdid(device.udid);
    expect(row?.status).toBe('unenrolled');
    expect(JSON.parse(row!.last_push_result!)).toMatchObject({ kind: 'unregistered', status: 410 });
  });
});

// Device identity renewal as it ships (issue 17, decision 0023): `haishin serve` configured only by
// environment variables with identities valid for 45 seconds, renewed 30 seconds before expiry by a
// pass every 3 seconds, against `haishin fakes` in another process; simulated iPads enroll from an
// enrollment link and wake on the fakes' pushes. Their identities expire during the test: the ones
// that are on are renewed (several times) and keep checking in; one that is off through its expiry
// is refused when it comes back, counted in GET /api/v1/status and diagnosed device.identity_expired.
// On SQLite and on a throwaway PostgreSQL.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SimDevice } from '../../src/sim/device/device.ts';
import { mapLimit, relayPushes, SimFleet } from '../../src/sim/fleet.ts';
import { SCENARIO_APPS } from '../../src/sim/scenario.ts';
import { postgresAvailable, postgresSkipReason, startPostgres } from '../support/pg.ts';
import type { ThrowawayPostgres } from '../support/pg.ts';
import { adminApi, eventually, runHaishin, startFakesProcess, startServe, testServeEnv } from './support.ts';
import type { FakesInfo, HaishinProcess } from './support.ts';

if (!postgresAvailable) console.warn(`[identity-renewal.e2e.test] ${postgresSkipReason}`);

const ADMIN = 'e2e-admin-token-renewal-0123456789';
const ONLINE = 4;
const VALIDITY_S = 45;

interface Status {
  deviceIdentities: { expired: number; expiring: number; renewing: number };
  deviceCa: { notAfter: string; verifying: number };
}

for (const backend of ['sqlite', 'postgres'] as const) {
  describe.skipIf(backend === 'postgres' && !postgresAvailable)(
    `identity renewal through haishin serve on ${backend}`,
    () => {
      const fleet = new SimFleet();
      const dir = mkdtempSync(join(tmpdir(), `haishin-e2e-renewal-${backend}-`));
      let fakes: { proc: HaishinProcess; info: FakesInfo };
      let relay: { close(): void };
      let postgres: ThrowawayPostgres | null = null;
      let serve: { proc: HaishinProcess; enrollUrl: string } | null = null;
      let baseUrl: string;
      let online: SimDevice[] = [];
      let offline: SimDevice;
      const api = () => adminApi(baseUrl, ADMIN);

      beforeAll(async () => {
        fakes = await startFakesProcess(join(dir, 'apple'));
        relay = await relayPushes(fakes.info.control, fleet);
        if (backend === 'postgres') postgres = await startPostgres();
        const served = await testServeEnv({ fakesEnv: fakes.info.env, dir, admin: ADMIN, db: postgres?.url });
        baseUrl = served.baseUrl;
        serve = await startServe({
          ...served.env,
          HAISHIN_DEVICE_IDENTITY_VALIDITY: `${VALIDITY_S}s`,
          HAISHIN_IDENTITY_RENEW_BEFORE: '30s',
          HAISHIN_IDENTITY_RENEW_EVERY: '3s',
        });
        online = Array.from({ length: ONLINE }, () => fleet.add(new SimDevice()));
        // Enrolled like the others, then switched off: it sleeps through its renewal window.
        offline = fleet.add(new SimDevice());
        await mapLimit([...online, offline], 4, (d) => d.enroll(serve!.enrollUrl));
        offline.online = false;
      }, 180_000);

      afterAll(async () => {
        relay?.close();
        await serve?.proc.kill('SIGKILL');
        await fleet.idle();
        await fakes?.proc.kill();
        postgres?.stop();
        rmSync(dir, { recursive: true, force: true });
      });

      it(
        'iPads that are on get renewed identities and keep checking in past the first ones’ expiry',
        { timeout: 180_000 },
        async () => {
          const firstExpiry = Math.max(...online.map((d) => d.identityNotAfter!.getTime()));
          expect(firstExpiry - Date.now()).toBeLessThanOrEqual(VALIDITY_S * 1000);
          // The renewal pass queues InstallProfile and pushes; each iPad wakes and replaces its profile.
          await eventually(
            'every iPad that is on renewed its identity',
            async () => (online.every((d) => d.identityRenewals >= 1) ? true : undefined),
            60_000,
          );
          for (const d of online) expect(d.identityNotAfter!.getTime()).toBeGreaterThan(firstExpiry);
          // Past the expiry of every identity issued at enrollment.
          await eventually(
            'the first identities expired',
            async () => (Date.now() > firstExpiry + 2_000 ? true : undefined),
            60_000,
          );
          for (const d of online) {
            expect(await d.tokenUpdate()).toBe(200);
            const session = await d.connect();
            expect(session.map((s) => s.status).every((s) => s === 200)).toBe(true);
          }
          expect(fleet.sessionErrors, fleet.lastSessionError ?? '').toBe(0);
          const devices = await api()<{ items: { lastSeenAt: string }[] }>('GET', '/devices?limit=100');
          expect(devices.status).toBe(200);
          const seenAfterExpiry = devices.body.items.filter((d) => Date.parse(d.lastSeenAt) > firstExpiry);
          expect(seenAfterExpiry).toHaveLength(ONLINE);
        },
      );

      it(
        'the iPad that was off through its expiry is refused, counted and diagnosed device.identity_expired',
        { timeout: 120_000 },
        async () => {
          const expiry = offline.identityNotAfter!.getTime();
          await eventually(
            'its identity expired',
            async () => (Date.now() > expiry + 1_000 ? true : undefined),
            60_000,
          );
          offline.online = true;
          expect(offline.identityRenewals).toBe(0);
          expect(await offline.tokenUpdate()).toBe(400);
          expect((await offline.connect())[0]?.status).toBe(400);

          const status = await api()<Status>('GET', '/status');
          expect(status.status).toBe(200);
          expect(status.body.deviceIdentities.expired).toBe(1);
          expect(status.body.deviceCa.verifying).toBe(1);
          // Which one: the list the console's banner links to.
          const expired = await api()<{ items: { serialNumber: string; identityNotAfter: string }[] }>(
            'GET',
            '/devices?identityExpired=true',
          );
          expect(expired.body.items.map((d) => d.serialNumber)).toEqual([offline.serialNumber]);
          expect(Date.parse(expired.body.items[0]!.identityNotAfter)).toBe(expiry);
          // The same from the command line.
          const cli = await runHaishin(['devices', 'ls', '--identity-expired', '--lang', 'en'], {
            HAISHIN_URL: baseUrl,
            HAISHIN_TOKEN: ADMIN,
          });
          expect(cli.code).toBe(0);
          expect(cli.stdout.filter((l) => l.includes(offline.serialNumber))).toHaveLength(1);
          expect(online.some((d) => cli.stdout.join('\n').includes(d.serialNumber))).toBe(false);

          // What would happen if an app were distributed to it: the troubleshooter's answer.
          const root = (
            await api()<{ items: { id: string; parentId: string | null }[] }>('GET', '/groups')
          ).body.items.find((g) => g.parentId === null)!;
          const token = await api()<{ id: string }>('POST', '/vpp-tokens', {
            groupId: root.id,
            sToken: readFileSync(fakes.info.tokenFile, 'utf8'),
          });
          expect(token.status).toBe(201);
          const found = await api()<{ items: { id: string }[] }>(
            'GET',
            `/devices?serialNumber=${encodeURIComponent(offline.serialNumber)}`,
          );
          const deviceId = found.body.items[0]!.id;
          const preflight = await api()<{ devices: { deviceId: string; causes: { code: string }[] }[] }>(
            'POST',
            '/distributions/preflight',
            {
              kind: 'install',
              tokenId: token.body.id,
              adamIds: [SCENARIO_APPS[0]!.adamId],
              targets: { deviceIds: [deviceId] },
              licenseMode: 'auto',
            },
          );
          expect(preflight.status).toBe(200);
          expect(preflight.body.devices[0]?.causes[0]?.code).toBe('device.identity_expired');
        },
      );
    },
  );
}

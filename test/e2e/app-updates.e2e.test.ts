// Issue 14, item 5 — app updates as the product ships them (decision 0018): `haishin fakes`,
// `haishin serve` and `haishin fleet` as processes. The developer publishes a new version (the
// fakes' control API), `haishin apps check` finds it, `haishin apps update` distributes it, the
// simulated iPads install it over the managed app and haishin verifies the version they report;
// then a root group that keeps its apps up to date gets the next version by itself.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../src/cli/net.ts';
import {
  adminApi,
  eventually,
  readEnvFile,
  runHaishin,
  startFakesProcess,
  startFleet,
  startServe,
} from './support.ts';
import type { FakesInfo, HaishinProcess } from './support.ts';

const DEVICES = 3;
const ADMIN = 'updates-admin-token-0123456789';
/** まなびノート, an app of the fakes' VPP token. */
const APP = '1450000001';

interface AppView {
  latestVersion: string | null;
  previousVersion: string | null;
  versions: { version: string | null; devices: number; outdated: boolean }[];
  outdatedDevices: number;
  updatableDevices: number;
}

describe('app updates through haishin serve, fakes and fleet', () => {
  const dir = mkdtempSync(join(tmpdir(), 'haishin-updates-'));
  const fakesDir = join(dir, 'fakes');
  let fakes: HaishinProcess | null = null;
  let info: FakesInfo;
  let serve: HaishinProcess | null = null;
  let fleet: HaishinProcess | null = null;
  let enrollUrl: string;
  let baseUrl: string;

  beforeAll(async () => {
    ({ proc: fakes, info } = await startFakesProcess(fakesDir));
    const port = await freePort();
    baseUrl = `http://127.0.0.1:${port}`;
    const started = await startServe({
      ...readEnvFile(join(fakesDir, 'fakes.env')),
      HAISHIN_DB: `sqlite:${join(dir, 'updates.db')}`,
      HAISHIN_DATA_DIR: join(dir, 'data'),
      HAISHIN_ADMIN_TOKEN: ADMIN,
      HAISHIN_LISTEN: `127.0.0.1:${port}`,
      HAISHIN_PUBLIC_URL: baseUrl,
    });
    serve = started.proc;
    enrollUrl = started.enrollUrl;
  }, 120_000);

  afterAll(async () => {
    await fleet?.kill();
    await serve?.kill();
    await fakes?.kill();
    rmSync(dir, { recursive: true, force: true });
  });

  it(
    'a new version is detected, distributed, installed and verified; keep-updated does it alone',
    { timeout: 300_000 },
    async () => {
      const api = adminApi(baseUrl, ADMIN);
      const cli = { HAISHIN_URL: baseUrl, HAISHIN_TOKEN: ADMIN, LANG: 'en_US.UTF-8' };
      fleet = await startFleet(['--fakes', fakesDir, '--enroll', enrollUrl, '--devices', String(DEVICES)]);
      const groupId = new URL(enrollUrl).searchParams.get('group')!;
      const added = await runHaishin(
        ['tokens', 'add', join(fakesDir, 'school.vpptoken'), '--group', groupId],
        cli,
      );
      expect(added.code, added.stderr.join('\n')).toBe(0);
      const tokenId = added.stdout.map((l) => /^ID\s+(\S+)$/.exec(l)?.[1]).find((id) => id !== undefined)!;
      expect((await runHaishin(['groups', 'auto-assign', groupId, '--token', tokenId], cli)).code).toBe(0);
      const installed = await runHaishin(
        ['distribute', APP, '--token', tokenId, '--group', groupId],
        cli,
        180_000,
      );
      expect(installed.code, installed.stdout.join('\n')).toBe(0);

      const app = async () => (await api<AppView>('GET', `/apps/${APP}`)).body;
      // Registering the token looked the apps up; the installs asked the iPads for their versions.
      expect(await app()).toMatchObject({ latestVersion: '1.0', outdatedDevices: 0 });
      expect((await app()).versions).toEqual([{ version: '1.0', devices: DEVICES, outdated: false }]);

      // The developer publishes 1.1: the look-up answers it and the simulated App Store has it.
      const published = await fetch(`${info.control}/apps/${APP}/version`, {
        method: 'POST',
        body: JSON.stringify({ version: '1.1' }),
      });
      expect(published.status).toBe(200);
      await fleet.waitForLine(new RegExp(`^the App Store now has version 1\\.1 of ${APP}$`));

      const check = await runHaishin(['apps', 'check'], cli);
      expect(check.code, check.stderr.join('\n')).toBe(0);
      expect(check.stdout).toContain(`New version: ${APP} 1.0 → 1.1`);
      expect(await app()).toMatchObject({
        latestVersion: '1.1',
        previousVersion: '1.0',
        outdatedDevices: DEVICES,
        updatableDevices: DEVICES,
      });
      const listed = await runHaishin(['apps', 'updates'], cli);
      expect(listed.stdout.find((l) => l.startsWith(APP))).toMatch(
        new RegExp(`1\\.1\\s+1\\.0\\s+${DEVICES}\\s+${DEVICES}\\s+${DEVICES}`),
      );

      const update = await runHaishin(['apps', 'update', APP], cli);
      expect(update.code, update.stderr.join('\n')).toBe(0);
      expect(update.stdout[0]).toBe(`Distributing version 1.1 to ${DEVICES} devices.`);
      const distributionId = /^Distribution (\S+) /.exec(update.stdout[1] ?? '')?.[1];
      expect(distributionId, update.stdout.join('\n')).toBeDefined();
      const settled = async (id: string) =>
        eventually(`distribution ${id} settled`, async () => {
          const jobs = (
            await api<{
              items: {
                status: string;
                isUpdate: boolean;
                expectedVersion: string;
                installedVersion: string;
              }[];
            }>('GET', `/jobs?distributionId=${id}&limit=100`)
          ).body.items;
          return jobs.length > 0 &&
            jobs.every(
              (j) => j.status === 'success' || j.status.endsWith('timeout') || j.status.endsWith('error'),
            )
            ? jobs
            : undefined;
        });
      for (const job of await settled(distributionId!))
        expect(job).toMatchObject({
          status: 'success',
          isUpdate: true,
          expectedVersion: '1.1',
          installedVersion: '1.1',
        });
      expect(await app()).toMatchObject({ outdatedDevices: 0 });
      expect((await app()).versions).toEqual([{ version: '1.1', devices: DEVICES, outdated: false }]);

      // The whole fleet keeps its apps up to date: the next version goes out without an update command.
      const keep = await runHaishin(['groups', 'keep-updated', groupId, 'on'], cli);
      expect(keep.code, keep.stderr.join('\n')).toBe(0);
      expect(keep.stdout[0]).toBe('"Keep apps up to date" set.');
      await fetch(`${info.control}/apps/${APP}/version`, {
        method: 'POST',
        body: JSON.stringify({ version: '1.2' }),
      });
      await fleet.waitForLine(new RegExp(`^the App Store now has version 1\\.2 of ${APP}$`));
      const auto = await runHaishin(['apps', 'check'], cli);
      expect(auto.stdout).toContain(`New version: ${APP} 1.1 → 1.2`);
      const line = auto.stdout.find((l) =>
        l.startsWith(`Automatic update: ${APP} 1.2 to ${DEVICES} devices`),
      );
      expect(line, auto.stdout.join('\n')).toBeDefined();
      const autoId = /distributions (\S+)\)$/.exec(line!)?.[1];
      for (const job of await settled(autoId!))
        expect(job).toMatchObject({ status: 'success', installedVersion: '1.2' });

      // The OpenAPI document the server serves describes the routes.
      const doc = (await (await fetch(`${baseUrl}/api/v1/openapi.json`)).json()) as {
        paths: Record<string, unknown>;
      };
      for (const path of [
        '/api/v1/apps',
        '/api/v1/apps/check',
        '/api/v1/apps/{adamId}/update',
        '/api/v1/groups/{id}/keep-apps-updated',
      ])
        expect(Object.keys(doc.paths)).toContain(path);
    },
  );
});

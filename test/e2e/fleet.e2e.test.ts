// README "Try it locally without Apple", step by step, with the commands the README shows (only
// the folders, the port and the token are the test's): `haishin fakes`, `haishin serve` with the
// variables it wrote, `haishin fleet` with 5 simulated iPads, `haishin tokens add`, `haishin groups auto-assign`, the auto-assign
// token through the REST API, `haishin distribute` — and every job ends `success`.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../src/cli/net.ts';
import { adminApi, readEnvFile, runHaishin, startFakesProcess, startFleet, startServe } from './support.ts';
import type { HaishinProcess } from './support.ts';

const DEVICES = 5;
const ADMIN = 'local-admin-token-0123456789';
/** まなびノート, an app of the fakes' VPP token. */
const APP = '1450000001';

describe('README: try it locally without Apple (haishin fakes, serve, fleet)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'haishin-fleet-'));
  const fakesDir = join(dir, 'fakes');
  let fakes: HaishinProcess | null = null;
  let serve: HaishinProcess | null = null;
  let fleet: HaishinProcess | null = null;
  let enrollUrl: string;
  let baseUrl: string;

  beforeAll(async () => {
    // 1. node bin/haishin.js fakes --dir ./data/fakes
    fakes = (await startFakesProcess(fakesDir)).proc;
    // 2. set -a; . ./data/fakes/fakes.env; set +a
    //    export HAISHIN_DB=sqlite:./data/local.db HAISHIN_DATA_DIR=./data/local HAISHIN_ADMIN_TOKEN=…
    //    node bin/haishin.js serve
    const port = await freePort();
    baseUrl = `http://127.0.0.1:${port}`;
    const started = await startServe({
      ...readEnvFile(join(fakesDir, 'fakes.env')),
      HAISHIN_DB: `sqlite:${join(dir, 'local.db')}`,
      HAISHIN_DATA_DIR: join(dir, 'local'),
      HAISHIN_ADMIN_TOKEN: ADMIN,
      // The README's server listens on the default 127.0.0.1:8080; the test takes a free port.
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
    `${DEVICES} simulated iPads enroll, and a distribution to the root group succeeds on every one`,
    { timeout: 240_000 },
    async () => {
      // 3. node bin/haishin.js fleet --fakes ./data/fakes --enroll '<the printed link>' --devices 5
      fleet = await startFleet(['--fakes', fakesDir, '--enroll', enrollUrl, '--devices', String(DEVICES)]);
      expect(fleet.stdout.filter((l) => l.startsWith('enrolled '))).toHaveLength(DEVICES);
      expect(fleet.stdout).toContain(
        `fleet ready: ${DEVICES} of ${DEVICES} iPads enrolled, waking on the pushes of the fakes at ${readControl()} (Ctrl-C to stop)`,
      );

      // 4. export HAISHIN_URL=http://127.0.0.1:8080 HAISHIN_TOKEN=…
      const cli = { HAISHIN_URL: baseUrl, HAISHIN_TOKEN: ADMIN };
      const groupId = new URL(enrollUrl).searchParams.get('group')!;
      //    node bin/haishin.js tokens add ./data/fakes/school.vpptoken --group <groupId>
      const added = await runHaishin(
        ['tokens', 'add', join(fakesDir, 'school.vpptoken'), '--group', groupId],
        cli,
      );
      expect(added).toMatchObject({ code: 0, stderr: [] });
      const tokenId = added.stdout.map((l) => /^ID\s+(\S+)$/.exec(l)?.[1]).find((id) => id !== undefined)!;
      expect(tokenId).toBeDefined();
      //    node bin/haishin.js groups auto-assign <groupId> --token <tokenId>
      const autoAssign = await runHaishin(['groups', 'auto-assign', groupId, '--token', tokenId], cli);
      expect(autoAssign).toMatchObject({ code: 0, stderr: [] });
      expect(autoAssign.stdout[0]).toBe('Auto-assign token set.');
      //    node bin/haishin.js distribute 1450000001 --token <tokenId> --group <groupId>
      const distributed = await runHaishin(
        ['distribute', APP, '--token', tokenId, '--group', groupId],
        cli,
        180_000,
      );
      expect(distributed.stderr).toEqual([]);
      expect(distributed.code).toBe(0);
      const id = new RegExp(`^Distribution (\\S+) created \\(${DEVICES} jobs\\)\\.$`).exec(
        distributed.stdout[0] ?? '',
      )?.[1];
      expect(id, distributed.stdout.join('\n')).toBeDefined();

      const api = adminApi(baseUrl, ADMIN);
      const jobs = await api<{ items: { status: string }[] }>('GET', `/jobs?distributionId=${id}&limit=100`);
      expect(jobs.body.items.map((j) => j.status)).toEqual(Array<string>(DEVICES).fill('success'));
    },
  );

  function readControl(): string {
    return (JSON.parse(readFileSync(join(fakesDir, 'fakes.json'), 'utf8')) as { control: string }).control;
  }
});

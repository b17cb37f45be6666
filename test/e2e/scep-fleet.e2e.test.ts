// SCEP end to end as shipped (issue 17 item 2, decision 0024): `haishin fakes`, `haishin serve` with
// HAISHIN_DEVICE_IDENTITY=scep, and `haishin fleet` as separate processes. Each simulated iPad
// downloads its enrollment profile through an enrollment link, finds a com.apple.security.scep
// payload, makes its key and obtains its identity from /scep, enrolls with it; a distribution then
// installs an app on every one.
import Database from 'better-sqlite3';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../src/cli/net.ts';
import { adminApi, readEnvFile, runHaishin, startFakesProcess, startFleet, startServe } from './support.ts';
import type { HaishinProcess } from './support.ts';

const DEVICES = 3;
const ADMIN = 'scep-fleet-admin-token-0123456789';
/** まなびノート, an app of the fakes' VPP token. */
const APP = '1450000001';

describe('SCEP enrollment of a simulated fleet (haishin fakes, serve with HAISHIN_DEVICE_IDENTITY=scep, fleet)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'haishin-scep-fleet-'));
  const fakesDir = join(dir, 'fakes');
  const dbFile = join(dir, 'local.db');
  let fakes: HaishinProcess | null = null;
  let serve: HaishinProcess | null = null;
  let fleet: HaishinProcess | null = null;
  let enrollUrl: string;
  let baseUrl: string;

  beforeAll(async () => {
    fakes = (await startFakesProcess(fakesDir)).proc;
    const port = await freePort();
    baseUrl = `http://127.0.0.1:${port}`;
    const started = await startServe({
      ...readEnvFile(join(fakesDir, 'fakes.env')),
      HAISHIN_DB: `sqlite:${dbFile}`,
      HAISHIN_DATA_DIR: join(dir, 'local'),
      HAISHIN_ADMIN_TOKEN: ADMIN,
      HAISHIN_LISTEN: `127.0.0.1:${port}`,
      HAISHIN_PUBLIC_URL: baseUrl,
      HAISHIN_LOG_LEVEL: 'warn',
      HAISHIN_DEVICE_IDENTITY: 'scep',
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
    `${DEVICES} iPads obtain their identities through SCEP, enroll, and an app installs on every one`,
    { timeout: 240_000 },
    async () => {
      // One enrollment link, several iPads: each download is a new profile with its own challenge.
      fleet = await startFleet(['--fakes', fakesDir, '--enroll', enrollUrl, '--devices', String(DEVICES)]);
      expect(fleet.stdout.filter((l) => l.startsWith('enrolled '))).toHaveLength(DEVICES);

      const api = adminApi(baseUrl, ADMIN);
      const devices = await api<{ items: { udid: string; status: string }[] }>('GET', '/devices?limit=100');
      expect(devices.body.items.map((d) => d.status)).toEqual(Array<string>(DEVICES).fill('enrolled'));

      // Every iPad signs with a certificate haishin issued through SCEP: one used challenge each,
      // and no other identity was made (PKCS#12 identities have no challenge).
      const db = new Database(dbFile, { readonly: true, fileMustExist: true });
      try {
        const issued = db
          .prepare('select cert_fingerprint from scep_challenges where used_at is not null')
          .all() as { cert_fingerprint: string }[];
        const bound = db.prepare('select cert_fingerprint from devices').all() as {
          cert_fingerprint: string;
        }[];
        const identities = db.prepare('select count(*) as n from identities').get() as { n: number };
        expect(issued).toHaveLength(DEVICES);
        expect(bound.map((d) => d.cert_fingerprint).sort()).toEqual(
          issued.map((c) => c.cert_fingerprint).sort(),
        );
        expect(identities.n).toBe(DEVICES);
      } finally {
        db.close();
      }

      const cli = { HAISHIN_URL: baseUrl, HAISHIN_TOKEN: ADMIN };
      const groupId = new URL(enrollUrl).searchParams.get('group')!;
      const added = await runHaishin(
        ['tokens', 'add', join(fakesDir, 'school.vpptoken'), '--group', groupId],
        cli,
      );
      expect(added).toMatchObject({ code: 0, stderr: [] });
      const tokenId = added.stdout.map((l) => /^ID\s+(\S+)$/.exec(l)?.[1]).find((id) => id !== undefined)!;
      const autoAssign = await runHaishin(['groups', 'auto-assign', groupId, '--token', tokenId], cli);
      expect(autoAssign).toMatchObject({ code: 0, stderr: [] });
      const distributed = await runHaishin(
        ['distribute', APP, '--token', tokenId, '--group', groupId],
        cli,
        180_000,
      );
      expect(distributed.stderr).toEqual([]);
      expect(distributed.code).toBe(0);
      const id = /^Distribution (\S+) created/.exec(distributed.stdout[0] ?? '')?.[1];
      expect(id, distributed.stdout.join('\n')).toBeDefined();
      const jobs = await api<{ items: { status: string }[] }>('GET', `/jobs?distributionId=${id}&limit=100`);
      expect(jobs.body.items.map((j) => j.status)).toEqual(Array<string>(DEVICES).fill('success'));
    },
  );
});

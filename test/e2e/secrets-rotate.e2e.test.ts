// `haishin secrets rotate` as an administrator runs it (issue 18, item 7, decision 0027): serve
// stopped, the command run with serve's environment, serve started again with the new key. On
// SQLite with the data dir's generated key (replaced in place), on PostgreSQL with
// HAISHIN_SECRET_KEY / HAISHIN_NEW_SECRET_KEY (refused while a serve process holds a lease).
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SimDevice } from '../../src/sim/device/device.ts';
import { postgresAvailable, postgresSkipReason, startPostgres } from '../support/pg.ts';
import type { ThrowawayPostgres } from '../support/pg.ts';
import { adminApi, runHaishin, startFakesProcess, startServe, testServeEnv } from './support.ts';
import type { FakesInfo, HaishinProcess } from './support.ts';

const ADMIN = 'e2e-admin-token-secrets-rotate-0123456789';
const OLD_KEY = 'old-secret-key-for-the-pg-run-0123456789';
const NEW_KEY = 'new-secret-key-for-the-pg-run-9876543210';

if (!postgresAvailable) console.warn(`[secrets-rotate.e2e] ${postgresSkipReason}`);

describe.each([
  { name: 'sqlite', enabled: true },
  { name: 'postgres', enabled: postgresAvailable },
])('haishin secrets rotate on $name', ({ name, enabled }) => {
  const dir = mkdtempSync(join(tmpdir(), `haishin-e2e-secrets-${name}-`));
  let fakes: HaishinProcess | null = null;
  let info: FakesInfo;
  let serve: HaishinProcess | null = null;
  let pg: ThrowawayPostgres | null = null;

  beforeAll(async () => {
    if (!enabled) return;
    const started = await startFakesProcess(join(dir, 'apple'));
    fakes = started.proc;
    info = started.info;
    if (name === 'postgres') pg = await startPostgres();
  }, 120_000);
  afterAll(async () => {
    await serve?.kill();
    await fakes?.kill();
    pg?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it.skipIf(!enabled)(
    'every secret re-sealed; serve starts with the new key and refuses the old one in one line',
    { timeout: 240_000 },
    async () => {
      const served = await testServeEnv({ fakesEnv: info.env, dir, admin: ADMIN, db: pg?.url });
      const baseUrl = served.baseUrl;
      const dataDir = served.env.HAISHIN_DATA_DIR!;
      const env: Record<string, string> = { ...served.env, ...(pg ? { HAISHIN_SECRET_KEY: OLD_KEY } : {}) };
      let run = await startServe(env);
      serve = run.proc;
      const api = adminApi(baseUrl, ADMIN);
      const groupId = new URL(run.enrollUrl).searchParams.get('group')!;
      const sToken = readFileSync(info.tokenFile, 'utf8');
      const token = await api<{ id: string }>('POST', '/vpp-tokens', { groupId, sToken });
      expect(token.status).toBe(201);
      const ipad = new SimDevice();
      await ipad.enroll(run.enrollUrl);

      // Not while serve runs: SQLite's one-process lock, PostgreSQL's live lease.
      const busy = await runHaishin(['secrets', 'rotate'], { ...env, HAISHIN_NEW_SECRET_KEY: NEW_KEY });
      expect(busy.code).toBe(1);
      expect(busy.stderr).toHaveLength(1);
      expect(busy.stderr[0]).toMatch(
        pg ? /stop every serve process first/ : /one process per SQLite database/,
      );
      await serve.kill();
      serve = null;

      const oldKey = pg ? OLD_KEY : readFileSync(join(dataDir, 'secret.key'), 'utf8').trim();
      // A key that is not serve's changes nothing and says so.
      const wrong = await runHaishin(['secrets', 'rotate'], {
        ...env,
        HAISHIN_SECRET_KEY: 'some-other-key-0000000000000000',
        HAISHIN_NEW_SECRET_KEY: NEW_KEY,
      });
      expect(wrong.code).toBe(1);
      expect(wrong.stderr).toEqual([
        expect.stringMatching(/does not open the secret in .*nothing was changed/),
      ]);

      const rotated = await runHaishin(
        ['secrets', 'rotate'],
        pg ? { ...env, HAISHIN_NEW_SECRET_KEY: NEW_KEY } : env,
      );
      expect(rotated.stderr).toEqual([]);
      expect(rotated.code).toBe(0);
      const total = Number(/^secrets re-sealed with the new key: (\d+)$/.exec(rotated.stdout[0]!)?.[1]);
      expect(total).toBeGreaterThanOrEqual(2);
      expect(rotated.stdout).toContain('  vpp_tokens.sealed_stoken: 1');
      expect(rotated.stdout.some((l) => /^ {2}settings:device_ca\.key: 1$/.test(l))).toBe(true);
      const output = rotated.stdout.join('\n');
      for (const secret of [oldKey, NEW_KEY, sToken.trim()]) expect(output).not.toContain(secret);

      let newKey = NEW_KEY;
      if (!pg) {
        // The data dir's key replaced in place, private to its owner.
        newKey = readFileSync(join(dataDir, 'secret.key'), 'utf8').trim();
        expect(newKey).not.toBe(oldKey);
        expect(statSync(join(dataDir, 'secret.key')).mode & 0o777).toBe(0o600);
        expect(output).toMatch(/secret\.key \(mode 0600\)/);
      }

      // The old key: serve stops with one line.
      const refused = await runHaishin(['serve'], { ...env, HAISHIN_SECRET_KEY: oldKey });
      expect(refused.code).toBe(1);
      expect(refused.stderr).toEqual([
        expect.stringMatching(/^haishin: .*HAISHIN_SECRET_KEY is not the key/),
      ]);

      // The new key: the same CA verifies the iPad, the sToken opens for a sync with Apple.
      run = await startServe(pg ? { ...env, HAISHIN_SECRET_KEY: newKey } : env);
      serve = run.proc;
      expect(await ipad.tokenUpdate()).toBe(200);
      const sync = await api('POST', `/vpp-tokens/${token.body.id}/sync`);
      expect(sync.status).toBe(200);
    },
  );
});

// `haishin secrets rotate` (decision 0027), in process: where the new key comes from, a run
// interrupted between its commit and the rename of secret.key.new, and the refusals.
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { rotateSecrets } from '../src/cli/commands/secrets.ts';
import { ConfigError } from '../src/core/config.ts';
import { loadOrCreateDeviceCa } from '../src/mdm/device-ca.ts';
import { resealSecrets } from '../src/store/secret-rotation.ts';
import { SecretBox } from '../src/store/secretbox.ts';
import { Store } from '../src/store/store.ts';

const T0 = new Date('2026-12-07T09:00:00Z');

describe('haishin secrets rotate: keys and refusals', () => {
  let dir: string;
  let env: Record<string, string>;
  let printed: string[];

  /** A database holding a device CA sealed with `key`. */
  async function databaseWith(key: string): Promise<void> {
    const store = await Store.open(env.HAISHIN_DB!, T0);
    await loadOrCreateDeviceCa(store, new SecretBox(key), T0);
    await store.close();
  }
  async function caOpensWith(key: string): Promise<boolean> {
    const store = await Store.open(env.HAISHIN_DB!, T0);
    try {
      await loadOrCreateDeviceCa(store, new SecretBox(key), T0);
      return true;
    } catch {
      return false;
    } finally {
      await store.close();
    }
  }

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'haishin-secrets-cli-'));
    env = { HAISHIN_DB: `sqlite:${join(dir, 'haishin.db')}`, HAISHIN_DATA_DIR: join(dir, 'data') };
    printed = [];
    vi.spyOn(console, 'log').mockImplementation((line: string) => void printed.push(line));
  });
  afterEach(() => {
    vi.restoreAllMocks();
    rmSync(dir, { recursive: true, force: true });
  });

  it('--new-key-file that does not exist: a key generated into it (0600) before the database changes', async () => {
    env.HAISHIN_SECRET_KEY = 'the-current-key-0123456789';
    await databaseWith(env.HAISHIN_SECRET_KEY);
    const file = join(dir, 'new.key');
    await rotateSecrets(env, { newKeyFile: file });
    const key = readFileSync(file, 'utf8').trim();
    expect(key.length).toBeGreaterThanOrEqual(32);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(await caOpensWith(key)).toBe(true);
    expect(await caOpensWith(env.HAISHIN_SECRET_KEY)).toBe(false);
    expect(printed[0]).toBe('secrets re-sealed with the new key: 1');
    expect(printed.join('\n')).not.toContain(key);
    // Read when it exists: rotating back to a key the operator chose.
    writeFileSync(file, 'the-current-key-0123456789\n');
    await rotateSecrets({ ...env, HAISHIN_SECRET_KEY: key }, { newKeyFile: file });
    expect(await caOpensWith('the-current-key-0123456789')).toBe(true);
  });

  it("on SQLite a killed serve's leftover lease does not refuse: the instance lock already proves no serve runs", async () => {
    env.HAISHIN_SECRET_KEY = 'the-current-key-0123456789';
    await databaseWith(env.HAISHIN_SECRET_KEY);
    const store = await Store.open(env.HAISHIN_DB!, T0);
    await store.leases.acquire('VPP event poll', 'a killed serve', new Date(), 3_600_000);
    await store.close();
    await rotateSecrets({ ...env, HAISHIN_NEW_SECRET_KEY: 'the-next-key-0123456789' }, {});
    expect(await caOpensWith('the-next-key-0123456789')).toBe(true);
  });

  it('refusals: no new key with HAISHIN_SECRET_KEY set, the same key, two sources, a short key', async () => {
    env.HAISHIN_SECRET_KEY = 'the-current-key-0123456789';
    await databaseWith(env.HAISHIN_SECRET_KEY);
    await expect(rotateSecrets(env, {})).rejects.toThrow(/HAISHIN_NEW_SECRET_KEY, or --new-key-file/);
    await expect(
      rotateSecrets({ ...env, HAISHIN_NEW_SECRET_KEY: env.HAISHIN_SECRET_KEY }, {}),
    ).rejects.toThrow(/is the current key/);
    await expect(
      rotateSecrets(
        { ...env, HAISHIN_NEW_SECRET_KEY: 'another-key-0123456789' },
        { newKeyFile: join(dir, 'k') },
      ),
    ).rejects.toBeInstanceOf(ConfigError);
    await expect(rotateSecrets({ ...env, HAISHIN_NEW_SECRET_KEY: 'short' }, {})).rejects.toThrow(
      /16 characters/,
    );
    expect(await caOpensWith(env.HAISHIN_SECRET_KEY)).toBe(true);
  });

  it("the data dir's generated key replaced in place; an interrupted run is completed by running again", async () => {
    // The first start generated data/secret.key.
    const { resolveSecretKey } = await import('../src/app/secret.ts');
    const first = resolveSecretKey(null, env.HAISHIN_DATA_DIR!).key;
    await databaseWith(first);
    await rotateSecrets(env, {});
    const second = readFileSync(join(dir, 'data', 'secret.key'), 'utf8').trim();
    expect(second).not.toBe(first);
    expect(existsSync(join(dir, 'data', 'secret.key.new'))).toBe(false);
    expect(await caOpensWith(second)).toBe(true);

    // Interrupted after the commit, before the rename: the database is on secret.key.new.
    const third = 'the-third-key-after-a-crash-0123';
    writeFileSync(join(dir, 'data', 'secret.key.new'), `${third}\n`, { mode: 0o600 });
    const store = await Store.open(env.HAISHIN_DB!, T0);
    await resealSecrets(store.db.kysely, new SecretBox(second), new SecretBox(third));
    await store.close();
    printed.length = 0;
    await rotateSecrets(env, {});
    expect(printed).toEqual([
      expect.stringMatching(/already re-sealed with .*secret\.key\.new: it is now .*secret\.key$/),
    ]);
    expect(readFileSync(join(dir, 'data', 'secret.key'), 'utf8').trim()).toBe(third);
    expect(await caOpensWith(third)).toBe(true);
  });
});

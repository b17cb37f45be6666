import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { redactUrl } from '../../app/haishin.ts';
import { resolveSecretKey } from '../../app/secret.ts';
import { ConfigError, parseConfig } from '../../core/config.ts';
import { resealSecrets, SecretKeyMismatch } from '../../store/secret-rotation.ts';
import { SecretBox } from '../../store/secretbox.ts';
import { Store } from '../../store/store.ts';

export interface RotateOptions {
  newKeyFile?: string;
  force?: boolean;
}

const newKey = () => randomBytes(32).toString('base64url');

function readKeyFile(file: string): string {
  const key = readFileSync(file, 'utf8').trim();
  if (key.length < 16)
    throw new ConfigError(`--new-key-file ${file}: the key must be at least 16 characters`);
  return key;
}

/**
 * Where the new key comes from, in this order: HAISHIN_NEW_SECRET_KEY; `--new-key-file FILE` (read
 * when it exists, otherwise a key is generated into it, mode 0600); with neither, when the current
 * key is the data dir's generated `secret.key`, a new key generated into `secret.key.new` that
 * replaces `secret.key` once the database is re-sealed. The key is written before the database
 * changes, so it is never lost.
 */
function resolveNewKey(
  env: NodeJS.ProcessEnv,
  options: RotateOptions,
  current: { configured: boolean; dataDir: string },
): { key: string; source: string; promote?: { from: string; to: string } } {
  const fromEnv = env.HAISHIN_NEW_SECRET_KEY;
  if (fromEnv !== undefined && fromEnv !== '') {
    if (options.newKeyFile)
      throw new ConfigError('HAISHIN_NEW_SECRET_KEY and --new-key-file: give the new key one way only');
    if (fromEnv.length < 16) throw new ConfigError('HAISHIN_NEW_SECRET_KEY must be at least 16 characters');
    return { key: fromEnv, source: 'HAISHIN_NEW_SECRET_KEY' };
  }
  if (options.newKeyFile) {
    const file = options.newKeyFile;
    if (existsSync(file)) return { key: readKeyFile(file), source: file };
    const key = newKey();
    try {
      writeFileSync(file, `${key}\n`, { mode: 0o600, flag: 'wx' });
    } catch (err) {
      throw new ConfigError(`--new-key-file ${file}: ${(err as Error).message}`);
    }
    return { key, source: `${file} (generated)` };
  }
  if (current.configured)
    throw new ConfigError(
      'the new key: set HAISHIN_NEW_SECRET_KEY, or --new-key-file FILE (a key is generated into FILE when it does not exist)',
    );
  // The data dir's own key: the new one waits next to it and takes its place after the commit. A
  // `secret.key.new` left by an interrupted run is used again.
  const target = join(current.dataDir, 'secret.key');
  const pending = `${target}.new`;
  if (existsSync(pending))
    return { key: readKeyFile(pending), source: pending, promote: { from: pending, to: target } };
  const key = newKey();
  writeFileSync(pending, `${key}\n`, { mode: 0o600, flag: 'wx' });
  return { key, source: `${pending} (generated)`, promote: { from: pending, to: target } };
}

async function opensEverything(store: Store, box: SecretBox): Promise<boolean> {
  try {
    // Re-sealing with the same key changes nothing readable; it succeeds only if the key opens all.
    await resealSecrets(store.db.kysely, box, box);
    await store.committed();
    return true;
  } catch {
    return false;
  }
}

/**
 * `haishin secrets rotate`: re-seals every secret at rest (device CA keys, the SCEP service's keys,
 * the uploaded push certificate's key, VPP sTokens) with a new HAISHIN_SECRET_KEY in one
 * transaction (decision 0027). Configured like `serve`; every serve process must be stopped: they
 * hold the old key and would seal new secrets with it.
 */
export async function rotateSecrets(env: NodeJS.ProcessEnv, options: RotateOptions): Promise<void> {
  const config = parseConfig(env);
  const current = resolveSecretKey(config.secretKey, config.dataDir);
  const currentBox = new SecretBox(current.key);
  let store: Store;
  try {
    store = await Store.open(config.db, new Date());
  } catch (err) {
    throw new ConfigError(`HAISHIN_DB=${redactUrl(config.db)}: ${(err as Error).message}`);
  }
  try {
    // PostgreSQL lets serve run meanwhile: a live lease says a process is serving this database.
    // (SQLite's instance lock, taken by Store.open, already proves none is; a killed serve's leases
    // there would only refuse for nothing.)
    const now = new Date().toISOString();
    const live =
      store.db.dialect === 'postgres' ? (await store.leases.all()).filter((l) => l.expires_at > now) : [];
    if (live.length > 0 && !options.force)
      throw new ConfigError(
        `a haishin process is serving this database (lease ${live[0]!.name} held by ${live[0]!.holder} until ${live[0]!.expires_at}): stop every serve process first — they hold the old key (--force if that process is gone)`,
      );
    const next = resolveNewKey(env, options, {
      configured: config.secretKey !== null,
      dataDir: config.dataDir,
    });
    if (next.key === current.key) throw new ConfigError(`the new key (${next.source}) is the current key`);
    const nextBox = new SecretBox(next.key);
    let result;
    try {
      result = await resealSecrets(store.db.kysely, currentBox, nextBox);
      await store.committed();
    } catch (err) {
      if (!(err instanceof SecretKeyMismatch)) throw err;
      // A run interrupted between its commit and the rename left the database on secret.key.new:
      // when that key opens every secret, only the rename is left to do.
      if (!next.promote || !(await opensEverything(store, nextBox))) throw new ConfigError(err.message);
      renameSync(next.promote.from, next.promote.to);
      console.log(
        `the database was already re-sealed with ${next.promote.from}: it is now ${next.promote.to}`,
      );
      return;
    }
    if (next.promote) renameSync(next.promote.from, next.promote.to);
    console.log(`secrets re-sealed with the new key: ${result.total}`);
    for (const { place, count } of result.places) console.log(`  ${place}: ${count}`);
    console.log(
      next.promote
        ? `the new key is now ${next.promote.to} (mode 0600); start haishin serve as before`
        : `start every haishin process with HAISHIN_SECRET_KEY set to the new key (${next.source}); the old key no longer opens anything`,
    );
  } finally {
    await store.close();
  }
}

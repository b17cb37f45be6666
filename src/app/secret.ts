import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * HAISHIN_SECRET_KEY when set; otherwise a key generated once into the data dir (mode 0600).
 * Losing it makes stored secrets (device CA key, VPP tokens) unreadable, so it is never regenerated.
 */
export function resolveSecretKey(
  configured: string | null,
  dataDir: string,
): { key: string; source: string } {
  if (configured) return { key: configured, source: 'HAISHIN_SECRET_KEY' };
  const file = join(dataDir, 'secret.key');
  if (existsSync(file)) return { key: readFileSync(file, 'utf8').trim(), source: file };
  mkdirSync(dataDir, { recursive: true });
  const key = randomBytes(32).toString('base64url');
  writeFileSync(file, `${key}\n`, { mode: 0o600, flag: 'wx' });
  return { key, source: `${file} (generated)` };
}

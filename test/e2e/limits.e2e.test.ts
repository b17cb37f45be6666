// Limits and headers of `haishin serve` as it ships (issue 18, item 6, decision 0027), behind a
// reverse proxy named by HAISHIN_TRUST_PROXY: the client address comes from X-Forwarded-For. One
// address over the enrollment or wrong-token limit gets 429 with Retry-After, another does not;
// an enrolled iPad checks in again and again without ever being limited; the console and the API
// carry the security headers; an oversized admin body is a 413.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { SimDevice } from '../../src/sim/device/device.ts';
import { startFakesProcess, startServe, testServeEnv } from './support.ts';
import type { HaishinProcess } from './support.ts';

const ADMIN = 'e2e-admin-token-limits-0123456789abcdef';

describe('haishin serve: request limits and security headers', () => {
  const dir = mkdtempSync(join(tmpdir(), 'haishin-e2e-limits-'));
  let fakes: HaishinProcess | null = null;
  let serve: HaishinProcess | null = null;
  afterAll(async () => {
    await serve?.kill();
    await fakes?.kill();
    rmSync(dir, { recursive: true, force: true });
  });

  it(
    '429 with Retry-After per client address, check-ins never limited, headers, 413',
    { timeout: 180_000 },
    async () => {
      const started = await startFakesProcess(join(dir, 'apple'));
      fakes = started.proc;
      const { env, baseUrl } = await testServeEnv({ fakesEnv: started.info.env, dir, admin: ADMIN });
      const run = await startServe({
        ...env,
        HAISHIN_TRUST_PROXY: '127.0.0.1',
        HAISHIN_RATE_LIMIT_ENROLL: '3/1m',
        HAISHIN_RATE_LIMIT_AUTH: '4/1m',
        HAISHIN_API_MAX_BODY_BYTES: '8192',
      });
      serve = run.proc;
      const from = (address: string, headers: Record<string, string> = {}) => ({
        headers: { 'x-forwarded-for': address, ...headers },
      });

      // Enrollment: three downloads from the school's address, then 429; another address goes on.
      for (let i = 0; i < 3; i++) expect((await fetch(run.enrollUrl, from('198.51.100.7'))).status).toBe(200);
      const refused = await fetch(run.enrollUrl, from('198.51.100.7'));
      expect(refused.status).toBe(429);
      expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(0);
      expect(((await refused.json()) as { error: { code: string } }).error.code).toBe('request.rate_limited');
      expect((await fetch(run.enrollUrl, from('198.51.100.8'))).status).toBe(200);

      // An iPad enrolled (through the host itself) checks in far more often than any limit.
      const ipad = new SimDevice();
      await ipad.enroll(run.enrollUrl);
      for (let i = 0; i < 12; i++) expect(await ipad.tokenUpdate()).toBe(200);

      // Wrong admin tokens from one address: 401 four times, then 429 — even for the right token.
      const groups = (address: string, token: string) =>
        fetch(`${baseUrl}/api/v1/groups`, from(address, { authorization: `Bearer ${token}` }));
      for (let i = 0; i < 4; i++) expect((await groups('198.51.100.9', `hs_guess-${i}`)).status).toBe(401);
      const locked = await groups('198.51.100.9', 'hs_guess-again');
      expect(locked.status).toBe(429);
      expect(Number(locked.headers.get('retry-after'))).toBeGreaterThan(0);
      expect((await groups('198.51.100.9', ADMIN)).status).toBe(429);
      const other = await groups('198.51.100.10', ADMIN);
      expect(other.status).toBe(200);

      // Headers on the console page and the API.
      const page = await fetch(`${baseUrl}/`, { headers: { accept: 'text/html' } });
      for (const res of [page, other]) {
        expect(res.headers.get('x-frame-options')).toBe('DENY');
        expect(res.headers.get('x-content-type-options')).toBe('nosniff');
        expect(res.headers.get('referrer-policy')).toBe('no-referrer');
        expect(res.headers.get('content-security-policy')).toContain("frame-ancestors 'none'");
      }

      // An admin body over HAISHIN_API_MAX_BODY_BYTES.
      const big = await fetch(`${baseUrl}/api/v1/groups`, {
        method: 'POST',
        headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' },
        body: JSON.stringify({ name: 'x'.repeat(10_000) }),
      });
      expect(big.status).toBe(413);
      expect(((await big.json()) as { error: { code: string } }).error.code).toBe('request.too_large');
    },
  );
});

// Issue 18, item 6 (decision 0027): per-address limits on enrollment, SCEP and wrong admin tokens
// (429 with Retry-After, other addresses unaffected, check-ins never limited), body sizes per route
// (413 on the admin API, the MDM routes' 400 unchanged), security headers, and the configuration.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, parseConfig } from '../src/core/config.ts';
import { startTestServer } from './support/server.ts';
import type { TestServer } from './support/server.ts';

const ADMIN = 'limits-admin-token-0123456789abcdef';
const A = '203.0.113.10';
const B = '203.0.113.20';

describe('request limits and security headers', () => {
  let server: TestServer;

  beforeAll(async () => {
    server = await startTestServer({
      env: {
        HAISHIN_ADMIN_TOKEN: ADMIN,
        HAISHIN_RATE_LIMIT_ENROLL: '3/1m',
        HAISHIN_RATE_LIMIT_SCEP: '4/1m',
        HAISHIN_RATE_LIMIT_AUTH: '3/1m',
        HAISHIN_API_MAX_BODY_BYTES: '4096',
        HAISHIN_MAX_BODY_BYTES: '65536',
        HAISHIN_DEVICE_IDENTITY: 'scep',
      },
    });
  }, 60_000);
  afterAll(async () => {
    await server?.close();
  });

  const inject = (o: {
    method: 'GET' | 'POST' | 'PUT';
    url: string;
    from: string;
    headers?: Record<string, string>;
    payload?: string | Buffer;
  }) =>
    server.haishin.app.inject({
      method: o.method,
      url: o.url,
      remoteAddress: o.from,
      ...(o.headers ? { headers: o.headers } : {}),
      ...(o.payload !== undefined ? { payload: o.payload } : {}),
    });

  it('enrollment: 429 with Retry-After after the limit from one address; another address and the host itself go on', async () => {
    const url = `/mdm/enroll?group=${server.rootGroupId}`;
    for (let i = 0; i < 3; i++) expect((await inject({ method: 'GET', url, from: A })).statusCode).toBe(200);
    const refused = await inject({ method: 'GET', url, from: A, headers: { 'accept-language': 'ja' } });
    expect(refused.statusCode).toBe(429);
    expect(Number(refused.headers['retry-after'])).toBeGreaterThan(0);
    expect(Number(refused.headers['retry-after'])).toBeLessThanOrEqual(60);
    const body = refused.json<{ error: { code: string; message: string; messages: { en: string } } }>();
    expect(body.error.code).toBe('request.rate_limited');
    expect(body.error.message).toMatch(/秒後/);
    expect(body.error.messages.en).toMatch(/Too many requests from this address/);
    expect((await inject({ method: 'GET', url, from: B })).statusCode).toBe(200);
    for (let i = 0; i < 5; i++)
      expect((await inject({ method: 'GET', url, from: '127.0.0.1' })).statusCode).toBe(200);
  });

  it('check-ins and command reports are never limited per address (a fleet behind one NAT)', async () => {
    for (let i = 0; i < 25; i++) {
      for (const endpoint of ['checkin', 'connect']) {
        const res = await inject({
          method: 'PUT',
          url: `/mdm/${endpoint}`,
          from: A,
          headers: { 'content-type': 'application/x-apple-aspen-mdm-checkin' },
          payload: '<?xml version="1.0"?><plist version="1.0"><dict></dict></plist>',
        });
        // Unsigned: refused as any bad MDM message is (400), never 429.
        expect(res.statusCode).toBe(400);
      }
    }
  });

  it('wrong admin tokens: 429 with Retry-After after the limit, then even the right token waits; other addresses unaffected', async () => {
    const api = (from: string, token: string) =>
      inject({ method: 'GET', url: '/api/v1/groups', from, headers: { authorization: `Bearer ${token}` } });
    // Right tokens are not counted.
    for (let i = 0; i < 5; i++) expect((await api(A, ADMIN)).statusCode).toBe(200);
    for (let i = 0; i < 3; i++) expect((await api(A, `wrong-${i}`)).statusCode).toBe(401);
    const refused = await api(A, 'wrong-again');
    expect(refused.statusCode).toBe(429);
    expect(Number(refused.headers['retry-after'])).toBeGreaterThan(0);
    expect(refused.json<{ error: { code: string } }>().error.code).toBe('auth.rate_limited');
    // No oracle: a right guess from that address is not told apart.
    expect((await api(A, ADMIN)).statusCode).toBe(429);
    expect((await api(B, ADMIN)).statusCode).toBe(200);
    expect((await api(B, 'wrong')).statusCode).toBe(401);
  });

  it('SCEP: limited per address like enrollment', async () => {
    const scep = (from: string) => inject({ method: 'GET', url: '/scep?operation=GetCACaps', from });
    for (let i = 0; i < 4; i++) expect((await scep(A)).statusCode).toBe(200);
    const refused = await scep(A);
    expect(refused.statusCode).toBe(429);
    expect(refused.headers['retry-after']).toBeDefined();
    expect((await scep(B)).statusCode).toBe(200);
  });

  it('body sizes: 413 over the admin limit in the DESIGN error shape; a list route keeps the larger limit; MDM stays 400', async () => {
    const auth = { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' };
    const big = JSON.stringify({ name: 'x'.repeat(5000), parentId: server.rootGroupId });
    const tooLarge = await inject({
      method: 'POST',
      url: '/api/v1/groups',
      from: B,
      headers: auth,
      payload: big,
    });
    expect(tooLarge.statusCode).toBe(413);
    const err = tooLarge.json<{ error: { code: string; messages: { ja: string; en: string } } }>().error;
    expect(err.code).toBe('request.too_large');
    expect(err.messages.en).toContain('4096');
    expect(err.messages.ja).toContain('4096');
    // POST /distributions takes up to 100,000 device IDs: HAISHIN_MAX_BODY_BYTES, so a 10 KB body
    // is read and judged by its content (not 413).
    const ids = Array.from({ length: 250 }, (_, i) => `device-${String(i).padStart(30, '0')}`);
    const list = await inject({
      method: 'POST',
      url: '/api/v1/distributions',
      from: B,
      headers: auth,
      payload: JSON.stringify({
        kind: 'install',
        tokenId: 'none',
        adamIds: ['1'],
        targets: { deviceIds: ids },
      }),
    });
    expect(list.statusCode).toBe(400);
    expect(list.json<{ error: { code: string } }>().error.code).toBe('request.invalid');
    const mdm = await inject({
      method: 'PUT',
      url: '/mdm/checkin',
      from: B,
      headers: { 'content-type': 'application/x-apple-aspen-mdm-checkin' },
      payload: Buffer.alloc(70_000, 0x20),
    });
    expect(mdm.statusCode).toBe(400);
  });

  it('security headers on the console, the API and device answers', async () => {
    const page = await inject({ method: 'GET', url: '/', from: B, headers: { accept: 'text/html' } });
    const api = await inject({ method: 'GET', url: '/api/v1/groups', from: B });
    const enroll = await inject({
      method: 'GET',
      url: `/mdm/enroll?group=${server.rootGroupId}`,
      from: '127.0.0.1',
    });
    for (const res of [page, api, enroll]) {
      expect(res.headers['x-frame-options']).toBe('DENY');
      expect(res.headers['x-content-type-options']).toBe('nosniff');
      expect(res.headers['referrer-policy']).toBe('no-referrer');
      expect(String(res.headers['content-security-policy'])).toContain("frame-ancestors 'none'");
    }
    // The console keeps its own policy: its scripts and styles from itself only, no inline script.
    expect(String(page.headers['content-security-policy'])).toMatch(/script-src 'self'(;|$)/);
    expect(String(api.headers['content-security-policy'])).toBe("default-src 'none'; frame-ancestors 'none'");
    // HSTS only for an https:// public URL.
    expect(api.headers['strict-transport-security']).toBeUndefined();
  });
});

describe('an https:// public URL', () => {
  it('adds Strict-Transport-Security to every answer', async () => {
    const server = await startTestServer({ env: { HAISHIN_PUBLIC_URL: 'https://mdm.example.org' } });
    try {
      const res = await server.haishin.app.inject({ method: 'GET', url: '/api/health' });
      expect(res.headers['strict-transport-security']).toBe('max-age=31536000');
      expect(res.headers['x-frame-options']).toBe('DENY');
    } finally {
      await server.close();
    }
  });
});

describe('the limits configuration', () => {
  const base = { HAISHIN_DB: 'sqlite::memory:' };

  it('defaults, forms and the off switch', () => {
    const d = parseConfig(base).limits;
    expect(d).toEqual({
      enroll: { max: 60, windowMs: 60_000 },
      scep: { max: 240, windowMs: 60_000 },
      authFailures: { max: 20, windowMs: 60_000 },
      trustProxy: [],
      apiMaxBodyBytes: 1_048_576,
    });
    const c = parseConfig({
      ...base,
      HAISHIN_RATE_LIMIT_ENROLL: 'off',
      HAISHIN_RATE_LIMIT_SCEP: '10/30s',
      HAISHIN_RATE_LIMIT_AUTH: '5 / 1h',
      HAISHIN_TRUST_PROXY: '127.0.0.1, ::1,10.0.0.0/8',
    }).limits;
    expect(c.enroll).toBeNull();
    expect(c.scep).toEqual({ max: 10, windowMs: 30_000 });
    expect(c.authFailures).toEqual({ max: 5, windowMs: 3_600_000 });
    expect(c.trustProxy).toEqual(['127.0.0.1', '::1', '10.0.0.0/8']);
  });

  it('refuses what it cannot read, naming the variable', () => {
    for (const [name, value] of [
      ['HAISHIN_RATE_LIMIT_ENROLL', '60'],
      ['HAISHIN_RATE_LIMIT_ENROLL', '0/1m'],
      ['HAISHIN_RATE_LIMIT_AUTH', '5/forever'],
      ['HAISHIN_RATE_LIMIT_SCEP', '5/2d'],
      ['HAISHIN_TRUST_PROXY', 'proxy.example.org'],
    ] as const) {
      expect(() => parseConfig({ ...base, [name]: value })).toThrow(ConfigError);
      expect(() => parseConfig({ ...base, [name]: value })).toThrow(name);
    }
  });
});

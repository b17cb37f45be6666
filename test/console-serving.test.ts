// How the server hands out the console (src/api/console.ts), without a browser, plus the
// console's status labels against the catalogue's (DESIGN §3).
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Fastify from 'fastify';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { consoleUrl, registerConsole } from '../src/api/console.ts';
import { JOB_STATUSES } from '../src/core/jobs.ts';
import { startTestServer } from './support/server.ts';
import { JOB_STATUS_LABELS } from '../src/diagnosis/catalogue.ts';
import { JOB_STATUS_LABELS as CONSOLE_LABELS, statusLabel } from '../web/src/messages.ts';

const HTML = { accept: 'text/html,application/xhtml+xml,*/*;q=0.8' };

async function appWith(dir: string): Promise<FastifyInstance> {
  const app = Fastify();
  app.get('/api/v1/known', async () => ({ ok: true }));
  app.put('/mdm/connect', async () => '');
  await registerConsole(app, { dir });
  await app.ready();
  return app;
}

describe('serving the console', () => {
  const root = mkdtempSync(join(tmpdir(), 'haishin-console-'));
  const built = join(root, 'built');
  let app: FastifyInstance;
  let bare: FastifyInstance;
  beforeAll(async () => {
    mkdirSync(join(built, 'assets'), { recursive: true });
    writeFileSync(join(built, 'index.html'), '<!doctype html><div id="root"></div>');
    writeFileSync(join(built, 'assets', 'index-abc123.js'), 'console.log(1)');
    app = await appWith(built);
    bare = await appWith(join(root, 'missing'));
  });
  afterAll(async () => {
    await app?.close();
    await bare?.close();
    rmSync(root, { recursive: true, force: true });
  });

  it('serves index.html at / and for browser navigations to console paths, never cached', async () => {
    for (const url of ['/', '/distributions/abc', '/jobs/1?x=2', '/devices']) {
      const res = await app.inject({ method: 'GET', url, headers: HTML });
      expect(res.statusCode, url).toBe(200);
      expect(res.body).toContain('<div id="root">');
      expect(res.headers['cache-control']).toBe('no-cache');
      expect(String(res.headers['content-security-policy'])).toContain("default-src 'self'");
    }
  });

  it('serves hashed assets with a long immutable cache', async () => {
    const res = await app.inject({ method: 'GET', url: '/assets/index-abc123.js' });
    expect(res.statusCode).toBe(200);
    expect(res.body).toBe('console.log(1)');
    expect(String(res.headers['cache-control'])).toContain('immutable');
    expect((await app.inject({ method: 'GET', url: '/assets/nope.js' })).statusCode).toBe(404);
  });

  it('never shadows /api, /mdm or /vpp, and answers non-browser requests with a plain 404', async () => {
    expect((await app.inject({ method: 'GET', url: '/api/v1/known', headers: HTML })).json()).toEqual({
      ok: true,
    });
    for (const url of ['/api/v1/unknown', '/api', '/mdm/checkin', '/vpp/notify?x=1']) {
      const res = await app.inject({ method: 'GET', url, headers: HTML });
      expect(res.statusCode, url).toBe(404);
      expect(res.body).not.toContain('id="root"');
    }
    const json = await app.inject({
      method: 'GET',
      url: '/devices',
      headers: { accept: 'application/json' },
    });
    expect(json.statusCode).toBe(404);
    expect(json.json()).toMatchObject({ statusCode: 404, error: 'Not Found' });
    expect((await app.inject({ method: 'POST', url: '/devices', headers: HTML })).statusCode).toBe(404);
  });

  it('without a build, / says in Japanese and English to run npm run build:web', async () => {
    const res = await bare.inject({ method: 'GET', url: '/', headers: HTML });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toContain('text/html');
    expect(res.body).toContain('npm run build:web');
    expect(res.body).toContain('管理コンソールがまだビルドされていません');
    expect(res.body).toContain('has not been built');
  });

  it('consoleUrl puts the admin token in the fragment', () => {
    expect(consoleUrl('http://127.0.0.1:8080', 'hs_a/b')).toBe('http://127.0.0.1:8080/#token=hs_a%2Fb');
    expect(consoleUrl('http://127.0.0.1:8080/', null)).toBe('http://127.0.0.1:8080/');
  });
});

describe("the console's status labels", () => {
  it('are the catalogue labels of DESIGN §3, in the same order', () => {
    expect(Object.keys(CONSOLE_LABELS)).toEqual([...JOB_STATUSES]);
    expect(CONSOLE_LABELS).toEqual(JOB_STATUS_LABELS);
    expect(statusLabel('retry_waiting', 'ja', 3)).toBe('リトライ待機中(3)');
    expect(statusLabel('retry_waiting', 'en', 3)).toBe('Waiting to retry (3)');
  });
});

describe("GET /api/v1/distributions (the console's list)", () => {
  it('pages newest first by cursor, each item with its counts', async () => {
    const server = await startTestServer({
      env: { HAISHIN_ADMIN_TOKEN: 'console-list-admin-token-0123456789' },
    });
    try {
      for (const [i, id] of ['d-a', 'd-b', 'd-c'].entries()) {
        await server.haishin.store.jobs.createDistribution(
          {
            id,
            kind: 'install',
            token_id: 't',
            adam_ids: '["1"]',
            targets: '{}',
            license_mode: 'auto',
            scheduled_at: null,
            created_by: 'test',
            created_at: new Date(Date.UTC(2026, 0, 1 + (i === 2 ? 0 : i + 1))).toISOString(),
            cancelled_at: null,
          },
          [],
          new Date(),
        );
      }
      const get = async (q: string) => {
        const res = await fetch(`${server.baseUrl}/api/v1/distributions${q}`, {
          headers: { authorization: 'Bearer console-list-admin-token-0123456789' },
        });
        return (await res.json()) as { items: { id: string; counts: object }[]; nextCursor: string | null };
      };
      const first = await get('?limit=2');
      expect(first.items.map((d) => d.id)).toEqual(['d-b', 'd-a']);
      expect(first.items[0]!.counts).toEqual({});
      const second = await get(`?limit=2&cursor=${first.nextCursor}`);
      expect(second.items.map((d) => d.id)).toEqual(['d-c']);
      expect(second.nextCursor).toBeNull();
    } finally {
      await server.close();
    }
  });
});

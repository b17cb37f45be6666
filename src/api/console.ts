import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import fastifyStatic from '@fastify/static';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';

/** Where `vite build --config web/vite.config.ts` writes the console (repo root / dist/web). */
export const DEFAULT_CONSOLE_DIR = fileURLToPath(new URL('../../dist/web/', import.meta.url));

/** Paths the console must never answer for: they belong to the API, devices and Apple. */
const NOT_CONSOLE = /^\/(api|mdm|vpp)(\/|$|\?)/;

/**
 * The link an administrator opens: the console signs in from the `#token=` fragment (a fragment
 * never reaches the server or its logs) and then removes it from the address bar.
 */
export function consoleUrl(baseUrl: string, adminToken: string | null): string {
  const base = baseUrl.replace(/\/+$/, '') + '/';
  return adminToken ? `${base}#token=${encodeURIComponent(adminToken)}` : base;
}

/**
 * Shown at `/` when the console has not been built; the server still works without it. Plain
 * HTML: the Content-Security-Policy of every answer refuses inline styles.
 */
const NOT_BUILT_PAGE = `<!doctype html>
<html lang="ja"><head><meta charset="utf-8"><title>haishin</title></head>
<body>
<h1>haishin 配信</h1>
<p lang="ja">管理コンソールがまだビルドされていません。<code>npm run build:web</code> を実行してから、このページを再読み込みしてください。REST API (<code>/api/v1</code>) はこのままで使えます。</p>
<p lang="en">The admin console has not been built yet. Run <code>npm run build:web</code>, then reload this page. The REST API (<code>/api/v1</code>) works without it.</p>
</body></html>
`;

/**
 * The self-contained page only loads its own hashed scripts and styles and talks to its own
 * origin; a CSP makes an injected script in API data (device names, error texts) inert.
 */
const CSP =
  "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

const acceptsHtml = (req: FastifyRequest) => /\btext\/html\b/i.test(req.headers.accept ?? '');

/**
 * Serves the admin console: `/assets/*` from the build (hashed names, cached for a year), and
 * index.html at `/` and for every other browser navigation outside /api, /mdm and /vpp, so that
 * a reloaded or bookmarked console URL works. Registered on the root instance because the SPA
 * fallback is the root's not-found handler.
 */
export async function registerConsole(app: FastifyInstance, o: { dir?: string } = {}): Promise<void> {
  const dir = o.dir ?? DEFAULT_CONSOLE_DIR;
  // Checked per request, not at start: `npm run build:web` next to a running server takes effect on reload.
  const built = () => existsSync(join(dir, 'index.html'));

  await app.register(fastifyStatic, {
    root: join(dir, 'assets'),
    prefix: '/assets/',
    // Missing until the first build; the not-built page says what to do.
    suppressWarning: true,
    immutable: true,
    maxAge: 365 * 86_400_000,
    index: false,
  });

  const sendIndex = (reply: FastifyReply) => {
    reply.header('content-security-policy', CSP).header('x-content-type-options', 'nosniff');
    if (!built()) return reply.type('text/html; charset=utf-8').send(NOT_BUILT_PAGE);
    // index.html names the current hashed bundle: never cache it.
    return reply
      .header('cache-control', 'no-cache')
      .sendFile('index.html', dir, { cacheControl: false, immutable: false });
  };

  app.get('/', (_req, reply) => sendIndex(reply));

  app.setNotFoundHandler((req, reply) => {
    if ((req.method === 'GET' || req.method === 'HEAD') && !NOT_CONSOLE.test(req.url) && acceptsHtml(req))
      return sendIndex(reply);
    // Fastify's own 404 body, so that nothing changes for API, device and Apple clients.
    return reply
      .code(404)
      .send({ message: `Route ${req.method}:${req.url} not found`, error: 'Not Found', statusCode: 404 });
  });
}

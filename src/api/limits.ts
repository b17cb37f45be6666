import fastifyRateLimit from '@fastify/rate-limit';
import type { FastifyInstance, FastifyReply, FastifyRequest, RouteOptions } from 'fastify';
import type { LimitsConfig, RateLimit } from '../core/config.ts';
import { ApiError, errorBody } from './errors.ts';

/**
 * Request limits and security headers (issue 18, item 6, decision 0027):
 * - per client address: enrollment (`GET /mdm/enroll`), SCEP (`/scep`) and wrong admin tokens;
 *   never `/mdm/checkin`, `/mdm/connect` or `/vpp/notify` — a school's whole fleet checks in from
 *   one NAT address, and Apple's notifications come from Apple;
 * - the admin API's body size (smaller than the MDM routes', except routes taking long lists);
 * - headers that keep the console and the API out of frames and MIME sniffing.
 * Counters are in this process's memory: with several processes each counts its own requests.
 */
export interface AuthFailureLimiter {
  /** Throws a 429 (Retry-After set) while this address is over its wrong-token budget; before the token. */
  check(req: FastifyRequest, reply: FastifyReply): Promise<void>;
  /** Counts one wrong token from this address. */
  failed(req: FastifyRequest): Promise<void>;
}

/**
 * The host itself (an administrator's shell, the simulated fleets of the tests, a reverse proxy
 * when HAISHIN_TRUST_PROXY does not name it) is never limited.
 */
export const isLoopback = (ip: string): boolean =>
  ip === '::1' || ip.startsWith('127.') || ip.startsWith('::ffff:127.');

/** Routes whose body carries long lists or texts (100,000 device IDs, a pasted log) keep the MDM limit. */
function takesLongBodies(schema: unknown, depth = 0): boolean {
  if (schema === null || typeof schema !== 'object' || depth > 32) return false;
  const s = schema as Record<string, unknown>;
  if (typeof s.maxItems === 'number' && s.maxItems > 1_000) return true;
  if (typeof s.maxLength === 'number' && s.maxLength > 100_000) return true;
  return Object.values(s).some((v) =>
    Array.isArray(v) ? v.some((x) => takesLongBodies(x, depth + 1)) : takesLongBodies(v, depth + 1),
  );
}

/** Content-Security-Policy of every API and MDM answer: nothing in them is ever rendered as a page. */
const API_CSP = "default-src 'none'; frame-ancestors 'none'";

function tooMany(
  reply: FastifyReply,
  req: FastifyRequest,
  code: 'request.rate_limited' | 'auth.rate_limited',
  seconds: number,
) {
  const err = ApiError.of(429, code, { seconds });
  return reply
    .code(429)
    .header('retry-after', String(seconds))
    .send(errorBody(err, req.headers['accept-language']));
}

/**
 * Registers the limits and headers on the root instance. Call it before any route is registered:
 * the limits are attached to routes as they are added.
 */
export async function registerLimits(
  app: FastifyInstance,
  o: { limits: LimitsConfig; maxBodyBytes: number; publicUrl: string },
): Promise<{ authFailures: AuthFailureLimiter | null }> {
  await app.register(fastifyRateLimit, { global: false });
  const limiter = (limit: RateLimit) => app.createRateLimit({ max: limit.max, timeWindow: limit.windowMs });

  /** An onRequest hook answering 429 with Retry-After once an address is over `limit`. */
  const perAddress = (limit: RateLimit) => {
    const count = limiter(limit);
    return async (req: FastifyRequest, reply: FastifyReply) => {
      if (isLoopback(req.ip)) return;
      const r = await count(req);
      if (!r.isAllowed && r.isExceeded) return tooMany(reply, req, 'request.rate_limited', r.ttlInSeconds);
    };
  };
  const enroll = o.limits.enroll ? perAddress(o.limits.enroll) : null;
  const scep = o.limits.scep ? perAddress(o.limits.scep) : null;

  app.addHook('onRoute', (route: RouteOptions) => {
    const hook =
      route.url === '/mdm/enroll'
        ? enroll
        : route.url === '/scep' || route.url.startsWith('/scep/')
          ? scep
          : null;
    if (hook) route.onRequest = [...(route.onRequest ? [route.onRequest].flat() : []), hook];
    if (route.url.startsWith('/api/') && route.bodyLimit === undefined)
      route.bodyLimit = takesLongBodies(route.schema?.body) ? o.maxBodyBytes : o.limits.apiMaxBodyBytes;
  });

  const https = o.publicUrl.startsWith('https://');
  // Callback style, not async: every answer passes here, device check-ins included.
  app.addHook('onSend', (_req, reply, payload, done) => {
    reply.header('x-content-type-options', 'nosniff');
    reply.header('x-frame-options', 'DENY');
    reply.header('referrer-policy', 'no-referrer');
    // The console's index.html sets its own policy (console.ts); everything else is data.
    if (!reply.hasHeader('content-security-policy')) reply.header('content-security-policy', API_CSP);
    if (https) reply.header('strict-transport-security', 'max-age=31536000');
    done(null, payload);
  });

  if (o.limits.trustProxy.length === 0) {
    const host = new URL(o.publicUrl).hostname;
    if (!['127.0.0.1', 'localhost', '[::1]'].includes(host))
      app.log.info(
        'HAISHIN_TRUST_PROXY is not set: behind a reverse proxy on this host every request comes from its address, which is never rate-limited — set HAISHIN_TRUST_PROXY to the proxy address so the limits and the audit trail see the client address',
      );
  }

  const auth = o.limits.authFailures;
  if (!auth) return { authFailures: null };
  const count = limiter(auth);
  return {
    authFailures: {
      async check(req, reply) {
        if (isLoopback(req.ip)) return;
        // Read without counting: over the budget even a right token waits, so a guess that
        // happens to be right is not told apart from the wrong ones.
        const r = await count(req, { increment: false });
        if (!r.isAllowed && r.remaining === 0 && r.ttlInSeconds > 0) {
          reply.header('retry-after', String(r.ttlInSeconds));
          throw ApiError.of(429, 'auth.rate_limited', { seconds: r.ttlInSeconds });
        }
      },
      async failed(req) {
        if (isLoopback(req.ip)) return;
        await count(req);
      },
    },
  };
}

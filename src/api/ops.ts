import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance } from 'fastify';

export interface OpsRouteOptions {
  /** The Prometheus exposition served at GET /metrics. */
  metrics: { scrape(): Promise<{ contentType: string; body: string }> };
  /** HAISHIN_METRICS_TOKEN: when set, /metrics answers only `Authorization: Bearer <it>`. */
  metricsToken: string | null;
  /** Resolves when the database answers (a trivial query). */
  ping(): Promise<void>;
  /** How long readiness waits for the database. Default 2 s. */
  readyTimeoutMs?: number;
}

/**
 * What an operator's tooling reads, in plain JSON or Prometheus text (no ja/en messages):
 * `GET /api/health` — the process is alive; `GET /api/ready` — it can serve, its database answers
 * (503 otherwise); `GET /metrics` — Prometheus (decision 0016 says who may read it).
 */
export async function registerOpsRoutes(app: FastifyInstance, o: OpsRouteOptions): Promise<void> {
  app.get('/api/health', async () => ({ ok: true }));

  const readyTimeoutMs = o.readyTimeoutMs ?? 2_000;
  app.get('/api/ready', async (req, reply) => {
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        o.ping(),
        new Promise<never>((_, reject) => {
          timer = setTimeout(
            () => reject(new Error(`no answer within ${readyTimeoutMs} ms`)),
            readyTimeoutMs,
          );
        }),
      ]);
      return { ok: true };
    } catch (err) {
      // The details go to the log only: this route answers anyone who can reach the server.
      req.log.warn({ err }, 'readiness: the database does not answer');
      return reply.code(503).send({ ok: false, reason: 'database', message: 'the database does not answer' });
    } finally {
      clearTimeout(timer);
    }
  });

  const expected = o.metricsToken === null ? null : digest(o.metricsToken);
  app.get('/metrics', async (req, reply) => {
    if (expected) {
      const match = /^Bearer\s+(\S+)\s*$/i.exec(req.headers.authorization ?? '');
      if (!match || !timingSafeEqual(digest(match[1]!), expected)) {
        return reply
          .code(401)
          .header('www-authenticate', 'Bearer realm="haishin metrics"')
          .send({ ok: false, reason: 'auth', message: 'send Authorization: Bearer <HAISHIN_METRICS_TOKEN>' });
      }
    }
    const { contentType, body } = await o.metrics.scrape();
    return reply.type(contentType).header('cache-control', 'no-store').send(body);
  });
}

/** Compared as digests: equal lengths for timingSafeEqual, whatever the caller sends. */
function digest(token: string): Buffer {
  return createHash('sha256').update(token, 'utf8').digest();
}

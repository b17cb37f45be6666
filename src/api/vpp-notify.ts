import type { FastifyInstance } from 'fastify';
import { handleVppNotifyRequest } from '../apple/vpp/events.ts';
import type { VppTokens } from '../engine/vpp-tokens.ts';

/**
 * POST /vpp/notify — Apple's Apps and Books notifications. The bearer tells which token the
 * notification is for; handling is idempotent on notificationId.
 */
/**
 * `direct()`: whether this process follows the Apps and Books events (it holds their poll's lease,
 * or it is the only process); otherwise a notification is authenticated and kept in the database
 * for the process that does (decision 0019).
 */
export async function registerVppNotify(
  app: FastifyInstance,
  tokens: VppTokens,
  o: {
    direct: () => boolean;
    /** A notification was kept for the process that follows the events (it is woken, decision 0020). */
    kept?: () => void;
  } = { direct: () => true },
): Promise<void> {
  await app.register(async (scope) => {
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: 5 * 1024 * 1024 }, (_req, body, done) =>
      done(null, body),
    );
    scope.post('/vpp/notify', async (req, reply) => {
      const auth = req.headers.authorization;
      const body = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
      if (!o.direct()) {
        const kept = await tokens.keepNotification(auth, body);
        if (kept.status !== 200)
          req.log.warn({ status: kept.status, body: kept.body }, 'vpp notification refused');
        else o.kept?.();
        return reply.code(kept.status).send(kept.body);
      }
      const bearer = auth ? /^Bearer\s+(\S+)\s*$/i.exec(auth)?.[1] : undefined;
      const tracker = bearer ? await tokens.trackerForNotification(bearer) : undefined;
      const result = await handleVppNotifyRequest(() => tracker, req.headers, body);
      if (result.status !== 200)
        req.log.warn({ status: result.status, body: result.body }, 'vpp notification refused');
      else if (result.notificationType === 'TEST_NOTIFICATION')
        req.log.info({ body: result.body }, 'vpp test notification received');
      return reply.code(result.status).send(result.body);
    });
  });
}

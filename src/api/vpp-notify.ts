import type { FastifyInstance } from 'fastify';
import { handleVppNotifyRequest } from '../apple/vpp/events.ts';
import type { VppTokens } from '../engine/vpp-tokens.ts';

/**
 * POST /vpp/notify — Apple's Apps and Books notifications. The bearer tells which token the
 * notification is for; handling is idempotent on notificationId.
 */
export async function registerVppNotify(app: FastifyInstance, tokens: VppTokens): Promise<void> {
  await app.register(async (scope) => {
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: 5 * 1024 * 1024 }, (_req, body, done) =>
      done(null, body),
    );
    scope.post('/vpp/notify', async (req, reply) => {
      const auth = req.headers.authorization;
      const bearer = auth ? /^Bearer\s+(\S+)\s*$/i.exec(auth)?.[1] : undefined;
      const tracker = bearer ? await tokens.trackerForNotification(bearer) : undefined;
      const body = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
      const result = await handleVppNotifyRequest(() => tracker, req.headers, body);
      if (result.status !== 200)
        req.log.warn({ status: result.status, body: result.body }, 'vpp notification refused');
      else if (result.notificationType === 'TEST_NOTIFICATION')
        req.log.info({ body: result.body }, 'vpp test notification received');
      return reply.code(result.status).send(result.body);
    });
  });
}

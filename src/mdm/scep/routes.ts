import type { FastifyBaseLogger, FastifyInstance, FastifyReply } from 'fastify';
import type { ScepServer } from './server.ts';

/** A PKIOperation is a few kilobytes; this bounds what an unauthenticated client can send. */
const MAX_MESSAGE_BYTES = 64 * 1024;

/**
 * `GET|POST /scep` (RFC 8894 §4): `?operation=GetCACaps | GetCACert | PKIOperation` (GET with
 * `&message=<base64>`, or POST with the binary pkiMessage). No admin authentication: the one-time
 * challenge inside the request is what admits it (decision 0024).
 */
export async function registerScepRoutes(app: FastifyInstance, scep: ScepServer): Promise<void> {
  await app.register(async (scope) => {
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: MAX_MESSAGE_BYTES }, (_req, body, done) =>
      done(null, body),
    );

    const handle = async (
      operation: string | undefined,
      message: Buffer | null,
      reply: FastifyReply,
      log: FastifyBaseLogger,
    ) => {
      switch (operation) {
        case 'GetCACaps':
          return reply.type('text/plain').send(scep.caCaps());
        case 'GetCACert': {
          const { contentType, body } = scep.caCert();
          return reply.type(contentType).send(body);
        }
        case 'PKIOperation': {
          if (!message || message.length === 0)
            return reply.code(400).type('text/plain').send('PKIOperation needs a pkiMessage\n');
          const result = await scep.pkiOperation(message);
          log[result.status === 200 && result.note.startsWith('issued') ? 'info' : 'warn'](
            { note: result.note },
            'scep PKIOperation',
          );
          if (result.status !== 200) return reply.code(400).type('text/plain').send(`${result.note}\n`);
          return reply.type('application/x-pki-message').send(result.body);
        }
        default:
          return reply
            .code(400)
            .type('text/plain')
            .send('operation must be GetCACaps, GetCACert or PKIOperation\n');
      }
    };

    scope.get<{ Querystring: { operation?: string; message?: string } }>('/scep', async (req, reply) => {
      const text = req.query.message;
      // A '+' of the base64 arrives as a space when the client did not escape it.
      const message = text ? Buffer.from(text.replace(/ /g, '+'), 'base64') : null;
      return handle(req.query.operation, message, reply, req.log);
    });
    scope.post<{ Querystring: { operation?: string } }>('/scep', async (req, reply) => {
      const body = Buffer.isBuffer(req.body) ? req.body : null;
      return handle(req.query.operation, body, reply, req.log);
    });
  });
}

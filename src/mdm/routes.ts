import type { FastifyInstance } from 'fastify';
import { UnknownGroupError } from './enroll.ts';
import type { EnrollmentProfiles } from './enroll.ts';
import type { EnrollmentGate } from './enrollment-gate.ts';
import type { MdmHandler } from './service.ts';

export interface MdmRouteOptions {
  service: MdmHandler;
  profiles: EnrollmentProfiles;
  /** Who may obtain a profile: an enrollment link's secret, or a bare group in labs (decision 0022). */
  gate: EnrollmentGate;
  maxBodyBytes: number;
}

/**
 * The device-facing HTTP surface. Devices get 400 for every refusal and never 401
 * (a 401 makes an enrolled iPhone remove its MDM profile).
 */
export async function registerMdmRoutes(app: FastifyInstance, o: MdmRouteOptions): Promise<void> {
  await app.register(async (scope) => {
    // Raw bytes are needed: the signature covers the exact body.
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: o.maxBodyBytes }, (_req, body, done) =>
      done(null, body),
    );
    scope.setErrorHandler((err: { statusCode?: number; message: string }, req, reply) => {
      // Body too large, bad framing…: still a 400 on MDM routes.
      req.log.warn({ reason: err.message }, 'mdm request refused');
      void reply.code(400).type('text/plain').send('');
    });

    // A fleet polls all day long: Fastify's two lines per request ("incoming request", "request
    // completed") are written for device traffic only when debug is on; refusals stay warnings.
    const debug = app.log.level === 'debug' || app.log.level === 'trace';
    const routeOptions = debug ? {} : { logLevel: 'warn' as const };
    for (const endpoint of ['checkin', 'connect'] as const) {
      scope.put(`/mdm/${endpoint}`, routeOptions, async (req, reply) => {
        const body = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
        const header = req.headers['mdm-signature'];
        const result = await o.service.handle(endpoint, body, Array.isArray(header) ? header[0] : header);
        if (result.status === 400) req.log.warn({ endpoint, reason: result.note }, 'mdm request refused');
        else req.log.debug({ endpoint, note: result.note }, 'mdm request');
        reply.code(result.status);
        if (result.body.length === 0) return reply.send('');
        return reply.type(result.contentType ?? 'application/xml').send(result.body);
      });
    }
  });

  app.get<{ Querystring: { group?: string; token?: string } }>('/mdm/enroll', async (req, reply) => {
    // A repeated parameter arrives as an array: not a link anyone was given.
    const one = (v: unknown) => (typeof v === 'string' ? v : undefined);
    const admission = await o.gate.admit({ group: one(req.query.group), token: one(req.query.token) });
    if (!admission.ok) {
      req.log.warn({ code: admission.code }, 'enrollment refused');
      const ja = /^\s*ja\b/i.test(req.headers['accept-language'] ?? '');
      return reply.code(admission.status).send({
        error: {
          code: admission.code,
          message: ja ? admission.messages.ja : admission.messages.en,
          messages: admission.messages,
        },
      });
    }
    const groupId = admission.groupId;
    try {
      const { body } = await o.profiles.profileFor(groupId);
      return reply
        .type('application/x-apple-aspen-config')
        .header('content-disposition', 'attachment; filename="haishin-enroll.mobileconfig"')
        .send(body);
    } catch (err) {
      if (err instanceof UnknownGroupError) {
        return reply.code(404).send({ error: { code: 'enroll.group_not_found', message: err.message } });
      }
      throw err;
    }
  });
}

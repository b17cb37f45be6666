import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type {
  FastifyBaseLogger,
  FastifyInstance,
  FastifyReply,
  FastifyRequest,
  RawReplyDefaultExpression,
  RawRequestDefaultExpression,
  RawServerDefault,
  RouteOptions,
} from 'fastify';
import type { Clock } from '../core/clock.ts';
import type { Pusher } from '../engine/push.ts';
import type { Commander } from '../engine/commander.ts';
import type { VppTokens } from '../engine/vpp-tokens.ts';
import type { DistributionEngine } from '../engine/engine.ts';
import type { DeviceActions } from '../engine/device-actions.ts';
import type { AppUpdates } from '../engine/app-updates.ts';
import type { DeviceChange, EventBus } from '../engine/events.ts';
import type { Store } from '../store/store.ts';
import { Refusal } from '../core/refusal.ts';
import { ApiError, errorBody } from './errors.ts';
import { refuseNulCharacters } from './text-guard.ts';
import { describeRule, enforceAuthz, requireAuthzRule, scopeFor } from './authz.ts';
import type { AuthzRule } from './authz.ts';
import { registerAdministratorRoutes } from './routes/admins.ts';
import { registerDeviceRoutes } from './routes/devices.ts';
import { registerGroupRoutes } from './routes/groups.ts';
import { registerAuditRoutes } from './routes/audit.ts';
import { registerVppRoutes } from './routes/vpp.ts';
import { registerJobRoutes } from './routes/jobs.ts';
import { registerEventRoutes } from './routes/events.ts';
import { registerStatusRoutes } from './routes/status.ts';
import { registerAppRoutes } from './routes/apps.ts';
import { registerEnrollmentLinkRoutes } from './routes/enrollment-links.ts';
import { registerPushCertificateRoutes } from './routes/push-certificate.ts';
import type { PushCertificates } from '../app/push-certificate.ts';
import type { ServerFacts } from './routes/status.ts';
import type { AuthFailureLimiter } from './limits.ts';

export const API_PREFIX = '/api/v1';

/** Audited device actions that are changes worth a `device` event on GET /events. */
const DEVICE_EVENT_OF_AUDIT: Readonly<Record<string, DeviceChange>> = {
  'device.deactivate': 'deactivated',
  'device.move': 'moved',
  'device.update': 'updated',
  'device.wipe': 'wipe_sent',
};

export interface AdminContext {
  store: Store;
  clock: Clock;
  /** Absent only in setups without APNs; commands then wait for the device's next poll. */
  pusher: Pusher;
  commander: Commander;
  /** Writes an audit event for a change made by the caller of `req`. */
  audit(
    req: FastifyRequest,
    action: string,
    objectType: string,
    objectId: string | null,
    details?: unknown,
  ): Promise<void>;
}

export type AdminApp = FastifyInstance<
  RawServerDefault,
  RawRequestDefaultExpression,
  RawReplyDefaultExpression,
  FastifyBaseLogger,
  TypeBoxTypeProvider
>;

declare module 'fastify' {
  interface FastifyRequest {
    adminTokenId?: string;
  }
}

interface OpenApiOperation {
  method: string;
  url: string;
  schema: RouteOptions['schema'];
  authz: AuthzRule | undefined;
}

/** The REST admin API: bearer auth, DESIGN §7 errors, validation, OpenAPI from the route schemas. */
export async function registerAdminApi(
  app: FastifyInstance,
  o: {
    store: Store;
    clock: Clock;
    pusher: Pusher;
    commander: Commander;
    tokens: VppTokens;
    engine: DistributionEngine;
    deviceActions: DeviceActions;
    /** App versions and updates (GET /apps, …); without it those routes are not served. */
    appUpdates?: AppUpdates;
    events?: EventBus;
    /** Facts for GET /status; without them the route is not served. */
    server?: ServerFacts;
    /** HAISHIN_PUBLIC_URL: enrollment links are made of it (decision 0022); without it they are not served. */
    publicUrl?: string;
    /** The push certificate's replacement at run time (decision 0022); without it not served. */
    pushCertificates?: PushCertificates;
    /** Wrong admin tokens per client address (decision 0027); without it not limited. */
    authFailures?: AuthFailureLimiter | null;
  },
): Promise<void> {
  const operations: OpenApiOperation[] = [];
  /** The root group's id, read once: the root is neither moved nor deleted. */
  let rootId: string | undefined;
  const ctx: AdminContext = {
    store: o.store,
    clock: o.clock,
    pusher: o.pusher,
    commander: o.commander,
    audit: async (req, action, objectType, objectId, details) => {
      const at = o.clock.now();
      await o.store.admin.audit({
        actor: req.caller?.admin.id ?? 'unknown',
        actorTokenId: req.caller?.tokenId ?? null,
        source: req.ip,
        action,
        objectType,
        objectId,
        details,
        at,
      });
      // Every device change made through the API is audited after it is stored: the one place to announce it.
      const change = DEVICE_EVENT_OF_AUDIT[action];
      if (change && objectType === 'device' && objectId)
        o.events?.publish({ type: 'device', deviceId: objectId, change, at: at.toISOString() });
    },
  };

  app.get(`${API_PREFIX}/openapi.json`, async () => openApiDocument(operations));

  await app.register(
    async (scope) => {
      scope.addHook('onRoute', (route) => {
        // A route nobody said who may call does not start (decision 0029).
        requireAuthzRule(route);
        const methods = Array.isArray(route.method) ? route.method : [route.method];
        for (const method of methods) {
          if (method === 'HEAD') continue;
          operations.push({
            method: method.toLowerCase(),
            url: route.url,
            schema: route.schema,
            authz: route.config?.authz,
          });
        }
      });
      scope.addHook('onRequest', async (req, reply) => {
        const header = req.headers.authorization;
        const match = header ? /^Bearer\s+(\S+)\s*$/i.exec(header) : null;
        if (!match) throw ApiError.of(401, 'auth.required');
        await o.authFailures?.check(req, reply);
        const caller = await o.store.admin.findToken(match[1]!, o.clock.now());
        if (!caller) {
          await o.authFailures?.failed(req);
          throw ApiError.of(401, 'auth.invalid');
        }
        req.adminTokenId = caller.tokenId;
        req.caller = caller;
        rootId ??= (await o.store.rootGroup())?.id ?? '';
        req.scope = await scopeFor(o.store, rootId, caller.admin.scope_group_id);
      });
      scope.addHook('preValidation', refuseNulCharacters);
      scope.addHook('preValidation', enforceAuthz(o.store));
      scope.addHook('preHandler', enforceAuthz(o.store));
      scope.setErrorHandler((err: unknown, req: FastifyRequest, reply: FastifyReply) =>
        sendError(err, req, reply),
      );
      scope.setNotFoundHandler((req, reply) =>
        sendError(ApiError.of(404, 'route.not_found', { method: req.method, url: req.url }), req, reply),
      );
      const typed = scope.withTypeProvider<TypeBoxTypeProvider>();
      await registerAdministratorRoutes(typed, ctx);
      await registerGroupRoutes(typed, ctx, o.tokens);
      await registerAuditRoutes(typed, ctx);
      await registerDeviceRoutes(typed, ctx, o.deviceActions);
      await registerVppRoutes(typed, ctx, o.tokens, o.engine, o.appUpdates);
      await registerJobRoutes(typed, ctx, o.engine, o.tokens);
      if (o.events) await registerEventRoutes(typed, ctx, o.events);
      if (o.server) await registerStatusRoutes(typed, ctx, o.tokens, o.server);
      if (o.appUpdates) await registerAppRoutes(typed, ctx, o.appUpdates);
      if (o.publicUrl !== undefined) await registerEnrollmentLinkRoutes(typed, ctx, o.publicUrl);
      if (o.pushCertificates) await registerPushCertificateRoutes(typed, ctx, o.pushCertificates);
    },
    { prefix: API_PREFIX },
  );
}

function sendError(err: unknown, req: FastifyRequest, reply: FastifyReply) {
  let apiError: ApiError;
  if (err instanceof ApiError) apiError = err;
  else if (err instanceof Refusal) apiError = ApiError.of(err.status, err.code, err.params);
  else if (isClientError(err) && err.statusCode === 413)
    apiError = ApiError.of(413, 'request.too_large', { limit: req.routeOptions.bodyLimit ?? 0 });
  else if (isValidationError(err)) apiError = ApiError.of(400, 'request.invalid', { detail: err.message });
  else if (isClientError(err)) apiError = ApiError.of(400, 'request.invalid', { detail: err.message });
  else {
    req.log.error({ err }, 'admin API failure');
    apiError = new ApiError(500, 'server.error', {
      en: 'haishin failed to handle the request; the server log has the details.',
      ja: 'haishin でリクエストを処理できませんでした。詳細はサーバーログを確認してください。',
    });
  }
  return reply.code(apiError.status).send(errorBody(apiError, req.headers['accept-language']));
}

function isValidationError(err: unknown): err is { validation: unknown; message: string } {
  return typeof err === 'object' && err !== null && 'validation' in err && 'message' in err;
}

function isClientError(err: unknown): err is { statusCode: number; message: string } {
  return (
    typeof err === 'object' &&
    err !== null &&
    'statusCode' in err &&
    typeof err.statusCode === 'number' &&
    err.statusCode >= 400 &&
    err.statusCode < 500 &&
    'message' in err
  );
}

function openApiDocument(operations: OpenApiOperation[]) {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const op of operations) {
    const path = op.url.replace(/:(\w+)/g, '{$1}');
    const schema = (op.schema ?? {}) as Record<string, unknown>;
    const parameters: unknown[] = [];
    for (const [where, key] of [
      ['path', 'params'],
      ['query', 'querystring'],
    ] as const) {
      const s = schema[key] as { properties?: Record<string, unknown>; required?: string[] } | undefined;
      for (const [name, prop] of Object.entries(s?.properties ?? {})) {
        parameters.push({
          name,
          in: where,
          required: where === 'path' || (s?.required ?? []).includes(name),
          schema: prop,
        });
      }
    }
    const responses: Record<string, unknown> = {};
    for (const [status, body] of Object.entries((schema.response ?? {}) as Record<string, unknown>)) {
      responses[status] = { description: status, content: { 'application/json': { schema: body } } };
    }
    responses['4XX'] = { description: 'error: {"error": {"code", "message", "messages": {"ja", "en"}}}' };
    (paths[path] ??= {})[op.method] = {
      summary: schema.summary,
      description: schema.description,
      tags: schema.tags,
      parameters,
      ...(schema.body
        ? { requestBody: { required: true, content: { 'application/json': { schema: schema.body } } } }
        : {}),
      responses,
      security: [{ adminToken: [] }],
      'x-authz': describeRule(op.authz),
    };
  }
  return {
    openapi: '3.1.0',
    info: { title: 'haishin admin API', version: '1' },
    servers: [{ url: '/' }],
    components: { securitySchemes: { adminToken: { type: 'http', scheme: 'bearer' } } },
    paths,
  };
}

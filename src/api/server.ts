import Fastify from 'fastify';
import type { FastifyInstance } from 'fastify';
import type { Clock } from '../core/clock.ts';
import type { Config } from '../core/config.ts';
import { loadOrCreateDeviceCa } from '../mdm/device-ca.ts';
import { registerAdminApi } from './admin.ts';
import { registerConsole } from './console.ts';
import { registerVppNotify } from './vpp-notify.ts';
import type { Apns } from '../apple/apns/client.ts';
import { DevicePusher } from '../engine/push.ts';
import { VppTokens } from '../engine/vpp-tokens.ts';
import { DEFAULT_TIMINGS, DistributionEngine } from '../engine/engine.ts';
import { EventBus } from '../engine/events.ts';
import type { EngineTimings } from '../engine/engine.ts';
import { AppMetaClient } from '../apple/appmeta/client.ts';
import type { VppTokensOptions } from '../engine/vpp-tokens.ts';
import { randomUUID } from 'node:crypto';
import { EnrollmentProfiles } from '../mdm/enroll.ts';
import type { CertAndKey } from '../mdm/identity/ca.ts';
import { MdmSignatureVerifier } from '../mdm/identity/signature.ts';
import type { MdmListener } from '../mdm/ports.ts';
import { registerMdmRoutes } from '../mdm/routes.ts';
import { MdmService } from '../mdm/service.ts';
import { SecretBox } from '../store/secretbox.ts';
import { Store } from '../store/store.ts';

/** Full asset sync of every token this often, besides ASSET_COUNT notifications (DESIGN §4). */
const TOKEN_SYNC_EVERY_MS = 6 * 3_600_000;

/**
 * Pending connections the kernel may queue for us (capped by net.core.somaxconn). A push to a
 * whole fleet makes thousands of devices connect at once while the event loop is busy; with
 * Node's default of 511 the queue overflowed, SYNs were dropped and devices' requests waited for
 * TCP's retransmission backoff (1, 3, 7, 15, 31 s): healthy iPads of the 1,500-iPad demo hit the
 * session timeout that way.
 */
export const LISTEN_BACKLOG = 4096;

export interface HaishinOptions {
  config: Config;
  clock: Clock;
  /** HAISHIN_SECRET_KEY, already resolved (the CLI generates one into the data dir when unset). */
  secretKey: string;
  /** The push certificate's topic (its subject UID). */
  pushTopic: string;
  /**
   * The push certificate actually loaded for APNs (a PushIdentity fits): GET /api/v1/status reports
   * its expiry. Optional so embedders and tests that only know the topic still start.
   */
  pushCertificate?: { topic: string; notAfter: Date };
  listener?: MdmListener;
  /** The APNs client (real, or pointed at the fake in the demo and tests). */
  apns?: Apns;
  /** Pacing/sleep for the Apps and Books clients (tests speed them up). */
  vppClientOptions?: VppTokensOptions['clientOptions'];
  vppEventTiming?: VppTokensOptions['eventTiming'];
  /** Overrides of the engine's internal timings (tests use milliseconds). */
  engineTimings?: Partial<EngineTimings>;
  /** Engine tick period; 0 disables the timer (tests drive `engine.tick()` themselves). */
  engineTickMs?: number;
  /** How often pending Apps and Books events are checked for a poll (the tracker decides what is due). */
  vppTickMs?: number;
  /** Pino options or false; tests keep it quiet. */
  logger?: boolean | { level: string };
  /** The built admin console (default: dist/web of this checkout); null serves no console at all. */
  consoleDir?: string | null;
}

export interface Haishin {
  app: FastifyInstance;
  store: Store;
  mdm: MdmService;
  deviceCa: CertAndKey;
  profiles: EnrollmentProfiles;
  pusher: DevicePusher | null;
  tokens: VppTokens;
  engine: DistributionEngine;
  /** Job, distribution and device changes of this process (GET /api/v1/events). */
  events: EventBus;
  /** Set when no admin token existed and haishin made one: show it once, it is stored only hashed. */
  generatedAdminToken: string | null;
  /** Listens with a backlog for a fleet (see LISTEN_BACKLOG). */
  listen(host: string, port: number): Promise<void>;
  close(): Promise<void>;
}

/** Wires store, device CA, MDM protocol and HTTP routes — the composition root of the server. */
export async function createHaishin(o: HaishinOptions): Promise<Haishin> {
  const store = await Store.open(o.config.db, o.clock.now());
  const timers: NodeJS.Timeout[] = [];
  try {
    const box = new SecretBox(o.secretKey);
    const deviceCa = await loadOrCreateDeviceCa(store, box, o.clock.now());
    const app = Fastify({
      logger: o.logger ?? false,
      bodyLimit: o.config.maxBodyBytes,
      // Unknown fields are a client mistake worth a 400, not something to drop silently.
      ajv: { customOptions: { removeAdditional: false, coerceTypes: 'array', useDefaults: true } },
    });
    const pusher = o.apns ? new DevicePusher({ store, apns: o.apns, clock: o.clock }) : null;
    // Apple tells MDM servers apart by mdmInfo.id: one stable id per haishin database.
    const instanceId = await store.setSettingIfAbsent('instance.id', randomUUID(), o.clock.now());
    const tokens = new VppTokens({
      store,
      clock: o.clock,
      box,
      vppUrl: o.config.vppUrl,
      publicUrl: o.config.publicUrl,
      mdmInfo: { id: instanceId, name: 'haishin', metadata: o.config.publicUrl },
      appMeta: new AppMetaClient({ baseUrl: o.config.appMetaUrl, clock: o.clock }),
      onError: (err) => app.log.warn({ err }, 'Apps and Books background work failed'),
      ...(o.vppClientOptions ? { clientOptions: o.vppClientOptions } : {}),
      ...(o.vppEventTiming ? { eventTiming: o.vppEventTiming } : {}),
    });
    const events = new EventBus();
    const engine = new DistributionEngine({
      store,
      clock: o.clock,
      tokens,
      pusher,
      events,
      timings: {
        ...DEFAULT_TIMINGS,
        pushTimeoutMs: o.config.timeouts.pushMs,
        requestTimeoutMs: o.config.timeouts.requestMs,
        sessionTimeoutMs: o.config.timeouts.sessionMs,
        offlineAfterMs: o.config.offlineAfterMs,
        unenrolledAfterMs: o.config.unenrolledAfterMs,
        ...o.engineTimings,
      },
    });
    const mdm = new MdmService({
      store: store.mdm,
      verifier: new MdmSignatureVerifier(deviceCa.certPem),
      clock: o.clock,
      maxBodyBytes: o.config.maxBodyBytes,
      listener: combineListeners(engine, o.listener),
    });
    const profiles = new EnrollmentProfiles({
      store,
      ca: deviceCa,
      clock: o.clock,
      publicUrl: o.config.publicUrl,
      topic: o.pushTopic,
      deviceKeyBits: o.config.deviceKeyBits,
      deviceKeyType: o.config.deviceKeyType,
      pkcs12Iterations: o.config.pkcs12Iterations,
    });
    const generatedAdminToken = await ensureAdminToken(store, o.config.adminToken, o.clock.now());
    await registerMdmRoutes(app, { service: mdm, profiles, maxBodyBytes: o.config.maxBodyBytes });
    app.get('/api/health', async () => ({ ok: true }));
    await registerAdminApi(app, {
      store,
      clock: o.clock,
      pusher,
      tokens,
      engine,
      events,
      server: {
        instanceId,
        pushTopic: o.pushTopic,
        pushCertificate: o.pushCertificate
          ? { topic: o.pushCertificate.topic, notAfter: o.pushCertificate.notAfter }
          : null,
        pushEnabled: o.apns !== undefined,
        deviceCaPem: deviceCa.certPem,
      },
    });
    await registerVppNotify(app, tokens);
    if (o.consoleDir !== null) await registerConsole(app, o.consoleDir ? { dir: o.consoleDir } : {});
    const every = (ms: number, what: string, work: () => Promise<unknown>) => {
      const timer = setInterval(() => {
        work().catch((err: unknown) => app.log.error({ err }, `${what} failed`));
      }, ms);
      timer.unref();
      timers.push(timer);
    };
    every(o.vppTickMs ?? 15_000, 'VPP event poll', () => tokens.tick());
    every(60_000, 'VPP token upkeep', () => tokens.maintenance(TOKEN_SYNC_EVERY_MS));
    if (o.engineTickMs !== 0) every(o.engineTickMs ?? 2_000, 'engine tick', () => engine.tick());
    return {
      app,
      store,
      mdm,
      deviceCa,
      profiles,
      pusher,
      tokens,
      engine,
      events,
      generatedAdminToken,
      listen: async (host, port) => {
        await app.listen({ host, port, backlog: LISTEN_BACKLOG });
      },
      close: async () => {
        for (const t of timers) clearInterval(t);
        await app.close();
        await engine.close();
        await store.close();
      },
    };
  } catch (err) {
    for (const t of timers) clearInterval(t);
    await store.close();
    throw err;
  }
}

/** The MDM service has one listener; the engine and an optional observer (tests, demo) share it. */
function combineListeners(...listeners: (MdmListener | undefined)[]): MdmListener {
  const all = listeners.filter((l): l is MdmListener => l !== undefined);
  return {
    onAuthenticate: async (...a) => {
      for (const l of all) await l.onAuthenticate?.(...a);
    },
    onTokenUpdate: async (...a) => {
      for (const l of all) await l.onTokenUpdate?.(...a);
    },
    onCheckOut: async (...a) => {
      for (const l of all) await l.onCheckOut?.(...a);
    },
    onCommandReport: async (...a) => {
      for (const l of all) await l.onCommandReport?.(...a);
    },
    onCommandSent: async (...a) => {
      for (const l of all) await l.onCommandSent?.(...a);
    },
  };
}

/** HAISHIN_ADMIN_TOKEN is registered (hashed); without it, a first token is generated once. */
async function ensureAdminToken(store: Store, configured: string | null, at: Date): Promise<string | null> {
  if (configured) {
    await store.admin.ensureToken(configured, 'HAISHIN_ADMIN_TOKEN', at);
    return null;
  }
  if ((await store.admin.tokenCount()) > 0) return null;
  return store.admin.createToken('first admin', at);
}

import Fastify from 'fastify';
import type { FastifyInstance } from 'fastify';
import type { Clock } from '../core/clock.ts';
import type { Config } from '../core/config.ts';
import { loadDeviceCaSet } from '../mdm/device-ca.ts';
import { registerAdminApi } from '../api/admin.ts';
import { answerFrameworkError } from '../api/errors.ts';
import { Commander, sessionGraceFor } from '../engine/commander.ts';
import { LeasedWork, leaseTtlFor } from './leases.ts';
import { registerLimits } from '../api/limits.ts';
import type { LeasedWorkName } from './leases.ts';
import { linkProcesses } from './event-relay.ts';
import type { ProcessLink } from './event-relay.ts';
import { DeviceActions } from '../engine/device-actions.ts';
import { registerConsole } from '../api/console.ts';
import { registerVppNotify } from '../api/vpp-notify.ts';
import { registerOpsRoutes } from '../api/ops.ts';
import { createMetrics } from './metrics.ts';
import type { ApnsClient, RetryPolicy } from '../apple/apns/client.ts';
import type { PushIdentity } from '../apple/apns/pushcert.ts';
import { ConfigError } from '../core/config.ts';
import { apnsFromConfig, pushIdentityFromConfig } from './apple.ts';
import { PushCertificates } from './push-certificate.ts';
import { resolveSecretKey } from './secret.ts';
import { tlsFromConfig } from './tls.ts';
import { DevicePusher } from '../engine/push.ts';
import type { Pusher } from '../engine/push.ts';
import { VppTokens } from '../engine/vpp-tokens.ts';
import { DEFAULT_TIMINGS, DistributionEngine } from '../engine/engine.ts';
import { EventBus } from '../engine/events.ts';
import type { EngineTimings } from '../engine/engine.ts';
import { AppMetaClient } from '../apple/appmeta/client.ts';
import { AppUpdates } from '../engine/app-updates.ts';
import type { VppTokensOptions } from '../engine/vpp-tokens.ts';
import { createHash, randomUUID, X509Certificate } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { EnrollmentProfiles } from '../mdm/enroll.ts';
import { IdentityRenewal } from '../engine/identity-renewal.ts';
import type { CertAndKey } from '../mdm/identity/ca.ts';
import { MdmSignatureVerifier } from '../mdm/identity/signature.ts';
import { SignatureThreads } from '../mdm/identity/signature-threads.ts';
import type { MdmListener } from '../mdm/ports.ts';
import { registerMdmRoutes } from '../mdm/routes.ts';
import { EnrollmentGate } from '../mdm/enrollment-gate.ts';
import { ScepServer } from '../mdm/scep/server.ts';
import { registerScepRoutes } from '../mdm/scep/routes.ts';
import { loadOrCreateScepRa } from '../mdm/scep/ra.ts';
import { MdmService } from '../mdm/service.ts';
import type { SignatureVerifier } from '../mdm/service.ts';
import { SecretBox } from '../store/secretbox.ts';
import { Store } from '../store/store.ts';
import type { CompactionResult } from '../store/queue-compaction.ts';

/** Full asset sync of every token this often, besides ASSET_COUNT notifications (DESIGN §4). */
const TOKEN_SYNC_EVERY_MS = 6 * 3_600_000;
/** The app look-up asked for new versions this often (decision 0018), besides after a sync. */
const APP_UPDATE_CHECK_EVERY_MS = 6 * 3_600_000;

/** How often the queue's history is compacted: hourly, or four times per retention if shorter. */
export function queueCompactionPeriodMs(retentionMs: number): number {
  return Math.min(3_600_000, Math.max(1_000, Math.round(retentionMs / 4)));
}

/**
 * Pending connections the kernel may queue for us (capped by net.core.somaxconn). A push to a
 * whole fleet makes thousands of devices connect at once while the event loop is busy; with
 * Node's default of 511 the queue overflowed, SYNs were dropped and devices' requests waited for
 * TCP's retransmission backoff (1, 3, 7, 15, 31 s): healthy iPads of the 1,500-iPad demo hit the
 * session timeout that way.
 */
export const LISTEN_BACKLOG = 4096;

export interface HaishinOptions {
  /** Everything from the environment (HAISHIN_*): database, Apple's services, push certificate. */
  config: Config;
  clock: Clock;
  /** An observer of the MDM protocol besides the engine (the demo's progress, tests). */
  listener?: MdmListener;
  /** Faster clocks for the demo and tests; production runs with the defaults. */
  tuning?: Tuning;
  /** Pino options or false; tests keep it quiet. */
  logger?: boolean | { level: string };
  /** The built admin console (default: dist/web of this checkout); null serves no console at all. */
  consoleDir?: string | null;
}

/** Internal periods that production leaves alone and the demo and tests shorten. */
export interface Tuning {
  /** Engine tick period; 0 disables the timer (tests drive `engine.tick()` themselves). */
  engineTickMs?: number;
  /** How often pending Apps and Books events are checked for a poll (the tracker decides what is due). */
  vppTickMs?: number;
  /** Overrides of the engine's internal timings (tests use milliseconds). */
  engineTimings?: Partial<EngineTimings>;
  /** Pacing/sleep for the Apps and Books clients. */
  vppClientOptions?: VppTokensOptions['clientOptions'];
  vppEventTiming?: VppTokensOptions['eventTiming'];
  /** Retries of each push. */
  apnsRetry?: RetryPolicy;
  /** Period of the queue compaction (default {@link queueCompactionPeriodMs}); 0 disables the timer. */
  queueCompactionMs?: number;
}

export interface Haishin {
  app: FastifyInstance;
  config: Config;
  store: Store;
  mdm: MdmService;
  deviceCa: CertAndKey;
  profiles: EnrollmentProfiles;
  /**
   * The push certificate in use (its topic goes into enrollment profiles): HAISHIN_APNS_CERT's, or
   * an uploaded one that expires later (decision 0022).
   */
  readonly push: PushIdentity;
  /** Replaces the push certificate at run time; expiry warnings (decision 0022). */
  pushCertificates: PushCertificates;
  apns: ApnsClient;
  /** The DevicePusher, counted and logged per batch (src/app/metrics.ts). */
  pusher: Pusher;
  /** Queues commands and wakes devices for the engine, the device actions and the API. */
  commander: Commander;
  /** The timed work this process holds the lease of (several processes on PostgreSQL, decision 0019). */
  leased: LeasedWork;
  /** Renews device identities before they expire (decision 0023); its pass runs under a lease. */
  identityRenewal: IdentityRenewal;
  tokens: VppTokens;
  engine: DistributionEngine;
  /** App versions, update distributions and "keep apps up to date" (decision 0018). */
  appUpdates: AppUpdates;
  /**
   * Job, distribution and device changes (GET /api/v1/events): this process's, and on PostgreSQL
   * those of the other processes too (decision 0020).
   */
  events: EventBus;
  /** Set when no admin token existed and haishin made one: show it once, it is stored only hashed. */
  generatedAdminToken: string | null;
  /**
   * One compaction of the queue's history with the configured retention (the timer runs it too);
   * a call while one runs shares it.
   */
  compactQueue(): Promise<CompactionResult>;
  /** Listens on HAISHIN_LISTEN with a backlog for a fleet (see LISTEN_BACKLOG). */
  listen(): Promise<void>;
  close(): Promise<void>;
}

/**
 * The composition root: from configuration alone it builds the store, the device CA, the Apple
 * clients (APNs with the push certificate, Apps and Books, app look-up), the engine and the HTTP
 * routes. `haishin serve`, the demo and the tests all come through here; the demo and the tests
 * differ only by the URLs they point at the fakes and by {@link Tuning}.
 */
export async function createHaishin(o: HaishinOptions): Promise<Haishin> {
  const { config } = o;
  // Configuration that cannot work stops the start before anything is opened.
  // Against the wall clock, not o.clock: APNs judges the certificate in real time (tests run
  // servers on manual clocks set in the past or future).
  // An expired file is judged once the database says whether a renewed certificate was uploaded.
  const push = pushIdentityFromConfig(config, new Date(), { allowExpired: true });
  const secretKey = resolveSecretKey(config.secretKey, config.dataDir).key;
  const tls = tlsFromConfig(config, new Date());
  const apns = apnsFromConfig(config, push, o.clock, o.tuning?.apnsRetry);
  let store: Store;
  try {
    store = await Store.open(config.db, o.clock.now());
  } catch (err) {
    await apns.close();
    throw new ConfigError(`HAISHIN_DB=${redactUrl(config.db)}: ${(err as Error).message}`);
  }
  const timers: NodeJS.Timeout[] = [];
  let signatures: ClosableVerifier | undefined;
  let leased!: LeasedWork;
  // Several processes on PostgreSQL: events and wake-ups across them (decision 0020).
  let link: ProcessLink | null = null;
  try {
    const box = new SecretBox(secretKey);
    const pushCertificates = await PushCertificates.open({
      store,
      box,
      apns,
      configured: push,
      now: new Date(),
    });
    // The CA that issues identities, and the earlier ones that still verify devices (decision 0023).
    const deviceCas = await loadDeviceCaSet(store, box, o.clock.now());
    const deviceCa = deviceCas.issuing;
    const fastifyOptions = {
      logger: o.logger ?? false,
      // HAISHIN_TRUST_PROXY: the client address of a request through these proxies (decision 0027).
      trustProxy: config.limits.trustProxy.length > 0 ? config.limits.trustProxy : false,
      bodyLimit: config.maxBodyBytes,
      // Unknown fields are a client mistake worth a 400, not something to drop silently.
      ajv: { customOptions: { removeAdditional: false, coerceTypes: 'array' as const, useDefaults: true } },
      // A malformed URL is refused before routing: a 400 in the API's error shape (decision 0028).
      frameworkErrors: answerFrameworkError,
    };
    // With HAISHIN_TLS_* the instance is typed over https.Server; routes, hooks and inject() are the
    // same for both, so the rest of haishin keeps the plain FastifyInstance type.
    const app = tls
      ? (Fastify({ ...fastifyOptions, https: tls }) as unknown as FastifyInstance)
      : Fastify(fastifyOptions);
    // No answer leaves before what its request wrote is committed (SQLite's group commit, db.ts):
    // a device must not act on an answer the server could still lose.
    // Callback style: every request passes here, most with nothing left to commit.
    app.addHook('onSend', (_request, _reply, payload, done) => {
      store.committed().then(() => done(null, payload), done);
    });
    // Before any route: the limits attach to the routes as they are added (decision 0027).
    const limits = await registerLimits(app, {
      limits: config.limits,
      maxBodyBytes: config.maxBodyBytes,
      publicUrl: config.publicUrl,
    });
    const metrics = createMetrics({
      log: app.log,
      queueDepth: () => store.queueDepth(),
      diagnosisQueue: () => store.diagnosisQueue.depth(o.clock.now()),
      leasesHeld: () => leased.held,
      // Only on PostgreSQL: on SQLite there is no channel, and no series that would read as "down".
      ...(store.db.dialect === 'postgres'
        ? { eventsChannel: () => (link ? { connected: link.channel.connected, ...link.relay.stats } : null) }
        : {}),
    });
    const pusher = metrics.observePusher(new DevicePusher({ store, apns, clock: o.clock }));
    // Apple tells MDM servers apart by mdmInfo.id: one stable id per haishin database.
    leased = new LeasedWork({ leases: store.leases, clock: o.clock });
    const instanceId = await store.setSettingIfAbsent('instance.id', randomUUID(), o.clock.now());
    // One look-up client (and cache) for the token syncs and the update checks.
    const appMeta = new AppMetaClient({ baseUrl: config.appMetaUrl, clock: o.clock });
    const tokens = new VppTokens({
      store,
      clock: o.clock,
      box,
      vppUrl: config.vppUrl,
      publicUrl: config.publicUrl,
      mdmInfo: { id: instanceId, name: 'haishin', metadata: config.publicUrl },
      appMeta,
      onError: (err) => app.log.warn({ err }, 'Apps and Books background work failed'),
      clientOptions: {
        ...o.tuning?.vppClientOptions,
        onCall: (call) => metrics.vppCall(call),
        // Several processes may call Apple for one location: they pace together (decision 0021).
        ...(store.db.dialect === 'postgres' ? { pacingState: store.vppPacing } : {}),
      },
      ...(o.tuning?.vppEventTiming ? { eventTiming: o.tuning.vppEventTiming } : {}),
    });
    const events = new EventBus();
    metrics.watch(events);
    const commander = new Commander({
      queue: store.mdm,
      pusher,
      sessionGraceMs: sessionGraceFor(o.tuning?.engineTimings?.sessionTimeoutMs ?? config.timeouts.sessionMs),
    });
    const engine = new DistributionEngine({
      store,
      clock: o.clock,
      tokens,
      pusher,
      commander,
      events,
      timings: {
        ...DEFAULT_TIMINGS,
        verifyEveryMs: config.verifyEveryMs,
        installsPerDevice: config.installsPerDevice,
        notNowRetryMs: config.notNowRetryMs,
        silentRepushMs: config.silentRepushMs,
        pushTimeoutMs: config.timeouts.pushMs,
        requestTimeoutMs: config.timeouts.requestMs,
        sessionTimeoutMs: config.timeouts.sessionMs,
        offlineAfterMs: config.offlineAfterMs,
        unenrolledAfterMs: config.unenrolledAfterMs,
        ...o.tuning?.engineTimings,
      },
    });
    const deviceActions = new DeviceActions({ store, clock: o.clock, tokens, engine, commander });
    const appUpdates = new AppUpdates({ store, clock: o.clock, engine, appMeta });
    signatures = signatureVerifier(deviceCas.verifying, config.signatureThreads);
    const mdm = new MdmService({
      store: store.mdm,
      verifier: signatures,
      clock: o.clock,
      maxBodyBytes: config.maxBodyBytes,
      // Answers to identity renewals (decision 0023); `renewal` is built with the profiles below.
      listener: combineListeners(engine, { onCommandReport: (r) => renewal.onCommandReport(r) }, o.listener),
    });
    const profiles = new EnrollmentProfiles({
      store,
      ca: deviceCa,
      clock: o.clock,
      publicUrl: config.publicUrl,
      // A function: a push certificate replaced at run time (decision 0022) is read at each profile.
      topic: () => pushCertificates.current.topic,
      deviceKeyBits: config.deviceKeyBits,
      deviceKeyType: config.deviceKeyType,
      pkcs12Iterations: config.pkcs12Iterations,
      identityValidityMs: config.identity.validityMs,
      // HAISHIN_DEVICE_IDENTITY=scep: the device makes its key and asks /scep (decision 0024).
      ...(config.deviceIdentity.source === 'scep'
        ? {
            scep: {
              url: `${config.publicUrl}/scep`,
              challenges: store.scepChallenges,
              challengeTtlMs: config.deviceIdentity.challengeTtlMs,
              renewalChallengeTtlMs: config.identity.renewBeforeMs,
              caFingerprintSha1: createHash('sha1')
                .update(new X509Certificate(deviceCa.certPem).raw)
                .digest(),
              keySize: [1024, 2048, 4096].includes(config.deviceKeyBits) ? config.deviceKeyBits : 2048,
            },
          }
        : {}),
    });
    const renewal = new IdentityRenewal({
      identities: store.identities,
      profiles,
      commander,
      clock: o.clock,
      renewBeforeMs: config.identity.renewBeforeMs,
      onError: (err, deviceId) => app.log.warn({ err, deviceId }, 'device identity renewal not started'),
      onAnswer: (deviceId, outcome) =>
        app.log[outcome === 'adopted' ? 'info' : 'warn'](
          { deviceId, outcome },
          'device identity renewal answered',
        ),
    });
    const generatedAdminToken = await ensureAdminToken(store, config.adminToken, o.clock.now());
    await registerMdmRoutes(app, {
      service: metrics.observeMdm(mdm),
      profiles,
      gate: new EnrollmentGate({
        links: store.enrollmentLinks,
        clock: o.clock,
        openGroups: config.enrollOpenGroups,
      }),
      maxBodyBytes: config.maxBodyBytes,
    });
    if (config.deviceIdentity.source === 'scep')
      await registerScepRoutes(
        app,
        new ScepServer({
          ca: deviceCa,
          ra: await loadOrCreateScepRa(store, box, deviceCa, o.clock.now()),
          clock: o.clock,
          challenges: store.scepChallenges,
          identities: store,
          renewals: store.identities,
          identityValidityMs: config.identity.validityMs,
          minRsaBits: Math.min(2048, config.deviceKeyBits),
        }),
      );
    await registerOpsRoutes(app, { metrics, metricsToken: config.metricsToken, ping: () => store.ping() });
    await registerAdminApi(app, {
      store,
      clock: o.clock,
      pusher,
      commander,
      tokens,
      engine,
      deviceActions,
      appUpdates,
      events,
      server: {
        instanceId,
        // Getters: the certificate may be replaced at run time (decision 0022).
        pushCertificate: {
          get topic() {
            return pushCertificates.current.topic;
          },
          get notAfter() {
            return pushCertificates.current.notAfter;
          },
        },
        deviceCaPem: deviceCa.certPem,
        verifyingDeviceCas: deviceCas.verifying.length,
        identityRenewBeforeMs: config.identity.renewBeforeMs,
      },
      publicUrl: config.publicUrl,
      pushCertificates,
      authFailures: limits.authFailures,
    });
    // On PostgreSQL several processes may run: the one holding the Apps and Books poll follows the
    // events; the others keep the notifications they receive for it (decision 0019).
    const shared = store.db.dialect === 'postgres';
    await registerVppNotify(app, tokens, {
      direct: () => !shared || leased.held.includes('VPP event poll'),
      kept: () => link?.wake('VPP event poll'),
    });
    if (o.consoleDir !== null) await registerConsole(app, o.consoleDir ? { dir: o.consoleDir } : {});
    // Each timed work runs under its lease: with several processes on one PostgreSQL database, one
    // of them does it (decision 0019).
    const runs = new Map<string, () => Promise<unknown>>();
    const every = (ms: number, what: LeasedWorkName, work: () => Promise<unknown>, atStart = false) => {
      const ttl = leaseTtlFor(ms);
      runs.set(what, () => leased.run(what, ttl, work));
      const run = () => {
        leased.run(what, ttl, work).catch((err: unknown) => app.log.error({ err }, `${what} failed`));
      };
      const timer = setInterval(run, ms);
      timer.unref();
      timers.push(timer);
      if (atStart) {
        const first = setTimeout(run, 0);
        first.unref();
        timers.push(first);
      }
    };
    // At start too: the process that follows the Apps and Books events is known at once, so
    // notifications are applied from the first one (decision 0019).
    every(o.tuning?.vppTickMs ?? 15_000, 'VPP event poll', () => tokens.tick({ shared }), true);
    every(60_000, 'VPP token upkeep', () => tokens.maintenance(TOKEN_SYNC_EVERY_MS));
    every(60_000, 'app update check', () => appUpdates.maintenance(APP_UPDATE_CHECK_EVERY_MS));
    // Every process, not under a lease: each follows a certificate another one uploaded; the audit
    // warning is written once whoever gets there first (decision 0022).
    const pushUpkeep = () => {
      pushCertificates
        .refresh(new Date())
        .then(() => pushCertificates.warnings(o.clock.now()))
        .catch((err: unknown) => app.log.error({ err }, 'push certificate upkeep failed'));
    };
    for (const timer of [setInterval(pushUpkeep, 60_000), setTimeout(pushUpkeep, 0)]) {
      timer.unref();
      timers.push(timer);
    }
    const engineTickMs = o.tuning?.engineTickMs ?? 2_000;
    if (engineTickMs !== 0) every(engineTickMs, 'engine tick', () => engine.tick());
    let compacting: Promise<CompactionResult> | null = null;
    const compactQueue = () =>
      (compacting ??= store
        .compactQueue({
          before: new Date(o.clock.now().getTime() - config.queue.retentionMs),
          keepMessagesPerDevice: config.queue.keepMessagesPerDevice,
        })
        .then(async (r) => {
          if (r.messages + r.results + r.commands > 0)
            app.log.info({ ...r, ms: Math.round(r.ms) }, 'queue history compacted');
          // SCEP challenges expired longer ago than the retention go too (decision 0024).
          await store.scepChallenges.purgeExpired(
            new Date(o.clock.now().getTime() - config.queue.retentionMs),
          );
          return r;
        })
        .finally(() => {
          compacting = null;
        }));
    const compactionMs = o.tuning?.queueCompactionMs ?? queueCompactionPeriodMs(config.queue.retentionMs);
    if (compactionMs !== 0) every(compactionMs, 'queue compaction', compactQueue);
    // At start too: a server restarted more often than the period would otherwise never renew.
    every(
      config.identity.renewEveryMs,
      'identity renewal',
      () =>
        renewal.pass().then((r) => {
          if (r.due > 0) app.log.info(r, 'device identity renewal pass');
        }),
      true,
    );
    if (shared)
      link = await linkProcesses({
        url: config.db,
        db: store.db.kysely,
        bus: events,
        tickWorkIn: (event) => engine.changedElsewhere(event),
        held: () => leased.held,
        run: (work) => runs.get(work)?.() ?? Promise.resolve(),
        log: app.log,
      });
    return {
      app,
      config,
      store,
      mdm,
      deviceCa,
      profiles,
      get push() {
        return pushCertificates.current;
      },
      pushCertificates,
      apns,
      pusher,
      commander,
      tokens,
      engine,
      appUpdates,
      events,
      generatedAdminToken,
      compactQueue,
      leased,
      identityRenewal: renewal,
      listen: async () => {
        const { host, port } = config.listen;
        try {
          await app.listen({ host, port, backlog: LISTEN_BACKLOG });
        } catch (err) {
          const code = (err as { code?: string }).code;
          if (code === 'EADDRINUSE' || code === 'EACCES' || code === 'EADDRNOTAVAIL')
            throw new ConfigError(
              `HAISHIN_LISTEN=${host}:${port}: ${code === 'EADDRINUSE' ? 'the port is already in use (another haishin or another server?)' : code === 'EACCES' ? 'not allowed to listen there (ports below 1024 need privileges)' : 'no such address on this machine'}`,
            );
          throw err;
        }
      },
      close: async () => {
        for (const t of timers) clearInterval(t);
        link?.stopWaking();
        await app.close();
        await signatures?.close();
        await engine.close();
        // Given up at once: another process takes the timed work over without waiting for expiry.
        const held = leased.held;
        await leased.releaseAll().catch(() => {});
        await link?.close(held).catch(() => {});
        await apns.close();
        await compacting?.catch(() => {});
        await store.close();
      },
    };
  } catch (err) {
    for (const t of timers) clearInterval(t);
    await signatures?.close();
    await link?.close([]).catch(() => {});
    await apns.close();
    await store.close();
    throw err;
  }
}

/** A database URL for messages: the password never goes to a log or a terminal. */
export function redactUrl(url: string): string {
  return url.replace(/^(postgres(?:ql)?:\/\/[^:/@]+):[^@]*@/, '$1:***@');
}

/** The MDM service has one listener; the engine and an optional observer (tests, demo) share it. */
type ClosableVerifier = SignatureVerifier & { close(): Promise<void> };

/**
 * HAISHIN_SIGNATURE_THREADS (decision 0030): worker threads checking signatures in batches, or
 * (0) the event loop with only the public-key operation in libuv's thread pool.
 */
function signatureVerifier(caPems: readonly string[], threads: number | 'auto'): ClosableVerifier {
  const count = threads === 'auto' ? Math.min(4, Math.max(1, availableParallelism() - 1)) : threads;
  if (count > 0) return new SignatureThreads(caPems, { threads: count });
  const verifier = new MdmSignatureVerifier(caPems);
  return { verify: (body, header, now) => verifier.verifyAsync(body, header, now), close: async () => {} };
}

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

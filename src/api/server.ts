import Fastify from 'fastify';
import type { FastifyInstance } from 'fastify';
import type { Clock } from '../core/clock.ts';
import type { Config } from '../core/config.ts';
import { loadOrCreateDeviceCa } from '../mdm/device-ca.ts';
import { registerAdminApi } from './admin.ts';
import { registerVppNotify } from './vpp-notify.ts';
import type { Apns } from '../apple/apns/client.ts';
import { DevicePusher } from '../engine/push.ts';
import { VppTokens } from '../engine/vpp-tokens.ts';
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

export interface HaishinOptions {
  config: Config;
  clock: Clock;
  /** HAISHIN_SECRET_KEY, already resolved (the CLI generates one into the data dir when unset). */
  secretKey: string;
  /** The push certificate's topic (its subject UID). */
  pushTopic: string;
  listener?: MdmListener;
  /** The APNs client (real, or pointed at the fake in the demo and tests). */
  apns?: Apns;
  /** Pacing/sleep for the Apps and Books clients (tests speed them up). */
  vppClientOptions?: VppTokensOptions['clientOptions'];
  vppEventTiming?: VppTokensOptions['eventTiming'];
  /** How often pending Apps and Books events are checked for a poll (the tracker decides what is due). */
  vppTickMs?: number;
  /** Pino options or false; tests keep it quiet. */
  logger?: boolean | { level: string };
}

export interface Haishin {
  app: FastifyInstance;
  store: Store;
  mdm: MdmService;
  deviceCa: CertAndKey;
  profiles: EnrollmentProfiles;
  pusher: DevicePusher | null;
  tokens: VppTokens;
  /** Set when no admin token existed and haishin made one: show it once, it is stored only hashed. */
  generatedAdminToken: string | null;
  close(): Promise<void>;
}

/** Wires store, device CA, MDM protocol and HTTP routes — the composition root of the server. */
export async function createHaishin(o: HaishinOptions): Promise<Haishin> {
  const store = await Store.open(o.config.db, o.clock.now());
  try {
    const box = new SecretBox(o.secretKey);
    const deviceCa = await loadOrCreateDeviceCa(store, box, o.clock.now());
    const mdm = new MdmService({
      store: store.mdm,
      verifier: new MdmSignatureVerifier(deviceCa.certPem),
      clock: o.clock,
      maxBodyBytes: o.config.maxBodyBytes,
      ...(o.listener ? { listener: o.listener } : {}),
    });
    const profiles = new EnrollmentProfiles({
      store,
      ca: deviceCa,
      clock: o.clock,
      publicUrl: o.config.publicUrl,
      topic: o.pushTopic,
      deviceKeyBits: o.config.deviceKeyBits,
    });
    const generatedAdminToken = await ensureAdminToken(store, o.config.adminToken, o.clock.now());
    const app = Fastify({
      logger: o.logger ?? false,
      bodyLimit: o.config.maxBodyBytes,
      // Unknown fields are a client mistake worth a 400, not something to drop silently.
      ajv: { customOptions: { removeAdditional: false, coerceTypes: 'array', useDefaults: true } },
    });
    await registerMdmRoutes(app, { service: mdm, profiles, maxBodyBytes: o.config.maxBodyBytes });
    app.get('/api/health', async () => ({ ok: true }));
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
      ...(o.vppClientOptions ? { clientOptions: o.vppClientOptions } : {}),
      ...(o.vppEventTiming ? { eventTiming: o.vppEventTiming } : {}),
    });
    await registerAdminApi(app, { store, clock: o.clock, pusher, tokens });
    await registerVppNotify(app, tokens);
    const vppTimer = setInterval(() => {
      tokens.tick().catch((err: unknown) => app.log.error({ err }, 'VPP event poll failed'));
    }, o.vppTickMs ?? 15_000);
    vppTimer.unref();
    const upkeepTimer = setInterval(() => {
      tokens.maintenance(TOKEN_SYNC_EVERY_MS).catch((err: unknown) => app.log.error({ err }, 'VPP token upkeep failed'));
    }, 60_000);
    upkeepTimer.unref();
    return {
      app,
      store,
      mdm,
      deviceCa,
      profiles,
      pusher,
      tokens,
      generatedAdminToken,
      close: async () => {
        clearInterval(vppTimer);
        clearInterval(upkeepTimer);
        await app.close();
        await store.close();
      },
    };
  } catch (err) {
    await store.close();
    throw err;
  }
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

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TERMINAL_STATUSES } from '../../src/core/jobs.ts';
import { verdictOfReason } from '../../src/diagnosis/index.ts';
import type { EngineTimings } from '../../src/engine/engine.ts';
import type { FakeApns } from '../../src/sim/apns/server.ts';
import type { FakeAppMeta } from '../../src/sim/appmeta/server.ts';
import { startFakes } from '../../src/sim/fakes.ts';
import type { Fakes } from '../../src/sim/fakes.ts';
import { SimDevice } from '../../src/sim/device/device.ts';
import type { SimDeviceSpec } from '../../src/sim/device/device.ts';
import { SimFleet } from '../../src/sim/fleet.ts';
import { FakeVppService } from '../../src/sim/vpp/server.ts';
import type { FakeAssetSeed } from '../../src/sim/vpp/server.ts';
import { startTestServer } from './server.ts';
import type { TestServer } from './server.ts';

export const ADMIN = 'test-admin-token-world-0123456789';

export interface CatalogApp {
  adamId: string;
  name: string;
  bundleId: string;
  sizeBytes: number;
  licences: number;
  minimumOsVersion?: string;
  /** What the look-up says (default 4+). */
  contentRating?: '4+' | '9+' | '12+' | '17+';
  /** More of the fake Apps and Books asset: `deviceAssignable: false`, `refuseWith: 9624`, … */
  asset?: Omit<FakeAssetSeed, 'adamId' | 'total'>;
}

/** Statuses a job ends in without success: each must carry a diagnosis (issue 13). */
const FAILED_TERMINAL = [...TERMINAL_STATUSES].filter((s) => s !== 'success');

/**
 * The whole simulated world over real sockets: haishin, fake APNs (HTTP/2 + TLS), fake Apps
 * and Books API, fake app look-up, and a fleet of simulated iPads woken by pushes.
 */
export class World {
  readonly fleet = new SimFleet();
  fakes!: Fakes;
  /** The push certificate the server was started with (what GET /status reports). */
  pushNotAfter!: Date;
  server!: TestServer;
  readonly catalog = new Map<
    number,
    { bundleId: string; name: string; version: string; sizeBytes: number; minimumOsVersion?: string }
  >();
  #dir = '';

  get vpp(): FakeVppService {
    return this.fakes.vpp;
  }

  get appMeta(): FakeAppMeta {
    return this.fakes.appMeta;
  }

  get apnsFake(): FakeApns {
    return this.fakes.apns;
  }

  /** `engineTimings` override the world's own (fast) ones, e.g. a longer transient backoff. */
  static async start(
    apps: CatalogApp[],
    env: Record<string, string> = {},
    engineTimings: Partial<EngineTimings> = {},
  ): Promise<World> {
    const w = new World();
    for (const app of apps) {
      w.catalog.set(Number(app.adamId), {
        bundleId: app.bundleId,
        name: app.name,
        version: '1.0',
        sizeBytes: app.sizeBytes,
        minimumOsVersion: app.minimumOsVersion ?? '15.0',
      });
    }
    w.#dir = mkdtempSync(join(tmpdir(), 'haishin-world-'));
    w.fakes = await startFakes({
      dir: w.#dir,
      vpp: { eventDelayMs: 10 },
      apps: apps.map((app) => ({
        adamId: app.adamId,
        name: app.name,
        bundleId: app.bundleId,
        sizeBytes: app.sizeBytes,
        minimumOsVersion: app.minimumOsVersion ?? '15.0',
        contentRating: app.contentRating ?? '4+',
        version: '1.0',
      })),
      onPush: (token) => void w.fleet.wake(token),
    });
    w.pushNotAfter = w.fakes.push.notAfter;
    w.server = await startTestServer({
      env: { HAISHIN_ADMIN_TOKEN: ADMIN, ...w.fakes.env, ...env },
      tuning: {
        apnsRetry: { attempts: 2, baseMs: 10, capMs: 20 },
        vppClientOptions: { pacing: false },
        engineTickMs: 25,
        vppTickMs: 50,
        engineTimings: {
          transientBackoffMs: 100,
          notNowRetryMs: 60_000,
          verifyEveryMs: 60_000,
          ...engineTimings,
        },
      },
    });
    return w;
  }

  /**
   * The developer releases `version` of an app: the look-up answers it and the simulated App Store
   * installs it from now on (an iPad that manages the app gets it with the next InstallApplication).
   */
  publishVersion(adamId: string, version: string, changes: { minimumOsVersion?: string } = {}): void {
    this.appMeta.publishVersion(adamId, version, changes);
    const app = this.catalog.get(Number(adamId));
    if (!app) throw new Error(`publishVersion: ${adamId} is not in the world's catalogue`);
    this.catalog.set(Number(adamId), { ...app, ...changes, version });
  }

  async api<T = Record<string, unknown>>(
    method: string,
    path: string,
    body?: unknown,
  ): Promise<{ status: number; body: T }> {
    const response = await fetch(`${this.server.baseUrl}/api/v1${path}`, {
      method,
      headers: {
        authorization: `Bearer ${ADMIN}`,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await response.text();
    return { status: response.status, body: (text ? JSON.parse(text) : null) as T };
  }

  async group(name: string, parentId: string = this.server.rootGroupId): Promise<string> {
    return (await this.api<{ id: string }>('POST', '/groups', { name, parentId })).body.id;
  }

  /** A token with licences for the catalogue, registered to `groupId` and set to auto-assign there. */
  async token(groupId: string, apps: CatalogApp[], name = 'main'): Promise<{ id: string; sToken: string }> {
    const sToken = FakeVppService.tokenFile(
      `world-${name}`,
      '教育委員会',
      new Date(Date.now() + 300 * 86_400_000),
    );
    this.vpp.addToken({ sToken, orgName: '教育委員会', locationName: name });
    for (const app of apps)
      this.vpp.addAsset(sToken, { ...app.asset, adamId: app.adamId, total: app.licences });
    const res = await this.api<{ id: string }>('POST', '/vpp-tokens', { groupId, sToken });
    if (res.status !== 201) throw new Error(`token registration failed: ${JSON.stringify(res.body)}`);
    await this.api('PUT', `/groups/${groupId}/auto-assign-token`, { tokenId: res.body.id });
    return { id: res.body.id, sToken };
  }

  /** A school of its own with a token (auto-assign set there) and `count` iPads. */
  async school(
    prefix: string,
    apps: CatalogApp[],
    spec: (i: number) => SimDeviceSpec = () => ({}),
    count = 1,
  ): Promise<{ group: string; token: { id: string; sToken: string }; devices: SimDevice[] }> {
    const group = await this.group(`${prefix} 学校`);
    const token = await this.token(group, apps, prefix);
    const devices = await this.devices(count, [group], spec, prefix);
    return { group, token, devices };
  }

  async devices(
    count: number,
    groupIds: string[],
    spec: (i: number) => SimDeviceSpec = () => ({}),
    prefix = 'W',
  ): Promise<SimDevice[]> {
    const created: SimDevice[] = [];
    for (let i = 0; i < count; i++) {
      created.push(
        this.fleet.add(
          new SimDevice({
            spec: { serialNumber: `${prefix}${String(i).padStart(10, '0')}`, ...spec(i) },
            catalog: this.catalog,
          }),
        ),
      );
    }
    const { mapLimit } = await import('../../src/sim/fleet.ts');
    await mapLimit(created, 16, (d, i) => d.enroll(this.server.enrollUrl(groupIds[i % groupIds.length])));
    return created;
  }

  /** Waits (bounded) until every job of the distribution is terminal; returns the counts. */
  async settle(distributionId: string, timeoutMs = 60_000): Promise<Record<string, number>> {
    const deadline = Date.now() + timeoutMs;
    const terminal: ReadonlySet<string> = TERMINAL_STATUSES;
    for (;;) {
      const { body } = await this.api<{ counts: Record<string, number> }>(
        'GET',
        `/distributions/${distributionId}`,
      );
      const open = Object.entries(body.counts).filter(([s]) => !terminal.has(s));
      if (open.length === 0) return body.counts;
      if (Date.now() > deadline)
        throw new Error(`distribution did not settle: ${JSON.stringify(body.counts)}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /**
   * Issue 13, item 2 — what every failed job of this world must satisfy, checked on the diagnosis
   * haishin gives now (the ranking of GET /jobs/:id/diagnosis, without asking the device):
   * - it is not empty;
   * - when the job's reason states a cause (src/diagnosis/verdict.ts), that cause is there,
   *   confirmed, and only confirmed causes (a root cause the evidence proves) come before it;
   * - a device that connected after its last push is never ranked `device.powered_off_or_offline`.
   * Returns one line per violation.
   */
  async diagnosisViolations(): Promise<string[]> {
    const { store, engine } = this.server.haishin;
    const jobs = await store.db.kysely
      .selectFrom('jobs')
      .selectAll()
      .where('status', 'in', FAILED_TERMINAL)
      .orderBy('seq')
      .execute();
    const out: string[] = [];
    for (const job of jobs) {
      // Read before the diagnosis: a device that had answered its last push by then still had.
      const device = await store.devices.get(job.device_id);
      const causes = await engine.diagnose(job);
      const codes = causes.map((c) => `${c.code}:${c.confidence}`);
      const who = `job ${job.id} (${job.status}, reason ${JSON.stringify(job.reason)}, device ${device?.serial_number ?? job.device_id})`;
      if (causes.length === 0) {
        out.push(`${who}: no cause`);
        continue;
      }
      const verdict = verdictOfReason(job.reason);
      if (verdict) {
        const i = causes.findIndex((c) => c.code === verdict);
        if (i < 0) out.push(`${who}: ${verdict} missing from [${codes.join(', ')}]`);
        else if (causes[i]!.confidence !== 'confirmed')
          out.push(`${who}: ${verdict} is ${causes[i]!.confidence}, not confirmed: [${codes.join(', ')}]`);
        else if (causes.slice(0, i).some((c) => c.confidence !== 'confirmed'))
          out.push(`${who}: ${verdict} ranked behind unconfirmed causes: [${codes.join(', ')}]`);
      }
      const seen = device?.last_seen_at ? new Date(device.last_seen_at).getTime() : null;
      const pushed = device?.last_push_at ? new Date(device.last_push_at).getTime() : null;
      if (
        seen !== null &&
        pushed !== null &&
        seen >= pushed &&
        causes.some((c) => c.code === 'device.powered_off_or_offline')
      ) {
        out.push(
          `${who}: ranked offline although the device connected (${device!.last_seen_at}) after its last push (${device!.last_push_at}): [${codes.join(', ')}]`,
        );
      }
    }
    return out;
  }

  /**
   * Stops everything; throws when a failed job's diagnosis breaks the invariants above (after
   * closing, so a failing suite leaves nothing running).
   */
  async close(): Promise<void> {
    let violations: string[] = [];
    let checkError: unknown = null;
    try {
      await this.fleet.idle();
      if (this.server) violations = await this.diagnosisViolations();
    } catch (err) {
      checkError = err;
    } finally {
      await this.server?.close();
      await this.fakes?.close();
      if (this.#dir) rmSync(this.#dir, { recursive: true, force: true });
    }
    if (checkError) throw checkError;
    if (violations.length > 0)
      throw new Error(
        `diagnosis invariants (issue 13) broken by ${violations.length} failed job(s):\n${violations.join('\n')}`,
      );
  }
}

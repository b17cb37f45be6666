// `haishin serve` as an administrator runs it, against `haishin fakes` in another process, with
// simulated iPads that enroll from the printed link: on SQLite and on a throwaway PostgreSQL.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SimDevice } from '../../src/sim/device/device.ts';
import { mapLimit, relayPushes, SimFleet } from '../../src/sim/fleet.ts';
import { extraApps, SCENARIO_APPS } from '../../src/sim/scenario.ts';
import { postgresAvailable, postgresSkipReason, startPostgres } from '../support/pg.ts';
import type { ThrowawayPostgres } from '../support/pg.ts';
import {
  adminApi,
  control,
  eventually,
  settled,
  startFakesProcess,
  startServe,
  testServeEnv,
} from './support.ts';
import type { FakesInfo, HaishinProcess } from './support.ts';

if (!postgresAvailable) console.warn(`[serve.e2e.test] ${postgresSkipReason}`);

const DEVICES = 50;
const ADMIN = 'e2e-admin-token-0123456789abcdef';
/** Three apps of the fakes' catalogue beyond the demo's (`haishin fakes --apps 3`). */
const EXTRA = extraApps(3);
const [NOTE, KEYNOTE, MATH] = SCENARIO_APPS as [
  (typeof SCENARIO_APPS)[number],
  (typeof SCENARIO_APPS)[number],
  (typeof SCENARIO_APPS)[number],
];

interface Distribution {
  id: string;
  counts: Record<string, number>;
}

for (const backend of ['sqlite', 'postgres'] as const) {
  describe.skipIf(backend === 'postgres' && !postgresAvailable)(`haishin serve on ${backend}`, () => {
    const fleet = new SimFleet();
    const dir = mkdtempSync(join(tmpdir(), `haishin-e2e-${backend}-`));
    let fakes: { proc: HaishinProcess; info: FakesInfo };
    let relay: { close(): void };
    let postgres: ThrowawayPostgres | null = null;
    let serve: { proc: HaishinProcess; enrollUrl: string } | null = null;
    let env: Record<string, string>;
    let baseUrl: string;
    let devices: SimDevice[] = [];
    let tokenId: string;
    let rootId: string;
    const api = () => adminApi(baseUrl, ADMIN);

    const distribute = async (...adamIds: string[]): Promise<string> => {
      const created = await api()<{ id: string; jobCount: number }>('POST', '/distributions', {
        kind: 'install',
        tokenId,
        adamIds,
        targets: { groupIds: [rootId] },
        licenseMode: 'auto',
      });
      expect(created.status).toBe(201);
      expect(created.body.jobCount).toBe(DEVICES * adamIds.length);
      return created.body.id;
    };
    const counts = async (id: string) =>
      (await api()<Distribution>('GET', `/distributions/${id}`)).body.counts;
    const settle = (id: string) =>
      eventually(`distribution ${id} settles`, async () => settled(await counts(id)));

    /** What haishin stored, read from its database directly: commands and job attempts per app. */
    const storedCommands = async (): Promise<{
      installs: number;
      jobs: number;
      distinctCommands: number;
    }> => {
      const installs = "select count(*) as n from commands where request_type = 'InstallApplication'";
      const jobs = 'select count(*) as n, count(distinct command_uuid) as d from jobs';
      if (backend === 'sqlite') {
        const db = new Database(join(dir, 'haishin.db'), { readonly: true });
        try {
          const i = db.prepare(installs).get() as { n: number };
          const j = db.prepare(jobs).get() as { n: number; d: number };
          return { installs: i.n, jobs: j.n, distinctCommands: j.d };
        } finally {
          db.close();
        }
      }
      const client = new pg.Client({ connectionString: postgres!.url });
      await client.connect();
      try {
        const i = (await client.query<{ n: string }>(installs)).rows[0]!;
        const j = (await client.query<{ n: string; d: string }>(jobs)).rows[0]!;
        return { installs: Number(i.n), jobs: Number(j.n), distinctCommands: Number(j.d) };
      } finally {
        await client.end();
      }
    };

    beforeAll(async () => {
      fakes = await startFakesProcess(join(dir, 'apple'), ['--apps', String(EXTRA.length)]);
      relay = await relayPushes(fakes.info.control, fleet);
      if (backend === 'postgres') postgres = await startPostgres();
      const served = await testServeEnv({ fakesEnv: fakes.info.env, dir, admin: ADMIN, db: postgres?.url });
      baseUrl = served.baseUrl;
      // Installs are checked every 2 s instead of every minute so the suite ends in seconds.
      env = { ...served.env, HAISHIN_VERIFY_EVERY: '2s' };
      serve = await startServe(env);
      rootId = new URL(serve.enrollUrl).searchParams.get('group')!;
      const registered = await api()<{ id: string }>('POST', '/vpp-tokens', {
        groupId: rootId,
        sToken: readFileSync(fakes.info.tokenFile, 'utf8'),
      });
      expect(registered.status).toBe(201);
      tokenId = registered.body.id;
      expect((await api()('PUT', `/groups/${rootId}/auto-assign-token`, { tokenId })).status).toBe(200);
      const catalog = new Map(
        [...SCENARIO_APPS, ...EXTRA].map((a) => [Number(a.adamId), { ...a, version: '1.0' }] as const),
      );
      devices = Array.from({ length: DEVICES }, (_, i) =>
        fleet.add(
          new SimDevice({
            spec: { serialNumber: `E2E${backend[0]!.toUpperCase()}${String(i).padStart(8, '0')}` },
            catalog,
          }),
        ),
      );
      // From the link the server printed, as an administrator hands it out.
      await mapLimit(devices, 8, (d) => d.enroll(serve!.enrollUrl));
    }, 180_000);

    afterAll(async () => {
      relay?.close();
      await serve?.proc.kill('SIGKILL');
      await fleet.idle();
      await fakes?.proc.kill();
      postgres?.stop();
      rmSync(dir, { recursive: true, force: true });
    });

    it(
      `one app to ${DEVICES} iPads in auto mode: every job succeeds, one push per device, licences in batches`,
      { timeout: 180_000 },
      async () => {
        const before = await control(`${fakes.info.control}/stats`);
        const id = await distribute(NOTE.adamId);
        expect(await settle(id)).toEqual({ success: DEVICES });
        const after = await control(`${fakes.info.control}/stats`);
        const pushes = after.apns.accepted - before.apns.accepted;
        expect(pushes).toBeGreaterThanOrEqual(DEVICES * 0.9);
        expect(pushes).toBeLessThanOrEqual(DEVICES * 1.1);
        const requests = after.vpp.associate.slice(before.vpp.associate.length);
        const serials = requests.flatMap((r) => r.serials);
        expect(new Set(serials)).toEqual(new Set(devices.map((d) => d.serialNumber)));
        expect(serials).toHaveLength(DEVICES);
        // Batched: not one request per device.
        expect(requests.length).toBeLessThanOrEqual(3);
        expect(devices.every((d) => d.apps.get(NOTE.bundleId)?.managedStatus === 'Managed')).toBe(true);
      },
    );

    it(
      'kill -9 of the server mid-distribution, four installs in flight per iPad, and a restart with the same environment lose and duplicate nothing',
      { timeout: 240_000 },
      async () => {
        const before = await control(`${fakes.info.control}/stats`);
        const apps = [KEYNOTE, ...EXTRA];
        const id = await distribute(...apps.map((a) => a.adamId));
        // Pull the plug once the distribution is under way but not done.
        const seen = await eventually(
          'the distribution gets under way',
          async () => {
            const c = await counts(id);
            const moving = apps.length * DEVICES - (c.waiting ?? 0) - (c.license_assigning ?? 0);
            return moving > 0 ? c : undefined;
          },
          120_000,
          20,
        );
        await serve!.proc.kill('SIGKILL');
        expect(seen.success ?? 0).toBeLessThan(apps.length * DEVICES);
        await fleet.idle();
        serve = await startServe(env);

        expect(await settle(id)).toEqual({ success: apps.length * DEVICES });
        const after = await control(`${fakes.info.control}/stats`);
        const associated = after.vpp.associate.slice(before.vpp.associate.length);
        // Every (app, serial) associated exactly once.
        const pairs = associated.flatMap((r) => r.adamIds.flatMap((a) => r.serials.map((s) => `${a}:${s}`)));
        expect(pairs.sort()).toEqual(
          apps.flatMap((a) => devices.map((d) => `${a.adamId}:${d.serialNumber}`)).sort(),
        );
        const stored = await storedCommands();
        // The first distribution's jobs and these, one install command per job attempt, none issued twice.
        const jobs = DEVICES + apps.length * DEVICES;
        expect(stored).toEqual({ installs: jobs, jobs, distinctCommands: jobs });
        for (const app of apps)
          expect(devices.every((d) => d.apps.get(app.bundleId)?.managedStatus === 'Managed')).toBe(true);
      },
    );

    it(
      'APNs refusing the push certificate (403) raises the alert in GET /status and the right cause on the jobs',
      { timeout: 180_000 },
      async () => {
        await control(`${fakes.info.control}/apns/fail`, 'POST', { status: 403, reason: 'BadCertificate' });
        try {
          const id = await distribute(MATH.adamId);
          const alert = await eventually('the push-certificate alert', async () => {
            const status = await api()<{ pushCertificate: { alert: { reason: string | null } | null } }>(
              'GET',
              '/status',
            );
            return status.body.pushCertificate.alert ?? undefined;
          });
          expect(alert.reason).toBe('BadCertificate');
          const jobs = await api()<{ items: { id: string; status: string }[] }>(
            'GET',
            `/jobs?distributionId=${id}&limit=5`,
          );
          expect(jobs.body.items.length).toBeGreaterThan(0);
          for (const job of jobs.body.items) {
            expect(job.status).not.toBe('success');
            const diagnosis = await api()<{ causes: { code: string }[] }>('GET', `/jobs/${job.id}/diagnosis`);
            expect(diagnosis.body.causes[0]?.code).toBe('push.certificate_invalid');
          }
        } finally {
          await control(`${fakes.info.control}/apns/clear`, 'POST');
        }
      },
    );

    it('GET /audit-events lists what the administrator changed, filtered and paged, as JSON and CSV, with no secret in it', async () => {
      type Page = {
        items: {
          id: string;
          action: string;
          actor: { id: string; name: string | null };
          target: { type: string; id: string | null };
        }[];
        nextCursor: string | null;
      };
      const tokens = await api()<Page>('GET', '/audit-events?kind=token');
      expect(tokens.status).toBe(200);
      const registered = tokens.body.items.find((e) => e.action === 'token.register');
      expect(registered?.target).toEqual({ type: 'vpp_token', id: tokenId });
      expect(registered?.actor.name).toBeTruthy();
      expect(tokens.body.items.every((e) => e.action.startsWith('token.'))).toBe(true);
      // By actor name, one event a page: the pages do not overlap and the cursor walks on.
      const first = await api()<Page>(
        'GET',
        `/audit-events?limit=1&actor=${encodeURIComponent(registered!.actor.name!)}`,
      );
      expect(first.body.items).toHaveLength(1);
      expect(first.body.nextCursor).not.toBeNull();
      const second = await api()<Page>(
        'GET',
        `/audit-events?limit=1&actor=${encodeURIComponent(registered!.actor.name!)}&cursor=${first.body.nextCursor}`,
      );
      expect(second.body.items).toHaveLength(1);
      expect(second.body.items[0]!.id).not.toBe(first.body.items[0]!.id);
      const csv = await fetch(`${baseUrl}/api/v1/audit-events.csv?targetType=vpp_token`, {
        headers: { authorization: `Bearer ${ADMIN}` },
      });
      expect(csv.headers.get('content-type')).toMatch(/^text\/csv/);
      const text = await csv.text();
      expect(text.split('\r\n')[0]).toBe(
        'at,actor_id,actor_name,source,action,target_type,target_id,details,token_id,token_name',
      );
      expect(text).toContain(`token.register,vpp_token,${tokenId}`);
      const all = await api()<Page>('GET', '/audit-events?limit=1000');
      const everything = JSON.stringify(all.body) + text;
      expect(everything).not.toContain(ADMIN);
      expect(everything).not.toContain(readFileSync(fakes.info.tokenFile, 'utf8').trim());
    });

    it('GET /metrics of the serve process counts its pushes and check-ins (Prometheus text, no auth by default)', async () => {
      const res = await fetch(`${baseUrl}/metrics`);
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
      const text = await res.text();
      // Counters since the restart above: that process pushed (the 403s of the test before included)
      // and took command reports.
      const sum = (pattern: RegExp) =>
        text
          .split('\n')
          .filter((line) => pattern.test(line))
          .reduce((n, line) => n + Number(line.slice(line.lastIndexOf(' ') + 1)), 0);
      expect(sum(/^haishin_pushes_total\{outcome="sent"\} /)).toBeGreaterThan(0);
      expect(sum(/^haishin_pushes_total\{outcome="certificate_problem"\} /)).toBeGreaterThan(0);
      const acknowledged = /^haishin_mdm_messages_total\{type="Acknowledged",outcome="accepted"\} /;
      expect(sum(acknowledged)).toBeGreaterThan(0);
      expect(sum(/^haishin_job_transitions_total\{status="success"\} /)).toBeGreaterThan(0);
      expect(text).toMatch(
        /^haishin_apple_vpp_requests_total\{endpoint="[^"]+",status="200",outcome="ok"\} [1-9]/m,
      );
      expect(text).toMatch(/^haishin_mdm_queue_commands \d+$/m);
      expect(text).toMatch(/^nodejs_eventloop_lag_seconds /m);
    });
  });
}

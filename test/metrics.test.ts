// GET /metrics, GET /api/ready and the operator's log lines (issue 12, "Operable in production").
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyBaseLogger } from 'fastify';
import { VppClient } from '../src/apple/vpp/client.ts';
import type { VppCallRecord } from '../src/apple/vpp/client.ts';
import { createMetrics } from '../src/app/metrics.ts';
import { ManualClock } from '../src/core/clock.ts';
import type { PushSummary } from '../src/engine/push.ts';
import { postgresAvailable, startPostgres } from './support/pg.ts';
import { startTestServer } from './support/server.ts';
import { World } from './support/world.ts';
import type { CatalogApp } from './support/world.ts';

const APP: CatalogApp = {
  adamId: '361285480',
  name: 'ロイロノート',
  bundleId: 'jp.loilo.note',
  sizeBytes: 50_000_000,
  licences: 100,
};
const DEVICES = 4;

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** The Prometheus text format, samples only (enough for the series haishin writes). */
function parseExposition(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) throw new Error(`not a sample line: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g))
      labels[l[1]!] = l[2]!;
    samples.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return samples;
}

/** The sum of every sample of `name` whose labels include `labels`; undefined when there is none. */
function total(samples: Sample[], name: string, labels: Record<string, string> = {}): number | undefined {
  const hits = samples.filter(
    (s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v),
  );
  return hits.length === 0 ? undefined : hits.reduce((sum, s) => sum + s.value, 0);
}

describe('GET /metrics after real work', () => {
  let world: World;
  let sToken: string;
  let serials: string[];
  beforeAll(async () => {
    world = await World.start([APP]);
    const school = await world.group('計測小学校');
    const token = await world.token(school, [APP], 'metrics');
    sToken = token.sToken;
    const devices = await world.devices(DEVICES, [school], () => ({}), 'MX');
    serials = devices.map((d) => d.serialNumber);
    const created = await world.api<{ id: string }>('POST', '/distributions', {
      kind: 'install',
      tokenId: token.id,
      adamIds: [APP.adamId],
      targets: { groupIds: [school] },
      licenseMode: 'auto',
    });
    expect(await world.settle(created.body.id)).toEqual({ success: DEVICES });
    // One message haishin must refuse: not signed.
    const refused = await fetch(`${world.server.baseUrl}/mdm/checkin`, { method: 'PUT', body: 'nonsense' });
    expect(refused.status).toBe(400);
  }, 120_000);
  afterAll(async () => {
    await world?.close();
  });

  it('serves check-ins, pushes, Apple calls, job transitions, queue depth and event-loop lag without auth', async () => {
    const res = await fetch(`${world.server.baseUrl}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    const text = await res.text();
    const samples = parseExposition(text);
    const m = (name: string, labels?: Record<string, string>) => total(samples, name, labels);

    expect(
      m('haishin_mdm_messages_total', { type: 'Authenticate', outcome: 'accepted' }),
    ).toBeGreaterThanOrEqual(DEVICES);
    expect(
      m('haishin_mdm_messages_total', { type: 'TokenUpdate', outcome: 'accepted' }),
    ).toBeGreaterThanOrEqual(DEVICES);
    expect(
      m('haishin_mdm_messages_total', { type: 'Acknowledged', outcome: 'accepted' }),
    ).toBeGreaterThanOrEqual(DEVICES);
    expect(m('haishin_mdm_messages_total', { type: 'unknown', outcome: 'refused' })).toBeGreaterThanOrEqual(
      1,
    );
    // Authenticate and TokenUpdate on the check-in URL, command reports on the server URL.
    expect(m('haishin_mdm_request_duration_seconds_count', { endpoint: 'checkin' })).toBeGreaterThanOrEqual(
      2 * DEVICES,
    );
    expect(m('haishin_mdm_request_duration_seconds_count', { endpoint: 'connect' })).toBeGreaterThanOrEqual(
      DEVICES,
    );

    expect(m('haishin_pushes_total', { outcome: 'sent' })).toBeGreaterThanOrEqual(DEVICES);
    expect(m('haishin_pushes_total', { outcome: 'certificate_problem' })).toBe(0);
    expect(m('haishin_push_batch_duration_seconds_count')).toBeGreaterThanOrEqual(1);

    const associate = { endpoint: 'POST assets/associate', status: '200', outcome: 'ok' };
    expect(m('haishin_apple_vpp_requests_total', associate)).toBeGreaterThanOrEqual(1);
    expect(
      m('haishin_apple_vpp_requests_total', { endpoint: 'GET client/config', status: '200' }),
    ).toBeGreaterThanOrEqual(1);
    expect(
      m('haishin_apple_vpp_request_duration_seconds_count', { endpoint: 'POST assets/associate' }),
    ).toBeGreaterThanOrEqual(1);
    expect(m('haishin_apple_vpp_request_duration_seconds_sum')).toBeGreaterThan(0);

    expect(m('haishin_jobs_created_total')).toBe(DEVICES);
    expect(m('haishin_job_transitions_total', { status: 'success' })).toBe(DEVICES);
    expect(m('haishin_job_transitions_total', { status: 'license_assigning' })).toBe(DEVICES);
    expect(m('haishin_job_transitions_total', { status: 'device_error' })).toBe(0);

    // Every job succeeded: nothing is owed to the devices any more.
    expect(m('haishin_mdm_queue_commands')).toBe(0);

    expect(m('nodejs_eventloop_lag_seconds')).toBeGreaterThanOrEqual(0);
    expect(m('nodejs_eventloop_lag_p99_seconds')).toBeGreaterThanOrEqual(0);
    expect(m('process_resident_memory_bytes')).toBeGreaterThan(0);

    // Counts only: no device, serial number or token ever becomes a label.
    expect(text).not.toContain(sToken);
    for (const serial of serials) expect(text).not.toContain(serial);
  });

  it('counts the commands owed to devices at scrape time', async () => {
    const device = await world.api<{ items: { id: string }[] }>('GET', `/devices?serialNumber=${serials[0]}`);
    // Queue a command without waking the iPad: the simulated fleet answers pushes only.
    const before = total(
      parseExposition(await (await fetch(`${world.server.baseUrl}/metrics`)).text()),
      'haishin_mdm_queue_commands',
    );
    await world.server.haishin.store.mdm.enqueue(
      [
        {
          enrollmentId: (await world.server.haishin.store.devices.get(device.body.items[0]!.id))!.udid,
          command: { uuid: 'metrics-test-command', requestType: 'DeviceInformation', payload: '<plist/>' },
          priority: 0,
        },
      ],
      new Date(),
    );
    const after = total(
      parseExposition(await (await fetch(`${world.server.baseUrl}/metrics`)).text()),
      'haishin_mdm_queue_commands',
    );
    expect(after).toBe((before ?? 0) + 1);
  });
});

describe('GET /api/ready and a metrics token', () => {
  it('is ready while the database answers, 503 once it does not; /metrics asks for HAISHIN_METRICS_TOKEN when set', async () => {
    const server = await startTestServer({ env: { HAISHIN_METRICS_TOKEN: 'scrape-secret-0123' } });
    try {
      expect(await (await fetch(`${server.baseUrl}/api/health`)).json()).toEqual({ ok: true });
      const ready = await fetch(`${server.baseUrl}/api/ready`);
      expect(ready.status).toBe(200);
      expect(await ready.json()).toEqual({ ok: true });

      const anonymous = await fetch(`${server.baseUrl}/metrics`);
      expect(anonymous.status).toBe(401);
      expect(anonymous.headers.get('www-authenticate')).toMatch(/^Bearer/);
      const wrong = await fetch(`${server.baseUrl}/metrics`, { headers: { authorization: 'Bearer nope' } });
      expect(wrong.status).toBe(401);
      const scraped = await fetch(`${server.baseUrl}/metrics`, {
        headers: { authorization: 'Bearer scrape-secret-0123' },
      });
      expect(scraped.status).toBe(200);
      expect(await scraped.text()).toContain('haishin_pushes_total{outcome="sent"} 0');

      // The database goes away under the running server (its connection closed).
      await server.haishin.store.close();
      const down = await fetch(`${server.baseUrl}/api/ready`);
      expect(down.status).toBe(503);
      expect(await down.json()).toEqual({
        ok: false,
        reason: 'database',
        message: 'the database does not answer',
      });
      // Alive all the same, and /metrics still answers (the queue depth is unknown then: NaN).
      expect((await fetch(`${server.baseUrl}/api/health`)).status).toBe(200);
      const blind = await fetch(`${server.baseUrl}/metrics`, {
        headers: { authorization: 'Bearer scrape-secret-0123' },
      });
      expect(blind.status).toBe(200);
      expect(total(parseExposition(await blind.text()), 'haishin_mdm_queue_commands')).toBeNaN();
    } finally {
      await server.close();
    }
  });
});

describe.skipIf(!postgresAvailable)('GET /api/ready on PostgreSQL', () => {
  it('answers 503 while PostgreSQL is down, and the server lives on', async () => {
    const postgres = await startPostgres();
    let stopped = false;
    const server = await startTestServer({ db: postgres.url });
    try {
      expect((await fetch(`${server.baseUrl}/api/ready`)).status).toBe(200);
      // A query under way when PostgreSQL goes: its connection is checked out of the pool.
      const underWay = sql`select pg_sleep(5)`.execute(server.haishin.store.db.kysely).then(
        () => 'answered',
        () => 'failed',
      );
      await new Promise((r) => setTimeout(r, 200));
      postgres.stop();
      stopped = true;
      // The pool's connections, idle and checked out, break now: that must not end the process.
      expect(await underWay).toBe('failed');
      await new Promise((r) => setTimeout(r, 500));
      const down = await fetch(`${server.baseUrl}/api/ready`);
      expect(down.status).toBe(503);
      expect(((await down.json()) as { reason: string }).reason).toBe('database');
      expect((await fetch(`${server.baseUrl}/api/health`)).status).toBe(200);
    } finally {
      await server.close();
      if (!stopped) postgres.stop();
    }
  }, 60_000);
});

/** A pino-shaped logger that keeps what it is given. */
function capturingLogger(): {
  log: FastifyBaseLogger;
  lines: { level: string; obj: unknown; msg: string }[];
} {
  const lines: { level: string; obj: unknown; msg: string }[] = [];
  const at = (level: string) => (obj: unknown, msg?: string) =>
    void lines.push({ level, obj, msg: msg ?? '' });
  const log = {
    level: 'debug',
    fatal: at('fatal'),
    error: at('error'),
    warn: at('warn'),
    info: at('info'),
    debug: at('debug'),
    trace: at('trace'),
    silent: () => {},
    child: () => log,
  } as unknown as FastifyBaseLogger;
  return { log, lines };
}

describe('log lines of Apple calls and push batches', () => {
  it('the Apps and Books client reports every request, retries included, with status, time and error number — never the token or a body', async () => {
    const clock = new ManualClock('2026-03-01T00:00:00Z');
    const sToken = 'c2VjcmV0LXZwcC10b2tlbi1kby1ub3QtbG9n';
    const answers: (() => Response)[] = [
      () => {
        throw new TypeError('fetch failed: ECONNRESET');
      },
      () => new Response('<html>upstream down</html>', { status: 503 }),
      () => new Response(JSON.stringify({ errorNumber: 9622, errorMessage: 'Invalid authentication token' })),
    ];
    const calls: VppCallRecord[] = [];
    const { log, lines } = capturingLogger();
    const metrics = createMetrics({ log, queueDepth: async () => 0 });
    const client = new VppClient({
      baseUrl: 'http://vpp.invalid/mdm/v2',
      sToken,
      clock,
      sleep: async (ms) => clock.advance(ms),
      pacing: false,
      mdmInfo: { id: 'metrics-test', name: 'haishin' },
      fetch: async () => answers.shift()!(),
      onCall: (call) => {
        calls.push(call);
        metrics.vppCall(call);
        throw new Error('an observer that fails changes nothing');
      },
    });
    await expect(client.clientConfig()).rejects.toMatchObject({ kind: 'token_invalid', errorNumber: 9622 });
    expect(calls.map(({ durationMs: _, ...c }) => c)).toEqual([
      {
        endpoint: 'GET client/config',
        status: 0,
        attempt: 1,
        error: { kind: 'transient', errorNumber: null },
      },
      {
        endpoint: 'GET client/config',
        status: 503,
        attempt: 2,
        error: { kind: 'transient', errorNumber: null },
      },
      {
        endpoint: 'GET client/config',
        status: 200,
        attempt: 3,
        error: { kind: 'token_invalid', errorNumber: 9622 },
      },
    ]);
    expect(calls.every((c) => c.durationMs >= 0)).toBe(true);
    expect(lines.map((l) => [l.level, l.msg])).toEqual([
      ['info', 'Apps and Books call failed'],
      ['info', 'Apps and Books call failed'],
      ['info', 'Apps and Books call failed'],
    ]);
    expect(lines[2]!.obj).toMatchObject({
      endpoint: 'GET client/config',
      status: 200,
      attempt: 3,
      errorKind: 'token_invalid',
      errorNumber: 9622,
    });
    const logged = JSON.stringify(lines);
    expect(logged).not.toContain(sToken);
    expect(logged).not.toContain('upstream down');
    expect(logged).not.toContain('Invalid authentication token');

    const samples = parseExposition((await metrics.scrape()).body);
    expect(total(samples, 'haishin_apple_vpp_requests_total', { status: 'none', outcome: 'transient' })).toBe(
      1,
    );
    expect(total(samples, 'haishin_apple_vpp_requests_total', { status: '503' })).toBe(1);
    expect(
      total(samples, 'haishin_apple_vpp_requests_total', { status: '200', outcome: 'token_invalid' }),
    ).toBe(1);

    // A success is a debug line.
    metrics.vppCall({ endpoint: 'GET assets', status: 200, durationMs: 12.4, attempt: 1 });
    expect(lines.at(-1)).toEqual({
      level: 'debug',
      obj: { endpoint: 'GET assets', status: 200, ms: 12, attempt: 1 },
      msg: 'Apps and Books call',
    });
  });

  it('one info line per push batch with the counts by outcome', async () => {
    const { log, lines } = capturingLogger();
    const metrics = createMetrics({ log, queueDepth: async () => 0 });
    const summary: PushSummary = {
      sent: 3,
      unregistered: 1,
      badToken: 0,
      certificateProblem: 0,
      failed: 1,
      notPushable: 2,
    };
    const pusher = metrics.observePusher({ push: async () => summary });
    expect(await pusher.push(['a', 'b', 'c', 'd', 'e', 'f', 'g'])).toBe(summary);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ level: 'info', msg: 'push batch', obj: { devices: 7, ...summary } });
    const samples = parseExposition((await metrics.scrape()).body);
    expect(total(samples, 'haishin_pushes_total', { outcome: 'sent' })).toBe(3);
    expect(total(samples, 'haishin_pushes_total', { outcome: 'unregistered' })).toBe(1);
    expect(total(samples, 'haishin_pushes_total', { outcome: 'not_pushable' })).toBe(2);
    expect(total(samples, 'haishin_pushes_total', { outcome: 'bad_token' })).toBe(0);
  });
});

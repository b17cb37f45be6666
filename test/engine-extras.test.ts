import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SseStream } from '../src/api/routes/events.ts';
import type { SseSink } from '../src/api/routes/events.ts';
import { csvField, distributionJobsCsv, errorSummary, UTF8_BOM } from '../src/engine/csv.ts';
import type { SimDevice } from '../src/sim/device/device.ts';
import { ADMIN, World } from './support/world.ts';
import type { CatalogApp } from './support/world.ts';

/** A name that needs RFC 4180 quoting: a comma and a quote. */
const BIG: CatalogApp = {
  adamId: '361285481',
  name: 'ロイロノート, "スクール"版',
  bundleId: 'jp.loilo.note.extras',
  sizeBytes: 180_000_000,
  licences: 1000,
};
const SCARCE: CatalogApp = {
  adamId: '409183695',
  name: '少ない教材',
  bundleId: 'jp.example.scarce.extras',
  sizeBytes: 20_000_000,
  licences: 2,
};
const LICENCE_ERROR_CHAIN = [
  {
    ErrorCode: 12064,
    ErrorDomain: 'MCMDMErrorDomain',
    LocalizedDescription: 'Could not retrieve license for the app with iTunes Store ID 361285481.',
  },
  { ErrorCode: 2605, ErrorDomain: 'DeviceManagement.error', LocalizedDescription: 'License not found' },
];

interface Job {
  id: string;
  status: string;
  reason: string | null;
  deviceId: string;
  attempt: number;
}
interface Cause {
  code: string;
  confidence: string;
  adamIds?: string[];
}
interface ApiError {
  error: { code: string; messages: { ja: string; en: string } };
}

let world: World;
let closed = false;
beforeAll(async () => {
  world = await World.start([BIG, SCARCE]);
});
afterAll(async () => {
  if (!closed) await world?.close();
});

const jobsOf = async (distributionId: string) =>
  (await world.api<{ items: Job[] }>('GET', `/jobs?distributionId=${distributionId}&limit=1000`)).body.items;

async function deviceId(device: SimDevice): Promise<string> {
  const res = await world.api<{ items: { id: string }[] }>(
    'GET',
    `/devices?serialNumber=${device.serialNumber}`,
  );
  return res.body.items[0]!.id;
}

async function distribute(
  tokenId: string,
  targets: Record<string, unknown>,
  adamIds = [BIG.adamId],
  extra: Record<string, unknown> = {},
) {
  const res = await world.api<{ id: string; jobCount: number }>('POST', '/distributions', {
    kind: 'install',
    tokenId,
    adamIds,
    targets,
    licenseMode: 'auto',
    ...extra,
  });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return res.body.id;
}

async function until<T>(
  what: string,
  probe: () => Promise<T | undefined | null | false>,
  timeoutMs = 15_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 40));
  }
}

/** Minimal RFC 4180 reader for the assertions (quoted fields, doubled quotes, CRLF). */
function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') {
        field += '"';
        i++;
      } else if (c === '"') quoted = false;
      else field += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') {
      row.push(field);
      field = '';
    } else if (c === '\r' && text[i + 1] === '\n') {
      row.push(field);
      rows.push(row);
      row = [];
      field = '';
      i++;
    } else field += c;
  }
  if (field !== '' || row.length > 0) rows.push([...row, field]);
  return rows;
}

describe('CSV export of a distribution', () => {
  it('quotes fields as RFC 4180 says and keeps formulas out of spreadsheets', () => {
    expect(csvField('plain')).toBe('plain');
    expect(csvField('a,b')).toBe('"a,b"');
    expect(csvField('say "hi"')).toBe('"say ""hi"""');
    expect(csvField('two\r\nlines')).toBe('"two\r\nlines"');
    expect(csvField(null)).toBe('');
    expect(csvField(-1009)).toBe('-1009');
    expect(csvField('=HYPERLINK("x")', true)).toBe(`"'=HYPERLINK(""x"")"`);
    expect(csvField('-1009', true)).toBe("'-1009");
    expect(csvField('=1+1')).toBe('=1+1');
    expect(errorSummary(JSON.stringify({ errorNumber: 9709 }))).toEqual({
      code: 9709,
      domain: 'AppsAndBooks',
      chain: 'AppsAndBooks:9709',
    });
    expect(
      errorSummary(
        JSON.stringify({ chain: [{ code: 12064, domain: 'MCMDMErrorDomain' }], rejectionReason: 'Other' }),
      ),
    ).toEqual({
      code: 12064,
      domain: 'MCMDMErrorDomain',
      chain: 'MCMDMErrorDomain:12064 > RejectionReason=Other',
    });
  });

  it('has a header and one row per job with the status in Japanese and English; paging gives the same bytes', async () => {
    const school = await world.group('CSV校');
    const token = await world.token(school, [BIG], 'csv');
    const devices = await world.devices(3, [school], () => ({}), 'CSV');
    const id = await distribute(token.id, { groupIds: [school] });
    expect(await world.settle(id)).toEqual({ success: 3 });

    const res = await fetch(`${world.server.baseUrl}/api/v1/distributions/${id}/jobs.csv`, {
      headers: { authorization: `Bearer ${ADMIN}` },
    });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/csv; charset=utf-8/);
    expect(res.headers.get('content-disposition')).toContain('.csv');
    const bytes = new Uint8Array(await res.arrayBuffer());
    expect([...bytes.slice(0, 3)]).toEqual([0xef, 0xbb, 0xbf]);
    const text = new TextDecoder('utf-8', { ignoreBOM: true }).decode(bytes);
    expect(text.startsWith(UTF8_BOM)).toBe(true);
    expect(text.endsWith('\r\n')).toBe(true);
    expect(text.replace(/\r\n/g, '')).not.toContain('\n');
    expect(text).toContain('"ロイロノート, ""スクール""版"');

    const [header, ...rows] = parseCsv(text.slice(1));
    expect(header).toContain('端末番号 / Device number');
    expect(rows).toHaveLength(3);
    const col = (name: string) => header!.findIndex((h) => h.includes(name));
    for (const row of rows) {
      expect(row).toHaveLength(header!.length);
      expect(row[col('Status ID')]).toBe('success');
      expect(row[col('Status (ja)')]).toBe('成功');
      expect(row[col('Status (en)')]).toBe('Succeeded');
      expect(row[col('App name')]).toBe(BIG.name);
      expect(row[col('Adam ID')]).toBe(BIG.adamId);
      expect(row[col('Finished at')]).toMatch(/^\d{4}-\d\d-\d\dT/);
      expect(row[col('Acknowledged at')]).toMatch(/^\d{4}-\d\d-\d\dT/);
    }
    expect(rows.map((r) => r[col('Serial number')]).sort()).toEqual(
      devices.map((d) => d.serialNumber).sort(),
    );

    // Pages of 2 over 3 jobs: the boundary must neither drop nor repeat a row.
    let paged = '';
    for await (const chunk of distributionJobsCsv(world.server.haishin.store, id, 2)) paged += chunk;
    expect(paged).toBe(text);

    const missing = await world.api<ApiError>('GET', '/distributions/nope/jobs.csv');
    expect(missing.status).toBe(404);
  });
});

interface SseMessage {
  event: string;
  data: Record<string, unknown>;
}

/** Reads a text/event-stream with fetch; `waitFor` is bounded, `close` aborts the request. */
async function openEvents(query = '') {
  const abort = new AbortController();
  const res = await fetch(`${world.server.baseUrl}/api/v1/events${query}`, {
    headers: { authorization: `Bearer ${ADMIN}`, accept: 'text/event-stream' },
    signal: abort.signal,
  });
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
  const messages: SseMessage[] = [];
  const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  const pump = (async () => {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += value;
      let end: number;
      while ((end = buffer.indexOf('\n\n')) >= 0) {
        const frame = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const event = /^event: (.*)$/m.exec(frame)?.[1];
        const data = /^data: (.*)$/m.exec(frame)?.[1];
        if (event && data) messages.push({ event, data: JSON.parse(data) as Record<string, unknown> });
      }
    }
  })().catch(() => undefined);
  return {
    messages,
    /** Settles when the server ends the stream. */
    ended: pump,
    waitFor: (what: string, ok: (m: SseMessage[]) => boolean, timeoutMs = 15_000) =>
      until(what, async () => ok(messages), timeoutMs),
    close: async () => {
      abort.abort();
      await pump;
    },
  };
}

describe('GET /events', () => {
  it('streams job transitions, distribution and device changes; filters by device; needs the admin token', async () => {
    const unauthorised = await fetch(`${world.server.baseUrl}/api/v1/events`);
    expect(unauthorised.status).toBe(401);

    const all = await openEvents();
    const school = await world.group('SSE校');
    const token = await world.token(school, [BIG], 'sse');
    await all.waitFor('ready', (m) => m.some((x) => x.event === 'ready'));
    const [a, b] = await world.devices(2, [school], () => ({}), 'SSE');
    const [idA, idB] = [await deviceId(a!), await deviceId(b!)];
    await all.waitFor('enrolled', (m) =>
      m.some((x) => x.event === 'device' && x.data.deviceId === idB && x.data.change === 'enrolled'),
    );
    const onlyA = await openEvents(`?deviceId=${idA}`);
    await onlyA.waitFor('ready', (m) => m.some((x) => x.event === 'ready'));
    try {
      const id = await distribute(token.id, { deviceIds: [idA, idB] });
      const forDist = (m: SseMessage[]) => m.filter((x) => x.event === 'job' && x.data.distributionId === id);
      await all.waitFor(
        'both successes',
        (m) => forDist(m).filter((x) => x.data.to === 'success').length === 2,
      );
      expect(
        all.messages.find((x) => x.event === 'distribution' && x.data.distributionId === id)?.data,
      ).toMatchObject({
        change: 'created',
        jobCount: 2,
      });
      for (const device of [idA, idB]) {
        const steps = forDist(all.messages).filter((x) => x.data.deviceId === device);
        expect(steps.map((x) => `${x.data.from}>${x.data.to}`)).toEqual([
          'waiting>license_assigning',
          'license_assigning>push_sending',
          'push_sending>awaiting_response',
          'awaiting_response>executing',
          'executing>success',
        ]);
        expect(steps[0]!.data).toMatchObject({
          adamId: BIG.adamId,
          jobId: expect.any(String),
          at: expect.any(String),
        });
      }
      await onlyA.waitFor('A success', (m) => m.some((x) => x.event === 'job' && x.data.to === 'success'));
      expect(onlyA.messages.filter((x) => x.event === 'job').every((x) => x.data.deviceId === idA)).toBe(
        true,
      );

      const byDistribution = await openEvents(`?distributionId=${id}`);
      await byDistribution.waitFor('ready', (m) => m.some((x) => x.event === 'ready'));
      expect(await a!.checkOut()).toBe(200);
      await all.waitFor('checked out', (m) =>
        m.some((x) => x.event === 'device' && x.data.deviceId === idA && x.data.change === 'checked_out'),
      );
      expect((await world.api('POST', `/devices/${idB}/deactivate`)).status).toBe(200);
      await all.waitFor('deactivated', (m) =>
        m.some((x) => x.event === 'device' && x.data.deviceId === idB && x.data.change === 'deactivated'),
      );
      expect(byDistribution.messages.filter((x) => x.event !== 'ready')).toEqual([]);
      await byDistribution.close();
    } finally {
      await all.close();
      await onlyA.close();
    }
  });

  it('a slow client gets a bounded buffer, then a dropped event once it catches up', () => {
    const written: string[] = [];
    let accept = true;
    let onDrain: () => void = () => undefined;
    const sink: SseSink = {
      write: (chunk) => {
        written.push(chunk);
        return accept;
      },
      on: (_event, listener) => {
        onDrain = listener;
      },
    };
    const stream = new SseStream(sink, 3);
    accept = false;
    stream.send('job', { n: 0 }, 1); // written, but the socket pushes back
    for (let n = 1; n <= 10; n++) stream.send('job', { n }, n + 1);
    expect(written).toHaveLength(1);
    expect(stream.buffered).toBe(3);
    expect(stream.dropped).toBe(7);
    accept = true;
    onDrain();
    expect(written).toHaveLength(5);
    expect(written.slice(1, 4).map((w) => /"n":(\d+)/.exec(w)?.[1])).toEqual(['1', '2', '3']);
    expect(written[4]).toBe('event: dropped\ndata: {"count":7,"firstDroppedId":5}\n\n');
    expect(stream.dropped).toBe(0);
  });
});

describe('POST /distributions/preflight', () => {
  it('predicts per device: token not shared, licences short, low storage, Shared iPad in use — and creates nothing', async () => {
    const school = await world.group('予測校');
    const elsewhere = await world.group('予測・共有なし');
    const token = await world.token(school, [BIG, SCARCE], 'preflight');
    const [plain] = await world.devices(1, [school], () => ({}), 'PFP');
    const [full] = await world.devices(1, [school], () => ({ availableGb: 0.1 }), 'PFS');
    const [shared] = await world.devices(
      1,
      [school],
      () => ({ sharedIpad: true, users: [{ shortName: 'taro', loggedIn: true }] }),
      'PFU',
    );
    const [outside] = await world.devices(1, [elsewhere], () => ({}), 'PFO');
    const ids = {
      plain: await deviceId(plain!),
      full: await deviceId(full!),
      shared: await deviceId(shared!),
      outside: await deviceId(outside!),
    };
    // Storage and Shared iPad users are facts the device reports: ask for them first.
    for (const id of Object.values(ids))
      expect((await world.api('POST', `/devices/${id}/refresh`)).status).toBe(202);
    await until('device facts', async () => {
      for (const id of [ids.full, ids.shared]) {
        const d = await world.api<{ facts: { at: string | null }; sharedUsers: { at: string | null } }>(
          'GET',
          `/devices/${id}`,
        );
        if (!d.body.facts.at) return false;
        if (id === ids.shared && !d.body.sharedUsers.at) return false;
      }
      return true;
    });

    const body = {
      kind: 'install',
      tokenId: token.id,
      adamIds: [BIG.adamId],
      targets: { deviceIds: Object.values(ids) },
      licenseMode: 'auto',
    };
    const res = await world.api<{
      devices: { deviceId: string; causes: Cause[] }[];
      summary: { devices: number };
    }>('POST', '/distributions/preflight', body);
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    const causes = new Map(res.body.devices.map((d) => [d.deviceId, d.causes]));
    const codes = (id: string) => causes.get(id)!.map((c) => c.code);
    expect(res.body.summary.devices).toBe(4);
    expect(causes.get(ids.plain)).toEqual([]);
    expect(codes(ids.outside)).toContain('token.not_shared');
    expect(causes.get(ids.full)!.find((c) => c.code === 'device.storage_insufficient')).toMatchObject({
      confidence: 'confirmed',
      adamIds: [BIG.adamId],
    });
    expect(codes(ids.shared)).toContain('shared_ipad.users_logged_in');
    expect(codes(ids.plain)).not.toContain('license.insufficient');

    // Three devices of the school need a licence of SCARCE, two are left; the outside one cannot get one at all.
    const short = await world.api<{ devices: { deviceId: string; causes: Cause[] }[] }>(
      'POST',
      '/distributions/preflight',
      {
        ...body,
        adamIds: [SCARCE.adamId],
      },
    );
    const shortCauses = new Map(short.body.devices.map((d) => [d.deviceId, d.causes.map((c) => c.code)]));
    for (const id of [ids.plain, ids.full, ids.shared])
      expect(shortCauses.get(id)).toContain('license.insufficient');
    expect(shortCauses.get(ids.outside)).not.toContain('license.insufficient');

    // Nothing was created.
    for (const id of Object.values(ids)) {
      expect((await world.api<{ items: unknown[] }>('GET', `/jobs?deviceId=${id}`)).body.items).toEqual([]);
    }
    expect(world.vpp.holders(token.sToken, SCARCE.adamId)).toEqual([]);
    expect((await world.api('POST', '/distributions/preflight', { ...body, tokenId: 'nope' })).status).toBe(
      404,
    );
  });
});

describe('POST /jobs/:id/remediate and the support bundle', () => {
  let tokenId = '';
  let sToken = '';
  let school = '';
  let broken: SimDevice;
  let brokenJob: Job;
  let okJob: Job;

  beforeAll(async () => {
    school = await world.group('対処校');
    const token = await world.token(school, [BIG, SCARCE], 'remedy');
    [tokenId, sToken] = [token.id, token.sToken];
    const [ok, bad] = await world.devices(2, [school], () => ({}), 'REM');
    broken = bad!;
    broken.behaviours.set('InstallApplication', { kind: 'error', chain: LICENCE_ERROR_CHAIN });
    const id = await distribute(tokenId, { deviceIds: [await deviceId(ok!), await deviceId(broken)] });
    expect(await world.settle(id)).toEqual({ success: 1, device_error: 1 });
    const jobs = await jobsOf(id);
    brokenJob = jobs.find((j) => j.status === 'device_error')!;
    okJob = jobs.find((j) => j.status === 'success')!;
  });

  const remediate = (jobId: string, action: string) =>
    world.api<{ action: string; done: boolean; detail: { ja: string; en: string }; job: Job } & ApiError>(
      'POST',
      `/jobs/${jobId}/remediate`,
      { action },
    );

  it('the support bundle has the facts a ticket needs and never the sToken', async () => {
    const res = await world.api<Record<string, unknown>>('GET', `/jobs/${brokenJob.id}/support-bundle`);
    expect(res.status).toBe(200);
    const raw = JSON.stringify(res.body);
    expect(raw).not.toContain(sToken);
    const row = await world.server.haishin.store.vpp.getToken(tokenId);
    expect(raw).not.toContain(row!.notification_auth_token);
    expect(res.body).toMatchObject({
      accountId: await world.server.haishin.store.getSetting('instance.id'),
      token: { id: tokenId, orgName: '教育委員会', locationName: 'remedy', state: 'active' },
      app: { adamId: BIG.adamId, name: BIG.name, bundleId: BIG.bundleId },
      device: { serialNumber: broken.serialNumber },
      job: {
        id: brokenJob.id,
        status: 'device_error',
        statusLabel: { ja: '端末エラー', en: 'Device error' },
      },
      error: { codes: ['MCMDMErrorDomain:12064', 'DeviceManagement.error:2605'] },
    });
    const bundle = res.body as { error: { raw: string }; causes: Cause[]; job: { history: unknown[] } };
    expect(bundle.error.raw).toContain('12064');
    expect(bundle.causes.map((c) => c.code)).toContain('license.not_assigned');
    expect(bundle.job.history.length).toBeGreaterThanOrEqual(5);

    const text = await fetch(`${world.server.baseUrl}/api/v1/jobs/${brokenJob.id}/support-bundle`, {
      headers: { authorization: `Bearer ${ADMIN}`, accept: 'text/plain' },
    });
    expect(text.headers.get('content-type')).toMatch(/^text\/plain/);
    const body = await text.text();
    expect(body).toContain(broken.serialNumber);
    expect(body).toContain(BIG.adamId);
    expect(body).toContain('MCMDMErrorDomain:12064');
    expect(body).toContain('端末番号 / Device number');
    expect(body).toContain('license.not_assigned');
    expect(body).not.toContain(sToken);
  });

  it('refuses an unknown action (400) and one that does not fit the job (409), in both languages', async () => {
    const unknown = await remediate(brokenJob.id, 'make_coffee');
    expect(unknown.status).toBe(400);
    expect(unknown.body.error.code).toBe('remediate.unknown_action');
    const notRetryable = await remediate(okJob.id, 'retry');
    expect(notRetryable.status).toBe(409);
    expect(notRetryable.body.error.code).toBe('remediate.not_retryable');
    expect(notRetryable.body.error.messages.ja).toContain(okJob.id);
    expect(notRetryable.body.error.messages.en).toContain('success');
    expect((await remediate(brokenJob.id, 'cancel')).status).toBe(409);
    expect((await remediate(okJob.id, 'assign_license')).status).toBe(409);
    expect((await remediate('nope', 'retry')).status).toBe(404);
  });

  it('pointer actions answer where to act and change nothing', async () => {
    const res = await remediate(brokenJob.id, 'renew_token');
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ action: 'renew_token', done: false, job: { status: 'device_error' } });
    expect(res.body.detail.en).toContain(`PUT /api/v1/vpp-tokens/${tokenId}`);
    expect(res.body.detail.ja).toContain(`PUT /api/v1/vpp-tokens/${tokenId}`);
    const logout = await remediate(brokenJob.id, 'logout_users');
    expect(logout.body.done).toBe(false);
    expect(logout.body.detail.ja).toContain('ログアウト');
  });

  it('refresh_device_info asks the device for its facts', async () => {
    const before = broken.received.filter((r) => r === 'DeviceInformation').length;
    const res = await remediate(brokenJob.id, 'refresh_device_info');
    expect(res.status).toBe(200);
    expect(res.body.done).toBe(true);
    expect(res.body.detail.en).toContain('DeviceInformation');
    await until(
      'DeviceInformation',
      async () => broken.received.filter((r) => r === 'DeviceInformation').length > before,
    );
  });

  it('retry starts a new attempt that succeeds once the device accepts; the audit log says what was done', async () => {
    broken.behaviours.delete('InstallApplication');
    const res = await remediate(brokenJob.id, 'retry');
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ action: 'retry', done: true, job: { status: 'waiting', attempt: 2 } });
    await until(
      'success',
      async () => (await world.api<Job>('GET', `/jobs/${brokenJob.id}`)).body.status === 'success',
    );
    const audit = await world.server.haishin.store.admin.listAudit({
      objectType: 'job',
      objectId: brokenJob.id,
      limit: 10,
    });
    expect(audit.map((a) => a.action)).toContain('job.remediate');
  });

  it('reclaim_and_reassign gives the licence back to Apple, waits for it, assigns afresh and installs', async () => {
    const [device] = await world.devices(1, [school], () => ({}), 'RCL');
    device!.behaviours.set('InstallApplication', { kind: 'error', chain: LICENCE_ERROR_CHAIN });
    const id = await distribute(tokenId, { deviceIds: [await deviceId(device!)] });
    expect(await world.settle(id)).toEqual({ device_error: 1 });
    const [job] = await jobsOf(id);
    expect(world.vpp.holders(sToken, BIG.adamId)).toContain(device!.serialNumber);
    device!.behaviours.delete('InstallApplication');
    world.vpp.resetCounters();

    const res = await remediate(job!.id, 'reclaim_and_reassign');
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body.done).toBe(true);
    expect(await world.settle(id)).toEqual({ success: 1 });
    expect(world.vpp.calls('POST assets/disassociate')).toBe(1);
    expect(world.vpp.calls('POST assets/associate')).toBe(1);
    expect(world.vpp.holders(sToken, BIG.adamId)).toContain(device!.serialNumber);
    const history = (await world.api<{ history: { to: string }[] }>('GET', `/jobs/${job!.id}`)).body.history;
    expect(history.slice(-6).map((h) => h.to)).toEqual([
      'waiting',
      'license_assigning',
      'push_sending',
      'awaiting_response',
      'executing',
      'success',
    ]);
    // Nothing left to reclaim now that it succeeded; and a device without a licence has nothing to give back.
    expect((await remediate(job!.id, 'reclaim_and_reassign')).status).toBe(409);
  });

  it('assign_license assigns a licence by hand to a manual-mode job that had none, and the install proceeds', async () => {
    const [device] = await world.devices(1, [school], () => ({}), 'MAN');
    const id = await distribute(tokenId, { deviceIds: [await deviceId(device!)] }, [SCARCE.adamId], {
      licenseMode: 'manual',
    });
    expect(await world.settle(id)).toEqual({ license_failed: 1 });
    const [job] = await jobsOf(id);
    expect(job!.reason).toBe('license.not_assigned');
    const res = await remediate(job!.id, 'assign_license');
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body.done).toBe(true);
    expect(await world.settle(id)).toEqual({ success: 1 });
    expect(world.vpp.holders(sToken, SCARCE.adamId)).toContain(device!.serialNumber);
  });
});

describe('the licence waits the remedies rely on', () => {
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

  it('a job does not ask for a licence while a reclaim of the same licence is in flight', async () => {
    const school = await world.group('回収待ち校');
    const token = await world.token(school, [BIG], 'reclaim-wait');
    const [device] = await world.devices(1, [school], () => ({}), 'RCW');
    device!.behaviours.set('InstallApplication', { kind: 'error', chain: LICENCE_ERROR_CHAIN });
    const id = await distribute(token.id, { deviceIds: [await deviceId(device!)] });
    expect(await world.settle(id)).toEqual({ device_error: 1 });
    device!.behaviours.delete('InstallApplication');
    const [job] = await jobsOf(id);
    const { store, engine } = world.server.haishin;
    const where = { tokenId: token.id, adamId: BIG.adamId, serials: [device!.serialNumber] };
    // As if reclaim_and_reassign had just asked Apple to take the licence back.
    await store.vpp.setLicenseState(where, 'reclaiming', null, new Date());
    world.vpp.resetCounters();
    await engine.retryJob(job!.id);
    await sleep(300);
    expect((await world.api<Job>('GET', `/jobs/${job!.id}`)).body.status).toBe('license_assigning');
    expect(world.vpp.calls('POST assets/associate')).toBe(0);
    await store.vpp.setLicenseState(where, 'reclaimed', null, new Date());
    expect(await world.settle(id)).toEqual({ success: 1 });
    expect(world.vpp.calls('POST assets/associate')).toBe(1);
  });

  it('a manual-mode job waits for a licence haishin is still assigning instead of failing', async () => {
    const school = await world.group('手動待ち校');
    const token = await world.token(school, [BIG], 'manual-wait');
    const [device] = await world.devices(1, [school], () => ({}), 'MNW');
    const { store } = world.server.haishin;
    const row = {
      tokenId: token.id,
      adamId: BIG.adamId,
      pricingParam: 'STDQ',
      serial: device!.serialNumber,
      origin: 'manual' as const,
      viaGroupId: school,
    };
    await store.vpp.markLicenses([row], 'assigning', null, new Date());
    const id = await distribute(token.id, { deviceIds: [await deviceId(device!)] }, [BIG.adamId], {
      licenseMode: 'manual',
    });
    await sleep(300);
    expect((await jobsOf(id))[0]!.status).toBe('waiting');
    // Apple confirms: the licence is there, and the install goes ahead.
    world.vpp.assign(token.sToken, BIG.adamId, [device!.serialNumber]);
    await store.vpp.setLicenseState(
      { tokenId: token.id, adamId: BIG.adamId, serials: [device!.serialNumber] },
      'assigned',
      null,
      new Date(),
    );
    expect(await world.settle(id)).toEqual({ success: 1 });
  });
});

describe('shutdown', () => {
  it('closing the server ends open event streams instead of waiting for their clients', async () => {
    const stream = await openEvents();
    await stream.waitFor('ready', (m) => m.some((x) => x.event === 'ready'));
    closed = true;
    const timeout = new Promise<string>((r) => setTimeout(() => r('timed out'), 5000).unref());
    expect(await Promise.race([world.close().then(() => 'closed'), timeout])).toBe('closed');
    expect(await Promise.race([stream.ended.then(() => 'ended'), timeout])).toBe('ended');
  });
});

import { randomBytes } from 'node:crypto';
import http2 from 'node:http2';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import tls from 'node:tls';
import forge from 'node-forge';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ApnsClient } from '../src/apple/apns/client.ts';
import type { ApnsClientOptions, PushResult, PushTarget } from '../src/apple/apns/client.ts';
import {
  generateDemoPushIdentity,
  loadPushIdentity,
  PushCertificateError,
} from '../src/apple/apns/pushcert.ts';
import type { PushIdentity } from '../src/apple/apns/pushcert.ts';
import { ManualClock, systemClock } from '../src/core/clock.ts';
import { FakeApns, createLocalhostCertificate } from '../src/sim/apns/server.ts';
import type { FakeApnsOptions } from '../src/sim/apns/server.ts';

// TLS checks certificate validity against the real time, so identities are made from it.
const realNow = () => systemClock.now();
const DAY = 24 * 3600_000;
const FAST_RETRY = { attempts: 3, baseMs: 2, capMs: 10 };

let identity: PushIdentity;
let stranger: PushIdentity;
let expired: PushIdentity;

beforeAll(() => {
  identity = generateDemoPushIdentity(realNow());
  stranger = generateDemoPushIdentity(realNow());
  expired = generateDemoPushIdentity(new Date(realNow().getTime() - 400 * DAY));
});

const closers: Array<() => Promise<void>> = [];
afterEach(async () => {
  while (closers.length > 0) await closers.pop()!();
});
afterAll(async () => {
  while (closers.length > 0) await closers.pop()!();
});

async function startFake(options: Partial<FakeApnsOptions> = {}): Promise<FakeApns> {
  const fake = new FakeApns({ accept: [identity.certPem, expired.certPem], ...options });
  await fake.listen();
  closers.push(() => fake.close());
  return fake;
}

function clientFor(fake: FakeApns, options: Partial<ApnsClientOptions> = {}): ApnsClient {
  const client = new ApnsClient({
    url: fake.url,
    identity,
    ca: fake.caPem,
    clock: new ManualClock('2026-03-01T00:00:00Z'),
    retry: FAST_RETRY,
    ...options,
  });
  closers.push(() => client.close());
  return client;
}

const token = () => randomBytes(32);
const targets = (count: number): PushTarget[] =>
  Array.from({ length: count }, (_, index) => ({
    deviceId: `device-${index}`,
    token: token(),
    pushMagic: `magic-${index}`,
  }));

async function collect(client: ApnsClient, list: Iterable<PushTarget>): Promise<PushResult[]> {
  const results: PushResult[] = [];
  await client.pushMany(list, (result) => results.push(result));
  return results;
}

function kinds(results: PushResult[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const result of results) counts[result.outcome.kind] = (counts[result.outcome.kind] ?? 0) + 1;
  return counts;
}

/** One request with a plain node:http2 client, to see what the fake says to a sender that is not ApnsClient. */
async function rawRequest(
  fake: FakeApns,
  headers: http2.OutgoingHttpHeaders,
  body: string | null,
  who: PushIdentity = identity,
): Promise<{ status: number; body: Record<string, unknown> | null; apnsId: string | null }> {
  const session = http2.connect(fake.url, { cert: who.certPem, key: who.keyPem, ca: fake.caPem });
  session.on('error', () => {});
  try {
    return await new Promise((resolve, reject) => {
      const stream = session.request({ ':method': 'POST', ...headers });
      let status = 0;
      let apnsId: string | null = null;
      let text = '';
      stream.on('response', (h) => {
        status = Number(h[':status']);
        apnsId = typeof h['apns-id'] === 'string' ? h['apns-id'] : null;
      });
      stream.setEncoding('utf8');
      stream.on('data', (chunk: string) => (text += chunk));
      stream.on('end', () =>
        resolve({ status, apnsId, body: text === '' ? null : (JSON.parse(text) as Record<string, unknown>) }),
      );
      stream.on('error', reject);
      stream.end(body ?? undefined);
    });
  } finally {
    session.close();
  }
}

describe('ApnsClient against the fake APNs', () => {
  it('pushes 10,000 devices over one TLS session with many streams in flight', async () => {
    const fake = await startFake();
    const client = clientFor(fake);
    const results = await collect(client, targets(10_000));
    expect(results).toHaveLength(10_000);
    expect(kinds(results)).toEqual({ sent: 10_000 });
    expect(new Set(results.map((r) => r.deviceId)).size).toBe(10_000);
    expect(fake.stats.sessions).toBe(1);
    expect(client.stats().sessionsOpened).toBe(1);
    expect(fake.stats.maxConcurrentStreams).toBeGreaterThan(50);
    expect(client.stats().maxConcurrentStreams).toBeGreaterThan(50);
    expect(client.stats().pushesSent).toBe(10_000);
    expect(fake.stats.accepted).toBe(10_000);
  });

  it("sends exactly Apple's path, headers and body, and the fake keeps the latest push per token", async () => {
    const delivered: Array<[string, string]> = [];
    const fake = await startFake({ onPush: (tokenHex, magic) => delivered.push([tokenHex, magic]) });
    const client = clientFor(fake);
    const bytes = token();
    const hex = bytes.toString('hex');
    const first = await client.push({ deviceId: 'ipad-1', token: bytes, pushMagic: 'FIRST-MAGIC' });
    // Stored tokens may be upper-case hex; the path must be lower-case.
    const second = await client.push({
      deviceId: 'ipad-1',
      token: hex.toUpperCase(),
      pushMagic: 'SECOND-MAGIC',
    });

    expect(first.outcome.kind).toBe('sent');
    expect(second.outcome).toMatchObject({ kind: 'sent', status: 200 });
    expect(second.deviceId).toBe('ipad-1');
    expect(second.at).toEqual(new Date('2026-03-01T00:00:00Z'));
    const seen = fake.recent().at(-1)!;
    expect(seen.method).toBe('POST');
    expect(seen.path).toBe(`/3/device/${hex}`);
    expect(seen.headers['apns-push-type']).toBe('mdm');
    expect(seen.headers['apns-topic']).toBe(identity.topic);
    expect(seen.headers['content-type']).toBe('application/json');
    expect(seen.body).toBe('{"mdm":"SECOND-MAGIC"}');
    expect(seen.status).toBe(200);
    if (second.outcome.kind === 'sent') expect(second.outcome.apnsId).toMatch(/^[0-9a-f-]{36}$/);

    expect(fake.latest(hex)?.pushMagic).toBe('SECOND-MAGIC');
    expect(fake.countFor(hex)).toBe(2);
    await new Promise((resolve) => setImmediate(resolve));
    expect(delivered.at(-1)).toEqual([hex, 'SECOND-MAGIC']);
  });

  it('records every error class', async () => {
    const fake = await startFake();
    const client = clientFor(fake);
    const gone = token();
    const bad = token();
    fake.failToken(gone.toString('hex'), {
      status: 410,
      reason: 'Unregistered',
      timestamp: Date.UTC(2026, 1, 14, 9, 30),
    });
    fake.failToken(bad.toString('hex'), { status: 400, reason: 'BadDeviceToken' });

    const unregistered = await client.push({ deviceId: 'gone', token: gone, pushMagic: 'm' });
    expect(unregistered.outcome).toEqual({
      kind: 'unregistered',
      status: 410,
      reason: 'Unregistered',
      timestamp: new Date('2026-02-14T09:30:00Z'),
    });
    expect(fake.countFor(gone.toString('hex'))).toBe(1);

    const badToken = await client.push({ deviceId: 'bad', token: bad, pushMagic: 'm' });
    expect(badToken.outcome).toEqual({ kind: 'bad_token', status: 400, reason: 'BadDeviceToken' });
    expect(fake.countFor(bad.toString('hex'))).toBe(1);

    const notHex = await client.push({ deviceId: 'junk', token: 'zz/../../admin', pushMagic: 'm' });
    expect(notHex.outcome).toMatchObject({ kind: 'bad_token', reason: 'BadDeviceToken' });

    fake.failNext(2, { status: 429, reason: 'TooManyRequests' });
    const throttled = token();
    const afterThrottle = await client.push({ deviceId: 'throttled', token: throttled, pushMagic: 'm' });
    expect(afterThrottle.outcome.kind).toBe('sent');
    expect(fake.countFor(throttled.toString('hex'))).toBe(3);
    expect(client.stats().retries).toBe(2);

    fake.failAll({ status: 503, reason: 'ServiceUnavailable' });
    const down = token();
    const unavailable = await client.push({ deviceId: 'down', token: down, pushMagic: 'm' });
    expect(unavailable.outcome).toEqual({
      kind: 'failed',
      status: 503,
      reason: 'ServiceUnavailable',
      attempts: 3,
    });
    expect(fake.countFor(down.toString('hex'))).toBe(3);

    fake.failAll({ status: 403, reason: 'BadCertificate' });
    const refused = token();
    const forbidden = await client.push({ deviceId: 'cert', token: refused, pushMagic: 'm' });
    expect(forbidden.outcome).toEqual({ kind: 'certificate_problem', status: 403, reason: 'BadCertificate' });
    expect(fake.countFor(refused.toString('hex'))).toBe(1);
  });

  it('answers 403 to a certificate it does not trust or that has expired', async () => {
    const fake = await startFake();
    const unknown = clientFor(fake, { identity: stranger });
    const outcome = (await unknown.push({ deviceId: 'd', token: token(), pushMagic: 'm' })).outcome;
    expect(outcome).toEqual({ kind: 'certificate_problem', status: 403, reason: 'BadCertificate' });

    const old = clientFor(fake, { identity: expired });
    const oldOutcome = (await old.push({ deviceId: 'd', token: token(), pushMagic: 'm' })).outcome;
    expect(oldOutcome).toEqual({ kind: 'certificate_problem', status: 403, reason: 'ExpiredProviderToken' });
    expect(fake.stats.accepted).toBe(0);
  });

  it('reports a certificate problem when every connection is ended at the TLS handshake', async () => {
    const fake = await startFake({ rejectAtTls: true });
    const client = clientFor(fake, { identity: stranger });
    const result = await client.push({ deviceId: 'd', token: token(), pushMagic: 'm' });
    expect(result.outcome.kind).toBe('certificate_problem');
    if (result.outcome.kind === 'certificate_problem')
      expect(result.outcome.reason).toContain('TLS handshake');
    expect(client.stats().sessionsOpened).toBe(FAST_RETRY.attempts);
    expect(client.stats().requests).toBe(0);
    expect(fake.stats.requests).toBe(0);
  });

  it('takes a reset between the TLS handshake and SETTINGS for the same refusal (the reset can overtake the alert)', async () => {
    const fake = await startFake();
    // Every connection is reset as soon as the handshake is done, before any HTTP/2 byte is read.
    const serverTls = createLocalhostCertificate();
    const resetter = net.createServer((raw) => {
      const secure = new tls.TLSSocket(raw, {
        isServer: true,
        key: serverTls.keyPem,
        cert: serverTls.certPem,
        ALPNProtocols: ['h2'],
      });
      secure.on('error', () => {});
      secure.once('secure', () => raw.resetAndDestroy());
    });
    await new Promise<void>((done) => resetter.listen(0, '127.0.0.1', done));
    closers.push(() => new Promise<void>((done) => resetter.close(() => done())));
    const port = (resetter.address() as AddressInfo).port;
    const client = clientFor(fake, { url: `https://127.0.0.1:${port}`, ca: serverTls.certPem });
    const check = await client.check();
    expect(check).toMatchObject({ ok: false, kind: 'certificate_refused' });
    const result = await client.push({ deviceId: 'd', token: token(), pushMagic: 'm' });
    expect(result.outcome.kind).toBe('certificate_problem');
  });

  it('reconnects after a GOAWAY in the middle of a burst and still completes every push', async () => {
    const fake = await startFake();
    const client = clientFor(fake);
    fake.goAwayAfter(700);
    const list = targets(3_000);
    const results = await collect(client, list);
    expect(kinds(results)).toEqual({ sent: 3_000 });
    expect(fake.stats.goaways).toBe(1);
    expect(fake.stats.sessions).toBe(2);
    expect(client.stats().sessionsOpened).toBe(2);
    // Streams past the GOAWAY's last id were never processed: resent at once, not counted as retries.
    expect(client.stats().rerouted).toBeGreaterThan(0);
    expect(client.stats().retries).toBe(0);
    // ...and nothing was processed twice.
    expect(fake.stats.requests).toBe(3_000);
    // Every device got its push, none lost to the GOAWAY.
    for (const target of list)
      expect(fake.latest(Buffer.from(target.token as Buffer).toString('hex'))).toBeDefined();
  });

  it('reconnects when the connection is cut in the middle of a burst', async () => {
    const fake = await startFake();
    const client = clientFor(fake);
    fake.dropAfter(400);
    const list = targets(2_000);
    const results = await collect(client, list);
    expect(kinds(results)).toEqual({ sent: 2_000 });
    expect(fake.stats.drops).toBe(1);
    expect(fake.stats.sessions).toBe(2);
    expect(client.stats().retries).toBeGreaterThan(0);
    for (const target of list)
      expect(fake.latest(Buffer.from(target.token as Buffer).toString('hex'))).toBeDefined();

    fake.dropConnections();
    expect((await client.push({ deviceId: 'after-drop', token: token(), pushMagic: 'm' })).outcome.kind).toBe(
      'sent',
    );
    expect(client.stats().sessionsOpened).toBe(3);
  });

  it('fails cleanly after its retries when nothing listens', async () => {
    const fake = await startFake();
    const client = clientFor(fake);
    expect((await client.push({ deviceId: 'a', token: token(), pushMagic: 'm' })).outcome.kind).toBe('sent');
    await fake.close();
    const offline = await client.push({ deviceId: 'b', token: token(), pushMagic: 'm' });
    expect(offline.outcome).toMatchObject({ kind: 'failed', status: null, attempts: FAST_RETRY.attempts });
    if (offline.outcome.kind === 'failed') expect(offline.outcome.reason).toContain(fake.url);
  });

  it("never opens more streams than the server's SETTINGS_MAX_CONCURRENT_STREAMS", async () => {
    const fake = await startFake({ maxConcurrentStreams: 16 });
    const client = clientFor(fake, { maxInFlight: 500 });
    const results = await collect(client, targets(2_000));
    expect(kinds(results)).toEqual({ sent: 2_000 });
    expect(client.stats().peerMaxConcurrentStreams).toBe(16);
    expect(client.stats().maxConcurrentStreams).toBeLessThanOrEqual(16);
    expect(fake.stats.maxConcurrentStreams).toBeLessThanOrEqual(16);
    expect(fake.stats.maxConcurrentStreams).toBeGreaterThan(8);
  });

  it('pushMany pulls targets lazily and never holds more than maxQueued pending', async () => {
    const fake = await startFake();
    const client = clientFor(fake, { maxInFlight: 32, maxQueued: 64 });
    let pulled = 0;
    let worstPendingAtPull = 0;
    function* lazyTargets(count: number): Generator<PushTarget> {
      for (let index = 0; index < count; index++) {
        worstPendingAtPull = Math.max(worstPendingAtPull, client.stats().pending);
        pulled++;
        yield { deviceId: `lazy-${index}`, token: token(), pushMagic: 'm' };
      }
    }
    let pulledAtFirstResult = -1;
    let count = 0;
    await client.pushMany(lazyTargets(5_000), (result) => {
      if (pulledAtFirstResult < 0) pulledAtFirstResult = pulled;
      expect(result.outcome.kind).toBe('sent');
      count++;
    });
    expect(count).toBe(5_000);
    expect(worstPendingAtPull).toBeLessThan(64);
    expect(client.stats().maxPending).toBe(64);
    expect(client.stats().maxConcurrentStreams).toBeLessThanOrEqual(32);
    expect(pulledAtFirstResult).toBeLessThanOrEqual(64 + 1);
    expect(client.stats().pending).toBe(0);
  });

  it('pushMany rejects when onResult throws, after the pushes already started have finished', async () => {
    const fake = await startFake();
    const client = clientFor(fake, { maxQueued: 10 });
    let calls = 0;
    await expect(
      client.pushMany(targets(1_000), () => {
        calls++;
        if (calls === 5) throw new Error('store is down');
      }),
    ).rejects.toThrow('store is down');
    expect(client.stats().pending).toBe(0);
    expect(fake.stats.requests).toBeLessThan(100);
  });

  it('answers failed for pushes after close()', async () => {
    const fake = await startFake();
    const client = clientFor(fake);
    await client.close();
    const result = await client.push({ deviceId: 'late', token: token(), pushMagic: 'm' });
    expect(result.outcome).toMatchObject({ kind: 'failed', reason: 'the APNs client was closed' });
    expect(fake.stats.requests).toBe(0);
  });
});

describe('the fake APNs validates like Apple', () => {
  let fake: FakeApns;
  beforeAll(async () => {
    fake = new FakeApns({ accept: [identity.certPem, expired.certPem] });
    await fake.listen();
  });
  afterAll(async () => {
    await fake?.close();
  });

  const hex = () => token().toString('hex');
  const good = () => ({
    ':path': `/3/device/${hex()}`,
    'apns-push-type': 'mdm',
    'apns-topic': identity.topic,
  });

  it('accepts a correct push with an apns-id', async () => {
    const answer = await rawRequest(fake, good(), '{"mdm":"x"}');
    expect(answer.status).toBe(200);
    expect(answer.apnsId).toMatch(/^[0-9a-f-]{36}$/);
    expect(answer.body).toBeNull();
  });

  it.each([
    ['a missing push type', { 'apns-push-type': undefined }, '{"mdm":"x"}', 400, 'InvalidPushType'],
    ['an alert push type', { 'apns-push-type': 'alert' }, '{"mdm":"x"}', 400, 'InvalidPushType'],
    [
      'a topic of another certificate',
      { 'apns-topic': 'com.apple.mgmt.External.00000000-0000-0000-0000-000000000000' },
      '{"mdm":"x"}',
      400,
      'TopicDisallowed',
    ],
    ['a non-MDM topic', { 'apns-topic': 'com.example.app' }, '{"mdm":"x"}', 400, 'BadTopic'],
    ['a missing topic', { 'apns-topic': undefined }, '{"mdm":"x"}', 400, 'MissingTopic'],
    ['a short token', { ':path': '/3/device/abcdef' }, '{"mdm":"x"}', 400, 'BadDeviceToken'],
    ['a wrong path', { ':path': '/2/device/abc' }, '{"mdm":"x"}', 404, 'BadPath'],
    ['a GET', { ':method': 'GET' }, null, 405, 'MethodNotAllowed'],
    ['an empty body', {}, null, 400, 'PayloadEmpty'],
    ['an alert payload', {}, '{"aps":{"alert":"hi"}}', 400, 'BadPayload'],
    ['an extra key', {}, '{"mdm":"x","aps":{}}', 400, 'BadPayload'],
    ['a non-string PushMagic', {}, '{"mdm":5}', 400, 'BadPayload'],
    ['a huge body', {}, JSON.stringify({ mdm: 'x'.repeat(5000) }), 413, 'PayloadTooLarge'],
    ['a bad apns-id', { 'apns-id': 'not-a-uuid' }, '{"mdm":"x"}', 400, 'BadMessageId'],
  ] as const)('refuses %s', async (_label, change, body, status, reason) => {
    const headers: http2.OutgoingHttpHeaders = { ...good() };
    for (const [name, value] of Object.entries(change)) {
      if (value === undefined) delete headers[name];
      else headers[name] = value;
    }
    const answer = await rawRequest(fake, headers, body);
    expect(answer.status).toBe(status);
    expect(answer.body).toEqual({ reason });
  });

  it('refuses an untrusted and an expired certificate with 403', async () => {
    expect((await rawRequest(fake, good(), '{"mdm":"x"}', stranger)).body).toEqual({
      reason: 'BadCertificate',
    });
    expect((await rawRequest(fake, good(), '{"mdm":"x"}', expired)).body).toEqual({
      reason: 'ExpiredProviderToken',
    });
  });

  it('accepts a certificate trusted after start', async () => {
    const later = new FakeApns({ accept: [] });
    await later.listen();
    try {
      expect((await rawRequest(later, good(), '{"mdm":"x"}')).status).toBe(403);
      later.trust(identity.certPem);
      expect((await rawRequest(later, good(), '{"mdm":"x"}')).status).toBe(200);
    } finally {
      await later.close();
    }
  });

  it('puts the timestamp in a 410 and echoes the apns-id it was given', async () => {
    const tokenHex = hex();
    fake.failToken(tokenHex, { status: 410, reason: 'Unregistered', timestamp: 1_700_000_000_000 });
    const apnsId = '3f1c2a4e-9b1d-4c6e-8a2f-5d7e9c0b1a2f';
    const answer = await rawRequest(
      fake,
      { ...good(), ':path': `/3/device/${tokenHex}`, 'apns-id': apnsId },
      '{"mdm":"x"}',
    );
    expect(answer).toEqual({
      status: 410,
      apnsId,
      body: { reason: 'Unregistered', timestamp: 1_700_000_000_000 },
    });
    fake.clearFailures();
  });
});

describe('loadPushIdentity', () => {
  const now = () => realNow();

  function certWithoutUid(): string {
    const key = forge.pki.privateKeyFromPem(identity.keyPem) as forge.pki.rsa.PrivateKey;
    const cert = forge.pki.createCertificate();
    cert.publicKey = forge.pki.setRsaPublicKey(key.n, key.e);
    cert.serialNumber = '01';
    cert.validity.notBefore = new Date(now().getTime() - DAY);
    cert.validity.notAfter = new Date(now().getTime() + DAY);
    cert.setSubject([{ name: 'commonName', value: 'Apple Development IOS Push Services: com.example.app' }]);
    cert.setIssuer([{ name: 'commonName', value: 'Apple Development IOS Push Services: com.example.app' }]);
    cert.sign(key, forge.md.sha256.create());
    return forge.pki.certificateToPem(cert);
  }

  function toP12(source: PushIdentity, password: string): Uint8Array {
    const key = forge.pki.privateKeyFromPem(source.keyPem);
    const cert = forge.pki.certificateFromPem(source.certPem);
    const asn1 = forge.pkcs12.toPkcs12Asn1(key, [cert], password, { algorithm: '3des' });
    return Buffer.from(forge.asn1.toDer(asn1).getBytes(), 'binary');
  }

  function refusal(load: () => unknown): PushCertificateError {
    try {
      load();
    } catch (err) {
      expect(err).toBeInstanceOf(PushCertificateError);
      return err as PushCertificateError;
    }
    throw new Error('expected loadPushIdentity to refuse');
  }

  it('extracts the topic from the UID, the expiry and the subject', () => {
    const loaded = loadPushIdentity({ certPem: identity.certPem, keyPem: identity.keyPem }, now());
    expect(loaded.topic).toBe(identity.topic);
    expect(loaded.topic).toMatch(/^com\.apple\.mgmt\.External\.[0-9A-F-]{36}$/);
    expect(loaded.notAfter.getTime()).toBe(Math.floor(identity.notAfter.getTime() / 1000) * 1000);
    expect(loaded.subject).toContain(`UID=${identity.topic}`);
    expect(loaded.subject).toContain('CN=APSP:');
  });

  it('reads a PKCS#12 archive and names a wrong password', () => {
    const p12 = toP12(identity, 'secret');
    const loaded = loadPushIdentity({ pkcs12: p12, password: 'secret' }, now());
    expect(loaded.topic).toBe(identity.topic);
    const error = refusal(() => loadPushIdentity({ pkcs12: p12, password: 'wrong' }, now()));
    expect(error.code).toBe('bad_password');
    expect(error.message).toContain('HAISHIN_APNS_CERT_PASSWORD');
  });

  it('refuses an expired certificate, saying when and what to do', () => {
    const error = refusal(() =>
      loadPushIdentity({ certPem: expired.certPem, keyPem: expired.keyPem }, now()),
    );
    expect(error.code).toBe('expired');
    expect(error.message).toContain('HAISHIN_APNS_CERT');
    expect(error.message).toContain(expired.topic);
    expect(error.message).toContain('expired on');
    expect(error.message).toContain('identity.apple.com');
  });

  it('refuses a certificate that is not valid yet', () => {
    const error = refusal(() => loadPushIdentity(identity, new Date(realNow().getTime() - 30 * DAY)));
    expect(error.code).toBe('not_yet_valid');
    expect(error.message).toContain('clock');
  });

  it('refuses a certificate without a UID', () => {
    const error = refusal(() =>
      loadPushIdentity({ certPem: certWithoutUid(), keyPem: identity.keyPem }, now()),
    );
    expect(error.code).toBe('no_topic');
    expect(error.message).toContain('no UID');
    expect(error.message).toContain('MDM push certificate');
  });

  it('refuses a key that does not match the certificate', () => {
    const error = refusal(() =>
      loadPushIdentity({ certPem: identity.certPem, keyPem: stranger.keyPem }, now()),
    );
    expect(error.code).toBe('key_mismatch');
    expect(error.message).toContain('HAISHIN_APNS_KEY');
  });

  it('refuses unreadable PEM and names the file it came from', () => {
    const garbage = refusal(() =>
      loadPushIdentity(
        { certPem: 'not a certificate', keyPem: identity.keyPem, labels: { cert: '/etc/haishin/push.pem' } },
        now(),
      ),
    );
    expect(garbage.code).toBe('unreadable');
    expect(garbage.message).toContain('/etc/haishin/push.pem');
    const truncated = identity.certPem.replace(/[A-Za-z0-9+/]{64}\r?\n/, '');
    expect(refusal(() => loadPushIdentity({ certPem: truncated, keyPem: identity.keyPem }, now())).code).toBe(
      'unreadable',
    );
    const badKey = refusal(() => loadPushIdentity({ certPem: identity.certPem, keyPem: 'nope' }, now()));
    expect(badKey.code).toBe('unreadable');
    expect(badKey.message).toContain('HAISHIN_APNS_KEY');
  });
});

// Pushes per second of ApnsClient → FakeApns, next to a bare node:http2 client hammering a bare
// HTTP/2 TLS server on the same machine in the same run: the ratio is what haishin's client and
// fake cost over the transport itself. Both ends live in this one process, as in STACK.md's proof.
//
//   node --import tsx bench/apns.bench.ts            (20,000 pushes, 500 in flight)
//   APNS_BENCH_PUSHES=50000 APNS_BENCH_INFLIGHT=1000 node --import tsx bench/apns.bench.ts
import { randomBytes, randomUUID } from 'node:crypto';
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import { ApnsClient } from '../src/apple/apns/client.ts';
import { generateDemoPushIdentity } from '../src/apple/apns/pushcert.ts';
import { systemClock } from '../src/core/clock.ts';
import { createLocalhostCertificate, FakeApns } from '../src/sim/apns/server.ts';

const PUSHES = Math.min(1_000_000, Math.max(1_000, Number(process.env.APNS_BENCH_PUSHES ?? 20_000)));
const IN_FLIGHT = Math.min(1_000, Math.max(1, Number(process.env.APNS_BENCH_INFLIGHT ?? 500)));
const WARMUP = 2_000;

const identity = generateDemoPushIdentity(systemClock.now());
const tokens = Array.from({ length: PUSHES }, () => randomBytes(32).toString('hex'));

/** The floor: a server that answers 200 and a client that only counts. */
async function rawBaseline(count: number): Promise<number> {
  const tls = createLocalhostCertificate();
  const server = http2.createSecureServer({
    cert: tls.certPem,
    key: tls.keyPem,
    requestCert: true,
    rejectUnauthorized: false,
    settings: { maxConcurrentStreams: 1000 },
    maxSessionMemory: 64,
  });
  server.on('stream', (stream) => {
    stream.on('error', () => {});
    stream.resume();
    stream.on('end', () => stream.respond({ ':status': 200, 'apns-id': randomUUID() }, { endStream: true }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const session = http2.connect(url, {
    cert: identity.certPem,
    key: identity.keyPem,
    ca: tls.certPem,
    maxSessionMemory: 64,
  });
  session.on('error', () => {});
  await new Promise<void>((resolve) => session.once('remoteSettings', () => resolve()));
  const one = (token: string) =>
    new Promise<number>((resolve) => {
      const body = JSON.stringify({ mdm: 'bench' });
      const stream = session.request({
        ':method': 'POST',
        ':path': `/3/device/${token}`,
        'apns-push-type': 'mdm',
        'apns-topic': identity.topic,
        'content-type': 'application/json',
      });
      let status = 0;
      stream.on('response', (headers) => (status = Number(headers[':status'])));
      stream.on('error', () => {});
      stream.resume();
      stream.on('close', () => resolve(status));
      stream.end(body);
    });
  const run = async (n: number) => {
    let next = 0;
    let ok = 0;
    await Promise.all(
      Array.from({ length: IN_FLIGHT }, async () => {
        while (next < n) {
          const index = next++;
          if ((await one(tokens[index % tokens.length]!)) === 200) ok++;
        }
      }),
    );
    if (ok !== n) throw new Error(`baseline: ${n - ok} requests failed`);
  };
  await run(WARMUP);
  const started = performance.now();
  await run(count);
  const seconds = (performance.now() - started) / 1000;
  session.close();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return count / seconds;
}

async function haishin(
  count: number,
): Promise<{ rate: number; stats: ReturnType<ApnsClient['stats']>; sessions: number }> {
  const fake = new FakeApns({ accept: [identity.certPem] });
  await fake.listen();
  const client = new ApnsClient({
    url: fake.url,
    identity,
    ca: fake.caPem,
    clock: systemClock,
    maxInFlight: IN_FLIGHT,
  });
  const run = async (n: number) => {
    let sent = 0;
    const targets = function* () {
      for (let index = 0; index < n; index++)
        yield { deviceId: `d${index}`, token: tokens[index % tokens.length]!, pushMagic: 'bench' };
    };
    await client.pushMany(targets(), (result) => {
      if (result.outcome.kind === 'sent') sent++;
    });
    if (sent !== n) throw new Error(`ApnsClient: ${n - sent} pushes not sent`);
  };
  await run(WARMUP);
  const started = performance.now();
  await run(count);
  const seconds = (performance.now() - started) / 1000;
  const stats = client.stats();
  await client.close();
  const sessions = fake.stats.sessions;
  await fake.close();
  return { rate: count / seconds, stats, sessions };
}

const fmt = (n: number) => Math.round(n).toLocaleString('en-US');
console.log(
  `APNs bench: ${fmt(PUSHES)} pushes, ${IN_FLIGHT} in flight, one TLS session, node ${process.version}`,
);
const baseline = await rawBaseline(PUSHES);
console.log(`  raw node:http2 loopback      ${fmt(baseline).padStart(8)} pushes/s`);
const ours = await haishin(PUSHES);
console.log(`  ApnsClient -> FakeApns       ${fmt(ours.rate).padStart(8)} pushes/s`);
console.log(`  ratio                        ${(ours.rate / baseline).toFixed(2)} of the raw baseline`);
console.log(
  `  client: sessions ${ours.stats.sessionsOpened}, max streams in flight ${ours.stats.maxConcurrentStreams}, max pending ${ours.stats.maxPending}, retries ${ours.stats.retries}; fake sessions ${ours.sessions}`,
);

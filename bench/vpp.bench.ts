/**
 * Associates 100k serials through the real VppClient against the fake Apps and Books API,
 * paced at the service's rate, and settles every serial from the fake's chunked notifications
 * through VppEventTracker and handleVppNotifyRequest.
 *
 *   node --import tsx bench/vpp.bench.ts [serials=100000] [requestsPerSecond=15]
 *
 * Prints calls per endpoint, wall time and the peak RSS above the starting point.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { VppClient } from '../src/apple/vpp/client.ts';
import { VppEventTracker, handleVppNotifyRequest } from '../src/apple/vpp/events.ts';
import type { VppEventOutcome } from '../src/apple/vpp/events.ts';
import { systemClock } from '../src/core/clock.ts';
import { FakeVppService, randomNotificationToken } from '../src/sim/vpp/server.ts';

const SERIALS = Math.min(1_000_000, Math.max(1, Number(process.argv[2] ?? 100_000)));
const RATE = Math.min(1000, Math.max(1, Number(process.argv[3] ?? 15)));
/** The whole run is abandoned past this: a bench must end. */
const DEADLINE_MS = 180_000;

async function main(): Promise<void> {
  const baseline = process.memoryUsage().rss;
  let peak = baseline;
  const sampler = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage().rss);
  }, 20);
  sampler.unref();
  const deadline = setTimeout(() => {
    console.error(`vpp bench: gave up after ${DEADLINE_MS / 1000} s`);
    process.exit(2);
  }, DEADLINE_MS);
  deadline.unref();

  const fake = new FakeVppService({ limits: { requestsPerSecond: RATE }, enforceRate: true });
  await fake.listen();
  const sToken = FakeVppService.tokenFile('bench', 'Bench Org', new Date(Date.now() + 300 * 24 * 3600_000));
  fake.addToken({ sToken, orgName: 'Bench Org', locationName: 'Bench' });
  fake.addAsset(sToken, { adamId: '361309726', total: SERIALS });

  const client = new VppClient({
    baseUrl: fake.url,
    sToken,
    clock: systemClock,
    mdmInfo: { id: 'haishin-bench', name: 'haishin bench' },
  });
  const notifyToken = randomNotificationToken();
  let settledSerials = 0;
  let failedSerials = 0;
  const tracker = new VppEventTracker({
    clock: systemClock,
    client,
    notificationAuthToken: notifyToken,
    onOutcome: (o: VppEventOutcome) => {
      for (const r of o.perSerial.values()) {
        settledSerials++;
        if (!r.ok) failedSerials++;
      }
    },
  });
  const receiver = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      void handleVppNotifyRequest(tracker, req.headers, Buffer.concat(chunks)).then(({ status, body }) => {
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(JSON.stringify(body));
      });
    });
  });
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  const notifyUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/vpp/notify`;

  const serials = Array.from({ length: SERIALS }, (_, i) => `BENCH${String(i).padStart(7, '0')}`);
  const started = performance.now();
  await client.claim({ notificationUrl: notifyUrl, notificationAuthToken: notifyToken });
  const submitted = await client.associate(['361309726'], serials);
  const submittedMs = performance.now() - started;
  tracker.register(submitted);
  await fake.completePending();
  const wallMs = performance.now() - started;
  clearInterval(sampler);
  peak = Math.max(peak, process.memoryUsage().rss);

  const rejected = fake.log().filter((c) => c.status === 429).length;
  const report = {
    serials: SERIALS,
    requestsPerSecond: RATE,
    calls: fake.callCounts(),
    clientRequests: client.stats().requests,
    rateLimitedByFake: rejected,
    events: submitted.events.length,
    failedBatches: submitted.failed.length,
    notifications: fake.notifications().length,
    settledSerials,
    failedSerials,
    submitMs: Math.round(submittedMs),
    wallMs: Math.round(wallMs),
    peakRssDeltaMB: Math.round(((peak - baseline) / 1024 / 1024) * 10) / 10,
  };
  console.log('vpp bench');
  for (const [key, value] of Object.entries(report))
    console.log(`  ${key}: ${typeof value === 'object' ? JSON.stringify(value) : value}`);
  console.log(JSON.stringify(report));

  await fake.close();
  receiver.closeAllConnections();
  await new Promise<void>((resolve) => receiver.close(() => resolve()));
  clearTimeout(deadline);
  if (settledSerials !== SERIALS) process.exitCode = 1;
}

await main();

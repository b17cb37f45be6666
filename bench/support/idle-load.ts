// The load generator of bench/checkin.bench.ts, run as a process of its own: it replays the same
// pre-signed messages (body + Mdm-Signature, signed once per device) over `connections` keep-alive
// TCP connections, one request in flight on each (as autocannon does), for `seconds`, and prints
// one JSON line: requests, errors, requests/s, latency percentiles.
//
// Requests are written as prebuilt HTTP/1.1 bytes on plain sockets, so the generator costs a few
// µs per request: node:http's client (~40 µs each) would cap the bare-Fastify baseline below what
// the server can do, and flatter every ratio.
//
//   node --import tsx bench/support/idle-load.ts <url> <messages.json> <connections> <seconds>
// messages.json: [{ "body": base64, "signature": "…" }, …]; the path of <url> is the endpoint.
import { readFileSync } from 'node:fs';
import { connect } from 'node:net';
import type { Socket } from 'node:net';

export interface LoadResult {
  requests: number;
  errors: number;
  /** Answers other than 200. */
  non200: number;
  /** 200 answers with a body (a command): an empty-queue Idle has none. */
  withBody: number;
  seconds: number;
  rps: number;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  maxMs: number;
}

const [url, file, connectionsText, secondsText] = process.argv.slice(2);
if (!url || !file) throw new Error('usage: idle-load.ts <url> <messages.json> <connections> <seconds>');
const target = new URL(url);
const connections = Number(connectionsText ?? 64);
const seconds = Number(secondsText ?? 10);
const messages = JSON.parse(readFileSync(file, 'utf8')) as { body: string; signature: string }[];

const requests = messages.map(({ body, signature }) => {
  const bytes = Buffer.from(body, 'base64');
  const head =
    `PUT ${target.pathname} HTTP/1.1\r\n` +
    `Host: ${target.host}\r\n` +
    'Content-Type: application/x-apple-aspen-mdm-checkin\r\n' +
    'User-Agent: MDM/1.0\r\n' +
    `Mdm-Signature: ${signature}\r\n` +
    `Content-Length: ${bytes.length}\r\n` +
    'Connection: keep-alive\r\n\r\n';
  return Buffer.concat([Buffer.from(head, 'latin1'), bytes]);
});

const latencies: number[] = [];
let errors = 0;
let non200 = 0;
let withBody = 0;
let next = 0;
let stopping = false;
const started = process.hrtime.bigint();
const endAt = started + BigInt(Math.round(seconds * 1e9));

const HEADER_END = Buffer.from('\r\n\r\n');

/** One keep-alive connection: write a request, read its answer (Content-Length framed), repeat. */
function lane(): Promise<void> {
  return new Promise((done) => {
    const socket: Socket = connect(Number(target.port), target.hostname);
    socket.setNoDelay(true);
    let pending: Buffer = Buffer.alloc(0);
    let sentAt = 0n;
    const send = () => {
      if (stopping || process.hrtime.bigint() >= endAt) {
        stopping = true;
        socket.end();
        return;
      }
      const request = requests[next++ % requests.length]!;
      sentAt = process.hrtime.bigint();
      socket.write(request);
    };
    socket.on('connect', send);
    socket.on('data', (chunk: Buffer) => {
      pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
      for (;;) {
        const headerEnd = pending.indexOf(HEADER_END);
        if (headerEnd < 0) return;
        const head = pending.subarray(0, headerEnd).toString('latin1');
        const length = /\r\ncontent-length:\s*(\d+)/i.exec(head);
        if (!length) {
          errors++;
          socket.destroy();
          return;
        }
        const total = headerEnd + 4 + Number(length[1]);
        if (pending.length < total) return;
        latencies.push(Number(process.hrtime.bigint() - sentAt) / 1e6);
        if (!head.startsWith('HTTP/1.1 200')) non200++;
        else if (Number(length[1]) > 0) withBody++;
        pending = pending.subarray(total);
        send();
      }
    });
    socket.on('error', () => {
      errors++;
    });
    socket.on('close', () => done());
  });
}

await Promise.all(Array.from({ length: connections }, () => lane()));
const elapsed = Number(process.hrtime.bigint() - started) / 1e9;
const sorted = Float64Array.from(latencies).sort();
const pct = (p: number) =>
  sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]! : NaN;
const result: LoadResult = {
  requests: latencies.length,
  errors,
  non200,
  withBody,
  seconds: elapsed,
  rps: latencies.length / elapsed,
  p50Ms: pct(0.5),
  p90Ms: pct(0.9),
  p99Ms: pct(0.99),
  maxMs: sorted.length ? sorted[sorted.length - 1]! : NaN,
};
console.log(JSON.stringify(result));

// A small round-robin HTTP proxy for the scale-out tests: what a load balancer in front of several
// `haishin serve` does, and no more. Each request goes to the next backend (no stickiness: any
// process may answer any request); a backend that refuses the connection (a process that died)
// is skipped and the request goes to the next one. A request cut while a backend handled it
// gets a 502, as from a real load balancer.
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ProxyRecord {
  method: string;
  path: string;
  /** Index of the backend that answered; null: none could (502). */
  backend: number | null;
  status: number;
  /** The request's body, for the paths the proxy was asked to keep it of. */
  body?: string;
}

export interface RoundRobinProxy {
  url: string;
  /** The backends' base URLs (http://127.0.0.1:port), in round-robin order. */
  setBackends(urls: readonly string[]): void;
  /** Every request forwarded, oldest first (paths without the query). */
  readonly log: ProxyRecord[];
  close(): Promise<void>;
}

/** How long a backend that refused a connection is left out before it is tried again. */
const DOWN_FOR_MS = 2_000;

export async function startRoundRobinProxy(
  o: { keepBodyOf?: (path: string) => boolean } = {},
): Promise<RoundRobinProxy> {
  let backends: URL[] = [];
  const downUntil = new Map<number, number>();
  let next = 0;
  const log: ProxyRecord[] = [];

  /** Forwards once; rejects with the connection error when the backend could not be reached. */
  const forward = (
    index: number,
    req: http.IncomingMessage,
    body: Buffer,
    res: http.ServerResponse,
  ): Promise<number> =>
    new Promise((resolve, reject) => {
      const target = backends[index]!;
      const headers = { ...req.headers, host: target.host };
      const upstream = http.request(
        {
          host: target.hostname,
          port: target.port,
          method: req.method,
          path: req.url,
          headers,
          // A connection per request: a killed backend leaves no pooled socket behind.
          agent: false,
        },
        (answer) => {
          res.writeHead(answer.statusCode ?? 502, answer.headers);
          answer.pipe(res);
          answer.on('error', () => res.destroy());
          answer.on('end', () => resolve(answer.statusCode ?? 502));
          res.on('close', () => {
            answer.destroy();
            resolve(answer.statusCode ?? 502);
          });
        },
      );
      upstream.on('error', (err) => reject(err));
      upstream.end(body);
    });

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      void (async () => {
        const body = Buffer.concat(chunks);
        const path = (req.url ?? '/').split('?')[0]!;
        const record: ProxyRecord = { method: req.method ?? 'GET', path, backend: null, status: 502 };
        if (o.keepBodyOf?.(path)) record.body = body.toString('utf8');
        log.push(record);
        // Each backend at most once per request, starting from the next in turn.
        for (let tried = 0; tried < backends.length; tried++) {
          const index = next++ % backends.length;
          if ((downUntil.get(index) ?? 0) > Date.now()) continue;
          try {
            record.backend = index;
            record.status = await forward(index, req, body, res);
            return;
          } catch (err) {
            record.backend = null;
            const code = (err as NodeJS.ErrnoException).code;
            if (code === 'ECONNREFUSED') {
              downUntil.set(index, Date.now() + DOWN_FOR_MS);
              continue;
            }
            // Cut while the backend had it: it may have acted on it, so it is not sent elsewhere.
            if (!res.headersSent) res.writeHead(502, { 'content-type': 'text/plain' });
            res.end(`proxy: ${code ?? String(err)}`);
            return;
          }
        }
        // Every backend down (or all left out for now): the last chance is any of them.
        res.writeHead(502, { 'content-type': 'text/plain' });
        res.end('proxy: no backend answers');
      })();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    setBackends(urls) {
      backends = urls.map((u) => new URL(u));
      downUntil.clear();
    },
    log,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

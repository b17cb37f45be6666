import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LISTEN_BACKLOG } from '../src/app/haishin.ts';
import { startTestServer } from './support/server.ts';
import type { TestServer } from './support/server.ts';

// `ss` shows a listening socket's backlog in its Send-Q column (Linux, iproute2).
const ss = ['/usr/bin/ss', '/bin/ss'].find((p) => existsSync(p));
if (!ss) console.warn('[listen.test] skipped: no `ss` (iproute2) on this machine to read the backlog');

describe.skipIf(!ss)('listening socket', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer();
  });
  afterAll(() => server?.close());

  it('queues as many pending connections as the kernel allows, up to LISTEN_BACKLOG (not Node’s 511)', () => {
    const port = new URL(server.baseUrl).port;
    const out = spawnSync(ss!, ['-ltnH', `sport = :${port}`], { encoding: 'utf8' }).stdout.trim();
    const backlog = Number(out.split(/\s+/)[2]);
    const somaxconn = Number(readFileSync('/proc/sys/net/core/somaxconn', 'utf8'));
    expect(backlog).toBe(Math.min(LISTEN_BACKLOG, somaxconn));
  });
});

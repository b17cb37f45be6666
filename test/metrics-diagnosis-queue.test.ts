// GET /metrics shows the diagnosis queue shared by every process (decision 0021, issue 16): the
// failed jobs waiting for a claim, and those being diagnosed.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer } from './support/server.ts';
import type { TestServer } from './support/server.ts';

let server: TestServer;
beforeAll(async () => {
  // No engine tick (startTestServer's default): nothing claims the rows written here.
  server = await startTestServer();
});
afterAll(async () => {
  await server?.close();
});

async function gauge(): Promise<Record<string, number>> {
  const text = await (await fetch(`${server.baseUrl}/metrics`)).text();
  const values: Record<string, number> = {};
  for (const m of text.matchAll(/^haishin_diagnosis_queue_jobs\{state="(\w+)"\} (\S+)$/gm))
    values[m[1]!] = Number(m[2]);
  return values;
}

describe('haishin_diagnosis_queue_jobs', () => {
  it('counts the rows waiting and the rows claimed by a live process; a lapsed claim waits again', async () => {
    expect(await gauge()).toEqual({ waiting: 0, claimed: 0 });
    const queue = server.haishin.store.diagnosisQueue;
    const now = new Date();
    for (const id of ['diag-1', 'diag-2', 'diag-3']) await queue.add(id, now);
    // Another process is diagnosing one; a process that died had claimed another (its claim lapsed).
    expect(await queue.claim('other-process', now, 1, 10 * 60_000)).toEqual(['diag-1']);
    const earlier = new Date(now.getTime() - 10 * 60_000);
    expect(await queue.claim('dead-process', earlier, 1, 60_000)).toEqual(['diag-2']);
    expect(await gauge()).toEqual({ waiting: 2, claimed: 1 });
    await queue.done('diag-1', 'other-process');
    expect(await gauge()).toEqual({ waiting: 2, claimed: 0 });
  });
});

// Issue 16, item 3 (decision 0021), as it ships: two `haishin serve` on one PostgreSQL database pace
// their Apps and Books calls together. A Retry-After that Apple (`haishin fakes`) sends to one
// process holds back the other's calls to the same location too.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../src/cli/net.ts';
import { postgresAvailable, postgresSkipReason, startPostgres } from '../support/pg.ts';
import type { ThrowawayPostgres } from '../support/pg.ts';
import { adminApi, control, eventually, startFakesProcess, startServe } from './support.ts';
import type { FakesInfo, HaishinProcess } from './support.ts';

if (!postgresAvailable) console.warn(`[shared-pacing.e2e.test] ${postgresSkipReason}`);

const ADMIN = 'shared-pacing-admin-token-0123456789';
const RETRY_AFTER_S = 4;

interface Serve {
  proc: HaishinProcess;
  enrollUrl: string;
  baseUrl: string;
}

interface FakeCall {
  endpoint: string;
  at: number;
  status: number;
}

describe.skipIf(!postgresAvailable)('two haishin serve pace their Apps and Books calls together', () => {
  const dir = mkdtempSync(join(tmpdir(), 'haishin-shared-pacing-'));
  let fakes: { proc: HaishinProcess; info: FakesInfo };
  let postgres: ThrowawayPostgres;
  let a: Serve;
  let b: Serve;
  let tokenId: string;

  async function serveOn(env: Record<string, string>): Promise<Serve> {
    const port = await freePort();
    const baseUrl = `http://127.0.0.1:${port}`;
    const started = await startServe({
      ...env,
      HAISHIN_LISTEN: `127.0.0.1:${port}`,
      HAISHIN_PUBLIC_URL: baseUrl,
    });
    return { ...started, baseUrl };
  }

  const log = async () => (await control<{ calls: FakeCall[] }>(`${fakes.info.control}/vpp/log`)).calls;

  beforeAll(async () => {
    fakes = await startFakesProcess(join(dir, 'apple'));
    postgres = await startPostgres();
    const env = {
      ...fakes.info.env,
      HAISHIN_DB: postgres.url,
      HAISHIN_DATA_DIR: join(dir, 'data'),
      HAISHIN_ADMIN_TOKEN: ADMIN,
      HAISHIN_LOG_LEVEL: 'warn',
    };
    a = await serveOn(env);
    b = await serveOn(env);
    const root = new URL(a.enrollUrl).searchParams.get('group')!;
    const token = await adminApi(a.baseUrl, ADMIN)<{ id: string }>('POST', '/vpp-tokens', {
      groupId: root,
      sToken: readFileSync(fakes.info.tokenFile, 'utf8'),
    });
    expect(token.status).toBe(201);
    tokenId = token.body.id;
  }, 180_000);

  afterAll(async () => {
    await a?.proc.kill();
    await b?.proc.kill();
    await fakes?.proc.kill();
    postgres?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it(
    'a 429 with Retry-After met by one process: no call of the other reaches Apple before it ends',
    { timeout: 120_000 },
    async () => {
      const before = (await log()).length;
      // The next request to Apple, whichever process sends it, answers 429 Retry-After 4.
      await control(`${fakes.info.control}/vpp/fault`, 'POST', {
        type: 'http429',
        count: 1,
        retryAfterSec: RETRY_AFTER_S,
      });
      const syncA = adminApi(a.baseUrl, ADMIN)('POST', `/vpp-tokens/${tokenId}/sync`);
      const refused = await eventually('the 429 reached a process', async () =>
        (await log()).slice(before).find((c) => c.status === 429),
      );
      // B syncs the same token (same location) while the Retry-After runs.
      const syncB = await adminApi(b.baseUrl, ADMIN)('POST', `/vpp-tokens/${tokenId}/sync`);
      expect(syncB.status).toBe(200);
      expect((await syncA).status).toBe(200);
      const calls = await log();
      const after = calls.slice(
        calls.indexOf(calls.find((c) => c.at === refused.at && c.status === 429)!) + 1,
      );
      // Both syncs went to Apple after the refusal…
      expect(after.filter((c) => c.status === 200).length).toBeGreaterThanOrEqual(4);
      // …and not one request, of either process, before the Retry-After was over.
      expect(Math.min(...after.map((c) => c.at))).toBeGreaterThanOrEqual(refused.at + RETRY_AFTER_S * 1000);
    },
  );
});

import { freePort } from '../../src/cli/net.ts';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateDemoPushIdentity } from '../../src/apple/apns/pushcert.ts';
import { createHaishin } from '../../src/app/haishin.ts';
import type { Haishin, Tuning } from '../../src/app/haishin.ts';
import { systemClock } from '../../src/core/clock.ts';
import type { Clock, ManualClock } from '../../src/core/clock.ts';
import { parseConfig } from '../../src/core/config.ts';
import type { MdmListener } from '../../src/mdm/ports.ts';

export { freePort };

/**
 * A push certificate and key on disk, made once per test process, for servers that never reach an
 * APNs (their HAISHIN_APNS_URL points at a closed port): every server starts the way `serve` does.
 */
const TEST_PUSH = (() => {
  const dir = mkdtempSync(join(tmpdir(), 'haishin-test-push-'));
  const identity = generateDemoPushIdentity(new Date());
  writeFileSync(join(dir, 'push.pem'), identity.certPem);
  writeFileSync(join(dir, 'push.key'), identity.keyPem);
  return { dir, identity };
})();

export const TEST_TOPIC = TEST_PUSH.identity.topic;
export const TEST_PUSH_NOT_AFTER = TEST_PUSH.identity.notAfter;

export interface TestServer {
  haishin: Haishin;
  baseUrl: string;
  rootGroupId: string;
  enrollUrl(groupId?: string): string;
  close(): Promise<void>;
}

/**
 * A real haishin on 127.0.0.1 with a fresh database, built from configuration like `serve`;
 * device keys are 1024-bit to keep tests fast. `env` points it at fakes (see startFakes).
 */
export async function startTestServer(
  options: {
    db?: string;
    env?: Record<string, string>;
    clock?: Clock | ManualClock;
    listener?: MdmListener;
    tuning?: Tuning;
  } = {},
): Promise<TestServer> {
  const port = await freePort();
  const baseUrl = `http://127.0.0.1:${port}`;
  const config = parseConfig({
    HAISHIN_DB: options.db ?? 'sqlite::memory:',
    HAISHIN_LISTEN: `127.0.0.1:${port}`,
    HAISHIN_PUBLIC_URL: baseUrl,
    HAISHIN_DEVICE_KEY_BITS: '1024',
    HAISHIN_SECRET_KEY: 'test-secret-key-0123456789',
    HAISHIN_APNS_URL: 'https://127.0.0.1:9',
    HAISHIN_APNS_CERT: join(TEST_PUSH.dir, 'push.pem'),
    HAISHIN_APNS_KEY: join(TEST_PUSH.dir, 'push.key'),
    // In-process tests of everything else enroll by group id (the lab setting); enrollment links
    // themselves are tested in test/enrollment-links.test.ts and test/e2e (decision 0022).
    HAISHIN_ENROLL_OPEN_GROUPS: 'true',
    ...options.env,
  });
  const haishin = await createHaishin({
    config,
    clock: options.clock ?? systemClock,
    ...(options.listener ? { listener: options.listener } : {}),
    tuning: { engineTickMs: 0, ...options.tuning },
  });
  await haishin.listen();
  const root = await haishin.store.rootGroup();
  if (!root) throw new Error('no root group');
  return {
    haishin,
    baseUrl,
    rootGroupId: root.id,
    enrollUrl: (groupId = root.id) => `${baseUrl}/mdm/enroll?group=${encodeURIComponent(groupId)}`,
    close: () => haishin.close(),
  };
}

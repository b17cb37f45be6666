import { freePort } from '../../src/cli/net.ts';
import { createHaishin } from '../../src/api/server.ts';
import type { Haishin } from '../../src/api/server.ts';
import { systemClock } from '../../src/core/clock.ts';
import type { Clock, ManualClock } from '../../src/core/clock.ts';
import { parseConfig } from '../../src/core/config.ts';
import type { MdmListener } from '../../src/mdm/ports.ts';
import type { HaishinOptions } from '../../src/api/server.ts';

export { freePort };

export const TEST_TOPIC = 'com.apple.mgmt.External.9a1c5d3e-0000-4000-8000-haishintest';

export interface TestServer {
  haishin: Haishin;
  baseUrl: string;
  rootGroupId: string;
  enrollUrl(groupId?: string): string;
  close(): Promise<void>;
}

/** A real haishin on 127.0.0.1 with a fresh database; device keys are 1024-bit to keep tests fast. */
export async function startTestServer(
  options: {
    db?: string;
    env?: Record<string, string>;
    clock?: Clock | ManualClock;
    listener?: MdmListener;
    vppClientOptions?: HaishinOptions['vppClientOptions'];
    apns?: HaishinOptions['apns'];
    engineTickMs?: number;
    vppTickMs?: number;
    engineTimings?: HaishinOptions['engineTimings'];
    pushCertificate?: HaishinOptions['pushCertificate'];
  } = {},
): Promise<TestServer> {
  const port = await freePort();
  const baseUrl = `http://127.0.0.1:${port}`;
  const config = parseConfig({
    HAISHIN_DB: options.db ?? 'sqlite::memory:',
    HAISHIN_LISTEN: `127.0.0.1:${port}`,
    HAISHIN_PUBLIC_URL: baseUrl,
    HAISHIN_DEVICE_KEY_BITS: '1024',
    ...options.env,
  });
  const haishin = await createHaishin({
    config,
    clock: options.clock ?? systemClock,
    secretKey: 'test-secret-key-0123456789',
    pushTopic: TEST_TOPIC,
    ...(options.listener ? { listener: options.listener } : {}),
    ...(options.vppClientOptions ? { vppClientOptions: options.vppClientOptions } : {}),
    ...(options.apns ? { apns: options.apns } : {}),
    engineTickMs: options.engineTickMs ?? 0,
    ...(options.engineTimings ? { engineTimings: options.engineTimings } : {}),
    ...(options.vppTickMs ? { vppTickMs: options.vppTickMs } : {}),
    ...(options.pushCertificate ? { pushCertificate: options.pushCertificate } : {}),
  });
  await haishin.listen('127.0.0.1', port);
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

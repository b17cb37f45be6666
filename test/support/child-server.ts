// A haishin server in its own process, so a test can kill -9 it and start it again on the same
// database. Configuration arrives as JSON in HAISHIN_CHILD (the parent owns the fakes).
import { ApnsClient } from '../../src/apple/apns/client.ts';
import type { PushIdentity } from '../../src/apple/apns/pushcert.ts';
import { createHaishin } from '../../src/api/server.ts';
import { systemClock } from '../../src/core/clock.ts';
import { parseConfig } from '../../src/core/config.ts';

interface ChildConfig {
  db: string;
  port: number;
  env: Record<string, string>;
  apnsUrl: string;
  apnsCa: string;
  push: Omit<PushIdentity, 'notAfter'> & { notAfter: string };
  secretKey: string;
}

const cfg = JSON.parse(process.env.HAISHIN_CHILD ?? '{}') as ChildConfig;
const push: PushIdentity = { ...cfg.push, notAfter: new Date(cfg.push.notAfter) };
const config = parseConfig({
  ...cfg.env,
  HAISHIN_DB: cfg.db,
  HAISHIN_LISTEN: `127.0.0.1:${cfg.port}`,
  HAISHIN_PUBLIC_URL: `http://127.0.0.1:${cfg.port}`,
  HAISHIN_DEVICE_KEY_BITS: '1024',
});
const apns = new ApnsClient({ url: cfg.apnsUrl, identity: push, ca: cfg.apnsCa, clock: systemClock });
const haishin = await createHaishin({
  config,
  clock: systemClock,
  secretKey: cfg.secretKey,
  pushTopic: push.topic,
  apns,
  engineTickMs: 25,
  vppTickMs: 100,
  vppClientOptions: { pacing: false },
  vppEventTiming: { pollAfterMs: 1_000, pollEveryMs: 300 },
});
await haishin.listen('127.0.0.1', cfg.port);
process.stdout.write('READY\n');

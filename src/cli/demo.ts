import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { ApnsClient } from '../apple/apns/client.ts';
import { generateDemoPushIdentity } from '../apple/apns/pushcert.ts';
import type { PushIdentity } from '../apple/apns/pushcert.ts';
import { createHaishin } from '../api/server.ts';
import { systemClock } from '../core/clock.ts';
import { parseConfig } from '../core/config.ts';
import { parseDuration } from '../core/duration.ts';
import { FakeApns } from '../sim/apns/server.ts';
import { SimDevice } from '../sim/device/device.ts';
import { SimFleet } from '../sim/fleet.ts';
import { freePort } from './net.ts';
import { resolveSecretKey } from './secret.ts';

interface DemoOptions {
  devices: string;
  reset?: boolean;
  data: string;
  budget?: string;
  lang?: string;
}

/** The demo push identity is kept so devices enrolled in an earlier run keep a valid topic. */
function demoPushIdentity(dataDir: string, now: Date): PushIdentity {
  const file = join(dataDir, 'demo-push.json');
  if (existsSync(file)) {
    const stored = JSON.parse(readFileSync(file, 'utf8')) as PushIdentity & { notAfter: string };
    if (new Date(stored.notAfter).getTime() > now.getTime()) return { ...stored, notAfter: new Date(stored.notAfter) };
  }
  const identity = generateDemoPushIdentity(now);
  writeFileSync(file, JSON.stringify(identity), { mode: 0o600 });
  return identity;
}

/** `haishin demo`: the whole world in one process on 127.0.0.1. */
export async function runDemo(options: DemoOptions): Promise<void> {
  const count = Number(options.devices);
  if (!Number.isInteger(count) || count < 1 || count > 100_000) throw new Error('--devices must be between 1 and 100000');
  const lang = (options.lang ?? process.env.LANG ?? '').startsWith('ja') ? 'ja' : 'en';
  const t = (ja: string, en: string) => (lang === 'ja' ? ja : en);
  const dataDir = resolve(options.data);
  if (options.reset) rmSync(dataDir, { recursive: true, force: true });
  mkdirSync(dataDir, { recursive: true });

  const port = await freePort();
  const baseUrl = `http://127.0.0.1:${port}`;
  const config = parseConfig({
    ...process.env,
    HAISHIN_DB: `sqlite:${join(dataDir, 'haishin.db')}`,
    HAISHIN_DATA_DIR: dataDir,
    HAISHIN_LISTEN: `127.0.0.1:${port}`,
    HAISHIN_PUBLIC_URL: baseUrl,
    HAISHIN_DEVICE_KEY_BITS: '1024',
  });
  const now = systemClock.now();
  const push = demoPushIdentity(dataDir, now);
  const secret = resolveSecretKey(config.secretKey, dataDir);
  const fleet = new SimFleet();
  const fakeApns = new FakeApns({ accept: [push.certPem], onPush: (token) => void fleet.wake(token) });
  await fakeApns.listen();
  const apns = new ApnsClient({ url: fakeApns.url, identity: push, ca: fakeApns.caPem, clock: systemClock });
  const haishin = await createHaishin({ config, clock: systemClock, secretKey: secret.key, pushTopic: push.topic, apns });
  await haishin.app.listen({ host: '127.0.0.1', port });

  let adminToken = haishin.generatedAdminToken;
  const tokenFile = join(dataDir, 'admin-token.txt');
  if (adminToken) writeFileSync(tokenFile, `${adminToken}\n`, { mode: 0o600 });
  else if (existsSync(tokenFile)) adminToken = readFileSync(tokenFile, 'utf8').trim();

  const store = haishin.store;
  const root = (await store.rootGroup())!;
  const groups = await store.groups.all();
  let board = groups.find((g) => g.name === '教育委員会');
  if (!board) board = await store.groups.create('教育委員会', root.id, now);
  const schools: string[] = [];
  for (const name of ['第一小学校', '第二小学校', '中央中学校']) {
    let school = groups.find((g) => g.name === name && g.parent_id === board!.id);
    if (!school) school = await store.groups.create(name, board.id, now);
    schools.push(school.id);
  }

  console.log(t(`haishin デモ: ${baseUrl}`, `haishin demo: ${baseUrl}`));
  for (let i = 0; i < count; i++) {
    fleet.add(
      new SimDevice({
        spec: {
          udid: `DEMO-${String(i).padStart(6, '0')}`,
          serialNumber: `DMO${String(i).padStart(9, '0')}`,
          osVersion: i % 17 === 5 ? '15.8' : '18.1',
          availableGb: i % 29 === 3 ? 0.1 : 24,
        },
      }),
    );
  }
  const started = Date.now();
  await fleet.enrollAll((_d, i) => `${baseUrl}/mdm/enroll?group=${schools[i % schools.length]}`, 16);
  console.log(t(`${count} 台の iPad が登録されました (${((Date.now() - started) / 1000).toFixed(1)} 秒)`, `${count} iPads enrolled in ${((Date.now() - started) / 1000).toFixed(1)} s`));
  // Ask every iPad for its facts the way an administrator would (POST /devices/:id/refresh): queue, push, answer.
  const all = await store.devices.list({ limit: 100_001 });
  const byUdid = new Map(all.map((d) => [d.udid, d.id]));
  const deviceIds = fleet.devices.map((d) => byUdid.get(d.udid)).filter((id): id is string => id !== undefined);
  const { enqueueRefresh } = await import('../engine/refresh.ts');
  for (const id of deviceIds) await enqueueRefresh(store, id, systemClock.now());
  const pushed = await haishin.pusher!.push(deviceIds);
  await fleet.idle();
  console.log(t(`PUSH: 送信 ${pushed.sent} 件`, `pushes sent: ${pushed.sent}`));
  const enrolled = await store.devices.list({ status: 'enrolled', limit: 100_001 });
  console.log(t(`登録済み端末: ${enrolled.length} 台`, `enrolled devices: ${enrolled.length}`));
  console.log(t(`API: ${baseUrl}/api/v1  管理者トークン: ${adminToken ?? '(不明)'}`, `API: ${baseUrl}/api/v1  admin token: ${adminToken ?? '(unknown)'}`));

  const stop = async () => {
    await haishin.close();
    await apns.close();
    await fakeApns.close();
  };
  if (options.budget) {
    await new Promise((r) => setTimeout(r, parseDuration(options.budget!)));
    await stop();
    return;
  }
  console.log(t('Ctrl-C で終了します。', 'Press Ctrl-C to stop.'));
  await new Promise<void>((resolveStop) => {
    const onSignal = () => void stop().then(resolveStop);
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
  });
}

import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { consoleUrl } from '../api/console.ts';
import { enrollmentUrl } from '../api/routes/enrollment-links.ts';
import { createHaishin } from '../app/haishin.ts';
import { enqueueRefreshAll } from '../engine/refresh.ts';
import type { Haishin } from '../app/haishin.ts';
import { systemClock } from '../core/clock.ts';
import { parseConfig } from '../core/config.ts';
import { parseDuration } from '../core/duration.ts';
import { isTerminal, JOB_STATUSES } from '../core/jobs.ts';
import type { JobStatus } from '../core/jobs.ts';
import { CATALOGUE, jobStatusLabel } from '../diagnosis/index.ts';
import type { Cause, CauseCode } from '../diagnosis/index.ts';
import { SimDevice } from '../sim/device/device.ts';
import { mapLimit, SimFleet } from '../sim/fleet.ts';
import { lookupSeedOf, SCENARIO_APPS, scenarioDevice } from '../sim/scenario.ts';
import { startFakes } from '../sim/fakes.ts';
import { FakeVppService } from '../sim/vpp/server.ts';
import { freePort } from './net.ts';

interface DemoOptions {
  devices: string;
  reset?: boolean;
  data: string;
  budget?: string;
  lang?: string;
}

type Lang = 'ja' | 'en';
const DAY_MS = 86_400_000;

/** Token files are derived from the data dir's creation so a rerun finds the same tokens. */
function demoTokenFile(dataDir: string, name: string, expiresInDays: number, now: Date): string {
  const file = join(dataDir, `demo-token-${name}.vpptoken`);
  if (existsSync(file)) return readFileSync(file, 'utf8');
  const text = FakeVppService.tokenFile(
    `demo-${name}-${now.getTime()}`,
    '教育委員会',
    new Date(now.getTime() + expiresInDays * DAY_MS),
  );
  writeFileSync(file, text, { mode: 0o600 });
  return text;
}

/** `haishin demo`: the server, the fakes of Apple's services and a fleet of iPads, all on 127.0.0.1. */
export async function runDemo(options: DemoOptions): Promise<void> {
  const count = Number(options.devices);
  if (!Number.isInteger(count) || count < 10 || count > 100_000)
    throw new Error('--devices must be between 10 and 100000');
  const budgetMs = options.budget ? parseDuration(options.budget) : null;
  const lang: Lang = (options.lang ?? process.env.LANG ?? '').startsWith('ja') ? 'ja' : 'en';
  const t = (ja: string, en: string) => (lang === 'ja' ? ja : en);
  const started = Date.now();
  const dataDir = resolve(options.data);
  if (options.reset) rmSync(dataDir, { recursive: true, force: true });
  mkdirSync(dataDir, { recursive: true });
  const now = systemClock.now();

  // Apple's side: APNs, the Apps and Books API and the app look-up, each a real server on loopback,
  // with the push certificate and the fake APNs's CA as files — haishin reads them as in production.
  const fleet = new SimFleet();
  const fakes = await startFakes({
    dir: dataDir,
    apps: SCENARIO_APPS.map(lookupSeedOf),
    onPush: (token) => void fleet.wake(token),
  });
  const { vpp } = fakes;

  const port = await freePort();
  const baseUrl = `http://127.0.0.1:${port}`;
  const config = parseConfig({
    ...process.env,
    // The demo's data is throwaway: commits need not wait for the disk.
    HAISHIN_DB: `sqlite:${join(dataDir, 'haishin.db')}?synchronous=off`,
    HAISHIN_DATA_DIR: dataDir,
    HAISHIN_LISTEN: `127.0.0.1:${port}`,
    HAISHIN_PUBLIC_URL: baseUrl,
    ...fakes.env,
    // Simulated iPads: P-256 identities and a PKCS#12 with one PBE iteration enroll ~5× faster than
    // RSA with 2048 iterations, through the same CMS and X.509 code (decision 0010).
    HAISHIN_DEVICE_KEY_TYPE: 'ec',
    HAISHIN_PKCS12_ITERATIONS: '1',
    // Short timeouts so the story ends within minutes (production defaults are days). One process
    // on two cores serves a big fleet more slowly, so they grow with it: else healthy iPads that
    // merely wait their turn would time out (10,000 iPads: 125 s and 120 s).
    HAISHIN_PUSH_TIMEOUT: process.env.HAISHIN_PUSH_TIMEOUT ?? `${25 + Math.ceil(count / 100)}s`,
    HAISHIN_SESSION_TIMEOUT: process.env.HAISHIN_SESSION_TIMEOUT ?? `${20 + Math.ceil(count / 100)}s`,
    // The request timeout runs from the distribution's start, and a big fleet's last jobs wait their
    // turn behind two others on the same iPad: 100,000 iPads take most of an hour on two cores.
    HAISHIN_REQUEST_TIMEOUT:
      process.env.HAISHIN_REQUEST_TIMEOUT ?? `${Math.max(600, Math.ceil(count * 0.05))}s`,
  });
  const haishin = await createHaishin({
    config,
    clock: systemClock,
    tuning: {
      engineTickMs: 200,
      vppTickMs: 500,
      engineTimings: { notNowRetryMs: 4_000, verifyEveryMs: 5_000 },
    },
  });
  await haishin.listen();
  let adminToken = haishin.generatedAdminToken;
  const tokenFile = join(dataDir, 'admin-token.txt');
  if (adminToken) writeFileSync(tokenFile, `${adminToken}\n`, { mode: 0o600 });
  else if (existsSync(tokenFile)) adminToken = readFileSync(tokenFile, 'utf8').trim();

  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    // Off first, so the engine's pushes wake nobody; then let running sessions end.
    for (const device of fleet.devices) device.online = false;
    await fleet.idle();
    await haishin.close();
    await fakes.close();
  };

  try {
    const groups = await buildTree(haishin);
    const tokenIds = await buildTokens(haishin, vpp, groups, dataDir, count, now);
    console.log(t(`haishin デモ — ${baseUrl}`, `haishin demo — ${baseUrl}`));
    if (adminToken)
      console.log(
        t(
          `管理コンソール（配信の進み具合をブラウザでも見られます）: ${consoleUrl(baseUrl, adminToken)}`,
          `admin console (watch the distribution in a browser too): ${consoleUrl(baseUrl, adminToken)}`,
        ),
      );

    // The fleet: scenario devices with their stories, enrolled over HTTP with real CMS signatures.
    const catalog = new Map(
      SCENARIO_APPS.map((a) => [
        Number(a.adamId),
        {
          bundleId: a.bundleId,
          name: a.name,
          version: '1.0',
          sizeBytes: a.sizeBytes,
          minimumOsVersion: a.minimumOsVersion,
        },
      ]),
    );
    const stories = Array.from({ length: count }, (_, i) => scenarioDevice(i));
    const devices = stories.map((s) => {
      const preinstalled = s.preinstalled.map((bundleId) => ({
        bundleId,
        name: 'Keynote',
        version: '13.2',
        sizeBytes: 600_000_000,
      }));
      const device = fleet.add(new SimDevice({ spec: { ...s.spec, installedApps: preinstalled }, catalog }));
      for (const [type, behaviour] of s.behaviours) device.behaviours.set(type, behaviour);
      return device;
    });
    const enrollStart = Date.now();
    // Each group's iPads enroll through an enrollment link of that group, as a school's would (decision 0022).
    const links = new Map<string, string>();
    for (const name of new Set(stories.map((s) => s.group))) {
      const groupId = groups.get(name)!;
      const { row, secret } = await haishin.store.enrollmentLinks.create(
        { groupId, label: 'demo', expiresAt: null, maxUses: null, createdBy: null },
        systemClock.now(),
      );
      await haishin.store.admin.audit({
        actor: 'demo',
        source: null,
        action: 'enrollment_link.create',
        objectType: 'enrollment_link',
        objectId: row.id,
        details: { groupId, label: row.label },
        at: systemClock.now(),
      });
      links.set(name, enrollmentUrl(baseUrl, groupId, secret));
    }
    await mapLimit(devices, 16, (d, i) => d.enroll(links.get(stories[i]!.group)!));
    for (const [i, s] of stories.entries()) {
      const device = devices[i]!;
      if (s.checkOutAfterEnroll) {
        await device.checkOut();
        fakes.apns.failToken(device.pushToken.toString('hex'), { status: 410, reason: 'Unregistered' });
      }
      device.online = s.online;
    }
    console.log(
      t(
        `iPad ${count} 台を登録しました（${((Date.now() - enrollStart) / 1000).toFixed(1)} 秒）`,
        `${count} iPads enrolled in ${((Date.now() - enrollStart) / 1000).toFixed(1)} s`,
      ),
    );

    const enrollEnd = Date.now();
    // Facts first, as an administrator would refresh them: storage, restrictions, users, apps.
    // Only what the refresh needs is kept: a hundred thousand device rows would sit in memory for the whole run.
    const enrolled = (await haishin.store.devices.list({ limit: 1_000_000 }))
      .filter((r) => r.status === 'enrolled')
      .map(({ id, udid, is_shared_ipad }) => ({ id, udid, is_shared_ipad }));
    await enqueueRefreshAll(haishin.commander, enrolled, systemClock.now());
    await haishin.pusher.push(enrolled.map((d) => d.id));
    await fleet.idle();
    console.log(
      t(
        `端末情報を読み込みました（${((Date.now() - enrollEnd) / 1000).toFixed(1)} 秒）`,
        `device facts read in ${((Date.now() - enrollEnd) / 1000).toFixed(1)} s`,
      ),
    );

    const distribution = await haishin.engine.create(
      {
        kind: 'install',
        tokenId: tokenIds.main,
        adamIds: SCENARIO_APPS.map((a) => a.adamId),
        targets: { groupIds: [groups.get('board')!], includeSubgroups: true },
        licenseMode: 'auto',
      },
      'demo',
    );
    console.log(
      t(
        `配信を開始しました: アプリ ${SCENARIO_APPS.length} 本 × iPad ${count} 台 = ジョブ ${distribution.jobCount} 件`,
        `distribution started: ${SCENARIO_APPS.length} apps × ${count} iPads = ${distribution.jobCount} jobs`,
      ),
    );
    // One teacher's iPad is taken out of the distribution by an administrator.
    const [teacher] = await haishin.store.devices.list({ serialNumber: 'DMO000000012', limit: 1 });
    const [cancelTarget] = teacher
      ? await haishin.store.jobs.list({ distributionId: distribution.id, deviceId: teacher.id, limit: 1 })
      : [];
    if (cancelTarget) await haishin.engine.cancelJob(cancelTarget.id);

    const deadline = budgetMs === null ? Number.POSITIVE_INFINITY : started + budgetMs - 3_000;
    await showProgress(haishin, distribution.id, distribution.jobCount, lang, deadline);
    await printSummary(haishin, distribution.id, lang);
    if (fleet.sessionErrors > 0)
      console.log(
        t(
          `注意: 模擬 iPad のセッション ${fleet.sessionErrors} 件が失敗しました（最後: ${fleet.lastSessionError}）`,
          `note: ${fleet.sessionErrors} simulated iPad sessions failed (last: ${fleet.lastSessionError})`,
        ),
      );
    console.log('');
    if (adminToken)
      console.log(
        t(
          `管理コンソール: ${consoleUrl(baseUrl, adminToken)}`,
          `admin console: ${consoleUrl(baseUrl, adminToken)}`,
        ),
      );
    console.log(
      t(
        `API: ${baseUrl}/api/v1   管理者トークン: ${adminToken ?? '(不明)'}`,
        `API: ${baseUrl}/api/v1   admin token: ${adminToken ?? '(unknown)'}`,
      ),
    );
    console.log(
      t(
        `例: curl -H "Authorization: Bearer ${adminToken}" ${baseUrl}/api/v1/distributions/${distribution.id}`,
        `try: curl -H "Authorization: Bearer ${adminToken}" ${baseUrl}/api/v1/distributions/${distribution.id}`,
      ),
    );

    if (budgetMs !== null) return;
    console.log(t('Ctrl-C で終了します。', 'Press Ctrl-C to stop.'));
    await new Promise<void>((resolveStop) => {
      process.once('SIGINT', () => resolveStop());
      process.once('SIGTERM', () => resolveStop());
    });
  } finally {
    await stop();
  }
}

async function buildTree(haishin: Haishin): Promise<Map<string, string>> {
  const store = haishin.store;
  const at = systemClock.now();
  const root = (await store.rootGroup())!;
  const all = await store.groups.all();
  const ids = new Map<string, string>();
  const ensure = async (key: string, name: string, parentKey: string | null) => {
    const parentId = parentKey ? ids.get(parentKey)! : root.id;
    const existing = all.find((g) => g.name === name && g.parent_id === parentId);
    ids.set(key, existing ? existing.id : (await store.groups.create(name, parentId, at)).id);
  };
  await ensure('board', '教育委員会', null);
  await ensure('school1', '第一小学校', 'board');
  await ensure('school2', '第二小学校', 'board');
  await ensure('junior', '中央中学校', 'board');
  await ensure('branch', '分校（トークン未共有）', 'board');
  for (const school of ['school1', 'school2', 'junior']) {
    await ensure(`${school}/1-1`, '1年1組', school);
    await ensure(`${school}/2-1`, '2年1組', school);
  }
  await ensure('junior/3-2', '3年2組', 'junior');
  return ids;
}

async function buildTokens(
  haishin: Haishin,
  vpp: FakeVppService,
  groups: Map<string, string>,
  dataDir: string,
  fleet: number,
  now: Date,
) {
  const main = demoTokenFile(dataDir, 'board', 300, now);
  const expiring = demoTokenFile(dataDir, 'junior', 10, now);
  vpp.addToken({ sToken: main, orgName: '教育委員会', locationName: '教育委員会 本部' });
  for (const app of SCENARIO_APPS) vpp.addAsset(main, { adamId: app.adamId, total: app.licences(fleet) });
  vpp.addToken({ sToken: expiring, orgName: '教育委員会', locationName: '中央中学校' });
  for (const app of SCENARIO_APPS) vpp.addAsset(expiring, { adamId: app.adamId, total: 30 });

  const tokens = haishin.tokens;
  const store = haishin.store;
  const existing = await store.vpp.allTokens();
  const byLocation = (name: string) => existing.find((t) => t.location_name === name)?.id;
  let mainId = byLocation('教育委員会 本部');
  if (!mainId) {
    mainId = (await tokens.register(groups.get('board')!, main)).id;
    // Shared to every school and class — but not to the branch school.
    for (const [key, id] of groups) if (key !== 'board' && key !== 'branch') await tokens.share(mainId, id);
    await tokens.setAutoAssign(groups.get('board')!, mainId);
  } else {
    await tokens.sync(mainId);
  }
  let juniorId = byLocation('中央中学校');
  if (!juniorId) {
    juniorId = (await tokens.register(groups.get('junior')!, expiring)).id;
    await tokens.share(juniorId, groups.get('junior/3-2')!);
    await tokens.setAutoAssign(groups.get('junior/3-2')!, juniorId);
  }
  return { main: mainId, expiring: juniorId };
}

const BAR = 28;

async function showProgress(
  haishin: Haishin,
  distributionId: string,
  total: number,
  lang: Lang,
  deadline: number,
): Promise<void> {
  const tty = process.stdout.isTTY === true;
  let drawn = 0;
  let lastPlain = 0;
  for (;;) {
    const counts = await haishin.store.jobs.counts(distributionId);
    const done = Object.entries(counts)
      .filter(([s]) => isTerminal(s as JobStatus))
      .reduce((n, [, c]) => n + c, 0);
    const lines = JOB_STATUSES.filter((s) => (counts[s] ?? 0) > 0).map((s) => {
      const n = counts[s] ?? 0;
      const width = Math.max(1, Math.round((n / total) * BAR));
      return `  ${padLabel(jobStatusLabel(s)[lang], 28)} ${'█'.repeat(width)}${' '.repeat(BAR - width)} ${String(n).padStart(6)}`;
    });
    const header = lang === 'ja' ? `進捗 ${done}/${total} 完了` : `progress ${done}/${total} finished`;
    if (tty) {
      if (drawn > 0) process.stdout.write(`\x1b[${drawn}A\x1b[J`);
      process.stdout.write(`${header}\n${lines.join('\n')}\n`);
      drawn = lines.length + 1;
    } else if (Date.now() - lastPlain > 2_000 || done === total) {
      console.log(
        `${header}: ${JOB_STATUSES.filter((s) => counts[s])
          .map((s) => `${jobStatusLabel(s)[lang]}=${counts[s]}`)
          .join(', ')}`,
      );
      lastPlain = Date.now();
    }
    if (done === total || Date.now() > deadline) return;
    await new Promise((r) => setTimeout(r, 500));
  }
}

/** Pads by display width: CJK characters take two columns in a terminal. */
function padLabel(text: string, width: number): string {
  const w = [...text].reduce(
    (n, ch) =>
      n +
      (/[\u1100-\u115f\u2e80-\ua4cf\uac00-\ud7a3\uf900-\ufaff\ufe30-\ufe4f\uff00-\uff60\uffe0-\uffe6]/.test(
        ch,
      )
        ? 2
        : 1),
    0,
  );
  return text + ' '.repeat(Math.max(0, width - w));
}

/** The causes a job's stored diagnosis holds (`{at, causes}`), or null when it has none. */
function storedCauses(diagnosis: string | null): Cause[] | null {
  if (!diagnosis) return null;
  try {
    const parsed = JSON.parse(diagnosis) as { causes?: Cause[] };
    return Array.isArray(parsed.causes) && parsed.causes.length > 0 ? parsed.causes : null;
  } catch {
    return null;
  }
}

async function printSummary(haishin: Haishin, distributionId: string, lang: Lang): Promise<void> {
  const t = (ja: string, en: string) => (lang === 'ja' ? ja : en);
  const counts = await haishin.store.jobs.counts(distributionId);
  console.log('');
  console.log(t('== 結果 ==', '== summary =='));
  for (const s of JOB_STATUSES)
    if (counts[s]) console.log(`  ${padLabel(jobStatusLabel(s)[lang], 28)} ${String(counts[s]).padStart(6)}`);

  // Jobs still moving when the budget ran out are not failures (yet): they are counted above.
  // Cancelled jobs were an administrator's decision. Only failed jobs are read: not the 300,000 of a big fleet.
  const failedStatuses = JOB_STATUSES.filter(
    (s) => isTerminal(s) && s !== 'success' && s !== 'cancelled' && (counts[s] ?? 0) > 0,
  );
  const classes = new Map<
    string,
    { status: string; code: CauseCode | null; deviceIds: Set<string>; samples: number[]; jobs: number }
  >();
  const PAGE = 5_000;
  for (const status of failedStatuses) {
    for (let afterSeq: number | undefined, page; ; afterSeq = page[page.length - 1]!.seq) {
      page = await haishin.store.jobs.list({
        distributionId,
        status,
        limit: PAGE,
        ...(afterSeq !== undefined ? { afterSeq } : {}),
      });
      for (const job of page) {
        // Every failed job was diagnosed when it failed; recompute only where that is missing.
        const causes = storedCauses(job.diagnosis) ?? (await haishin.engine.diagnose(job));
        const code = causes[0]?.code ?? null;
        const key = `${job.status}|${code}`;
        const entry = classes.get(key) ?? {
          status: job.status,
          code,
          deviceIds: new Set(),
          samples: [],
          jobs: 0,
        };
        if (!entry.deviceIds.has(job.device_id)) {
          entry.deviceIds.add(job.device_id);
          if (entry.samples.length < 5) {
            const device = await haishin.store.devices.get(job.device_id);
            if (device) entry.samples.push(device.device_number);
          }
        }
        entry.jobs++;
        classes.set(key, entry);
      }
      if (page.length < PAGE) break;
    }
  }
  if (classes.size === 0) return;
  console.log('');
  console.log(t('== 失敗したジョブの原因と対処 ==', '== why jobs failed, and what to do =='));
  for (const entry of [...classes.values()].sort((a, b) => b.jobs - a.jobs)) {
    const label = jobStatusLabel(entry.status as JobStatus)[lang];
    const cause = entry.code ? CATALOGUE[entry.code] : null;
    const sample = entry.samples.map((n) => `#${n}`).join(', ');
    console.log(
      `- ${label} × ${entry.jobs}  (${t('端末番号', 'device numbers')} ${sample}${entry.deviceIds.size > entry.samples.length ? ', …' : ''})`,
    );
    if (cause) {
      console.log(`    ${t('原因', 'cause')}: ${cause.title[lang]} [${entry.code}]`);
      console.log(`    ${t('対処', 'remedy')}: ${cause.remedy[lang]}`);
    }
  }
}

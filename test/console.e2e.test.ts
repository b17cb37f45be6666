// The admin console in a real browser (Debian chromium driven by playwright-core) against a real
// haishin with simulated iPads. Skipped, with a printed reason, where chromium is not installed.
import { spawnSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import type { BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_CONSOLE_DIR } from '../src/api/console.ts';
import { generateDemoPushIdentity } from '../src/apple/apns/pushcert.ts';
import type { SimDevice } from '../src/sim/device/device.ts';
import { ADMIN, World } from './support/world.ts';
import type { CatalogApp } from './support/world.ts';

const CHROMIUM = process.env.HAISHIN_CHROMIUM ?? '/usr/bin/chromium';
const chromiumAvailable = existsSync(CHROMIUM);
if (!chromiumAvailable)
  console.warn(
    `[console.e2e.test] ${CHROMIUM} not found: browser tests of the admin console skipped (apt-get install chromium fonts-ipafont-gothic)`,
  );

/** STACK.md §3.5: no sandbox as root, nothing that phones home, no GPU on this machine. */
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-dev-shm-usage',
];

/** DESIGN §5: the ErrorChain of the troubleshooting guide. */
const GUIDE_12064 =
  'ErrorChain=ErrorCode[0]=12064, ErrorDomain[0]=MCMDMErrorDomain, LocalizedDescription[0]=Could not retrieve license for the app with iTunes Store ID 361285480., ErrorCode[1]=2605, ErrorDomain[1]=DeviceManagement.error, LocalizedDescription[1]=license not found';

const LICENCE_ERROR_CHAIN = [
  {
    ErrorCode: 12064,
    ErrorDomain: 'MCMDMErrorDomain',
    LocalizedDescription: 'Could not retrieve license for the app with iTunes Store ID 361285490.',
  },
  { ErrorCode: 2605, ErrorDomain: 'DeviceManagement.error', LocalizedDescription: 'License not found' },
];

const APP: CatalogApp = {
  adamId: '361285490',
  name: 'コンソール教材',
  bundleId: 'jp.example.console',
  sizeBytes: 30_000_000,
  licences: 50,
};

interface Cause {
  code: string;
  title: { ja: string; en: string };
  remedy: { ja: string; en: string };
}

const TIMEOUT = 15_000;

describe.skipIf(!chromiumAvailable)('the admin console in Chromium', () => {
  let world: World;
  let context: BrowserContext;
  let page: Page;
  let profileDir = '';
  let shotDir = '';
  let distributionId = '';
  let tokenId = '';
  let schoolId = '';
  let failedJobId = '';
  let broken: SimDevice;
  const pageErrors: string[] = [];
  /** What Chromium reports refusing under the console's Content-Security-Policy (decision 0027). */
  const cspViolations: string[] = [];

  beforeAll(async () => {
    // scripts/test.mjs builds the console before vitest; this covers `npx vitest run <this file>`.
    if (!existsSync(join(DEFAULT_CONSOLE_DIR, 'index.html'))) {
      const built = spawnSync(
        'node_modules/.bin/vite',
        ['build', '--config', 'web/vite.config.ts', '--logLevel', 'warn'],
        {
          stdio: 'inherit',
        },
      );
      if (built.status !== 0) throw new Error('vite build of the console failed');
    }
    world = await World.start([APP]);
    const school = await world.group('コンソール小学校');
    const token = await world.token(school, [APP], 'console');
    [tokenId, schoolId] = [token.id, school];
    const devices = await world.devices(2, [school], () => ({}), 'CON');
    broken = devices[1]!;
    broken.behaviours.set('InstallApplication', { kind: 'error', chain: LICENCE_ERROR_CHAIN });
    const created = await world.api<{ id: string }>('POST', '/distributions', {
      kind: 'install',
      tokenId: token.id,
      adamIds: [APP.adamId],
      targets: { groupIds: [school] },
      licenseMode: 'auto',
    });
    expect(created.status).toBe(201);
    distributionId = created.body.id;
    expect(await world.settle(distributionId)).toEqual({ success: 1, device_error: 1 });
    const jobs = await world.api<{ items: { id: string; status: string }[] }>(
      'GET',
      `/jobs?distributionId=${distributionId}&status=device_error`,
    );
    failedJobId = jobs.body.items[0]!.id;

    profileDir = mkdtempSync(join(tmpdir(), 'haishin-chromium-'));
    shotDir = mkdtempSync(join(tmpdir(), 'haishin-console-shots-'));
    context = await chromium.launchPersistentContext(profileDir, {
      executablePath: CHROMIUM,
      args: CHROMIUM_ARGS,
      headless: true,
      locale: 'ja-JP',
      viewport: { width: 1280, height: 1000 },
    });
    page = context.pages()[0] ?? (await context.newPage());
    page.setDefaultTimeout(TIMEOUT);
    page.on('pageerror', (err) => pageErrors.push(err.message));
    page.on('console', (msg) => {
      if (/Content Security Policy/i.test(msg.text())) cspViolations.push(msg.text());
    });
  });

  afterAll(async () => {
    await context?.close();
    await world?.close();
    if (profileDir) rmSync(profileDir, { recursive: true, force: true });
    if (shotDir) console.log(`[console.e2e.test] screenshots kept in ${shotDir}`);
  });

  const text = (selector: string) => page.locator(selector).first().innerText();

  it('refuses a wrong token with the API error and its code, then signs in from a #token= link', async () => {
    await page.goto(`${world.server.baseUrl}/`);
    await page.locator('input[name="token"]').fill('hs_not-a-real-token');
    await page.getByRole('button', { name: 'サインイン' }).click();
    const error = page.locator('.error');
    await error.waitFor();
    expect(await error.innerText()).toContain('auth.invalid');
    // In Japanese, because the console sends Accept-Language: ja.
    expect(await error.innerText()).toMatch(/[\u3040-\u30ff\u4e00-\u9fff]/);

    await page.goto(`${world.server.baseUrl}/#token=${encodeURIComponent(ADMIN)}`);
    await page.locator('nav').getByText('配信履歴').waitFor();
    expect(page.url()).not.toContain('token=');
    // A string, evaluated in the page: the test's own program has no DOM types.
    expect(await page.evaluate("sessionStorage.getItem('haishin.adminToken')")).toBe(ADMIN);
  });

  it('lists the distribution with its counts per status as a stacked bar', async () => {
    const row = page.locator(`tr[data-distribution="${distributionId}"]`);
    await row.waitFor();
    expect(await row.locator('[data-count-status="success"]').innerText()).toContain('成功 1');
    expect(await row.locator('[data-count-status="device_error"]').innerText()).toContain('端末エラー 1');
    expect(await row.locator('.bar .seg').count()).toBe(2);
    // The app by its name, the Adam ID beside it.
    expect(await row.locator('[data-apps]').innerText()).toBe(`${APP.name} (${APP.adamId})`);
    await row.locator('a').first().click();
    await page.locator('[data-total]').waitFor();
    expect(await text('[data-total]')).toBe('2');
  });

  it('the jobs table and the job page show device numbers (端末番号) and app names, not ids', async () => {
    const devices = await world.api<{ items: { id: string; deviceNumber: number }[] }>(
      'GET',
      `/devices?groupId=${schoolId}`,
    );
    const numbers = new Map(devices.body.items.map((d) => [d.id, d.deviceNumber]));
    const jobs = await world.api<{ items: { id: string; deviceId: string }[] }>(
      'GET',
      `/jobs?distributionId=${distributionId}`,
    );
    for (const j of jobs.body.items) {
      const row = page.locator(`tr[data-job="${j.id}"]`);
      await row.waitFor();
      expect(await row.locator('[data-device-number]').innerText()).toBe(`#${numbers.get(j.deviceId)}`);
      expect(await row.locator('[data-app-name]').innerText()).toBe(APP.name);
    }
    expect(await page.locator('table.jobs thead').innerText()).toContain('端末番号');
    const failed = jobs.body.items.find((j) => j.id === failedJobId)!;
    await page.goto(`${world.server.baseUrl}/jobs/${failedJobId}`);
    await page.locator('[data-job-device] [data-device-number]').waitFor();
    expect(await text('[data-job-device]')).toBe(`#${numbers.get(failed.deviceId)}`);
    expect(await text('[data-job-app]')).toContain(APP.name);
    expect(await text('[data-job-app]')).toContain(APP.adamId);
    await page.goto(`${world.server.baseUrl}/distributions/${distributionId}`);
    await page.locator('[data-total]').waitFor();
  });

  it('opens the failed job: diagnosis with cause, remedy and ErrorChain in Japanese, then in English', async () => {
    const diagnosis = await world.api<{ causes: Cause[] }>('GET', `/jobs/${failedJobId}/diagnosis`);
    const top = diagnosis.body.causes[0]!;
    expect(diagnosis.body.causes.map((c) => c.code)).toContain('license.not_assigned');

    await page.locator('select[name="status"]').selectOption('device_error');
    await page.locator(`tr[data-job="${failedJobId}"] a`).first().click();
    const cause = page.locator(`[data-cause="${top.code}"]`).first();
    await cause.waitFor();
    expect(await cause.innerText()).toContain(top.title.ja);
    expect(await cause.innerText()).toContain(top.remedy.ja);
    expect(await cause.innerText()).toContain(top.code);
    await page.locator('[data-cause="license.not_assigned"]').first().waitFor();
    expect(await text('h1 [data-status]')).toBe('端末エラー');
    expect(await page.locator('[data-chain-code="12064"]').count()).toBe(1);
    expect(await page.locator('[data-chain-code="2605"]').count()).toBe(1);
    await page.screenshot({ path: join(shotDir, 'job-ja.png'), fullPage: true });

    await page.getByRole('button', { name: 'English' }).click();
    await page.getByText(top.title.en).first().waitFor();
    expect(await cause.innerText()).toContain(top.remedy.en);
    expect(await text('h1 [data-status]')).toBe('Device error');
    await page.screenshot({ path: join(shotDir, 'job-en.png'), fullPage: true });
    await page.getByRole('button', { name: '日本語' }).click();
    await page.getByText(top.title.ja).first().waitFor();

    // A remedy button calls POST /jobs/:id/remediate; here the licence is already assigned (auto),
    // so the server refuses with 409 and the console shows its message and code.
    await page.locator('[data-cause="license.not_assigned"] [data-action="assign_license"]').first().click();
    await page.locator('.error').first().waitFor();
    expect(await text('.error')).toContain('remediate.licence_already_assigned');
    expect(await text('h1 [data-status]')).toBe('端末エラー');
  });

  it('Retry starts a new attempt and the page follows the job to success', async () => {
    // The device is fixed (licence now found): the new attempt succeeds, and the page must see it live.
    broken.behaviours.delete('InstallApplication');
    await page.getByTestId('retry').click();
    await page.locator('h1 [data-status="success"]').waitFor({ timeout: 30_000 });
    expect(await text('h1 [data-status]')).toBe('成功');
    expect(await text('[data-attempt]')).toBe('2');
    const history = await page.locator('table.history tbody tr').count();
    expect(history).toBeGreaterThanOrEqual(4);
  });

  it('explains the 12064/2605 ErrorChain from the guide, and shows a refused request with its code', async () => {
    await page.locator('nav').getByText('エラーを解説').click();
    // Nothing pasted: the server refuses it (400) and the console shows its code.
    await page.getByRole('button', { name: '解説する' }).click();
    await page.locator('.error').waitFor();
    expect(await text('.error')).toContain('request.invalid');

    await page.locator('textarea[name="text"]').fill(GUIDE_12064);
    await page.getByRole('button', { name: '解説する' }).click();
    await page.locator('[data-cause="license.not_assigned"]').waitFor();
    expect(await page.locator('.error').count()).toBe(0);
    expect(await page.locator('[data-chain-code="12064"]').count()).toBe(1);
    expect(await page.locator('[data-chain-code="2605"]').count()).toBe(1);
    const codes = await page
      .locator('[data-cause]')
      .evaluateAll((els) => els.map((e) => e.getAttribute('data-cause')));
    expect(codes).toEqual(expect.arrayContaining(['license.not_assigned', 'autoassign.token_misconfigured']));
    await page.screenshot({ path: join(shotDir, 'explain-ja.png'), fullPage: true });
  });

  it('shows devices, the group tree with its token and auto-assign, and the VPP token with days left', async () => {
    await page.locator('nav').getByText('端末').click();
    await page.locator('tr[data-device]').nth(1).waitFor();
    expect(await page.locator('tr[data-device]').count()).toBe(2);
    await page.locator('input[name="serial"]').fill(broken.serialNumber);
    await page.getByRole('button', { name: '検索' }).click();
    await expect.poll(() => page.locator('tr[data-device]').count(), { timeout: TIMEOUT }).toBe(1);
    await page.locator('tr[data-device] a').first().click();
    await page.getByText('この端末のジョブ').waitFor();
    expect(await page.locator('h1').innerText()).toContain('#');

    await page.locator('nav').getByText('グループ').click();
    const node = page.locator('li[data-group]').filter({ hasText: 'コンソール小学校' }).last();
    await node.waitFor();
    expect(await node.innerText()).toContain('教育委員会');
    await node.locator('[data-autoassign]').first().waitFor();
    expect(await node.locator('[data-autoassign]').first().innerText()).toContain('このグループの設定');

    await page.locator('nav').getByText('VPP トークン').click();
    const tokenRow = page.locator('tr[data-token]').first();
    await tokenRow.waitFor();
    expect(await tokenRow.innerText()).toContain('教育委員会');
    expect(await tokenRow.innerText()).toMatch(/あと \d+ 日/);
    await page.screenshot({ path: join(shotDir, 'tokens-ja.png'), fullPage: true });
  });

  it('a group shows its enrollment links: one is created (link and QR code shown once), enrolls, and is revoked', async () => {
    await page.goto(`${world.server.baseUrl}/#token=${encodeURIComponent(ADMIN)}`);
    await page.locator('nav').getByText('グループ').click();
    await page.locator(`button[data-show-links="${schoolId}"]`).click();
    const section = page.locator(`[data-enrollment-links="${schoolId}"]`);
    await section.locator('input[name="label"]').fill('2年1組のカート');
    await section.locator('button[type="submit"]').click();
    const url = await section.locator('[data-created-link] [data-link-url]').textContent();
    expect(url).toMatch(/\/mdm\/enroll\?.*token=hse_/);
    await section.locator('[data-created-link] svg[data-qr] path').waitFor();
    // The link enrolls: the profile comes back.
    expect((await fetch(url!)).status).toBe(200);
    const row = section.locator('tr[data-link]', { hasText: '2年1組のカート' });
    await row.and(page.locator('[data-state="active"]')).waitFor();
    page.once('dialog', (dialog) => void dialog.accept());
    await row.getByRole('button').click();
    await section.locator('tr[data-link][data-state="revoked"]', { hasText: '2年1組のカート' }).waitFor();
    const refused = await fetch(url!);
    expect(refused.status).toBe(403);
    expect(((await refused.json()) as { error: { code: string } }).error.code).toBe('enroll.link_revoked');
  });

  it('the audit page lists who changed what, filtered by kind', async () => {
    const created = await world.api<{ id: string }>('POST', '/groups', {
      name: '監査テスト校',
      parentId: schoolId,
    });
    expect(created.status).toBe(201);
    await page.goto(`${world.server.baseUrl}/#token=${encodeURIComponent(ADMIN)}`);
    await page.locator('nav').getByText('操作履歴').click();
    await page.locator('table[data-table="audit"] tbody tr').first().waitFor();
    await page.locator('input[name="kind"]').fill('group.create');
    await page.getByRole('button', { name: '絞り込む' }).click();
    const row = page.locator('table[data-table="audit"] tr[data-action="group.create"]', {
      hasText: created.body.id,
    });
    await row.waitFor();
    await expect(row.textContent()).resolves.toContain('127.0.0.1');
    // Only group.create rows once filtered.
    const rows = page.locator('table[data-table="audit"] tbody tr');
    const creates = page.locator('table[data-table="audit"] tbody tr[data-action="group.create"]');
    await expect.poll(async () => (await rows.count()) === (await creates.count())).toBe(true);
  });

  it('falls back to polling when the event stream is blocked, and still shows a new distribution', async () => {
    const tab = await context.newPage();
    try {
      // A proxy that kills text/event-stream responses, as some do.
      await tab.route('**/api/v1/events**', (route) => route.abort());
      // sessionStorage is per tab: the printed link signs this one in.
      await tab.goto(`${world.server.baseUrl}/#token=${encodeURIComponent(ADMIN)}`);
      await tab.locator('[data-live="polling"]').waitFor({ timeout: TIMEOUT });
      const created = await world.api<{ id: string }>('POST', '/distributions', {
        kind: 'install',
        tokenId,
        adamIds: [APP.adamId],
        targets: { groupIds: [schoolId] },
        licenseMode: 'auto',
      });
      expect(created.status).toBe(201);
      await tab.locator(`tr[data-distribution="${created.body.id}"]`).waitFor({ timeout: TIMEOUT });
    } finally {
      await tab.close();
    }
  });

  it('creates a distribution from the form: pre-flight shows the device with a cause, then Distribute', async () => {
    // A device in a subgroup the school's token is not shared to: pre-flight must predict it.
    const annex = await world.group('コンソール分校', schoolId);
    const [stray] = await world.devices(1, [annex], () => ({}), 'ANX');
    await page.locator('nav').getByText('配信履歴').click();
    await page.getByTestId('new-distribution').click();
    const form = page.locator('form[data-new-distribution]');
    const asset = form.locator('[data-assets] li').filter({ hasText: APP.name });
    await asset.waitFor();
    expect(await asset.innerText()).toContain(APP.adamId);
    expect(await asset.locator('[data-available]').innerText()).toMatch(/残りライセンス \d+/);

    // No app picked: the API refuses it and the form shows the message with its code.
    await form.locator('select[name="groupIds"]').selectOption([schoolId]);
    await page.getByTestId('distribute').click();
    await form.locator('.error').waitFor();
    expect(await form.locator('.error').innerText()).toContain('request.invalid');

    await asset.locator('input[type="checkbox"]').check();
    await form.locator('textarea[name="serials"]').fill('NO-SUCH-SERIAL');
    await page.getByTestId('preflight').click();
    await form.locator('.error').filter({ hasText: 'device.serial_not_found' }).waitFor();
    expect(await form.locator('.error').innerText()).toContain('NO-SUCH-SERIAL');

    await form.locator('textarea[name="serials"]').fill(stray!.serialNumber);
    await page.getByTestId('preflight').click();
    const problem = form.locator('[data-preflight-device]');
    await problem.waitFor();
    expect(await form.locator('.error').count()).toBe(0);
    expect(await problem.count()).toBe(1);
    expect(await problem.getAttribute('data-cause')).toBe('token.not_shared');
    expect(await problem.innerText()).toContain(stray!.serialNumber);
    const body = {
      kind: 'install',
      tokenId,
      adamIds: [APP.adamId],
      targets: { groupIds: [schoolId], includeSubgroups: true, deviceIds: [] as string[] },
      licenseMode: 'auto',
    };
    const found = await world.api<{ items: { id: string }[] }>(
      'GET',
      `/devices?serialNumber=${stray!.serialNumber}`,
    );
    body.targets.deviceIds = [found.body.items[0]!.id];
    const expected = await world.api<{ devices: { causes: Cause[] }[] }>(
      'POST',
      '/distributions/preflight',
      body,
    );
    const top = expected.body.devices.find((d) => d.causes.length > 0)!.causes[0]!;
    expect(await problem.innerText()).toContain(top.title.ja);
    expect(await problem.innerText()).toContain(top.remedy.ja);
    expect(await form.locator('[data-preflight-clean]').getAttribute('data-preflight-clean')).toBe('2');
    expect(await text('[data-preflight-clean]')).toContain('3 台中 2 台は問題ありません');
    await page.screenshot({ path: join(shotDir, 'new-distribution-ja.png'), fullPage: true });

    await page.getByTestId('distribute').click();
    await page.waitForURL(/\/distributions\/[^/]+$/);
    const created = decodeURIComponent(new URL(page.url()).pathname.split('/').pop()!);
    expect(created).not.toBe(distributionId);
    await page.locator('[data-total]').waitFor();
    expect(await text('[data-total]')).toBe('3');
    expect(await world.settle(created)).toEqual({ success: 2, license_failed: 1 });
    await page.locator('[data-count-status="license_failed"]').waitFor();
    expect(await text('[data-count-status="success"]')).toContain('成功 2');
    expect(await text('[data-count-status="license_failed"]')).toContain('ライセンス割り当て失敗 1');
  });

  it('the Server page shows the status; a banner on every page once APNs refuses the push certificate', async () => {
    await page.locator('nav').getByText('サーバー').click();
    await page.locator('[data-push-alert]').waitFor();
    expect(await text('[data-push-alert]')).toBe('なし');
    expect(await text('[data-device-total]')).toBe('3');
    // Device identities (decision 0023): none expired, so no banner line for them either.
    expect(await text('[data-identities-expired]')).toBe('0');
    expect(await page.locator('[data-banner]').count()).toBe(0);

    world.apnsFake.failAll({ status: 403, reason: 'BadCertificate' });
    try {
      const found = await world.api<{ items: { id: string }[] }>(
        'GET',
        `/devices?serialNumber=${broken.serialNumber}`,
      );
      expect((await world.api('POST', `/devices/${found.body.items[0]!.id}/refresh`)).status).toBe(202);
      await expect
        .poll(
          async () =>
            (await world.api<{ pushCertificate: { alert: unknown } }>('GET', '/status')).body.pushCertificate
              .alert,
          { timeout: TIMEOUT },
        )
        .not.toBeNull();
    } finally {
      world.apnsFake.clearFailures();
    }
    // The banner re-reads the status on every navigation.
    await page.locator('nav').getByText('配信履歴').click();
    const banner = page.locator('[data-banner-line="push-alert"]');
    await banner.waitFor();
    expect(await banner.innerText()).toContain('APNs がプッシュ証明書を拒否しました');
    expect(await banner.innerText()).toContain('403 BadCertificate');
    expect(await banner.innerText()).toContain('identity.apple.com/pushcert');
    await page.screenshot({ path: join(shotDir, 'banner-ja.png'), fullPage: true });
    await page.getByRole('button', { name: 'English' }).click();
    await page.getByText('APNs refused the push certificate').waitFor();
    await page.getByRole('button', { name: '日本語' }).click();
    await banner.getByRole('link').click();
    await page.locator('[data-push-alert="yes"]').waitFor();
    expect(await text('[data-push-alert]')).toContain('BadCertificate');
  });

  it('the Apps page shows a new version and the devices on the old one, and updates them in one click', async () => {
    world.publishVersion(APP.adamId, '1.1');
    await page.locator('nav').getByText('アプリ').click();
    await page.locator('[data-action="check-updates"]').click();
    const row = page.locator(`[data-app="${APP.adamId}"]`);
    await row.getByText('アップデートあり').waitFor();
    const before = (
      await world.api<{ outdatedDevices: number; installedDevices: number }>('GET', `/apps/${APP.adamId}`)
    ).body;
    expect(before.outdatedDevices).toBeGreaterThan(0);
    expect(await row.locator('[data-outdated]').innerText()).toBe(
      `${before.outdatedDevices} / ${before.installedDevices}`,
    );
    page.once('dialog', (dialog) => void dialog.accept());
    await row.locator(`[data-update="${APP.adamId}"]`).click();
    await page.locator('[data-note="updates"]').getByText('バージョン 1.1 を').waitFor();
    await expect
      .poll(
        async () =>
          (await world.api<{ outdatedDevices: number }>('GET', `/apps/${APP.adamId}`)).body.outdatedDevices,
        { timeout: TIMEOUT },
      )
      .toBe(0);
    await page.locator('[data-action="check-updates"]').click();
    await row.getByText('最新').waitFor();
    // Each group says whether it keeps its apps up to date, and where the setting comes from.
    await page.locator('nav').getByText('グループ').click();
    await page.locator(`[data-keep-updated="${schoolId}"]`).getByText('アプリを最新に保つ').waitFor();
  });

  it('a reloaded deep link is served by the SPA fallback and keeps the session; no script errors', async () => {
    await page.goto(`${world.server.baseUrl}/jobs/${failedJobId}`);
    await page.locator('h1 [data-status]').waitFor();
    await page.goto(`${world.server.baseUrl}/jobs/does-not-exist`);
    await page.locator('.error').first().waitFor();
    expect(await page.locator('.error').count()).toBe(1);
    expect(await text('.error')).toContain('job.not_found');
    expect(pageErrors).toEqual([]);
  });

  it('the Server page replaces the push certificate: a renewed one is taken, a created one (new topic) refused until forced', async () => {
    const pem = (name: string, text: string) => ({
      name,
      mimeType: 'application/x-pem-file',
      buffer: Buffer.from(text),
    });
    await page.goto(`${world.server.baseUrl}/#token=${encodeURIComponent(ADMIN)}`);
    await page.locator('nav').getByText('サーバー').click();
    const upload = page.locator('[data-push-upload]');
    // Created in Apple's portal instead of renewed: another topic, refused with the reason.
    const created = generateDemoPushIdentity(new Date(), { validDays: 365 });
    world.fakes.apns.trust(created.certPem);
    await upload.locator('input[name="cert"]').setInputFiles(pem('created.pem', created.certPem));
    await upload.locator('input[name="key"]').setInputFiles(pem('created.key', created.keyPem));
    await upload.locator('button[type="submit"]').click();
    await upload.locator('.error', { hasText: 'push_certificate.topic_changed' }).waitFor();
    await upload.locator('input[name="force"]').waitFor();
    // Renewed: the same topic, taken at once.
    const renewed = generateDemoPushIdentity(new Date(), { topic: world.fakes.push.topic, validDays: 400 });
    world.fakes.apns.trust(renewed.certPem);
    await upload.locator('input[name="cert"]').setInputFiles(pem('renewed.pem', renewed.certPem));
    await upload.locator('input[name="key"]').setInputFiles(pem('renewed.key', renewed.keyPem));
    await upload.locator('button[type="submit"]').click();
    await upload.locator('[data-push-replaced]').waitFor();
    const status = await world.api<{ pushCertificate: { notAfter: string; topic: string } }>(
      'GET',
      '/status',
    );
    expect(status.body.pushCertificate.topic).toBe(world.fakes.push.topic);
    expect(status.body.pushCertificate.notAfter).toBe(
      new Date(new X509Certificate(renewed.certPem).validTo).toISOString(),
    );
  });

  it('an operator of one school sees only that school; the owner made them on the Administrators page', async () => {
    // Another school with its own iPad and distribution, which the operator must never see.
    const other = await world.group('となりの小学校');
    const otherToken = await world.token(other, [APP], 'console-other');
    await world.devices(1, [other], () => ({}), 'OTH');
    const otherDistribution = await world.api<{ id: string }>('POST', '/distributions', {
      kind: 'install',
      tokenId: otherToken.id,
      adamIds: [APP.adamId],
      targets: { groupIds: [other] },
      licenseMode: 'auto',
    });
    expect(otherDistribution.status).toBe(201);

    await page.goto(`${world.server.baseUrl}/#token=${encodeURIComponent(ADMIN)}`);
    await page.locator('nav').getByText('管理者').click();
    const form = page.locator('form[data-new-admin]');
    await form.locator('input[name="adminName"]').fill('コンソール小 ICT担当');
    await form.locator('select[name="adminRole"]').selectOption('operator');
    await form.locator('select[name="adminScope"]').selectOption(schoolId);
    await form.locator('button[type="submit"]').click();
    const row = page.locator('tr[data-admin][data-role="operator"]', { hasText: 'コンソール小 ICT担当' });
    await row.waitFor();
    expect(await row.innerText()).toContain('コンソール小学校');
    await row.getByRole('button', { name: 'API トークン' }).click();
    const adminId = await row.getAttribute('data-admin');
    const tokens = page.locator(`[data-admin-tokens="${adminId}"]`);
    await tokens.locator('input[name="tokenName"]').fill('職員室PC');
    await tokens.locator('button[type="submit"]').click();
    const secret = (await tokens.locator('[data-token-secret]').textContent())!.trim();
    expect(secret).toMatch(/^hs_/);
    await page.screenshot({ path: join(shotDir, 'admins-ja.png'), fullPage: true });

    // The operator signs in: only the school, and only what an operator may do.
    await page.goto(`${world.server.baseUrl}/#token=${encodeURIComponent(secret)}`);
    await page.locator('.who[data-who="operator"]').waitFor();
    expect(await text('.who')).toContain('コンソール小学校');
    const nav = await text('nav');
    expect(nav).not.toContain('操作履歴');
    expect(nav).not.toContain('サーバー');
    await page.locator(`tr[data-distribution="${distributionId}"]`).waitFor();
    expect(await page.locator(`tr[data-distribution="${otherDistribution.body.id}"]`).count()).toBe(0);
    expect(await page.getByTestId('new-distribution').count()).toBe(1);

    const ours = await world.api<{ items: unknown[] }>(
      'GET',
      `/devices?groupId=${schoolId}&includeSubgroups=true&limit=500`,
    );
    await page.locator('nav').getByText('端末').click();
    await page.locator('tr[data-device]').nth(1).waitFor();
    await expect
      .poll(() => page.locator('tr[data-device]').count(), { timeout: TIMEOUT })
      .toBe(ours.body.items.length);
    expect(await text('table')).not.toContain('OTH');

    await page.locator('nav').getByText('グループ').click();
    await page.locator('li[data-group]').filter({ hasText: 'コンソール小学校' }).first().waitFor();
    expect(await page.locator('li[data-group]').filter({ hasText: 'となりの小学校' }).count()).toBe(0);
    // Enrollment links are an admin's: an operator sees them without the form to make one.
    await page.locator(`button[data-show-links="${schoolId}"]`).click();
    await page.locator(`[data-enrollment-links="${schoolId}"]`).waitFor();
    expect(await page.locator(`[data-enrollment-links="${schoolId}"] form`).count()).toBe(0);
    await page.screenshot({ path: join(shotDir, 'operator-groups-ja.png'), fullPage: true });

    // Another school's device by its address: the API answers as if it did not exist.
    const otherDevice = (await world.api<{ items: { id: string }[] }>('GET', `/devices?groupId=${other}`))
      .body.items[0]!.id;
    await page.goto(`${world.server.baseUrl}/devices/${otherDevice}`);
    await page.locator('.error').waitFor();
    expect(await text('.error')).toContain('device.not_found');

    // A viewer of the school reads the same pages without the buttons that change anything.
    const viewer = await world.api<{ id: string }>('POST', '/admins', {
      name: 'コンソール小 閲覧',
      role: 'viewer',
      scopeGroupId: schoolId,
    });
    const viewerToken = await world.api<{ secret: string }>('POST', `/admins/${viewer.body.id}/tokens`, {
      name: 'pc',
    });
    await page.goto(`${world.server.baseUrl}/#token=${encodeURIComponent(viewerToken.body.secret)}`);
    await page.locator('.who[data-who="viewer"]').waitFor();
    await page.locator(`tr[data-distribution="${distributionId}"]`).waitFor();
    expect(await page.getByTestId('new-distribution').count()).toBe(0);
    await page.goto(`${world.server.baseUrl}/jobs/${failedJobId}`);
    await page.getByRole('button', { name: 'サポート情報 (JSON)' }).first().waitFor();
    expect(await page.getByTestId('retry').count()).toBe(0);
    expect(await page.getByTestId('cancel').count()).toBe(0);

    await page.goto(`${world.server.baseUrl}/#token=${encodeURIComponent(ADMIN)}`);
    await page.locator('.who[data-who="owner"]').waitFor();
  });

  it('runs under its Content-Security-Policy with no violation, and may not be framed', async () => {
    const response = await page.goto(`${world.server.baseUrl}/`);
    await page.locator('nav').getByText('配信履歴').waitFor();
    const headers = response!.headers();
    expect(headers['content-security-policy']).toMatch(/script-src 'self'/);
    expect(headers['content-security-policy']).toContain("frame-ancestors 'none'");
    expect(headers['x-frame-options']).toBe('DENY');
    expect(headers['x-content-type-options']).toBe('nosniff');
    expect(headers['referrer-policy']).toBe('no-referrer');
    // Every page visited by the tests above loaded and ran with nothing refused by the policy.
    expect(cspViolations).toEqual([]);
    // The listener does hear a refusal: an inline script is one.
    await page.evaluate(
      "const s = document.createElement('script'); s.textContent = '1'; document.body.append(s)",
    );
    await expect.poll(() => cspViolations.length).toBe(1);
    cspViolations.length = 0;
  });
});

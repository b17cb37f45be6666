// Enrollment links as shipped (issue 17 item 4, decision 0022): `haishin serve` configured by its
// environment, links made and revoked with the `haishin enrollment-links` CLI, a simulated iPad
// enrolling through HTTP. The bare group form, a revoked and an expired link are refused with 403.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SimDevice } from '../../src/sim/device/device.ts';
import {
  adminApi,
  createEnrollmentLink,
  runHaishin,
  startFakesProcess,
  startServe,
  testServeEnv,
} from './support.ts';
import type { HaishinProcess } from './support.ts';

const ADMIN = 'links-e2e-admin-token-0123456789';

describe('enrollment links (haishin serve + haishin enrollment-links)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'haishin-links-'));
  let fakes: HaishinProcess | null = null;
  let serve: HaishinProcess | null = null;
  let env: Record<string, string>;
  let baseUrl: string;
  let rootId: string;
  let api: ReturnType<typeof adminApi>;
  const cli = (args: string[]) =>
    runHaishin(args, { HAISHIN_URL: baseUrl, HAISHIN_TOKEN: ADMIN, LANG: 'en_US.UTF-8' });

  beforeAll(async () => {
    const started = await startFakesProcess(join(dir, 'apple'));
    fakes = started.proc;
    ({ env, baseUrl } = await testServeEnv({ fakesEnv: started.info.env, dir, admin: ADMIN }));
    const served = await startServe(env);
    serve = served.proc;
    rootId = new URL(served.enrollUrl).searchParams.get('group')!;
    api = adminApi(baseUrl, ADMIN);
  }, 120_000);

  afterAll(async () => {
    await serve?.kill();
    await fakes?.kill();
    rmSync(dir, { recursive: true, force: true });
  });

  it('the bare group link is refused with 403 and one line in English and Japanese', async () => {
    expect(
      serve!.stdout.some((l) => l.startsWith(`root group ${rootId}: devices enroll with an enrollment link`)),
    ).toBe(true);
    const bare = `${baseUrl}/mdm/enroll?group=${rootId}`;
    const en = await fetch(bare);
    expect(en.status).toBe(403);
    expect(((await en.json()) as { error: { message: string } }).error.message).toBe(
      'Enrollment needs an enrollment link from your administrator; a group id alone is not accepted.',
    );
    const ja = await fetch(bare, { headers: { 'accept-language': 'ja' } });
    expect(((await ja.json()) as { error: { message: string } }).error.message).toMatch(
      /登録用リンクが必要です/,
    );
    await expect(new SimDevice().enroll(bare)).rejects.toThrow(/HTTP 403/);
  });

  it(
    'a link made with the CLI enrolls an iPad; once revoked with the CLI it is refused',
    { timeout: 60_000 },
    async () => {
      const made = await cli(['enrollment-links', 'create', '--group', rootId, '--label', 'Class 1-1']);
      expect(made.code, made.stderr.join('\n')).toBe(0);
      const url = made.stdout.find((l) => l.startsWith(`${baseUrl}/mdm/enroll?group=${rootId}&token=hse_`));
      expect(url).toBeDefined();
      // The QR code of the link is printed too (half-block characters).
      expect(made.stdout.some((l) => /[█▀▄]{10}/.test(l))).toBe(true);

      const device = new SimDevice();
      await device.enroll(url!);
      const devices = await api<{ items: { udid: string; status: string }[] }>('GET', '/devices');
      expect(devices.body.items.find((d) => d.udid === device.udid)?.status).toBe('enrolled');

      const listed = await cli(['enrollment-links', 'ls', '--group', rootId, '--json']);
      const links = (
        JSON.parse(listed.stdout.join('\n')) as {
          items: { id: string; label: string | null; useCount: number }[];
        }
      ).items;
      const link = links.find((l) => l.label === 'Class 1-1')!;
      expect(link.useCount).toBe(1);
      expect(listed.stdout.join('\n')).not.toContain('hse_');

      const revoked = await cli(['enrollment-links', 'revoke', link.id]);
      expect(revoked.code, revoked.stderr.join('\n')).toBe(0);
      expect(revoked.stdout.join('\n')).toContain('revoked');
      const res = await fetch(url!);
      expect(res.status).toBe(403);
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe('enroll.link_revoked');
      await expect(new SimDevice().enroll(url!)).rejects.toThrow(/HTTP 403/);
    },
  );

  it('an expired link is refused; a link with one use enrolls one iPad', { timeout: 60_000 }, async () => {
    const shortLived = await createEnrollmentLink(env, rootId, ['--expires-in', '2s']);
    await new SimDevice().enroll(shortLived);
    await new Promise((r) => setTimeout(r, 2_200));
    const expired = await fetch(shortLived);
    expect(expired.status).toBe(403);
    expect(((await expired.json()) as { error: { code: string } }).error.code).toBe('enroll.link_expired');

    const once = await createEnrollmentLink(env, rootId, ['--max-uses', '1']);
    await new SimDevice().enroll(once);
    const again = await fetch(once, { headers: { 'accept-language': 'ja' } });
    expect(again.status).toBe(403);
    expect(((await again.json()) as { error: { code: string; message: string } }).error).toMatchObject({
      code: 'enroll.link_used_up',
      message: expect.stringMatching(/使い切りました/),
    });
  });
});

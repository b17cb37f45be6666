// Administrators, roles and scopes as shipped (issue 18, items 1–2; decision 0029): `haishin serve`
// configured by its environment, the owner (HAISHIN_ADMIN_TOKEN) making a school's admin with the
// `haishin admins` CLI, that admin making an operator of the school, and the operator seeing only
// that school: its groups and devices, 404 for the other school's, 403 for what its role may not.
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

const OWNER = 'authz-e2e-owner-token-0123456789';

describe('administrators and scopes (haishin serve + haishin admins)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'haishin-authz-'));
  let fakes: HaishinProcess | null = null;
  let serve: HaishinProcess | null = null;
  let env: Record<string, string>;
  let baseUrl: string;
  const school = { a: '', b: '' };
  const device = { a: '', b: '' };
  let operatorToken = '';
  let operatorId = '';
  let operatorTokenId = '';

  const cli = async (token: string, args: string[], lang = 'en_US.UTF-8') =>
    runHaishin(args, { HAISHIN_URL: baseUrl, HAISHIN_TOKEN: token, LANG: lang });
  const json = <T>(r: { code: number | null; stdout: string[]; stderr: string[] }): T => {
    if (r.code !== 0) throw new Error(`haishin exited ${r.code}: ${r.stderr.join('\n')}`);
    return JSON.parse(r.stdout.join('\n')) as T;
  };

  beforeAll(async () => {
    const started = await startFakesProcess(join(dir, 'apple'));
    fakes = started.proc;
    ({ env, baseUrl } = await testServeEnv({ fakesEnv: started.info.env, dir, admin: OWNER }));
    serve = (await startServe(env)).proc;
    school.a = json<{ id: string }>(await cli(OWNER, ['groups', 'add', '第一小学校', '--json'])).id;
    school.b = json<{ id: string }>(await cli(OWNER, ['groups', 'add', '第二小学校', '--json'])).id;
    for (const key of ['a', 'b'] as const) {
      const ipad = new SimDevice({ spec: { serialNumber: `AUTHZ${key.toUpperCase()}0000001` } });
      await ipad.enroll(await createEnrollmentLink(env, school[key]));
      const owner = adminApi(baseUrl, OWNER);
      device[key] = (
        await owner<{ items: { id: string }[] }>('GET', `/devices?groupId=${school[key]}`)
      ).body.items[0]!.id;
    }
  }, 120_000);

  afterAll(async () => {
    await serve?.kill();
    await fakes?.kill();
    rmSync(dir, { recursive: true, force: true });
  });

  it('the owner makes a school admin, who makes an operator of the school; tokens are shown once', async () => {
    const me = json<{ administrator: { role: string }; scope: { wholeTree: boolean } }>(
      await cli(OWNER, ['admins', 'me', '--json']),
    );
    expect(me.administrator.role).toBe('owner');
    expect(me.scope.wholeTree).toBe(true);
    const made = await cli(OWNER, [
      'admins',
      'create',
      '第一小 管理者',
      '--role',
      'admin',
      '--scope',
      school.a,
    ]);
    expect(made.code).toBe(0);
    expect(made.stdout.join('\n')).toMatch(/shown this once/);
    const adminSecret = made.stdout.find((l) => /^hs_/.test(l.trim()))!.trim();

    const operator = json<{
      administrator: { id: string; scopeGroupId: string; role: string };
      token: { id: string; secret: string };
    }>(await cli(adminSecret, ['admins', 'create', '第一小 ICT担当', '--role', 'operator', '--json']));
    expect(operator.administrator).toMatchObject({ role: 'operator', scopeGroupId: school.a });
    operatorToken = operator.token.secret;
    operatorId = operator.administrator.id;
    operatorTokenId = operator.token.id;

    // An admin gives no role above its own, and no scope outside its own.
    const owner = await cli(adminSecret, ['admins', 'create', 'x', '--role', 'owner'], 'ja_JP.UTF-8');
    expect(owner.code).toBe(1);
    expect(owner.stderr.join('\n')).toMatch(/役割.*以下/);
    const elsewhere = await cli(adminSecret, [
      'admins',
      'create',
      'x',
      '--role',
      'viewer',
      '--scope',
      school.b,
    ]);
    expect(elsewhere.code).toBe(1);
    expect(elsewhere.stderr.join('\n')).toMatch(/does not exist/);

    // The school admin's list holds the school's administrators only; roles change, people leave.
    const listed = json<{ items: { name: string; scopeGroupId: string }[] }>(
      await cli(adminSecret, ['admins', 'ls', '--json']),
    );
    expect(listed.items.map((a) => a.name).sort()).toEqual(['第一小 ICT担当', '第一小 管理者']);
    const helper = json<{ administrator: { id: string } }>(
      await cli(adminSecret, [
        'admins',
        'create',
        '第一小 支援員',
        '--role',
        'operator',
        '--without-token',
        '--json',
      ]),
    );
    const set = await cli(
      adminSecret,
      ['admins', 'set', helper.administrator.id, '--role', 'viewer'],
      'ja_JP.UTF-8',
    );
    expect(set.code).toBe(0);
    expect(set.stdout.join('\n')).toMatch(/閲覧者/);
    const extra = json<{ id: string; secret: string }>(
      await cli(adminSecret, [
        'admins',
        'tokens',
        'create',
        helper.administrator.id,
        '--name',
        'タブレット',
        '--json',
      ]),
    );
    expect((await adminApi(baseUrl, extra.secret)('GET', '/me')).status).toBe(200);
    const tokens = await cli(adminSecret, ['admins', 'tokens', 'ls', helper.administrator.id]);
    expect(tokens.stdout.join('\n')).toContain('タブレット');
    expect(tokens.stdout.join('\n')).not.toContain(extra.secret);
    expect((await cli(adminSecret, ['admins', 'disable', helper.administrator.id])).code).toBe(0);
    expect((await adminApi(baseUrl, extra.secret)('GET', '/me')).status).toBe(401);
  });

  it("the operator sees only its school: groups and devices; the other school's answer 404", async () => {
    const groups = json<{ items: { id: string }[] }>(await cli(operatorToken, ['groups', 'ls', '--json']));
    expect(groups.items.map((g) => g.id)).toEqual([school.a]);
    const devices = json<{ items: { id: string }[] }>(await cli(operatorToken, ['devices', 'ls', '--json']));
    expect(devices.items.map((d) => d.id)).toEqual([device.a]);
    const api = adminApi(baseUrl, operatorToken);
    const other = await api<{ error: { code: string; messages: { ja: string; en: string } } }>(
      'GET',
      `/devices/${device.b}`,
    );
    expect(other.status).toBe(404);
    expect(other.body.error.code).toBe('device.not_found');
    expect(other.body.error.messages.ja).toMatch(/存在しません/);
    expect((await api('POST', `/devices/${device.a}/refresh`)).status).toBe(202);
    const wipe = await api<{ error: { code: string } }>('POST', `/devices/${device.a}/wipe`);
    expect(wipe.status).toBe(403);
    expect(wipe.body.error.code).toBe('auth.forbidden');
    expect((await api('GET', '/audit-events')).status).toBe(403);
  });

  it('the audit trail names the administrator and the token; a revoked token is refused', async () => {
    const owner = adminApi(baseUrl, OWNER);
    const trail = await owner<{
      items: { action: string; actor: { name: string }; token: { name: string } }[];
    }>('GET', '/audit-events?kind=device.refresh');
    expect(trail.body.items[0]).toMatchObject({
      actor: { name: '第一小 ICT担当' },
      token: { name: '第一小 ICT担当' },
    });
    const revoked = await cli(OWNER, ['admins', 'tokens', 'revoke', operatorId, operatorTokenId]);
    expect(revoked.code).toBe(0);
    const after = await cli(operatorToken, ['groups', 'ls']);
    expect(after.code).toBe(1);
    expect((await adminApi(baseUrl, operatorToken)('GET', '/me')).status).toBe(401);
  });
});

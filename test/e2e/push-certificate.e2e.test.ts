// The push certificate's life as shipped (issue 17 item 3, decision 0022): `haishin serve`
// configured by its environment, `haishin fakes` playing APNs and Apple's Push Certificates Portal
// (POST /control/apns/push-certificate: renew keeps the topic, create makes a new one), the
// certificate replaced with `haishin push-cert replace` while the server runs.
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync, existsSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SimDevice } from '../../src/sim/device/device.ts';
import { relayPushes, SimFleet } from '../../src/sim/fleet.ts';
import {
  adminApi,
  control,
  eventually,
  runHaishin,
  startFakesProcess,
  startServe,
  testServeEnv,
} from './support.ts';
import type { FakesInfo, HaishinProcess } from './support.ts';

const ADMIN = 'pushcert-e2e-admin-token-0123456789';

interface Issued {
  topic: string;
  notAfter: string;
  certPem: string;
  keyPem: string;
}

describe('push certificate replaced while haishin serve runs', () => {
  const dir = mkdtempSync(join(tmpdir(), 'haishin-pushcert-e2e-'));
  const fleet = new SimFleet();
  let fakes: { proc: HaishinProcess; info: FakesInfo };
  let serve: HaishinProcess | null = null;
  let relay: { close(): void } | null = null;
  let env: Record<string, string>;
  let baseUrl: string;
  let enrollUrl: string;
  let api: ReturnType<typeof adminApi>;
  const cli = (args: string[], lang = 'en_US.UTF-8') =>
    runHaishin(args, { HAISHIN_URL: baseUrl, HAISHIN_TOKEN: ADMIN, LANG: lang });
  const portal = async (mode: 'renew' | 'create', validDays: number) => {
    const issued = await control<Issued>(`${fakes.info.control}/apns/push-certificate`, 'POST', {
      mode,
      validDays,
    });
    writeFileSync(join(dir, `${mode}-${validDays}.pem`), issued.certPem);
    writeFileSync(join(dir, `${mode}-${validDays}.key`), issued.keyPem, { mode: 0o600 });
    return {
      ...issued,
      cert: join(dir, `${mode}-${validDays}.pem`),
      key: join(dir, `${mode}-${validDays}.key`),
    };
  };
  const lastCertificate = async () =>
    (
      await control<{ apnsCertificates: (string | null)[] }>(`${fakes.info.control}/stats`)
    ).apnsCertificates.at(-1);
  const fingerprint = (pem: string) => new X509Certificate(pem).fingerprint256;

  /** A refresh pushes; the woken iPad answers: the push went through. */
  async function pushAndAnswer(device: SimDevice): Promise<void> {
    const id = (await api<{ items: { id: string }[] }>('GET', `/devices?serialNumber=${device.serialNumber}`))
      .body.items[0]!.id;
    const before = (await api<{ lastSeenAt: string }>('GET', `/devices/${id}`)).body.lastSeenAt;
    const refresh = await api<{ push: string }>('POST', `/devices/${id}/refresh`);
    expect(refresh.body.push).toBe('sent');
    await eventually(
      'the iPad answers the refresh',
      async () => {
        const d = (
          await api<{ lastSeenAt: string; facts: { value: unknown } | null }>('GET', `/devices/${id}`)
        ).body;
        return d.facts && d.lastSeenAt !== before ? d : undefined;
      },
      30_000,
    );
  }

  beforeAll(async () => {
    fakes = await startFakesProcess(join(dir, 'apple'));
    relay = await relayPushes(fakes.info.control, fleet);
    ({ env, baseUrl } = await testServeEnv({ fakesEnv: fakes.info.env, dir, admin: ADMIN }));
    const served = await startServe(env);
    serve = served.proc;
    enrollUrl = served.enrollUrl;
    api = adminApi(baseUrl, ADMIN);
  }, 120_000);

  afterAll(async () => {
    relay?.close();
    await serve?.kill();
    await fakes?.proc.kill();
    rmSync(dir, { recursive: true, force: true });
  });

  it('push-cert csr writes a key and a signing request and says what to do with them', async () => {
    const out = join(dir, 'csr');
    const made = await runHaishin(
      ['push-cert', 'csr', '--dir', out, '--org', 'Example School Board', '--country', 'JP'],
      {
        LANG: 'en_US.UTF-8',
      },
    );
    expect(made.code, made.stderr.join('\n')).toBe(0);
    expect(existsSync(join(out, 'push.key'))).toBe(true);
    expect(readFileSync(join(out, 'push.csr'), 'utf8')).toMatch(/^-----BEGIN CERTIFICATE REQUEST-----/);
    expect(made.stdout.join('\n')).toMatch(/Renew/);
    // Never over an existing key: it may be the current certificate's.
    const again = await runHaishin(['push-cert', 'csr', '--dir', out], {});
    expect(again.code).toBe(2);
    expect(again.stderr.join('\n')).toMatch(/already exists/);
  });

  it(
    'a renewed certificate replaces the running one; pushes go on, made with it',
    { timeout: 90_000 },
    async () => {
      const device = fleet.add(new SimDevice({ spec: { serialNumber: 'PCE2E0000001' } }));
      await device.enroll(enrollUrl);
      await pushAndAnswer(device);
      const original = await lastCertificate();

      const renewed = await portal('renew', 400);
      const replaced = await cli(['push-cert', 'replace', '--cert', renewed.cert, '--key', renewed.key]);
      expect(replaced.code, replaced.stderr.join('\n')).toBe(0);
      expect(replaced.stdout.join('\n')).toContain('Push certificate replaced (no restart needed).');
      await pushAndAnswer(device);
      expect(await lastCertificate()).toBe(fingerprint(renewed.certPem));
      expect(await lastCertificate()).not.toBe(original);
    },
  );

  it(
    'a certificate of another topic is refused, saying why, in English and Japanese',
    { timeout: 60_000 },
    async () => {
      const created = await portal('create', 400);
      const refused = await cli(['push-cert', 'replace', '--cert', created.cert, '--key', created.key]);
      expect(refused.code).toBe(1);
      expect(refused.stderr.join('\n')).toContain(
        'it was created instead of renewed; every enrolled device would stop answering',
      );
      expect(refused.stderr.join('\n')).toContain('[push_certificate.topic_changed]');
      const ja = await cli(
        ['push-cert', 'replace', '--cert', created.cert, '--key', created.key],
        'ja_JP.UTF-8',
      );
      expect(ja.stderr.join('\n')).toMatch(/「更新」ではなく「新規作成」/);
      const shown = await api<{ topic: string }>('GET', '/push-certificate');
      expect(shown.body.topic).toBe(fakes.info.topic);
    },
  );

  it('after a restart the uploaded certificate is still the one in use', { timeout: 90_000 }, async () => {
    const before = await api<{ notAfter: string }>('GET', '/push-certificate');
    await serve!.kill();
    serve = (await startServe(env)).proc;
    const after = await api<{ notAfter: string; source: string }>('GET', '/push-certificate');
    expect(after.body).toMatchObject({ notAfter: before.body.notAfter, source: 'uploaded' });
  });

  it('a certificate within 30 days of expiry shows the warning in GET /status', async () => {
    const short = await portal('renew', 20);
    const put = await api('PUT', '/push-certificate', { certPem: short.certPem, keyPem: short.keyPem });
    expect(put.status).toBe(200);
    const status = await api<{ pushCertificate: { daysLeft: number; expiryWarningDays: number | null } }>(
      'GET',
      '/status',
    );
    expect(status.body.pushCertificate).toMatchObject({ expiryWarningDays: 30 });
    expect(status.body.pushCertificate.daysLeft).toBeLessThanOrEqual(20);
  });
});

// `haishin serve` with HAISHIN_TLS_CERT/KEY serves HTTPS itself: the health check and simulated
// iPads (enrolling and checking in) reach it over TLS, and a key that does not belong to the
// certificate stops it with one line naming HAISHIN_TLS_KEY.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../src/cli/net.ts';
import { createLocalhostCertificate } from '../../src/sim/apns/server.ts';
import { runHaishin, startFakesProcess, startFleet, startServe } from './support.ts';
import type { FakesInfo, HaishinProcess } from './support.ts';

const ADMIN = 'tls-admin-token-0123456789abcdef';

/** GET over HTTPS trusting only `ca`: status and body. */
function httpsGet(
  url: string,
  ca: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; body: string }> {
  return new Promise((done, fail) => {
    https
      .get(url, { ca, headers }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (body += chunk));
        res.on('end', () => done({ status: res.statusCode ?? 0, body }));
      })
      .on('error', fail);
  });
}

describe('haishin serve over HTTPS (HAISHIN_TLS_CERT/KEY)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'haishin-tls-'));
  // A self-signed server certificate for 127.0.0.1, and the key of another one.
  const server = createLocalhostCertificate();
  const other = createLocalhostCertificate();
  const certFile = join(dir, 'tls.pem');
  const keyFile = join(dir, 'tls.key');
  const otherKeyFile = join(dir, 'other.key');
  let fakes: { proc: HaishinProcess; info: FakesInfo };
  let serve: { proc: HaishinProcess; enrollUrl: string } | null = null;
  let fleet: HaishinProcess | null = null;
  let env: Record<string, string>;
  let baseUrl: string;

  beforeAll(async () => {
    writeFileSync(certFile, server.certPem);
    writeFileSync(keyFile, server.keyPem, { mode: 0o600 });
    writeFileSync(otherKeyFile, other.keyPem, { mode: 0o600 });
    fakes = await startFakesProcess(join(dir, 'apple'));
    const port = await freePort();
    baseUrl = `https://127.0.0.1:${port}`;
    env = {
      ...fakes.info.env,
      HAISHIN_DB: `sqlite:${join(dir, 'haishin.db')}`,
      HAISHIN_DATA_DIR: join(dir, 'data'),
      HAISHIN_LISTEN: `127.0.0.1:${port}`,
      HAISHIN_PUBLIC_URL: baseUrl,
      HAISHIN_ADMIN_TOKEN: ADMIN,
      HAISHIN_TLS_CERT: certFile,
      HAISHIN_TLS_KEY: keyFile,
      HAISHIN_LOG_LEVEL: 'warn',
      HAISHIN_DEVICE_KEY_TYPE: 'ec',
      HAISHIN_PKCS12_ITERATIONS: '1',
    };
    serve = await startServe(env);
  }, 120_000);

  afterAll(async () => {
    await fleet?.kill();
    await serve?.proc.kill();
    await fakes?.proc.kill();
    rmSync(dir, { recursive: true, force: true });
  });

  it('answers /api/health over TLS with the configured certificate, and not over plain HTTP', async () => {
    expect(serve!.proc.stdout).toContain(
      `haishin listening on https://${env.HAISHIN_LISTEN} (public URL ${baseUrl})`,
    );
    expect(serve!.enrollUrl.startsWith(`${baseUrl}/mdm/enroll?group=`)).toBe(true);
    // An https:// public URL with TLS served: no warning.
    expect(serve!.proc.stderr.filter((l) => l.includes('warning'))).toEqual([]);

    const health = await httpsGet(`${baseUrl}/api/health`, server.certPem);
    expect(health.status).toBe(200);
    expect(JSON.parse(health.body)).toMatchObject({ ok: true });
    // The certificate really is the one configured: trusting another CA fails the handshake.
    await expect(httpsGet(`${baseUrl}/api/health`, other.certPem)).rejects.toThrow(
      /self.signed|certificate/i,
    );
    // Plain HTTP on the TLS port gets no HTTP answer.
    const plain = await new Promise<string>((done) => {
      http
        .get(`http://${env.HAISHIN_LISTEN}/api/health`, (res) => done(`HTTP ${res.statusCode}`))
        .on('error', (err) => done(err.message));
    });
    expect(plain).not.toMatch(/^HTTP 200/);
  });

  it(
    'simulated iPads enroll and check in over TLS (haishin fleet trusting the CA)',
    { timeout: 120_000 },
    async () => {
      // Node trusts the system CAs; a private CA is added as for any Node program.
      fleet = await startFleet(
        ['--fakes', join(dir, 'apple'), '--enroll', serve!.enrollUrl, '--devices', '2'],
        {
          NODE_EXTRA_CA_CERTS: certFile,
        },
      );
      expect(fleet.stdout.filter((l) => l.startsWith('enrolled '))).toHaveLength(2);
      const devices = await httpsGet(`${baseUrl}/api/v1/devices?limit=10`, server.certPem, {
        authorization: `Bearer ${ADMIN}`,
      });
      expect(devices.status).toBe(200);
      expect(
        (JSON.parse(devices.body) as { items: { status: string }[] }).items.map((d) => d.status),
      ).toEqual(['enrolled', 'enrolled']);
    },
  );

  it(
    'a key that does not belong to the certificate: exit status ≠ 0 and one line naming HAISHIN_TLS_KEY',
    { timeout: 60_000 },
    async () => {
      const result = await runHaishin(['serve'], {
        ...env,
        HAISHIN_LISTEN: `127.0.0.1:${await freePort()}`,
        HAISHIN_TLS_KEY: otherKeyFile,
      });
      expect(result.code).not.toBe(0);
      expect(result.code).not.toBeNull();
      expect(result.stderr).toHaveLength(1);
      expect(result.stderr[0]).toMatch(
        /^haishin: HAISHIN_TLS_KEY=\S+other\.key does not belong to the certificate in HAISHIN_TLS_CERT=\S+tls\.pem/,
      );
      expect(result.stdout.join('\n')).not.toContain('listening');
    },
  );

  it('an unreadable certificate file: one line naming HAISHIN_TLS_CERT', { timeout: 60_000 }, async () => {
    const result = await runHaishin(['serve'], { ...env, HAISHIN_TLS_CERT: join(dir, 'missing.pem') });
    expect(result.code).not.toBe(0);
    expect(result.stderr).toEqual([
      expect.stringMatching(/^haishin: HAISHIN_TLS_CERT=\S+missing\.pem cannot be read/),
    ]);
  });
});

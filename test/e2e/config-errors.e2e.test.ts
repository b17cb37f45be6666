// Every configuration that cannot work stops `haishin serve` with a non-zero exit status and one
// line naming the variable — never a server that starts and silently cannot push.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import type { Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateDemoPushIdentity } from '../../src/apple/apns/pushcert.ts';
import { freePort } from '../../src/cli/net.ts';
import { FakeApns } from '../../src/sim/apns/server.ts';
import { startFakes } from '../../src/sim/fakes.ts';
import type { Fakes } from '../../src/sim/fakes.ts';
import { HaishinProcess } from './support.ts';

describe('haishin serve refuses configurations that cannot work', () => {
  const dir = mkdtempSync(join(tmpdir(), 'haishin-config-'));
  let fakes: Fakes;
  let refusingApns: FakeApns;
  let busy: Server;
  let busyPort: number;
  let env: Record<string, string>;

  beforeAll(async () => {
    fakes = await startFakes({ dir: join(dir, 'apple') });
    // An APNs that ends the TLS handshake for any certificate but one nobody has.
    refusingApns = new FakeApns({
      accept: [generateDemoPushIdentity(new Date()).certPem],
      rejectAtTls: true,
    });
    await refusingApns.listen();
    busy = createServer();
    busyPort = await freePort();
    await new Promise<void>((done) => busy.listen(busyPort, '127.0.0.1', done));
    const other = generateDemoPushIdentity(new Date());
    writeFileSync(join(dir, 'other.key'), other.keyPem);
    writeFileSync(join(dir, 'other.pem'), other.certPem);
    const expired = generateDemoPushIdentity(new Date(Date.now() - 400 * 86_400_000));
    writeFileSync(join(dir, 'expired.pem'), expired.certPem);
    writeFileSync(join(dir, 'expired.key'), expired.keyPem);
    env = {
      ...fakes.env,
      HAISHIN_DB: `sqlite:${join(dir, 'haishin.db')}`,
      HAISHIN_DATA_DIR: join(dir, 'data'),
      HAISHIN_LISTEN: `127.0.0.1:${await freePort()}`,
      HAISHIN_ADMIN_TOKEN: 'config-admin-token-0123456789',
    };
  }, 60_000);

  afterAll(async () => {
    await fakes?.close();
    await refusingApns?.close();
    busy?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /** Runs serve with `change` applied (undefined removes a variable); its exit status and stderr lines. */
  async function serveWith(change: Record<string, string | undefined>) {
    const merged: Record<string, string> = { ...env };
    for (const [k, v] of Object.entries(change)) {
      if (v === undefined) delete merged[k];
      else merged[k] = v;
    }
    const proc = new HaishinProcess(['serve'], merged);
    const exit = await Promise.race([
      proc.exited,
      new Promise<null>((r) => setTimeout(() => r(null), 30_000)),
    ]);
    if (exit === null) await proc.kill('SIGKILL');
    return {
      code: exit?.code ?? null,
      lines: proc.stderr.filter((l) => l.trim() !== ''),
      stdout: proc.stdout.join('\n'),
    };
  }

  const cases: [string, () => Record<string, string | undefined>, RegExp][] = [
    ['no push certificate', () => ({ HAISHIN_APNS_CERT: undefined }), /HAISHIN_APNS_CERT is not set/],
    ['no push key', () => ({ HAISHIN_APNS_KEY: undefined }), /HAISHIN_APNS_KEY is not set/],
    [
      'an unreadable push key',
      () => ({ HAISHIN_APNS_KEY: join(dir, 'missing.key') }),
      /HAISHIN_APNS_KEY=\S+missing\.key cannot be read/,
    ],
    [
      'a key that does not belong to the certificate',
      () => ({ HAISHIN_APNS_KEY: join(dir, 'other.key') }),
      /HAISHIN_APNS_KEY does not belong to the certificate in HAISHIN_APNS_CERT/,
    ],
    [
      'an expired push certificate',
      () => ({ HAISHIN_APNS_CERT: join(dir, 'expired.pem'), HAISHIN_APNS_KEY: join(dir, 'expired.key') }),
      /HAISHIN_APNS_CERT: the push certificate for topic \S+ expired on/,
    ],
    [
      'an unreadable APNs CA',
      () => ({ HAISHIN_APNS_CA: join(dir, 'missing-ca.pem') }),
      /HAISHIN_APNS_CA=\S+ cannot be read/,
    ],
    [
      'an APNs CA that does not match the APNs server',
      () => ({ HAISHIN_APNS_CA: join(dir, 'other.pem') }),
      /HAISHIN_APNS_CA: the APNs server at https:\/\/127\.0\.0\.1:\d+ presents a certificate that is not trusted/,
    ],
    [
      'a push certificate APNs refuses',
      () => ({ HAISHIN_APNS_URL: refusingApns.url, HAISHIN_APNS_CA: join(dir, 'apple', 'refusing-ca.pem') }),
      /HAISHIN_APNS_CERT: APNs at https:\/\/127\.0\.0\.1:\d+ refused the push certificate/,
    ],
    [
      'a database URL haishin does not understand',
      () => ({ HAISHIN_DB: 'mysql://haishin@127.0.0.1/haishin' }),
      /HAISHIN_DB=mysql:\/\/haishin@127\.0\.0\.1\/haishin: .*not understood/,
    ],
    [
      'a SQLite file where no folder can be made',
      () => ({ HAISHIN_DB: `sqlite:${join(dir, 'other.pem', 'haishin.db')}` }),
      /HAISHIN_DB=sqlite:\S+other\.pem\/haishin\.db: E[A-Z]+: /,
    ],
    [
      'a PostgreSQL server that does not answer (password kept out of the message)',
      () => ({ HAISHIN_DB: `postgres://haishin:s3cret@127.0.0.1:${busyPort + 1}/haishin` }),
      /HAISHIN_DB=postgres:\/\/haishin:\*\*\*@127\.0\.0\.1:\d+\/haishin: /,
    ],
    [
      'a port in use',
      () => ({ HAISHIN_LISTEN: `127.0.0.1:${busyPort}` }),
      /HAISHIN_LISTEN=127\.0\.0\.1:\d+: the port is already in use/,
    ],
    ['a duration that is not one', () => ({ HAISHIN_PUSH_TIMEOUT: 'soon' }), /HAISHIN_PUSH_TIMEOUT/],
    [
      'a silent re-push interval that is not a duration',
      () => ({ HAISHIN_SILENT_REPUSH: 'often' }),
      /HAISHIN_SILENT_REPUSH/,
    ],
    [
      'a negative number of signature threads',
      () => ({ HAISHIN_SIGNATURE_THREADS: '-1' }),
      /HAISHIN_SIGNATURE_THREADS="-1" must be an integer ≥ 0/,
    ],
    ['half a TLS pair', () => ({ HAISHIN_TLS_CERT: join(dir, 'other.pem') }), /HAISHIN_TLS_KEY is not set/],
    [
      'a renewal window as long as the identities last (decision 0023)',
      () => ({ HAISHIN_DEVICE_IDENTITY_VALIDITY: '30d', HAISHIN_IDENTITY_RENEW_BEFORE: '30d' }),
      /HAISHIN_IDENTITY_RENEW_BEFORE must be longer than 0 and shorter than HAISHIN_DEVICE_IDENTITY_VALIDITY/,
    ],
    [
      'a device identity source haishin does not know (decision 0024)',
      () => ({ HAISHIN_DEVICE_IDENTITY: 'p12' }),
      /HAISHIN_DEVICE_IDENTITY="p12" must be pkcs12 or scep/,
    ],
  ];

  it.each(cases)(
    '%s: exit status ≠ 0 and one line naming the variable',
    { timeout: 60_000 },
    async (_, change, line) => {
      if (change().HAISHIN_APNS_CA?.endsWith('refusing-ca.pem'))
        writeFileSync(join(dir, 'apple', 'refusing-ca.pem'), refusingApns.caPem);
      const result = await serveWith(change());
      const said = `stderr: ${result.lines.join(' | ')}`;
      expect(result.code, said).not.toBe(0);
      expect(result.code, said).not.toBeNull();
      expect(result.lines, said).toHaveLength(1);
      expect(result.lines[0]).toMatch(/^haishin: /);
      expect(result.lines[0]).toMatch(line);
      expect(result.lines[0]).not.toContain('s3cret');
      expect(result.stdout).not.toContain('listening');
    },
  );

  it(
    'the same environment without the fault starts and says how to make an enrollment link; a second serve on the same SQLite file refuses to start, and starts once the first has been killed with -9',
    { timeout: 90_000 },
    async () => {
      const proc = new HaishinProcess(['serve'], env);
      try {
        await proc.waitForLine(/^root group \S+: devices enroll with an enrollment link/);
        const second = await serveWith({ HAISHIN_LISTEN: `127.0.0.1:${await freePort()}` });
        const said = `stderr: ${second.lines.join(' | ')}`;
        expect(second.code, said).not.toBe(0);
        expect(second.code, said).not.toBeNull();
        expect(second.lines, said).toHaveLength(1);
        expect(second.lines[0]).toMatch(
          /^haishin: HAISHIN_DB=sqlite:\S+haishin\.db: another haishin process has this SQLite database open; .*PostgreSQL/,
        );
      } finally {
        await proc.kill('SIGKILL');
      }
      // The operating system released the lock with the process: no stale lock after kill -9.
      const again = new HaishinProcess(['serve'], env);
      try {
        await again.waitForLine(/^root group \S+: devices enroll with an enrollment link/);
      } finally {
        await again.kill();
      }
    },
  );
});

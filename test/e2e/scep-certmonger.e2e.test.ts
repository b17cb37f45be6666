// haishin's SCEP service (issue 17 item 2, decision 0024) tested with a client nobody here wrote:
// Debian's certmonger. `haishin serve` (HAISHIN_DEVICE_IDENTITY=scep) and the fakes run as their own
// processes; certmonger's `scep-submit` asks GetCACaps and GetCACert, and the certmonger daemon — on
// a private D-Bus session bus, with its state in a temporary directory — builds the PKCSReq for an
// openssl-made key with the profile's challenge and hands it to scep-submit: a certificate of the
// device CA comes back; a wrong challenge is refused. `scep-submit -p` also takes a PKCSReq around
// an openssl-made CSR and checks the CertRep's signature itself; openssl opens the envelope.
import { execFile, execFileSync } from 'node:child_process';
import { X509Certificate, createPrivateKey, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../src/cli/net.ts';
import { toPem } from '../../src/mdm/identity/der.ts';
import { parsePlistDict } from '../../src/mdm/plist.ts';
import type { PlistDict } from '../../src/mdm/plist.ts';
import { certsOf, pkcsReq } from '../../src/mdm/scep/pkimessage.ts';
import { selfSignedCertificate } from '../../src/mdm/identity/ca.ts';
import { pemToDer } from '../../src/mdm/identity/x509.ts';
import { startFakesProcess, startServe } from './support.ts';
import type { HaishinProcess } from './support.ts';

const run = promisify(execFile);
const SCEP_SUBMIT = ['/usr/lib/certmonger/scep-submit', '/usr/libexec/certmonger/scep-submit'].find((p) =>
  existsSync(p),
);
const has = (cmd: string) => {
  try {
    execFileSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
};
const DAEMON = has('certmonger') && has('getcert') && has('dbus-run-session') && has('openssl');
if (!SCEP_SUBMIT)
  console.warn(
    'scep-certmonger.e2e: skipped — certmonger is not installed (apt-get install --no-install-recommends certmonger)',
  );

describe.skipIf(!SCEP_SUBMIT)(
  'the SCEP service with certmonger (haishin serve, HAISHIN_DEVICE_IDENTITY=scep)',
  () => {
    const dir = mkdtempSync(join(tmpdir(), 'haishin-scep-cm-'));
    let fakes: HaishinProcess | null = null;
    let serve: HaishinProcess | null = null;
    let baseUrl: string;
    let enrollUrl: string;
    let caPem: string;

    beforeAll(async () => {
      const started = await startFakesProcess(join(dir, 'apple'));
      fakes = started.proc;
      const port = await freePort();
      baseUrl = `http://127.0.0.1:${port}`;
      const served = await startServe({
        ...started.info.env,
        HAISHIN_DB: `sqlite:${join(dir, 'haishin.db')}`,
        HAISHIN_DATA_DIR: join(dir, 'data'),
        HAISHIN_LISTEN: `127.0.0.1:${port}`,
        HAISHIN_PUBLIC_URL: baseUrl,
        HAISHIN_ADMIN_TOKEN: 'scep-cm-admin-token-0123456789',
        HAISHIN_LOG_LEVEL: 'warn',
        HAISHIN_DEVICE_IDENTITY: 'scep',
      });
      serve = served.proc;
      enrollUrl = served.enrollUrl;
    }, 120_000);

    afterAll(async () => {
      await serve?.kill();
      await fakes?.kill();
      rmSync(dir, { recursive: true, force: true });
    });

    const scepUrl = () => `${baseUrl}/scep`;

    /** A fresh enrollment profile's SCEP payload content (each download makes a new challenge). */
    async function challenge(): Promise<string> {
      const res = await fetch(enrollUrl);
      expect(res.status).toBe(200);
      const payloads = parsePlistDict(await res.text()).PayloadContent as PlistDict[];
      const scep = payloads.find((p) => p.PayloadType === 'com.apple.security.scep');
      return String((scep!.PayloadContent as PlistDict).Challenge);
    }

    it('scep-submit reads GetCACaps and GetCACert: the service certificate and the device CA', async () => {
      const caps = await run(SCEP_SUBMIT!, ['-u', scepUrl(), '-c']);
      expect(caps.stdout.split('\n')).toEqual(
        expect.arrayContaining(['AES', 'POSTPKIOperation', 'SHA-256', 'SCEPStandard']),
      );
      const certs = await run(SCEP_SUBMIT!, ['-u', scepUrl(), '-C']);
      const pems = certs.stdout.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
      expect(pems.length).toBeGreaterThanOrEqual(2);
      // "the RA certificate, the CA certificate": the second one is the CA that issues device identities.
      const [ra, ca] = pems.map((p) => new X509Certificate(p));
      expect(ca!.ca).toBe(true);
      expect(ca!.subject).toBe(ca!.issuer);
      expect(ra!.checkIssued(ca!)).toBe(true);
      caPem = pems[1]!;
      writeFileSync(join(dir, 'ra.pem'), `${pems[0]!}\n`);
      writeFileSync(join(dir, 'ca.pem'), `${caPem}\n`);
      // The CA the service names is haishin's device CA, as GetCACert over plain HTTP returns it.
      const raw = await fetch(`${scepUrl()}?operation=GetCACert`);
      const fromHttp = certsOf(Buffer.from(await raw.arrayBuffer())).map((d) => new X509Certificate(d));
      expect(fromHttp[1]!.fingerprint256).toBe(ca!.fingerprint256);
    });

    it('scep-submit -p: a PKCSReq around an openssl CSR is answered with a CertRep scep-submit verifies', async () => {
      const work = join(dir, 'p');
      mkdirSync(work, { recursive: true });
      const secret = await challenge();
      execFileSync('openssl', ['genrsa', '-out', join(work, 'key.pem'), '2048'], { stdio: 'ignore' });
      writeFileSync(
        join(work, 'req.cnf'),
        `[req]\nprompt = no\ndistinguished_name = dn\nattributes = attrs\n[dn]\nCN = openssl csr\n[attrs]\nchallengePassword = ${secret}\n`,
      );
      execFileSync('openssl', [
        'req',
        '-new',
        '-key',
        join(work, 'key.pem'),
        '-config',
        join(work, 'req.cnf'),
        '-outform',
        'DER',
        '-out',
        join(work, 'csr.der'),
      ]);
      // The pkiMessage wrapping (RFC 8894 §3.3.1) is not something openssl's CLI writes: haishin's client code does.
      const key = createPrivateKey(readFileSync(join(work, 'key.pem')));
      const message = pkcsReq({
        csrDer: readFileSync(join(work, 'csr.der')),
        caCertDer: pemToDer(readFileSync(join(dir, 'ra.pem'), 'utf8')),
        signer: {
          certDer: pemToDer(selfSignedCertificate({ key, commonName: 'openssl csr', now: new Date() })),
          key,
        },
        transactionId: randomBytes(16).toString('hex'),
        senderNonce: randomBytes(16),
      });
      writeFileSync(join(work, 'req.p7'), toPem('PKCS7', message));
      const args = [
        '-u',
        scepUrl(),
        '-r',
        join(dir, 'ra.pem'),
        '-N',
        join(dir, 'ca.pem'),
        '-p',
        join(work, 'req.p7'),
      ];
      const answer = await run(SCEP_SUBMIT!, args);
      // Exit 0: issued; stdout is the pkcsPKIEnvelope, which only our key opens.
      writeFileSync(join(work, 'envelope.pem'), answer.stdout);
      execFileSync('openssl', [
        'cms',
        '-decrypt',
        '-inform',
        'PEM',
        '-in',
        join(work, 'envelope.pem'),
        '-inkey',
        join(work, 'key.pem'),
        '-binary',
        '-out',
        join(work, 'issued.p7b'),
      ]);
      const printed = execFileSync(
        'openssl',
        ['pkcs7', '-inform', 'DER', '-in', join(work, 'issued.p7b'), '-print_certs'],
        {
          encoding: 'utf8',
        },
      );
      const cert = new X509Certificate(
        printed.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/)![0],
      );
      expect(cert.subject).toBe('CN=openssl csr');
      expect(cert.checkIssued(new X509Certificate(caPem))).toBe(true);
      expect(cert.verify(new X509Certificate(caPem).publicKey)).toBe(true);

      // The same challenge again (a new transaction): refused, exit 2 "the CA rejected the request".
      const again = pkcsReq({
        csrDer: readFileSync(join(work, 'csr.der')),
        caCertDer: pemToDer(readFileSync(join(dir, 'ra.pem'), 'utf8')),
        signer: {
          certDer: pemToDer(selfSignedCertificate({ key, commonName: 'openssl csr', now: new Date() })),
          key,
        },
        transactionId: randomBytes(16).toString('hex'),
        senderNonce: randomBytes(16),
      });
      writeFileSync(join(work, 'again.p7'), toPem('PKCS7', again));
      const refused = await run(SCEP_SUBMIT!, [...args.slice(0, -1), join(work, 'again.p7')]).then(
        () => 0,
        (err: { code?: number }) => err.code,
      );
      expect(refused).toBe(2);
    });

    describe.skipIf(!DAEMON)('the certmonger daemon (getcert request, on a private session bus)', () => {
      /** One certmonger run: add the CA, request with `secret`, wait, list. State stays in `work`. */
      async function certmonger(work: string, secret: string): Promise<{ status: string; log: string }> {
        const state = join(work, 'state');
        for (const sub of ['cas', 'requests', 'local', 'tmp', 'home'])
          mkdirSync(join(state, sub), { recursive: true });
        execFileSync('openssl', ['genrsa', '-out', join(work, 'key.pem'), '2048'], { stdio: 'ignore' });
        writeFileSync(
          join(work, 'run.sh'),
          [
            `getcert add-scep-ca -s -c haishin -u '${scepUrl()}'`,
            // add-scep-ca fetches the CA certificates in the background: wait for them (bounded).
            'for i in $(seq 1 50); do getcert list-cas -s -c haishin | grep -q "SCEP CA certificate thumbprint" && break; sleep 0.2; done',
            `getcert request -s -c haishin -k '${join(work, 'key.pem')}' -f '${join(work, 'cert.pem')}' -N 'CN=certmonger test' -L '${secret}' -w -v`,
            'getcert list -s',
          ].join('\n'),
        );
        const env = {
          PATH: process.env.PATH ?? '/usr/bin:/bin',
          HOME: join(state, 'home'),
          CERTMONGER_CAS_DIR: join(state, 'cas'),
          CERTMONGER_REQUESTS_DIR: join(state, 'requests'),
          CERTMONGER_CONFIG_DIR: state,
          CERTMONGER_LOCAL_CA_DIR: join(state, 'local'),
          CERTMONGER_TMPDIR: join(state, 'tmp'),
          CERTMONGER_SYSTEM_LOCK_FILE: join(state, 'lock'),
        };
        const result = await run(
          'timeout',
          [
            '90',
            'dbus-run-session',
            '--',
            'certmonger',
            '-s',
            '-n',
            '-B',
            '-c',
            `sh ${join(work, 'run.sh')}`,
          ],
          { env, maxBuffer: 10 * 1024 * 1024 },
        ).catch((err: { stdout?: string; stderr?: string }) => ({
          stdout: err.stdout ?? '',
          stderr: err.stderr ?? '',
        }));
        const log = `${result.stdout}\n${result.stderr}`;
        return { status: /status: (\S+)/.exec(log)?.[1] ?? 'unknown', log };
      }

      it(
        'enrolls an openssl key with the profile’s challenge: a certificate of the device CA',
        { timeout: 120_000 },
        async () => {
          const work = join(dir, 'cm-ok');
          const { status, log } = await certmonger(work, await challenge());
          expect(status, log).toBe('MONITORING');
          const cert = new X509Certificate(readFileSync(join(work, 'cert.pem')));
          expect(cert.subject).toBe('CN=certmonger test');
          expect(cert.checkIssued(new X509Certificate(caPem))).toBe(true);
          expect(cert.verify(new X509Certificate(caPem).publicKey)).toBe(true);
          // The key certmonger used is the one openssl made: it never left the client.
          const key = createPrivateKey(readFileSync(join(work, 'key.pem')));
          expect(cert.checkPrivateKey(key)).toBe(true);
        },
      );

      it('refuses a wrong challenge', { timeout: 120_000 }, async () => {
        const work = join(dir, 'cm-wrong');
        const { status, log } = await certmonger(work, 'not-the-challenge');
        expect(status, log).toBe('CA_REJECTED');
        expect(existsSync(join(work, 'cert.pem'))).toBe(false);
      });
    });
  },
);

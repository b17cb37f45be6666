// `haishin ca rotate` as an administrator runs it (issue 17, item 5, decision 0023): serve stopped,
// the command run with serve's environment, serve started again. The iPad enrolled under the old
// CA keeps checking in; a new enrollment's identity comes from the new CA; `haishin ca ls` lists both.
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { pkcs12ToIdentity } from '../../src/mdm/identity/ca.ts';
import { parsePlistDict } from '../../src/mdm/plist.ts';
import type { PlistDict } from '../../src/mdm/plist.ts';
import { SimDevice } from '../../src/sim/device/device.ts';
import { adminApi, runHaishin, startFakesProcess, startServe, testServeEnv } from './support.ts';
import type { HaishinProcess } from './support.ts';

const ADMIN = 'e2e-admin-token-ca-rotate-0123456789';

function issuerOf(profileText: string): string {
  const profile = parsePlistDict(profileText);
  const payloads = profile.PayloadContent as PlistDict[];
  const mdm = payloads.find((p) => p.PayloadType === 'com.apple.mdm')!;
  const p12 = payloads.find((p) => p.PayloadUUID === mdm.IdentityCertificateUUID)!;
  const identity = pkcs12ToIdentity(p12.PayloadContent as Uint8Array, String(p12.Password));
  return new X509Certificate(identity.certPem).issuer;
}

describe('haishin ca rotate', () => {
  const dir = mkdtempSync(join(tmpdir(), 'haishin-e2e-ca-'));
  let fakes: HaishinProcess | null = null;
  let serve: HaishinProcess | null = null;
  afterAll(async () => {
    await serve?.kill();
    await fakes?.kill();
    rmSync(dir, { recursive: true, force: true });
  });

  it(
    'a new CA issues, the old one still verifies its iPads, ca ls shows both',
    { timeout: 180_000 },
    async () => {
      const started = await startFakesProcess(join(dir, 'apple'));
      fakes = started.proc;
      const { env, baseUrl } = await testServeEnv({ fakesEnv: started.info.env, dir, admin: ADMIN });
      let run = await startServe(env);
      serve = run.proc;
      const ipad = new SimDevice();
      await ipad.enroll(run.enrollUrl);
      // One process per SQLite file: not while serve runs, it says why; the CA is rotated with it stopped.
      const refused = await runHaishin(['ca', 'rotate'], env);
      expect(refused.code).toBe(1);
      expect(refused.stderr.join('\n')).toMatch(/HAISHIN_DB/);
      await serve.kill();
      serve = null;
      const before = await runHaishin(['ca', 'ls'], env);
      expect(before.stdout).toHaveLength(1);

      const rotated = await runHaishin(['ca', 'rotate'], env);
      expect(rotated.stderr).toEqual([]);
      expect(rotated.code).toBe(0);
      expect(rotated.stdout[0]).toMatch(/^device CA rotated/);
      expect(rotated.stdout.filter((l) => /^issuing /.test(l))).toHaveLength(1);
      expect(rotated.stdout.filter((l) => /^verifying /.test(l))).toHaveLength(1);
      const listed = await runHaishin(['ca', 'ls'], env);
      expect(listed.stdout.map((l) => l.split(/\s+/)[0])).toEqual(['issuing', 'verifying']);
      // The CA that issued before now only verifies.
      expect(listed.stdout[1]!.replace(/^verifying\s+/, '')).toBe(
        before.stdout[0]!.replace(/^issuing\s+/, ''),
      );

      run = await startServe(env);
      serve = run.proc;
      expect(await ipad.tokenUpdate()).toBe(200);
      expect((await ipad.connect()).every((s) => s.status === 200)).toBe(true);
      const response = await fetch(run.enrollUrl);
      expect(response.status).toBe(200);
      expect(issuerOf(await response.text())).toMatch(/haishin device CA \d{4}-\d{2}-\d{2}/);
      const status = await adminApi(baseUrl, ADMIN)<{ deviceCa: { verifying: number } }>('GET', '/status');
      expect(status.body.deviceCa.verifying).toBe(2);
    },
  );
});

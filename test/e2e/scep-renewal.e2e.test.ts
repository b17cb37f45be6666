// Identity renewal through SCEP as it ships (issue 17, decisions 0023 and 0024): `haishin serve`
// configured only by environment variables — HAISHIN_DEVICE_IDENTITY=scep, identities valid 45 s,
// renewed 30 s before expiry by a pass every 3 s — and the fakes as processes; simulated iPads over
// HTTP enroll through SCEP, receive the renewal's InstallProfile with a SCEP payload, obtain their
// new identity from /scep with the device-bound challenge, and keep checking in past the first
// identity's expiry.
import Database from 'better-sqlite3';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../src/cli/net.ts';
import { SimDevice } from '../../src/sim/device/device.ts';
import { eventually, startFakesProcess, startServe } from './support.ts';
import type { HaishinProcess } from './support.ts';

const VALIDITY_S = 45;

describe('identity renewal through SCEP (haishin serve, HAISHIN_DEVICE_IDENTITY=scep)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'haishin-scep-renewal-'));
  const dbFile = join(dir, 'haishin.db');
  let fakes: HaishinProcess | null = null;
  let serve: HaishinProcess | null = null;
  const devices = [new SimDevice(), new SimDevice()];

  beforeAll(async () => {
    const started = await startFakesProcess(join(dir, 'apple'));
    fakes = started.proc;
    const port = await freePort();
    const baseUrl = `http://127.0.0.1:${port}`;
    const served = await startServe({
      ...started.info.env,
      HAISHIN_DB: `sqlite:${dbFile}`,
      HAISHIN_DATA_DIR: join(dir, 'data'),
      HAISHIN_LISTEN: `127.0.0.1:${port}`,
      HAISHIN_PUBLIC_URL: baseUrl,
      HAISHIN_ADMIN_TOKEN: 'scep-renewal-admin-token-0123456789',
      HAISHIN_LOG_LEVEL: 'warn',
      HAISHIN_DEVICE_IDENTITY: 'scep',
      HAISHIN_DEVICE_KEY_BITS: '1024',
      HAISHIN_DEVICE_IDENTITY_VALIDITY: `${VALIDITY_S}s`,
      HAISHIN_IDENTITY_RENEW_BEFORE: '30s',
      HAISHIN_IDENTITY_RENEW_EVERY: '3s',
    });
    serve = served.proc;
    for (const d of devices) await d.enroll(served.enrollUrl);
  }, 120_000);

  afterAll(async () => {
    await serve?.kill();
    await fakes?.kill();
    rmSync(dir, { recursive: true, force: true });
  });

  it(
    'the iPads renew through SCEP and keep checking in past their first identity’s expiry',
    { timeout: 150_000 },
    async () => {
      const firstExpiry = Math.max(...devices.map((d) => d.identityNotAfter!.getTime()));
      // The iPads poll (no push needed): the renewal's InstallProfile is handed out at the next poll.
      await eventually(
        'every iPad renewed its identity through SCEP',
        async () => {
          for (const d of devices) if (d.identityRenewals === 0) await d.connect();
          return devices.every((d) => d.identityRenewals >= 1) ? true : undefined;
        },
        60_000,
        1_000,
      );
      for (const d of devices) expect(d.identityNotAfter!.getTime()).toBeGreaterThan(firstExpiry);
      await eventually(
        'the first identities expired',
        async () => (Date.now() > firstExpiry + 2_000 ? true : undefined),
        60_000,
      );
      for (const d of devices) {
        const session = await d.connect();
        expect(session.map((s) => s.status).every((s) => s === 200)).toBe(true);
      }
      // Each renewed identity came from a challenge bound to its own device; no PKCS#12 identity was made.
      const db = new Database(dbFile, { readonly: true, fileMustExist: true });
      try {
        const rows = db
          .prepare(
            `select d.udid, d.cert_fingerprint, c.device_id from devices d
             left join scep_challenges c on c.cert_fingerprint = d.cert_fingerprint`,
          )
          .all() as { udid: string; cert_fingerprint: string; device_id: string | null }[];
        expect(rows).toHaveLength(devices.length);
        for (const row of rows) expect(row.device_id, row.udid).not.toBeNull();
        const unbound = db
          .prepare(
            'select count(*) as n from identities i where not exists (select 1 from scep_challenges c where c.cert_fingerprint = i.fingerprint)',
          )
          .get() as { n: number };
        expect(unbound.n).toBe(0);
      } finally {
        db.close();
      }
    },
  );
});

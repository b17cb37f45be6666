// One-time SCEP challenges and the SCEP service certificate (decision 0024) on SQLite and PostgreSQL:
// stored hashed, used once even by two racing requests (two processes on PostgreSQL), a repeated
// transaction answered with the same certificate, expiry, the purge; one service certificate per
// CA shared by the processes of one database.
import { X509Certificate } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { DIALECTS, twoStores } from './support/two-stores.ts';
import { createDeviceCa } from '../src/mdm/identity/ca.ts';
import { loadOrCreateScepRa } from '../src/mdm/scep/ra.ts';

const T0 = new Date('2026-12-07T09:00:00Z');
const at = (ms: number) => new Date(T0.getTime() + ms);
const sealer = { seal: (s: string) => `sealed:${s}`, open: (s: string) => s.replace(/^sealed:/, '') };

describe.each(DIALECTS)('SCEP challenges on $name', ({ name, enabled }) => {
  /** Two stores on the same database: two processes, as far as the database can tell. */
  const stores = twoStores(name, enabled, T0);

  const request = (transactionId: string) => ({ transactionId, publicKeySha256: `key-of-${transactionId}` });

  it.skipIf(!enabled)('a challenge is stored hashed and admits one transaction, once', async () => {
    const challenge = await stores.one.scepChallenges.issue(
      { groupId: 'g1', deviceId: null },
      at(0),
      at(60_000),
    );
    expect(challenge).toMatch(/^[0-9a-f]{32}$/);
    const rows = await stores.one.db.kysely.selectFrom('scep_challenges').selectAll().execute();
    expect(JSON.stringify(rows)).not.toContain(challenge);

    // Two requests with the same challenge at once (two processes): exactly one wins.
    const [a, b] = await Promise.all([
      stores.one.scepChallenges.use(challenge, request('t-a'), at(1_000)),
      stores.two.scepChallenges.use(challenge, request('t-b'), at(1_000)),
    ]);
    const winners = [a, b].filter((r) => r.ok === true);
    expect(winners).toHaveLength(1);
    expect(winners[0]).toMatchObject({ ok: true, binding: { groupId: 'g1', deviceId: null } });
    expect([a, b].find((r) => r.ok !== true)).toEqual({ ok: false, reason: 'used' });
    const winner = a.ok === true ? a : b;
    if (winner.ok !== true) throw new Error('no winner');
    await stores.one.scepChallenges.issued(winner.id, { fingerprint: 'ab'.repeat(32), certPem: 'PEM' });

    // The winning transaction asking again (its answer was lost) gets the same certificate.
    const again = await stores.two.scepChallenges.use(
      challenge,
      request(a.ok === true ? 't-a' : 't-b'),
      at(2_000),
    );
    expect(again).toEqual({ ok: 'repeat', certPem: 'PEM' });
    expect(await stores.one.scepChallenges.use('0'.repeat(32), request('t-c'), at(2_000))).toEqual({
      ok: false,
      reason: 'unknown',
    });
  });

  it.skipIf(!enabled)('an expired challenge is refused, and purged after the retention', async () => {
    const challenge = await stores.one.scepChallenges.issue(
      { groupId: 'g2', deviceId: 'd2' },
      at(0),
      at(60_000),
    );
    expect(await stores.one.scepChallenges.use(challenge, request('t-late'), at(60_000))).toEqual({
      ok: false,
      reason: 'expired',
    });
    const before = await stores.one.db.kysely.selectFrom('scep_challenges').select('id').execute();
    expect(await stores.one.scepChallenges.purgeExpired(at(60_001))).toBeGreaterThanOrEqual(2);
    const after = await stores.one.db.kysely.selectFrom('scep_challenges').select('id').execute();
    expect(after.length).toBe(before.length - 2);
  });

  it.skipIf(!enabled)('one SCEP service certificate per CA, the same for every process', async () => {
    const ca = createDeviceCa({ now: T0 });
    const [ra1, ra2] = await Promise.all([
      loadOrCreateScepRa(stores.one, sealer, ca, T0),
      loadOrCreateScepRa(stores.two, sealer, ca, T0),
    ]);
    expect(ra1.certPem).toBe(ra2.certPem);
    expect(ra1.keyPem).toBe(ra2.keyPem);
    const cert = new X509Certificate(ra1.certPem);
    expect(cert.checkIssued(new X509Certificate(ca.certPem))).toBe(true);
    expect(cert.ca).toBe(false);
    expect(cert.checkPrivateKey((await import('node:crypto')).createPrivateKey(ra1.keyPem))).toBe(true);
    // Another CA (after a rotation) gets its own.
    const other = await loadOrCreateScepRa(stores.one, sealer, createDeviceCa({ now: T0 }), T0);
    expect(other.certPem).not.toBe(ra1.certPem);
  });
});

// One-time SCEP challenges and the SCEP service certificate (decision 0024) on SQLite and PostgreSQL:
// stored hashed, used once even by two racing requests (two processes on PostgreSQL), a repeated
// transaction answered with the same certificate, expiry, the purge; one service certificate per
// CA shared by the processes of one database.
import { X509Certificate } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDeviceCa } from '../src/mdm/identity/ca.ts';
import { loadOrCreateScepRa } from '../src/mdm/scep/ra.ts';
import { Store } from '../src/store/store.ts';
import { postgresAvailable, startPostgres } from './support/pg.ts';
import type { ThrowawayPostgres } from './support/pg.ts';

const T0 = new Date('2026-12-07T09:00:00Z');
const at = (ms: number) => new Date(T0.getTime() + ms);
const sealer = { seal: (s: string) => `sealed:${s}`, open: (s: string) => s.replace(/^sealed:/, '') };

const dialects = [
  { name: 'sqlite', enabled: true },
  { name: 'postgres', enabled: postgresAvailable },
] as const;

describe.each(dialects)('SCEP challenges on $name', ({ name, enabled }) => {
  let pg: ThrowawayPostgres | null = null;
  let one: Store;
  let two: Store;

  beforeAll(async () => {
    if (!enabled) return;
    if (name === 'postgres') {
      pg = await startPostgres();
      one = await Store.open(pg.url, T0);
      two = await Store.open(pg.url, T0);
    } else {
      one = await Store.open('sqlite::memory:', T0);
      two = one;
    }
  }, 60_000);
  afterAll(async () => {
    if (two !== one) await two?.close();
    await one?.close();
    pg?.stop();
  });

  const request = (transactionId: string) => ({ transactionId, publicKeySha256: `key-of-${transactionId}` });

  it.skipIf(!enabled)('a challenge is stored hashed and admits one transaction, once', async () => {
    const challenge = await one.scepChallenges.issue({ groupId: 'g1', deviceId: null }, at(0), at(60_000));
    expect(challenge).toMatch(/^[0-9a-f]{32}$/);
    const rows = await one.db.kysely.selectFrom('scep_challenges').selectAll().execute();
    expect(JSON.stringify(rows)).not.toContain(challenge);

    // Two requests with the same challenge at once (two processes): exactly one wins.
    const [a, b] = await Promise.all([
      one.scepChallenges.use(challenge, request('t-a'), at(1_000)),
      two.scepChallenges.use(challenge, request('t-b'), at(1_000)),
    ]);
    const winners = [a, b].filter((r) => r.ok === true);
    expect(winners).toHaveLength(1);
    expect(winners[0]).toMatchObject({ ok: true, binding: { groupId: 'g1', deviceId: null } });
    expect([a, b].find((r) => r.ok !== true)).toEqual({ ok: false, reason: 'used' });
    const winner = a.ok === true ? a : b;
    if (winner.ok !== true) throw new Error('no winner');
    await one.scepChallenges.issued(winner.id, { fingerprint: 'ab'.repeat(32), certPem: 'PEM' });

    // The winning transaction asking again (its answer was lost) gets the same certificate.
    const again = await two.scepChallenges.use(challenge, request(a.ok === true ? 't-a' : 't-b'), at(2_000));
    expect(again).toEqual({ ok: 'repeat', certPem: 'PEM' });
    expect(await one.scepChallenges.use('0'.repeat(32), request('t-c'), at(2_000))).toEqual({
      ok: false,
      reason: 'unknown',
    });
  });

  it.skipIf(!enabled)('an expired challenge is refused, and purged after the retention', async () => {
    const challenge = await one.scepChallenges.issue({ groupId: 'g2', deviceId: 'd2' }, at(0), at(60_000));
    expect(await one.scepChallenges.use(challenge, request('t-late'), at(60_000))).toEqual({
      ok: false,
      reason: 'expired',
    });
    const before = await one.db.kysely.selectFrom('scep_challenges').select('id').execute();
    expect(await one.scepChallenges.purgeExpired(at(60_001))).toBeGreaterThanOrEqual(2);
    const after = await one.db.kysely.selectFrom('scep_challenges').select('id').execute();
    expect(after.length).toBe(before.length - 2);
  });

  it.skipIf(!enabled)('one SCEP service certificate per CA, the same for every process', async () => {
    const ca = createDeviceCa({ now: T0 });
    const [ra1, ra2] = await Promise.all([
      loadOrCreateScepRa(one, sealer, ca, T0),
      loadOrCreateScepRa(two, sealer, ca, T0),
    ]);
    expect(ra1.certPem).toBe(ra2.certPem);
    expect(ra1.keyPem).toBe(ra2.keyPem);
    const cert = new X509Certificate(ra1.certPem);
    expect(cert.checkIssued(new X509Certificate(ca.certPem))).toBe(true);
    expect(cert.ca).toBe(false);
    expect(cert.checkPrivateKey((await import('node:crypto')).createPrivateKey(ra1.keyPem))).toBe(true);
    // Another CA (after a rotation) gets its own.
    const other = await loadOrCreateScepRa(one, sealer, createDeviceCa({ now: T0 }), T0);
    expect(other.certPem).not.toBe(ra1.certPem);
  });
});

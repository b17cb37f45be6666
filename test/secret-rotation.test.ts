// Issue 18, item 7 (decision 0027): every secret at rest re-sealed with a new key in one
// transaction — device CA keys (the first one and a rotated one), the SCEP service's key, the
// uploaded push certificate's key, VPP sTokens; a key that does not open a secret changes nothing.
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadDeviceCaSet, loadOrCreateDeviceCa, rotateDeviceCa } from '../src/mdm/device-ca.ts';
import { loadOrCreateScepRa } from '../src/mdm/scep/ra.ts';
import { looksSealed, resealSecrets, SecretKeyMismatch } from '../src/store/secret-rotation.ts';
import { SecretBox } from '../src/store/secretbox.ts';
import { Store } from '../src/store/store.ts';
import { postgresAvailable, startPostgres } from './support/pg.ts';
import type { ThrowawayPostgres } from './support/pg.ts';

const T0 = new Date('2026-12-07T09:00:00Z');
const OLD = new SecretBox('the-old-secret-key-0123456789');
const NEW = new SecretBox('the-new-secret-key-9876543210');
const dialects = [
  { name: 'sqlite', enabled: true },
  { name: 'postgres', enabled: postgresAvailable },
] as const;

async function allSealed(store: Store): Promise<string[]> {
  const settings = await store.db.kysely.selectFrom('settings').select('value').execute();
  const tokens = await store.db.kysely.selectFrom('vpp_tokens').select('sealed_stoken').execute();
  const extra = await sql<{
    v: string;
  }>`select sealed_note as v from extra_secrets where sealed_note is not null`.execute(store.db.kysely);
  const values: string[] = extra.rows.map((r) => r.v);
  for (const { value } of settings) {
    if (looksSealed(value)) values.push(value);
    else if (value.startsWith('{')) {
      const o = JSON.parse(value) as Record<string, unknown>;
      for (const [k, v] of Object.entries(o))
        if (k.startsWith('sealed') && typeof v === 'string') values.push(v);
    }
  }
  return [...values, ...tokens.map((t) => t.sealed_stoken)];
}

describe.each(dialects)('haishin secrets rotate on $name', ({ name, enabled }) => {
  let pg: ThrowawayPostgres | null = null;
  let store: Store;

  beforeAll(async () => {
    if (!enabled) return;
    if (name === 'postgres') pg = await startPostgres();
    store = await Store.open(pg?.url ?? 'sqlite::memory:', T0);
    // The first CA (device_ca.key), then a rotated one (device_ca.current), its SCEP service key,
    // an uploaded push certificate's key and two VPP tokens.
    const first = await loadOrCreateDeviceCa(store, OLD, T0);
    await rotateDeviceCa(store, OLD, T0, { validYears: 1 });
    const set = await loadDeviceCaSet(store, OLD, T0);
    expect(set.issuing.keyPem).not.toBe(first.keyPem);
    await loadOrCreateScepRa(store, OLD, set.issuing, T0);
    await store.putSetting('push_certificate.key', OLD.seal('-----BEGIN PRIVATE KEY-----push'), T0);
    const root = (await store.rootGroup())!;
    for (const sToken of ['stoken-one', 'stoken-two'])
      await store.vpp.createToken(
        {
          groupId: root.id,
          orgName: 'School',
          locationName: null,
          locationId: null,
          expiresAt: new Date('2027-12-07T00:00:00Z'),
          sealedSToken: OLD.seal(sToken),
          claimState: 'ours',
          notificationAuthToken: `auth-${sToken}`,
        },
        T0,
      );
    // A secret added later in a column named sealed_* is rotated without touching the command.
    await sql`create table extra_secrets (id text primary key, sealed_note text)`.execute(store.db.kysely);
    await sql`insert into extra_secrets (id, sealed_note) values ('a', ${OLD.seal('note')}), ('b', null)`.execute(
      store.db.kysely,
    );
    await store.committed();
  }, 120_000);
  afterAll(async () => {
    await store?.close();
    pg?.stop();
  });

  it.skipIf(!enabled)('a key that does not open a secret is refused and changes nothing', async () => {
    const before = await allSealed(store);
    const wrong = new SecretBox('not-the-key-at-all-000000000');
    await expect(resealSecrets(store.db.kysely, wrong, NEW)).rejects.toBeInstanceOf(SecretKeyMismatch);
    await expect(resealSecrets(store.db.kysely, wrong, NEW)).rejects.toThrow(/settings:device_ca\.current/);
    await store.committed();
    expect(await allSealed(store)).toEqual(before);
  });

  it.skipIf(!enabled)('re-seals every secret with the new key, counted per place', async () => {
    const caBefore = await loadDeviceCaSet(store, OLD, T0);
    const result = await resealSecrets(store.db.kysely, OLD, NEW);
    await store.committed();
    const ra = result.places.find((p) => p.place.startsWith('settings:scep.ra.'));
    expect(result.places.filter((p) => p !== ra)).toEqual([
      { place: 'settings:device_ca.current', count: 1 },
      { place: 'settings:device_ca.key', count: 1 },
      { place: 'settings:push_certificate.key', count: 1 },
      { place: 'extra_secrets.sealed_note', count: 1 },
      { place: 'vpp_tokens.sealed_stoken', count: 2 },
    ]);
    expect(ra?.count).toBe(1);
    expect(result.total).toBe(7);
    const sealed = await allSealed(store);
    expect(sealed).toHaveLength(7);
    for (const v of sealed) {
      expect(() => OLD.open(v)).toThrow(/cannot be decrypted/);
      expect(() => NEW.open(v)).not.toThrow();
    }
    // The same CA, now opened with the new key; the tokens' plaintext kept.
    const caAfter = await loadDeviceCaSet(store, NEW, T0);
    expect(caAfter.issuing).toEqual(caBefore.issuing);
    expect(caAfter.verifying).toEqual(caBefore.verifying);
    const tokens = await store.db.kysely.selectFrom('vpp_tokens').select('sealed_stoken').execute();
    expect(tokens.map((t) => NEW.open(t.sealed_stoken)).sort()).toEqual(['stoken-one', 'stoken-two']);
    expect(NEW.open((await store.getSetting('push_certificate.key'))!)).toBe(
      '-----BEGIN PRIVATE KEY-----push',
    );
  });

  it.skipIf(!enabled)('a failure half-way rolls back every value already re-sealed', async () => {
    const before = await allSealed(store);
    // The new key's check after the writes (the read-back inside the transaction) fails on its
    // first value: every write already made must be undone.
    let opened = 0;
    const failsAfterWrites = {
      seal: (p: string) => OLD.seal(p),
      open: (s: string) => {
        if (++opened > before.length) throw new Error('read-back failed');
        return OLD.open(s);
      },
    };
    await expect(resealSecrets(store.db.kysely, NEW, failsAfterWrites)).rejects.toThrow(/read-back failed/);
    expect(opened).toBe(before.length + 1);
    // A key whose seal does not round-trip is caught before anything is written too.
    const lying = { seal: (p: string) => NEW.seal(`${p}x`), open: (s: string) => NEW.open(s) };
    await expect(resealSecrets(store.db.kysely, NEW, lying)).rejects.toThrow(/did not round-trip/);
    await store.committed();
    expect(await allSealed(store)).toEqual(before);
  });
});

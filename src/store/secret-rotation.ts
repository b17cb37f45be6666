import { sql } from 'kysely';
import type { Kysely } from 'kysely';
import type { Database } from './schema.ts';

/** What `haishin secrets rotate` needs of a {@link SecretBox}: the old key opens, the new one seals. */
export interface SecretKeyBox {
  seal(plaintext: string): string;
  open(sealed: string): string;
}

/** Where a sealed value lives; never the value. `settings:device_ca.key`, `vpp_tokens.sealed_stoken`. */
export type SecretPlace = string;

export interface ResealResult {
  /** Sealed values re-sealed, per place, in a stable order. */
  places: { place: SecretPlace; count: number }[];
  total: number;
}

/** The current key does not open a secret: nothing was changed. */
export class SecretKeyMismatch extends Error {
  readonly place: SecretPlace;
  constructor(place: SecretPlace) {
    super(
      `the current key (HAISHIN_SECRET_KEY) does not open the secret in ${place}: nothing was changed — run with the key serve runs with`,
    );
    this.place = place;
  }
}

// The SecretBox format: v1:<iv>:<tag>:<body>, base64 parts.
const SEALED = /^v1:[A-Za-z0-9+/=]+:[A-Za-z0-9+/=]+:[A-Za-z0-9+/=]*$/;
export const looksSealed = (value: string): boolean => SEALED.test(value);

/**
 * The sealed values of a setting: the whole value (`device_ca.key`, the push certificate's key) or
 * the `sealed*` members of a JSON object (`device_ca.current`, `scep.ra.*`: `{certPem, sealedKey}`).
 * Found by shape, not by a list of keys, so a secret added later is not forgotten.
 */
function settingSecrets(value: string): { kind: 'whole' } | { kind: 'json'; members: string[] } | null {
  if (looksSealed(value)) return { kind: 'whole' };
  if (!value.startsWith('{')) return null;
  let parsed: unknown;
  try {
    parsed = JSON.parse(value);
  } catch {
    return null;
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) return null;
  const members = Object.entries(parsed as Record<string, unknown>)
    .filter(([k, v]) => /^sealed/i.test(k) && typeof v === 'string' && looksSealed(v))
    .map(([k]) => k);
  return members.length > 0 ? { kind: 'json', members } : null;
}

/** Every column named `sealed_*` (the convention of the schema, e.g. `vpp_tokens.sealed_stoken`). */
async function sealedColumns(db: Kysely<Database>): Promise<{ table: string; column: string }[]> {
  const tables = await db.introspection.getTables();
  return tables
    .flatMap((t) => t.columns.map((c) => ({ table: t.name, column: c.name })))
    .filter((c) => c.column.startsWith('sealed_'))
    .sort((a, b) => `${a.table}.${a.column}`.localeCompare(`${b.table}.${b.column}`));
}

/**
 * Re-seals every secret at rest with `next` in one transaction: each value is opened with `current`
 * (the first that does not open throws {@link SecretKeyMismatch} before anything is written),
 * sealed with `next`, checked to open with `next` to the same text, written, and finally every
 * secret is read back and opened with `next` before the transaction commits. All or nothing.
 */
export async function resealSecrets(
  db: Kysely<Database>,
  current: SecretKeyBox,
  next: SecretKeyBox,
): Promise<ResealResult> {
  const columns = await sealedColumns(db);
  const counts = new Map<SecretPlace, number>();
  const count = (place: SecretPlace) => counts.set(place, (counts.get(place) ?? 0) + 1);

  const reseal = (sealed: string, place: SecretPlace): string => {
    let plaintext: string;
    try {
      plaintext = current.open(sealed);
    } catch {
      throw new SecretKeyMismatch(place);
    }
    const resealed = next.seal(plaintext);
    if (next.open(resealed) !== plaintext) throw new Error(`re-sealing ${place} did not round-trip`);
    count(place);
    return resealed;
  };

  await db.transaction().execute(async (tx) => {
    // Read and re-seal everything first: a value the current key does not open stops the run
    // before the first write.
    const settings = await tx.selectFrom('settings').select(['key', 'value']).orderBy('key').execute();
    const settingWrites: { key: string; from: string; to: string }[] = [];
    for (const row of settings) {
      const found = settingSecrets(row.value);
      if (!found) continue;
      const place = `settings:${row.key}`;
      if (found.kind === 'whole') {
        settingWrites.push({ key: row.key, from: row.value, to: reseal(row.value, place) });
      } else {
        const object = JSON.parse(row.value) as Record<string, string>;
        for (const member of found.members) object[member] = reseal(object[member]!, place);
        settingWrites.push({ key: row.key, from: row.value, to: JSON.stringify(object) });
      }
    }
    const columnWrites: { table: string; column: string; from: string; to: string }[] = [];
    for (const { table, column } of columns) {
      const rows = await sql<{
        v: string | null;
      }>`select ${sql.ref(column)} as v from ${sql.table(table)}`.execute(tx);
      for (const { v } of rows.rows) {
        if (v === null || v === '') continue;
        columnWrites.push({ table, column, from: v, to: reseal(v, `${table}.${column}`) });
      }
    }

    for (const w of settingWrites) {
      const done = await tx
        .updateTable('settings')
        .set({ value: w.to })
        .where('key', '=', w.key)
        .where('value', '=', w.from)
        .executeTakeFirst();
      if (Number(done.numUpdatedRows) !== 1) throw new Error(`settings:${w.key} changed during the rotation`);
    }
    for (const w of columnWrites) {
      // A sealed value carries a random IV, so the value itself names its row.
      const done = await sql`update ${sql.table(w.table)} set ${sql.ref(w.column)} = ${w.to} where ${sql.ref(
        w.column,
      )} = ${w.from}`.execute(tx);
      if (Number(done.numAffectedRows ?? 0) < 1)
        throw new Error(`${w.table}.${w.column} changed during the rotation`);
    }

    // Read back inside the transaction: every secret now opens with the new key.
    const after = await tx.selectFrom('settings').select(['key', 'value']).execute();
    for (const row of after) {
      const found = settingSecrets(row.value);
      if (!found) continue;
      const values =
        found.kind === 'whole'
          ? [row.value]
          : found.members.map((m) => (JSON.parse(row.value) as Record<string, string>)[m]!);
      for (const v of values) next.open(v);
    }
    for (const { table, column } of columns) {
      const rows = await sql<{
        v: string | null;
      }>`select ${sql.ref(column)} as v from ${sql.table(table)}`.execute(tx);
      for (const { v } of rows.rows) if (v !== null && v !== '') next.open(v);
    }
  });

  const places = [...counts.entries()].map(([place, n]) => ({ place, count: n }));
  return { places, total: places.reduce((sum, p) => sum + p.count, 0) };
}

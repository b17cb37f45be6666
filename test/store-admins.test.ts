// Migration 0019 and the administrators' repository (decision 0029), on SQLite and PostgreSQL:
// tokens stored before it become owners of the whole tree (their audit events follow them), and a
// token is refused once revoked, expired, or its administrator disabled.
import { sql, Migrator } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashToken } from '../src/store/admin-repo.ts';
import { migrate } from '../src/store/db.ts';
import { migrationProvider } from '../src/store/migrations/index.ts';
import { Store } from '../src/store/store.ts';
import { postgresAvailable, postgresSkipReason, startPostgres } from './support/pg.ts';
import type { ThrowawayPostgres } from './support/pg.ts';

const T0 = new Date('2026-12-01T00:00:00Z');
const later = (ms: number) => new Date(T0.getTime() + ms);

if (!postgresAvailable) console.warn(`[store-admins.test] ${postgresSkipReason}`);

describe.each([
  { name: 'sqlite', enabled: true },
  { name: 'postgres', enabled: postgresAvailable },
] as const)('administrators on $name', ({ name, enabled }) => {
  let pg: ThrowawayPostgres | null = null;
  let store: Store;

  beforeAll(async () => {
    if (!enabled) return;
    let url = 'sqlite::memory:';
    if (name === 'postgres') {
      pg = await startPostgres();
      url = pg.url;
    }
    store = await Store.open(url, T0);
  });
  afterAll(async () => {
    await store?.close();
    pg?.stop();
  });

  it.skipIf(!enabled)('0019 makes each token stored before it an owner, with its audit events', async () => {
    const migrator = new Migrator({ db: store.db.kysely, provider: migrationProvider });
    expect((await migrator.migrateTo('0018_identities_outlive_groups')).error).toBeUndefined();
    const k = store.db.kysely;
    await sql`insert into admin_tokens (id, name, token_hash, created_at, last_used_at)
      values ('tok-1', 'first admin', ${hashToken('old-secret')}, ${T0.toISOString()}, null)`.execute(k);
    await sql`insert into audit_events (id, at, actor, source, action, object_type, object_id, details)
      values ('ev-1', ${T0.toISOString()}, 'tok-1', '127.0.0.1', 'group.create', 'group', 'g', null)`.execute(
      k,
    );
    expect(await migrate(store.db)).toContain('0019_administrators');

    const caller = await store.admin.findToken('old-secret', T0);
    expect(caller?.admin).toMatchObject({ name: 'first admin', role: 'owner', scope_group_id: null });
    expect(caller?.tokenId).toBe('tok-1');
    const [event] = await store.admin.auditPage({ action: 'group.create' }, null, 10);
    expect(event).toMatchObject({
      actor: caller!.admin.id,
      actor_token_id: 'tok-1',
      actor_name: 'first admin',
      token_name: 'first admin',
    });
  });

  it.skipIf(!enabled)('HAISHIN_ADMIN_TOKEN is an owner once; a revoked one stays revoked', async () => {
    await store.admin.ensureToken('env-secret', 'HAISHIN_ADMIN_TOKEN', T0);
    await store.admin.ensureToken('env-secret', 'HAISHIN_ADMIN_TOKEN', T0);
    const caller = await store.admin.findToken('env-secret', T0);
    expect(caller?.admin.role).toBe('owner');
    expect((await store.admin.listTokens(caller!.admin.id)).length).toBe(1);
    await store.admin.revokeToken(caller!.tokenId, T0);
    await store.admin.ensureToken('env-secret', 'HAISHIN_ADMIN_TOKEN', later(1000));
    expect(await store.admin.findToken('env-secret', later(1000))).toBeUndefined();
    // A new value of the variable is a new token of the same owner.
    await store.admin.ensureToken('env-secret-2', 'HAISHIN_ADMIN_TOKEN', later(2000));
    expect((await store.admin.findToken('env-secret-2', later(2000)))?.admin.id).toBe(caller!.admin.id);
  });

  it.skipIf(!enabled)('a token ends at its expiry, and with its administrator disabled', async () => {
    const admin = await store.admin.createAdmin(
      { name: 'A校', role: 'operator', scopeGroupId: 'g-a', createdBy: null },
      T0,
    );
    const { secret } = await store.admin.createAdminToken(admin.id, 'pc', later(60_000), T0);
    expect((await store.admin.findToken(secret, later(59_000)))?.admin.scope_group_id).toBe('g-a');
    expect(await store.admin.findToken(secret, later(60_000))).toBeUndefined();
    const { secret: other } = await store.admin.createAdminToken(admin.id, 'phone', null, T0);
    expect(await store.admin.findToken(other, T0)).toBeDefined();
    await store.admin.updateAdmin(admin.id, { disabled: true }, T0);
    expect(await store.admin.findToken(other, T0)).toBeUndefined();
    expect(await store.admin.scopedTo('g-a')).toBe(1);
    // Only the hash is stored.
    const stored = await store.db.kysely.selectFrom('admin_tokens').select('token_hash').execute();
    expect(stored.some((r) => r.token_hash === other)).toBe(false);
  });

  it.skipIf(!enabled)('0019 goes down and up again', async () => {
    const migrator = new Migrator({ db: store.db.kysely, provider: migrationProvider });
    expect((await migrator.migrateTo('0018_identities_outlive_groups')).error).toBeUndefined();
    expect((await migrate(store.db))[0]).toBe('0019_administrators');
  });
});

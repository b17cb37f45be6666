import { randomUUID } from 'node:crypto';
import type { Kysely, Selectable } from 'kysely';
import type {
  ClaimState,
  Database,
  LicensesTable,
  LicenseState,
  VppAssetsTable,
  VppTokensTable,
} from './schema.ts';
import { inChunks } from './chunks.ts';

export type VppTokenRow = Selectable<VppTokensTable>;
export type VppAssetRow = Selectable<VppAssetsTable>;
export type LicenseRow = Selectable<LicensesTable>;

export interface NewToken {
  groupId: string;
  orgName: string;
  locationName: string | null;
  locationId: string | null;
  expiresAt: Date;
  sealedSToken: string;
  claimState: ClaimState;
  notificationAuthToken: string;
}

export interface AssetUpsert {
  adamId: string;
  pricingParam: string;
  productType: string | null;
  name: string | null;
  bundleId: string | null;
  totalCount: number;
  assignedCount: number;
  availableCount: number;
  deviceAssignable: boolean;
  revocable: boolean;
  sizeBytes: number | null;
  minimumOsVersion: string | null;
  supportedDevices: string[] | null;
  contentRating: string | null;
  raw: string | null;
}

/** VPP tokens, their shares and auto-assign settings, synced assets and licence records. */
export class VppRepo {
  readonly #db: Kysely<Database>;

  constructor(db: Kysely<Database>) {
    this.#db = db;
  }

  async createToken(t: NewToken, at: Date): Promise<VppTokenRow> {
    const now = at.toISOString();
    const row: VppTokenRow = {
      id: randomUUID(),
      group_id: t.groupId,
      org_name: t.orgName,
      location_name: t.locationName,
      location_id: t.locationId,
      expires_at: t.expiresAt.toISOString(),
      sealed_stoken: t.sealedSToken,
      claim_state: t.claimState,
      apple_state: null,
      last_error: null,
      notification_auth_token: t.notificationAuthToken,
      last_warning_days: null,
      last_synced_at: null,
      created_at: now,
      updated_at: now,
    };
    await this.#db.insertInto('vpp_tokens').values(row).execute();
    return row;
  }

  getToken(id: string): Promise<VppTokenRow | undefined> {
    return this.#db.selectFrom('vpp_tokens').selectAll().where('id', '=', id).executeTakeFirst();
  }

  allTokens(): Promise<VppTokenRow[]> {
    return this.#db.selectFrom('vpp_tokens').selectAll().orderBy('created_at').orderBy('id').execute();
  }

  tokenByNotificationAuth(bearer: string): Promise<VppTokenRow | undefined> {
    return this.#db
      .selectFrom('vpp_tokens')
      .selectAll()
      .where('notification_auth_token', '=', bearer)
      .executeTakeFirst();
  }

  async updateToken(
    id: string,
    changes: Partial<Omit<VppTokenRow, 'id' | 'created_at'>>,
    at: Date,
  ): Promise<void> {
    await this.#db
      .updateTable('vpp_tokens')
      .set({ ...changes, updated_at: at.toISOString() })
      .where('id', '=', id)
      .execute();
  }

  async deleteToken(id: string): Promise<void> {
    await this.#db.transaction().execute(async (tx) => {
      await tx.deleteFrom('licenses').where('token_id', '=', id).execute();
      await tx.deleteFrom('vpp_assets').where('token_id', '=', id).execute();
      await tx.deleteFrom('auto_assign_settings').where('token_id', '=', id).execute();
      await tx.deleteFrom('auto_distributions').where('token_id', '=', id).execute();
      await tx.deleteFrom('vpp_token_shares').where('token_id', '=', id).execute();
      await tx.deleteFrom('vpp_tokens').where('id', '=', id).execute();
    });
  }

  async tokensInGroup(groupId: string): Promise<number> {
    const row = await this.#db
      .selectFrom('vpp_tokens')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('group_id', '=', groupId)
      .executeTakeFirstOrThrow();
    return Number(row.n);
  }

  async shares(): Promise<{ token_id: string; group_id: string }[]> {
    return this.#db.selectFrom('vpp_token_shares').select(['token_id', 'group_id']).execute();
  }

  async sharesOf(tokenId: string): Promise<string[]> {
    const rows = await this.#db
      .selectFrom('vpp_token_shares')
      .select('group_id')
      .where('token_id', '=', tokenId)
      .execute();
    return rows.map((r) => r.group_id);
  }

  async addShare(tokenId: string, groupId: string, at: Date): Promise<void> {
    await this.#db
      .insertInto('vpp_token_shares')
      .values({ token_id: tokenId, group_id: groupId, created_at: at.toISOString() })
      .execute();
  }

  async removeShare(tokenId: string, groupId: string): Promise<boolean> {
    const r = await this.#db
      .deleteFrom('vpp_token_shares')
      .where('token_id', '=', tokenId)
      .where('group_id', '=', groupId)
      .executeTakeFirst();
    return Number(r.numDeletedRows) > 0;
  }

  async autoAssignSettings(): Promise<Map<string, string>> {
    const rows = await this.#db.selectFrom('auto_assign_settings').select(['group_id', 'token_id']).execute();
    return new Map(rows.map((r) => [r.group_id, r.token_id]));
  }

  async setAutoAssign(groupId: string, tokenId: string | null, at: Date): Promise<void> {
    if (tokenId === null) {
      await this.#db.deleteFrom('auto_assign_settings').where('group_id', '=', groupId).execute();
      return;
    }
    await this.#db
      .insertInto('auto_assign_settings')
      .values({ group_id: groupId, token_id: tokenId, updated_at: at.toISOString() })
      .onConflict((oc) =>
        oc.column('group_id').doUpdateSet({ token_id: tokenId, updated_at: at.toISOString() }),
      )
      .execute();
  }

  /** Renewal swaps the token in place, so every setting pointing at it keeps working by construction. */
  async upsertAssets(tokenId: string, assets: readonly AssetUpsert[], at: Date): Promise<void> {
    const now = at.toISOString();
    await this.#db.transaction().execute(async (tx) => {
      for (const a of assets) {
        const values = {
          product_type: a.productType,
          total_count: a.totalCount,
          assigned_count: a.assignedCount,
          available_count: a.availableCount,
          device_assignable: a.deviceAssignable ? 1 : 0,
          revocable: a.revocable ? 1 : 0,
          raw: a.raw,
          synced_at: now,
          // Metadata comes from the app look-up, not from Apple's licence API: keep what is known.
          ...(a.name !== null ? { name: a.name } : {}),
          ...(a.bundleId !== null ? { bundle_id: a.bundleId } : {}),
          ...(a.sizeBytes !== null ? { size_bytes: a.sizeBytes } : {}),
          ...(a.minimumOsVersion !== null ? { minimum_os_version: a.minimumOsVersion } : {}),
          ...(a.supportedDevices !== null ? { supported_devices: JSON.stringify(a.supportedDevices) } : {}),
          ...(a.contentRating !== null ? { content_rating: a.contentRating } : {}),
        };
        await tx
          .insertInto('vpp_assets')
          .values({
            name: null,
            bundle_id: null,
            size_bytes: null,
            minimum_os_version: null,
            supported_devices: null,
            content_rating: null,
            ...values,
            token_id: tokenId,
            adam_id: a.adamId,
            pricing_param: a.pricingParam,
          })
          .onConflict((oc) => oc.columns(['token_id', 'adam_id', 'pricing_param']).doUpdateSet(values))
          .execute();
      }
    });
  }

  assets(tokenId: string): Promise<VppAssetRow[]> {
    return this.#db
      .selectFrom('vpp_assets')
      .selectAll()
      .where('token_id', '=', tokenId)
      .orderBy('adam_id')
      .execute();
  }

  /** App names by `tokenId\u0000adamId`, for lists of distributions: one query for a page, not one per app. */
  async assetNames(pairs: readonly { tokenId: string; adamId: string }[]): Promise<Map<string, string>> {
    const out = new Map<string, string>();
    if (pairs.length === 0) return out;
    const rows = await this.#db
      .selectFrom('vpp_assets')
      .select(['token_id', 'adam_id', 'name'])
      .where('token_id', 'in', [...new Set(pairs.map((p) => p.tokenId))])
      .where('adam_id', 'in', [...new Set(pairs.map((p) => p.adamId))])
      .where('name', 'is not', null)
      .execute();
    for (const r of rows) out.set(`${r.token_id}\u0000${r.adam_id}`, r.name!);
    return out;
  }

  asset(tokenId: string, adamId: string): Promise<VppAssetRow | undefined> {
    return this.#db
      .selectFrom('vpp_assets')
      .selectAll()
      .where('token_id', '=', tokenId)
      .where('adam_id', '=', adamId)
      .executeTakeFirst();
  }

  async setAssetCounts(
    tokenId: string,
    adamId: string,
    counts: { assigned?: number; available?: number; total?: number },
    at: Date,
  ) {
    await this.#db
      .updateTable('vpp_assets')
      .set({
        ...(counts.assigned !== undefined ? { assigned_count: counts.assigned } : {}),
        ...(counts.available !== undefined ? { available_count: counts.available } : {}),
        ...(counts.total !== undefined ? { total_count: counts.total } : {}),
        synced_at: at.toISOString(),
      })
      .where('token_id', '=', tokenId)
      .where('adam_id', '=', adamId)
      .execute();
  }

  /** Records licences as `assigning` (or moves existing ones); one row per token × asset × serial. */
  async markLicenses(
    rows: readonly {
      tokenId: string;
      adamId: string;
      pricingParam: string;
      serial: string;
      origin: 'auto' | 'manual';
      viaGroupId: string | null;
    }[],
    state: LicenseState,
    eventId: string | null,
    at: Date,
  ): Promise<void> {
    const now = at.toISOString();
    await this.#db.transaction().execute(async (tx) => {
      for (const r of rows) {
        await tx
          .insertInto('licenses')
          .values({
            id: randomUUID(),
            token_id: r.tokenId,
            adam_id: r.adamId,
            pricing_param: r.pricingParam,
            serial_number: r.serial,
            state,
            origin: r.origin,
            via_group_id: r.viaGroupId,
            event_id: eventId,
            error_code: null,
            created_at: now,
            updated_at: now,
          })
          .onConflict((oc) =>
            oc.columns(['token_id', 'adam_id', 'serial_number']).doUpdateSet({
              state,
              event_id: eventId,
              error_code: null,
              updated_at: now,
              origin: r.origin,
              via_group_id: r.viaGroupId,
            }),
          )
          .execute();
      }
    });
  }

  async setLicenseState(
    where: { tokenId: string; adamId: string; serials: readonly string[] },
    state: LicenseState,
    errorCode: number | null,
    at: Date,
  ): Promise<void> {
    await inChunks(where.serials, (serials) =>
      this.#db
        .updateTable('licenses')
        .set({ state, error_code: errorCode, updated_at: at.toISOString() })
        .where('token_id', '=', where.tokenId)
        .where('adam_id', '=', where.adamId)
        .where('serial_number', 'in', serials)
        .execute(),
    );
  }

  licenses(filter: {
    tokenId?: string;
    adamId?: string;
    serialNumber?: string;
    states?: LicenseState[];
    viaGroupId?: string;
    origin?: 'auto' | 'manual';
    /** Changed at or after this moment. */
    updatedSince?: Date;
  }): Promise<LicenseRow[]> {
    let q = this.#db.selectFrom('licenses').selectAll();
    if (filter.updatedSince) q = q.where('updated_at', '>=', filter.updatedSince.toISOString());
    if (filter.tokenId) q = q.where('token_id', '=', filter.tokenId);
    if (filter.adamId) q = q.where('adam_id', '=', filter.adamId);
    if (filter.serialNumber) q = q.where('serial_number', '=', filter.serialNumber);
    if (filter.states) q = q.where('state', 'in', filter.states);
    if (filter.viaGroupId) q = q.where('via_group_id', '=', filter.viaGroupId);
    if (filter.origin) q = q.where('origin', '=', filter.origin);
    return q.orderBy('serial_number').orderBy('adam_id').execute();
  }

  autoDistributions(): Promise<{ group_id: string; adam_id: string; token_id: string }[]> {
    return this.#db
      .selectFrom('auto_distributions')
      .select(['group_id', 'adam_id', 'token_id'])
      .orderBy('created_at')
      .execute();
  }

  /** Replaces the group's own list (inherited entries are not touched). */
  async setAutoDistributions(
    groupId: string,
    apps: readonly { adamId: string; tokenId: string }[],
    at: Date,
  ): Promise<void> {
    await this.#db.transaction().execute(async (tx) => {
      await tx.deleteFrom('auto_distributions').where('group_id', '=', groupId).execute();
      if (apps.length === 0) return;
      await tx
        .insertInto('auto_distributions')
        .values(
          apps.map((a) => ({
            group_id: groupId,
            adam_id: a.adamId,
            token_id: a.tokenId,
            created_at: at.toISOString(),
          })),
        )
        .execute();
    });
  }

  /** Keeps an authenticated notification for the process that follows the events (decision 0019). */
  async inboxAdd(tokenId: string, body: string, at: Date): Promise<void> {
    await this.#db
      .insertInto('vpp_notification_inbox')
      .values({ id: randomUUID(), token_id: tokenId, body, received_at: at.toISOString() })
      .execute();
  }

  /** The oldest notifications kept, up to `limit`. */
  inboxOldest(limit: number): Promise<{ id: string; token_id: string; body: string; received_at: string }[]> {
    return this.#db
      .selectFrom('vpp_notification_inbox')
      .selectAll()
      .orderBy('received_at')
      .orderBy('id')
      .limit(limit)
      .execute();
  }

  async inboxDelete(id: string): Promise<void> {
    await this.#db.deleteFrom('vpp_notification_inbox').where('id', '=', id).execute();
  }
}

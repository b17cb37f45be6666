import { VppError } from '../../apple/vpp/errors.ts';
import type { AppMeta } from '../../apple/appmeta/client.ts';
import { Refusal } from '../../core/refusal.ts';
import { dueExpiryWarning } from '../../core/tokens.ts';
import { noteAppleError } from './apple-errors.ts';
import type { TokenContext } from './context.ts';
import { NOTIFICATION_IDS_RETENTION_MS } from './events.ts';

/**
 * Token upkeep: the full sync with Apple (claim check and every asset, with app facts when an
 * `AppMeta` look-up is configured), the expiry warnings (30, 14, 7 and 1 days before, once per
 * threshold, as audit events) and the periodic `maintenance` that runs both.
 */
export class TokenMaintenance {
  readonly #ctx: TokenContext;

  constructor(ctx: TokenContext) {
    this.#ctx = ctx;
  }

  /** Full sync: claim check (stop writing if another MDM took the location) and every asset page. */
  async sync(id: string): Promise<{ assets: number; syncedAt: string }> {
    const ctx = this.#ctx;
    const row = await ctx.mustGet(id);
    const client = ctx.client(row);
    const at = ctx.now();
    try {
      const { state, config } = await client.claimState();
      if (state === 'other_mdm') {
        await ctx.store.vpp.updateToken(
          id,
          {
            claim_state: 'other_mdm',
            last_error: JSON.stringify({ kind: 'other_mdm', other: config.mdmInfo }),
          },
          at,
        );
        throw new Refusal(409, 'token.other_mdm_claim', {
          location: row.location_name ?? '?',
          other: config.mdmInfo?.name ?? '?',
          id,
        });
      }
      const assets = await client.assets();
      const meta = await this.#appMeta(assets.filter((a) => a.productType !== 'Book').map((a) => a.adamId));
      await ctx.store.vpp.upsertAssets(
        id,
        assets.map((a) => {
          const m = meta.get(a.adamId);
          return {
            adamId: a.adamId,
            pricingParam: a.pricingParam,
            productType: a.productType,
            name: m?.name ?? null,
            bundleId: m?.bundleId ?? null,
            totalCount: a.totalCount,
            assignedCount: a.assignedCount,
            availableCount: a.availableCount,
            deviceAssignable: a.deviceAssignable,
            revocable: a.revocable,
            sizeBytes: m?.sizeBytes ?? null,
            minimumOsVersion: m?.minimumOsVersion ?? null,
            supportedDevices: m ? m.supportedDevices : null,
            contentRating: m?.contentRating ?? null,
            raw: JSON.stringify(a),
          };
        }),
        at,
      );
      await ctx.store.vpp.updateToken(
        id,
        {
          last_synced_at: at.toISOString(),
          last_error: null,
          ...(config.tokenExpirationDate ? { expires_at: config.tokenExpirationDate.toISOString() } : {}),
        },
        at,
      );
      return { assets: assets.length, syncedAt: at.toISOString() };
    } catch (err) {
      if (err instanceof VppError) {
        await noteAppleError(ctx, id, err);
        throw new Refusal(409, 'token.apple_refused', {
          detail: `${err.kind} ${err.errorNumber ?? ''}`.trim(),
        });
      }
      throw err;
    }
  }

  /** Metadata is a nicety for sync: a look-up failure leaves the fields empty rather than failing the sync. */
  async #appMeta(adamIds: string[]): Promise<Map<string, AppMeta>> {
    const lookup = this.#ctx.o.appMeta;
    if (!lookup || adamIds.length === 0) return new Map();
    try {
      return await lookup.lookup(adamIds);
    } catch (err) {
      this.#ctx.report(err);
      return new Map();
    }
  }

  /**
   * Periodic upkeep: expiry warnings become audit events (once per threshold), notification ids
   * past their retention are forgotten, and tokens not synced for `syncEveryMs` get a full sync.
   * Errors are recorded on the token, not thrown.
   */
  async maintenance(syncEveryMs: number): Promise<{ warnings: number; synced: number }> {
    const ctx = this.#ctx;
    const now = ctx.now();
    const warnings = await this.dueWarnings();
    for (const w of warnings) {
      await ctx.store.admin.audit({
        actor: 'system',
        source: null,
        action: 'token.expiry_warning',
        objectType: 'vpp_token',
        objectId: w.tokenId,
        details: { daysLeft: w.days, expiresAt: w.expiresAt },
        at: now,
      });
    }
    // Notification ids older than the retention: no copy of them comes any more (decision 0026).
    await ctx.store.vppNotifications.prune(new Date(now.getTime() - NOTIFICATION_IDS_RETENTION_MS));
    let synced = 0;
    for (const row of await ctx.store.vpp.allTokens()) {
      if (row.claim_state !== 'ours') continue;
      const last = row.last_synced_at ? new Date(row.last_synced_at).getTime() : 0;
      if (now.getTime() - last < syncEveryMs) continue;
      try {
        await this.sync(row.id);
        synced++;
      } catch (err) {
        // sync() already recorded Apple's refusal on the token; anything else goes to the log.
        if (!(err instanceof Refusal)) ctx.report(err);
      }
    }
    return { warnings: warnings.length, synced };
  }

  /** Tokens whose next expiry warning (30/14/7/1 days) is due now; marks them as warned. */
  async dueWarnings(): Promise<{ tokenId: string; days: number; expiresAt: string }[]> {
    const ctx = this.#ctx;
    const now = ctx.now();
    const due: { tokenId: string; days: number; expiresAt: string }[] = [];
    for (const row of await ctx.store.vpp.allTokens()) {
      const days = dueExpiryWarning(new Date(row.expires_at), row.last_warning_days, now);
      if (days === null) continue;
      await ctx.store.vpp.updateToken(row.id, { last_warning_days: days }, now);
      due.push({ tokenId: row.id, days, expiresAt: row.expires_at });
    }
    return due;
  }
}

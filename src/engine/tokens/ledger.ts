import { Refusal } from '../../core/refusal.ts';
import type { LicenseRow } from '../../store/vpp-repo.ts';
import { noteDeadToken, withToken } from './apple-errors.ts';
import type { TokenContext } from './context.ts';
import type { TokenEvents } from './events.ts';

export interface LicenseChange {
  tokenId: string;
  adamId: string;
  serials: string[];
  eventIds: string[];
  failed: { serials: string[]; kind: string; errorNumber: number | null }[];
}

/**
 * The licence ledger: device licences assigned and reclaimed through Apple, each recorded as
 * `assigning` / `reclaiming` until its Apps and Books event settles it (see `events.ts`); what
 * Apple says is assigned (manual mode); and the automatic reclaims (a device deactivated, a token
 * deleted, a share removed), one disassociate per token and app.
 */
export class LicenceLedger {
  readonly #ctx: TokenContext;
  readonly #events: TokenEvents;

  constructor(ctx: TokenContext, events: TokenEvents) {
    this.#ctx = ctx;
    this.#events = events;
  }

  /**
   * Assigns device licences for `serials` (batched by the client), recording each as `assigning`.
   * `via` is the group whose registration or share each licence is assigned through (one group
   * for all, or per serial): unsharing that group later reclaims exactly these.
   */
  async assign(
    tokenId: string,
    adamId: string,
    serials: readonly string[],
    origin: 'auto' | 'manual',
    via: string | null | ReadonlyMap<string, string>,
  ): Promise<LicenseChange> {
    const ctx = this.#ctx;
    const viaGroupOf = (serial: string) =>
      via instanceof Map ? (via.get(serial) ?? null) : (via as string | null);
    const row = await ctx.mustGet(tokenId);
    const asset = await ctx.store.vpp.asset(tokenId, adamId);
    if (!asset) throw new Refusal(404, 'license.asset_not_found', { adamId, id: tokenId });
    const unique = [...new Set(serials)];
    const result = await withToken(ctx, tokenId, () =>
      ctx.client(row).associate([{ adamId, pricingParam: asset.pricing_param }], unique),
    );
    const at = ctx.now();
    const change: LicenseChange = { tokenId, adamId, serials: unique, eventIds: [], failed: [] };
    for (const event of result.events) {
      change.eventIds.push(event.eventId);
      await ctx.store.vpp.markLicenses(
        event.serialNumbers.map((serial) => ({
          tokenId,
          adamId,
          pricingParam: asset.pricing_param,
          serial,
          origin,
          viaGroupId: viaGroupOf(serial),
        })),
        'assigning',
        event.eventId,
        at,
      );
    }
    for (const failure of result.failed) {
      change.failed.push({
        serials: failure.serialNumbers,
        kind: failure.error.kind,
        errorNumber: failure.error.errorNumber ?? null,
      });
      await ctx.store.vpp.markLicenses(
        failure.serialNumbers.map((serial) => ({
          tokenId,
          adamId,
          pricingParam: asset.pricing_param,
          serial,
          origin,
          viaGroupId: viaGroupOf(serial),
        })),
        'failed',
        null,
        at,
      );
    }
    await noteDeadToken(ctx, tokenId, result.failed);
    // Registered only now that the licence rows exist: the outcome must find them to settle.
    this.#events.tracker(row).register(result);
    return change;
  }

  /** Takes licences back from `serials` (one disassociate per batch), recording them as `reclaiming`. */
  async reclaim(tokenId: string, adamId: string, serials: readonly string[]): Promise<LicenseChange> {
    const ctx = this.#ctx;
    const row = await ctx.mustGet(tokenId);
    const asset = await ctx.store.vpp.asset(tokenId, adamId);
    const pricingParam = asset?.pricing_param ?? 'STDQ';
    const unique = [...new Set(serials)];
    const result = await withToken(ctx, tokenId, () =>
      ctx.client(row).disassociate([{ adamId, pricingParam }], unique),
    );
    const at = ctx.now();
    const change: LicenseChange = {
      tokenId,
      adamId,
      serials: unique,
      eventIds: result.events.map((e) => e.eventId),
      failed: [],
    };
    for (const event of result.events) {
      await ctx.store.vpp.setLicenseState(
        { tokenId, adamId, serials: event.serialNumbers },
        'reclaiming',
        null,
        at,
      );
    }
    for (const failure of result.failed) {
      change.failed.push({
        serials: failure.serialNumbers,
        kind: failure.error.kind,
        errorNumber: failure.error.errorNumber ?? null,
      });
    }
    await noteDeadToken(ctx, tokenId, result.failed);
    // Registered only now that the licence rows exist: the outcome must find them to settle.
    this.#events.tracker(row).register(result);
    return change;
  }

  /** The serials Apple says hold a licence for the app (manual mode checks this before installing). */
  async appleAssignedSerials(tokenId: string, adamId: string): Promise<Set<string>> {
    const ctx = this.#ctx;
    const row = await ctx.mustGet(tokenId);
    const { assignments } = await withToken(ctx, tokenId, () => ctx.client(row).assignments({ adamId }));
    return new Set(assignments.map((a) => a.serialNumber).filter((s): s is string => typeof s === 'string'));
  }

  /** Device deactivation: every licence held by the device's serial goes back. */
  async reclaimForSerial(serial: string): Promise<LicenseChange[]> {
    return this.#reclaimRows(
      await this.#ctx.store.vpp.licenses({ serialNumber: serial, states: ['assigned', 'assigning'] }),
    );
  }

  /** Token deletion: the licences it auto-assigned go back to the pool. */
  async reclaimAutoAssigned(tokenId: string): Promise<LicenseChange[]> {
    return this.#reclaimRows(
      await this.#ctx.store.vpp.licenses({ tokenId, origin: 'auto', states: ['assigned', 'assigning'] }),
    );
  }

  /** A share removed: the licences assigned through that group go back. */
  async reclaimThroughShare(tokenId: string, groupId: string): Promise<LicenseChange[]> {
    return this.#reclaimRows(
      await this.#ctx.store.vpp.licenses({ tokenId, viaGroupId: groupId, states: ['assigned', 'assigning'] }),
    );
  }

  /** One disassociate per (token, app) with all the serials concerned. */
  async #reclaimRows(rows: readonly LicenseRow[]): Promise<LicenseChange[]> {
    const byAsset = new Map<string, { tokenId: string; adamId: string; serials: string[] }>();
    for (const r of rows) {
      const key = `${r.token_id}\u0000${r.adam_id}`;
      const entry = byAsset.get(key) ?? { tokenId: r.token_id, adamId: r.adam_id, serials: [] };
      entry.serials.push(r.serial_number);
      byAsset.set(key, entry);
    }
    const changes: LicenseChange[] = [];
    for (const entry of byAsset.values())
      changes.push(await this.reclaim(entry.tokenId, entry.adamId, entry.serials));
    return changes;
  }
}

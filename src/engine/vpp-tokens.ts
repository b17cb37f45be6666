import type { VppClient } from '../apple/vpp/client.ts';
import type { VppEventTracker } from '../apple/vpp/events.ts';
import type { EffectiveAutoAssign } from '../core/tokens.ts';
import type { VppTokenRow } from '../store/vpp-repo.ts';
import { TokenContext } from './tokens/context.ts';
import type { VppTokensOptions } from './tokens/context.ts';
import { TokenEvents } from './tokens/events.ts';
import { LicenceLedger } from './tokens/ledger.ts';
import type { LicenseChange } from './tokens/ledger.ts';
import { TokenMaintenance } from './tokens/maintenance.ts';
import { TokenRegistry } from './tokens/registry.ts';
import type { TokenView } from './tokens/registry.ts';
import { TokenSharing } from './tokens/sharing.ts';

export type { LicenseChange, TokenView, VppTokensOptions };

/**
 * VPP tokens as the administrator manages them (DESIGN §4): registration and claim, renewal
 * rules, sharing, auto-assign inheritance, asset sync, licence assignment and the automatic
 * reclaims. Business refusals are {@link Refusal}s carrying their bilingual message code.
 *
 * The one entry point the app, the API, the CLI and the engine use; the work is done by the parts
 * in `./tokens/` (registry, sharing, licence ledger, Apps and Books events, maintenance), which
 * share one {@link TokenContext} (options, clock, the client of each token).
 */
export class VppTokens {
  readonly #ctx: TokenContext;
  readonly #events: TokenEvents;
  readonly #ledger: LicenceLedger;
  readonly #upkeep: TokenMaintenance;
  readonly #sharing: TokenSharing;
  readonly #registry: TokenRegistry;

  constructor(options: VppTokensOptions) {
    this.#ctx = new TokenContext(options);
    this.#events = new TokenEvents(this.#ctx);
    this.#ledger = new LicenceLedger(this.#ctx, this.#events);
    this.#upkeep = new TokenMaintenance(this.#ctx);
    this.#sharing = new TokenSharing(this.#ctx, this.#ledger);
    this.#registry = new TokenRegistry(this.#ctx, this.#events, this.#ledger, this.#upkeep);
  }

  // ---- the registry (tokens/registry.ts) ------------------------------------------------

  clientFor(sToken: string): VppClient {
    return this.#ctx.clientFor(sToken);
  }

  mustGet(id: string): Promise<VppTokenRow> {
    return this.#ctx.mustGet(id);
  }

  view(row: VppTokenRow): Promise<TokenView> {
    return this.#registry.view(row);
  }

  register(groupId: string, fileText: string): Promise<VppTokenRow> {
    return this.#registry.register(groupId, fileText);
  }

  renew(id: string, fileText: string): Promise<VppTokenRow> {
    return this.#registry.renew(id, fileText);
  }

  takeOver(id: string): Promise<VppTokenRow> {
    return this.#registry.takeOver(id);
  }

  delete(id: string): Promise<LicenseChange[]> {
    return this.#registry.delete(id);
  }

  // ---- sharing and auto-assign (tokens/sharing.ts) ---------------------------------------

  share(id: string, groupId: string, fromGroupId?: string): Promise<void> {
    return this.#sharing.share(id, groupId, fromGroupId);
  }

  unshare(id: string, groupId: string): Promise<LicenseChange[]> {
    return this.#sharing.unshare(id, groupId);
  }

  setAutoAssign(groupId: string, tokenId: string | null): Promise<EffectiveAutoAssign> {
    return this.#sharing.setAutoAssign(groupId, tokenId);
  }

  effectiveAutoAssign(groupId: string): Promise<EffectiveAutoAssign> {
    return this.#sharing.effectiveAutoAssign(groupId);
  }

  // ---- the licence ledger (tokens/ledger.ts) ---------------------------------------------

  assign(
    tokenId: string,
    adamId: string,
    serials: readonly string[],
    origin: 'auto' | 'manual',
    via: string | null | ReadonlyMap<string, string>,
  ): Promise<LicenseChange> {
    return this.#ledger.assign(tokenId, adamId, serials, origin, via);
  }

  reclaim(tokenId: string, adamId: string, serials: readonly string[]): Promise<LicenseChange> {
    return this.#ledger.reclaim(tokenId, adamId, serials);
  }

  appleAssignedSerials(tokenId: string, adamId: string): Promise<Set<string>> {
    return this.#ledger.appleAssignedSerials(tokenId, adamId);
  }

  reclaimForSerial(serial: string): Promise<LicenseChange[]> {
    return this.#ledger.reclaimForSerial(serial);
  }

  // ---- Apps and Books events (tokens/events.ts) ------------------------------------------

  tracker(row: VppTokenRow): VppEventTracker {
    return this.#events.tracker(row);
  }

  trackerForNotification(bearer: string): Promise<VppEventTracker | undefined> {
    return this.#events.trackerForNotification(bearer);
  }

  recover(): Promise<number> {
    return this.#events.recover();
  }

  tick(o: { shared?: boolean } = {}): Promise<void> {
    return this.#events.tick(o);
  }

  keepNotification(
    authHeader: string | undefined,
    body: Uint8Array,
  ): Promise<{ status: number; body: object }> {
    return this.#events.keepNotification(authHeader, body);
  }

  // ---- sync, expiry warnings, upkeep (tokens/maintenance.ts) -----------------------------

  sync(id: string): Promise<{ assets: number; syncedAt: string }> {
    return this.#upkeep.sync(id);
  }

  maintenance(syncEveryMs: number): Promise<{ warnings: number; synced: number }> {
    return this.#upkeep.maintenance(syncEveryMs);
  }

  dueWarnings(): Promise<{ tokenId: string; days: number; expiresAt: string }[]> {
    return this.#upkeep.dueWarnings();
  }
}

import { randomBytes } from 'node:crypto';
import type { ClaimOptions, VppClient } from '../../apple/vpp/client.ts';
import { VppError } from '../../apple/vpp/errors.ts';
import { decodeVppToken, VppTokenFileError } from '../../apple/vpp/token.ts';
import type { VppTokenFile } from '../../apple/vpp/token.ts';
import type { VppClientConfig } from '../../apple/vpp/wire.ts';
import { Refusal } from '../../core/refusal.ts';
import { EXPIRY_WARNING_DAYS, tokenState } from '../../core/tokens.ts';
import type { TokenState } from '../../core/tokens.ts';
import type { VppTokenRow } from '../../store/vpp-repo.ts';
import { appleRefused } from './apple-errors.ts';
import type { TokenContext } from './context.ts';
import type { TokenEvents } from './events.ts';
import type { LicenceLedger, LicenseChange } from './ledger.ts';
import type { TokenMaintenance } from './maintenance.ts';

export interface TokenView {
  id: string;
  groupId: string;
  orgName: string;
  locationName: string | null;
  expiresAt: string;
  state: TokenState;
  daysLeft: number;
  /** The expiry warning in force (30, 14, 7 or 1 days), or null. */
  expiryWarningDays: number | null;
  sharedTo: string[];
  lastSyncedAt: string | null;
  lastError: unknown;
}

const DAY_MS = 86_400_000;

/**
 * The token registry: a token's life as the administrator drives it — registration and claim of
 * the location, renewal rules (same location, later expiry, no other MDM's claim), explicit
 * takeover, deletion (its auto-assigned licences reclaimed first) — and the token as shown
 * (`view`: state, days left, the expiry warning in force, shares).
 */
export class TokenRegistry {
  readonly #ctx: TokenContext;
  readonly #events: TokenEvents;
  readonly #ledger: LicenceLedger;
  readonly #upkeep: TokenMaintenance;

  constructor(ctx: TokenContext, events: TokenEvents, ledger: LicenceLedger, upkeep: TokenMaintenance) {
    this.#ctx = ctx;
    this.#events = events;
    this.#ledger = ledger;
    this.#upkeep = upkeep;
  }

  async view(row: VppTokenRow): Promise<TokenView> {
    const now = this.#ctx.now();
    const expiresAt = new Date(row.expires_at);
    return {
      id: row.id,
      groupId: row.group_id,
      orgName: row.org_name,
      locationName: row.location_name,
      expiresAt: row.expires_at,
      state: tokenState({ expiresAt, claim: row.claim_state, appleState: row.apple_state }, now),
      daysLeft: Math.floor((expiresAt.getTime() - now.getTime()) / DAY_MS),
      expiryWarningDays: warningInForce(expiresAt, now),
      sharedTo: await this.#ctx.store.vpp.sharesOf(row.id),
      lastSyncedAt: row.last_synced_at,
      lastError: row.last_error ? JSON.parse(row.last_error) : null,
    };
  }

  #decode(fileText: string): VppTokenFile {
    try {
      return decodeVppToken(fileText);
    } catch (err) {
      if (err instanceof VppTokenFileError)
        throw new Refusal(400, 'token.file_invalid', { detail: err.message });
      throw err;
    }
  }

  #checkNotExpired(file: VppTokenFile): void {
    if (file.expiresAt.getTime() <= this.#ctx.now().getTime()) {
      throw new Refusal(409, 'token.expired_file', { date: file.expiresAt.toISOString().slice(0, 10) });
    }
  }

  /** Reads client/config and turns Apple's token-level refusals into the administrator's words. */
  async #readConfig(
    client: VppClient,
  ): Promise<{ state: 'ours' | 'other_mdm' | 'unclaimed'; config: VppClientConfig }> {
    try {
      return await client.claimState();
    } catch (err) {
      throw err instanceof VppError ? appleRefused(err) : err;
    }
  }

  /** Claims the location; Apple refusing it is the administrator's 409, never a 500. */
  async #claim(client: VppClient, options: ClaimOptions): Promise<void> {
    try {
      await client.claim(options);
    } catch (err) {
      throw err instanceof VppError ? appleRefused(err) : err;
    }
  }

  #claimOptions(notificationAuthToken: string, takeOver = false) {
    return { notificationUrl: `${this.#ctx.o.publicUrl}/vpp/notify`, notificationAuthToken, takeOver };
  }

  /**
   * POST /vpp-tokens: decode, check with Apple, claim the location (unless another MDM has it), sync
   * assets. The token row, with its notification bearer, is stored before the claim: Apple sends a
   * TEST_NOTIFICATION with that bearer while POST client/config is still open (decision 0013).
   */
  async register(groupId: string, fileText: string): Promise<VppTokenRow> {
    const ctx = this.#ctx;
    if (!(await ctx.store.groups.get(groupId))) throw new Refusal(404, 'group.not_found', { id: groupId });
    const file = this.#decode(fileText);
    this.#checkNotExpired(file);
    const client = ctx.clientFor(file.sToken);
    const { state, config } = await this.#readConfig(client);
    const existing = (await ctx.store.vpp.allTokens()).find(
      (t) => config.locationId !== null && t.location_id === config.locationId,
    );
    if (existing)
      throw new Refusal(409, 'token.group_has_token_for_location', {
        location: config.locationName ?? '?',
        id: existing.id,
      });
    const notificationAuthToken = randomBytes(24).toString('base64url');
    const claiming = state !== 'other_mdm';
    const row = await ctx.store.vpp.createToken(
      {
        groupId,
        orgName: file.orgName,
        locationName: config.locationName,
        locationId: config.locationId,
        expiresAt: config.tokenExpirationDate ?? file.expiresAt,
        sealedSToken: ctx.o.box.seal(file.sToken),
        // 'unclaimed' only until Apple has taken the claim below.
        claimState: claiming ? 'unclaimed' : 'other_mdm',
        notificationAuthToken,
      },
      ctx.now(),
    );
    ctx.adoptClient(row.id, file.sToken, client);
    if (!claiming) return row;
    try {
      await client.claim(this.#claimOptions(notificationAuthToken));
    } catch (err) {
      // Nothing refers to the row yet: a refused registration leaves nothing behind.
      ctx.forgetClient(row.id);
      this.#events.forget(row.id);
      await ctx.store.vpp.deleteToken(row.id).catch((e: unknown) => ctx.report(e));
      throw err instanceof VppError ? appleRefused(err) : err;
    }
    await ctx.store.vpp.updateToken(row.id, { claim_state: 'ours' }, ctx.now());
    await this.#upkeep.sync(row.id);
    return (await ctx.store.vpp.getToken(row.id))!;
  }

  /**
   * PUT /vpp-tokens/:id: the same location, a later expiry, no other MDM's claim. The token row
   * keeps its id, so shares and auto-assign settings keep working without any admin action.
   */
  async renew(id: string, fileText: string): Promise<VppTokenRow> {
    const ctx = this.#ctx;
    const row = await ctx.mustGet(id);
    const file = this.#decode(fileText);
    const client = ctx.clientFor(file.sToken);
    const { state, config } = await this.#readConfig(client);
    if (row.location_id !== null && config.locationId !== row.location_id) {
      throw new Refusal(409, 'token.renew_other_location', {
        newLocation: config.locationName ?? '?',
        location: row.location_name ?? '?',
      });
    }
    const newExpiry = config.tokenExpirationDate ?? file.expiresAt;
    if (newExpiry.getTime() <= new Date(row.expires_at).getTime()) {
      throw new Refusal(409, 'token.renew_not_later', {
        newDate: newExpiry.toISOString().slice(0, 10),
        date: row.expires_at.slice(0, 10),
      });
    }
    if (state === 'other_mdm')
      throw new Refusal(409, 'token.renew_other_mdm', { other: config.mdmInfo?.name ?? '?' });
    await this.#claim(client, this.#claimOptions(row.notification_auth_token));
    await ctx.store.vpp.updateToken(
      id,
      {
        sealed_stoken: ctx.o.box.seal(file.sToken),
        expires_at: newExpiry.toISOString(),
        org_name: file.orgName,
        claim_state: 'ours',
        apple_state: null,
        last_error: null,
        last_warning_days: null,
      },
      ctx.now(),
    );
    ctx.adoptClient(id, file.sToken, client);
    return (await ctx.store.vpp.getToken(id))!;
  }

  /** Explicit takeover of a location another MDM holds. */
  async takeOver(id: string): Promise<VppTokenRow> {
    const ctx = this.#ctx;
    const row = await ctx.mustGet(id);
    await this.#claim(ctx.client(row), this.#claimOptions(row.notification_auth_token, true));
    await ctx.store.vpp.updateToken(id, { claim_state: 'ours', last_error: null }, ctx.now());
    await this.#upkeep.sync(id);
    return (await ctx.store.vpp.getToken(id))!;
  }

  /** DELETE /vpp-tokens/:id: auto-assigned licences go back to the pool first. */
  async delete(id: string): Promise<LicenseChange[]> {
    const ctx = this.#ctx;
    await ctx.mustGet(id);
    const changes = await this.#ledger.reclaimAutoAssigned(id);
    await ctx.store.vpp.deleteToken(id);
    ctx.forgetClient(id);
    this.#events.forget(id);
    return changes;
  }
}

/** The expiry warning threshold (30, 14, 7 or 1 days) the token is within, or null. */
function warningInForce(expiresAt: Date, now: Date): number | null {
  const left = (expiresAt.getTime() - now.getTime()) / DAY_MS;
  if (left <= 0) return null;
  const reached = EXPIRY_WARNING_DAYS.filter((d) => left <= d);
  return reached[reached.length - 1] ?? null;
}

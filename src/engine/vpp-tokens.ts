import { randomBytes } from 'node:crypto';
import { VppClient } from '../apple/vpp/client.ts';
import type { VppCallObserver } from '../apple/vpp/client.ts';
import { isTokenKind, VppError } from '../apple/vpp/errors.ts';
import { VppEventTracker } from '../apple/vpp/events.ts';
import type { VppEventOutcome } from '../apple/vpp/events.ts';
import { decodeVppToken, VppTokenFileError } from '../apple/vpp/token.ts';
import type { VppTokenFile } from '../apple/vpp/token.ts';
import type { VppClientConfig, VppMdmInfo } from '../apple/vpp/wire.ts';
import type { AppMeta, AppMetaLookup } from '../apple/appmeta/client.ts';
import type { Clock } from '../core/clock.ts';
import { Refusal } from '../core/refusal.ts';
import {
  checkShare,
  dueExpiryWarning,
  effectiveAutoAssign,
  EXPIRY_WARNING_DAYS,
  tokenState,
  tokenUsableIn,
} from '../core/tokens.ts';
import type { EffectiveAutoAssign, TokenState } from '../core/tokens.ts';
import type { Store } from '../store/store.ts';
import type { SecretBox } from '../store/secretbox.ts';
import type { LicenseRow, VppTokenRow } from '../store/vpp-repo.ts';

export interface VppTokensOptions {
  store: Store;
  clock: Clock;
  box: SecretBox;
  vppUrl: string;
  publicUrl: string;
  mdmInfo: VppMdmInfo;
  /** Tests and the demo may pass options (pacing, sleep) for the per-token clients. */
  clientOptions?: {
    sleep?: (ms: number) => Promise<void>;
    pacing?: { perSecond?: number; burst?: number } | false;
    maxRetries?: number;
    /** Every HTTP request of every token's client, as it ends (metrics and logs). */
    onCall?: VppCallObserver;
  };
  /** Poll-fallback intervals of the event trackers (DESIGN §6 defaults: 5 min, 30 s, 10 min). */
  eventTiming?: { pollAfterMs?: number; pollEveryMs?: number; resubmitAfterMs?: number };
  onError?: (error: Error) => void;
  /** App facts (bundle id, size, minimum OS, rating) for synced assets; sync works without it. */
  appMeta?: AppMetaLookup;
}

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

export interface LicenseChange {
  tokenId: string;
  adamId: string;
  serials: string[];
  eventIds: string[];
  failed: { serials: string[]; kind: string; errorNumber: number | null }[];
}

const DAY_MS = 86_400_000;

/**
 * VPP tokens as the administrator manages them (DESIGN §4): registration and claim, renewal
 * rules, sharing, auto-assign inheritance, asset sync, licence assignment and the automatic
 * reclaims. Business refusals are {@link Refusal}s carrying their bilingual message code.
 */
export class VppTokens {
  readonly #o: VppTokensOptions;
  readonly #clients = new Map<string, { sToken: string; client: VppClient }>();
  readonly #trackers = new Map<string, VppEventTracker>();

  constructor(options: VppTokensOptions) {
    this.#o = options;
  }

  get #store() {
    return this.#o.store;
  }

  #now(): Date {
    return this.#o.clock.now();
  }

  clientFor(sToken: string): VppClient {
    return new VppClient({
      baseUrl: this.#o.vppUrl,
      sToken,
      clock: this.#o.clock,
      mdmInfo: this.#o.mdmInfo,
      ...(this.#o.clientOptions ?? {}),
    });
  }

  /** One client per token, so its pacing and cached limits span every call for that token. */
  #client(row: VppTokenRow): VppClient {
    const sToken = this.#o.box.open(row.sealed_stoken);
    const cached = this.#clients.get(row.id);
    if (cached && cached.sToken === sToken) return cached.client;
    const client = this.clientFor(sToken);
    this.#clients.set(row.id, { sToken, client });
    return client;
  }

  /**
   * The asynchronous-event tracker of a token: associate/disassociate complete later, by
   * notification or by polling. Held in memory; a full sync reconciles after a restart.
   */
  tracker(row: VppTokenRow): VppEventTracker {
    let tracker = this.#trackers.get(row.id);
    if (!tracker) {
      const tokenId = row.id;
      tracker = new VppEventTracker({
        clock: this.#o.clock,
        client: this.#client(row),
        notificationAuthToken: row.notification_auth_token,
        onOutcome: (outcome) => this.#settle(tokenId, outcome),
        onAssetCount: async (change) => {
          const asset = await this.#store.vpp.asset(tokenId, change.adamId);
          if (!asset) return;
          // ASSET_COUNT reports licences bought or transferred: the total moves, and with it what is free.
          await this.#store.vpp.setAssetCounts(
            tokenId,
            change.adamId,
            {
              total: asset.total_count + change.countDelta,
              available: Math.max(0, asset.available_count + change.countDelta),
            },
            this.#now(),
          );
        },
        // Apple tried the notification URL (as it was set): evidence that notifications reach us.
        onTestNotification: ({ notificationId }) =>
          this.#store.admin.audit({
            actor: 'apple',
            source: null,
            action: 'token.notification_test',
            objectType: 'vpp_token',
            objectId: tokenId,
            details: { notificationId },
            at: this.#now(),
          }),
        ...(this.#o.onError ? { onError: (e: Error) => this.#o.onError!(e) } : {}),
        ...(this.#o.eventTiming ?? {}),
      });
      this.#trackers.set(row.id, tracker);
    }
    return tracker;
  }

  /** The tracker Apple's notification is for, found by its bearer. */
  async trackerForNotification(bearer: string): Promise<VppEventTracker | undefined> {
    const row = await this.#store.vpp.tokenByNotificationAuth(bearer);
    return row ? this.tracker(row) : undefined;
  }

  /**
   * After a restart the trackers are empty: licences still `assigning`/`reclaiming` name their
   * Apple event, so their events are registered again and settle by notification or polling.
   */
  async recover(): Promise<number> {
    const open = await this.#store.vpp.licenses({ states: ['assigning', 'reclaiming'] });
    interface OpenEvent {
      tokenId: string;
      type: 'ASSOCIATE' | 'DISASSOCIATE';
      assets: Map<string, string>;
      serials: string[];
    }
    const events = new Map<string, OpenEvent>();
    for (const l of open) {
      if (!l.event_id) continue;
      const ev: OpenEvent = events.get(l.event_id) ?? {
        tokenId: l.token_id,
        type: l.state === 'assigning' ? 'ASSOCIATE' : 'DISASSOCIATE',
        assets: new Map<string, string>(),
        serials: [],
      };
      ev.assets.set(l.adam_id, l.pricing_param);
      ev.serials.push(l.serial_number);
      events.set(l.event_id, ev);
    }
    for (const [eventId, ev] of events) {
      const row = await this.#store.vpp.getToken(ev.tokenId);
      if (!row) continue;
      // Apple's notifications for these may have come while haishin was stopped: poll at once.
      this.tracker(row).register(
        {
          eventId,
          eventType: ev.type,
          assets: [...ev.assets].map(([adamId, pricingParam]) => ({ adamId, pricingParam })),
          serialNumbers: ev.serials,
          raw: '',
        },
        { missedNotifications: true },
      );
    }
    return events.size;
  }

  /** Polls overdue events of every token (the fallback when notifications do not arrive). */
  async tick(): Promise<void> {
    for (const tracker of this.#trackers.values()) await tracker.tick();
  }

  async #settle(tokenId: string, outcome: VppEventOutcome): Promise<void> {
    const at = this.#now();
    const licences = await this.#store.vpp.licenses({ tokenId, states: ['assigning', 'reclaiming'] });
    const byEvent = licences.filter((l) => l.event_id !== null && outcome.eventIds.includes(l.event_id));
    const rows =
      byEvent.length > 0 ? byEvent : licences.filter((l) => outcome.perSerial.has(l.serial_number));
    for (const licence of rows) {
      const result = outcome.perSerial.get(licence.serial_number);
      if (!result) continue;
      const assigning = licence.state === 'assigning';
      const state = result.ok ? (assigning ? 'assigned' : 'reclaimed') : assigning ? 'failed' : 'assigned';
      await this.#store.vpp.setLicenseState(
        { tokenId, adamId: licence.adam_id, serials: [licence.serial_number] },
        state,
        result.ok ? null : result.errorNumber,
        at,
      );
    }
  }

  async mustGet(id: string): Promise<VppTokenRow> {
    const row = await this.#store.vpp.getToken(id);
    if (!row) throw new Refusal(404, 'token.not_found', { id });
    return row;
  }

  async view(row: VppTokenRow): Promise<TokenView> {
    const now = this.#now();
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
      sharedTo: await this.#store.vpp.sharesOf(row.id),
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
    if (file.expiresAt.getTime() <= this.#now().getTime()) {
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

  #claimOptions(notificationAuthToken: string, takeOver = false) {
    return { notificationUrl: `${this.#o.publicUrl}/vpp/notify`, notificationAuthToken, takeOver };
  }

  /**
   * POST /vpp-tokens: decode, check with Apple, claim the location (unless another MDM has it), sync
   * assets. The token row, with its notification bearer, is stored before the claim: Apple sends a
   * TEST_NOTIFICATION with that bearer while POST client/config is still open (decision 0013).
   */
  async register(groupId: string, fileText: string): Promise<VppTokenRow> {
    if (!(await this.#store.groups.get(groupId))) throw new Refusal(404, 'group.not_found', { id: groupId });
    const file = this.#decode(fileText);
    this.#checkNotExpired(file);
    const client = this.clientFor(file.sToken);
    const { state, config } = await this.#readConfig(client);
    const existing = (await this.#store.vpp.allTokens()).find(
      (t) => config.locationId !== null && t.location_id === config.locationId,
    );
    if (existing)
      throw new Refusal(409, 'token.group_has_token_for_location', {
        location: config.locationName ?? '?',
        id: existing.id,
      });
    const notificationAuthToken = randomBytes(24).toString('base64url');
    const claiming = state !== 'other_mdm';
    const row = await this.#store.vpp.createToken(
      {
        groupId,
        orgName: file.orgName,
        locationName: config.locationName,
        locationId: config.locationId,
        expiresAt: config.tokenExpirationDate ?? file.expiresAt,
        sealedSToken: this.#o.box.seal(file.sToken),
        // 'unclaimed' only until Apple has taken the claim below.
        claimState: claiming ? 'unclaimed' : 'other_mdm',
        notificationAuthToken,
      },
      this.#now(),
    );
    this.#clients.set(row.id, { sToken: file.sToken, client });
    if (!claiming) return row;
    try {
      await client.claim(this.#claimOptions(notificationAuthToken));
    } catch (err) {
      // Nothing refers to the row yet: a refused registration leaves nothing behind.
      this.#clients.delete(row.id);
      this.#trackers.delete(row.id);
      await this.#store.vpp.deleteToken(row.id).catch((e: unknown) => this.#o.onError?.(e as Error));
      throw err instanceof VppError ? appleRefused(err) : err;
    }
    await this.#store.vpp.updateToken(row.id, { claim_state: 'ours' }, this.#now());
    await this.sync(row.id);
    return (await this.#store.vpp.getToken(row.id))!;
  }

  /**
   * PUT /vpp-tokens/:id: the same location, a later expiry, no other MDM's claim. The token row
   * keeps its id, so shares and auto-assign settings keep working without any admin action.
   */
  async renew(id: string, fileText: string): Promise<VppTokenRow> {
    const row = await this.mustGet(id);
    const file = this.#decode(fileText);
    const client = this.clientFor(file.sToken);
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
    await client.claim(this.#claimOptions(row.notification_auth_token));
    await this.#store.vpp.updateToken(
      id,
      {
        sealed_stoken: this.#o.box.seal(file.sToken),
        expires_at: newExpiry.toISOString(),
        org_name: file.orgName,
        claim_state: 'ours',
        apple_state: null,
        last_error: null,
        last_warning_days: null,
      },
      this.#now(),
    );
    this.#clients.set(id, { sToken: file.sToken, client });
    return (await this.#store.vpp.getToken(id))!;
  }

  /** Explicit takeover of a location another MDM holds. */
  async takeOver(id: string): Promise<VppTokenRow> {
    const row = await this.mustGet(id);
    await this.#client(row).claim(this.#claimOptions(row.notification_auth_token, true));
    await this.#store.vpp.updateToken(id, { claim_state: 'ours', last_error: null }, this.#now());
    await this.sync(id);
    return (await this.#store.vpp.getToken(id))!;
  }

  /** Full sync: claim check (stop writing if another MDM took the location) and every asset page. */
  async sync(id: string): Promise<{ assets: number; syncedAt: string }> {
    const row = await this.mustGet(id);
    const client = this.#client(row);
    const at = this.#now();
    try {
      const { state, config } = await client.claimState();
      if (state === 'other_mdm') {
        await this.#store.vpp.updateToken(
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
      await this.#store.vpp.upsertAssets(
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
      await this.#store.vpp.updateToken(
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
        await this.#noteAppleError(id, err);
        throw new Refusal(409, 'token.apple_refused', {
          detail: `${err.kind} ${err.errorNumber ?? ''}`.trim(),
        });
      }
      throw err;
    }
  }

  /**
   * Records Apple's refusal on the token. A token-level error (9621 expired, 9625 revoked, 9622 /
   * 9722 invalid) changes the token's state the moment it is met — in a sync, a licence call or
   * a manual-mode check alike —, so GET /vpp-tokens, GET /status and the console say it at once.
   */
  async #noteAppleError(id: string, err: VppError): Promise<void> {
    const appleState =
      err.kind === 'token_expired'
        ? 'expired'
        : err.kind === 'token_revoked'
          ? 'revoked'
          : err.kind === 'token_invalid'
            ? 'invalid'
            : null;
    await this.#store.vpp.updateToken(
      id,
      {
        ...(appleState ? { apple_state: appleState } : {}),
        last_error: JSON.stringify({
          kind: err.kind,
          errorNumber: err.errorNumber ?? null,
          message: err.errorMessage ?? err.message,
        }),
      },
      this.#now(),
    );
  }

  /** Runs a call with the token's client; a token-level refusal is recorded on the token before it is thrown on. */
  async #withToken<T>(id: string, call: () => Promise<T>): Promise<T> {
    try {
      return await call();
    } catch (err) {
      if (err instanceof VppError && isTokenKind(err.kind) && err.kind !== 'other_mdm')
        await this.#noteAppleError(id, err).catch((e: unknown) => this.#o.onError?.(e as Error));
      throw err;
    }
  }

  /** Metadata is a nicety for sync: a look-up failure leaves the fields empty rather than failing the sync. */
  async #appMeta(adamIds: string[]): Promise<Map<string, AppMeta>> {
    if (!this.#o.appMeta || adamIds.length === 0) return new Map();
    try {
      return await this.#o.appMeta.lookup(adamIds);
    } catch (err) {
      this.#o.onError?.(err as Error);
      return new Map();
    }
  }

  /** DELETE /vpp-tokens/:id: auto-assigned licences go back to the pool first. */
  async delete(id: string): Promise<LicenseChange[]> {
    await this.mustGet(id);
    const auto = await this.#store.vpp.licenses({
      tokenId: id,
      origin: 'auto',
      states: ['assigned', 'assigning'],
    });
    const changes = await this.#reclaimRows(auto);
    await this.#store.vpp.deleteToken(id);
    this.#clients.delete(id);
    this.#trackers.delete(id);
    return changes;
  }

  async share(id: string, groupId: string, fromGroupId?: string): Promise<void> {
    const row = await this.mustGet(id);
    if (!(await this.#store.groups.get(groupId))) throw new Refusal(404, 'group.not_found', { id: groupId });
    const groups = await this.#nodes();
    const placement = {
      tokenId: id,
      registeredGroupId: row.group_id,
      sharedGroupIds: await this.#store.vpp.sharesOf(id),
    };
    const refusal = checkShare(groups, placement, groupId, fromGroupId);
    if (refusal) throw new Refusal(409, `share.${refusal}`, { group: groupId, registered: row.group_id });
    await this.#store.vpp.addShare(id, groupId, this.#now());
  }

  /** Removing a share reclaims the licences assigned through it. */
  async unshare(id: string, groupId: string): Promise<LicenseChange[]> {
    await this.mustGet(id);
    if (!(await this.#store.vpp.removeShare(id, groupId)))
      throw new Refusal(404, 'share.not_found', { group: groupId });
    // The token is no longer usable there: an auto-assign setting naming it would silently fail.
    if ((await this.#store.vpp.autoAssignSettings()).get(groupId) === id)
      await this.#store.vpp.setAutoAssign(groupId, null, this.#now());
    const through = await this.#store.vpp.licenses({
      tokenId: id,
      viaGroupId: groupId,
      states: ['assigned', 'assigning'],
    });
    return this.#reclaimRows(through);
  }

  async setAutoAssign(groupId: string, tokenId: string | null): Promise<EffectiveAutoAssign> {
    if (!(await this.#store.groups.get(groupId))) throw new Refusal(404, 'group.not_found', { id: groupId });
    if (tokenId !== null) {
      const row = await this.mustGet(tokenId);
      const placement = {
        tokenId,
        registeredGroupId: row.group_id,
        sharedGroupIds: await this.#store.vpp.sharesOf(tokenId),
      };
      if (!tokenUsableIn(placement, groupId))
        throw new Refusal(409, 'autoassign.token_not_usable', { id: tokenId, group: groupId });
    }
    await this.#store.vpp.setAutoAssign(groupId, tokenId, this.#now());
    return this.effectiveAutoAssign(groupId);
  }

  async effectiveAutoAssign(groupId: string): Promise<EffectiveAutoAssign> {
    if (!(await this.#store.groups.get(groupId))) throw new Refusal(404, 'group.not_found', { id: groupId });
    return effectiveAutoAssign(await this.#nodes(), await this.#store.vpp.autoAssignSettings(), groupId);
  }

  /** Assigns device licences for `serials` (batched by the client), recording each as `assigning`. */
  /**
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
    const viaGroupOf = (serial: string) =>
      via instanceof Map ? (via.get(serial) ?? null) : (via as string | null);
    const row = await this.mustGet(tokenId);
    const asset = await this.#store.vpp.asset(tokenId, adamId);
    if (!asset) throw new Refusal(404, 'license.asset_not_found', { adamId, id: tokenId });
    const unique = [...new Set(serials)];
    const result = await this.#withToken(tokenId, () =>
      this.#client(row).associate([{ adamId, pricingParam: asset.pricing_param }], unique),
    );
    const at = this.#now();
    const change: LicenseChange = { tokenId, adamId, serials: unique, eventIds: [], failed: [] };
    for (const event of result.events) {
      change.eventIds.push(event.eventId);
      await this.#store.vpp.markLicenses(
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
      await this.#store.vpp.markLicenses(
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
    await this.#noteDeadToken(tokenId, result.failed);
    // Registered only now that the licence rows exist: the outcome must find them to settle.
    this.tracker(row).register(result);
    return change;
  }

  /** A later batch refused for the token itself (the first one throws, see #withToken). */
  async #noteDeadToken(id: string, failed: readonly { error: VppError }[]): Promise<void> {
    const dead = failed.find((f) => isTokenKind(f.error.kind) && f.error.kind !== 'other_mdm');
    if (dead) await this.#noteAppleError(id, dead.error).catch((e: unknown) => this.#o.onError?.(e as Error));
  }

  /** Takes licences back from `serials` (one disassociate per batch), recording them as `reclaiming`. */
  async reclaim(tokenId: string, adamId: string, serials: readonly string[]): Promise<LicenseChange> {
    const row = await this.mustGet(tokenId);
    const asset = await this.#store.vpp.asset(tokenId, adamId);
    const pricingParam = asset?.pricing_param ?? 'STDQ';
    const unique = [...new Set(serials)];
    const result = await this.#withToken(tokenId, () =>
      this.#client(row).disassociate([{ adamId, pricingParam }], unique),
    );
    const at = this.#now();
    const change: LicenseChange = {
      tokenId,
      adamId,
      serials: unique,
      eventIds: result.events.map((e) => e.eventId),
      failed: [],
    };
    for (const event of result.events) {
      await this.#store.vpp.setLicenseState(
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
    await this.#noteDeadToken(tokenId, result.failed);
    // Registered only now that the licence rows exist: the outcome must find them to settle.
    this.tracker(row).register(result);
    return change;
  }

  /** The serials Apple says hold a licence for the app (manual mode checks this before installing). */
  async appleAssignedSerials(tokenId: string, adamId: string): Promise<Set<string>> {
    const row = await this.mustGet(tokenId);
    const { assignments } = await this.#withToken(tokenId, () => this.#client(row).assignments({ adamId }));
    return new Set(assignments.map((a) => a.serialNumber).filter((s): s is string => typeof s === 'string'));
  }

  /** Device deactivation: every licence held by the device's serial goes back. */
  async reclaimForSerial(serial: string): Promise<LicenseChange[]> {
    return this.#reclaimRows(
      await this.#store.vpp.licenses({ serialNumber: serial, states: ['assigned', 'assigning'] }),
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

  /**
   * Periodic upkeep: expiry warnings become audit events (once per threshold) and tokens not
   * synced for `syncEveryMs` get a full sync. Errors are recorded on the token, not thrown.
   */
  async maintenance(syncEveryMs: number): Promise<{ warnings: number; synced: number }> {
    const now = this.#now();
    const warnings = await this.dueWarnings();
    for (const w of warnings) {
      await this.#store.admin.audit({
        actor: 'system',
        source: null,
        action: 'token.expiry_warning',
        objectType: 'vpp_token',
        objectId: w.tokenId,
        details: { daysLeft: w.days, expiresAt: w.expiresAt },
        at: now,
      });
    }
    let synced = 0;
    for (const row of await this.#store.vpp.allTokens()) {
      if (row.claim_state !== 'ours') continue;
      const last = row.last_synced_at ? new Date(row.last_synced_at).getTime() : 0;
      if (now.getTime() - last < syncEveryMs) continue;
      try {
        await this.sync(row.id);
        synced++;
      } catch (err) {
        // sync() already recorded Apple's refusal on the token; anything else goes to the log.
        if (!(err instanceof Refusal)) this.#o.onError?.(err as Error);
      }
    }
    return { warnings: warnings.length, synced };
  }

  /** Tokens whose next expiry warning (30/14/7/1 days) is due now; marks them as warned. */
  async dueWarnings(): Promise<{ tokenId: string; days: number; expiresAt: string }[]> {
    const now = this.#now();
    const due: { tokenId: string; days: number; expiresAt: string }[] = [];
    for (const row of await this.#store.vpp.allTokens()) {
      const days = dueExpiryWarning(new Date(row.expires_at), row.last_warning_days, now);
      if (days === null) continue;
      await this.#store.vpp.updateToken(row.id, { last_warning_days: days }, now);
      due.push({ tokenId: row.id, days, expiresAt: row.expires_at });
    }
    return due;
  }

  async #nodes() {
    return (await this.#store.groups.all()).map((g) => ({ id: g.id, parentId: g.parent_id }));
  }
}

/** Apple's token-level refusal of a registration, in the administrator's words. */
function appleRefused(err: VppError): Refusal {
  return new Refusal(409, 'token.apple_refused', {
    detail: `${err.kind} ${err.errorNumber ?? ''} ${err.errorMessage ?? ''}`.trim(),
  });
}

function warningInForce(expiresAt: Date, now: Date): number | null {
  const left = (expiresAt.getTime() - now.getTime()) / DAY_MS;
  if (left <= 0) return null;
  const reached = EXPIRY_WARNING_DAYS.filter((d) => left <= d);
  return reached[reached.length - 1] ?? null;
}

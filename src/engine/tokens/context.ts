import { VppClient } from '../../apple/vpp/client.ts';
import type { VppCallObserver } from '../../apple/vpp/client.ts';
import type { PacingState } from '../../apple/vpp/limiter.ts';
import type { VppMdmInfo } from '../../apple/vpp/wire.ts';
import type { AppMetaLookup } from '../../apple/appmeta/client.ts';
import type { Clock } from '../../core/clock.ts';
import type { GroupNode } from '../../core/groups.ts';
import { Refusal } from '../../core/refusal.ts';
import type { Store } from '../../store/store.ts';
import type { SecretBox } from '../../store/secretbox.ts';
import type { VppTokenRow } from '../../store/vpp-repo.ts';

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
    /** The pacing per location shared by several processes (the database on PostgreSQL, decision 0021). */
    pacingState?: PacingState;
  };
  /** Poll-fallback intervals of the event trackers (DESIGN §6 defaults: 5 min, 30 s, 10 min). */
  eventTiming?: { pollAfterMs?: number; pollEveryMs?: number; resubmitAfterMs?: number };
  onError?: (error: Error) => void;
  /** App facts (bundle id, size, minimum OS, rating) for synced assets; sync works without it. */
  appMeta?: AppMetaLookup;
}

/**
 * What every part of the VPP tokens shares: the options, the clock, the token rows and the
 * Apps and Books client of each token (one per token, so its pacing and the limits Apple
 * announced span every call made for that token).
 */
export class TokenContext {
  readonly o: VppTokensOptions;
  readonly #clients = new Map<string, { sToken: string; client: VppClient }>();

  constructor(options: VppTokensOptions) {
    this.o = options;
  }

  get store(): Store {
    return this.o.store;
  }

  now(): Date {
    return this.o.clock.now();
  }

  /** Hands an error that must not interrupt the caller to the log. */
  report(error: unknown): void {
    this.o.onError?.(error as Error);
  }

  clientFor(sToken: string): VppClient {
    return new VppClient({
      baseUrl: this.o.vppUrl,
      sToken,
      clock: this.o.clock,
      mdmInfo: this.o.mdmInfo,
      ...(this.o.clientOptions ?? {}),
    });
  }

  /** The token's client, made anew only when its sToken changed. */
  client(row: VppTokenRow): VppClient {
    const sToken = this.o.box.open(row.sealed_stoken);
    const cached = this.#clients.get(row.id);
    if (cached && cached.sToken === sToken) return cached.client;
    const client = this.clientFor(sToken);
    this.#clients.set(row.id, { sToken, client });
    return client;
  }

  /** Keeps the client a registration or renewal already talked to Apple with. */
  adoptClient(tokenId: string, sToken: string, client: VppClient): void {
    this.#clients.set(tokenId, { sToken, client });
  }

  forgetClient(tokenId: string): void {
    this.#clients.delete(tokenId);
  }

  async mustGet(id: string): Promise<VppTokenRow> {
    const row = await this.store.vpp.getToken(id);
    if (!row) throw new Refusal(404, 'token.not_found', { id });
    return row;
  }

  /** The group tree as `src/core/tokens.ts` reads it. */
  async groupNodes(): Promise<GroupNode[]> {
    return (await this.store.groups.all()).map((g) => ({ id: g.id, parentId: g.parent_id }));
  }
}

import { sql } from 'kysely';
import type { Kysely } from 'kysely';
import pg from 'pg';
import type { Database } from './schema.ts';

/**
 * PostgreSQL refuses a NOTIFY payload of 8000 bytes or more (with the default page size); senders
 * keep under this.
 */
export const MAX_NOTIFY_BYTES = 7_900;

export interface PgChannelOptions {
  /** HAISHIN_DB: the LISTEN connection is opened from it, outside the store's pool. */
  url: string;
  /** The store's database: NOTIFY goes through its pool like any other statement. */
  db: Kysely<Database>;
  /** The channel's name (an identifier: letters, digits and underscores). */
  channel: string;
  onMessage(payload: string): void;
  /** The LISTEN connection broke (it is reopened) or could not be opened. */
  onError?(err: Error): void;
  /** LISTEN is in place again after a break: what was sent meanwhile was not received. */
  onReconnect?(): void;
  /** First wait before reopening a broken connection, doubled up to `maxRetryMs` (real time). */
  retryMs?: number;
  maxRetryMs?: number;
}

/**
 * A LISTEN/NOTIFY channel between the processes on one PostgreSQL database (decision 0020).
 * LISTEN needs a connection of its own for as long as the process runs (a pooled one would be
 * handed to other queries); when it breaks — PostgreSQL restarted, the network cut, the backend
 * terminated — it is opened again with a growing wait, for as long as the channel is open.
 * Notifications sent while it was down are lost: PostgreSQL keeps none for a listener that is
 * not connected, so what rides on it must be a hint (a repeat of what the database holds).
 */
export class PgChannel {
  readonly #o: PgChannelOptions;
  #client: pg.Client | null = null;
  #closed = false;
  #connected = false;
  /** A connection broke or could not be opened since LISTEN was last in place. */
  #missed = false;
  #retry: NodeJS.Timeout | null = null;
  #wait: number;

  constructor(o: PgChannelOptions) {
    if (!/^[a-z_][a-z0-9_]*$/.test(o.channel)) throw new Error(`not a channel name: ${o.channel}`);
    this.#o = o;
    this.#wait = o.retryMs ?? 500;
  }

  /** Whether LISTEN is in place now. */
  get connected(): boolean {
    return this.#connected;
  }

  /**
   * Opens the LISTEN connection; resolves once it listens or the first attempt failed (then it
   * keeps trying in the background: a process starts even while the channel cannot).
   */
  async start(): Promise<void> {
    await this.#open();
  }

  /** NOTIFY through the store's pool; delivered to every listener once the statement commits. */
  async send(payload: string): Promise<void> {
    await sql`select pg_notify(${this.#o.channel}, ${payload})`.execute(this.#o.db);
  }

  async close(): Promise<void> {
    this.#closed = true;
    if (this.#retry) clearTimeout(this.#retry);
    this.#retry = null;
    const client = this.#client;
    this.#client = null;
    this.#connected = false;
    await client?.end().catch(() => {});
  }

  async #open(): Promise<void> {
    if (this.#closed) return;
    const client = new pg.Client({
      connectionString: this.#o.url,
      connectionTimeoutMillis: 10_000,
      // A connection cut without a word (a firewall dropping it, a host gone) is noticed within a
      // minute or so instead of the system's default of two hours of silence.
      keepAlive: true,
      keepAliveInitialDelayMillis: 15_000,
      application_name: 'haishin-listen',
    });
    let broken = false;
    const broke = (err: Error) => {
      if (broken) return;
      broken = true;
      if (this.#client === client) {
        this.#client = null;
        this.#connected = false;
      }
      client.end().catch(() => {});
      if (this.#closed) return;
      this.#missed = true;
      this.#o.onError?.(err);
      this.#schedule();
    };
    client.on('error', broke);
    client.on('end', () => broke(new Error('the LISTEN connection ended')));
    client.on('notification', (msg) => {
      if (msg.channel === this.#o.channel && msg.payload !== undefined) this.#o.onMessage(msg.payload);
    });
    try {
      await client.connect();
      await client.query(`LISTEN ${this.#o.channel}`);
    } catch (err) {
      broke(err as Error);
      return;
    }
    if (this.#closed || broken) {
      await client.end().catch(() => {});
      return;
    }
    this.#client = client;
    this.#connected = true;
    this.#wait = this.#o.retryMs ?? 500;
    if (this.#missed) {
      this.#missed = false;
      this.#o.onReconnect?.();
    }
  }

  #schedule(): void {
    if (this.#closed || this.#retry) return;
    const wait = this.#wait;
    this.#wait = Math.min(this.#o.maxRetryMs ?? 10_000, wait * 2);
    // Real time on purpose: reconnecting is about the process and the network, not the domain clock.
    this.#retry = setTimeout(() => {
      this.#retry = null;
      void this.#open();
    }, wait);
    this.#retry.unref();
  }
}

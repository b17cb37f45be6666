import { randomUUID } from 'node:crypto';
import type { Kysely } from 'kysely';
import type { EventBus, HaishinEvent } from '../engine/events.ts';
import { MAX_NOTIFY_BYTES, PgChannel } from '../store/pg-channel.ts';
import type { Database } from '../store/schema.ts';

/** The PostgreSQL channel the processes of one database talk on. */
export const EVENTS_CHANNEL = 'haishin_events';
/** Events of a burst (one tick's transitions) go out together after this long (real time). */
const FLUSH_MS = 20;
/** Payloads waiting for the database at most; past that new events are dropped (a live hint). */
const MAX_QUEUED_PAYLOADS = 500;
/** A job's `reason` longer than this is cut when the event alone would not fit a NOTIFY. */
const MAX_REASON_CHARS = 500;

/** What goes over the channel: one process's events of a moment, and wake-ups. */
interface Message {
  v: 1;
  /** The sending process: a process ignores its own messages (PostgreSQL delivers them to it too). */
  o: string;
  /** Events, oldest first. */
  e?: HaishinEvent[];
  /** Timed work that has something to do now (the holder runs it without waiting for its period). */
  w?: string[];
  /** Timed work whose lease was just given up (a clean stop): whoever can take it, takes it now. */
  r?: string[];
}

/** Where the relay sends its messages (a {@link PgChannel}; tests pass a fake). */
export interface RelayChannel {
  send(payload: string): Promise<void>;
}

export interface EventRelayOptions {
  bus: EventBus;
  channel: RelayChannel;
  /** This process (default: a random id). */
  origin?: string;
  /** NOTIFY payload limit in bytes (default {@link MAX_NOTIFY_BYTES}). */
  maxBytes?: number;
  /** An event another process made, after it was delivered to this process's bus. */
  onRemoteEvent?(event: HaishinEvent): void;
  /** Another process asks for timed work now (`released`: its lease is free to take). */
  onWake?(work: readonly string[], released: boolean): void;
  onError?(err: Error): void;
}

/**
 * The event bus across processes (decision 0020): what this process publishes goes out on the
 * channel, batched per moment and kept under the payload limit; what other processes sent is
 * delivered to this process's bus as made `elsewhere` — never this process's own messages, so a
 * listener sees each event once. It also carries wake-ups: timed work (the engine's tick, the Apps
 * and Books poll) that another process found due, so the holder of its lease runs it at once.
 */
export class EventRelay {
  readonly origin: string;
  readonly #o: EventRelayOptions;
  readonly #maxBytes: number;
  #unsubscribe: (() => void) | null = null;
  #events: string[] = [];
  #wake = new Set<string>();
  #released = new Set<string>();
  #timer: NodeJS.Timeout | null = null;
  #sending: Promise<void> = Promise.resolve();
  #queued = 0;
  /** Counters for tests and logs. */
  readonly stats = { sent: 0, received: 0, dropped: 0, ignoredOwn: 0 };

  constructor(o: EventRelayOptions) {
    this.#o = o;
    this.origin = o.origin ?? randomUUID();
    this.#maxBytes = o.maxBytes ?? MAX_NOTIFY_BYTES;
  }

  /** Starts sending what this process publishes. */
  start(): void {
    this.#unsubscribe ??= this.#o.bus.subscribe((event) => this.#add(event), { only: 'here' });
  }

  /** Asks the holder of each named timed work to run it now. */
  wake(work: readonly string[]): void {
    for (const w of work) this.#wake.add(w);
    this.#schedule();
  }

  /** Tells the others these leases were just given up. */
  released(work: readonly string[]): void {
    for (const w of work) this.#released.add(w);
    this.#schedule();
  }

  /** A payload from the channel. Never throws: a malformed message is dropped. */
  receive(payload: string): void {
    let message: Message;
    try {
      message = JSON.parse(payload) as Message;
    } catch {
      return;
    }
    if (typeof message !== 'object' || message === null || message.v !== 1) return;
    if (message.o === this.origin) {
      this.stats.ignoredOwn++;
      return;
    }
    this.stats.received++;
    for (const event of Array.isArray(message.e) ? message.e : []) {
      if (typeof event !== 'object' || event === null || typeof event.type !== 'string') continue;
      this.#o.bus.deliver(event);
      try {
        this.#o.onRemoteEvent?.(event);
      } catch (err) {
        this.#o.onError?.(err as Error);
      }
    }
    try {
      if (Array.isArray(message.w) && message.w.length > 0) this.#o.onWake?.(message.w, false);
      if (Array.isArray(message.r) && message.r.length > 0) this.#o.onWake?.(message.r, true);
    } catch (err) {
      this.#o.onError?.(err as Error);
    }
  }

  /** Sends what is pending now; resolves once everything handed over so far was sent (or failed). */
  flush(): Promise<void> {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    for (const payload of this.#payloads()) {
      if (this.#queued >= MAX_QUEUED_PAYLOADS) {
        this.stats.dropped += payloadEvents(payload);
        continue;
      }
      this.#queued++;
      // One after the other: a process's events arrive in the order it made them.
      this.#sending = this.#sending.then(async () => {
        try {
          await this.#o.channel.send(payload);
          this.stats.sent++;
        } catch (err) {
          this.stats.dropped += payloadEvents(payload);
          this.#o.onError?.(err as Error);
        } finally {
          this.#queued--;
        }
      });
    }
    return this.#sending;
  }

  /** Stops sending new events; what is pending goes out first. */
  async close(): Promise<void> {
    this.#unsubscribe?.();
    this.#unsubscribe = null;
    await this.flush();
  }

  #add(event: HaishinEvent): void {
    let text = JSON.stringify(event);
    if (byteLength(text) > this.#maxBytes - 200 && event.type === 'job' && event.reason !== null)
      text = JSON.stringify({ ...event, reason: `${event.reason.slice(0, MAX_REASON_CHARS)}…` });
    if (byteLength(text) > this.#maxBytes - 200) {
      this.stats.dropped++;
      return;
    }
    this.#events.push(text);
    this.#schedule();
  }

  #schedule(): void {
    if (this.#timer) return;
    // Real time on purpose: batching is about the channel, not the domain clock.
    this.#timer = setTimeout(() => {
      this.#timer = null;
      void this.flush();
    }, FLUSH_MS);
    this.#timer.unref();
  }

  /** The pending events and wake-ups as payloads of at most `maxBytes` each. */
  #payloads(): string[] {
    const events = this.#events;
    const wake = [...this.#wake];
    const released = [...this.#released];
    this.#events = [];
    this.#wake.clear();
    this.#released.clear();
    if (events.length === 0 && wake.length === 0 && released.length === 0) return [];
    const payloads: string[] = [];
    let head = `{"v":1,"o":${JSON.stringify(this.origin)}`;
    if (wake.length > 0) head += `,"w":${JSON.stringify(wake)}`;
    if (released.length > 0) head += `,"r":${JSON.stringify(released)}`;
    let batch: string[] = [];
    let size = byteLength(head) + 10;
    const close = () => {
      payloads.push(`${head}${batch.length > 0 ? `,"e":[${batch.join(',')}]` : ''}}`);
      head = `{"v":1,"o":${JSON.stringify(this.origin)}`;
      batch = [];
      size = byteLength(head) + 10;
    };
    for (const text of events) {
      const bytes = byteLength(text) + 1;
      if (batch.length > 0 && size + bytes > this.#maxBytes) close();
      batch.push(text);
      size += bytes;
    }
    close();
    return payloads;
  }
}

function byteLength(text: string): number {
  return Buffer.byteLength(text, 'utf8');
}

/** How many events a payload carried (for the dropped count). */
function payloadEvents(payload: string): number {
  try {
    return (JSON.parse(payload) as Message).e?.length ?? 0;
  } catch {
    return 0;
  }
}

/**
 * Runs `work` shortly after it is asked for, once for all the requests of that moment; asked while
 * it runs, it runs once more afterwards (what woke it may have come after the step that would
 * have seen it).
 */
export class Soon {
  readonly #work: () => Promise<unknown>;
  readonly #delayMs: number;
  readonly #onError: (err: Error) => void;
  #timer: NodeJS.Timeout | null = null;
  #running: Promise<void> | null = null;
  #again = false;
  #closed = false;

  constructor(work: () => Promise<unknown>, delayMs: number, onError: (err: Error) => void) {
    this.#work = work;
    this.#delayMs = delayMs;
    this.#onError = onError;
  }

  request(): void {
    if (this.#closed) return;
    if (this.#running) {
      this.#again = true;
      return;
    }
    if (this.#timer) return;
    // Real time on purpose: coalescing wake-ups is about the process, not the domain clock.
    this.#timer = setTimeout(() => {
      this.#timer = null;
      this.#run();
    }, this.#delayMs);
    this.#timer.unref();
  }

  /** The run under way, if any. */
  get running(): Promise<void> | null {
    return this.#running;
  }

  close(): void {
    this.#closed = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
  }

  #run(): void {
    this.#running = this.#work()
      .then(
        () => undefined,
        (err: unknown) => this.#onError(err as Error),
      )
      .finally(() => {
        this.#running = null;
        if (this.#again) {
          this.#again = false;
          this.request();
        }
      });
  }
}

/** What the processes relay needs of the composition (src/app/haishin.ts). */
export interface ProcessLinkOptions {
  /** HAISHIN_DB (a postgres:// URL). */
  url: string;
  db: Kysely<Database>;
  bus: EventBus;
  /** Whether another process's change leaves work for the tick (`DistributionEngine.changedElsewhere`). */
  tickWorkIn(event: HaishinEvent): boolean;
  /** The timed work this process holds the lease of now. */
  held(): readonly string[];
  /** Runs one timed work under its lease (taking it if free); the composition's own runner. */
  run(work: string): Promise<unknown>;
  log: { warn(obj: object, msg: string): void; error(obj: object, msg: string): void };
}

/** The link between the processes on one PostgreSQL database: the relay over its channel. */
export interface ProcessLink {
  relay: EventRelay;
  channel: PgChannel;
  /** Asks the holder of `work` to run it now (e.g. the Apps and Books poll after a notification was kept). */
  wake(work: string): void;
  /** No more timed work run on request (a stop begins: the leases are about to be given up). */
  stopWaking(): void;
  /** Tells the others the leases this process gave up (a clean stop), then stops relaying. */
  close(released: readonly string[]): Promise<void>;
}

/** Wake-ups come in bursts (one per job event): the work runs once per this many ms at most. */
const WAKE_DELAY_MS = 50;

/**
 * Opens the link (decision 0020): LISTEN on {@link EVENTS_CHANNEL}, events relayed both ways, and
 * wake-ups — a job another process moved to where the tick goes on (a slot freed by a device's
 * answer, a licence to take, a retry, a distribution created) runs the tick now in the process
 * holding it; a request for the work of a lease just released makes every process try to take it.
 */
export async function linkProcesses(o: ProcessLinkOptions): Promise<ProcessLink> {
  const runners = new Map<string, Soon>();
  let stopped = false;
  const soon = (work: string) => {
    if (stopped) return;
    let runner = runners.get(work);
    if (!runner) {
      runner = new Soon(
        () => o.run(work),
        WAKE_DELAY_MS,
        (err) => o.log.error({ err }, `${work} failed`),
      );
      runners.set(work, runner);
    }
    runner.request();
  };
  const holds = (work: string) => o.held().includes(work);
  let lastError = 0;
  const onError = (err: Error) => {
    // A database that is down would fail every send: one line per minute is enough to say so.
    const now = Date.now();
    if (now - lastError < 60_000) return;
    lastError = now;
    o.log.warn({ err }, 'events across processes: the PostgreSQL channel failed (retrying)');
  };
  const relay = new EventRelay({
    bus: o.bus,
    channel: { send: (payload) => channel.send(payload) },
    onRemoteEvent: (event) => {
      if (holds('engine tick') && o.tickWorkIn(event)) soon('engine tick');
    },
    onWake: (work, released) => {
      for (const w of work) if (released || holds(w)) soon(w);
    },
    onError,
  });
  const channel = new PgChannel({
    url: o.url,
    db: o.db,
    channel: EVENTS_CHANNEL,
    onMessage: (payload) => relay.receive(payload),
    onError,
    // Events and wake-ups may have been missed while the channel was down: the streams are told
    // to read the state again, and the work held runs once now.
    onReconnect: () => {
      o.bus.gap();
      for (const w of o.held()) soon(w);
    },
  });
  relay.start();
  await channel.start();
  return {
    relay,
    channel,
    wake: (work) => relay.wake([work]),
    stopWaking: () => {
      stopped = true;
      for (const runner of runners.values()) runner.close();
    },
    close: async (released) => {
      stopped = true;
      for (const runner of runners.values()) runner.close();
      if (released.length > 0) relay.released(released);
      await relay.close();
      await channel.close();
    },
  };
}

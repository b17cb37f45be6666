import type { SimDevice } from './device/device.ts';

/** Runs `work` over `items` with at most `limit` in flight — enough to enroll thousands without a stampede. */
export async function mapLimit<T, R>(
  items: readonly T[],
  limit: number,
  work: (item: T, index: number) => Promise<R>,
): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const lanes = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const index = next++;
      results[index] = await work(items[index]!, index);
    }
  });
  await Promise.all(lanes);
  return results;
}

/**
 * Many simulated iPads in one process. A push for a device's token starts one command session;
 * pushes arriving during a session cause exactly one more session afterwards (like a real device,
 * which coalesces wake-ups). At most `maxSessions` sessions run at once, the rest queue in push
 * order: a push to a whole fleet must not open a hundred thousand sockets in one process.
 */
export class SimFleet {
  readonly devices: SimDevice[] = [];
  readonly #byToken = new Map<string, SimDevice>();
  readonly #running = new Map<SimDevice, Promise<void>>();
  readonly #again = new Set<SimDevice>();
  /** Woken while every session slot was taken; a Set keeps push order and coalesces repeats. */
  readonly #queued = new Set<SimDevice>();
  readonly #maxSessions: number;
  #drained: (() => void)[] = [];
  sessions = 0;
  sessionErrors = 0;
  /** The latest session failure, to say why when `sessionErrors` is not 0. */
  lastSessionError: string | null = null;

  constructor(options: { maxSessions?: number } = {}) {
    this.#maxSessions = Math.max(1, options.maxSessions ?? 256);
  }

  add(device: SimDevice): SimDevice {
    this.devices.push(device);
    this.#byToken.set(device.pushToken.toString('hex'), device);
    return device;
  }

  byToken(tokenHex: string): SimDevice | undefined {
    return this.#byToken.get(tokenHex.toLowerCase());
  }

  async enrollAll(enrollUrlOf: (device: SimDevice, index: number) => string, concurrency = 8): Promise<void> {
    await mapLimit(this.devices, concurrency, (device, index) => device.enroll(enrollUrlOf(device, index)));
  }

  /** What APNs delivery does: wake the device that owns the token, if it is on. */
  wake(tokenHex: string): boolean {
    const device = this.byToken(tokenHex);
    if (!device || !device.online || !device.enrolled) return false;
    if (this.#running.has(device)) this.#again.add(device);
    else if (this.#running.size >= this.#maxSessions) this.#queued.add(device);
    else this.#start(device);
    return true;
  }

  #start(device: SimDevice): void {
    const run = async () => {
      do {
        this.#again.delete(device);
        this.sessions++;
        try {
          await device.connect();
        } catch (err) {
          this.sessionErrors++;
          this.lastSessionError =
            err instanceof Error ? `${err.message} ${String(err.cause ?? '')}`.trim() : String(err);
        }
      } while (this.#again.has(device));
      this.#running.delete(device);
      let next = this.#queued.values().next();
      // A device switched off while it waited for a slot stays asleep.
      while (!next.done && !next.value.online) {
        this.#queued.delete(next.value);
        next = this.#queued.values().next();
      }
      if (!next.done) {
        this.#queued.delete(next.value);
        this.#start(next.value);
      } else if (this.#running.size === 0) {
        for (const resolve of this.#drained.splice(0)) resolve();
      }
    };
    this.#running.set(device, run());
  }

  /** Sessions running or waiting for a slot. */
  get busy(): number {
    return this.#running.size + this.#queued.size;
  }

  /** Resolves when no session is running or queued (bounded: sessions end when the server has nothing more). */
  idle(): Promise<void> {
    if (this.busy === 0) return Promise.resolve();
    return new Promise((resolve) => this.#drained.push(resolve));
  }
}

/**
 * Subscribes to the push stream of `haishin fakes` (`<control>/pushes`, server-sent events) and
 * wakes the device of each pushed token, as APNs's delivery wakes a real iPad. `onEnd` is called
 * when the stream ends other than by `close()` (the fakes stopped): devices no longer wake.
 */
/** An app of the fakes' catalogue as it is now (after `POST /control/apps/:adamId/version`). */
export interface CatalogEvent {
  adamId: string;
  version: string;
  minimumOsVersion?: string;
  sizeBytes?: number;
}

export async function relayPushes(
  control: string,
  fleet: SimFleet,
  onEnd?: (reason: string) => void,
  /** A new version of an app published in the fakes' catalogue (`event: catalog`). */
  onCatalog?: (app: CatalogEvent) => void,
): Promise<{ close(): void }> {
  const abort = new AbortController();
  const res = await fetch(`${control}/pushes`, { signal: abort.signal });
  if (!res.ok || !res.body) throw new Error(`push stream ${control}/pushes: HTTP ${res.status}`);
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  void (async () => {
    let buffer = '';
    let reason = 'the stream ended';
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += decoder.decode(value, { stream: true });
        let end: number;
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          const event = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          if (event.startsWith('event: catalog\ndata: ')) {
            onCatalog?.(JSON.parse(event.slice('event: catalog\ndata: '.length)) as CatalogEvent);
            continue;
          }
          if (!event.startsWith('data: ')) continue;
          const { token } = JSON.parse(event.slice(6)) as { token: string };
          fleet.wake(token);
        }
      }
    } catch (err) {
      reason = err instanceof Error ? err.message : String(err);
    }
    if (!abort.signal.aborted) onEnd?.(reason);
  })();
  return { close: () => abort.abort() };
}

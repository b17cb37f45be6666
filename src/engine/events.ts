/**
 * What changed, as the console and `GET /api/v1/events` watch it. Published after the change is
 * stored, so a listener that reads the store sees it.
 */
export type HaishinEvent = JobEvent | DistributionEvent | DeviceEvent;

export interface JobEvent {
  type: 'job';
  jobId: string;
  distributionId: string;
  deviceId: string;
  adamId: string;
  from: string | null;
  to: string;
  reason: string | null;
  retryCount: number;
  at: string;
}

export interface DistributionEvent {
  type: 'distribution';
  distributionId: string;
  change: 'created';
  jobCount: number;
  at: string;
}

export type DeviceChange = 'enrolled' | 'checked_out' | 'deactivated' | 'moved' | 'updated' | 'wipe_sent';

export interface DeviceEvent {
  type: 'device';
  deviceId: string;
  change: DeviceChange;
  at: string;
}

/**
 * Where an event was made: `here` by this process, `elsewhere` by another process on the same
 * PostgreSQL database, relayed by `src/app/event-relay.ts` (decision 0020).
 */
export type EventOrigin = 'here' | 'elsewhere';

export type EventListener = (event: HaishinEvent, origin: EventOrigin) => void;

/**
 * Publish/subscribe of what changed. Within one process it is plain in-memory delivery. With
 * several `haishin serve` on one PostgreSQL database (DESIGN §8) the composition relays it over
 * LISTEN/NOTIFY (`src/app/event-relay.ts`, decision 0020): the events this process publishes go to
 * the other processes, and theirs come in through {@link deliver} — so a console connected to
 * any process sees every process's changes. Listeners that count or act on what this process did
 * (metrics, the relay itself) subscribe to `here` only, so nothing is counted or sent twice. The
 * stream stays a live hint (an event may be lost while the database connection is down): the
 * REST API is the source of truth.
 */
export class EventBus {
  readonly #listeners = new Map<EventListener, EventOrigin | null>();
  readonly #gapListeners = new Set<() => void>();

  /** Returns the function that unsubscribes. `only`: events of that origin alone (default: all). */
  subscribe(listener: EventListener, o: { only?: EventOrigin } = {}): () => void {
    this.#listeners.set(listener, o.only ?? null);
    return () => {
      this.#listeners.delete(listener);
    };
  }

  get listenerCount(): number {
    return this.#listeners.size;
  }

  /** A change made by this process. Never throws (see {@link #emit}). */
  publish(event: HaishinEvent): void {
    this.#emit(event, 'here');
  }

  /** A change another process made and published (the relay hands it over). Never throws. */
  deliver(event: HaishinEvent): void {
    this.#emit(event, 'elsewhere');
  }

  /**
   * Called when events made elsewhere may have been missed (the relay's connection to PostgreSQL
   * broke and came back): a watcher should read the state again. Returns the unsubscribe.
   */
  onGap(listener: () => void): () => void {
    this.#gapListeners.add(listener);
    return () => {
      this.#gapListeners.delete(listener);
    };
  }

  /** Events made elsewhere may have been missed (the relay says so). Never throws. */
  gap(): void {
    for (const listener of this.#gapListeners) {
      try {
        listener();
      } catch {
        // The listener's own problem.
      }
    }
  }

  /** A failing watcher must not undo or interrupt the work that was just stored. */
  #emit(event: HaishinEvent, origin: EventOrigin): void {
    for (const [listener, only] of this.#listeners) {
      if (only !== null && only !== origin) continue;
      try {
        listener(event, origin);
      } catch {
        // The listener's own problem; the publisher has nothing to do about it.
      }
    }
  }
}

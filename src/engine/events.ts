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

export type EventListener = (event: HaishinEvent) => void;

/**
 * In-process publish/subscribe. It reaches only the listeners of this process: with several
 * server processes on one PostgreSQL (DESIGN §8) a client sees the changes made by the node it
 * is connected to, so the stream is a live hint and the REST API stays the source of truth.
 */
export class EventBus {
  readonly #listeners = new Set<EventListener>();

  /** Returns the function that unsubscribes. */
  subscribe(listener: EventListener): () => void {
    this.#listeners.add(listener);
    return () => {
      this.#listeners.delete(listener);
    };
  }

  get listenerCount(): number {
    return this.#listeners.size;
  }

  /** Never throws: a failing watcher must not undo or interrupt the work that was just stored. */
  publish(event: HaishinEvent): void {
    for (const listener of this.#listeners) {
      try {
        listener(event);
      } catch {
        // The listener's own problem; the publisher has nothing to do about it.
      }
    }
  }
}

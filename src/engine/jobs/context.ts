import type { Clock } from '../../core/clock.ts';
import type { GroupNode } from '../../core/groups.ts';
import type { JobStatus } from '../../core/jobs.ts';
import type { Store } from '../../store/store.ts';
import { Commander, sessionGraceFor } from '../commander.ts';
import type { DeviceChange, EventBus } from '../events.ts';
import type { Pusher } from '../push.ts';
import type { VppTokens } from '../vpp-tokens.ts';

export interface EngineTimings {
  pushTimeoutMs: number;
  requestTimeoutMs: number;
  sessionTimeoutMs: number;
  /** How long after a NotNow the job is pushed again. */
  notNowRetryMs: number;
  /**
   * A device handed a job's command that has not answered for this long lost its session (a
   * broken connection, a crash): it is pushed again, at this interval, until the session deadline.
   */
  silentRepushMs: number;
  /** Between ManagedApplicationList checks while an install runs. */
  verifyEveryMs: number;
  /** Transient device errors (ASDErrorDomain 506, store busy) are retried this many times. */
  maxTransientRetries: number;
  transientBackoffMs: number;
  /** HAISHIN_OFFLINE_AFTER / HAISHIN_UNENROLLED_AFTER: when silence counts as offline / gone. */
  offlineAfterMs: number;
  unenrolledAfterMs: number;
  /** Jobs started per tick by the activation (default 500; tests use a handful). */
  activationBatch?: number;
  /** HAISHIN_INSTALLS_PER_DEVICE: jobs of one device in flight at once (default 5). */
  installsPerDevice?: number;
}

export const DEFAULT_TIMINGS: Omit<
  EngineTimings,
  'pushTimeoutMs' | 'requestTimeoutMs' | 'sessionTimeoutMs' | 'offlineAfterMs' | 'unenrolledAfterMs'
> = {
  notNowRetryMs: 5 * 60_000,
  silentRepushMs: 3 * 60_000,
  verifyEveryMs: 60_000,
  maxTransientRetries: 3,
  transientBackoffMs: 60_000,
};

export const DEFAULT_INSTALLS_PER_DEVICE = 5;

export interface EngineOptions {
  store: Store;
  clock: Clock;
  tokens: VppTokens;
  pusher: Pusher;
  /** The one that queues and pushes (shared with the device actions); one of its own if absent. */
  commander?: Commander;
  timings: EngineTimings;
  events?: EventBus;
}

/**
 * Statuses in which a job takes one of its device's slots: beyond them, the next one waits. An
 * install the device acknowledged (`executing`) is the device's own download and frees its slot:
 * the slots bound the commands a device holds unanswered, not its App Store queue (decision 0017).
 */
export const IN_FLIGHT: JobStatus[] = [
  'license_assigning',
  'push_sending',
  'retry_waiting',
  'awaiting_response',
];
/** Jobs read per step of a tick (some steps read a few times as many). */
export const BATCH = 500;

/**
 * What every part of the engine shares: the store, the clock, the VPP tokens, the commander, the
 * timings, the event bus and the number of slots per device — and the little the engine keeps
 * between calls (all the rest is in the store, so a restart resumes where it stopped): the
 * devices whose slot just freed, where the round-robins stopped, whether the restart recovery
 * ran and whether the engine is closed. Those are kept here and nowhere else.
 */
export class EngineContext {
  readonly store: Store;
  readonly clock: Clock;
  readonly tokens: VppTokens;
  readonly pusher: Pusher;
  readonly commander: Commander;
  readonly t: EngineTimings;
  readonly events: EventBus | null;
  /** HAISHIN_INSTALLS_PER_DEVICE, at least one. */
  readonly slots: number;

  /** Devices whose job left the in-flight statuses here: their next job is looked at first. */
  readonly freed = new Set<string>();
  /** Where the activation's round-robin over the waiting jobs goes on (a job seq; 0: the start). */
  activationCursor = 0;
  /** Where the taking of licences ahead for waiting jobs goes on (a job seq; 0: the start). */
  licenceAheadCursor = 0;
  /** The first tick after a (re)start ran the recovery (`recovery.ts`). */
  recovered = false;
  /** `close()` was called: no new tick, no new diagnosis, no next jobs in session. */
  closed = false;

  constructor(o: EngineOptions) {
    this.store = o.store;
    this.clock = o.clock;
    this.tokens = o.tokens;
    this.pusher = o.pusher;
    this.t = o.timings;
    this.events = o.events ?? null;
    this.commander =
      o.commander ??
      new Commander({
        queue: o.store.mdm,
        pusher: o.pusher,
        sessionGraceMs: sessionGraceFor(o.timings.sessionTimeoutMs),
      });
    this.slots = Math.max(1, o.timings.installsPerDevice ?? DEFAULT_INSTALLS_PER_DEVICE);
  }

  now(): Date {
    return this.clock.now();
  }

  deviceChanged(deviceId: string, change: DeviceChange): void {
    this.events?.publish({ type: 'device', deviceId, change, at: this.clock.now().toISOString() });
  }

  /** The group tree as `src/core/groups.ts` and `src/core/tokens.ts` read it. */
  async groupNodes(): Promise<GroupNode[]> {
    return (await this.store.groups.all()).map((g) => ({ id: g.id, parentId: g.parent_id }));
  }
}

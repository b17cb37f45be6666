import { randomUUID } from 'node:crypto';
import { managedApplicationList } from '../mdm/commands.ts';
import type { BuiltCommand } from '../mdm/commands.ts';
import type { QueueEntry } from '../mdm/ports.ts';
import type { Pusher, PushSummary } from './push.ts';

/**
 * Why a command is queued, in the order a device gets them: the one priority table. Within a
 * purpose, commands go out in the order they were queued.
 *
 * - `action`: an administrator acts on the device (lock, wipe, …): nothing else should delay it.
 * - `identity`: a renewed device identity (decision 0023): if it misses the device's expiry, the
 *   device is lost until enrolled again, so it goes before everything but an administrator's action.
 * - `facts`: someone — an administrator or the troubleshooter — waits for the device's facts.
 * - `install`: install and remove commands of jobs; several of one device go out in one session.
 * - `verify`: the check whether installs finished comes after the installs queued with it, so
 *   one ManagedApplicationList answers for all of them.
 */
export const PRIORITY = { action: 60, identity: 55, facts: 50, install: 30, verify: 20 } as const;

/**
 * A command handed out this recently and not answered means the device is in a session: it asks
 * for its next command when it answers. Past this, a device that went silent mid-session is pushed.
 * (Never more than a quarter of the session timeout: a stalled session must be woken well before
 * its jobs time out.)
 */
export const SESSION_GRACE_MS = 30_000;

export function sessionGraceFor(sessionTimeoutMs: number): number {
  return Math.max(1, Math.min(SESSION_GRACE_MS, Math.floor(sessionTimeoutMs / 4)));
}
export type Purpose = keyof typeof PRIORITY;

/** Queries that ask a device for state, never change it: the same one pending twice is pointless. */
const QUERIES = new Set([
  'ManagedApplicationList',
  'InstalledApplicationList',
  'DeviceInformation',
  'Restrictions',
  'UserList',
  'SecurityInfo',
  'ProfileList',
  'CertificateList',
]);

/** What the commander needs of the command queue (`src/store/mdm-store.ts` has it). */
export interface CommandQueue {
  enqueue(entries: readonly QueueEntry[], at: Date): Promise<void>;
  pendingRequestTypes(
    enrollmentIds: readonly string[],
    requestTypes: readonly string[],
  ): Promise<Map<string, Set<string>>>;
  dequeue(commandUuids: readonly string[]): Promise<void>;
  inSession(enrollmentIds: readonly string[], since: Date): Promise<Set<string>>;
}

export interface Recipient {
  /** The device, for the push. */
  deviceId: string;
  /** The channel the command is queued on (the device channel's enrollment id, its UDID). */
  enrollmentId: string;
}

/**
 * The single place where commands are queued for devices and devices are woken: the priority
 * of a command follows from its purpose, and a query already pending for a channel (queued,
 * or handed out and not answered) is not queued again — its answer will serve both askers.
 * Install commands bound to a job are queued by the job store in the same transaction as the
 * job's change (`JobRepo.attachCommand`) with `PRIORITY.install`.
 */
export class Commander {
  readonly #queue: CommandQueue;
  readonly #pusher: Pusher;
  readonly #sessionGraceMs: number;

  constructor(o: { queue: CommandQueue; pusher: Pusher; sessionGraceMs?: number }) {
    this.#queue = o.queue;
    this.#pusher = o.pusher;
    this.#sessionGraceMs = o.sessionGraceMs ?? SESSION_GRACE_MS;
  }

  /**
   * Queues `commands` for each recipient at the priority of `purpose`; queries the recipient
   * already has pending are skipped. Returns, per enrollment id, the request types queued now.
   * The caller decides whether to push (a device in session needs none).
   */
  async queue(
    purpose: Purpose,
    items: readonly { to: Recipient; commands: readonly BuiltCommand[] }[],
    at: Date,
  ): Promise<Map<string, string[]>> {
    const queryTypes = [
      ...new Set(items.flatMap((i) => i.commands.map((c) => c.requestType)).filter((t) => QUERIES.has(t))),
    ];
    const pending = await this.#queue.pendingRequestTypes(
      queryTypes.length > 0 ? [...new Set(items.map((i) => i.to.enrollmentId))] : [],
      queryTypes,
    );
    const entries: QueueEntry[] = [];
    const queued = new Map<string, string[]>();
    for (const { to, commands } of items) {
      const already = pending.get(to.enrollmentId) ?? new Set<string>();
      for (const command of commands) {
        if (QUERIES.has(command.requestType)) {
          if (already.has(command.requestType)) continue;
          already.add(command.requestType);
          pending.set(to.enrollmentId, already);
        }
        entries.push({ enrollmentId: to.enrollmentId, command, priority: PRIORITY[purpose] });
        queued.set(to.enrollmentId, [...(queued.get(to.enrollmentId) ?? []), command.requestType]);
      }
    }
    await this.#queue.enqueue(entries, at);
    return queued;
  }

  /**
   * Asks each device whether its installs finished: one ManagedApplicationList for all the apps it
   * manages (every job in flight on it answered at once), unless one is pending already.
   */
  async verify(recipients: readonly Recipient[], at: Date): Promise<Map<string, string[]>> {
    return this.queue(
      'verify',
      recipients.map((to) => ({ to, commands: [managedApplicationList(newCommandUuid())] })),
      at,
    );
  }

  /** Takes the commands of jobs that ended off the queues. */
  async drop(commandUuids: readonly (string | null)[]): Promise<void> {
    await this.#queue.dequeue(commandUuids.filter((u): u is string => u !== null));
  }

  /** Wakes the devices through APNs. */
  async push(deviceIds: Iterable<string>): Promise<void> {
    const unique = [...new Set(deviceIds)];
    if (unique.length > 0) await this.#pusher.push(unique);
  }

  /**
   * Wakes the recipients that are not in a session now (see {@link sessionGraceFor}); those that
   * are get the new commands with their next fetch. Returns the device ids left to their session:
   * the caller keeps them due for a push in case the session ends before the fetch.
   */
  async wake(
    recipients: readonly Recipient[],
    now: Date,
    /** A device handed nothing for this long is not in a session (default: the session grace). */
    quietForMs = this.#sessionGraceMs,
  ): Promise<Set<string>> {
    if (recipients.length === 0) return new Set();
    const busy = await this.#queue.inSession(
      recipients.map((r) => r.enrollmentId),
      new Date(now.getTime() - quietForMs),
    );
    const left = new Set(recipients.filter((r) => busy.has(r.enrollmentId)).map((r) => r.deviceId));
    await this.push(recipients.filter((r) => !left.has(r.deviceId)).map((r) => r.deviceId));
    return left;
  }

  /** Wakes one device and says in one word what APNs did: sent, not_pushable, unregistered or failed. */
  async pushOne(deviceId: string): Promise<PushWord> {
    return pushWord(await this.#pusher.push([deviceId]));
  }
}

export type PushWord = 'sent' | 'not_pushable' | 'unregistered' | 'failed';

function pushWord(summary: PushSummary): PushWord {
  if (summary.sent > 0) return 'sent';
  if (summary.notPushable > 0) return 'not_pushable';
  return summary.unregistered > 0 ? 'unregistered' : 'failed';
}

export function newCommandUuid(): string {
  return randomUUID().toUpperCase();
}

// The commander (issue 14, item 2): one priority table, a pending query never queued twice, no push
// to a device already in session.
import { describe, expect, it } from 'vitest';
import { Commander, PRIORITY, SESSION_GRACE_MS } from '../src/engine/commander.ts';
import type { CommandQueue } from '../src/engine/commander.ts';
import type { PushSummary } from '../src/engine/push.ts';
import { deviceInformation, eraseDevice, installVppApplication, restrictions } from '../src/mdm/commands.ts';
import type { QueueEntry } from '../src/mdm/ports.ts';

/** A queue in memory: each entry, and which channels have a command handed out since when. */
class MemoryQueue implements CommandQueue {
  readonly entries: QueueEntry[] = [];
  readonly handedOutAt = new Map<string, Date>();
  enqueue(entries: readonly QueueEntry[]): Promise<void> {
    this.entries.push(...entries);
    return Promise.resolve();
  }
  pendingRequestTypes(enrollmentIds: readonly string[], requestTypes: readonly string[]) {
    const out = new Map<string, Set<string>>();
    for (const e of this.entries) {
      if (!enrollmentIds.includes(e.enrollmentId) || !requestTypes.includes(e.command.requestType)) continue;
      out.set(e.enrollmentId, (out.get(e.enrollmentId) ?? new Set()).add(e.command.requestType));
    }
    return Promise.resolve(out);
  }
  dequeue(uuids: readonly string[]): Promise<void> {
    for (let i = this.entries.length - 1; i >= 0; i--)
      if (uuids.includes(this.entries[i]!.command.uuid)) this.entries.splice(i, 1);
    return Promise.resolve();
  }
  inSession(enrollmentIds: readonly string[], since: Date): Promise<Set<string>> {
    return Promise.resolve(
      new Set(enrollmentIds.filter((id) => (this.handedOutAt.get(id)?.getTime() ?? 0) > since.getTime())),
    );
  }
}

function setup() {
  const queue = new MemoryQueue();
  const pushed: string[][] = [];
  const pusher = {
    push(ids: readonly string[]): Promise<PushSummary> {
      pushed.push([...ids]);
      const summary = {
        sent: ids.length,
        unregistered: 0,
        badToken: 0,
        certificateProblem: 0,
        failed: 0,
        notPushable: 0,
      };
      return Promise.resolve(summary);
    },
  };
  return { queue, pushed, commander: new Commander({ queue, pusher }) };
}

const at = new Date('2026-12-07T10:00:00Z');
const ipad = { deviceId: 'd1', enrollmentId: 'UDID-1' };

describe('Commander', () => {
  it('gives each purpose its priority: administrator actions, facts, installs, verification', async () => {
    const { queue, commander } = setup();
    await commander.queue(
      'install',
      [{ to: ipad, commands: [installVppApplication('I1', { adamId: 1 })] }],
      at,
    );
    await commander.verify([ipad], at);
    await commander.queue('facts', [{ to: ipad, commands: [restrictions('F1')] }], at);
    await commander.queue('action', [{ to: ipad, commands: [eraseDevice('A1')] }], at);
    const byPriority = [...queue.entries]
      .sort((a, b) => b.priority - a.priority)
      .map((e) => e.command.requestType);
    expect(byPriority).toEqual([
      'EraseDevice',
      'Restrictions',
      'InstallApplication',
      'ManagedApplicationList',
    ]);
    expect(PRIORITY.install).toBeGreaterThan(PRIORITY.verify);
  });

  it('never queues a query the channel already has pending; commands that change the device always go', async () => {
    const { queue, commander } = setup();
    const other = { deviceId: 'd2', enrollmentId: 'UDID-2' };
    expect(await commander.verify([ipad], at)).toEqual(new Map([['UDID-1', ['ManagedApplicationList']]]));
    expect(await commander.verify([ipad, other], at)).toEqual(
      new Map([['UDID-2', ['ManagedApplicationList']]]),
    );
    // Two of the same query in one call count once.
    await commander.queue(
      'facts',
      [{ to: ipad, commands: [deviceInformation('F1'), deviceInformation('F2')] }],
      at,
    );
    await commander.queue(
      'install',
      [{ to: ipad, commands: [installVppApplication('I1', { adamId: 1 })] }],
      at,
    );
    await commander.queue(
      'install',
      [{ to: ipad, commands: [installVppApplication('I2', { adamId: 1 })] }],
      at,
    );
    const types = queue.entries.filter((e) => e.enrollmentId === 'UDID-1').map((e) => e.command.requestType);
    expect(types).toEqual([
      'ManagedApplicationList',
      'DeviceInformation',
      'InstallApplication',
      'InstallApplication',
    ]);
    // Answered (off the queue): the next one goes.
    await commander.drop([queue.entries[0]!.command.uuid]);
    expect((await commander.verify([ipad], at)).get('UDID-1')).toEqual(['ManagedApplicationList']);
  });

  it('wakes only devices not in a session; one handed a command long ago and silent since is woken', async () => {
    const { queue, pushed, commander } = setup();
    const busy = { deviceId: 'd2', enrollmentId: 'UDID-2' };
    const stuck = { deviceId: 'd3', enrollmentId: 'UDID-3' };
    queue.handedOutAt.set('UDID-2', new Date(at.getTime() - 1_000));
    queue.handedOutAt.set('UDID-3', new Date(at.getTime() - SESSION_GRACE_MS - 1_000));
    const left = await commander.wake([ipad, busy, stuck], at);
    expect([...left]).toEqual(['d2']);
    expect(pushed).toEqual([['d1', 'd3']]);
  });
});

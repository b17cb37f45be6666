import { describe, expect, it } from 'vitest';
import type { SimDevice } from '../src/sim/device/device.ts';
import { SimFleet } from '../src/sim/fleet.ts';

/** Just what the fleet touches of a device: its token, its state and one session. */
function fakeDevice(n: number, seen: { running: number; max: number; sessions: string[] }) {
  const device = {
    pushToken: Buffer.from([n]),
    online: true,
    enrolled: true,
    async connect() {
      seen.running++;
      seen.max = Math.max(seen.max, seen.running);
      seen.sessions.push(`d${n}`);
      await new Promise((r) => setTimeout(r, 5));
      seen.running--;
      return [];
    },
  };
  return device as unknown as SimDevice;
}

describe('SimFleet', () => {
  it('runs at most maxSessions sessions at once, queues the rest in push order, coalesces repeats', async () => {
    const seen = { running: 0, max: 0, sessions: [] as string[] };
    const fleet = new SimFleet({ maxSessions: 2 });
    const devices = [0, 1, 2, 3, 4].map((n) => fleet.add(fakeDevice(n, seen)));
    for (const d of devices) fleet.wake(d.pushToken.toString('hex'));
    fleet.wake(devices[4]!.pushToken.toString('hex')); // queued twice: one session
    fleet.wake(devices[0]!.pushToken.toString('hex')); // running: exactly one more session after
    expect(fleet.busy).toBe(5);
    await fleet.idle();
    expect(seen.max).toBe(2);
    expect(seen.sessions.sort()).toEqual(['d0', 'd0', 'd1', 'd2', 'd3', 'd4']);
    expect(fleet.busy).toBe(0);
    await fleet.idle(); // nothing running: resolves at once
  });

  it('does not wake a device that is off or not enrolled', () => {
    const seen = { running: 0, max: 0, sessions: [] as string[] };
    const fleet = new SimFleet();
    const off = fleet.add(fakeDevice(7, seen));
    (off as { online: boolean }).online = false;
    expect(fleet.wake(off.pushToken.toString('hex'))).toBe(false);
    expect(fleet.wake('ffff')).toBe(false);
    expect(fleet.busy).toBe(0);
  });
});

import { randomUUID } from 'node:crypto';
import { deviceInformation, installedApplicationList, restrictions, userList } from '../mdm/commands.ts';
import type { BuiltCommand } from '../mdm/commands.ts';
import type { QueueEntry } from '../mdm/ports.ts';
import type { DeviceRow } from '../store/device-repo.ts';
import type { Store } from '../store/store.ts';
import { PRIORITY } from './commander.ts';

/** What a device is asked to refresh what haishin knows about it; the user list on a Shared iPad only. */
export function refreshCommands(device: Pick<DeviceRow, 'is_shared_ipad'>): BuiltCommand[] {
  const builders = [deviceInformation, restrictions, installedApplicationList];
  if (device.is_shared_ipad === 1) builders.push(userList);
  return builders.map((build) => build(randomUUID().toUpperCase()));
}

/** Queues the queries that refresh what haishin knows about a device; the caller pushes. */
export async function enqueueRefresh(store: Store, deviceId: string, at: Date): Promise<BuiltCommand[]> {
  const device = await store.devices.get(deviceId);
  if (!device) return [];
  const commands = refreshCommands(device);
  await store.mdm.enqueue(
    commands.map((command) => ({ enrollmentId: device.udid, command, priority: PRIORITY.facts })),
    at,
  );
  return commands;
}

/** {@link enqueueRefresh} for many devices, a few statements per thousand devices; the caller pushes. */
export async function enqueueRefreshAll(
  store: Store,
  devices: readonly Pick<DeviceRow, 'udid' | 'is_shared_ipad'>[],
  at: Date,
): Promise<void> {
  const BATCH = 1_000;
  for (let i = 0; i < devices.length; i += BATCH) {
    const entries: QueueEntry[] = devices.slice(i, i + BATCH).flatMap((device) =>
      refreshCommands(device).map((command) => ({
        enrollmentId: device.udid,
        command,
        priority: PRIORITY.facts,
      })),
    );
    await store.mdm.enqueue(entries, at);
  }
}

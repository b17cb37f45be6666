import { randomUUID } from 'node:crypto';
import { deviceInformation, installedApplicationList, restrictions, userList } from '../mdm/commands.ts';
import type { BuiltCommand } from '../mdm/commands.ts';
import type { DeviceRow } from '../store/device-repo.ts';
import type { Commander } from './commander.ts';

/** What a device is asked to refresh what haishin knows about it; the user list on a Shared iPad only. */
export function refreshCommands(device: Pick<DeviceRow, 'is_shared_ipad'>): BuiltCommand[] {
  const builders = [deviceInformation, restrictions, installedApplicationList];
  if (device.is_shared_ipad === 1) builders.push(userList);
  return builders.map((build) => build(randomUUID().toUpperCase()));
}

/**
 * Queues, through the commander, the queries that refresh what haishin knows about a device (those
 * it has pending already are not queued twice); the queries queued now. The caller pushes.
 */
export async function enqueueRefresh(
  commander: Commander,
  device: Pick<DeviceRow, 'id' | 'udid' | 'is_shared_ipad'>,
  at: Date,
): Promise<BuiltCommand[]> {
  const commands = refreshCommands(device);
  const queued = new Set(
    (
      await commander.queue(
        'facts',
        [{ to: { deviceId: device.id, enrollmentId: device.udid }, commands }],
        at,
      )
    ).get(device.udid) ?? [],
  );
  return commands.filter((c) => queued.has(c.requestType));
}

/** {@link enqueueRefresh} for many devices, a thousand devices per call; the caller pushes. */
export async function enqueueRefreshAll(
  commander: Commander,
  devices: readonly Pick<DeviceRow, 'id' | 'udid' | 'is_shared_ipad'>[],
  at: Date,
): Promise<void> {
  const BATCH = 1_000;
  for (let i = 0; i < devices.length; i += BATCH) {
    await commander.queue(
      'facts',
      devices
        .slice(i, i + BATCH)
        .map((device) => ({
          to: { deviceId: device.id, enrollmentId: device.udid },
          commands: refreshCommands(device),
        })),
      at,
    );
  }
}

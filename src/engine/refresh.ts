import { randomUUID } from 'node:crypto';
import { deviceInformation, installedApplicationList, restrictions, userList } from '../mdm/commands.ts';
import type { BuiltCommand } from '../mdm/commands.ts';
import type { Store } from '../store/store.ts';

/** Above distribution work: someone (an administrator or the troubleshooter) is waiting for these facts. */
export const REFRESH_PRIORITY = 50;

/** Queues the queries that refresh what haishin knows about a device; the caller pushes. */
export async function enqueueRefresh(store: Store, deviceId: string, at: Date): Promise<BuiltCommand[]> {
  const device = await store.devices.get(deviceId);
  if (!device) return [];
  const builders = [deviceInformation, restrictions, installedApplicationList];
  if (device.is_shared_ipad === 1) builders.push(userList);
  const commands = builders.map((build) => build(randomUUID().toUpperCase()));
  for (const c of commands) await store.mdm.enqueue([device.udid], c, REFRESH_PRIORITY, at);
  return commands;
}

import { buildPlist } from './plist.ts';
import type { PlistDict } from './plist.ts';

/** A command ready for the queue: the request type and the full plist the device will receive. */
export interface BuiltCommand {
  uuid: string;
  requestType: string;
  payload: string;
}

export function renderCommand(uuid: string, command: PlistDict & { RequestType: string }): BuiltCommand {
  return {
    uuid,
    requestType: command.RequestType,
    payload: buildPlist({ CommandUUID: uuid, Command: command }),
  };
}

/** ManagementFlags bit 1: the app goes away with the MDM profile. */
export const REMOVE_APP_WITH_PROFILE = 1;

export interface InstallVppAppOptions {
  adamId: number;
  managementFlags?: number;
  /** Take over a copy the user installed themselves (DESIGN §6, `app.installed_unmanaged`). */
  takeOverUnmanaged?: boolean;
}

/** InstallApplication of a VPP app: PurchaseMethod 1 means a device licence, no Apple ID needed. */
export function installVppApplication(uuid: string, o: InstallVppAppOptions): BuiltCommand {
  if (!Number.isSafeInteger(o.adamId) || o.adamId <= 0) throw new Error(`invalid adamId ${o.adamId}`);
  const command: PlistDict & { RequestType: string } = {
    RequestType: 'InstallApplication',
    iTunesStoreID: o.adamId,
    Options: { PurchaseMethod: 1 },
    ManagementFlags: o.managementFlags ?? REMOVE_APP_WITH_PROFILE,
  };
  if (o.takeOverUnmanaged) command.ChangeManagementState = 'Managed';
  return renderCommand(uuid, command);
}

export function removeApplication(uuid: string, bundleId: string): BuiltCommand {
  return renderCommand(uuid, { RequestType: 'RemoveApplication', Identifier: bundleId });
}

export function managedApplicationList(uuid: string, bundleIds?: readonly string[]): BuiltCommand {
  const command: PlistDict & { RequestType: string } = { RequestType: 'ManagedApplicationList' };
  if (bundleIds && bundleIds.length > 0) command.Identifiers = [...bundleIds];
  return renderCommand(uuid, command);
}

export function installedApplicationList(
  uuid: string,
  options: { managedAppsOnly?: boolean; identifiers?: readonly string[] } = {},
): BuiltCommand {
  const command: PlistDict & { RequestType: string } = { RequestType: 'InstalledApplicationList' };
  if (options.managedAppsOnly !== undefined) command.ManagedAppsOnly = options.managedAppsOnly;
  if (options.identifiers && options.identifiers.length > 0) command.Identifiers = [...options.identifiers];
  return renderCommand(uuid, command);
}

/** The DeviceInformation queries the troubleshooter relies on (capacity, OS, Shared iPad, cellular). */
export const DEVICE_INFORMATION_QUERIES = [
  'UDID',
  'DeviceName',
  'OSVersion',
  'BuildVersion',
  'ProductName',
  'Model',
  'ModelName',
  'SerialNumber',
  'DeviceCapacity',
  'AvailableDeviceCapacity',
  'IsSupervised',
  'IsMultiUser',
  'CellularTechnology',
  'IsNetworkTethered',
  'WiFiMAC',
  'iTunesStoreAccountIsActive',
] as const;

export function deviceInformation(
  uuid: string,
  queries: readonly string[] = DEVICE_INFORMATION_QUERIES,
): BuiltCommand {
  return renderCommand(uuid, { RequestType: 'DeviceInformation', Queries: [...queries] });
}

export function restrictions(uuid: string): BuiltCommand {
  return renderCommand(uuid, { RequestType: 'Restrictions', ProfileRestrictions: true });
}

export function userList(uuid: string): BuiltCommand {
  return renderCommand(uuid, { RequestType: 'UserList' });
}

/** Remote wipe. iOS needs no options; the device leaves management once it is erased. */
export function eraseDevice(uuid: string): BuiltCommand {
  return renderCommand(uuid, { RequestType: 'EraseDevice' });
}

/**
 * InstallProfile: the profile (a `.mobileconfig`, XML plist) goes as data. haishin sends its own
 * enrollment profile again, with a renewed device identity (decision 0023).
 */
export function installProfile(uuid: string, profile: string | Uint8Array): BuiltCommand {
  const payload = typeof profile === 'string' ? Buffer.from(profile, 'utf8') : profile;
  if (payload.byteLength === 0) throw new Error('InstallProfile needs a profile');
  return renderCommand(uuid, { RequestType: 'InstallProfile', Payload: payload });
}

/**
 * Every command builder, keyed by the RequestType it produces. test/conformance-commands checks each
 * against Apple's schema, and fails when this module exports a builder not listed here or one listed
 * here has no conformance case.
 */
export const COMMAND_BUILDERS = {
  InstallApplication: installVppApplication,
  RemoveApplication: removeApplication,
  ManagedApplicationList: managedApplicationList,
  InstalledApplicationList: installedApplicationList,
  DeviceInformation: deviceInformation,
  Restrictions: restrictions,
  UserList: userList,
  EraseDevice: eraseDevice,
  InstallProfile: installProfile,
} as const satisfies { readonly [requestType: string]: (uuid: string, ...args: never[]) => BuiltCommand };

export type CommandRequestType = keyof typeof COMMAND_BUILDERS;

/**
 * What the MDM protocol layer needs from storage and tells the rest of haishin.
 * Declared here, implemented in src/store — dependencies point inward.
 */
import type { CommandResult } from './results.ts';

export interface AuthenticateFacts {
  udid: string;
  topic: string | null;
  serialNumber: string | null;
  osVersion: string | null;
  buildVersion: string | null;
  productName: string | null;
  deviceName: string | null;
  model: string | null;
  modelName: string | null;
  imei: string | null;
  meid: string | null;
}

export interface TokenUpdateFacts {
  udid: string;
  enrollmentId: string;
  /** Set for a user channel (Shared iPad user or other user enrollment). */
  user: { userId: string | null; shortName: string | null; longName: string | null } | null;
  topic: string | null;
  pushTokenHex: string;
  pushMagic: string;
  awaitingConfiguration: boolean;
}

export interface IdentityRecord {
  fingerprint: string;
  groupId: string;
  /** The device this identity was bound to at its first Authenticate, if any. */
  deviceId: string | null;
  boundUdid: string | null;
  /** When the certificate expires. */
  notAfter: Date;
}

export interface KnownDevice {
  id: string;
  udid: string;
  certFingerprint: string;
  status: 'pending' | 'enrolled' | 'unenrolled' | 'deactivated';
  /** A renewed identity haishin sent this device and has not seen yet (decision 0023). */
  pendingCertFingerprint: string | null;
  /** The identity a renewal replaced, still accepted until it expires. */
  previousCertFingerprint: string | null;
}

/** The device a command report comes from, and whether its channel has a command queued. */
export interface ReportingDevice extends KnownDevice {
  queued: boolean;
}

export interface QueuedCommand {
  uuid: string;
  requestType: string;
  /** The complete command plist, sent as the response body. */
  payload: string;
}

export interface NewCommand {
  uuid: string;
  requestType: string;
  payload: string;
}

/** One command for one channel (a device, or a user on it), with its place in the queue. */
export interface QueueEntry {
  enrollmentId: string;
  command: NewCommand;
  priority: number;
}

export interface RawMessage {
  udid: string | null;
  enrollmentId: string | null;
  endpoint: 'checkin' | 'connect';
  messageType: string;
  commandUuid: string | null;
  raw: string;
  at: Date;
}

export interface ResultRecord {
  enrollmentId: string;
  commandUuid: string;
  status: 'Acknowledged' | 'Error' | 'CommandFormatError';
  raw: string;
  errorChain: unknown[] | null;
  at: Date;
}

/** The device facts the protocol layer keeps from query results. */
export type DeviceFactKind = 'facts' | 'restrictions' | 'shared_users' | 'installed_apps' | 'managed_apps';

export interface MdmStore {
  findIdentity(fingerprint: string): Promise<IdentityRecord | null>;
  findDeviceByUdid(udid: string): Promise<KnownDevice | null>;
  /**
   * {@link findDeviceByUdid} for a command report, in the same query: whether the channel
   * `enrollmentId` has anything queued (most reports are Idles that find nothing).
   */
  findReportingDevice(udid: string, enrollmentId: string): Promise<ReportingDevice | null>;
  /**
   * Creates or refreshes the device, binds the identity, disables its channels until the
   * next TokenUpdate and clears its queue. Returns the commands it removed.
   */
  authenticate(
    facts: AuthenticateFacts,
    identity: IdentityRecord,
    at: Date,
  ): Promise<{ deviceId: string; clearedCommandUuids: string[] }>;
  tokenUpdate(deviceId: string, facts: TokenUpdateFacts, at: Date): Promise<{ firstTokenUpdate: boolean }>;
  checkOut(deviceId: string, at: Date): Promise<void>;
  /**
   * The device signed with its pending renewed identity (decision 0023): it becomes the device's
   * identity, the one it replaces stays accepted until it expires. False when it was no longer pending.
   */
  adoptRenewedIdentity(deviceId: string, fingerprint: string, at: Date): Promise<boolean>;
  touch(deviceId: string, enrollmentId: string, at: Date): Promise<void>;
  recordMessage(message: RawMessage): Promise<void>;

  /** Stores and queues the commands in one transaction; equal priorities are handed out in this order. */
  enqueue(entries: readonly QueueEntry[], at: Date): Promise<void>;
  /** The next command owed to the channel (priority, then age), marked as handed out. */
  nextCommand(enrollmentId: string, at: Date): Promise<QueuedCommand | null>;
  markNotNow(enrollmentId: string, commandUuid: string, at: Date): Promise<{ known: boolean }>;
  /** Stores the answer and takes the command off the queue; a repeated report is a no-op. */
  saveResult(result: ResultRecord): Promise<{ requestType: string | null; duplicate: boolean }>;
  saveDeviceFacts(deviceId: string, kind: DeviceFactKind, value: unknown, at: Date): Promise<void>;
}

export interface CommandReport {
  deviceId: string;
  enrollmentId: string;
  commandUuid: string;
  requestType: string | null;
  status: 'Acknowledged' | 'Error' | 'CommandFormatError' | 'NotNow';
  /** The answer as typed values (src/mdm/results.ts): what the engine reads. */
  result: CommandResult;
  /** The answer as received, for evidence and support bundles. */
  report: Record<string, unknown>;
  raw: string;
  at: Date;
}

/** What the engine hears from devices. Every method is optional. */
export interface MdmListener {
  onAuthenticate?(deviceId: string, clearedCommandUuids: string[]): void | Promise<void>;
  onTokenUpdate?(deviceId: string, enrollmentId: string, first: boolean): void | Promise<void>;
  onCheckOut?(deviceId: string): void | Promise<void>;
  onCommandReport?(report: CommandReport): void | Promise<void>;
  /** A queued command was handed to the device in a response body. */
  onCommandSent?(
    deviceId: string,
    enrollmentId: string,
    commandUuid: string,
    requestType: string,
  ): void | Promise<void>;
}

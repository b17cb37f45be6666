import type { Clock } from '../core/clock.ts';
import { parsePlistDict, PlistError, PlistReal } from './plist.ts';
import type { PlistDict, PlistValue } from './plist.ts';
import { parseCommandResult } from './results.ts';
import type {
  AuthenticateFacts,
  DeviceFactKind,
  KnownDevice,
  MdmListener,
  ReportingDevice,
  MdmStore,
  TokenUpdateFacts,
} from './ports.ts';

type SignatureCheck = { ok: true; fingerprintSha256: string } | { ok: false; reason: string };

/** The signature check the service needs; src/mdm/identity implements it (in the thread pool or not). */
export interface SignatureVerifier {
  verify(body: Uint8Array, header: string | undefined, now: Date): SignatureCheck | Promise<SignatureCheck>;
}

export interface MdmResponse {
  status: 200 | 400 | 410;
  body: string;
  /** Why a request was refused or what was sent, for the log. */
  note: string;
  contentType?: string;
  /**
   * The message's MessageType (check-in) or Status (command report) as the device sent it; null
   * when the body was not read that far (bad signature, unreadable plist). For metrics and logs.
   */
  messageType?: string | null;
}

/** What the HTTP routes need of the service (metrics wrap it, see src/app/metrics.ts). */
export interface MdmHandler {
  handle(
    endpoint: 'checkin' | 'connect',
    body: Uint8Array,
    signature: string | undefined,
  ): Promise<MdmResponse>;
}

/** Shared iPad user channels use this fixed UserID (DESIGN §6). */
export const SHARED_IPAD_USER_ID = 'FFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF';

const REPORT_STATUSES = new Set(['Idle', 'Acknowledged', 'Error', 'CommandFormatError', 'NotNow']);

/** Command results whose payload haishin keeps as device facts. */
const FACT_KEYS: Record<string, { kind: DeviceFactKind; key: string }> = {
  DeviceInformation: { kind: 'facts', key: 'QueryResponses' },
  Restrictions: { kind: 'restrictions', key: 'GlobalRestrictions' },
  UserList: { kind: 'shared_users', key: 'Users' },
  InstalledApplicationList: { kind: 'installed_apps', key: 'InstalledApplicationList' },
  ManagedApplicationList: { kind: 'managed_apps', key: 'ManagedApplicationList' },
};

class Refusal extends Error {}

export interface MdmServiceOptions {
  store: MdmStore;
  verifier: SignatureVerifier;
  clock: Clock;
  listener?: MdmListener;
  maxBodyBytes: number;
}

/**
 * The check-in and command channels of Apple's MDM protocol, independent of HTTP.
 * Every refusal is a 400: a 401 would make an enrolled device unenroll itself.
 */
export class MdmService implements MdmHandler {
  readonly #o: MdmServiceOptions;

  constructor(options: MdmServiceOptions) {
    this.#o = options;
  }

  /** `PUT /mdm/checkin` and `PUT /mdm/connect`: the message itself says which channel it is. */
  async handle(
    endpoint: 'checkin' | 'connect',
    body: Uint8Array,
    signature: string | undefined,
  ): Promise<MdmResponse> {
    let messageType: string | null = null;
    try {
      const at = this.#o.clock.now();
      const check = await this.#o.verifier.verify(body, signature, at);
      if (!check.ok) throw new Refusal(`signature refused: ${check.reason}`);
      const message = this.#parse(body);
      if (typeof message.MessageType === 'string') {
        const raw = Buffer.from(body).toString('utf8');
        messageType = message.MessageType;
        return { ...(await this.#checkin(message, raw, check.fingerprintSha256, at)), messageType };
      }
      if (typeof message.Status === 'string') {
        messageType = message.Status;
        return { ...(await this.#report(message, body, check.fingerprintSha256, at, endpoint)), messageType };
      }
      throw new Refusal('the plist has neither MessageType nor Status');
    } catch (err) {
      if (err instanceof Refusal) return { status: 400, body: '', note: err.message, messageType };
      throw err;
    }
  }

  #parse(body: Uint8Array): PlistDict {
    if (body.byteLength === 0) throw new Refusal('empty body');
    if (body.byteLength > this.#o.maxBodyBytes) {
      throw new Refusal(`body of ${body.byteLength} bytes exceeds the limit of ${this.#o.maxBodyBytes}`);
    }
    try {
      return parsePlistDict(body, { maxBytes: this.#o.maxBodyBytes });
    } catch (err) {
      if (err instanceof PlistError) throw new Refusal(`unreadable plist: ${err.message}`);
      throw err;
    }
  }

  async #checkin(message: PlistDict, raw: string, fingerprint: string, at: Date): Promise<MdmResponse> {
    const type = message.MessageType as string;
    const udid = requiredString(message, 'UDID');
    const store = this.#o.store;
    const record = async (enrollmentId: string | null) =>
      store.recordMessage({
        udid,
        enrollmentId,
        endpoint: 'checkin',
        messageType: type,
        commandUuid: null,
        raw,
        at,
      });

    if (type === 'Authenticate') {
      const identity = await store.findIdentity(fingerprint);
      if (!identity)
        throw new Refusal('the signing certificate was not issued by this haishin for enrollment');
      if (identity.boundUdid !== null && identity.boundUdid !== udid) {
        throw new Refusal(
          `the signing certificate is bound to another device (${identity.boundUdid}), not ${udid}`,
        );
      }
      if (identity.boundUdid === udid) {
        // iOS authenticates again once it has replaced its MDM profile in place with a renewed
        // identity (decision 0023): the same enrollment goes on — no queue to clear, no jobs to reset.
        const known = await store.findDeviceByUdid(udid);
        if (known && known.status === 'enrolled' && isRenewal(known, fingerprint)) {
          if (fingerprint === known.pendingCertFingerprint)
            await store.adoptRenewedIdentity(known.id, fingerprint, at);
          await store.touch(known.id, udid, at);
          await record(udid);
          return { status: 200, body: '', note: `Authenticate ${udid} with its renewed identity` };
        }
      }
      const { deviceId, clearedCommandUuids } = await store.authenticate(
        authenticateFacts(message, udid),
        identity,
        at,
      );
      await record(udid);
      await this.#o.listener?.onAuthenticate?.(deviceId, clearedCommandUuids);
      return { status: 200, body: '', note: `Authenticate ${udid}` };
    }

    const device = await this.#boundDevice(udid, fingerprint, at);
    switch (type) {
      case 'TokenUpdate': {
        const facts = tokenUpdateFacts(message, udid);
        const { firstTokenUpdate } = await store.tokenUpdate(device.id, facts, at);
        await record(facts.enrollmentId);
        await this.#o.listener?.onTokenUpdate?.(device.id, facts.enrollmentId, firstTokenUpdate);
        return { status: 200, body: '', note: `TokenUpdate ${facts.enrollmentId}` };
      }
      case 'CheckOut':
        await store.checkOut(device.id, at);
        await record(udid);
        await this.#o.listener?.onCheckOut?.(device.id);
        return { status: 200, body: '', note: `CheckOut ${udid}` };
      case 'UserAuthenticate':
        // haishin does not run user-channel authentication; 410 tells the device to go on without it.
        await record(udid);
        return { status: 410, body: '', note: `UserAuthenticate ${udid} declined` };
      default:
        await record(udid);
        return { status: 200, body: '', note: `check-in ${type} ignored` };
    }
  }

  async #report(
    message: PlistDict,
    body: Uint8Array,
    fingerprint: string,
    at: Date,
    endpoint: 'checkin' | 'connect',
  ): Promise<MdmResponse> {
    const status = message.Status as string;
    if (!REPORT_STATUSES.has(status)) throw new Refusal(`unknown Status "${status}"`);
    const udid = requiredString(message, 'UDID');
    const enrollmentId = enrollmentIdOf(message, udid);
    const device = await this.#boundReportingDevice(udid, enrollmentId, fingerprint, at);
    const commandUuid = typeof message.CommandUUID === 'string' ? message.CommandUUID : null;
    const store = this.#o.store;
    // Committed with the other devices' touches of this moment (group commit) and awaited before
    // answering; an Idle looks up its next command meanwhile, any other report waits for it first.
    const touched = store.touch(device.id, enrollmentId, at);
    touched.catch(() => {});

    if (status !== 'Idle') {
      await touched;
      // An Idle says only "I am here, anything for me?": last_seen_at keeps that, and a raw row per
      // poll would grow without bound (issue 15). Every other report is kept as received.
      const raw = Buffer.from(body).toString('utf8');
      await store.recordMessage({ udid, enrollmentId, endpoint, messageType: status, commandUuid, raw, at });
      if (!commandUuid) throw new Refusal(`Status ${status} without CommandUUID`);
      // Parsed once: the engine reads these typed values, never the plist's field names.
      const parsed = parseCommandResult(message);
      if (!parsed) throw new Refusal(`Status ${status} is not an answer to a command`);
      if (status === 'NotNow') {
        const { known } = await store.markNotNow(enrollmentId, commandUuid, at);
        if (known) {
          await this.#o.listener?.onCommandReport?.({
            deviceId: device.id,
            enrollmentId,
            commandUuid,
            requestType: null,
            status,
            result: parsed,
            report: message,
            raw,
            at,
          });
        }
        // After NotNow the device expects nothing more in this session; it polls again by itself.
        return { status: 200, body: '', note: `NotNow ${commandUuid}` };
      }
      const errorChain = Array.isArray(message.ErrorChain) ? message.ErrorChain : null;
      const result = status as 'Acknowledged' | 'Error' | 'CommandFormatError';
      const saved = await store.saveResult({
        enrollmentId,
        commandUuid,
        status: result,
        raw,
        errorChain,
        at,
      });
      if (!saved.duplicate) {
        if (result === 'Acknowledged' && saved.requestType)
          await this.#keepFacts(device.id, saved.requestType, message, at);
        await this.#o.listener?.onCommandReport?.({
          deviceId: device.id,
          enrollmentId,
          commandUuid,
          requestType: saved.requestType,
          status: result,
          result: parsed,
          report: message,
          raw,
          at,
        });
      }
    }

    // An Idle whose channel had nothing queued a moment ago gets the empty answer without asking again.
    const next = status === 'Idle' && !device.queued ? null : await store.nextCommand(enrollmentId, at);
    await touched;
    if (!next) return { status: 200, body: '', note: `${status}: nothing to do` };
    await this.#o.listener?.onCommandSent?.(device.id, enrollmentId, next.uuid, next.requestType);
    return {
      status: 200,
      body: next.payload,
      contentType: 'application/xml; charset=utf-8',
      note: `${status}: sent ${next.requestType} ${next.uuid}`,
    };
  }

  async #boundDevice(udid: string, fingerprint: string, at: Date): Promise<KnownDevice> {
    return this.#adopt(
      checkBinding(udid, fingerprint, await this.#o.store.findDeviceByUdid(udid)),
      fingerprint,
      at,
    );
  }

  async #boundReportingDevice(
    udid: string,
    enrollmentId: string,
    fingerprint: string,
    at: Date,
  ): Promise<ReportingDevice> {
    const device = await this.#o.store.findReportingDevice(udid, enrollmentId);
    return this.#adopt(checkBinding(udid, fingerprint, device), fingerprint, at);
  }

  /** The first message signed by a device's renewed identity makes it the device's identity (decision 0023). */
  async #adopt<D extends KnownDevice>(device: D, fingerprint: string, at: Date): Promise<D> {
    if (fingerprint !== device.pendingCertFingerprint) return device;
    await this.#o.store.adoptRenewedIdentity(device.id, fingerprint, at);
    return {
      ...device,
      previousCertFingerprint: device.certFingerprint,
      certFingerprint: fingerprint,
      pendingCertFingerprint: null,
    };
  }

  async #keepFacts(deviceId: string, requestType: string, message: PlistDict, at: Date): Promise<void> {
    const fact = FACT_KEYS[requestType];
    if (!fact) return;
    const value =
      message[fact.key] ?? (fact.kind === 'restrictions' ? message.ProfileRestrictions : undefined);
    if (value === undefined) return;
    await this.#o.store.saveDeviceFacts(deviceId, fact.kind, toJsonValue(value), at);
  }
}

/**
 * An Authenticate signed by the identity a renewal sent the device (still pending, or promoted by
 * the acknowledgement since — the replaced one is then still listed) belongs to that renewal.
 */
function isRenewal(device: KnownDevice, fingerprint: string): boolean {
  return (
    fingerprint === device.pendingCertFingerprint ||
    (fingerprint === device.certFingerprint && device.previousCertFingerprint !== null)
  );
}

/**
 * The binding of DESIGN §6: a device speaks only with the certificate it authenticated with — or,
 * during a renewal (decision 0023), with the renewed identity haishin issued for this very device,
 * or the one that renewal replaced until it expires (the signature check refuses expired ones).
 */
function checkBinding<D extends KnownDevice>(udid: string, fingerprint: string, device: D | null): D {
  if (!device) throw new Refusal(`unknown device ${udid}: it must Authenticate first`);
  if (
    device.certFingerprint !== fingerprint &&
    device.pendingCertFingerprint !== fingerprint &&
    device.previousCertFingerprint !== fingerprint
  ) {
    throw new Refusal(`the signing certificate is not the one device ${udid} authenticated with`);
  }
  return device;
}

function requiredString(message: PlistDict, key: string): string {
  const value = message[key];
  if (typeof value !== 'string' || value.length === 0) throw new Refusal(`missing ${key}`);
  return value;
}

function optionalString(message: PlistDict, key: string): string | null {
  const value = message[key];
  return typeof value === 'string' && value.length > 0 ? value : null;
}

/**
 * The command channel a message belongs to: the device (its UDID) or a user on it.
 * A Shared iPad user channel always has the same UserID, so the short name tells users apart.
 */
export function enrollmentIdOf(message: PlistDict, udid: string): string {
  const userId = optionalString(message, 'UserID');
  if (!userId) return udid;
  const shortName = optionalString(message, 'UserShortName');
  if (userId === SHARED_IPAD_USER_ID && shortName) return `${udid}:${shortName}`;
  return `${udid}:${userId}`;
}

function authenticateFacts(message: PlistDict, udid: string): AuthenticateFacts {
  return {
    udid,
    topic: optionalString(message, 'Topic'),
    serialNumber: optionalString(message, 'SerialNumber'),
    osVersion: optionalString(message, 'OSVersion'),
    buildVersion: optionalString(message, 'BuildVersion'),
    productName: optionalString(message, 'ProductName'),
    deviceName: optionalString(message, 'DeviceName'),
    model: optionalString(message, 'Model'),
    modelName: optionalString(message, 'ModelName'),
    imei: optionalString(message, 'IMEI'),
    meid: optionalString(message, 'MEID'),
  };
}

function tokenUpdateFacts(message: PlistDict, udid: string): TokenUpdateFacts {
  const token = message.Token;
  if (!(token instanceof Uint8Array) || token.byteLength === 0)
    throw new Refusal('TokenUpdate without Token data');
  const pushMagic = requiredString(message, 'PushMagic');
  const userId = optionalString(message, 'UserID');
  return {
    udid,
    enrollmentId: enrollmentIdOf(message, udid),
    user: userId
      ? {
          userId,
          shortName: optionalString(message, 'UserShortName'),
          longName: optionalString(message, 'UserLongName'),
        }
      : null,
    topic: optionalString(message, 'Topic'),
    pushTokenHex: Buffer.from(token).toString('hex'),
    pushMagic,
    awaitingConfiguration: message.AwaitingConfiguration === true,
  };
}

/** Plist values as JSON: data as base64, dates as ISO text, reals as numbers. */
export function toJsonValue(value: PlistValue): unknown {
  if (value instanceof Date) return value.toISOString();
  if (value instanceof Uint8Array) return Buffer.from(value).toString('base64');
  if (typeof value === 'bigint') return value.toString();
  if (Array.isArray(value)) return value.map(toJsonValue);
  if (value instanceof PlistReal) return value.value;
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [key, item] of Object.entries(value as PlistDict)) out[key] = toJsonValue(item);
    return out;
  }
  return value;
}

import { randomBytes, randomUUID, X509Certificate } from 'node:crypto';
import { systemClock } from '../../core/clock.ts';
import type { Clock } from '../../core/clock.ts';
import { pkcs12ToIdentity } from '../../mdm/identity/ca.ts';
import { buildPlist, parsePlistDict, real } from '../../mdm/plist.ts';
import type { PlistDict, PlistValue } from '../../mdm/plist.ts';
import type { CertAndKey } from '../../mdm/identity/ca.ts';
import { scepEnroll } from './scep-client.ts';
import { CmsSigner } from './signer.ts';

/** What a simulated iPad is: the facts it reports and the state it keeps. */
export interface SimDeviceSpec {
  udid?: string;
  serialNumber?: string;
  deviceName?: string;
  productName?: string;
  model?: string;
  modelName?: string;
  osVersion?: string;
  buildVersion?: string;
  capacityGb?: number;
  availableGb?: number;
  cellular?: boolean;
  /**
   * On Wi-Fi (default). A cellular iPad without Wi-Fi downloads apps over cellular data only up to
   * Apple's limit (200 MB on iOS 13 and later, 150 MB before): larger ones wait for Wi-Fi.
   */
  wifi?: boolean;
  /**
   * The network lets the iPad reach Apple's servers (default). false: a network that blocks the App
   * Store (a firewall, a proxy that drops Apple's hosts): installs are accepted and stay `Installing`,
   * never downloaded — while MDM and push, on haishin's own host, keep working.
   */
  appleReachable?: boolean;
  /**
   * What the iPad does with InstallApplication for an app it already manages at another version
   * than the store's (an update): `apply` (default) installs the store's version; `ignore` keeps
   * the old one and goes on reporting it `Managed` (an app in use, an update iOS did not start);
   * `reject` reports `UpdateRejected` once (the user declined the update), then `Managed` at the
   * old version. A new version that needs a newer iOS is never installed: the old one stays.
   */
  updates?: 'apply' | 'ignore' | 'reject';
  /**
   * How long an app takes to download and install once the iPad acknowledged InstallApplication,
   * by the device's clock (default 0: `Managed` at once). Meanwhile the app is `Installing` in the
   * managed and installed lists. A real iPad does not check in when a download ends: the server
   * sees it at its next ManagedApplicationList.
   */
  downloadMs?: number;
  /**
   * Downloads running at once (default: no limit, every acknowledged app downloads in parallel).
   * The others wait their turn, `Installing`, in the order they were acknowledged.
   */
  downloadConcurrency?: number;
  supervised?: boolean;
  sharedIpad?: boolean;
  users?: { shortName: string; loggedIn: boolean }[];
  restrictions?: { ratingApps?: number; allowListedAppBundleIDs?: string[]; blockedAppBundleIDs?: string[] };
  installedApps?: SimApp[];
}

export interface SimApp {
  bundleId: string;
  name: string;
  version: string;
  sizeBytes: number;
  /** Managed by MDM (and through which adamId), or installed by the user. */
  managedAdamId?: number;
  managedStatus?: string;
  /** The app needs at least this iOS version (what the App Store checks at install time). */
  minimumOsVersion?: string;
  /** Accepted but waiting to download (too large for cellular data, no Wi-Fi). */
  downloadWaiting?: boolean;
  /** Downloading: installed (`Managed`) at this time by the device's clock, ms since the epoch. */
  downloadEndsAt?: number;
}

/** Apple's cellular download limit (DESIGN §4), in decimal bytes as Apple states it. */
function cellularLimitBytes(osVersion: string): number {
  return Number(osVersion.split('.')[0]) >= 13 ? 200e6 : 150e6;
}

/** A profile iOS refuses to install (simulated: the domain iOS uses for profile installation). */
function profileError(description: string): ErrorChainItem {
  return {
    ErrorCode: 4001,
    ErrorDomain: 'MCInstallationErrorDomain',
    LocalizedDescription: `Profile Installation Failed: ${description}`,
    USEnglishDescription: `Profile Installation Failed: ${description}`,
  };
}

/** ManagedApplicationList statuses a device reports once and then forgets (DESIGN §6). */
const ONE_SHOT_STATUSES = new Set(['Failed', 'UserRejected', 'ManagementRejected']);

function olderThan(version: string, minimum: string): boolean {
  const a = version.split('.').map(Number);
  const b = minimum.split('.').map(Number);
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    const d = (a[i] ?? 0) - (b[i] ?? 0);
    if (d !== 0) return d < 0;
  }
  return false;
}

/** The App Store's number for an app build: stable per bundle id and version, in the range Apple uses. */
function externalVersionId(app: SimApp): number {
  let hash = 0x811c9dc5;
  for (const c of `${app.bundleId}@${app.version}`)
    hash = Math.imul(hash ^ c.charCodeAt(0), 0x01000193) >>> 0;
  return 800_000_000 + (hash % 100_000_000);
}

export interface ErrorChainItem {
  ErrorCode: number;
  ErrorDomain: string;
  LocalizedDescription: string;
  USEnglishDescription?: string;
}

/** How the device answers a request type. */
export type Behaviour =
  | { kind: 'acknowledge' }
  | { kind: 'error'; chain: ErrorChainItem[]; rejectionReason?: string }
  | { kind: 'not_now' }
  | { kind: 'silent' }
  | { kind: 'format_error' };

export interface SimDeviceOptions {
  spec?: SimDeviceSpec;
  /** adamId → the app the store would install. */
  catalog?: ReadonlyMap<number, Omit<SimApp, 'managedAdamId' | 'managedStatus'>>;
  fetch?: typeof fetch;
  /** The device's clock (default: the real one): download times and the signing time of its messages. */
  clock?: Clock;
}

interface Enrolled {
  checkInUrl: string;
  serverUrl: string;
  topic: string;
  signer: CmsSigner;
  /** The enrollment profile's PayloadIdentifier: an InstallProfile with the same one replaces it. */
  profileIdentifier: string;
  /** The identity certificate's notAfter, as the device's keychain shows it. */
  identityNotAfter: Date;
  /** How many times the MDM profile was replaced in place (identity renewals). */
  renewals: number;
  /** Replaced and not announced yet: iOS authenticates again with the new identity. */
  reauthenticate: boolean;
}

/** The MDM payload and the identity it names in an enrollment profile, as Settings reads them. */
function readEnrollmentProfile(
  profile: PlistDict,
  /** Identities already obtained through SCEP, by the SCEP payload's UUID (decision 0024). */
  scepKeys?: ReadonlyMap<string, CertAndKey>,
): {
  mdm: PlistDict;
  keys: ReturnType<typeof pkcs12ToIdentity>;
} | null {
  const payloads = (Array.isArray(profile.PayloadContent) ? profile.PayloadContent : []) as PlistDict[];
  const mdm = payloads.find((p) => p.PayloadType === 'com.apple.mdm');
  if (!mdm) return null;
  const identity = payloads.find((p) => p.PayloadUUID === mdm.IdentityCertificateUUID);
  // A SCEP payload (decision 0024) is run by installProfile, which may talk to the network.
  if (identity?.PayloadType === 'com.apple.security.scep') {
    const keys = scepKeys?.get(String(identity.PayloadUUID));
    if (!keys) throw new Error('the SCEP payload obtained no certificate');
    return { mdm, keys };
  }
  if (!identity || !(identity.PayloadContent instanceof Uint8Array))
    throw new Error('the profile has no identity payload');
  return { mdm, keys: pkcs12ToIdentity(identity.PayloadContent, String(identity.Password ?? '')) };
}

export interface ExchangeLog {
  sent: string;
  status: number;
  command: PlistDict | null;
}

/**
 * A simulated iPad speaking the real MDM protocol over HTTP: it enrolls from a downloaded
 * profile, signs every message with its identity (CMS), and answers commands from its own state.
 * It keeps little memory so thousands fit in one process.
 */
export class SimDevice {
  readonly udid: string;
  readonly serialNumber: string;
  readonly spec: Required<Omit<SimDeviceSpec, 'restrictions' | 'installedApps' | 'users'>> &
    Pick<SimDeviceSpec, 'restrictions'>;
  users: { shortName: string; loggedIn: boolean }[];
  apps: Map<string, SimApp>;
  readonly behaviours = new Map<string, Behaviour>();
  readonly pushToken = randomBytes(32);
  pushMagic = randomUUID().toUpperCase();
  /** An iPad that is off or out of network ignores pushes (the fleet does not wake it). */
  online = true;
  /** Every request type received, in order — tests read it. */
  readonly received: string[] = [];
  #enrolled: Enrolled | null = null;
  /** Identities obtained through SCEP for an InstallProfile being answered, by payload UUID. */
  readonly #scepKeys = new Map<string, CertAndKey>();
  readonly #catalog: ReadonlyMap<number, Omit<SimApp, 'managedAdamId' | 'managedStatus'>>;
  readonly #fetch: typeof fetch;
  readonly #clock: Clock;
  /** When each download lane is free again (ms), with a `downloadConcurrency` limit. */
  readonly #lanes: number[] = [];

  constructor(options: SimDeviceOptions = {}) {
    const s = options.spec ?? {};
    this.udid = s.udid ?? randomUUID().toUpperCase();
    this.serialNumber = s.serialNumber ?? `SIM${randomBytes(5).toString('hex').toUpperCase()}`.slice(0, 12);
    this.spec = {
      udid: this.udid,
      serialNumber: this.serialNumber,
      deviceName: s.deviceName ?? `iPad ${this.serialNumber.slice(-4)}`,
      productName: s.productName ?? 'iPad13,18',
      model: s.model ?? 'MK2K3J/A',
      modelName: s.modelName ?? 'iPad',
      osVersion: s.osVersion ?? '18.1',
      buildVersion: s.buildVersion ?? '22B83',
      capacityGb: s.capacityGb ?? 64,
      availableGb: s.availableGb ?? 40,
      cellular: s.cellular ?? false,
      wifi: s.wifi ?? true,
      appleReachable: s.appleReachable ?? true,
      updates: s.updates ?? 'apply',
      downloadMs: s.downloadMs ?? 0,
      downloadConcurrency: s.downloadConcurrency ?? Infinity,
      supervised: s.supervised ?? true,
      sharedIpad: s.sharedIpad ?? false,
      restrictions: s.restrictions,
    };
    this.users = s.users ?? [];
    this.apps = new Map((s.installedApps ?? []).map((a) => [a.bundleId, a]));
    this.#catalog = options.catalog ?? new Map();
    this.#fetch = options.fetch ?? fetch;
    this.#clock = options.clock ?? systemClock;
  }

  get enrolled(): boolean {
    return this.#enrolled !== null;
  }

  get topic(): string | null {
    return this.#enrolled?.topic ?? null;
  }

  /** Downloads the enrollment profile and installs its identity, as Settings does. */
  async installProfile(enrollUrl: string): Promise<void> {
    const response = await this.#fetch(enrollUrl);
    const text = await response.text();
    if (response.status !== 200)
      throw new Error(`enrollment profile download failed: HTTP ${response.status} ${text}`);
    const profile = parsePlistDict(text);
    const read = (await this.#scepIdentity(profile)) ?? readEnrollmentProfile(profile);
    if (!read) throw new Error('the profile has no com.apple.mdm payload');
    const { mdm, keys } = read;
    this.#enrolled = {
      checkInUrl: String(mdm.CheckInURL),
      serverUrl: String(mdm.ServerURL),
      topic: String(mdm.Topic),
      signer: new CmsSigner(keys, { now: () => this.#clock.now() }),
      profileIdentifier: String(profile.PayloadIdentifier),
      identityNotAfter: new Date(new X509Certificate(keys.certPem).validTo),
      renewals: 0,
      reauthenticate: false,
    };
  }

  /**
   * A profile whose MDM identity is a `com.apple.security.scep` payload: the iPad makes its key and
   * runs the SCEP exchange against the payload's URL, as iOS does (decision 0024). Null otherwise.
   */
  async #scepIdentity(profile: PlistDict): Promise<{ mdm: PlistDict; keys: CertAndKey } | null> {
    const payloads = (Array.isArray(profile.PayloadContent) ? profile.PayloadContent : []) as PlistDict[];
    const mdm = payloads.find((p) => p.PayloadType === 'com.apple.mdm');
    const identity = mdm && payloads.find((p) => p.PayloadUUID === mdm.IdentityCertificateUUID);
    if (!mdm || identity?.PayloadType !== 'com.apple.security.scep') return null;
    const keys = await scepEnroll(identity, { fetch: this.#fetch, now: this.#clock.now() });
    return { mdm, keys };
  }

  /**
   * An InstallProfile whose profile has a SCEP payload (a renewal, decision 0024): the iPad runs the
   * SCEP exchange while it installs the profile, before it answers. A failed exchange leaves no
   * identity, and the InstallProfile is answered with an error.
   */
  async #runScep(envelope: PlistDict): Promise<void> {
    const command = (envelope.Command ?? {}) as PlistDict;
    if (command.RequestType !== 'InstallProfile' || !(command.Payload instanceof Uint8Array)) return;
    if (this.behaviours.has('InstallProfile')) return;
    let payload: PlistDict | undefined;
    try {
      const profile = parsePlistDict(Buffer.from(command.Payload).toString('utf8'));
      const payloads = (Array.isArray(profile.PayloadContent) ? profile.PayloadContent : []) as PlistDict[];
      payload = payloads.find((p) => p.PayloadType === 'com.apple.security.scep');
    } catch {
      return;
    }
    if (!payload) return;
    try {
      const keys = await scepEnroll(payload, { fetch: this.#fetch, now: this.#clock.now() });
      this.#scepKeys.set(String(payload.PayloadUUID), keys);
    } catch {
      // Answered as a profile that cannot be installed (readEnrollmentProfile finds no identity).
    }
  }

  /** When the identity this iPad signs with expires (null before enrollment). */
  get identityNotAfter(): Date | null {
    return this.#enrolled?.identityNotAfter ?? null;
  }

  /** How many times its MDM profile was replaced in place by an InstallProfile (identity renewals). */
  get identityRenewals(): number {
    return this.#enrolled?.renewals ?? 0;
  }

  /**
   * InstallProfile of an enrollment profile, as iOS does it: the MDM profile installed with the same
   * PayloadIdentifier, server URL and topic is replaced in place — its new identity signs everything
   * from the acknowledgement on. Another MDM profile cannot be installed next to it. Returns the
   * refusal, or null when the profile was installed (MDM or not).
   */
  #installProfileCommand(command: PlistDict): ErrorChainItem | null {
    const data = command.Payload;
    if (!(data instanceof Uint8Array)) return profileError('the command carries no profile');
    let profile: PlistDict;
    let read: ReturnType<typeof readEnrollmentProfile>;
    try {
      profile = parsePlistDict(Buffer.from(data).toString('utf8'));
      read = readEnrollmentProfile(profile, this.#scepKeys);
    } catch (err) {
      return profileError(`the profile cannot be read: ${(err as Error).message}`);
    }
    if (!read) return null;
    const current = this.#need();
    if (
      String(profile.PayloadIdentifier) !== current.profileIdentifier ||
      String(read.mdm.ServerURL) !== current.serverUrl ||
      String(read.mdm.Topic) !== current.topic
    ) {
      return profileError('a device management profile is already installed on this device');
    }
    this.#enrolled = {
      ...current,
      checkInUrl: String(read.mdm.CheckInURL),
      signer: new CmsSigner(read.keys, { now: () => this.#clock.now() }),
      identityNotAfter: new Date(new X509Certificate(read.keys.certPem).validTo),
      renewals: current.renewals + 1,
      reauthenticate: true,
    };
    return null;
  }

  /** Profile installation end to end: download, Authenticate, TokenUpdate (and one per logged-in Shared iPad user). */
  async enroll(enrollUrl: string): Promise<void> {
    await this.installProfile(enrollUrl);
    const auth = await this.authenticate();
    if (auth !== 200) throw new Error(`simulated device ${this.udid}: Authenticate answered HTTP ${auth}`);
    const token = await this.tokenUpdate();
    if (token !== 200) throw new Error(`simulated device ${this.udid}: TokenUpdate answered HTTP ${token}`);
    if (this.spec.sharedIpad) {
      for (const user of this.users) if (user.loggedIn) await this.userTokenUpdate(user.shortName);
    }
  }

  /**
   * As iOS sends it: DeviceName, Model and ModelName are macOS-only in an Authenticate (Apple's
   * schema, and real iPad captures); an iPad tells them in DeviceInformation.
   */
  authenticate(): Promise<number> {
    return this.checkIn({
      MessageType: 'Authenticate',
      Topic: this.#need().topic,
      UDID: this.udid,
      SerialNumber: this.serialNumber,
      OSVersion: this.spec.osVersion,
      BuildVersion: this.spec.buildVersion,
      ProductName: this.spec.productName,
      // A cellular iPad has a modem identity (Apple: IMEI, where the device has one).
      ...(this.spec.cellular ? { IMEI: this.#imei() } : {}),
    });
  }

  /** A stable 15-digit IMEI-like number for this device. */
  #imei(): string {
    const digits = Buffer.from(this.udid).reduce((acc, b) => (acc * 31 + b) % 1e13, 7);
    return `35${String(digits).padStart(13, '0')}`;
  }

  tokenUpdate(): Promise<number> {
    return this.checkIn({
      MessageType: 'TokenUpdate',
      Topic: this.#need().topic,
      UDID: this.udid,
      Token: this.pushToken,
      PushMagic: this.pushMagic,
      AwaitingConfiguration: false,
    });
  }

  /** A Shared iPad user's channel (UserID is the fixed all-F value; iOS sends no UserLongName). */
  userTokenUpdate(shortName: string): Promise<number> {
    return this.checkIn({
      MessageType: 'TokenUpdate',
      Topic: this.#need().topic,
      UDID: this.udid,
      UserID: 'FFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF',
      UserShortName: shortName,
      Token: randomBytes(32),
      PushMagic: randomUUID().toUpperCase(),
    });
  }

  checkOut(): Promise<number> {
    return this.checkIn({ MessageType: 'CheckOut', Topic: this.#need().topic, UDID: this.udid });
  }

  async checkIn(message: PlistDict): Promise<number> {
    const { status } = await this.#put(this.#need().checkInUrl, buildPlist(message));
    return status;
  }

  /**
   * One command session, as after a push: Idle, then answer each command until the server
   * has nothing more (or the device goes silent / says NotNow). Bounded by `maxCommands`.
   */
  async connect(maxCommands = 100): Promise<ExchangeLog[]> {
    const log: ExchangeLog[] = [];
    let report: PlistDict = { Status: 'Idle', UDID: this.udid };
    for (let i = 0; i <= maxCommands; i++) {
      const exchange = await this.sendReport(report);
      log.push(exchange);
      if (!exchange.command) break;
      await this.#runScep(exchange.command);
      const answer = this.answer(exchange.command);
      this.#scepKeys.clear();
      // An MDM profile replaced in place: Authenticate and TokenUpdate with the new identity, as
      // iOS does, before the command's answer.
      if (this.#enrolled?.reauthenticate) {
        this.#enrolled.reauthenticate = false;
        await this.authenticate();
        await this.tokenUpdate();
      }
      if (!answer) break;
      report = answer;
    }
    return log;
  }

  /** Sends one report on the command channel and returns the server's reply. */
  async sendReport(report: PlistDict): Promise<ExchangeLog> {
    const { status, text } = await this.#put(this.#need().serverUrl, buildPlist(report));
    const command = status === 200 && text.length > 0 ? parsePlistDict(text) : null;
    return { sent: String(report.Status), status, command };
  }

  /** The report this device gives for a command, or null when it stays silent. */
  answer(envelope: PlistDict): PlistDict | null {
    const uuid = String(envelope.CommandUUID);
    const command = (envelope.Command ?? {}) as PlistDict;
    const type = String(command.RequestType);
    this.received.push(type);
    this.settleDownloads();
    const base: PlistDict = { UDID: this.udid, CommandUUID: uuid };
    const behaviour = this.behaviours.get(type) ?? this.#naturalBehaviour(type, command);
    switch (behaviour.kind) {
      case 'silent':
        return null;
      case 'not_now':
        return { ...base, Status: 'NotNow' };
      case 'format_error':
        return { ...base, Status: 'CommandFormatError' };
      case 'error': {
        const out: PlistDict = {
          ...base,
          Status: 'Error',
          ErrorChain: behaviour.chain.map((c) => ({ ...c })),
        };
        if (behaviour.rejectionReason) out.RejectionReason = behaviour.rejectionReason;
        return out;
      }
      case 'acknowledge':
        return { ...base, Status: 'Acknowledged', ...this.#result(type, command) };
    }
  }

  /** What the iPad's own state makes it answer when no behaviour is forced. */
  #naturalBehaviour(type: string, command: PlistDict): Behaviour {
    if (type === 'InstallProfile') {
      const refused = this.#installProfileCommand(command);
      return refused ? { kind: 'error', chain: [refused] } : { kind: 'acknowledge' };
    }
    if (type !== 'InstallApplication') return { kind: 'acknowledge' };
    // A Shared iPad installs only while nobody is logged in.
    if (this.spec.sharedIpad && this.users.some((u) => u.loggedIn)) return { kind: 'not_now' };
    const app = this.#catalog.get(Number(command.iTunesStoreID));
    const present = app ? this.apps.get(app.bundleId) : undefined;
    if (
      app &&
      present &&
      present.managedAdamId === undefined &&
      command.ChangeManagementState !== 'Managed'
    ) {
      return {
        kind: 'error',
        chain: [
          {
            ErrorCode: 12025,
            ErrorDomain: 'MCMDMErrorDomain',
            LocalizedDescription: `The app “${app.name}” is already installed.`,
          },
        ],
        rejectionReason: 'AppAlreadyInstalled',
      };
    }
    return { kind: 'acknowledge' };
  }

  #result(type: string, command: PlistDict): PlistDict {
    switch (type) {
      case 'DeviceInformation':
        return { QueryResponses: this.#deviceInformation(command.Queries) };
      case 'InstalledApplicationList':
        return {
          // A failed install left nothing on the device, nor does a cloud icon (restored from a
          // backup); one waiting to download is listed as installing.
          InstalledApplicationList: [...this.apps.values()]
            .filter((a) => a.managedStatus !== 'Failed' && a.managedStatus !== 'ManagedButUninstalled')
            .map((a) => ({
              Identifier: a.bundleId,
              Name: a.name,
              Version: a.version,
              ShortVersion: a.version,
              BundleSize: a.sizeBytes,
              IsValidated: true,
              ...(a.downloadWaiting
                ? { Installing: true, DownloadWaiting: true }
                : a.managedStatus === 'Installing'
                  ? { Installing: true }
                  : {}),
            })),
        };
      case 'ManagedApplicationList': {
        const list: PlistDict = {};
        for (const app of [...this.apps.values()]) {
          if (app.managedStatus === undefined) continue;
          if (app.downloadWaiting && this.spec.wifi) this.#downloaded(app);
          list[app.bundleId] = {
            Status: app.managedStatus,
            ManagementFlags: 1,
            HasConfiguration: false,
            HasFeedback: false,
            IsValidated: true,
            ExternalVersionIdentifier: externalVersionId(app),
          };
          if (ONE_SHOT_STATUSES.has(app.managedStatus)) this.apps.delete(app.bundleId);
          // A declined update is reported once; the old version stays, managed.
          else if (app.managedStatus === 'UpdateRejected') app.managedStatus = 'Managed';
        }
        return { ManagedApplicationList: list };
      }
      case 'Restrictions': {
        const global = this.#restrictions();
        if (command.ProfileRestrictions !== true) return { GlobalRestrictions: global };
        // One restrictions profile made them all, so its own list is the global one.
        const byProfile: PlistDict = this.spec.restrictions ? { 'jp.haishin.sim.restrictions': global } : {};
        return { GlobalRestrictions: global, ProfileRestrictions: byProfile };
      }
      case 'UserList':
        return {
          // iOS reports no FullName (macOS only, in Apple's schema).
          Users: this.users.map((u) => ({
            UserName: u.shortName,
            IsLoggedIn: u.loggedIn,
            HasDataToSync: false,
            DataQuota: 0,
            DataUsed: 0,
          })),
        };
      case 'InstallApplication':
        return this.#install(command);
      case 'RemoveApplication':
        this.apps.delete(String(command.Identifier));
        return {};
      default:
        return {};
    }
  }

  #install(command: PlistDict): PlistDict {
    const adamId = Number(command.iTunesStoreID);
    const app = this.#catalog.get(adamId);
    if (!app) return { State: 'Queued' };
    // Restored from another iPad's backup: the managed app is a cloud icon that installing again
    // does not bring back; it must be deleted on the device first (DESIGN §4).
    if (this.apps.get(app.bundleId)?.managedStatus === 'ManagedButUninstalled')
      return { Identifier: app.bundleId, State: 'Queued' };
    const present = this.apps.get(app.bundleId);
    if (
      present?.managedAdamId !== undefined &&
      present.managedStatus === 'Managed' &&
      present.version !== app.version
    )
      return this.#update(present, app);
    // Apple's servers out of reach: accepted, and the download never starts.
    if (!this.spec.appleReachable) {
      this.apps.set(app.bundleId, { ...app, managedAdamId: adamId, managedStatus: 'Installing' });
      return { Identifier: app.bundleId, State: 'Queued' };
    }
    // The App Store's own checks: they fail after the command was accepted, visible only in the managed list.
    const tooOld = app.minimumOsVersion !== undefined && olderThan(this.spec.osVersion, app.minimumOsVersion);
    const tooBig = app.sizeBytes > this.spec.availableGb * 1e9;
    // Over the cellular limit without Wi-Fi: accepted, then it waits (Installing) until Wi-Fi comes.
    const waits =
      !tooOld &&
      !tooBig &&
      this.spec.cellular &&
      !this.spec.wifi &&
      app.sizeBytes >= cellularLimitBytes(this.spec.osVersion);
    // Otherwise it downloads for `downloadMs` (its space is taken from the start, as iOS reserves it).
    const downloads = !tooOld && !tooBig && !waits && this.spec.downloadMs > 0;
    const installed: SimApp = {
      ...app,
      managedAdamId: adamId,
      managedStatus: tooOld || tooBig ? 'Failed' : waits || downloads ? 'Installing' : 'Managed',
      ...(waits ? { downloadWaiting: true } : {}),
      ...(downloads ? { downloadEndsAt: this.#downloadEnd() } : {}),
    };
    this.apps.set(app.bundleId, installed);
    if (!tooOld && !tooBig && !waits) this.spec.availableGb -= app.sizeBytes / 1e9;
    return { Identifier: app.bundleId, State: 'Queued' };
  }

  /**
   * InstallApplication for an app the iPad manages at another version: the store's version
   * replaces it (over the same download time as an install), unless `updates` says otherwise or
   * the new version needs a newer iOS. The space it already takes is not taken again.
   */
  #update(present: SimApp, app: Omit<SimApp, 'managedAdamId' | 'managedStatus'>): PlistDict {
    const queued = { Identifier: app.bundleId, State: 'Queued' };
    const tooOld = app.minimumOsVersion !== undefined && olderThan(this.spec.osVersion, app.minimumOsVersion);
    if (tooOld || this.spec.updates === 'ignore') return queued;
    if (this.spec.updates === 'reject') {
      present.managedStatus = 'UpdateRejected';
      return queued;
    }
    const downloads = this.spec.downloadMs > 0;
    this.apps.set(app.bundleId, {
      ...app,
      managedAdamId: present.managedAdamId,
      managedStatus: downloads ? 'Installing' : 'Managed',
      ...(downloads ? { downloadEndsAt: this.#downloadEnd() } : {}),
    });
    return queued;
  }

  /**
   * When a download acknowledged now ends: `downloadMs` after it starts, which is now, or with a
   * concurrency limit when the first lane is free (first come, first served).
   */
  #downloadEnd(): number {
    const now = this.#clock.now().getTime();
    const limit = this.spec.downloadConcurrency;
    if (!Number.isFinite(limit)) return now + this.spec.downloadMs;
    let lane = 0;
    if (this.#lanes.length < Math.max(1, limit)) lane = this.#lanes.push(now) - 1;
    else for (let i = 1; i < this.#lanes.length; i++) if (this.#lanes[i]! < this.#lanes[lane]!) lane = i;
    const end = Math.max(now, this.#lanes[lane]!) + this.spec.downloadMs;
    this.#lanes[lane] = end;
    return end;
  }

  /**
   * Downloads that ended by the device's clock are installed (`Managed`). Done lazily — before each
   * command is answered — so a fleet of downloading iPads needs no timers.
   */
  settleDownloads(): void {
    let now: number | undefined;
    for (const app of this.apps.values()) {
      if (app.downloadEndsAt === undefined) continue;
      now ??= this.#clock.now().getTime();
      if (app.downloadEndsAt > now) continue;
      delete app.downloadEndsAt;
      if (app.managedStatus === 'Installing') app.managedStatus = 'Managed';
    }
  }

  /** Wi-Fi came back: a download that waited for it finishes. */
  #downloaded(app: SimApp): void {
    app.downloadWaiting = false;
    app.managedStatus = 'Managed';
    this.spec.availableGb -= app.sizeBytes / 1e9;
  }

  #deviceInformation(queries: PlistValue | undefined): PlistDict {
    const all: PlistDict = {
      UDID: this.udid,
      DeviceName: this.spec.deviceName,
      OSVersion: this.spec.osVersion,
      BuildVersion: this.spec.buildVersion,
      ProductName: this.spec.productName,
      Model: this.spec.model,
      ModelName: this.spec.modelName,
      SerialNumber: this.serialNumber,
      DeviceCapacity: real(this.spec.capacityGb),
      AvailableDeviceCapacity: real(this.spec.availableGb),
      IsSupervised: this.spec.supervised,
      IsMultiUser: this.spec.sharedIpad,
      IsNetworkTethered: false,
      iTunesStoreAccountIsActive: false,
    };
    if (this.spec.cellular) all.CellularTechnology = 1;
    if (!Array.isArray(queries)) return all;
    const picked: PlistDict = {};
    for (const q of queries) {
      const key = String(q);
      const value = all[key];
      if (value !== undefined) picked[key] = value;
    }
    return picked;
  }

  /** Shaped like Apple's RestrictionsResponse.GlobalRestrictions (restrictedValue / intersection / union). */
  #restrictions(): PlistDict {
    const r = this.spec.restrictions ?? {};
    const out: PlistDict = { restrictedValue: { ratingApps: { value: r.ratingApps ?? 1000 } } };
    if (r.allowListedAppBundleIDs)
      out.intersection = { allowListedAppBundleIDs: { values: r.allowListedAppBundleIDs } };
    if (r.blockedAppBundleIDs) out.union = { blockedAppBundleIDs: { values: r.blockedAppBundleIDs } };
    return out;
  }

  /** The Mdm-Signature this device would send for `body`. */
  sign(body: Uint8Array): string {
    return this.#need().signer.sign(body);
  }

  /**
   * Sends bytes to one of the device's MDM URLs with a chosen signature header (or none):
   * how tests play a forger, a corrupted message or a replay.
   */
  async sendRaw(
    channel: 'checkin' | 'connect',
    body: Uint8Array,
    signature: string | null = this.sign(body),
  ): Promise<{ status: number; text: string }> {
    const enrolled = this.#need();
    const headers: Record<string, string> = {
      'content-type': 'application/x-apple-aspen-mdm-checkin',
      'user-agent': 'MDM/1.0',
    };
    if (signature !== null) headers['mdm-signature'] = signature;
    const response = await this.#fetch(channel === 'checkin' ? enrolled.checkInUrl : enrolled.serverUrl, {
      method: 'PUT',
      body,
      headers,
    });
    return { status: response.status, text: await response.text() };
  }

  async #put(url: string, body: string): Promise<{ status: number; text: string }> {
    const bytes = Buffer.from(body, 'utf8');
    return this.sendRaw(url === this.#need().checkInUrl ? 'checkin' : 'connect', bytes);
  }

  #need(): Enrolled {
    if (!this.#enrolled) throw new Error(`simulated device ${this.udid} has no MDM profile installed`);
    return this.#enrolled;
  }
}

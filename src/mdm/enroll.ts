import { randomBytes, randomUUID } from 'node:crypto';
import type { Clock } from '../core/clock.ts';
import { identityToPkcs12, issueDeviceIdentity } from './identity/ca.ts';
import type { CertAndKey, IssuedIdentity } from './identity/ca.ts';
import { buildPlist } from './plist.ts';
import type { PlistDict } from './plist.ts';

export interface EnrollmentStore {
  getGroup(id: string): Promise<{ id: string; name: string } | undefined>;
  recordIssuedIdentity(identity: {
    fingerprint: string;
    serialHex: string;
    groupId: string;
    issuedAt: Date;
    notAfter: Date;
    /** Set for a renewal: the identity is this device's from the start (decision 0023). */
    deviceId?: string;
  }): Promise<void>;
}

/** What a renewal needs to know of the device: the group its enrollment profile was made for. */
export interface RenewalTarget {
  deviceId: string;
  /** The group of the enrollment profile installed on the device (its PayloadIdentifier). */
  profileGroupId: string;
}

export interface EnrollmentOptions {
  store: EnrollmentStore;
  ca: CertAndKey;
  clock: Clock;
  publicUrl: string;
  /** The push certificate's UID, `com.apple.mgmt.…`; a function when it can be replaced at run time. */
  topic: string | (() => string);
  deviceKeyBits: number;
  deviceKeyType?: 'rsa' | 'ec';
  /** Default 2048, like `openssl pkcs12 -export`. */
  pkcs12Iterations?: number;
  organization?: string;
  /** How long issued identities are valid (HAISHIN_DEVICE_IDENTITY_VALIDITY; default 365 days). */
  identityValidityMs?: number;
  /**
   * HAISHIN_DEVICE_IDENTITY=scep (decision 0024): enrollment profiles carry a SCEP payload with a
   * one-time challenge instead of a PKCS#12 identity; the device makes its own key.
   */
  scep?: ScepProfileOptions;
}

export interface ScepProfileOptions {
  /** The SCEP service's URL (`<public URL>/scep`). */
  url: string;
  challenges: {
    issue(binding: { groupId: string; deviceId: string | null }, at: Date, expiresAt: Date): Promise<string>;
  };
  challengeTtlMs: number;
  /**
   * How long a renewal's challenge stays valid: its InstallProfile may wait in the queue until the
   * device comes back, at most until its identity expires (HAISHIN_IDENTITY_RENEW_BEFORE).
   */
  renewalChallengeTtlMs?: number;
  /** SHA-1 of the issuing CA's DER: iOS checks GetCACert's answer against it. */
  caFingerprintSha1: Uint8Array;
  /** Keysize of the payload: 1024, 2048 or 4096. */
  keySize: number;
}

/**
 * AccessRights: every right (8191). The VPP workflow needs at least 4096 (app management) and
 * 16 (device information); the troubleshooter also reads restrictions and profiles.
 */
export const ACCESS_RIGHTS_ALL = 8191;

export class UnknownGroupError extends Error {}

/** Builds `.mobileconfig` enrollment profiles, each with a fresh device identity issued by haishin's CA. */
export class EnrollmentProfiles {
  readonly #o: EnrollmentOptions;

  constructor(options: EnrollmentOptions) {
    this.#o = options;
  }

  async profileFor(groupId: string): Promise<{ body: string; fingerprint: string | null }> {
    const group = await this.#o.store.getGroup(groupId);
    if (!group)
      throw new UnknownGroupError(
        `no group with id "${groupId}": ask your administrator for a current enrollment link`,
      );
    const { body, identity } = await this.#build(group, undefined);
    // With SCEP the identity does not exist yet: the device asks for it after installing the profile.
    return { body, fingerprint: identity?.fingerprintSha256 ?? null };
  }

  /**
   * The enrollment profile again for a device that has it (decision 0023): same PayloadIdentifier,
   * server URL and topic, so the device replaces its MDM profile in place, with a new identity
   * recorded as this device's. The group is the one the installed profile was made for.
   */
  async renewalProfile(target: RenewalTarget): Promise<{ body: string; identity: IssuedIdentity | null }> {
    const group = (await this.#o.store.getGroup(target.profileGroupId)) ?? {
      id: target.profileGroupId,
      name: target.profileGroupId,
    };
    // With SCEP (decision 0024) the identity is null: the device asks for it with the profile's
    // challenge, bound to this device, and the SCEP service records it as the device's pending one.
    return this.#build(group, target.deviceId);
  }

  async #build(
    group: { id: string; name: string },
    deviceId: string | undefined,
  ): Promise<{ body: string; identity: IssuedIdentity | null }> {
    const now = this.#o.clock.now();
    const identityUuid = randomUUID().toUpperCase();
    const scep = this.#o.scep;
    let identity: IssuedIdentity | null = null;
    let identityPayload: PlistDict;
    if (scep) {
      identityPayload = await this.#scepPayload(scep, group.id, deviceId ?? null, identityUuid, now);
    } else {
      identity = this.#issue(identityUuid, now);
      await this.#o.store.recordIssuedIdentity({
        fingerprint: identity.fingerprintSha256,
        serialHex: identity.serialHex,
        groupId: group.id,
        issuedAt: now,
        notAfter: identity.notAfter,
        ...(deviceId !== undefined ? { deviceId } : {}),
      });
      identityPayload = this.#pkcs12Payload(identity, identityUuid);
    }
    const org = this.#o.organization ?? 'haishin';
    const base = this.#o.publicUrl;
    const mdmPayload: PlistDict = {
      PayloadType: 'com.apple.mdm',
      PayloadVersion: 1,
      PayloadIdentifier: `haishin.mdm.${group.id}`,
      PayloadUUID: randomUUID().toUpperCase(),
      PayloadDisplayName: `${org} MDM`,
      ServerURL: `${base}/mdm/connect`,
      CheckInURL: `${base}/mdm/checkin`,
      Topic: typeof this.#o.topic === 'function' ? this.#o.topic() : this.#o.topic,
      IdentityCertificateUUID: identityUuid,
      SignMessage: true,
      AccessRights: ACCESS_RIGHTS_ALL,
      CheckOutWhenRemoved: true,
      ServerCapabilities: ['com.apple.mdm.per-user-connections'],
    };
    const profile: PlistDict = {
      PayloadType: 'Configuration',
      PayloadVersion: 1,
      PayloadIdentifier: `haishin.enrollment.${group.id}`,
      PayloadUUID: randomUUID().toUpperCase(),
      PayloadDisplayName: `${org}: ${group.name}`,
      PayloadOrganization: org,
      PayloadDescription: 'Enrolls this device in haishin so your organisation can install its apps.',
      PayloadRemovalDisallowed: false,
      PayloadContent: [identityPayload, mdmPayload],
    };
    return { body: buildPlist(profile), identity };
  }

  #issue(identityUuid: string, now: Date): IssuedIdentity {
    return issueDeviceIdentity(this.#o.ca, {
      now,
      commonName: `haishin device ${identityUuid}`,
      keyBits: this.#o.deviceKeyBits,
      keyType: this.#o.deviceKeyType ?? 'rsa',
      ...(this.#o.identityValidityMs !== undefined ? { validMs: this.#o.identityValidityMs } : {}),
    });
  }

  #pkcs12Payload(identity: IssuedIdentity, identityUuid: string): PlistDict {
    // The password travels inside the same profile; it only satisfies the PKCS#12 format.
    const password = randomBytes(12).toString('base64url');
    const pkcs12 = identityToPkcs12(identity, {
      password,
      friendlyName: 'haishin device identity',
      ...(this.#o.pkcs12Iterations !== undefined ? { iterations: this.#o.pkcs12Iterations } : {}),
    });
    return {
      PayloadType: 'com.apple.security.pkcs12',
      PayloadVersion: 1,
      PayloadIdentifier: `haishin.identity.${identityUuid}`,
      PayloadUUID: identityUuid,
      PayloadDisplayName: 'haishin device identity',
      PayloadContent: pkcs12,
      Password: password,
    };
  }

  /**
   * The `com.apple.security.scep` payload (decision 0024): the device makes an RSA key, asks
   * `<public URL>/scep` for its certificate with this profile's one-time challenge, and uses it as
   * its MDM identity. The challenge binds the identity to the group the profile was made for.
   */
  async #scepPayload(
    scep: ScepProfileOptions,
    groupId: string,
    deviceId: string | null,
    identityUuid: string,
    now: Date,
  ): Promise<PlistDict> {
    const ttl = deviceId === null ? scep.challengeTtlMs : (scep.renewalChallengeTtlMs ?? scep.challengeTtlMs);
    const challenge = await scep.challenges.issue({ groupId, deviceId }, now, new Date(now.getTime() + ttl));
    return {
      PayloadType: 'com.apple.security.scep',
      PayloadVersion: 1,
      PayloadIdentifier: `haishin.identity.${identityUuid}`,
      PayloadUUID: identityUuid,
      PayloadDisplayName: 'haishin device identity (SCEP)',
      PayloadContent: {
        URL: scep.url,
        Name: 'haishin',
        Subject: [[['O', this.#o.organization ?? 'haishin']], [['CN', `haishin device ${identityUuid}`]]],
        Challenge: challenge,
        Keysize: scep.keySize,
        'Key Type': 'RSA',
        // 1 signing + 4 encryption: the identity signs MDM messages and opens the SCEP answer.
        'Key Usage': 5,
        CAFingerprint: scep.caFingerprintSha1,
      },
    };
  }
}

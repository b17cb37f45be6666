import type { Clock } from '../core/clock.ts';
import { installProfile, renderCommand } from '../mdm/commands.ts';
import type { IssuedIdentity } from '../mdm/identity/ca.ts';
import type { CommandReport, MdmListener } from '../mdm/ports.ts';
import type { RenewalTarget } from '../mdm/enroll.ts';
import type { IdentityRepo } from '../store/identity-repo.ts';
import type { Commander } from './commander.ts';
import { newCommandUuid } from './commander.ts';

/** Where renewed profiles come from (src/mdm/enroll.ts: the enrollment profile with a new identity). */
export interface RenewalProfiles {
  /** `identity` is null with SCEP (decision 0024): the SCEP service records it when the device asks. */
  renewalProfile(target: RenewalTarget): Promise<{ body: string; identity: IssuedIdentity | null }>;
}

export interface IdentityRenewalOptions {
  identities: Pick<IdentityRepo, 'renewalCandidates' | 'startRenewal' | 'renewalAnswered' | 'redactCommand'>;
  profiles: RenewalProfiles;
  commander: Pick<Commander, 'queue' | 'drop' | 'wake'>;
  clock: Clock;
  /** HAISHIN_IDENTITY_RENEW_BEFORE. */
  renewBeforeMs: number;
  /** Devices handled per batch (each renewal makes a key pair); every batch is queued and pushed at once. */
  batchSize?: number;
  /** Renewals that could not be started (the device is retried at the next pass). */
  onError?: (err: unknown, deviceId: string) => void;
  /** Renewals the devices answered, for the log. */
  onAnswer?: (deviceId: string, outcome: 'adopted' | 'failed') => void;
}

export interface RenewalPassResult {
  /** Devices within the window. */
  due: number;
  /** Devices sent a newly issued identity in this pass. */
  sent: number;
  /** Devices whose renewal was still queued from an earlier pass: woken again. */
  woken: number;
  failed: number;
}

/** What stays stored of a renewal's InstallProfile once answered or superseded: no profile, no key. */
export function redactedInstallProfile(uuid: string): string {
  return renderCommand(uuid, { RequestType: 'InstallProfile', Payload: new Uint8Array(0) }).payload;
}

/** The most devices one pass looks at: a bound on one pass, the rest waits for the next one. */
const MAX_PER_PASS = 100_000;

/**
 * Renews device identities before they expire (decision 0023). A pass — daily, under a lease —
 * finds the enrolled devices whose identity expires within HAISHIN_IDENTITY_RENEW_BEFORE and sends
 * each, through the commander, an InstallProfile of its own enrollment profile with a new identity
 * (same PayloadIdentifier, server URL and topic: iOS replaces the MDM profile in place). From then
 * on the device's messages may be signed by the new identity (only that device's, only haishin's
 * CA's); it becomes the device's identity on the acknowledgement or its first message signed by it,
 * and the old one stays accepted until it expires. A renewal that failed, or whose command vanished,
 * is started again at the next pass; one still queued is only pushed again.
 */
export class IdentityRenewal implements MdmListener {
  readonly #o: IdentityRenewalOptions;

  constructor(options: IdentityRenewalOptions) {
    this.#o = options;
  }

  async pass(): Promise<RenewalPassResult> {
    const o = this.#o;
    const now = o.clock.now();
    const candidates = await o.identities.renewalCandidates(
      now,
      new Date(now.getTime() + o.renewBeforeMs),
      MAX_PER_PASS,
    );
    const result: RenewalPassResult = { due: candidates.length, sent: 0, woken: 0, failed: 0 };
    const batchSize = Math.max(1, o.batchSize ?? 100);
    for (let start = 0; start < candidates.length; start += batchSize) {
      const batch = candidates.slice(start, start + batchSize);
      const wake: { deviceId: string; enrollmentId: string }[] = [];
      for (const device of batch) {
        const to = { deviceId: device.deviceId, enrollmentId: device.udid };
        if (device.renewalCommand !== null && device.renewalQueued) {
          wake.push(to);
          result.woken++;
          continue;
        }
        try {
          const at = o.clock.now();
          const { body, identity } = await o.profiles.renewalProfile({
            deviceId: device.deviceId,
            profileGroupId: device.profileGroupId,
          });
          const command = installProfile(newCommandUuid(), body);
          // Accepted before it is queued: the device may answer, signed by it, right after the fetch.
          await o.identities.startRenewal(
            device.deviceId,
            identity?.fingerprintSha256 ?? null,
            command.uuid,
            at,
          );
          if (device.renewalCommand !== null) {
            await o.commander.drop([device.renewalCommand]);
            await o.identities.redactCommand(
              device.renewalCommand,
              redactedInstallProfile(device.renewalCommand),
            );
          }
          await o.commander.queue('identity', [{ to, commands: [command] }], at);
          wake.push(to);
          result.sent++;
        } catch (err) {
          result.failed++;
          o.onError?.(err, device.deviceId);
        }
        // Each renewal generates a key pair (tens of milliseconds): let requests through in between.
        await new Promise<void>((resolve) => setImmediate(resolve));
      }
      if (wake.length > 0) await o.commander.wake(wake, o.clock.now());
    }
    return result;
  }

  /** The device's answer to a renewal's InstallProfile (answers to other commands are not ours). */
  async onCommandReport(report: CommandReport): Promise<void> {
    if (report.requestType !== 'InstallProfile' || report.status === 'NotNow') return;
    const outcome = await this.#o.identities.renewalAnswered(
      report.deviceId,
      report.commandUuid,
      report.status === 'Acknowledged',
      report.at,
    );
    // Answered: the key it carried has no business staying in the database (haishin sends
    // InstallProfile for renewals only).
    await this.#o.identities.redactCommand(report.commandUuid, redactedInstallProfile(report.commandUuid));
    if (outcome !== 'none') this.#o.onAnswer?.(report.deviceId, outcome);
  }
}

import { isCauseCode } from './catalogue.ts';
import type { CauseCode } from './catalogue.ts';
import type { EvidenceItem } from './evidence.ts';
import type { Rule } from './rules/facts.ts';

/**
 * The engine's verdict as evidence. When the engine fails a job it says why in the job's
 * `reason`; most reasons are cause codes already (`license.not_assigned`, `token.revoked`,
 * `autoassign.inherited_only`, …), a few older or plainer ones are read through the table below.
 * What the engine established before failing the job is proof: the cause is confirmed, and the
 * ranking can put another cause first only when that one is confirmed too and a root cause of it.
 *
 * Reasons of the form `license 9709` (Apple's error number) are read by the VPP-number rule,
 * which knows what each number means; this module does not repeat that table.
 */

/** Engine reasons that are not cause codes but state a verdict all the same. */
const REASON_VERDICTS: ReadonlyMap<string, CauseCode> = new Map<string, CauseCode>([
  // A deactivated device gets no job that runs (DistributionEngine.create).
  ['device.deactivated', 'device.unenrolled'],
  // Device licences are assigned to serial numbers: without one, none can be.
  ['device has no serial number', 'license.not_assigned'],
  // The token holds no licence of the app at all (not bought for this location): none to give.
  ['license.asset_not_found', 'license.insufficient'],
  // The distribution's token was deleted before its licences were assigned.
  ['token.not_found', 'token.not_registered'],
  // Apple's event failed without an error number.
  ['license refused', 'license.apple_refused'],
]);

/**
 * What an Apps and Books error kind (src/apple/vpp/errors.ts) means for a licence, as a cause
 * code. The engine names a failed job's reason with it when Apple's answer carries no number
 * that says more, and always for the token kinds: those condemn the token, not the licence.
 */
export function causeOfVppErrorKind(kind: string): CauseCode {
  switch (kind) {
    case 'token_expired':
      return 'token.expired';
    case 'token_revoked':
      return 'token.revoked';
    case 'token_invalid':
      return 'token.invalid';
    case 'other_mdm':
      return 'token.other_mdm';
    case 'insufficient_licenses':
      return 'license.insufficient';
    case 'not_device_assignable':
      return 'app.not_device_assignable';
    case 'license_not_found':
      return 'license.not_assigned';
    case 'rate_limited':
    case 'transient':
      return 'device.store_transient';
    default:
      return 'license.apple_refused';
  }
}

/** The cause the engine's reason states, or null when the reason is a step, not a verdict. */
export function verdictOfReason(reason: string | null | undefined): CauseCode | null {
  if (!reason) return null;
  if (isCauseCode(reason)) return reason;
  const known = REASON_VERDICTS.get(reason);
  if (known) return known;
  // `license <kind>`: a failure without Apple's number, as older versions recorded it.
  const kind = /^license ([a-z_]+)$/.exec(reason)?.[1];
  return kind ? causeOfVppErrorKind(kind) : null;
}

function fact(f: string, value: EvidenceItem['value'] | Date, source: EvidenceItem['source']): EvidenceItem {
  return { fact: f, value: value instanceof Date ? value.toISOString() : value, source };
}

/** The job's reason, when it names a cause, is a confirmed cause (never left out of the answer). */
export const engineVerdictRule: Rule = (e) => {
  const j = e.job;
  const code = verdictOfReason(j?.reason);
  if (!j || !code) return [];
  const evidence: EvidenceItem[] = [fact('job.reason', j.reason!, 'job')];
  const miss = j.retryWouldMiss;
  if (code === 'device.store_transient' && miss) {
    evidence.push(
      fact('retry.wouldStartAt', miss.retryAt, 'haishin'),
      fact(miss.deadline === 'request' ? 'job.requestDeadline' : 'job.sessionDeadline', miss.at, 'job'),
    );
  }
  return [{ code, confidence: 'confirmed', evidence }];
};

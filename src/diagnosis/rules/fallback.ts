import type { Evidence } from '../evidence.ts';
import { HANDED_OVER, NOT_FAILED, NOT_HANDED_OVER, RAW_EVIDENCE_MAX } from '../tables.ts';
import { answeredSinceLastPush, chainEvidence, chainOf, fact, hit } from './facts.ts';
import type { RuleHit } from './facts.ts';

/**
 * What to say when no rule found anything for a job that did not succeed: the raw error when
 * there is one, otherwise the causes that fit the stage where the job stopped. An empty answer
 * would leave the administrator with nothing to try.
 */
export function fallbackHits(e: Evidence): RuleHit[] {
  const j = e.job;
  const status = j?.status;
  if (!j || !status || NOT_FAILED.has(status)) return [];
  const statusFact = fact('job.status', status, 'job');
  const chain = chainOf(e);
  if (chain.length > 0) return [hit('device.error_unknown', 'likely', statusFact, ...chainEvidence(chain))];
  if (j.rawError || j.rejectionReason) {
    const ev = [statusFact];
    if (j.rejectionReason) ev.push(fact('rejectionReason', j.rejectionReason, 'rejection_reason'));
    if (j.rawError) ev.push(fact('error.raw', j.rawError.slice(0, RAW_EVIDENCE_MAX), 'job'));
    return [hit('device.error_unknown', 'possible', ...ev)];
  }
  if (status === 'license_failed') {
    const last = e.licence?.lastVppError;
    const ev = last ? [statusFact, fact('vpp.lastError', last.errorNumber, 'vpp_api')] : [statusFact];
    return [hit('license.apple_refused', 'possible', ...ev)];
  }
  // Apple has not confirmed the assignment yet: slow or busy on Apple's side, which passes.
  if (status === 'license_assigning') return [hit('device.store_transient', 'possible', statusFact)];
  const acked = j.ackAt !== undefined && j.ackAt !== null;
  if (NOT_HANDED_OVER.has(status) || (status === 'request_timeout' && !acked)) {
    // It answered after the push, so it is on: the guide's last resort, not "offline".
    const answered = answeredSinceLastPush(e);
    if (answered) return [hit('device.error_unknown', 'possible', statusFact, ...answered)];
    return [
      hit('device.powered_off_or_offline', 'possible', statusFact),
      hit('network.inactive', 'possible', statusFact),
    ];
  }
  if (HANDED_OVER.has(status) || status === 'request_timeout') {
    return [
      hit('network.apple_blocked', 'possible', statusFact),
      hit('network.filtering', 'possible', statusFact),
      hit('network.inactive', 'possible', statusFact),
    ];
  }
  // device_error without a chain, server_error, cancelled: the guide's last resort.
  return [hit('device.error_unknown', 'possible', statusFact)];
}

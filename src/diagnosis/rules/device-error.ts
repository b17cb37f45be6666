import { isVppErrorNumber } from '../error-chain.ts';
import type { Evidence } from '../evidence.ts';
import { MANAGED_STATUS_MAP, REJECTION_MAP, matchDeviceCode } from '../tables.ts';
import { chainEvidence, chainOf, describeItem, deviceFresh, fact, hit, isIWork } from './facts.ts';
import type { Rule, RuleHit } from './facts.ts';

/**
 * What the device said: its ErrorChain, RejectionReason and one-shot ManagedApplicationList
 * statuses, read through the code tables, then weighed against the facts haishin holds.
 */

/** The device's ErrorChain, RejectionReason and the one-shot ManagedApplicationList statuses. */
export const deviceErrorRule: Rule = (e) => {
  const j = e.job;
  if (!j) return [];
  let out: RuleHit[] = [];
  const chain = chainOf(e);
  let recognised = false;
  chain.forEach((item, i) => {
    if (item.domain === null && isVppErrorNumber(item.code)) {
      recognised = true; // vppErrorRule reads these
      return;
    }
    const m = matchDeviceCode(item);
    if (!m) return;
    recognised = true;
    const ev = fact(`error_chain[${i}]`, describeItem(item), 'error_chain');
    // A code read without its domain could belong to another domain: it proves less.
    for (const [code, conf] of m.mapping.causes)
      out.push(hit(code, m.exact || conf !== 'confirmed' ? conf : 'likely', ev));
  });
  if (chain.length > 0 && !recognised)
    out.push(hit('device.error_unknown', 'likely', ...chainEvidence(chain)));

  const reason = j.rejectionReason;
  if (reason) {
    const causes = REJECTION_MAP.get(reason) ?? [['device.error_unknown', 'possible'] as const];
    for (const [code, conf] of causes)
      out.push(hit(code, conf, fact('rejectionReason', reason, 'rejection_reason')));
  }
  for (const status of new Set(j.managedAppStatusesSeen ?? [])) {
    if (status === 'ManagedButUninstalled') continue; // restoredFromBackupRule weighs it with the restore signs
    for (const [code, conf] of MANAGED_STATUS_MAP.get(status) ?? []) {
      out.push(hit(code, conf, fact('managedApp.status', status, 'managed_application_list')));
    }
  }
  out = swapForIWork(e, out);
  return refineWithFacts(e, out);
};

/**
 * A code names several candidate causes; facts haishin holds rule some of them out (DESIGN §5:
 * 12064/2605 "ranked by the evidence haishin has"). Confirmations come from the concern rules;
 * this only removes or weakens what the facts contradict.
 */
function refineWithFacts(e: Evidence, hits: RuleHit[]): RuleHit[] {
  const g = e.groups;
  const autoAssignFine =
    e.job?.licenseMode === 'manual' ||
    (g?.distributionTokenId !== undefined &&
      g?.effectiveAutoAssignTokenId !== undefined &&
      g.distributionTokenId === g.effectiveAutoAssignTokenId);
  const licenceThere = e.licence?.assignedToSerial === true;
  const online = deviceFresh(e);
  const out: RuleHit[] = [];
  for (const h of hits) {
    if (h.code === 'autoassign.token_misconfigured' && autoAssignFine) continue;
    // A device that reached haishin recently is on; it may still be unable to reach Apple.
    if (h.code === 'device.powered_off_or_offline' && online) continue;
    if (h.code === 'license.not_assigned' && licenceThere) {
      out.push({
        ...h,
        confidence: 'possible',
        evidence: [...h.evidence, fact('licence.assignedToSerial', true, 'vpp_assignments')],
      });
      continue;
    }
    out.push(h);
  }
  return out;
}

/** An unmanaged copy of an iWork app is the pre-installed one: a different remedy (delete it). */
function swapForIWork(e: Evidence, hits: RuleHit[]): RuleHit[] {
  if (!isIWork(e)) return hits;
  return hits.map((h) =>
    h.code === 'app.installed_unmanaged' ? { ...h, code: 'app.iwork_preinstalled' } : h,
  );
}

import { isVppErrorNumber } from '../error-chain.ts';
import type { Confidence, EvidenceItem, EvidenceSource } from '../evidence.ts';
import { TOKEN_VPP_NUMBERS, VPP_ERROR_MAP } from '../tables.ts';
import { chainOf, fact, hit, weaker } from './facts.ts';
import type { Rule, RuleHit } from './facts.ts';

/** Licences: the auto-assign setting, Apple's assignment list and counts, Apple's error numbers. */

/** The auto-assign token in force for the device's group must be the distribution's token (DESIGN §4). */
export const autoAssignRule: Rule = (e) => {
  const g = e.groups;
  const mode = e.job?.licenseMode;
  if (mode === 'manual' || !g || g.effectiveAutoAssignTokenId === undefined || !g.distributionTokenId)
    return [];
  const effective = g.effectiveAutoAssignTokenId;
  const distribution = g.distributionTokenId;
  if (effective === distribution) return [];
  // Without the mode known, the distribution may not have relied on auto-assignment at all.
  const base: Confidence = mode === 'auto' ? 'confirmed' : 'likely';
  const ev: EvidenceItem[] = [
    fact('group.effectiveAutoAssignTokenId', effective, 'group_settings'),
    fact('distribution.tokenId', distribution, 'job'),
  ];
  if (mode) ev.push(fact('job.licenseMode', mode, 'job'));
  const inheritedFrom = g.autoAssignInheritedFrom;
  if (effective !== null && inheritedFrom) {
    ev.push(fact('group.autoAssignInheritedFrom', inheritedFrom, 'group_settings'));
    return [
      hit('autoassign.inherited_only', base, ...ev),
      hit('autoassign.token_misconfigured', weaker(base), ...ev),
    ];
  }
  return [hit('autoassign.token_misconfigured', base, ...ev)];
};

/** Apple's assignment list and licence counts. */
export const licenceRule: Rule = (e) => {
  const l = e.licence;
  if (!l) return [];
  const out: RuleHit[] = [];
  // Apple refused the assignment and said why (9709, 9707, 9624, …): that refusal is the cause, read
  // by the VPP-number rule; "no licence on the serial" is only its consequence.
  const refused = l.assignmentState === 'failed' && !!l.lastVppError;
  if (l.assignedToSerial === false && !refused) {
    // While the assignment is in flight, "not assigned yet" is expected rather than a cause.
    const inFlight = e.job?.status === 'license_assigning' || l.assignmentState === 'assigning';
    out.push(
      hit(
        'license.not_assigned',
        inFlight ? 'possible' : 'confirmed',
        fact('licence.assignedToSerial', false, 'vpp_assignments'),
      ),
    );
  }
  const avail = l.availableCount;
  const needed = l.neededCount;
  if (typeof avail === 'number' && typeof needed === 'number' && avail < needed) {
    out.push(
      hit(
        'license.insufficient',
        'confirmed',
        fact('licence.availableCount', avail, 'vpp_api'),
        fact('licence.neededCount', needed, 'haishin'),
      ),
    );
  } else if (avail === 0 && l.assignedToSerial !== true) {
    out.push(hit('license.insufficient', 'likely', fact('licence.availableCount', 0, 'vpp_api')));
  }
  if (l.assignmentState === 'failed' && !l.lastVppError) {
    out.push(hit('license.apple_refused', 'likely', fact('licence.assignmentState', 'failed', 'vpp_api')));
  }
  return out;
};

/** Apps and Books error numbers, from the last licence call, the token, or a pasted error. */
export const vppErrorRule: Rule = (e) => {
  const seen: { n: number; message: string | null; source: EvidenceSource; fact: string }[] = [];
  const last = e.licence?.lastVppError;
  if (last)
    seen.push({ n: last.errorNumber, message: last.errorMessage, source: 'vpp_api', fact: 'vpp.lastError' });
  for (const n of new Set(e.token?.vppErrorNumbers ?? [])) {
    if (TOKEN_VPP_NUMBERS.has(n))
      seen.push({ n, message: null, source: 'vpp_token', fact: 'token.vppError' });
  }
  for (const item of chainOf(e)) {
    if (item.domain === null && isVppErrorNumber(item.code)) {
      seen.push({ n: item.code, message: item.description, source: 'error_chain', fact: 'error.vppNumber' });
    }
  }
  const out: RuleHit[] = [];
  for (const s of seen) {
    const ev = fact(s.fact, s.message ? `${s.n}: ${s.message}` : s.n, s.source);
    const known = VPP_ERROR_MAP.get(s.n);
    if (known) for (const [code, conf] of known.causes) out.push(hit(code, conf, ev));
    else out.push(hit('license.apple_refused', 'likely', ev));
  }
  return out;
};

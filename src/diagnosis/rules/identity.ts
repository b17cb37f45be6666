import { fact, hit } from './facts.ts';
import type { Rule, RuleHit } from './facts.ts';

/**
 * The device's identity certificate has expired (decision 0023): haishin refuses every message it
 * signs, so it looks silent — offline, or gone after a while — whatever else is true of it. Only for
 * a device still counted as managed: one that checked out or was deactivated is explained as such.
 */
export const identityRule: Rule = (e) => {
  const d = e.device;
  if (!d?.identityNotAfter || (d.status !== 'enrolled' && d.status !== 'pending')) return [];
  if (d.identityNotAfter.getTime() > e.now.getTime()) return [];
  const out: RuleHit[] = [];
  const evidence = [fact('device.identityNotAfter', d.identityNotAfter, 'haishin')];
  if (d.lastSeenAt) evidence.push(fact('device.lastSeenAt', d.lastSeenAt, 'checkin'));
  out.push(hit('device.identity_expired', 'confirmed', ...evidence));
  return out;
};

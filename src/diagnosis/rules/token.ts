import type { EvidenceItem } from '../evidence.ts';
import { fact, hit } from './facts.ts';
import type { Rule, RuleHit } from './facts.ts';

/** The VPP token: its state, and whether it reaches the device's group (registered or shared). */

/** Token state as haishin and Apple see it. */
export const tokenStateRule: Rule = (e) => {
  const t = e.token;
  if (!t) return [];
  const out: RuleHit[] = [];
  const state = t.state ? fact('token.state', t.state, 'vpp_token') : null;
  const withState = (...more: EvidenceItem[]) => (state ? [state, ...more] : more);
  if (t.state === 'expired' || (t.expiresAt && t.expiresAt.getTime() <= e.now.getTime())) {
    out.push(
      hit(
        'token.expired',
        'confirmed',
        ...withState(...(t.expiresAt ? [fact('token.expiresAt', t.expiresAt, 'vpp_token')] : [])),
      ),
    );
  }
  if (t.state === 'revoked') out.push(hit('token.revoked', 'confirmed', ...withState()));
  if (t.state === 'invalid') out.push(hit('token.invalid', 'confirmed', ...withState()));
  if (t.state === 'legacy_unmigrated') out.push(hit('token.not_migrated', 'confirmed', ...withState()));
  if (t.state === 'other_mdm') {
    out.push(
      hit(
        'token.other_mdm',
        'confirmed',
        ...withState(...(t.otherMdmName ? [fact('token.otherMdm', t.otherMdmName, 'vpp_api')] : [])),
      ),
    );
  } else {
    // Licences vanishing now and then (9610) is how a second MDM on the same location shows.
    const notFound = (t.vppErrorNumbers ?? []).filter((n) => n === 9610).length;
    if (notFound > 0) {
      out.push(
        hit(
          'token.other_mdm',
          notFound >= 3 ? 'likely' : 'possible',
          fact('token.vppError9610Count', notFound, 'vpp_api'),
        ),
      );
    }
  }
  return out;
};

/** The distribution token must be registered or shared to the device's group (docs/decisions/0005). */
export const tokenPlacementRule: Rule = (e) => {
  const g = e.groups;
  const t = e.token;
  const out: RuleHit[] = [];
  const deviceGroup = g?.deviceGroupId;
  let reachable = g?.tokenReachable;
  if (reachable === undefined || reachable === null) {
    if (deviceGroup && t?.registeredGroupId && typeof t.sharedToDeviceGroup === 'boolean') {
      reachable = t.registeredGroupId === deviceGroup || t.sharedToDeviceGroup;
    }
  }
  if (reachable === false) {
    const ev: EvidenceItem[] = [fact('token.reachableFromDeviceGroup', false, 'group_settings')];
    if (t?.registeredGroupId) ev.push(fact('token.registeredGroupId', t.registeredGroupId, 'vpp_token'));
    if (deviceGroup) ev.push(fact('device.groupId', deviceGroup, 'group_settings'));
    if (typeof t?.sharedToDeviceGroup === 'boolean')
      ev.push(fact('token.sharedToDeviceGroup', t.sharedToDeviceGroup, 'vpp_token'));
    if (g?.tokensWithinReach === 0) {
      // No token in the group or above it: nothing could be shared here, one must be registered.
      // The distribution's token sits beside or below the group, where no share can come from.
      const none = fact('group.tokensRegisteredOrSharedUpTheTree', 0, 'group_settings');
      out.push(hit('token.not_registered', 'confirmed', none, ...ev));
      out.push(hit('token.not_shared', 'likely', ...ev));
    } else {
      if (typeof g?.tokensWithinReach === 'number')
        ev.push(fact('group.tokensRegisteredOrSharedUpTheTree', g.tokensWithinReach, 'group_settings'));
      out.push(hit('token.not_shared', 'confirmed', ...ev));
    }
  } else if (g?.tokensUsableInGroup === 0) {
    out.push(hit('token.not_registered', 'confirmed', fact('group.tokensUsable', 0, 'group_settings')));
  } else if (g?.distributionTokenId === null && e.job?.status === 'license_failed') {
    out.push(hit('token.not_registered', 'likely', fact('distribution.tokenId', null, 'job')));
  }
  return out;
};

import { ancestry, isDescendant } from './groups.ts';
import type { GroupNode } from './groups.ts';

/** A VPP token as the sharing rules see it: registered to one group, shared to some of its descendants. */
export interface TokenPlacement {
  tokenId: string;
  registeredGroupId: string;
  sharedGroupIds: readonly string[];
}

/**
 * A token is usable in the group it is registered to and in each group it was shared to —
 * explicitly: sharing exists precisely because registration alone does not reach subgroups
 * (docs/decisions/0005-token-sharing-scope.md).
 */
export function tokenUsableIn(token: TokenPlacement, groupId: string): boolean {
  return token.registeredGroupId === groupId || token.sharedGroupIds.includes(groupId);
}

export type ShareRefusal = 'share_self' | 'share_not_descendant' | 'share_already' | 'share_from_shared';

/**
 * Why sharing `token` to `targetGroupId` is refused, or null. `fromGroupId` is the group the
 * administrator shares from; only the registered group may share (a shared token cannot be shared onward).
 */
export function checkShare(
  groups: readonly GroupNode[],
  token: TokenPlacement,
  targetGroupId: string,
  fromGroupId: string = token.registeredGroupId,
): ShareRefusal | null {
  if (fromGroupId !== token.registeredGroupId) return 'share_from_shared';
  if (targetGroupId === token.registeredGroupId) return 'share_self';
  if (!isDescendant(groups, targetGroupId, token.registeredGroupId)) return 'share_not_descendant';
  if (token.sharedGroupIds.includes(targetGroupId)) return 'share_already';
  return null;
}

export interface EffectiveAutoAssign {
  groupId: string;
  /** The token used to auto-assign licences for devices of this group, or null when none applies. */
  tokenId: string | null;
  /** The ancestor whose setting applies; null when the group has its own setting (or none at all). */
  inheritedFrom: string | null;
}

/** The auto-assign token a group uses: its own setting, else the nearest ancestor's. */
export function effectiveAutoAssign(
  groups: readonly GroupNode[],
  settings: ReadonlyMap<string, string>,
  groupId: string,
): EffectiveAutoAssign {
  for (const id of ancestry(groups, groupId)) {
    const tokenId = settings.get(id);
    if (tokenId !== undefined) return { groupId, tokenId, inheritedFrom: id === groupId ? null : id };
  }
  return { groupId, tokenId: null, inheritedFrom: null };
}

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

/**
 * Why `token` cannot be used in `groupId`, or null when it can (DESIGN §5):
 * - `not_registered` — no token at all is registered to the group or to any of its ancestors, and
 *   none is shared to it: there is nothing a share could bring, a token must be registered first;
 * - `not_shared` — a token the group could use exists (registered to it or an ancestor, or
 *   shared to it), but the distribution's token is not shared to the group.
 * A token registered to a sibling or a descendant does not count: it can never be shared here.
 */
export function tokenReachGap(
  groups: readonly GroupNode[],
  all: readonly TokenPlacement[],
  token: TokenPlacement,
  groupId: string,
): 'not_registered' | 'not_shared' | null {
  if (tokenUsableIn(token, groupId)) return null;
  return tokensWithinReach(groups, all, groupId) === 0 ? 'not_registered' : 'not_shared';
}

/** Tokens registered to the group or one of its ancestors, or shared to the group: the ones it can have. */
export function tokensWithinReach(
  groups: readonly GroupNode[],
  all: readonly TokenPlacement[],
  groupId: string,
): number {
  const line = new Set(ancestry(groups, groupId));
  return all.filter((t) => line.has(t.registeredGroupId) || t.sharedGroupIds.includes(groupId)).length;
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

export type TokenState =
  'active' | 'expiring' | 'expired' | 'revoked' | 'invalid' | 'other_mdm' | 'legacy_unmigrated';
export type TokenClaim = 'ours' | 'other_mdm' | 'unclaimed' | 'legacy_unmigrated';

const DAY_MS = 86_400_000;
/** DESIGN §4: warn 30, 14, 7 and 1 days before a token expires. */
export const EXPIRY_WARNING_DAYS = [30, 14, 7, 1] as const;

/**
 * What the administrator sees about a token. Apple's verdicts (revoked, invalid) win over the
 * local view, expiry over claims: an expired token cannot be used whoever claims it.
 */
export function tokenState(
  t: { expiresAt: Date; claim: TokenClaim; appleState: string | null },
  now: Date,
): TokenState {
  if (t.appleState === 'revoked') return 'revoked';
  if (t.appleState === 'invalid') return 'invalid';
  if (t.appleState === 'expired' || t.expiresAt.getTime() <= now.getTime()) return 'expired';
  if (t.claim === 'legacy_unmigrated') return 'legacy_unmigrated';
  if (t.claim === 'other_mdm') return 'other_mdm';
  return t.expiresAt.getTime() - now.getTime() <= EXPIRY_WARNING_DAYS[0] * DAY_MS ? 'expiring' : 'active';
}

/** Whole days left before expiry (0 on the last day, negative once expired). */
export function daysLeft(expiresAt: Date, now: Date): number {
  return Math.floor((expiresAt.getTime() - now.getTime()) / DAY_MS);
}

/**
 * The warning threshold due now and not yet given (each fires once, the smallest reached wins),
 * or null. `lastWarned` is the threshold given last for this expiry date.
 */
export function dueExpiryWarning(expiresAt: Date, lastWarned: number | null, now: Date): number | null {
  const left = (expiresAt.getTime() - now.getTime()) / DAY_MS;
  if (left <= 0) return null;
  const reached = EXPIRY_WARNING_DAYS.filter((d) => left <= d);
  const smallest = reached[reached.length - 1];
  if (smallest === undefined) return null;
  return lastWarned !== null && lastWarned <= smallest ? null : smallest;
}

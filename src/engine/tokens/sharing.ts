import { Refusal } from '../../core/refusal.ts';
import { checkShare, effectiveAutoAssign, tokenUsableIn } from '../../core/tokens.ts';
import type { EffectiveAutoAssign } from '../../core/tokens.ts';
import type { TokenContext } from './context.ts';
import type { LicenceLedger, LicenseChange } from './ledger.ts';

/**
 * Where a token may be used (DESIGN §4): shares from its registered group to descendant groups
 * (removing one reclaims the licences assigned through it and clears an auto-assign setting
 * naming the token there), and the auto-assign setting of each group, inherited by its
 * descendants that set none.
 */
export class TokenSharing {
  readonly #ctx: TokenContext;
  readonly #ledger: LicenceLedger;

  constructor(ctx: TokenContext, ledger: LicenceLedger) {
    this.#ctx = ctx;
    this.#ledger = ledger;
  }

  async share(id: string, groupId: string, fromGroupId?: string): Promise<void> {
    const ctx = this.#ctx;
    const row = await ctx.mustGet(id);
    if (!(await ctx.store.groups.get(groupId))) throw new Refusal(404, 'group.not_found', { id: groupId });
    const groups = await ctx.groupNodes();
    const placement = {
      tokenId: id,
      registeredGroupId: row.group_id,
      sharedGroupIds: await ctx.store.vpp.sharesOf(id),
    };
    const refusal = checkShare(groups, placement, groupId, fromGroupId);
    if (refusal) throw new Refusal(409, `share.${refusal}`, { group: groupId, registered: row.group_id });
    await ctx.store.vpp.addShare(id, groupId, ctx.now());
  }

  /** Removing a share reclaims the licences assigned through it. */
  async unshare(id: string, groupId: string): Promise<LicenseChange[]> {
    const ctx = this.#ctx;
    await ctx.mustGet(id);
    if (!(await ctx.store.vpp.removeShare(id, groupId)))
      throw new Refusal(404, 'share.not_found', { group: groupId });
    // The token is no longer usable there: an auto-assign setting naming it would silently fail.
    if ((await ctx.store.vpp.autoAssignSettings()).get(groupId) === id)
      await ctx.store.vpp.setAutoAssign(groupId, null, ctx.now());
    return this.#ledger.reclaimThroughShare(id, groupId);
  }

  async setAutoAssign(groupId: string, tokenId: string | null): Promise<EffectiveAutoAssign> {
    const ctx = this.#ctx;
    if (!(await ctx.store.groups.get(groupId))) throw new Refusal(404, 'group.not_found', { id: groupId });
    if (tokenId !== null) {
      const row = await ctx.mustGet(tokenId);
      const placement = {
        tokenId,
        registeredGroupId: row.group_id,
        sharedGroupIds: await ctx.store.vpp.sharesOf(tokenId),
      };
      if (!tokenUsableIn(placement, groupId))
        throw new Refusal(409, 'autoassign.token_not_usable', { id: tokenId, group: groupId });
    }
    await ctx.store.vpp.setAutoAssign(groupId, tokenId, ctx.now());
    return this.effectiveAutoAssign(groupId);
  }

  async effectiveAutoAssign(groupId: string): Promise<EffectiveAutoAssign> {
    const ctx = this.#ctx;
    if (!(await ctx.store.groups.get(groupId))) throw new Refusal(404, 'group.not_found', { id: groupId });
    return effectiveAutoAssign(await ctx.groupNodes(), await ctx.store.vpp.autoAssignSettings(), groupId);
  }
}

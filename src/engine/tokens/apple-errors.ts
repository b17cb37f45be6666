import { isTokenKind, VppError } from '../../apple/vpp/errors.ts';
import { Refusal } from '../../core/refusal.ts';
import type { TokenContext } from './context.ts';

/**
 * Apple's token-level refusals (9621 expired, 9625 revoked, 9622 / 9722 invalid) recorded on the
 * token the moment they are met — in a sync, a licence call or a manual-mode check alike —, so
 * GET /vpp-tokens, GET /status and the console say it at once; and Apple's refusal put in the
 * administrator's words.
 */

/** Records Apple's refusal on the token (its state for a token-level error, its last error always). */
export async function noteAppleError(ctx: TokenContext, id: string, err: VppError): Promise<void> {
  const appleState =
    err.kind === 'token_expired'
      ? 'expired'
      : err.kind === 'token_revoked'
        ? 'revoked'
        : err.kind === 'token_invalid'
          ? 'invalid'
          : null;
  await ctx.store.vpp.updateToken(
    id,
    {
      ...(appleState ? { apple_state: appleState } : {}),
      last_error: JSON.stringify({
        kind: err.kind,
        errorNumber: err.errorNumber ?? null,
        message: err.errorMessage ?? err.message,
      }),
    },
    ctx.now(),
  );
}

/** Runs a call with the token's client; a token-level refusal is recorded on the token before it is thrown on. */
export async function withToken<T>(ctx: TokenContext, id: string, call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (err) {
    if (err instanceof VppError && isTokenKind(err.kind) && err.kind !== 'other_mdm')
      await noteAppleError(ctx, id, err).catch((e: unknown) => ctx.report(e));
    throw err;
  }
}

/** A later batch refused for the token itself (the first one throws, see {@link withToken}). */
export async function noteDeadToken(
  ctx: TokenContext,
  id: string,
  failed: readonly { error: VppError }[],
): Promise<void> {
  const dead = failed.find((f) => isTokenKind(f.error.kind) && f.error.kind !== 'other_mdm');
  if (dead) await noteAppleError(ctx, id, dead.error).catch((e: unknown) => ctx.report(e));
}

/** Apple's token-level refusal of a registration, in the administrator's words. */
export function appleRefused(err: VppError): Refusal {
  return new Refusal(409, 'token.apple_refused', {
    detail: `${err.kind} ${err.errorNumber ?? ''} ${err.errorMessage ?? ''}`.trim(),
  });
}

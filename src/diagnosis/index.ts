import { parseErrorText } from './error-chain.ts';
import type { ChainItem, ParsedError } from './error-chain.ts';
import type { Cause, Evidence } from './evidence.ts';
import { diagnose } from './rank.ts';

export * from './catalogue.ts';
export * from './error-chain.ts';
export * from './evidence.ts';
export * from './rank.ts';
export * from './rules/index.ts';
export * from './tables.ts';
export * from './verdict.ts';

/**
 * The facts a pasted error alone provides: a device error when there is a chain or a
 * RejectionReason, a failed licence call when there is only an Apps and Books error.
 */
export function evidenceFromParsedError(parsed: ParsedError, now: Date, rawText?: string): Evidence {
  const deviceSide = parsed.chain.length > 0 || parsed.rejectionReason !== null;
  return {
    now,
    job: {
      status: deviceSide || !parsed.vppError ? 'device_error' : 'license_failed',
      errorChain: parsed.chain,
      rejectionReason: parsed.rejectionReason,
      rawError: rawText ?? null,
    },
    licence: parsed.vppError ? { lastVppError: parsed.vppError } : null,
  };
}

/** `POST /diagnose/error`: `{text}` → `{chain, causes}`. Only the pasted text is evidence here. */
export function diagnoseErrorText(text: string, now: Date): { chain: ChainItem[]; causes: Cause[] } {
  const parsed = parseErrorText(text);
  return { chain: parsed.chain, causes: diagnose(evidenceFromParsedError(parsed, now, text)) };
}

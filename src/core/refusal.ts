import type { ApiMessageCode } from './messages.ts';

/**
 * A business rule said no. Services throw it; the API turns it into its status and the
 * bilingual message of `code`, so the rule and its explanation live in one place.
 */
export class Refusal extends Error {
  constructor(
    readonly status: 400 | 404 | 409 | 502,
    readonly code: ApiMessageCode,
    readonly params: Record<string, string | number> = {},
  ) {
    super(code);
  }
}

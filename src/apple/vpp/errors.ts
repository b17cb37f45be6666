/**
 * What went wrong with an Apps and Books (VPP) call, reduced to what the engine and the
 * diagnosis need to decide: stop using the token, retry later, or report per device.
 */
export type VppErrorKind =
  /** 9621: the token expired; only a new .vpptoken helps (`token.expired`). */
  | 'token_expired'
  /** 9625: Apple revoked the token (password reset, token re-downloaded) (`token.revoked`). */
  | 'token_revoked'
  /** 9622, 9722: not a valid content token (`token.invalid`). */
  | 'token_invalid'
  /** The location is claimed by another MDM server (`mdmInfo.id` is not ours) (`token.other_mdm`). */
  | 'other_mdm'
  /** 9709: not enough licences left (`license.insufficient`). */
  | 'insufficient_licenses'
  /** 9706: the licence cannot be revoked. */
  | 'not_revocable'
  /** 9707: the asset cannot be licensed to a device (`app.not_device_assignable`). */
  | 'not_device_assignable'
  /** 9610: licence not found; sporadic when two MDMs use one token. */
  | 'license_not_found'
  /** 9646 or HTTP 429: slow down. */
  | 'rate_limited'
  /** 9603, HTTP 5xx, network trouble: try again later (`device.store_transient`). */
  | 'transient'
  /** 9700–9705: the request is over a service limit or repeats itself. */
  | 'limit_exceeded'
  | 'unknown';

export const VPP_ERROR_KINDS: readonly VppErrorKind[] = [
  'token_expired',
  'token_revoked',
  'token_invalid',
  'other_mdm',
  'insufficient_licenses',
  'not_revocable',
  'not_device_assignable',
  'license_not_found',
  'rate_limited',
  'transient',
  'limit_exceeded',
  'unknown',
];

/** `errorInfo` of an error response: which part of the request the error is about. */
export interface VppErrorInfo {
  assets?: Array<{ adamId: string; pricingParam: string }>;
  serialNumbers?: string[];
  clientUserIds?: string[];
}

const BY_NUMBER = new Map<number, VppErrorKind>([
  [9621, 'token_expired'],
  [9625, 'token_revoked'],
  [9622, 'token_invalid'],
  [9722, 'token_invalid'],
  [9709, 'insufficient_licenses'],
  [9706, 'not_revocable'],
  // The v1 number for "License is irrevocable": a legacy body met during migration means the same.
  [9607, 'not_revocable'],
  [9707, 'not_device_assignable'],
  // The v1 number for "License not eligible for device assignment" (fixture v1-error-9628).
  [9628, 'not_device_assignable'],
  [9610, 'license_not_found'],
  [9646, 'rate_limited'],
  [9603, 'transient'],
  // "Volume Purchase Program is currently in maintenance mode. Please try again later."
  [9644, 'transient'],
]);

/**
 * The error number decides when there is one (Apple answers some errors with HTTP 200);
 * otherwise the HTTP status does.
 */
export function classifyVppError(errorNumber: number | null | undefined, httpStatus: number): VppErrorKind {
  if (typeof errorNumber === 'number' && Number.isFinite(errorNumber)) {
    const known = BY_NUMBER.get(errorNumber);
    if (known) return known;
    if (errorNumber >= 9700 && errorNumber <= 9705) return 'limit_exceeded';
  }
  if (httpStatus === 429) return 'rate_limited';
  if (httpStatus >= 500 && httpStatus <= 599) return 'transient';
  // A bare 401/403 without an error body is Apple refusing the bearer.
  if ((httpStatus === 401 || httpStatus === 403) && errorNumber == null) return 'token_invalid';
  return 'unknown';
}

/** Kinds a later identical request may cure; everything else needs a person or a different request. */
export function isRetryableKind(kind: VppErrorKind): boolean {
  return kind === 'rate_limited' || kind === 'transient';
}

/** Kinds that condemn the token itself: no further call with it can succeed. */
export function isTokenKind(kind: VppErrorKind): boolean {
  return (
    kind === 'token_expired' || kind === 'token_revoked' || kind === 'token_invalid' || kind === 'other_mdm'
  );
}

export interface VppErrorInit {
  kind?: VppErrorKind;
  errorNumber?: number;
  httpStatus: number;
  errorMessage?: string;
  errorInfo?: VppErrorInfo;
  /** The response body exactly as received, for the support bundle. */
  raw?: string;
  /** "METHOD path" of the failing call. */
  endpoint?: string;
  /** Requests made for this call, the failing one included. */
  attempts?: number;
  /** What the server's Retry-After asked for, when it did. */
  retryAfterMs?: number;
  message?: string;
}

export class VppError extends Error {
  readonly kind: VppErrorKind;
  readonly errorNumber?: number;
  /** 0 when no HTTP answer arrived (network failure, timeout). */
  readonly httpStatus: number;
  readonly errorMessage?: string;
  readonly errorInfo?: VppErrorInfo;
  readonly raw?: string;
  readonly endpoint?: string;
  readonly attempts?: number;
  readonly retryAfterMs?: number;

  constructor(init: VppErrorInit) {
    const kind = init.kind ?? classifyVppError(init.errorNumber, init.httpStatus);
    const number = init.errorNumber !== undefined ? ` ${init.errorNumber}` : '';
    const where = init.endpoint ? ` on ${init.endpoint}` : '';
    super(
      init.message ??
        `Apps and Books API error${number} (${kind}, HTTP ${init.httpStatus})${where}: ${init.errorMessage ?? 'no message'}`,
    );
    this.name = 'VppError';
    this.kind = kind;
    if (init.errorNumber !== undefined) this.errorNumber = init.errorNumber;
    this.httpStatus = init.httpStatus;
    if (init.errorMessage !== undefined) this.errorMessage = init.errorMessage;
    if (init.errorInfo !== undefined) this.errorInfo = init.errorInfo;
    if (init.raw !== undefined) this.raw = init.raw;
    if (init.endpoint !== undefined) this.endpoint = init.endpoint;
    if (init.attempts !== undefined) this.attempts = init.attempts;
    if (init.retryAfterMs !== undefined) this.retryAfterMs = init.retryAfterMs;
  }

  get retryable(): boolean {
    return isRetryableKind(this.kind);
  }
}

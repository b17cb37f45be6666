import type { FastifyServerOptions } from 'fastify';
import { apiMessage } from '../core/messages.ts';
import type { ApiMessageCode, Bilingual } from '../core/messages.ts';

/** A refusal of the admin API: HTTP status, stable code, and the message in both languages. */
export class ApiError extends Error {
  readonly status: number;
  readonly code: string;
  readonly messages: Bilingual;
  readonly details: unknown;

  constructor(status: number, code: string, messages: Bilingual, details?: unknown) {
    super(messages.en);
    this.status = status;
    this.code = code;
    this.messages = messages;
    this.details = details;
  }

  static of(
    status: number,
    code: ApiMessageCode,
    params: Record<string, string | number> = {},
    details?: unknown,
  ): ApiError {
    return new ApiError(status, code, apiMessage(code, params), details);
  }
}

/** DESIGN §7 error shape; `message` follows Accept-Language, `messages` carries both. */
export function errorBody(err: ApiError, acceptLanguage: string | undefined) {
  const ja = /^\s*ja\b/i.test(acceptLanguage ?? '');
  return {
    error: {
      code: err.code,
      message: ja ? err.messages.ja : err.messages.en,
      messages: err.messages,
      ...(err.details === undefined ? {} : { details: err.details }),
    },
  };
}

/**
 * Fastify's own refusals before any route runs (a URL with broken percent-encoding such as
 * `/api/v1/devices/%C0%80`): still a 400 in the DESIGN §7 shape, found by the fuzz run (decision 0028).
 */
export const answerFrameworkError: NonNullable<FastifyServerOptions['frameworkErrors']> = (
  err,
  req,
  reply,
) => {
  const accept = req.headers['accept-language'];
  const body = errorBody(ApiError.of(400, 'request.invalid', { detail: err.message }), accept);
  // The reply's route generics are unknown here (no route matched): a plain 400 with the body.
  void (reply as unknown as { code(s: number): { send(b: unknown): unknown } }).code(400).send(body);
};

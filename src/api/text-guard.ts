import type { FastifyRequest } from 'fastify';
import { ApiError } from './errors.ts';

/** Whether a value holds U+0000 in a key or a string. Iterative: bodies may be deeply nested. */
function nulIn(value: unknown): boolean {
  const stack: unknown[] = [value];
  while (stack.length > 0) {
    const v = stack.pop();
    if (typeof v === 'string') {
      if (v.includes('\u0000')) return true;
    } else if (Array.isArray(v)) {
      for (const item of v) stack.push(item);
    } else if (v !== null && typeof v === 'object') {
      for (const [key, item] of Object.entries(v)) {
        if (key.includes('\u0000')) return true;
        stack.push(item);
      }
    }
  }
  return false;
}

/**
 * A preValidation hook for the admin API: text holding U+0000 is a 400 `request.nul_character`.
 * PostgreSQL refuses NUL in text columns (the query failed, a 500) while SQLite stores it; refusing
 * it before any route runs gives both stores one behaviour (found by the fuzz run, decision 0028).
 */
export async function refuseNulCharacters(req: FastifyRequest): Promise<void> {
  for (const [where, value] of [
    ['path', req.params],
    ['query', req.query],
    ['body', req.body],
  ] as const) {
    if (nulIn(value)) throw ApiError.of(400, 'request.nul_character', { where });
  }
}

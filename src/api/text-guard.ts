import type { FastifyRequest } from 'fastify';
import { holdsNul } from '../core/nul.ts';
import { ApiError } from './errors.ts';

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
    if (holdsNul(value)) throw ApiError.of(400, 'request.nul_character', { where });
  }
}

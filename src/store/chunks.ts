/**
 * Bound parameters per statement are limited (SQLite 32,766, PostgreSQL 65,535): an IN list over
 * a whole fleet — a push to 100,000 devices — is run as several statements of `size` values.
 */
export const IN_LIST_CHUNK = 1000;

export async function inChunks<T, R>(
  values: readonly T[],
  run: (chunk: T[]) => Promise<R>,
  size = IN_LIST_CHUNK,
): Promise<R[]> {
  const results: R[] = [];
  for (let i = 0; i < values.length; i += size) results.push(await run(values.slice(i, i + size)));
  return results;
}

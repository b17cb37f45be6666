/**
 * Whether a parsed JSON value holds U+0000 in a key or a string. PostgreSQL refuses NUL in text
 * columns (SQLite stores it), so input holding one is refused before it reaches the store.
 * Iterative: bodies may be deeply nested.
 */
export function holdsNul(value: unknown): boolean {
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

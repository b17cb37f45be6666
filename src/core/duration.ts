const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** Parses the `30s`, `5m`, `6d` forms of the configuration into milliseconds. */
export function parseDuration(text: string): number {
  const match = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)\s*$/.exec(text);
  if (!match) throw new Error(`invalid duration "${text}": use a number and a unit, e.g. 30s, 5m, 80m, 6d`);
  return Math.round(Number(match[1]) * UNIT_MS[match[2]!]!);
}

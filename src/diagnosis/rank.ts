import { CATALOGUE } from './catalogue.ts';
import type { CauseCode } from './catalogue.ts';
import type { Cause, Confidence, Evidence, EvidenceItem } from './evidence.ts';
import { answeredSinceLastPush, hit } from './rules/facts.ts';
import type { RuleHit } from './rules/facts.ts';
import { fallbackHits } from './rules/fallback.ts';
import { RULES } from './rules/index.ts';
import { AFTER_SUCCESS, CAUSE_PRIORITY } from './tables.ts';

/**
 * The ranking: every rule's hits for one piece of evidence are merged per code, ordered by
 * confidence then CAUSE_PRIORITY (tables.ts), and turned into the catalogue's causes
 * (docs/decisions/0008). Pre-flight ranks its predictions with the same functions.
 */

const CONFIDENCE_RANK: Record<Confidence, number> = { confirmed: 0, likely: 1, possible: 2 };

/** One hit per code: the strongest confidence, the union of the evidence (first seen first). */
export function mergeHits(hits: readonly RuleHit[]): RuleHit[] {
  const byCode = new Map<
    CauseCode,
    { confidence: Confidence; evidence: EvidenceItem[]; keys: Set<string> }
  >();
  for (const h of hits) {
    let m = byCode.get(h.code);
    if (!m) {
      m = { confidence: h.confidence, evidence: [], keys: new Set() };
      byCode.set(h.code, m);
    } else if (CONFIDENCE_RANK[h.confidence] < CONFIDENCE_RANK[m.confidence]) {
      m.confidence = h.confidence;
    }
    for (const ev of h.evidence) {
      const key = `${ev.fact}\u0000${String(ev.value)}\u0000${ev.source}`;
      if (m.keys.has(key)) continue;
      m.keys.add(key);
      m.evidence.push(ev);
    }
  }
  return [...byCode.entries()].map(([code, m]) => ({ code, confidence: m.confidence, evidence: m.evidence }));
}

/** Confirmed before likely before possible; then root causes before symptoms (CAUSE_PRIORITY). */
export function rankHits(hits: readonly RuleHit[]): RuleHit[] {
  return [...hits].sort(
    (a, b) =>
      CONFIDENCE_RANK[a.confidence] - CONFIDENCE_RANK[b.confidence] ||
      CAUSE_PRIORITY[a.code] - CAUSE_PRIORITY[b.code] ||
      a.code.localeCompare(b.code),
  );
}

/**
 * A device that answered after the last push is not off (DESIGN §5 evidence for
 * `device.powered_off_or_offline` is a push with no check-in since): whichever rule suggested it,
 * the device's own answer rules it out.
 */
export function notOfflineWhenAnswering(e: Evidence, hits: readonly RuleHit[]): RuleHit[] {
  const answered = hits.some((h) => h.code === 'device.powered_off_or_offline')
    ? answeredSinceLastPush(e)
    : null;
  if (!answered) return [...hits];
  const rest = hits.filter((h) => h.code !== 'device.powered_off_or_offline');
  return rest.length > 0 ? rest : [hit('device.error_unknown', 'possible', ...answered)];
}

export function toCause(h: RuleHit): Cause {
  const entry = CATALOGUE[h.code];
  return {
    code: h.code,
    confidence: h.confidence,
    title: { ...entry.title },
    remedy: { ...entry.remedy },
    evidence: h.evidence.map((ev) => ({ ...ev })),
    actions: [...entry.actions],
  };
}

/**
 * The ranked causes for a job (or a planned job when `job` is absent), best first. Never empty
 * for a job that did not succeed; may be empty for a success or a planned job with nothing wrong.
 */
export function diagnose(e: Evidence): Cause[] {
  const install = e.job?.kind !== 'uninstall';
  let hits = RULES.filter((r) => install || !r.installOnly).flatMap((r) => r.run(e));
  if (e.job?.status === 'success') hits = hits.filter((h) => AFTER_SUCCESS.has(h.code));
  let merged = mergeHits(hits);
  if (merged.length === 0) merged = mergeHits(fallbackHits(e));
  return rankHits(notOfflineWhenAnswering(e, merged)).map(toCause);
}

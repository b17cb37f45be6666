import { isIWorkBundle } from '../../core/apple-apps.ts';
import type { CauseCode } from '../catalogue.ts';
import type { ChainItem } from '../error-chain.ts';
import { DEFAULT_THRESHOLDS } from '../evidence.ts';
import type { Confidence, Evidence, EvidenceItem, EvidenceSource } from '../evidence.ts';
import { PUSH_GRACE_MS } from '../tables.ts';

/**
 * What every rule shares: the shape of a finding, and small readers of the evidence (how long the
 * device has been silent, whether it answered since the last push, versions, the error chain).
 */

/** One finding of one rule: a cause, how sure, and the facts that say so. */
export interface RuleHit {
  code: CauseCode;
  confidence: Confidence;
  evidence: EvidenceItem[];
}

export type Rule = (e: Evidence) => RuleHit[];

export function hit(code: CauseCode, confidence: Confidence, ...evidence: EvidenceItem[]): RuleHit {
  return { code, confidence, evidence };
}

export function fact(f: string, value: EvidenceItem['value'] | Date, source: EvidenceSource): EvidenceItem {
  return { fact: f, value: value instanceof Date ? value.toISOString() : value, source };
}

/** One step weaker; used when a fact is indirect (no domain on a code, an unknown mode). */
export function weaker(c: Confidence): Confidence {
  return c === 'confirmed' ? 'likely' : 'possible';
}

export function thresholds(e: Evidence): { offlineAfterMs: number; unenrolledAfterMs: number } {
  return {
    offlineAfterMs: e.thresholds?.offlineAfterMs ?? DEFAULT_THRESHOLDS.offlineAfterMs,
    unenrolledAfterMs: e.thresholds?.unenrolledAfterMs ?? DEFAULT_THRESHOLDS.unenrolledAfterMs,
  };
}

/** Milliseconds since the device last contacted haishin; undefined when unknown or never. */
export function silenceMs(e: Evidence): number | undefined {
  const seen = e.device?.lastSeenAt;
  return seen ? e.now.getTime() - seen.getTime() : undefined;
}

export function deviceFresh(e: Evidence): boolean {
  const s = silenceMs(e);
  return s !== undefined && s <= thresholds(e).offlineAfterMs;
}

/**
 * The device contacted haishin after the last push (an Idle poll, a NotNow, any answer): by that
 * evidence it is on and on a network, whatever happened to the job. A push younger than the grace
 * counts as not yet due when the device answered this job; a silence past the offline threshold
 * is silence. Returns the facts that show it, or null when they do not.
 */
export function answeredSinceLastPush(e: Evidence): EvidenceItem[] | null {
  const seen = e.device?.lastSeenAt;
  if (!seen || !deviceFresh(e)) return null;
  const pushed = e.push?.lastPushAt ?? null;
  const j = e.job;
  const answeredJob =
    !!j && (!!j.commandSentAt || !!j.ackAt || (j.notNowCount ?? 0) > 0 || (j.errorChain?.length ?? 0) > 0);
  const seenFact = fact('device.lastSeenAt', seen, 'checkin');
  if (pushed && seen.getTime() >= pushed.getTime())
    return [seenFact, fact('push.lastPushAt', pushed, 'apns')];
  const pushDue =
    pushed !== null && (j?.status === 'push_timeout' || e.now.getTime() - pushed.getTime() > PUSH_GRACE_MS);
  if (!answeredJob || pushDue) return null;
  const ev = [seenFact];
  if ((j?.notNowCount ?? 0) > 0) ev.push(fact('job.notNowCount', j!.notNowCount!, 'job'));
  else if (j?.commandSentAt) ev.push(fact('job.commandSentAt', j.commandSentAt, 'job'));
  return ev;
}

function versionParts(v: string): number[] {
  return v
    .split(/[^\d]+/)
    .filter((p) => p !== '')
    .map(Number);
}

/** Negative when a < b, as iOS orders versions (13.0 = 13 = 13.0.0). */
export function compareVersions(a: string, b: string): number {
  const pa = versionParts(a);
  const pb = versionParts(b);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

export function majorVersion(v: string | null | undefined): number | null {
  if (!v) return null;
  const first = versionParts(v)[0];
  return first === undefined ? null : first;
}

export function deviceFamily(name: string): string | null {
  const m = /^(iPad|iPhone|iPod|AppleTV|Watch|Mac|RealityDevice)/i.exec(name);
  return m ? m[1]!.toLowerCase() : null;
}

export function isIWork(e: Evidence): boolean {
  const bundle = e.app?.bundleId;
  return e.app?.isIWork === true || (bundle !== null && bundle !== undefined && isIWorkBundle(bundle));
}

export function chainOf(e: Evidence): readonly ChainItem[] {
  return e.job?.errorChain ?? [];
}

export function describeItem(item: ChainItem): string {
  const domain = item.domain ? `${item.domain} ` : '';
  const text = item.description ?? item.englishDescription;
  return `${domain}${item.code}${text ? `: ${text}` : ''}`;
}

export function chainEvidence(chain: readonly ChainItem[]): EvidenceItem[] {
  return chain.map((item, i) => fact(`error_chain[${i}]`, describeItem(item), 'error_chain'));
}

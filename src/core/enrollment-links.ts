import type { Bilingual } from './messages.ts';

/**
 * Enrollment links (decision 0022): what makes a link usable, and the words a person holding a
 * refused link reads. Pure: the clock and the row come from the caller.
 */

export type EnrollmentLinkState = 'active' | 'expired' | 'used_up' | 'revoked';

export interface EnrollmentLinkFacts {
  expiresAt: Date | null;
  maxUses: number | null;
  useCount: number;
  revokedAt: Date | null;
}

/** Revocation wins over expiry, expiry over the use count: the most deliberate reason is named. */
export function enrollmentLinkState(link: EnrollmentLinkFacts, now: Date): EnrollmentLinkState {
  if (link.revokedAt) return 'revoked';
  if (link.expiresAt && link.expiresAt.getTime() <= now.getTime()) return 'expired';
  if (link.maxUses !== null && link.useCount >= link.maxUses) return 'used_up';
  return 'active';
}

/** Why `GET /mdm/enroll` refused: one line each, for the person who opened the link on a device. */
export type EnrollRefusal =
  | 'enroll.link_required'
  | 'enroll.link_unknown'
  | 'enroll.link_revoked'
  | 'enroll.link_expired'
  | 'enroll.link_used_up';

export const ENROLL_REFUSALS: Readonly<Record<EnrollRefusal, Bilingual>> = {
  'enroll.link_required': {
    en: 'Enrollment needs an enrollment link from your administrator; a group id alone is not accepted.',
    ja: '登録には管理者が発行した登録用リンクが必要です。グループIDだけでは登録できません。',
  },
  'enroll.link_unknown': {
    en: 'This enrollment link is not valid; ask your administrator for a current one.',
    ja: 'この登録用リンクは無効です。管理者に新しいリンクを発行してもらってください。',
  },
  'enroll.link_revoked': {
    en: 'This enrollment link was revoked by your administrator; ask for a new one.',
    ja: 'この登録用リンクは管理者によって無効にされました。新しいリンクを発行してもらってください。',
  },
  'enroll.link_expired': {
    en: 'This enrollment link has expired; ask your administrator for a new one.',
    ja: 'この登録用リンクは有効期限が切れています。管理者に新しいリンクを発行してもらってください。',
  },
  'enroll.link_used_up': {
    en: 'This enrollment link has been used as many times as it allows; ask your administrator for a new one.',
    ja: 'この登録用リンクは利用できる回数をすべて使い切りました。管理者に新しいリンクを発行してもらってください。',
  },
};

export const refusalOfState = (state: Exclude<EnrollmentLinkState, 'active'>): EnrollRefusal =>
  state === 'revoked'
    ? 'enroll.link_revoked'
    : state === 'expired'
      ? 'enroll.link_expired'
      : 'enroll.link_used_up';

import { ENROLL_REFUSALS, enrollmentLinkState, refusalOfState } from '../core/enrollment-links.ts';
import type { EnrollRefusal } from '../core/enrollment-links.ts';
import type { Bilingual } from '../core/messages.ts';
import type { Clock } from '../core/clock.ts';

/** The link as the gate needs it (src/store/enrollment-link-repo.ts has the rest). */
export interface GateLink {
  group_id: string;
  expires_at: string | null;
  max_uses: number | null;
  use_count: number;
  revoked_at: string | null;
}

/** Storage port: count one use of the link holding `secret`, atomically, if it is usable now. */
export interface EnrollmentLinkPort {
  consume(
    secret: string,
    at: Date,
    groupId?: string,
  ): Promise<{ ok: true; link: GateLink } | { ok: false; link: GateLink | undefined }>;
}

export type Admission =
  | { ok: true; groupId: string }
  | { ok: false; status: 400 | 403; code: EnrollRefusal | 'enroll.group_missing'; messages: Bilingual };

/**
 * Decides whether `GET /mdm/enroll` may issue a device identity (decision 0022): with
 * `?token=<secret>` (and optionally the link's `group`), when the link is usable — each admission
 * counts as one use; with `?group=<id>` alone only when HAISHIN_ENROLL_OPEN_GROUPS allows it.
 */
export class EnrollmentGate {
  readonly #links: EnrollmentLinkPort;
  readonly #clock: Clock;
  readonly #openGroups: boolean;

  constructor(o: { links: EnrollmentLinkPort; clock: Clock; openGroups: boolean }) {
    this.#links = o.links;
    this.#clock = o.clock;
    this.#openGroups = o.openGroups;
  }

  async admit(query: { group?: string | undefined; token?: string | undefined }): Promise<Admission> {
    const { group, token } = query;
    if (!token) {
      if (group && this.#openGroups) return { ok: true, groupId: group };
      if (!group && !this.#openGroups) return refuse(403, 'enroll.link_required');
      if (!group)
        return {
          ok: false,
          status: 400,
          code: 'enroll.group_missing',
          messages: {
            en: 'Add ?group=<groupId> or ?token=<enrollment link token> to the enrollment link.',
            ja: '登録用リンクに ?group=<グループID> または ?token=<登録用リンクのトークン> を付けてください。',
          },
        };
      return refuse(403, 'enroll.link_required');
    }
    const now = this.#clock.now();
    const result = await this.#links.consume(token, now, group || undefined);
    if (result.ok) return { ok: true, groupId: result.link.group_id };
    const link = result.link;
    // A link pasted next to another group's id says nothing about that other group.
    if (!link || (group && link.group_id !== group)) return refuse(403, 'enroll.link_unknown');
    const state = enrollmentLinkState(
      {
        expiresAt: link.expires_at ? new Date(link.expires_at) : null,
        maxUses: link.max_uses,
        useCount: link.use_count,
        revokedAt: link.revoked_at ? new Date(link.revoked_at) : null,
      },
      now,
    );
    // 'active' here means another request took the last use between our update and our read.
    return refuse(403, state === 'active' ? 'enroll.link_used_up' : refusalOfState(state));
  }
}

function refuse(status: 403, code: EnrollRefusal): Admission {
  return { ok: false, status, code, messages: ENROLL_REFUSALS[code] };
}

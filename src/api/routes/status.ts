import { readFileSync } from 'node:fs';
import { X509Certificate } from 'node:crypto';
import { Type } from 'typebox';
import { daysLeft } from '../../core/tokens.ts';
import { PUSH_CERTIFICATE_ALERT } from '../../engine/push.ts';
import { expiryWarningDays } from '../../app/push-certificate.ts';
import type { VppTokens } from '../../engine/vpp-tokens.ts';
import type { AdminApp, AdminContext } from '../admin.ts';
import { scopeOf } from '../authz.ts';

/** What the composition root knows about the server itself; the rest is read per request. */
export interface ServerFacts {
  instanceId: string;
  /** The certificate loaded for APNs (its topic is the one enrollment profiles carry). */
  pushCertificate: { topic: string; notAfter: Date };
  deviceCaPem: string;
  /** How many CAs verify device identities: the issuing one and those rotated out (decision 0023). */
  verifyingDeviceCas?: number;
  /** HAISHIN_IDENTITY_RENEW_BEFORE: the window the device identity counts look at. */
  identityRenewBeforeMs?: number;
}

const PACKAGE_VERSION: string = (() => {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as {
      version?: unknown;
    };
    return typeof pkg.version === 'string' ? pkg.version : 'unknown';
  } catch {
    // A packaged install without package.json next to src/ still answers, just without a version.
    return 'unknown';
  }
})();

const Iso = Type.String({ format: 'date-time' });

const StatusAnswer = Type.Object({
  version: Type.String(),
  instanceId: Type.String({ description: 'the mdmInfo.id haishin claims VPP locations with' }),
  now: Iso,
  pushCertificate: Type.Object({
    topic: Type.String(),
    notAfter: Iso,
    daysLeft: Type.Integer(),
    expiryWarningDays: Type.Union([Type.Integer(), Type.Null()], {
      description:
        "the expiry warning in force: 30, 14, 7 or 1 (days before expiry; renew in Apple's Push Certificates Portal, then PUT /push-certificate), null when further away",
    }),
    alert: Type.Union(
      [
        Type.Object({
          at: Iso,
          status: Type.Union([Type.Integer(), Type.Null()]),
          reason: Type.Union([Type.String(), Type.Null()]),
        }),
        Type.Null(),
      ],
      {
        description:
          'set when APNs refused the push certificate (403, or TLS refusals on every try): every push fails until it is renewed',
      },
    ),
  }),
  deviceCa: Type.Object({
    notAfter: Iso,
    verifying: Type.Integer({
      description: 'CAs whose identities are accepted: the issuing one and those rotated out',
    }),
  }),
  deviceIdentities: Type.Object(
    {
      expired: Type.Integer({
        description: 'managed devices whose identity expired before it was renewed: enroll them again',
      }),
      expiring: Type.Integer({ description: 'identities within the renewal window, not renewed yet' }),
      renewing: Type.Integer({ description: 'devices sent a renewed identity that have not used it yet' }),
    },
    { description: 'device identities and their renewal (decision 0023)' },
  ),
  tokens: Type.Object({
    total: Type.Integer(),
    expiring: Type.Integer({ description: 'tokens within 30 days of expiry' }),
    expired: Type.Integer(),
    revoked: Type.Integer({
      description: 'tokens Apple revoked (9625): no licence can be assigned until renewed',
    }),
    invalid: Type.Integer({
      description: 'tokens Apple does not accept (9622, 9722): renew with a fresh file',
    }),
  }),
  devices: Type.Object({
    total: Type.Integer(),
    enrolled: Type.Integer(),
    pending: Type.Integer(),
    unenrolled: Type.Integer(),
    deactivated: Type.Integer(),
  }),
});

/** The stored alert is push.ts's JSON; anything unreadable still counts as an alert, without details. */
function parseAlert(raw: string | null): { at: string; status: number | null; reason: string | null } | null {
  if (raw === null) return null;
  try {
    const v = JSON.parse(raw) as { at?: unknown; outcome?: { status?: unknown; reason?: unknown } };
    return {
      at: typeof v.at === 'string' ? v.at : new Date(0).toISOString(),
      status: typeof v.outcome?.status === 'number' ? v.outcome.status : null,
      reason: typeof v.outcome?.reason === 'string' ? v.outcome.reason : null,
    };
  } catch {
    return { at: new Date(0).toISOString(), status: null, reason: null };
  }
}

export async function registerStatusRoutes(
  app: AdminApp,
  ctx: AdminContext,
  tokens: VppTokens,
  facts: ServerFacts,
): Promise<void> {
  const { store } = ctx;
  const caNotAfter = new Date(new X509Certificate(facts.deviceCaPem).validTo);

  app.get(
    '/status',
    {
      config: { authz: { permission: 'read', filtered: true } },
      schema: {
        tags: ['server'],
        summary:
          'Server status for administrators: version, push certificate (expiry and APNs alert), device CA, VPP tokens near or past expiry or refused by Apple (revoked, invalid), devices per status',
        response: { 200: StatusAnswer },
      },
    },
    async (req) => {
      const now = ctx.clock.now();
      // A subtree's administrator counts its own devices and the tokens it can see (decision 0029).
      const scope = scopeOf(req);
      const shares = scope.all ? [] : await store.vpp.shares();
      const visible = (await store.vpp.allTokens()).filter(
        (t) => scope.has(t.group_id) || shares.some((s) => s.token_id === t.id && scope.has(s.group_id)),
      );
      const views = await Promise.all(visible.map((t) => tokens.view(t)));
      const byStatus = await store.devices.countByStatus(scope.groupIds);
      const cert = facts.pushCertificate;
      return {
        version: PACKAGE_VERSION,
        instanceId: facts.instanceId,
        now: now.toISOString(),
        pushCertificate: {
          topic: cert.topic,
          notAfter: cert.notAfter.toISOString(),
          daysLeft: daysLeft(cert.notAfter, now),
          expiryWarningDays: expiryWarningDays(cert.notAfter, now),
          alert: parseAlert(await store.getSetting(PUSH_CERTIFICATE_ALERT)),
        },
        deviceCa: { notAfter: caNotAfter.toISOString(), verifying: facts.verifyingDeviceCas ?? 1 },
        deviceIdentities: await store.identities.counts(
          now,
          new Date(now.getTime() + (facts.identityRenewBeforeMs ?? 30 * 86_400_000)),
          scope.groupIds,
        ),
        tokens: {
          total: views.length,
          expiring: views.filter((v) => v.state === 'expiring').length,
          expired: views.filter((v) => v.state === 'expired').length,
          revoked: views.filter((v) => v.state === 'revoked').length,
          invalid: views.filter((v) => v.state === 'invalid').length,
        },
        devices: { total: Object.values(byStatus).reduce((a, b) => a + b, 0), ...byStatus },
      };
    },
  );
}

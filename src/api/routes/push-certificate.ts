import { Type } from 'typebox';
import { daysLeft } from '../../core/tokens.ts';
import { expiryWarningDays, PushCertificateRefusal } from '../../app/push-certificate.ts';
import type { PushCertificates } from '../../app/push-certificate.ts';
import type { AdminApp, AdminContext } from '../admin.ts';
import { ApiError } from '../errors.ts';

/**
 * The push certificate replaced while haishin runs (issue 17 item 3, decision 0022): PEM
 * certificate + key, or a `.p12` (base64) with its password. The key is never answered.
 */

const Iso = Type.String({ format: 'date-time' });

export const PushCertificateDoc = Type.Object({
  topic: Type.String({ description: "the certificate's UID: enrollment profiles carry it as Topic" }),
  subject: Type.String(),
  notAfter: Iso,
  daysLeft: Type.Integer(),
  expiryWarningDays: Type.Union([Type.Integer(), Type.Null()], {
    description: 'the warning in force: 30, 14, 7 or 1 (days before expiry), null when further away',
  }),
  source: Type.Union([Type.Literal('HAISHIN_APNS_CERT'), Type.Literal('uploaded')], {
    description:
      'where the certificate in use comes from: of HAISHIN_APNS_CERT and the uploaded one, the one that expires last is used',
  }),
  uploadedAt: Type.Union([Iso, Type.Null()]),
});

const Replaced = Type.Intersect([
  PushCertificateDoc,
  Type.Object({
    previousTopic: Type.String(),
    previousNotAfter: Iso,
    topicChanged: Type.Boolean({
      description: 'true only with force: every enrolled device must enroll again',
    }),
  }),
]);

const ReplaceBody = Type.Object(
  {
    certPem: Type.Optional(Type.String({ description: 'the MDM push certificate (PEM), leaf first' })),
    keyPem: Type.Optional(Type.String({ description: 'its private key (unencrypted PEM)' })),
    pkcs12: Type.Optional(
      Type.String({ description: 'instead of certPem/keyPem: a .p12 holding both, base64' }),
    ),
    password: Type.Optional(Type.String({ description: "the .p12's password" })),
    force: Type.Optional(
      Type.Boolean({
        description:
          'accept a certificate of another topic (a new certificate instead of a renewal): every enrolled device stops answering until enrolled again',
      }),
    ),
  },
  { additionalProperties: false },
);

const tags = ['server'];

export async function registerPushCertificateRoutes(
  app: AdminApp,
  ctx: AdminContext,
  certs: PushCertificates,
): Promise<void> {
  const doc = (now: Date) => {
    const v = certs.view();
    return {
      topic: v.topic,
      subject: v.subject,
      notAfter: v.notAfter.toISOString(),
      daysLeft: daysLeft(v.notAfter, now),
      expiryWarningDays: expiryWarningDays(v.notAfter, now),
      source: v.source,
      uploadedAt: v.uploadedAt,
    };
  };

  app.get(
    '/push-certificate',
    {
      config: { authz: { permission: 'read', global: true } },
      schema: {
        tags,
        summary: 'The MDM push certificate in use (topic, expiry, where it comes from)',
        response: { 200: PushCertificateDoc },
      },
    },
    async () => doc(ctx.clock.now()),
  );

  app.put(
    '/push-certificate',
    {
      config: { authz: { permission: 'owner', global: true } },
      schema: {
        tags,
        summary:
          'Replace the push certificate without a restart (a renewal: same topic). Refused with 409 when the topic differs from the one enrolled devices use, unless force',
        body: ReplaceBody,
        response: { 200: Replaced },
      },
    },
    async (req) => {
      const b = req.body;
      const now = ctx.clock.now();
      let source: { certPem: string; keyPem: string } | { pkcs12: Uint8Array; password: string };
      if (b.pkcs12 !== undefined && b.certPem === undefined && b.keyPem === undefined) {
        source = { pkcs12: Buffer.from(b.pkcs12, 'base64'), password: b.password ?? '' };
      } else if (b.certPem !== undefined && b.keyPem !== undefined && b.pkcs12 === undefined) {
        source = { certPem: b.certPem, keyPem: b.keyPem };
      } else {
        throw new ApiError(400, 'push_certificate.body', {
          en: 'Send either certPem and keyPem (PEM), or pkcs12 (a .p12 file, base64) with its password.',
          ja: 'certPem と keyPem（PEM）、または pkcs12（.p12 ファイルを base64 にしたもの）とそのパスワードのどちらかを送ってください。',
        });
      }
      try {
        const r = await certs.replace(source, { force: b.force === true, now });
        await ctx.audit(req, 'push_certificate.replace', 'push_certificate', r.identity.topic, {
          topic: r.identity.topic,
          notAfter: r.identity.notAfter.toISOString(),
          previousTopic: r.previous.topic,
          previousNotAfter: r.previous.notAfter.toISOString(),
          topicChanged: r.topicChanged,
          forced: b.force === true,
          enrolledDevices: r.enrolled,
        });
        return {
          ...doc(now),
          previousTopic: r.previous.topic,
          previousNotAfter: r.previous.notAfter.toISOString(),
          topicChanged: r.topicChanged,
        };
      } catch (err) {
        if (err instanceof PushCertificateRefusal)
          throw new ApiError(err.status, err.code, err.messages, err.details);
        throw err;
      }
    },
  );
}

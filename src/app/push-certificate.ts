import { randomUUID } from 'node:crypto';
import { EXPIRY_WARNING_DAYS, daysLeft, dueExpiryWarning } from '../core/tokens.ts';
import type { Bilingual } from '../core/messages.ts';
import {
  expiredPushCertificateMessage,
  loadPushIdentity,
  PushCertificateError,
} from '../apple/apns/pushcert.ts';
import type { PushIdentity, PushIdentitySource } from '../apple/apns/pushcert.ts';
import { ConfigError } from '../core/config.ts';
import { PUSH_CERTIFICATE_ALERT, PUSH_CERTIFICATE_NOT_AFTER } from '../engine/push.ts';
import type { Store } from '../store/store.ts';
import type { SecretBox } from '../store/secretbox.ts';

/**
 * The push certificate's life (issue 17 item 3, decision 0022): the certificate APNs is called
 * with can be replaced while haishin runs; the replacement is kept in the database (key sealed
 * like the other secrets) so a restart — or another process on the same PostgreSQL — uses it.
 * Of HAISHIN_APNS_CERT and the uploaded certificate, the one that expires last is used.
 */

const CERT = 'push_certificate.cert';
const SEALED_KEY = 'push_certificate.key';
const UPLOADED_AT = 'push_certificate.uploaded_at';
const DAY_MS = 86_400_000;

export type PushCertificateSource = 'HAISHIN_APNS_CERT' | 'uploaded';

/** What the APNs client must follow. */
export interface IdentityHolder {
  setIdentity(identity: PushIdentity): void;
}

export interface PushCertificateView {
  topic: string;
  subject: string;
  notAfter: Date;
  source: PushCertificateSource;
  uploadedAt: string | null;
}

const TEXT = {
  topicChanged: (o: { topic: string; current: string; devices: number }): Bilingual => ({
    en: `This certificate is for topic ${o.topic}, but the ${o.devices} enrolled device(s) use topic ${o.current}: it was created instead of renewed; every enrolled device would stop answering. Renew the certificate of topic ${o.current} in Apple's Push Certificates Portal (Renew, not Create a Certificate), with the Apple Account that created it — or send force if every device will be enrolled again.`,
    ja: `この証明書のトピックは ${o.topic} ですが、登録済みの端末 ${o.devices} 台はトピック ${o.current} を使っています。この証明書は「更新」ではなく「新規作成」されたものです。使うと登録済みのすべての端末が応答しなくなります。Apple Push Certificates Portal で、証明書を作成したときと同じ Apple アカウントでトピック ${o.current} の証明書を「更新（Renew）」してください。すべての端末を登録し直す場合に限り、force を指定してください。`,
  }),
  unusable: (message: string): Bilingual => ({
    en: `The push certificate cannot be used: ${message}`,
    ja: `このプッシュ証明書は使えません: ${message}`,
  }),
};

/** The refusal of an upload: 409 for a topic change, 400 for a certificate that cannot work. */
export class PushCertificateRefusal extends Error {
  constructor(
    readonly status: 400 | 409,
    readonly code: string,
    readonly messages: Bilingual,
    readonly details: unknown,
  ) {
    super(messages.en);
  }
}

export class PushCertificates {
  readonly #store: Store;
  readonly #box: SecretBox;
  readonly #apns: IdentityHolder;
  #current: PushIdentity;
  #source: PushCertificateSource;
  #uploadedAt: string | null;
  /** The uploaded certificate last seen in the database: a different one was uploaded since. */
  #seenStored: string | null;

  private constructor(o: {
    store: Store;
    box: SecretBox;
    apns: IdentityHolder;
    current: PushIdentity;
    source: PushCertificateSource;
    uploadedAt: string | null;
    seenStored: string | null;
  }) {
    this.#store = o.store;
    this.#box = o.box;
    this.#apns = o.apns;
    this.#seenStored = o.seenStored;
    this.#current = o.current;
    this.#source = o.source;
    this.#uploadedAt = o.uploadedAt;
  }

  /**
   * Chooses the certificate to push with: the uploaded one when it expires after HAISHIN_APNS_CERT's
   * (a renewal uploaded while the file still holds the old one), else the file's. An expired choice
   * stops the start with the same one line as before (the file's variable named).
   */
  static async open(o: {
    store: Store;
    box: SecretBox;
    apns: IdentityHolder;
    /** Loaded with `allowExpired`: its expiry is judged here. */
    configured: PushIdentity;
    now: Date;
  }): Promise<PushCertificates> {
    const stored = await readStored(o.store, o.box, o.now);
    const useStored = stored !== null && stored.identity.notAfter.getTime() > o.configured.notAfter.getTime();
    const current = useStored ? stored.identity : o.configured;
    if (current.notAfter.getTime() < o.now.getTime())
      throw new ConfigError(
        expiredPushCertificateMessage('HAISHIN_APNS_CERT', current.topic, current.notAfter),
      );
    if (useStored) o.apns.setIdentity(current);
    const certs = new PushCertificates({
      ...o,
      current,
      source: useStored ? 'uploaded' : 'HAISHIN_APNS_CERT',
      uploadedAt: useStored ? stored.uploadedAt : null,
      seenStored: stored?.identity.certPem ?? null,
    });
    await o.store.putSetting(PUSH_CERTIFICATE_NOT_AFTER, current.notAfter.toISOString(), o.now);
    return certs;
  }

  get current(): PushIdentity {
    return this.#current;
  }

  view(): PushCertificateView {
    return {
      topic: this.#current.topic,
      subject: this.#current.subject,
      notAfter: this.#current.notAfter,
      source: this.#source,
      uploadedAt: this.#uploadedAt,
    };
  }

  /**
   * Replaces the certificate: checked (readable, key matches, valid now), refused when its topic is
   * not the one enrolled devices use unless `force`, stored sealed, and handed to the APNs client.
   */
  async replace(
    source: PushIdentitySource,
    o: { force: boolean; now: Date },
  ): Promise<{ identity: PushIdentity; previous: PushIdentity; topicChanged: boolean; enrolled: number }> {
    let identity: PushIdentity;
    try {
      identity = loadPushIdentity(
        { ...source, labels: { cert: 'the certificate', key: 'the private key' } },
        o.now,
      );
    } catch (err) {
      if (err instanceof PushCertificateError)
        throw new PushCertificateRefusal(400, 'push_certificate.unusable', TEXT.unusable(err.message), {
          reason: err.code,
        });
      throw err;
    }
    const previous = this.#current;
    const topicChanged = identity.topic !== previous.topic;
    const enrolled = (await this.#store.devices.countByStatus()).enrolled ?? 0;
    if (topicChanged && enrolled > 0 && !o.force)
      throw new PushCertificateRefusal(
        409,
        'push_certificate.topic_changed',
        TEXT.topicChanged({ topic: identity.topic, current: previous.topic, devices: enrolled }),
        { topic: identity.topic, currentTopic: previous.topic, enrolledDevices: enrolled },
      );
    const at = o.now.toISOString();
    // The key first: a reader that finds the new certificate finds its key.
    await this.#store.putSetting(SEALED_KEY, this.#box.seal(identity.keyPem), o.now);
    await this.#store.putSetting(CERT, identity.certPem, o.now);
    await this.#store.putSetting(UPLOADED_AT, at, o.now);
    await this.#store.putSetting(PUSH_CERTIFICATE_NOT_AFTER, identity.notAfter.toISOString(), o.now);
    // APNs's refusal of the old certificate says nothing about the new one.
    await this.#store.deleteSetting(PUSH_CERTIFICATE_ALERT);
    this.#seenStored = identity.certPem;
    this.#adopt(identity, at);
    return { identity, previous, topicChanged, enrolled };
  }

  /**
   * Another process uploaded a certificate since this one last looked: follow it, as the uploading
   * process did (called periodically by every process).
   */
  async refresh(now: Date): Promise<boolean> {
    const certPem = await this.#store.getSetting(CERT);
    if (certPem === null || certPem === this.#seenStored) return false;
    const stored = await readStored(this.#store, this.#box, now);
    if (!stored) return false;
    this.#seenStored = stored.identity.certPem;
    if (stored.identity.certPem === this.#current.certPem) return false;
    this.#adopt(stored.identity, stored.uploadedAt);
    return true;
  }

  /**
   * The expiry warning due now (30, 14, 7, 1 days before), written to the audit log once per
   * threshold and certificate, whichever process gets there first.
   */
  async warnings(now: Date): Promise<number | null> {
    const c = this.#current;
    const days = dueExpiryWarning(c.notAfter, null, now);
    if (days === null) return null;
    const key = `push_certificate.warned.${c.notAfter.toISOString()}.${days}`;
    const mine = randomUUID();
    if ((await this.#store.setSettingIfAbsent(key, mine, now)) !== mine) return null;
    await this.#store.admin.audit({
      actor: 'system',
      source: null,
      action: 'push_certificate.expiry_warning',
      objectType: 'push_certificate',
      objectId: c.topic,
      details: { daysLeft: daysLeft(c.notAfter, now), threshold: days, notAfter: c.notAfter.toISOString() },
      at: now,
    });
    return days;
  }

  #adopt(identity: PushIdentity, uploadedAt: string): void {
    this.#current = identity;
    this.#source = 'uploaded';
    this.#uploadedAt = uploadedAt;
    this.#apns.setIdentity(identity);
  }
}

/** The warning threshold in force (30/14/7/1), null when further away or already expired. */
export function expiryWarningDays(notAfter: Date, now: Date): number | null {
  const left = (notAfter.getTime() - now.getTime()) / DAY_MS;
  if (left <= 0) return null;
  const reached = EXPIRY_WARNING_DAYS.filter((d) => left <= d);
  return reached[reached.length - 1] ?? null;
}

async function readStored(
  store: Store,
  box: SecretBox,
  now: Date,
): Promise<{ identity: PushIdentity; uploadedAt: string } | null> {
  const certPem = await store.getSetting(CERT);
  const sealed = await store.getSetting(SEALED_KEY);
  if (certPem === null || sealed === null) return null;
  const identity = loadPushIdentity(
    { certPem, keyPem: box.open(sealed), labels: { cert: 'the uploaded push certificate', key: 'its key' } },
    now,
    { allowExpired: true },
  );
  return { identity, uploadedAt: (await store.getSetting(UPLOADED_AT)) ?? new Date(0).toISOString() };
}

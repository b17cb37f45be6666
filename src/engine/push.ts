import type { Apns, PushResult } from '../apple/apns/client.ts';
import type { Clock } from '../core/clock.ts';
import type { Store } from '../store/store.ts';

export interface PushSummary {
  sent: number;
  unregistered: number;
  badToken: number;
  certificateProblem: number;
  failed: number;
  /** Devices with no pushable channel (never sent TokenUpdate, or disabled by a new Authenticate). */
  notPushable: number;
}

export const PUSH_CERTIFICATE_ALERT = 'alert.push_certificate';
/** The notAfter of the push certificate in use (src/app/push-certificate.ts keeps it; the diagnosis reads it). */
export const PUSH_CERTIFICATE_NOT_AFTER = 'push_certificate.not_after';

/**
 * Wakes devices through APNs and keeps every outcome as evidence on the device: the
 * troubleshooter reads `last_push_result` (410 → unenrolled, 403 → the certificate, …).
 */
/** What the engine and the routes need of a pusher: wake these devices. */
export interface Pusher {
  push(deviceIds: readonly string[]): Promise<PushSummary>;
}

export class DevicePusher implements Pusher {
  readonly #store: Store;
  readonly #apns: Apns;
  readonly #clock: Clock;

  /** Whether this process already removed a stale alert (one delete, not one per push). */
  #alertCleared = false;

  constructor(o: { store: Store; apns: Apns; clock: Clock }) {
    this.#store = o.store;
    this.#apns = o.apns;
    this.#clock = o.clock;
  }

  async push(deviceIds: readonly string[]): Promise<PushSummary> {
    const targets = await this.#store.devices.pushTargets(deviceIds);
    const summary: PushSummary = {
      sent: 0,
      unregistered: 0,
      badToken: 0,
      certificateProblem: 0,
      failed: 0,
      notPushable: deviceIds.length - targets.length,
    };
    const tokenTimes = new Map(targets.map((t) => [t.deviceId, t.tokenUpdatedAt]));
    const results: PushResult[] = [];
    await this.#apns.pushMany(
      targets.map((t) => ({ deviceId: t.deviceId, token: t.token, pushMagic: t.pushMagic })),
      (r) => results.push(r),
    );
    for (const r of results) {
      const o = r.outcome;
      await this.#store.devices.recordPush(r.deviceId, o, r.at);
      switch (o.kind) {
        case 'sent':
          summary.sent++;
          break;
        case 'unregistered': {
          summary.unregistered++;
          // A 410 older than the device's latest TokenUpdate is about a previous enrollment.
          const tokenAt = tokenTimes.get(r.deviceId);
          if (!o.timestamp || !tokenAt || o.timestamp.getTime() >= new Date(tokenAt).getTime()) {
            await this.#store.devices.markGone(r.deviceId, r.at);
          }
          break;
        }
        case 'bad_token':
          summary.badToken++;
          break;
        case 'certificate_problem':
          summary.certificateProblem++;
          break;
        case 'failed':
          summary.failed++;
          break;
      }
    }
    if (summary.certificateProblem > 0) {
      const problem = results.find((r) => r.outcome.kind === 'certificate_problem');
      await this.#store.putSetting(
        PUSH_CERTIFICATE_ALERT,
        JSON.stringify({ at: this.#clock.now().toISOString(), outcome: problem?.outcome }),
        this.#clock.now(),
      );
      this.#alertCleared = false;
    } else if (summary.sent > 0 && !this.#alertCleared) {
      // APNs takes the certificate again (renewed, or the refusal was passing): the alert is over.
      await this.#store.deleteSetting(PUSH_CERTIFICATE_ALERT);
      this.#alertCleared = true;
    }
    return summary;
  }
}

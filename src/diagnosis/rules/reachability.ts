import { PUSH_GRACE_MS, PUSH_PHASE } from '../tables.ts';
import { fact, hit, silenceMs, thresholds } from './facts.ts';
import type { Rule, RuleHit } from './facts.ts';

/** Can haishin reach the device: the push channel, enrolment, silence. */

/** The push channel: certificate, and what APNs says about this device. */
export const pushRule: Rule = (e) => {
  const p = e.push;
  if (!p) return [];
  const out: RuleHit[] = [];
  if (p.lastResult === 'certificate_problem') {
    out.push(
      hit(
        'push.certificate_invalid',
        'confirmed',
        fact(
          'push.lastResult',
          p.lastReason ? `certificate_problem (${p.lastReason})` : 'certificate_problem',
          'apns',
        ),
      ),
    );
  }
  if (p.certificateNotAfter && p.certificateNotAfter.getTime() <= e.now.getTime()) {
    out.push(
      hit(
        'push.certificate_invalid',
        'confirmed',
        fact('push.certificateNotAfter', p.certificateNotAfter, 'haishin'),
      ),
    );
  }
  const stuck = p.stuckInPushSendingCount;
  if (typeof stuck === 'number' && stuck > 0) {
    const fleet = p.enrolledDeviceCount;
    const ev = [fact('server.jobsStuckInPushSending', stuck, 'haishin')];
    if (typeof fleet === 'number' && fleet > 0 && stuck >= 5 && stuck / fleet >= 0.5) {
      out.push(
        hit('push.certificate_invalid', 'likely', ...ev, fact('server.enrolledDevices', fleet, 'haishin')),
      );
    } else if (stuck >= 20) {
      out.push(hit('push.certificate_invalid', 'possible', ...ev));
    }
  }
  if (p.lastResult === 'unregistered')
    out.push(hit('device.unenrolled', 'confirmed', fact('push.lastResult', 'unregistered (410)', 'apns')));
  if (p.lastResult === 'bad_token') {
    out.push(
      hit(
        'device.unenrolled',
        'possible',
        fact('push.lastResult', p.lastReason ? `bad_token (${p.lastReason})` : 'bad_token', 'apns'),
      ),
    );
  }
  return out;
};

/**
 * Is the device there? Enrollment state, check-out, and how long it has been silent. A device that
 * left management, or that haishin deactivated, gets nothing more from haishin; one whose
 * enrollment never finished (Authenticate without TokenUpdate) cannot be woken by a push.
 */
export const reachabilityRule: Rule = (e) => {
  const d = e.device;
  if (!d) return [];
  const out: RuleHit[] = [];
  if (d.status === 'unenrolled' || d.status === 'deactivated')
    out.push(hit('device.unenrolled', 'confirmed', fact('device.status', d.status, 'haishin')));
  if (d.status === 'pending')
    out.push(hit('device.unenrolled', 'likely', fact('device.status', 'pending', 'haishin')));
  if (d.checkedOutAt)
    out.push(hit('device.unenrolled', 'confirmed', fact('device.checkedOutAt', d.checkedOutAt, 'checkin')));

  const silence = silenceMs(e);
  const { offlineAfterMs, unenrolledAfterMs } = thresholds(e);
  if (silence !== undefined) {
    const seen = fact('device.lastSeenAt', d.lastSeenAt!, 'checkin');
    if (silence > unenrolledAfterMs) {
      const limit = fact(
        'threshold.unenrolledAfterDays',
        Math.round(unenrolledAfterMs / 86_400_000),
        'haishin',
      );
      out.push(hit('device.unenrolled', 'confirmed', seen, limit));
      out.push(hit('device.powered_off_or_offline', 'likely', seen));
      out.push(hit('network.inactive', 'possible', seen));
    } else if (silence > offlineAfterMs) {
      const limit = fact('threshold.offlineAfterHours', Math.round(offlineAfterMs / 3_600_000), 'haishin');
      out.push(hit('device.powered_off_or_offline', 'confirmed', seen, limit));
      out.push(hit('network.inactive', 'possible', seen));
    } else {
      // Recently seen, but a push sent since has gone unanswered.
      const pushedAt = e.push?.lastPushAt;
      const status = e.job?.status;
      if (
        pushedAt &&
        e.push?.lastResult === 'sent' &&
        status &&
        PUSH_PHASE.has(status) &&
        pushedAt.getTime() > d.lastSeenAt!.getTime() &&
        // A push timeout is itself the proof that the push went unanswered long enough.
        (status === 'push_timeout' || e.now.getTime() - pushedAt.getTime() > PUSH_GRACE_MS)
      ) {
        const pushed = fact('push.lastPushAt', pushedAt, 'apns');
        out.push(hit('device.powered_off_or_offline', 'likely', seen, pushed));
        out.push(hit('network.inactive', 'possible', seen, pushed));
      }
    }
  }
  return out;
};

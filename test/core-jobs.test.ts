import { describe, expect, it } from 'vitest';
import {
  canTransition,
  IllegalTransitionError,
  initialStatus,
  isTerminal,
  JOB_STATUSES,
  transition,
} from '../src/core/jobs.ts';
import type { JobState } from '../src/core/jobs.ts';

const at = new Date('2026-04-01T00:00:00Z');
const job = (status: JobState['status'], retryCount = 0, attempt = 1): JobState => ({
  status,
  retryCount,
  attempt,
});

describe('job state machine (DESIGN §3)', () => {
  it('walks the happy path and records every change', () => {
    let state = job('license_assigning');
    const history = [];
    for (const to of ['push_sending', 'awaiting_response', 'executing', 'success'] as const) {
      const step = transition(state, to, at, to);
      state = step.state;
      history.push(step.change);
    }
    expect(state.status).toBe('success');
    expect(history.map((h) => `${h.from}>${h.to}`)).toEqual([
      'license_assigning>push_sending',
      'push_sending>awaiting_response',
      'awaiting_response>executing',
      'executing>success',
    ]);
  });

  it('counts retries in retry_waiting (n)', () => {
    let state = job('awaiting_response');
    state = transition(state, 'retry_waiting', at, 'NotNow').state;
    state = transition(state, 'push_sending', at).state;
    state = transition(state, 'awaiting_response', at).state;
    state = transition(state, 'retry_waiting', at, 'NotNow').state;
    expect(state).toEqual({ status: 'retry_waiting', retryCount: 2, attempt: 1 });
  });

  it('terminal statuses only restart as a new attempt', () => {
    for (const status of JOB_STATUSES.filter(isTerminal)) {
      expect(canTransition(status, 'cancelled')).toBe(false);
      expect(canTransition(status, 'executing')).toBe(false);
      const restarted = transition(job(status, 3, 1), 'push_sending', at, 'admin retry');
      expect(restarted.state).toEqual({ status: 'push_sending', retryCount: 3, attempt: 2 });
    }
  });

  it('cancel, request timeout and server error apply to every active status', () => {
    for (const status of JOB_STATUSES.filter((s) => !isTerminal(s))) {
      for (const to of ['cancelled', 'request_timeout', 'server_error'] as const)
        expect(canTransition(status, to)).toBe(true);
    }
  });

  it('refuses moves the design does not allow', () => {
    expect(() => transition(job('waiting'), 'success', at)).toThrow(IllegalTransitionError);
    expect(() => transition(job('push_sending'), 'session_timeout', at)).toThrow(
      'push_sending to session_timeout',
    );
    expect(canTransition('executing', 'push_timeout')).toBe(false);
  });

  it('chooses the first status of an attempt', () => {
    const now = at;
    expect(
      initialStatus({
        scheduledAt: new Date(at.getTime() + 1000),
        now,
        deviceBusy: false,
        needsLicense: true,
      }),
    ).toBe('scheduled');
    expect(initialStatus({ scheduledAt: null, now, deviceBusy: true, needsLicense: true })).toBe('waiting');
    expect(initialStatus({ scheduledAt: null, now, deviceBusy: false, needsLicense: true })).toBe(
      'license_assigning',
    );
    expect(initialStatus({ scheduledAt: new Date(0), now, deviceBusy: false, needsLicense: false })).toBe(
      'push_sending',
    );
  });
});

/** DESIGN §3: a job (one device × one app) is always in exactly one of these. */
export const JOB_STATUSES = [
  'waiting',
  'scheduled',
  'license_assigning',
  'push_sending',
  'retry_waiting',
  'awaiting_response',
  'executing',
  'success',
  'push_timeout',
  'request_timeout',
  'session_timeout',
  'cancelled',
  'device_error',
  'server_error',
  'license_failed',
] as const;

export type JobStatus = (typeof JOB_STATUSES)[number];

/**
 * Where a job is within its status, for the engine — control state, never read from `reason`
 * (which is for people):
 * - `licence_requested` (in `license_assigning`, or in `waiting` when the licence is taken ahead of
 *   the job's slot): the licence was asked of Apple; the job waits for Apple's answer instead of
 *   asking again.
 * - `push_due` (in `push_sending`): back from `retry_waiting` with its command still queued: the
 *   device needs one push, then the step is cleared.
 * Every status change clears the step unless the change sets one.
 */
export const JOB_STEPS = ['licence_requested', 'push_due'] as const;
export type JobStep = (typeof JOB_STEPS)[number];

export const TERMINAL_STATUSES: ReadonlySet<JobStatus> = new Set([
  'success',
  'push_timeout',
  'request_timeout',
  'session_timeout',
  'cancelled',
  'device_error',
  'server_error',
  'license_failed',
]);

export const isTerminal = (s: JobStatus) => TERMINAL_STATUSES.has(s);

/**
 * Which statuses each timeout watches (DESIGN §3): a job in one of them past that deadline times
 * out. The request timeout watches every unfinished job.
 */
export const DEADLINE_WATCH = {
  push_deadline: ['push_sending', 'retry_waiting'],
  session_deadline: ['awaiting_response', 'executing'],
  request_deadline: JOB_STATUSES.filter((s) => !TERMINAL_STATUSES.has(s)),
} as const satisfies Record<string, readonly JobStatus[]>;
export type Deadline = keyof typeof DEADLINE_WATCH;

/** Where a new attempt (first run or an administrator's retry) may start. */
const START: readonly JobStatus[] = ['waiting', 'scheduled', 'license_assigning', 'push_sending'];

/**
 * Every allowed move. Cancel, the request timeout and server_error apply to every non-terminal
 * status and are added below rather than repeated in each row.
 */
const MOVES: Record<JobStatus, readonly JobStatus[]> = {
  scheduled: ['waiting', 'license_assigning', 'push_sending'],
  waiting: ['license_assigning', 'push_sending', 'license_failed'],
  license_assigning: ['push_sending', 'license_failed', 'retry_waiting'],
  push_sending: ['awaiting_response', 'retry_waiting', 'push_timeout', 'device_error'],
  retry_waiting: [
    'push_sending',
    'license_assigning',
    'awaiting_response',
    'push_timeout',
    'device_error',
    'license_failed',
  ],
  awaiting_response: ['executing', 'retry_waiting', 'device_error', 'session_timeout', 'success'],
  executing: ['success', 'device_error', 'retry_waiting', 'session_timeout'],
  success: START,
  push_timeout: START,
  request_timeout: START,
  session_timeout: START,
  cancelled: START,
  device_error: START,
  server_error: START,
  license_failed: START,
};

const ALWAYS_FROM_ACTIVE: readonly JobStatus[] = ['cancelled', 'request_timeout', 'server_error'];

export function canTransition(from: JobStatus, to: JobStatus): boolean {
  if (MOVES[from].includes(to)) return true;
  return !isTerminal(from) && ALWAYS_FROM_ACTIVE.includes(to);
}

export class IllegalTransitionError extends Error {
  constructor(
    readonly from: JobStatus,
    readonly to: JobStatus,
  ) {
    super(`a job cannot go from ${from} to ${to}`);
  }
}

export interface StatusChange {
  from: JobStatus | null;
  to: JobStatus;
  at: Date;
  /** Why, in a word the history and diagnosis can show (e.g. 'NotNow', 'push 410', 'admin'). */
  reason: string | null;
}

export interface JobState {
  status: JobStatus;
  retryCount: number;
  /** Attempt number: bumped by a retry from a terminal status, so side effects are keyed per attempt. */
  attempt: number;
}

/**
 * The one place where job status changes. Returns the new state and the history entry to persist;
 * throws on a move DESIGN §3 does not allow.
 */
export function transition(
  job: JobState,
  to: JobStatus,
  at: Date,
  reason: string | null = null,
): { state: JobState; change: StatusChange } {
  if (!canTransition(job.status, to)) throw new IllegalTransitionError(job.status, to);
  const restarting = isTerminal(job.status);
  const state: JobState = {
    status: to,
    retryCount: to === 'retry_waiting' ? job.retryCount + 1 : job.retryCount,
    attempt: restarting ? job.attempt + 1 : job.attempt,
  };
  return { state, change: { from: job.status, to, at, reason } };
}

/** The first status of a new attempt, from what the planner knows. */
export function initialStatus(o: {
  scheduledAt: Date | null;
  now: Date;
  deviceBusy: boolean;
  needsLicense: boolean;
}): JobStatus {
  if (o.scheduledAt && o.scheduledAt.getTime() > o.now.getTime()) return 'scheduled';
  if (o.deviceBusy) return 'waiting';
  return o.needsLicense ? 'license_assigning' : 'push_sending';
}

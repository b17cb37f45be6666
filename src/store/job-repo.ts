import { randomUUID } from 'node:crypto';
import { sql } from 'kysely';
import type { Insertable, Kysely, Selectable } from 'kysely';
import { DEADLINE_WATCH, JOB_STATUSES } from '../core/jobs.ts';
import type { Deadline, JobStatus, StatusChange } from '../core/jobs.ts';
import { nextCounter, queueCommands } from './mdm-store.ts';
import type { Database, DistributionsTable, JobsTable, LicenseState } from './schema.ts';

export type JobRow = Selectable<JobsTable>;
/** A job with what the licence phase needs: the device's serial and group, the licence's state. */
export interface LicenceRow extends JobRow {
  serial: string | null;
  device_group_id: string;
  licence_state: LicenseState | null;
  licence_error: number | null;
}
/** A job with what people recognise it by: the device's number (端末番号) and the app's name. */
export type LabelledJobRow = JobRow & { device_number: number | null; app_name: string | null };
export type DistributionRow = Selectable<DistributionsTable>;
/** A new distribution and its jobs: the columns with a default may be left out. */
export type NewDistribution = Insertable<DistributionsTable>;
export type NewJob = Omit<Insertable<JobsTable>, 'seq'>;
/** A page of jobs, in job order (`seq`), narrowed by any of these. */
export interface JobFilter {
  distributionId?: string;
  deviceId?: string;
  status?: string;
  afterSeq?: number;
  /** Only jobs of devices in these groups (an administrator's scope, decision 0029). */
  groupIds?: readonly string[];
  limit: number;
}
/** Which waiting jobs {@link JobRepo.nextToActivate} looks at: of these devices, or a window of seqs. */
export interface ActivationQuery {
  /** The jobs of a device in one of these take its slots. */
  active: readonly JobStatus[];
  /** Jobs a device may have in `active` at once: its oldest waiting jobs fill the free slots. */
  slots: number;
  limit: number;
  deviceIds?: readonly string[];
  afterSeq?: number;
  throughSeq?: number | null;
}
export type JobPatch = Partial<
  Omit<JobRow, 'id' | 'distribution_id' | 'device_id' | 'adam_id' | 'created_at'>
>;

/**
 * The predicate of a deadline's partial index (migration 0006), with literal statuses: written as
 * NOT IN the other statuses because no status index can serve a NOT IN, so the planner takes the
 * partial index even on a database ANALYZE has never seen.
 */
export function deadlineWatchSql(deadline: Deadline): string {
  const watched: readonly string[] = DEADLINE_WATCH[deadline];
  const others = JOB_STATUSES.filter((s) => !watched.includes(s));
  return `not in (${others.map((s) => `'${s}'`).join(', ')})`;
}

/** Distributions, jobs and their status history. Every status change goes through {@link JobRepo.apply}. */
export class JobRepo {
  readonly #db: Kysely<Database>;

  constructor(db: Kysely<Database>) {
    this.#db = db;
  }

  async createDistribution(row: NewDistribution, jobs: readonly NewJob[], at: Date): Promise<void> {
    await this.#db.transaction().execute(async (tx) => {
      await tx.insertInto('distributions').values(row).execute();
      if (jobs.length === 0) return;
      // One counter bump reserves the whole range of per-device order numbers.
      const last = await nextCounter(tx, 'job_seq', jobs.length);
      const first = last - jobs.length + 1;
      const rows = jobs.map((j, i) => ({ ...j, seq: first + i }));
      for (let i = 0; i < rows.length; i += 200) {
        const chunk = rows.slice(i, i + 200);
        await tx.insertInto('jobs').values(chunk).execute();
        await tx
          .insertInto('job_history')
          .values(
            chunk.map((j) => ({
              job_id: j.id,
              seq: 1,
              from_status: null,
              to_status: j.status,
              at: at.toISOString(),
              reason: j.reason,
            })),
          )
          .execute();
      }
    });
  }

  /**
   * Jobs in the licence phase with everything the phase needs in one query: the device's serial
   * and group, and the licence record for that serial (if any). Keeps a pass O(batch), not O(jobs × queries).
   */
  /**
   * Jobs with the device's serial and group and the state of the licence they need (token, app,
   * serial): those in `license_assigning` (oldest first, `limit`), or the given ones.
   */
  async licencePhase(limit: number, o: { jobIds?: readonly string[] } = {}): Promise<LicenceRow[]> {
    let q = this.#withLicence();
    if (o.jobIds) {
      if (o.jobIds.length === 0) return [];
      q = q.where('jobs.id', 'in', [...o.jobIds]);
    } else q = q.where('jobs.status', '=', 'license_assigning');
    return q.orderBy('jobs.seq').limit(limit).execute();
  }

  /**
   * Waiting install jobs in auto mode whose licence was not asked for yet, after `afterSeq` in job
   * order: their licences are taken ahead, while the jobs wait for a slot on their device.
   */
  licenceAhead(afterSeq: number, limit: number): Promise<LicenceRow[]> {
    return this.#withLicence()
      .where('jobs.status', '=', 'waiting')
      .where('jobs.seq', '>', afterSeq)
      .where('jobs.step', 'is', null)
      .where('jobs.kind', '=', 'install')
      .where('jobs.license_mode', '=', 'auto')
      .orderBy('jobs.seq')
      .limit(limit)
      .execute();
  }

  #withLicence() {
    return this.#db
      .selectFrom('jobs')
      .innerJoin('devices', 'devices.id', 'jobs.device_id')
      .leftJoin('licenses', (join) =>
        join
          .onRef('licenses.token_id', '=', 'jobs.token_id')
          .onRef('licenses.adam_id', '=', 'jobs.adam_id')
          .onRef('licenses.serial_number', '=', 'devices.serial_number'),
      )
      .selectAll('jobs')
      .select([
        'devices.serial_number as serial',
        'devices.group_id as device_group_id',
        'licenses.state as licence_state',
        'licenses.error_code as licence_error',
      ]);
  }

  getDistribution(id: string): Promise<DistributionRow | undefined> {
    return this.#db.selectFrom('distributions').selectAll().where('id', '=', id).executeTakeFirst();
  }

  /** Newest first; `before` is the (created_at, id) of the last row of the previous page. */
  listDistributions(filter: {
    before?: readonly [string, string];
    /** Only distributions whose group is one of these (an administrator's scope, decision 0029). */
    groupIds?: readonly string[];
    limit: number;
  }): Promise<DistributionRow[]> {
    let q = this.#db.selectFrom('distributions').selectAll();
    if (filter.groupIds)
      q = q.where('group_id', 'in', filter.groupIds.length > 0 ? [...filter.groupIds] : ['']);
    const before = filter.before;
    if (before)
      q = q.where((eb) =>
        eb.or([
          eb('created_at', '<', before[0]),
          eb.and([eb('created_at', '=', before[0]), eb('id', '<', before[1])]),
        ]),
      );
    return q.orderBy('created_at', 'desc').orderBy('id', 'desc').limit(filter.limit).execute();
  }

  /** Job counts per status of several distributions in one query (a list page, not every distribution). */
  async countsOf(distributionIds: readonly string[]): Promise<Map<string, Record<string, number>>> {
    const out = new Map<string, Record<string, number>>(distributionIds.map((id) => [id, {}]));
    if (distributionIds.length === 0) return out;
    const rows = await this.#db
      .selectFrom('jobs')
      .select(['distribution_id', 'status', (eb) => eb.fn.countAll<number>().as('n')])
      .where('distribution_id', 'in', distributionIds)
      .groupBy(['distribution_id', 'status'])
      .execute();
    for (const r of rows) out.get(r.distribution_id)![r.status] = Number(r.n);
    return out;
  }

  get(id: string): Promise<JobRow | undefined> {
    return this.#db.selectFrom('jobs').selectAll().where('id', '=', id).executeTakeFirst();
  }

  byCommand(commandUuid: string): Promise<JobRow | undefined> {
    return this.#db.selectFrom('jobs').selectAll().where('command_uuid', '=', commandUuid).executeTakeFirst();
  }

  byStatus(statuses: readonly JobStatus[], limit: number, dueBefore?: Date): Promise<JobRow[]> {
    let q = this.#db
      .selectFrom('jobs')
      .selectAll()
      .where('status', 'in', [...statuses]);
    if (dueBefore) q = q.where('next_at', '<=', dueBefore.toISOString());
    return q.orderBy('seq').limit(limit).execute();
  }

  /**
   * One page of the jobs in `status` after `afterSeq`, in job order, each with the answer its
   * device stored for its command (null columns when there is none): what restart recovery reads,
   * a page per query. The answer is found by its primary key (the device's enrollment, the
   * command), the page by `jobs_status_seq`.
   */
  withStoredAnswers(status: JobStatus, afterSeq: number, limit: number) {
    return this.#db
      .selectFrom('jobs')
      .innerJoin('devices', 'devices.id', 'jobs.device_id')
      .leftJoin('command_results', (join) =>
        join
          .onRef('command_results.enrollment_id', '=', 'devices.udid')
          .onRef('command_results.command_uuid', '=', 'jobs.command_uuid'),
      )
      .leftJoin('enrollments', 'enrollments.id', 'command_results.enrollment_id')
      .selectAll('jobs')
      .select([
        'enrollments.id as answer_enrollment_id',
        'command_results.status as answer_status',
        'command_results.raw as answer_raw',
        'command_results.received_at as answer_at',
      ])
      .where('jobs.status', '=', status)
      .where('jobs.seq', '>', afterSeq)
      .orderBy('jobs.seq')
      .limit(limit)
      .execute();
  }

  /**
   * Jobs past `deadline` in the statuses it watches — what the sweeper times out. The status list
   * is written into the SQL as literals so both databases can use the partial index for it.
   */
  overdue(deadline: Deadline, now: Date, limit: number): Promise<JobRow[]> {
    return this.#db
      .selectFrom('jobs')
      .selectAll()
      .where(sql<boolean>`status ${sql.raw(deadlineWatchSql(deadline))}`)
      .where(deadline, '<', now.toISOString())
      .orderBy(deadline)
      .limit(limit)
      .execute();
  }

  /**
   * What the activation starts: the oldest waiting job of each device that has no job in `active`,
   * in job order, at most `limit`. Narrowed to `deviceIds` (devices that just finished a job), or
   * to the waiting jobs with `afterSeq < seq <= throughSeq` (a window of the round-robin over all
   * waiting jobs). Each candidate costs two look-ups on the `jobs_device` index (device, status,
   * seq); the window comes from `jobs_status_seq`, so a pass reads O(window), never every job.
   */
  async nextToActivate(o: ActivationQuery): Promise<JobRow[]> {
    if (o.deviceIds) {
      // A few rows per device: sorted here, so that the planner starts from the devices
      // (jobs_device) rather than walk every waiting job in order to avoid a sort.
      if (o.deviceIds.length === 0) return [];
      const rows = await this.nextToActivateQuery(o).execute();
      return rows.sort((a, b) => a.seq - b.seq).slice(0, o.limit);
    }
    return this.nextToActivateQuery(o).execute();
  }

  /** The query of {@link nextToActivate} (test/store-plans.test.ts reads its plan). */
  nextToActivateQuery(o: ActivationQuery) {
    // A waiting job starts when the device's busy jobs and the waiting jobs older than it leave a
    // slot: both counted from jobs_device, a few rows per device.
    let q = this.#db
      .selectFrom('jobs as j')
      .selectAll('j')
      .where('j.status', '=', 'waiting')
      .where(
        ({ selectFrom }) =>
          sql<boolean>`${selectFrom('jobs as e')
            .select(sql<number>`count(*)`.as('n'))
            .whereRef('e.device_id', '=', 'j.device_id')
            .where('e.status', '=', 'waiting')
            .whereRef('e.seq', '<', 'j.seq')} + ${selectFrom('jobs as a')
            .select(sql<number>`count(*)`.as('n'))
            .whereRef('a.device_id', '=', 'j.device_id')
            .where('a.status', 'in', [...o.active])} < ${o.slots}`,
      );
    if (o.deviceIds) return q.where('j.device_id', 'in', [...o.deviceIds]);
    if (o.afterSeq !== undefined) q = q.where('j.seq', '>', o.afterSeq);
    if (o.throughSeq !== undefined && o.throughSeq !== null) q = q.where('j.seq', '<=', o.throughSeq);
    return q.orderBy('j.seq').limit(o.limit);
  }

  /** The seq of the `n`th waiting job after `afterSeq` (the end of a window of n), or null when fewer wait. */
  async waitingSeqAt(afterSeq: number, n: number): Promise<number | null> {
    const row = await this.#db
      .selectFrom('jobs')
      .select('seq')
      .where('status', '=', 'waiting')
      .where('seq', '>', afterSeq)
      .orderBy('seq')
      .limit(1)
      .offset(n - 1)
      .executeTakeFirst();
    return row ? Number(row.seq) : null;
  }

  forDevice(deviceId: string, statuses: readonly JobStatus[]): Promise<JobRow[]> {
    return this.#db
      .selectFrom('jobs')
      .selectAll()
      .where('device_id', '=', deviceId)
      .where('status', 'in', [...statuses])
      .orderBy('seq')
      .execute();
  }

  /**
   * Persists a status change computed by core `transition()`, guarded by the status it was
   * computed from: a concurrent change makes this a no-op (returns false) instead of a lost update.
   */
  async apply(job: JobRow, change: StatusChange, patch: JobPatch): Promise<boolean> {
    return this.#db.transaction().execute(async (tx) => {
      const result = await tx
        .updateTable('jobs')
        .set({ ...patch, status: change.to, reason: change.reason, updated_at: change.at.toISOString() })
        .where('id', '=', job.id)
        .where('status', '=', job.status)
        .executeTakeFirst();
      if (Number(result.numUpdatedRows) === 0) return false;
      // The next history number is found by the INSERT itself: one statement, not a read and a write.
      await tx
        .insertInto('job_history')
        .columns(['job_id', 'seq', 'from_status', 'to_status', 'at', 'reason'])
        .expression((eb) =>
          eb
            .selectFrom('job_history')
            .select([
              sql<string>`${job.id}`.as('job_id'),
              sql<number>`coalesce(max(seq), 0) + 1`.as('seq'),
              sql<string | null>`${change.from}`.as('from_status'),
              sql<string>`${change.to}`.as('to_status'),
              sql<string>`${change.at.toISOString()}`.as('at'),
              sql<string | null>`${change.reason}`.as('reason'),
            ])
            .where('job_id', '=', job.id),
        )
        .execute();
      return true;
    });
  }

  /**
   * Queues the job's command and records it on the job in one transaction, only if the job has
   * none yet: a crash or a second worker can never queue two commands for one attempt.
   */
  async attachCommand(
    job: JobRow,
    enrollmentId: string,
    command: { uuid: string; requestType: string; payload: string },
    priority: number,
    pushDeadline: string,
    at: Date,
  ): Promise<boolean> {
    const now = at.toISOString();
    return this.#db.transaction().execute(async (tx) => {
      const claimed = await tx
        .updateTable('jobs')
        // The push that follows the new command is the one a retry was waiting for (step push_due).
        .set({ command_uuid: command.uuid, push_deadline: pushDeadline, step: null, updated_at: now })
        .where('id', '=', job.id)
        .where('status', '=', job.status)
        .where('command_uuid', 'is', null)
        .executeTakeFirst();
      if (Number(claimed.numUpdatedRows) === 0) return false;
      await queueCommands(tx, [{ enrollmentId, command, priority }], at);
      return true;
    });
  }

  /** {@link patch} for many jobs at once, a statement per 500. */
  async patchMany(ids: readonly string[], patch: JobPatch, at: Date): Promise<void> {
    for (let i = 0; i < ids.length; i += 500)
      await this.#db
        .updateTable('jobs')
        .set({ ...patch, updated_at: at.toISOString() })
        .where('id', 'in', ids.slice(i, i + 500))
        .execute();
  }

  async patch(id: string, patch: JobPatch, at: Date): Promise<void> {
    await this.#db
      .updateTable('jobs')
      .set({ ...patch, updated_at: at.toISOString() })
      .where('id', '=', id)
      .execute();
  }

  history(jobId: string) {
    return this.#db
      .selectFrom('job_history')
      .selectAll()
      .where('job_id', '=', jobId)
      .orderBy('seq')
      .execute();
  }

  async counts(distributionId: string): Promise<Record<string, number>> {
    const rows = await this.#db
      .selectFrom('jobs')
      .select(['status', (eb) => eb.fn.countAll<number>().as('n')])
      .where('distribution_id', '=', distributionId)
      .groupBy('status')
      .execute();
    return Object.fromEntries(rows.map((r) => [r.status, Number(r.n)]));
  }

  list(filter: JobFilter): Promise<JobRow[]> {
    let q = this.#db.selectFrom('jobs').selectAll();
    if (filter.distributionId) q = q.where('distribution_id', '=', filter.distributionId);
    if (filter.deviceId) q = q.where('device_id', '=', filter.deviceId);
    if (filter.status) q = q.where('status', '=', filter.status);
    if (filter.afterSeq !== undefined) q = q.where('seq', '>', filter.afterSeq);
    return q.orderBy('seq').limit(filter.limit).execute();
  }

  /**
   * {@link list} with the device's number and the app's name joined in, for lists people read:
   * one query per page, not one look-up per row.
   */
  listLabelled(filter: JobFilter): Promise<LabelledJobRow[]> {
    let q = this.#labelled();
    if (filter.groupIds)
      q = q.where('devices.group_id', 'in', filter.groupIds.length > 0 ? [...filter.groupIds] : ['']);
    if (filter.distributionId) q = q.where('jobs.distribution_id', '=', filter.distributionId);
    if (filter.deviceId) q = q.where('jobs.device_id', '=', filter.deviceId);
    if (filter.status) q = q.where('jobs.status', '=', filter.status);
    if (filter.afterSeq !== undefined) q = q.where('jobs.seq', '>', filter.afterSeq);
    return q.orderBy('jobs.seq').limit(filter.limit).execute();
  }

  getLabelled(id: string): Promise<LabelledJobRow | undefined> {
    return this.#labelled().where('jobs.id', '=', id).executeTakeFirst();
  }

  #labelled() {
    return (
      this.#db
        .selectFrom('jobs')
        .leftJoin('devices', 'devices.id', 'jobs.device_id')
        .selectAll('jobs')
        .select('devices.device_number as device_number')
        // A subquery, not a join: an app with two pricing params (STDQ, PLUS) must not double a row.
        .select((eb) =>
          eb
            .selectFrom('vpp_assets')
            .select('vpp_assets.name')
            .whereRef('vpp_assets.token_id', '=', 'jobs.token_id')
            .whereRef('vpp_assets.adam_id', '=', 'jobs.adam_id')
            .where('vpp_assets.name', 'is not', null)
            .limit(1)
            .as('app_name'),
        )
    );
  }

  /**
   * One page of a distribution's jobs for export, in job order, with the device's number and
   * serial and the app's name joined in: an export reads O(page) rows at a time, never all jobs.
   */
  exportPage(distributionId: string, afterSeq: number, limit: number) {
    return this.#labelled()
      .select('devices.serial_number as serial_number')
      .where('jobs.distribution_id', '=', distributionId)
      .where('jobs.seq', '>', afterSeq)
      .orderBy('jobs.seq')
      .limit(limit)
      .execute();
  }

  /** The status history of a distribution's jobs with seq in (afterSeq, lastSeq] — the rows of one export page. */
  historyOfRange(distributionId: string, afterSeq: number, lastSeq: number) {
    return this.#db
      .selectFrom('job_history')
      .innerJoin('jobs', 'jobs.id', 'job_history.job_id')
      .select(['job_history.job_id', 'job_history.seq', 'job_history.to_status', 'job_history.at'])
      .where('jobs.distribution_id', '=', distributionId)
      .where('jobs.seq', '>', afterSeq)
      .where('jobs.seq', '<=', lastSeq)
      .orderBy('job_history.job_id')
      .orderBy('job_history.seq')
      .execute();
  }

  static newId(): string {
    return randomUUID();
  }
}

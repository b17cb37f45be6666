import type { Kysely } from 'kysely';
import { prepare } from './prepared.ts';
import type { Database } from './schema.ts';

/**
 * The queue's history, bounded (issue 15; DESIGN §6: "a queue must not grow without bound").
 * `command_queue` holds only what is still owed to devices; what is answered stays in three
 * tables that every command and every report would otherwise grow forever. Compaction removes
 * their rows older than the retention, except:
 * - `mdm_messages`: the newest `keepMessagesPerDevice` of each device, whatever their age (what a
 *   support desk reads about a device that has gone quiet);
 * - `command_results`: the answer to a job's command while that job has not succeeded — unfinished
 *   (the engine's restart recovery applies a stored answer) or failed (the raw answer of a failed
 *   job; its diagnosis, history and support bundle read the job's own columns and `job_history`,
 *   which compaction never touches);
 * - `commands`: a command still queued, or the command of a job that has not succeeded.
 * Rows go in chunks, one transaction each, oldest first, with a pause between chunks so that
 * check-ins are served meanwhile (better-sqlite3 runs on the event loop). The same SQL runs on
 * SQLite and PostgreSQL; several haishin processes may compact at once (deleting is idempotent).
 */
export interface CompactionOptions {
  /** Rows received or created before this go (but see above). */
  before: Date;
  /** The newest messages of each device kept whatever their age (0: none). */
  keepMessagesPerDevice: number;
  /** Rows (or devices, for messages) per transaction. */
  chunk?: number;
  /** Awaited between chunks; the default yields to the event loop once. */
  pause?: () => Promise<void>;
}

export interface CompactionResult {
  messages: number;
  results: number;
  commands: number;
  ms: number;
}

const yieldOnce = () => new Promise<void>((resolve) => setImmediate(resolve));

/** Builds the statements once per store; {@link QueueCompaction.run} executes them. */
export class QueueCompaction {
  readonly #db: Kysely<Database>;
  readonly #q: ReturnType<typeof statements>;

  constructor(db: Kysely<Database>) {
    this.#db = db;
    this.#q = statements(db);
  }

  async run(o: CompactionOptions): Promise<CompactionResult> {
    const started = performance.now();
    const chunk = Math.max(1, o.chunk ?? 1000);
    const pause = o.pause ?? yieldOnce;
    const before = o.before.toISOString();
    const keep = Math.max(0, Math.floor(o.keepMessagesPerDevice));
    const result: CompactionResult = { messages: 0, results: 0, commands: 0, ms: 0 };

    // Messages, device by device: "the newest N of each" is one index range per device.
    for (let after = ''; ;) {
      const page = await this.#q.devicesAfter.rows(this.#db, after, chunk);
      if (page.length === 0) break;
      result.messages += await this.#db.transaction().execute(async (tx) => {
        let deleted = 0;
        for (const { udid } of page) {
          deleted +=
            keep === 0
              ? await this.#q.messagesBefore.affected(tx, udid, before)
              : await this.#q.messagesBeyondNewest.affected(tx, udid, before, keep - 1);
        }
        return deleted;
      });
      after = page[page.length - 1]!.udid;
      if (page.length < chunk) break;
      await pause();
    }

    for (;;) {
      const deleted = await this.#q.results.affected(this.#db, before, chunk);
      result.results += deleted;
      if (deleted < chunk) break;
      await pause();
    }
    for (;;) {
      const deleted = await this.#q.commands.affected(this.#db, before, chunk);
      result.commands += deleted;
      if (deleted < chunk) break;
      await pause();
    }
    result.ms = performance.now() - started;
    return result;
  }
}

function statements(db: Kysely<Database>) {
  return {
    devicesAfter: prepare<[after: string, limit: number], { udid: string }>(db, (k, arg) =>
      k
        .selectFrom('devices')
        .select('udid')
        .where('udid', '>', arg<string>(0))
        .orderBy('udid')
        .limit(arg<number>(1)),
    ),
    messagesBefore: prepare<[udid: string, before: string], never>(db, (k, arg) =>
      k
        .deleteFrom('mdm_messages')
        .where('udid', '=', arg<string>(0))
        .where('received_at', '<', arg<string>(1)),
    ),
    // Older than the cut-off and than the device's N-th newest message (none: fewer than N, kept);
    // the id orders messages of the same millisecond, so exactly N stay.
    messagesBeyondNewest: prepare<[udid: string, before: string, offset: number], never>(db, (k, arg) =>
      k
        .deleteFrom('mdm_messages')
        .where('udid', '=', arg<string>(0))
        .where('received_at', '<', arg<string>(1))
        .where((eb) =>
          eb(
            eb.refTuple('received_at', 'id'),
            '<',
            eb
              .selectFrom('mdm_messages as newer')
              .select(['newer.received_at', 'newer.id'])
              .where('newer.udid', '=', arg<string>(0))
              .orderBy('newer.received_at', 'desc')
              .orderBy('newer.id', 'desc')
              .limit(1)
              .offset(arg<number>(2))
              .$asTuple('received_at', 'id'),
          ),
        ),
    ),
    results: prepare<[before: string, limit: number], never>(db, (k, arg) =>
      k.deleteFrom('command_results').where((eb) =>
        eb(
          eb.refTuple('enrollment_id', 'command_uuid'),
          'in',
          eb
            .selectFrom('command_results as r')
            .select(['r.enrollment_id', 'r.command_uuid'])
            .where('r.received_at', '<', arg<string>(0))
            .where((w) =>
              w.not(
                w.exists(
                  w
                    .selectFrom('jobs')
                    .select('jobs.id')
                    .whereRef('jobs.command_uuid', '=', 'r.command_uuid')
                    .where('jobs.status', '!=', 'success'),
                ),
              ),
            )
            .orderBy('r.received_at')
            .limit(arg<number>(1))
            .$asTuple('enrollment_id', 'command_uuid'),
        ),
      ),
    ),
    commands: prepare<[before: string, limit: number], never>(db, (k, arg) =>
      k.deleteFrom('commands').where('uuid', 'in', (eb) =>
        eb
          .selectFrom('commands as c')
          .select('c.uuid')
          .where('c.created_at', '<', arg<string>(0))
          .where((w) =>
            w.not(
              w.exists(
                w
                  .selectFrom('command_queue as q')
                  .select('q.command_uuid')
                  .whereRef('q.command_uuid', '=', 'c.uuid'),
              ),
            ),
          )
          .where((w) =>
            w.not(
              w.exists(
                w
                  .selectFrom('jobs')
                  .select('jobs.id')
                  .whereRef('jobs.command_uuid', '=', 'c.uuid')
                  .where('jobs.status', '!=', 'success'),
              ),
            ),
          )
          .orderBy('c.created_at')
          .limit(arg<number>(1)),
      ),
    ),
  };
}

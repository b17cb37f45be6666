import { Refusal } from '../../core/refusal.ts';
import { effectiveAutoAssign } from '../../core/tokens.ts';
import { VppError, isTokenKind } from '../../apple/vpp/errors.ts';
import { causeOfVppErrorKind } from '../../diagnosis/index.ts';
import type { JobRow, LicenceRow } from '../../store/job-repo.ts';
import type { Store } from '../../store/store.ts';
import { BATCH } from './context.ts';
import type { EngineContext } from './context.ts';
import type { JobMover } from './mover.ts';

/**
 * The tick's licence steps for auto-mode installs (decision 0017): the licences of waiting jobs
 * taken ahead, and the licence phase of the jobs in `license_assigning` — both asked of Apple in
 * one batched call per (token, app), a job marked `step = licence_requested` until Apple's event
 * settles its licence (`src/engine/tokens/events.ts`). Also the words a job fails with when Apple
 * refuses a licence, shared with the activation's manual-mode check.
 */
export class Licences {
  readonly #ctx: EngineContext;
  readonly #mover: JobMover;

  constructor(ctx: EngineContext, mover: JobMover) {
    this.#ctx = ctx;
    this.#mover = mover;
  }

  /**
   * Takes the licences of waiting auto-mode installs ahead, while the jobs wait for a slot on
   * their device: a device with twenty apps to install gets its twenty licences in the same few
   * batched calls, and each job goes to its install command as soon as a slot frees — in the
   * same session when the device just reported others finished. A job whose licence Apple
   * refuses fails now; one outside its group's auto-assign token is left to the activation,
   * which says why. Bounded per tick, resumed where it stopped.
   */
  async ahead(): Promise<void> {
    const ctx = this.#ctx;
    const limit = BATCH * 4;
    const rows = await ctx.store.jobs.licenceAhead(ctx.licenceAheadCursor, limit);
    ctx.licenceAheadCursor = rows.length === limit ? rows.at(-1)!.seq : 0;
    if (rows.length === 0) return;
    const groups = await ctx.groupNodes();
    const autoAssign = await ctx.store.vpp.autoAssignSettings();
    const eligible = rows.filter(
      (row) => effectiveAutoAssign(groups, autoAssign, row.device_group_id).tokenId === row.token_id,
    );
    await this.#request(eligible);
  }

  /** Batches licence assignment per (token, app); jobs whose serial already holds one skip ahead. */
  async phase(): Promise<void> {
    await this.#request(await this.#ctx.store.jobs.licencePhase(BATCH * 4));
  }

  /**
   * For jobs in `license_assigning`, and waiting jobs whose licence is taken ahead: a licence
   * held moves the job on (a waiting one stays waiting for its slot), one Apple refused fails
   * it, the others are asked of Apple in one call per (token, app) and marked `licence_requested`.
   */
  async #request(rows: readonly LicenceRow[]): Promise<void> {
    const ctx = this.#ctx;
    const mover = this.#mover;
    const submit = new Map<
      string,
      { tokenId: string; adamId: string; items: { job: JobRow; serial: string; groupId: string }[] }
    >();
    const now = ctx.now();
    const requested: string[] = [];
    for (const row of rows) {
      const {
        serial,
        device_group_id: groupId,
        licence_state: state,
        licence_error: errorCode,
        ...job
      } = row;
      const ahead = job.status === 'waiting';
      if (!serial) {
        // A waiting job is failed by its activation, with the same words.
        if (!ahead) await mover.move(job, 'license_failed', 'device has no serial number');
        continue;
      }
      if (state === 'assigned') {
        if (ahead) requested.push(job.id);
        else await mover.move(job, 'push_sending', 'licence assigned');
        continue;
      }
      const wasRequested = job.step === 'licence_requested';
      if (state === 'failed' && wasRequested) {
        await mover.move(job, 'license_failed', `license ${errorCode ?? 'refused'}`, {
          error: JSON.stringify({ errorNumber: errorCode }),
        });
        continue;
      }
      if (wasRequested) continue;
      // A reclaim still in flight (reclaim_and_reassign): a new assignment sent now could cross it at Apple.
      if (state === 'reclaiming') continue;
      if (state === 'assigning') {
        // Already asked for (a previous pass or process got this far): wait for Apple's answer.
        requested.push(job.id);
        continue;
      }
      const key = `${job.token_id}\u0000${job.adam_id}`;
      const entry = submit.get(key) ?? { tokenId: job.token_id, adamId: job.adam_id, items: [] };
      entry.items.push({ job, serial, groupId });
      submit.set(key, entry);
    }
    await ctx.store.jobs.patchMany(requested, { step: 'licence_requested' }, now);
    for (const entry of submit.values()) {
      // One call for the whole batch (the client splits at Apple's limits); each licence remembers its group.
      const via = new Map(entry.items.map((i) => [i.serial, i.groupId]));
      let failedSerials = new Map<string, LicenceFailure>();
      try {
        const change = await ctx.tokens.assign(
          entry.tokenId,
          entry.adamId,
          entry.items.map((i) => i.serial),
          'auto',
          via,
        );
        failedSerials = new Map(
          change.failed.flatMap((f) => {
            const failure = {
              reason: vppFailureReason(f.kind, f.errorNumber),
              error: JSON.stringify({ kind: f.kind, errorNumber: f.errorNumber }),
            };
            return f.serials.map((s) => [s, failure] as const);
          }),
        );
      } catch (err) {
        const failure = licenceFailure(err);
        failedSerials = new Map(entry.items.map((i) => [i.serial, failure]));
      }
      const now = ctx.now();
      const asked: string[] = [];
      for (const item of entry.items) {
        const failure = failedSerials.get(item.serial);
        if (failure)
          await mover.move(
            item.job,
            'license_failed',
            failure.reason,
            failure.error ? { error: failure.error } : {},
          );
        else asked.push(item.job.id);
      }
      await ctx.store.jobs.patchMany(asked, { step: 'licence_requested' }, now);
    }
  }
}

/**
 * A manual assignment haishin sent and Apple has not confirmed yet: wait for it rather than fail.
 * A licence confirmed after Apple's list was read (`listReadAt`) counts too: the next tick's
 * list will show it.
 */
export async function assigningNow(
  store: Store,
  job: JobRow,
  serial: string,
  listReadAt: Date,
): Promise<boolean> {
  const [licence] = await store.vpp.licenses({
    tokenId: job.token_id,
    adamId: job.adam_id,
    serialNumber: serial,
  });
  if (licence?.state === 'assigning') return true;
  return licence?.state === 'assigned' && new Date(licence.updated_at).getTime() >= listReadAt.getTime();
}

/** Why a licence could not be had, as the job's reason, and Apple's answer for the job's error. */
export interface LicenceFailure {
  reason: string;
  error: string | null;
}

/**
 * The reason a job gets when Apple refuses its licence: for a token-level error the token's cause
 * (`token.revoked`, …) — the number says which, and no other licence of the token can succeed
 * either —; otherwise Apple's number (`license 9709`, read by the diagnosis), or the kind's cause.
 */
export function vppFailureReason(kind: string, errorNumber: number | null): string {
  if (isTokenKind(kind as VppError['kind'])) return causeOfVppErrorKind(kind);
  return errorNumber !== null ? `license ${errorNumber}` : causeOfVppErrorKind(kind);
}

export function licenceFailure(err: unknown): LicenceFailure {
  if (err instanceof Refusal) return { reason: err.code, error: null };
  if (!(err instanceof VppError)) return { reason: 'license.apple_refused', error: null };
  return {
    reason: vppFailureReason(err.kind, err.errorNumber ?? null),
    error: JSON.stringify({
      kind: err.kind,
      errorNumber: err.errorNumber ?? null,
      errorMessage: err.errorMessage ?? null,
      httpStatus: err.httpStatus,
    }),
  };
}

import { parseStoredAnswer } from '../../mdm/results.ts';
import type { CommandReport } from '../../mdm/ports.ts';
import { BATCH } from './context.ts';
import type { EngineContext } from './context.ts';

/**
 * First pass after a (re)start: Apple events still open are tracked again, and every device
 * with work in flight is pushed once — a device cut off mid-session waits for a push. The jobs
 * are read a page at a time, each page with the answers stored for its commands in one query;
 * an answer not yet applied to its job is handed to `onReport` as if the device just sent it.
 */
export async function recover(
  ctx: EngineContext,
  onReport: (report: CommandReport) => Promise<void>,
): Promise<void> {
  ctx.recovered = true;
  await ctx.tokens.recover();
  const pushed = new Set<string>();
  for (const status of ['push_sending', 'retry_waiting', 'awaiting_response', 'executing'] as const) {
    for (let after = 0; ;) {
      const page = await ctx.store.jobs.withStoredAnswers(status, after, BATCH);
      if (page.length === 0) break;
      after = page.at(-1)!.seq;
      // An answer stored just before the stop, but not yet applied to its job: apply it now.
      for (const row of page) {
        const { answer_enrollment_id: enrollmentId, answer_status, answer_raw, answer_at, ...job } = row;
        if (!job.command_uuid || job.status === 'executing') continue;
        if (!enrollmentId || !answer_status || answer_raw === null || !answer_at) continue;
        const answer = parseStoredAnswer(answer_raw);
        if (!answer) continue;
        await onReport({
          deviceId: job.device_id,
          enrollmentId,
          commandUuid: job.command_uuid,
          requestType: job.kind === 'install' ? 'InstallApplication' : 'RemoveApplication',
          status: answer.result.status,
          result: answer.result,
          report: answer.report,
          raw: answer_raw,
          at: new Date(answer_at),
        });
      }
      const devices = [
        ...new Set(page.filter((j) => j.command_uuid && !pushed.has(j.device_id)).map((j) => j.device_id)),
      ];
      for (const d of devices) pushed.add(d);
      await ctx.commander.push(devices);
      if (page.length < BATCH) break;
    }
  }
}

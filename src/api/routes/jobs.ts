import { Readable } from 'node:stream';
import { Type } from 'typebox';
import type { FastifyRequest } from 'fastify';
import { isTerminal, JOB_STATUSES } from '../../core/jobs.ts';
import type { JobStatus } from '../../core/jobs.ts';
import { Refusal } from '../../core/refusal.ts';
import type { DistributionEngine, DistributionInput } from '../../engine/engine.ts';
import { distributionJobsCsv } from '../../engine/csv.ts';
import { preflight } from '../../engine/preflight.ts';
import { remediate } from '../../engine/remediate.ts';
import { buildSupportBundle, supportBundleText } from '../../engine/support-bundle.ts';
import type { VppTokens } from '../../engine/vpp-tokens.ts';
import { diagnoseErrorText } from '../../diagnosis/index.ts';
import type { JobRow, LabelledJobRow } from '../../store/job-repo.ts';
import type { AdminApp, AdminContext } from '../admin.ts';
import { scopeOf } from '../authz.ts';
import { decodeCursor, DEFAULT_PAGE_SIZE, page, pageOf, PageQuery } from '../pagination.ts';

const Status = Type.Union(
  JOB_STATUSES.map((s) => Type.Literal(s)) as [ReturnType<typeof Type.Literal<JobStatus>>],
);
const ChainItem = Type.Object({
  code: Type.Union([Type.Integer(), Type.Null()]),
  domain: Type.Union([Type.String(), Type.Null()]),
  description: Type.Union([Type.String(), Type.Null()]),
});
const JobError = Type.Union([
  Type.Object({ chain: Type.Array(ChainItem), rejectionReason: Type.Union([Type.String(), Type.Null()]) }),
  Type.Null(),
]);

export const Job = Type.Object({
  id: Type.String(),
  distributionId: Type.String(),
  deviceId: Type.String(),
  adamId: Type.String(),
  kind: Type.String(),
  status: Type.String(),
  reason: Type.Union([Type.String(), Type.Null()]),
  retryCount: Type.Integer(),
  attempt: Type.Integer(),
  updatedAt: Type.String(),
  error: JobError,
  isUpdate: Type.Boolean({ description: 'an app update: the device already had the app (decision 0018)' }),
  expectedVersion: Type.Union([Type.String(), Type.Null()], {
    description:
      'the app version the look-up knew when the job was made; an update succeeds only at this version or newer',
  }),
  installedVersion: Type.Union([Type.String(), Type.Null()], {
    description: 'the version the device reported when the job was verified (or last checked, for an update)',
  }),
});

/** A job as listed for people: the device's number and the app's name next to the ids. */
export const LabelledJob = Type.Object({
  ...Job.properties,
  deviceNumber: Type.Union([Type.Integer(), Type.Null()], {
    description: "the device's number (端末番号); null if the device row is gone",
  }),
  appName: Type.Union([Type.String(), Type.Null()], {
    description: "the app's name from the token's synced assets; null until a sync has named it",
  }),
});

const DistributionBody = Type.Object(
  {
    kind: Type.Union([Type.Literal('install'), Type.Literal('uninstall')]),
    tokenId: Type.String({ minLength: 1 }),
    adamIds: Type.Array(Type.String({ pattern: '^[0-9]+$' }), { minItems: 1, maxItems: 100 }),
    targets: Type.Object(
      {
        deviceIds: Type.Optional(Type.Array(Type.String({ minLength: 1 }), { maxItems: 100_000 })),
        groupIds: Type.Optional(Type.Array(Type.String({ minLength: 1 }), { maxItems: 1000 })),
        includeSubgroups: Type.Optional(Type.Boolean()),
      },
      { additionalProperties: false },
    ),
    licenseMode: Type.Union([Type.Literal('auto'), Type.Literal('manual')]),
    scheduledAt: Type.Optional(Type.String({ format: 'date-time' })),
  },
  { additionalProperties: false },
);

const IdParams = Type.Object({ id: Type.String({ minLength: 1 }) });
const tags = ['distributions'];

const Bilingual = Type.Object({ ja: Type.String(), en: Type.String() });
const Cause = Type.Object({
  code: Type.String(),
  confidence: Type.Union([Type.Literal('confirmed'), Type.Literal('likely'), Type.Literal('possible')]),
  title: Bilingual,
  remedy: Bilingual,
  evidence: Type.Array(
    Type.Object({
      fact: Type.String(),
      value: Type.Union([Type.String(), Type.Number(), Type.Boolean(), Type.Null()]),
      source: Type.String(),
    }),
  ),
  actions: Type.Array(Type.String()),
});

const PreflightAnswer = Type.Object({
  devices: Type.Array(
    Type.Object({
      deviceId: Type.String(),
      deviceNumber: Type.Integer(),
      serialNumber: Type.Union([Type.String(), Type.Null()]),
      factsAt: Type.Union([Type.String(), Type.Null()], {
        description:
          'when DeviceInformation was last read; null: storage, network and similar causes could not be predicted',
      }),
      causes: Type.Array(
        Type.Object({
          ...Cause.properties,
          adamIds: Type.Array(Type.String(), {
            description: 'the apps of the distribution this cause concerns',
          }),
        }),
      ),
    }),
  ),
  summary: Type.Object({
    devices: Type.Integer(),
    withCauses: Type.Integer(),
    byCode: Type.Record(Type.String(), Type.Integer()),
  }),
});

const DistributionApps = Type.Array(
  Type.Object({ adamId: Type.String(), name: Type.Union([Type.String(), Type.Null()]) }),
  { description: 'the apps with their names, in the order of adamIds' },
);

const toInput = (b: {
  kind: 'install' | 'uninstall';
  tokenId: string;
  adamIds: string[];
  targets: DistributionInput['targets'];
  licenseMode: 'auto' | 'manual';
  scheduledAt?: string;
}): DistributionInput => ({
  kind: b.kind,
  tokenId: b.tokenId,
  adamIds: b.adamIds,
  targets: b.targets,
  licenseMode: b.licenseMode,
  scheduledAt: b.scheduledAt ? new Date(b.scheduledAt) : null,
});

/** `Accept: text/plain` (or `?format=text`) asks for the text form; anything else gets JSON. */
function wantsText(req: FastifyRequest, format: string | undefined): boolean {
  if (format !== undefined) return format === 'text';
  const accept = req.headers.accept ?? '';
  return /\btext\/plain\b/i.test(accept) && !/\bapplication\/json\b/i.test(accept);
}

export function jobToApi(j: JobRow) {
  const error = j.error
    ? (JSON.parse(j.error) as { chain?: unknown[]; rejectionReason?: string | null })
    : null;
  return {
    id: j.id,
    distributionId: j.distribution_id,
    deviceId: j.device_id,
    adamId: j.adam_id,
    kind: j.kind,
    status: j.status,
    reason: j.reason,
    retryCount: j.retry_count,
    attempt: j.attempt,
    updatedAt: j.updated_at,
    error: error
      ? {
          chain: (error.chain ?? []) as {
            code: number | null;
            domain: string | null;
            description: string | null;
          }[],
          rejectionReason: error.rejectionReason ?? null,
        }
      : null,
    isUpdate: j.is_update === 1,
    expectedVersion: j.expected_version,
    installedVersion: j.installed_version,
  };
}

export function labelledJobToApi(j: LabelledJobRow) {
  return { ...jobToApi(j), deviceNumber: j.device_number, appName: j.app_name };
}

export async function registerJobRoutes(
  app: AdminApp,
  ctx: AdminContext,
  engine: DistributionEngine,
  tokens: VppTokens,
): Promise<void> {
  const { store } = ctx;

  async function mustGetJob(id: string): Promise<JobRow> {
    const job = await store.jobs.get(id);
    if (!job) throw new Refusal(404, 'job.not_found', { id });
    return job;
  }
  /** Each distribution's apps with the names the token's synced assets carry (null before a sync). */
  async function appsOf(
    rows: readonly { token_id: string; adam_ids: string }[],
  ): Promise<{ adamId: string; name: string | null }[][]> {
    const lists = rows.map((d) => ({ tokenId: d.token_id, adamIds: JSON.parse(d.adam_ids) as string[] }));
    const names = await store.vpp.assetNames(
      lists.flatMap((l) => l.adamIds.map((adamId) => ({ tokenId: l.tokenId, adamId }))),
    );
    return lists.map((l) =>
      l.adamIds.map((adamId) => ({ adamId, name: names.get(`${l.tokenId}\u0000${adamId}`) ?? null })),
    );
  }
  async function mustGetDistribution(id: string) {
    const d = await store.jobs.getDistribution(id);
    if (!d) throw new Refusal(404, 'distribution.not_found', { id });
    return d;
  }

  app.post(
    '/distributions',
    {
      config: {
        authz: {
          permission: 'operate',
          objects: [
            { kind: 'vpp_token', at: 'body.tokenId' },
            { kind: 'device', at: 'body.targets.deviceIds' },
            { kind: 'group', at: 'body.targets.groupIds' },
          ],
        },
      },
      schema: {
        tags,
        summary: 'Distribute apps to devices and groups: one job per device × app',
        body: DistributionBody,
        response: { 201: Type.Object({ id: Type.String(), jobCount: Type.Integer() }) },
      },
    },
    async (req, reply) => {
      const b = req.body;
      const result = await engine.create(toInput(b), req.adminTokenId ?? 'unknown');
      await ctx.audit(req, 'distribution.create', 'distribution', result.id, {
        ...b,
        jobCount: result.jobCount,
      });
      return reply.code(201).send(result);
    },
  );

  app.post(
    '/distributions/preflight',
    {
      config: {
        authz: {
          permission: 'read',
          objects: [
            { kind: 'vpp_token', at: 'body.tokenId' },
            { kind: 'device', at: 'body.targets.deviceIds' },
            { kind: 'group', at: 'body.targets.groupIds' },
          ],
        },
      },
      schema: {
        tags,
        summary:
          'Predict, per device, what would go wrong with this distribution (same body as POST /distributions); nothing is created',
        description:
          'Each device × app is diagnosed as a planned job: token state and placement, auto-assign, licences left against the devices that need one, enrolment and silence, push result, OS and device family, free storage, size against cellular, Shared iPad users, restrictions, built-in and iWork apps. Facts come from what haishin knows: refresh devices first (POST /devices/:id/refresh) for storage, network and restrictions.',
        body: DistributionBody,
        response: { 200: PreflightAnswer },
      },
    },
    async (req) => preflight({ store, clock: ctx.clock, tokens, engine }, toInput(req.body)),
  );

  app.get(
    '/distributions',
    {
      config: { authz: { permission: 'read', filtered: true } },
      schema: {
        tags,
        summary: 'Distributions, newest first, each with its job counts per status',
        querystring: Type.Object({ ...PageQuery }),
        response: {
          200: pageOf(
            Type.Object({
              id: Type.String(),
              kind: Type.String(),
              tokenId: Type.String(),
              adamIds: Type.Array(Type.String()),
              apps: DistributionApps,
              licenseMode: Type.String(),
              isUpdate: Type.Boolean({ description: 'an app update (POST /apps/:adamId/update)' }),
              createdAt: Type.String(),
              counts: Type.Record(Type.String(), Type.Integer()),
            }),
          ),
        },
      },
    },
    async (req) => {
      const limit = req.query.limit ?? DEFAULT_PAGE_SIZE;
      const after = decodeCursor(req.query.cursor, 2);
      const groupIds = scopeOf(req).groupIds;
      const rows = await store.jobs.listDistributions({
        ...(after ? { before: [String(after[0]), String(after[1])] as const } : {}),
        ...(groupIds ? { groupIds } : {}),
        limit: limit + 1,
      });
      const result = page(rows, limit, (d) => [d.created_at, d.id]);
      const counts = await store.jobs.countsOf(result.items.map((d) => d.id));
      const apps = await appsOf(result.items);
      return {
        items: result.items.map((d, i) => ({
          id: d.id,
          kind: d.kind,
          tokenId: d.token_id,
          adamIds: JSON.parse(d.adam_ids) as string[],
          apps: apps[i]!,
          licenseMode: d.license_mode,
          isUpdate: d.is_update === 1,
          createdAt: d.created_at,
          counts: counts.get(d.id) ?? {},
        })),
        nextCursor: result.nextCursor,
      };
    },
  );

  app.get(
    '/distributions/:id/jobs.csv',
    {
      config: { authz: { permission: 'read', objects: [{ kind: 'distribution', at: 'params.id' }] } },
      schema: {
        tags,
        summary:
          'Every job of the distribution as CSV (UTF-8 with BOM, CRLF; Excel opens it as is), one row per job with the status in Japanese and English',
        params: IdParams,
      },
    },
    async (req, reply) => {
      const d = await mustGetDistribution(req.params.id);
      return reply
        .type('text/csv; charset=utf-8')
        .header('content-disposition', `attachment; filename="haishin-distribution-${d.id}-jobs.csv"`)
        .send(Readable.from(distributionJobsCsv(store, d.id)));
    },
  );

  app.get(
    '/distributions/:id',
    {
      config: { authz: { permission: 'read', objects: [{ kind: 'distribution', at: 'params.id' }] } },
      schema: {
        tags,
        summary: 'A distribution with job counts per status',
        params: IdParams,
        response: {
          200: Type.Object({
            id: Type.String(),
            kind: Type.String(),
            tokenId: Type.String(),
            adamIds: Type.Array(Type.String()),
            apps: DistributionApps,
            licenseMode: Type.String(),
            isUpdate: Type.Boolean({ description: 'an app update (POST /apps/:adamId/update)' }),
            createdAt: Type.String(),
            counts: Type.Record(Type.String(), Type.Integer()),
          }),
        },
      },
    },
    async (req) => {
      const d = await mustGetDistribution(req.params.id);
      return {
        id: d.id,
        kind: d.kind,
        tokenId: d.token_id,
        adamIds: JSON.parse(d.adam_ids) as string[],
        apps: (await appsOf([d]))[0]!,
        licenseMode: d.license_mode,
        isUpdate: d.is_update === 1,
        createdAt: d.created_at,
        counts: await store.jobs.counts(d.id),
      };
    },
  );

  app.post(
    '/jobs/cancel-pending',
    {
      config: {
        authz: {
          permission: 'operate',
          objects: [{ kind: 'device', at: 'body.deviceId' }],
          global: 'unless_objects',
        },
      },
      schema: {
        tags,
        summary:
          'Cancel every job that has not finished (all distributions), optionally only those of one device',
        body: Type.Object(
          { deviceId: Type.Optional(Type.String({ minLength: 1 })) },
          { additionalProperties: false },
        ),
        response: { 200: Type.Object({ changed: Type.Integer() }) },
      },
    },
    async (req) => {
      const active: JobStatus[] = JOB_STATUSES.filter((s) => !isTerminal(s));
      let changed = 0;
      for (;;) {
        const batch =
          req.body.deviceId === undefined
            ? await store.jobs.byStatus(active, 1000)
            : await store.jobs.forDevice(req.body.deviceId, active);
        const moved = await engine.cancelJobs(batch.map((job) => job.id));
        changed += moved;
        // Bounded: each pass cancels what it saw; a pass that changes nothing ends the loop.
        if (moved === 0 || batch.length === 0) break;
      }
      await ctx.audit(req, 'jobs.cancel_pending', 'job', null, {
        changed,
        deviceId: req.body.deviceId ?? null,
      });
      return { changed };
    },
  );

  for (const action of ['cancel', 'retry'] as const) {
    app.post(
      `/distributions/:id/${action}`,
      {
        config: { authz: { permission: 'operate', objects: [{ kind: 'distribution', at: 'params.id' }] } },
        schema: {
          tags,
          summary:
            action === 'cancel'
              ? 'Cancel every unfinished job of the distribution'
              : 'Retry every job of the distribution that did not succeed',
          params: IdParams,
          response: { 200: Type.Object({ changed: Type.Integer() }) },
        },
      },
      async (req) => {
        await mustGetDistribution(req.params.id);
        let changed = 0;
        const jobs = await store.jobs.list({ distributionId: req.params.id, limit: 1_000_000 });
        if (action === 'cancel')
          changed = await engine.cancelJobs(
            jobs.filter((job) => !isTerminal(job.status as JobStatus)).map((job) => job.id),
          );
        for (const job of jobs) {
          const terminal = isTerminal(job.status as JobStatus);
          if (action === 'retry' && terminal && job.status !== 'success' && (await engine.retryJob(job.id)))
            changed++;
        }
        await ctx.audit(req, `distribution.${action}`, 'distribution', req.params.id, { changed });
        return { changed };
      },
    );
  }

  app.get(
    '/jobs',
    {
      config: { authz: { permission: 'read', filtered: true } },
      schema: {
        tags,
        summary: 'Jobs, filtered by distribution, device or status',
        querystring: Type.Object({
          ...PageQuery,
          distributionId: Type.Optional(Type.String()),
          deviceId: Type.Optional(Type.String()),
          status: Type.Optional(Status),
        }),
        response: { 200: pageOf(LabelledJob) },
      },
    },
    async (req) => {
      const limit = req.query.limit ?? DEFAULT_PAGE_SIZE;
      const after = decodeCursor(req.query.cursor, 1);
      const groupIds = scopeOf(req).groupIds;
      const rows = await store.jobs.listLabelled({
        ...(groupIds ? { groupIds } : {}),
        ...(req.query.distributionId ? { distributionId: req.query.distributionId } : {}),
        ...(req.query.deviceId ? { deviceId: req.query.deviceId } : {}),
        ...(req.query.status ? { status: req.query.status } : {}),
        ...(after ? { afterSeq: Number(after[0]) } : {}),
        limit: limit + 1,
      });
      const result = page(rows, limit, (j) => [j.seq]);
      return { items: result.items.map(labelledJobToApi), nextCursor: result.nextCursor };
    },
  );

  app.get(
    '/jobs/:id',
    {
      config: { authz: { permission: 'read', objects: [{ kind: 'job', at: 'params.id' }] } },
      schema: {
        tags,
        summary: 'A job with its status history and the diagnosis stored when it failed (or last asked for)',
        params: IdParams,
        response: {
          200: Type.Object({
            ...LabelledJob.properties,
            history: Type.Array(
              Type.Object({
                from: Type.Union([Type.String(), Type.Null()]),
                to: Type.String(),
                at: Type.String(),
                reason: Type.Union([Type.String(), Type.Null()]),
              }),
            ),
            diagnosis: Type.Unknown(),
          }),
        },
      },
    },
    async (req) => {
      const job = await store.jobs.getLabelled(req.params.id);
      if (!job) throw new Refusal(404, 'job.not_found', { id: req.params.id });
      const history = await store.jobs.history(job.id);
      return {
        ...labelledJobToApi(job),
        history: history.map((h) => ({ from: h.from_status, to: h.to_status, at: h.at, reason: h.reason })),
        diagnosis: job.diagnosis ? (JSON.parse(job.diagnosis) as unknown) : null,
      };
    },
  );

  app.post(
    '/jobs/:id/cancel',
    {
      config: { authz: { permission: 'operate', objects: [{ kind: 'job', at: 'params.id' }] } },
      schema: {
        tags,
        summary:
          'Cancel a job that has not finished; an install cancelled before its command reached the device gives back the licence haishin auto-assigned for it',
        params: IdParams,
        response: { 200: Job },
      },
    },
    async (req) => {
      await mustGetJob(req.params.id);
      await engine.cancelJob(req.params.id);
      await ctx.audit(req, 'job.cancel', 'job', req.params.id);
      return jobToApi(await mustGetJob(req.params.id));
    },
  );

  app.post(
    '/jobs/:id/retry',
    {
      config: { authz: { permission: 'operate', objects: [{ kind: 'job', at: 'params.id' }] } },
      schema: {
        tags,
        summary: 'Start a new attempt of a job that ended without success',
        params: IdParams,
        response: { 200: Job },
      },
    },
    async (req) => {
      await mustGetJob(req.params.id);
      await engine.retryJob(req.params.id);
      await ctx.audit(req, 'job.retry', 'job', req.params.id);
      return jobToApi(await mustGetJob(req.params.id));
    },
  );

  app.get(
    '/jobs/:id/diagnosis',
    {
      config: { authz: { permission: 'read', objects: [{ kind: 'job', at: 'params.id' }] } },
      schema: {
        tags: ['diagnosis'],
        summary:
          'Why this job did not (yet) succeed: causes ranked best first, with evidence and remedy in ja/en',
        params: IdParams,
        response: {
          200: Type.Object({
            jobId: Type.String(),
            status: Type.String(),
            causes: Type.Array(Cause),
            askedDevice: Type.Array(Type.String(), {
              description:
                'queries sent to the device because its facts were missing or stale; diagnose again once it answered',
            }),
            awaitingDevice: Type.Array(Type.String(), {
              description:
                'queries this diagnosis waits for (sent now or earlier); once the device answered them all, the job is ranked again and its stored diagnosis (GET /jobs/:id) updated',
            }),
          }),
        },
      },
    },
    async (req) => {
      const job = await mustGetJob(req.params.id);
      const { causes, askedDevice, awaitingDevice } = await engine.diagnoseJob(job);
      return { jobId: job.id, status: job.status, causes, askedDevice, awaitingDevice };
    },
  );

  app.post(
    '/diagnose/error',
    {
      config: { authz: { permission: 'read', unscoped: 'explains pasted text; reads nothing stored' } },
      schema: {
        tags: ['diagnosis'],
        summary: 'Explain an error as pasted from a console or log (ErrorChain line, plist, Apple VPP JSON)',
        body: Type.Object(
          { text: Type.String({ minLength: 1, maxLength: 1_000_000 }) },
          { additionalProperties: false },
        ),
        response: {
          200: Type.Object({
            chain: Type.Array(
              Type.Object({
                code: Type.Integer(),
                domain: Type.Union([Type.String(), Type.Null()]),
                description: Type.Union([Type.String(), Type.Null()]),
              }),
            ),
            causes: Type.Array(Cause),
          }),
        },
      },
    },
    async (req) => {
      const result = diagnoseErrorText(req.body.text, ctx.clock.now());
      return {
        chain: result.chain.map((c) => ({ code: c.code, domain: c.domain, description: c.description })),
        causes: result.causes,
      };
    },
  );

  app.post(
    '/jobs/:id/remediate',
    {
      config: { authz: { permission: 'operate', objects: [{ kind: 'job', at: 'params.id' }] } },
      schema: {
        tags: ['diagnosis'],
        summary:
          'Apply a remedy action of a cause: retry, cancel, reclaim_and_reassign, assign_license, refresh_device_info, sync_token; the others answer where to act',
        params: IdParams,
        body: Type.Object(
          { action: Type.String({ minLength: 1, maxLength: 100 }) },
          { additionalProperties: false },
        ),
        response: {
          200: Type.Object({ action: Type.String(), done: Type.Boolean(), detail: Bilingual, job: Job }),
        },
      },
    },
    async (req) => {
      const job = await mustGetJob(req.params.id);
      const outcome = await remediate(
        { store, clock: ctx.clock, tokens, engine, commander: ctx.commander },
        job,
        req.body.action,
      );
      await ctx.audit(req, 'job.remediate', 'job', job.id, {
        action: outcome.action,
        done: outcome.done,
        ...outcome.record,
      });
      return {
        action: outcome.action,
        done: outcome.done,
        detail: outcome.detail,
        job: jobToApi(await mustGetJob(job.id)),
      };
    },
  );

  app.get(
    '/jobs/:id/support-bundle',
    {
      config: { authz: { permission: 'read', objects: [{ kind: 'job', at: 'params.id' }] } },
      schema: {
        tags: ['diagnosis'],
        summary:
          'Everything a support desk needs about the job, without secrets: JSON, or text to paste into a ticket with Accept: text/plain (or ?format=text)',
        params: IdParams,
        querystring: Type.Object({
          format: Type.Optional(Type.Union([Type.Literal('json'), Type.Literal('text')])),
        }),
      },
    },
    async (req, reply) => {
      const job = await mustGetJob(req.params.id);
      const bundle = await buildSupportBundle({ store, tokens, engine, now: ctx.clock.now() }, job);
      if (wantsText(req, req.query.format))
        return reply.type('text/plain; charset=utf-8').send(supportBundleText(bundle));
      return bundle;
    },
  );
}

import { Type } from 'typebox';
import { isTerminal, JOB_STATUSES } from '../../core/jobs.ts';
import type { JobStatus } from '../../core/jobs.ts';
import { Refusal } from '../../core/refusal.ts';
import type { DistributionEngine } from '../../engine/engine.ts';
import { diagnoseErrorText } from '../../diagnosis/index.ts';
import type { JobRow } from '../../store/job-repo.ts';
import type { AdminApp, AdminContext } from '../admin.ts';
import { decodeCursor, DEFAULT_PAGE_SIZE, page, pageOf, PageQuery } from '../pagination.ts';

const Status = Type.Union(JOB_STATUSES.map((s) => Type.Literal(s)) as [ReturnType<typeof Type.Literal<JobStatus>>]);
const ChainItem = Type.Object({ code: Type.Union([Type.Integer(), Type.Null()]), domain: Type.Union([Type.String(), Type.Null()]), description: Type.Union([Type.String(), Type.Null()]) });
const JobError = Type.Union([Type.Object({ chain: Type.Array(ChainItem), rejectionReason: Type.Union([Type.String(), Type.Null()]) }), Type.Null()]);

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

export function jobToApi(j: JobRow) {
  const error = j.error ? (JSON.parse(j.error) as { chain?: unknown[]; rejectionReason?: string | null }) : null;
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
    error: error ? { chain: (error.chain ?? []) as { code: number | null; domain: string | null; description: string | null }[], rejectionReason: error.rejectionReason ?? null } : null,
  };
}

export async function registerJobRoutes(app: AdminApp, ctx: AdminContext, engine: DistributionEngine): Promise<void> {
  const { store } = ctx;

  async function mustGetJob(id: string): Promise<JobRow> {
    const job = await store.jobs.get(id);
    if (!job) throw new Refusal(404, 'job.not_found', { id });
    return job;
  }
  async function mustGetDistribution(id: string) {
    const d = await store.jobs.getDistribution(id);
    if (!d) throw new Refusal(404, 'distribution.not_found', { id });
    return d;
  }

  app.post(
    '/distributions',
    { schema: { tags, summary: 'Distribute apps to devices and groups: one job per device × app', body: DistributionBody, response: { 201: Type.Object({ id: Type.String(), jobCount: Type.Integer() }) } } },
    async (req, reply) => {
      const b = req.body;
      const result = await engine.create(
        {
          kind: b.kind,
          tokenId: b.tokenId,
          adamIds: b.adamIds,
          targets: b.targets,
          licenseMode: b.licenseMode,
          scheduledAt: b.scheduledAt ? new Date(b.scheduledAt) : null,
        },
        req.adminTokenId ?? 'unknown',
      );
      await ctx.audit(req, 'distribution.create', 'distribution', result.id, { ...b, jobCount: result.jobCount });
      return reply.code(201).send(result);
    },
  );

  app.get(
    '/distributions/:id',
    {
      schema: {
        tags,
        summary: 'A distribution with job counts per status',
        params: IdParams,
        response: { 200: Type.Object({ id: Type.String(), kind: Type.String(), tokenId: Type.String(), adamIds: Type.Array(Type.String()), licenseMode: Type.String(), createdAt: Type.String(), counts: Type.Record(Type.String(), Type.Integer()) }) },
      },
    },
    async (req) => {
      const d = await mustGetDistribution(req.params.id);
      return { id: d.id, kind: d.kind, tokenId: d.token_id, adamIds: JSON.parse(d.adam_ids) as string[], licenseMode: d.license_mode, createdAt: d.created_at, counts: await store.jobs.counts(d.id) };
    },
  );

  for (const action of ['cancel', 'retry'] as const) {
    app.post(
      `/distributions/:id/${action}`,
      {
        schema: {
          tags,
          summary: action === 'cancel' ? 'Cancel every unfinished job of the distribution' : 'Retry every job of the distribution that did not succeed',
          params: IdParams,
          response: { 200: Type.Object({ changed: Type.Integer() }) },
        },
      },
      async (req) => {
        await mustGetDistribution(req.params.id);
        let changed = 0;
        for (const job of await store.jobs.list({ distributionId: req.params.id, limit: 1_000_000 })) {
          const terminal = isTerminal(job.status as JobStatus);
          if (action === 'cancel' && !terminal && (await engine.cancelJob(job.id))) changed++;
          if (action === 'retry' && terminal && job.status !== 'success' && (await engine.retryJob(job.id))) changed++;
        }
        await ctx.audit(req, `distribution.${action}`, 'distribution', req.params.id, { changed });
        return { changed };
      },
    );
  }

  app.get(
    '/jobs',
    {
      schema: {
        tags,
        summary: 'Jobs, filtered by distribution, device or status',
        querystring: Type.Object({ ...PageQuery, distributionId: Type.Optional(Type.String()), deviceId: Type.Optional(Type.String()), status: Type.Optional(Status) }),
        response: { 200: pageOf(Job) },
      },
    },
    async (req) => {
      const limit = req.query.limit ?? DEFAULT_PAGE_SIZE;
      const after = decodeCursor(req.query.cursor, 1);
      const rows = await store.jobs.list({
        ...(req.query.distributionId ? { distributionId: req.query.distributionId } : {}),
        ...(req.query.deviceId ? { deviceId: req.query.deviceId } : {}),
        ...(req.query.status ? { status: req.query.status } : {}),
        ...(after ? { afterSeq: Number(after[0]) } : {}),
        limit: limit + 1,
      });
      const result = page(rows, limit, (j) => [j.seq]);
      return { items: result.items.map(jobToApi), nextCursor: result.nextCursor };
    },
  );

  app.get('/jobs/:id', { schema: { tags, summary: 'A job with its status history', params: IdParams } }, async (req) => {
    const job = await mustGetJob(req.params.id);
    const history = await store.jobs.history(job.id);
    return { ...jobToApi(job), history: history.map((h) => ({ from: h.from_status, to: h.to_status, at: h.at, reason: h.reason })) };
  });

  app.post('/jobs/:id/cancel', { schema: { tags, summary: 'Cancel a job that has not finished', params: IdParams, response: { 200: Job } } }, async (req) => {
    await mustGetJob(req.params.id);
    await engine.cancelJob(req.params.id);
    await ctx.audit(req, 'job.cancel', 'job', req.params.id);
    return jobToApi(await mustGetJob(req.params.id));
  });

  app.post('/jobs/:id/retry', { schema: { tags, summary: 'Start a new attempt of a job that ended without success', params: IdParams, response: { 200: Job } } }, async (req) => {
    await mustGetJob(req.params.id);
    await engine.retryJob(req.params.id);
    await ctx.audit(req, 'job.retry', 'job', req.params.id);
    return jobToApi(await mustGetJob(req.params.id));
  });

  const Bilingual = Type.Object({ ja: Type.String(), en: Type.String() });
  const Cause = Type.Object({
    code: Type.String(),
    confidence: Type.Union([Type.Literal('confirmed'), Type.Literal('likely'), Type.Literal('possible')]),
    title: Bilingual,
    remedy: Bilingual,
    evidence: Type.Array(Type.Object({ fact: Type.String(), value: Type.Union([Type.String(), Type.Number(), Type.Boolean(), Type.Null()]), source: Type.String() })),
    actions: Type.Array(Type.String()),
  });

  app.get(
    '/jobs/:id/diagnosis',
    {
      schema: {
        tags: ['diagnosis'],
        summary: 'Why this job did not (yet) succeed: causes ranked best first, with evidence and remedy in ja/en',
        params: IdParams,
        response: { 200: Type.Object({ jobId: Type.String(), status: Type.String(), causes: Type.Array(Cause) }) },
      },
    },
    async (req) => {
      const job = await mustGetJob(req.params.id);
      return { jobId: job.id, status: job.status, causes: await engine.diagnose(job) };
    },
  );

  app.post(
    '/diagnose/error',
    {
      schema: {
        tags: ['diagnosis'],
        summary: 'Explain an error as pasted from a console or log (ErrorChain line, plist, Apple VPP JSON)',
        body: Type.Object({ text: Type.String({ minLength: 1, maxLength: 1_000_000 }) }, { additionalProperties: false }),
        response: {
          200: Type.Object({
            chain: Type.Array(Type.Object({ code: Type.Integer(), domain: Type.Union([Type.String(), Type.Null()]), description: Type.Union([Type.String(), Type.Null()]) })),
            causes: Type.Array(Cause),
          }),
        },
      },
    },
    async (req) => {
      const result = diagnoseErrorText(req.body.text, ctx.clock.now());
      return { chain: result.chain.map((c) => ({ code: c.code, domain: c.domain, description: c.description })), causes: result.causes };
    },
  );
}

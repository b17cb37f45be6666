import type { FastifyBaseLogger } from 'fastify';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { LEASED_WORK } from './leases.ts';
import type { VppCallRecord } from '../apple/vpp/client.ts';
import { VPP_ERROR_KINDS } from '../apple/vpp/errors.ts';
import { JOB_STATUSES } from '../core/jobs.ts';
import type { EventBus } from '../engine/events.ts';
import type { Pusher, PushSummary } from '../engine/push.ts';
import type { MdmHandler, MdmResponse } from '../mdm/service.ts';

/**
 * What haishin tells Prometheus (`GET /metrics`) and, for Apple calls and push batches, its log.
 * The observers wrap or listen to the parts they measure: the MDM service, the pusher, the Apps and
 * Books clients and the event bus know nothing about metrics. Every label has a bounded set of
 * values — no device, serial number, token or app id ever becomes a label.
 */
export interface Metrics {
  /** The Prometheus text exposition: this haishin's series, then the process's. */
  scrape(): Promise<{ contentType: string; body: string }>;
  /** Counts every check-in and command report by message type and outcome. */
  observeMdm(handler: MdmHandler): MdmHandler;
  /** Counts pushes by APNs outcome and logs one line per batch. */
  observePusher(pusher: Pusher): Pusher;
  /** For the Apps and Books clients (`onCall`): counts, times and logs each HTTP request. */
  vppCall(call: VppCallRecord): void;
  /** Counts job transitions and created jobs; returns the function that stops listening. */
  watch(events: EventBus): () => void;
}

export interface MetricsOptions {
  /** The server's logger (`app.log`). */
  log: FastifyBaseLogger;
  /** Commands owed to devices, read at each scrape. */
  queueDepth(): Promise<number>;
  /**
   * Failed jobs waiting for their background diagnosis and being diagnosed, read from the database
   * at each scrape (the queue is shared by every process, decision 0021).
   */
  diagnosisQueue?(): Promise<{ waiting: number; claimed: number }>;
  /** The timed work this process holds the lease of (src/app/leases.ts), read at each scrape. */
  leasesHeld?(): readonly string[];
  /**
   * The channel between the processes on PostgreSQL (decision 0020), read at each scrape; null
   * when there is none (SQLite).
   */
  eventsChannel?(): EventsChannelState | null;
}

/** What `/metrics` shows of the events relayed between processes (src/app/event-relay.ts). */
export interface EventsChannelState {
  connected: boolean;
  /** Payloads sent and received, and events dropped (the database did not take them), since start. */
  sent: number;
  received: number;
  dropped: number;
}

/** The message types Apple documents; anything else a device sends is counted as `other`. */
const MESSAGE_TYPES: ReadonlySet<string> = new Set([
  // check-in
  'Authenticate',
  'TokenUpdate',
  'CheckOut',
  'UserAuthenticate',
  'DeclarativeManagement',
  'GetBootstrapToken',
  'SetBootstrapToken',
  'GetToken',
  // command reports (Status)
  'Idle',
  'Acknowledged',
  'Error',
  'CommandFormatError',
  'NotNow',
]);

const PUSH_OUTCOMES: Record<keyof PushSummary, string> = {
  sent: 'sent',
  unregistered: 'unregistered',
  badToken: 'bad_token',
  certificateProblem: 'certificate_problem',
  failed: 'failed',
  notPushable: 'not_pushable',
};

/** What an MDM answer means for the device: 200 taken, 410 declined (UserAuthenticate), 400 refused. */
function mdmOutcome(response: MdmResponse): string {
  return response.status === 200 ? 'accepted' : response.status === 410 ? 'declined' : 'refused';
}

export function createMetrics(o: MetricsOptions): Metrics {
  const registry = new Registry();
  const mdmMessages = new Counter({
    name: 'haishin_mdm_messages_total',
    help: 'MDM check-ins (MessageType) and command reports (Status) received, by type and outcome (accepted, declined, refused, error)',
    labelNames: ['type', 'outcome'],
    registers: [registry],
  });
  const mdmDuration = new Histogram({
    name: 'haishin_mdm_request_duration_seconds',
    help: 'Time haishin took to answer an MDM request, by endpoint (checkin, connect)',
    labelNames: ['endpoint'],
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [registry],
  });
  const pushes = new Counter({
    name: 'haishin_pushes_total',
    help: 'Devices pushed, by APNs outcome (not_pushable: no push token yet, nothing sent)',
    labelNames: ['outcome'],
    registers: [registry],
  });
  const pushBatches = new Histogram({
    name: 'haishin_push_batch_duration_seconds',
    help: 'Time to push one batch of devices through APNs, outcomes recorded',
    buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
    registers: [registry],
  });
  const appleCalls = new Counter({
    name: 'haishin_apple_vpp_requests_total',
    help: 'HTTP requests to the Apps and Books API (retries included), by endpoint, HTTP status (none: no answer) and outcome (ok or the error kind)',
    labelNames: ['endpoint', 'status', 'outcome'],
    registers: [registry],
  });
  const appleDuration = new Histogram({
    name: 'haishin_apple_vpp_request_duration_seconds',
    help: 'Latency of Apps and Books API requests, by endpoint',
    labelNames: ['endpoint'],
    buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [registry],
  });
  const jobTransitions = new Counter({
    name: 'haishin_job_transitions_total',
    help: 'Job status changes, by the status entered',
    labelNames: ['status'],
    registers: [registry],
  });
  const jobsCreated = new Counter({
    name: 'haishin_jobs_created_total',
    help: 'Jobs created by distributions',
    registers: [registry],
  });
  new Gauge({
    name: 'haishin_mdm_queue_commands',
    help: 'Commands queued for devices and not answered yet (read from the database at each scrape)',
    registers: [registry],
    async collect() {
      try {
        this.set(await o.queueDepth());
      } catch (err) {
        // Unknown (NaN) rather than a failed scrape or a stale number: /api/ready reports the database.
        this.set(Number.NaN);
        o.log.warn({ err }, 'metrics: the queue depth could not be read');
      }
    },
  });
  if (o.diagnosisQueue) {
    const depth = o.diagnosisQueue;
    new Gauge({
      name: 'haishin_diagnosis_queue_jobs',
      help: 'Failed jobs in the diagnosis queue shared by every process: waiting for a claim (state="waiting") or being diagnosed (state="claimed"); read from the database at each scrape (decision 0021)',
      labelNames: ['state'],
      registers: [registry],
      async collect() {
        try {
          const now = await depth();
          this.set({ state: 'waiting' }, now.waiting);
          this.set({ state: 'claimed' }, now.claimed);
        } catch (err) {
          this.set({ state: 'waiting' }, Number.NaN);
          this.set({ state: 'claimed' }, Number.NaN);
          o.log.warn({ err }, 'metrics: the diagnosis queue could not be read');
        }
      },
    });
  }
  if (o.leasesHeld) {
    const held = o.leasesHeld;
    new Gauge({
      name: 'haishin_lease_held',
      help: 'Timed work this process does for all (1) or leaves to another process on the same database (0), by work (decision 0019)',
      labelNames: ['work'],
      registers: [registry],
      collect() {
        const mine = new Set(held());
        for (const work of LEASED_WORK) this.set({ work }, mine.has(work) ? 1 : 0);
      },
    });
  }
  if (o.eventsChannel) {
    const state = o.eventsChannel;
    new Gauge({
      name: 'haishin_events_channel_connected',
      help: "Whether this process listens to the other processes' events and wake-ups on PostgreSQL (LISTEN/NOTIFY, decision 0020); absent on SQLite",
      registers: [registry],
      collect() {
        const now = state();
        if (now) this.set(now.connected ? 1 : 0);
      },
    });
    // Totals kept by the relay, shown as counters: each scrape adds what grew since the last one.
    const seen = { sent: 0, received: 0, dropped: 0 };
    new Counter({
      name: 'haishin_events_channel_messages_total',
      help: 'NOTIFY payloads sent to and received from the other processes, and events dropped because the database did not take them (decision 0020)',
      labelNames: ['direction'],
      registers: [registry],
      collect() {
        const now = state();
        if (!now) return;
        for (const direction of ['sent', 'received', 'dropped'] as const) {
          if (now[direction] > seen[direction]) this.inc({ direction }, now[direction] - seen[direction]);
          seen[direction] = now[direction];
        }
      },
    });
  }
  // Series that exist from the start, so rate() and alerts see a 0 before the first event.
  for (const outcome of Object.values(PUSH_OUTCOMES)) pushes.inc({ outcome }, 0);
  for (const status of JOB_STATUSES) jobTransitions.inc({ status }, 0);
  for (const type of ['Authenticate', 'TokenUpdate', 'CheckOut', 'Idle', 'Acknowledged', 'Error', 'NotNow'])
    mdmMessages.inc({ type, outcome: 'accepted' }, 0);

  const knownErrorKinds: ReadonlySet<string> = new Set(VPP_ERROR_KINDS);
  // Started now, so the event-loop delay histogram covers the time before the first scrape.
  processRegistry();

  return {
    async scrape() {
      const own = await registry.metrics();
      const node = await processRegistry().metrics();
      return { contentType: registry.contentType, body: `${own}\n${node}` };
    },

    observeMdm(handler) {
      // Every check-in passes here: the labelled series are looked up once, not hashed per message.
      const durationOf = { checkin: mdmDuration.labels('checkin'), connect: mdmDuration.labels('connect') };
      const counted = new Map<string, { inc(): void }>();
      const count = (type: string, outcome: string) => {
        const key = `${type}\u0000${outcome}`;
        let series = counted.get(key);
        if (!series) counted.set(key, (series = mdmMessages.labels(type, outcome)));
        series.inc();
      };
      return {
        async handle(endpoint, body, signature) {
          const started = process.hrtime.bigint();
          try {
            const response = await handler.handle(endpoint, body, signature);
            count(messageTypeLabel(response.messageType), mdmOutcome(response));
            return response;
          } catch (err) {
            count('unknown', 'error');
            throw err;
          } finally {
            durationOf[endpoint].observe(Number(process.hrtime.bigint() - started) / 1e9);
          }
        },
      };
    },

    observePusher(pusher) {
      return {
        async push(deviceIds) {
          const started = performance.now();
          const summary = await pusher.push(deviceIds);
          const seconds = (performance.now() - started) / 1000;
          pushBatches.observe(seconds);
          for (const [key, outcome] of Object.entries(PUSH_OUTCOMES) as [keyof PushSummary, string][]) {
            if (summary[key] > 0) pushes.inc({ outcome }, summary[key]);
          }
          o.log.info({ devices: deviceIds.length, ...summary, ms: Math.round(seconds * 1000) }, 'push batch');
          return summary;
        },
      };
    },

    vppCall(call) {
      const outcome = call.error
        ? knownErrorKinds.has(call.error.kind)
          ? call.error.kind
          : 'unknown'
        : 'ok';
      appleCalls.inc({
        endpoint: call.endpoint,
        status: call.status === 0 ? 'none' : String(call.status),
        outcome,
      });
      appleDuration.observe({ endpoint: call.endpoint }, call.durationMs / 1000);
      // Endpoint, status, time and Apple's error number: never the token, the query or a body.
      const line = {
        endpoint: call.endpoint,
        status: call.status,
        ms: Math.round(call.durationMs),
        attempt: call.attempt,
        ...(call.error ? { errorKind: call.error.kind, errorNumber: call.error.errorNumber } : {}),
      };
      if (call.error) o.log.info(line, 'Apps and Books call failed');
      else o.log.debug(line, 'Apps and Books call');
    },

    watch(events) {
      return events.subscribe(
        (event) => {
          if (event.type === 'job') jobTransitions.inc({ status: event.to });
          else if (event.type === 'distribution' && event.change === 'created')
            jobsCreated.inc(event.jobCount);
          // This process's work only: another process counts its own (decision 0020).
        },
        { only: 'here' },
      );
    },
  };
}

function messageTypeLabel(type: string | null | undefined): string {
  if (type === null || type === undefined) return 'unknown';
  return MESSAGE_TYPES.has(type) ? type : 'other';
}

let processMetrics: Registry | null = null;

/**
 * Node's own metrics (event-loop lag, heap, GC, CPU, open handles): one collector per process,
 * shared by every haishin in it — tests start several servers in one process, and each collector
 * keeps an event-loop monitor and a GC observer for the life of the process.
 */
function processRegistry(): Registry {
  if (!processMetrics) {
    processMetrics = new Registry();
    collectDefaultMetrics({ register: processMetrics });
  }
  return processMetrics;
}

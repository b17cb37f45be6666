import { Type } from 'typebox';
import type { EventBus, HaishinEvent } from '../../engine/events.ts';
import type { AdminApp, AdminContext } from '../admin.ts';
import { scopeOf } from '../authz.ts';
import type { Scope } from '../authz.ts';
import type { Store } from '../../store/store.ts';

/** How long a scoped stream trusts a device's or distribution's group it looked up. */
const PLACE_TTL_MS = 10_000;
/** Places one stream remembers: a distribution's thousands of job events need one look-up per device. */
const PLACE_CACHE_MAX = 10_000;

/**
 * Whether a subtree's administrator may see an event (decision 0029): a job or device event by the
 * device's group, a distribution event by the distribution's group. Looked up for such streams
 * only, and remembered briefly (a device moved away stops showing within PLACE_TTL_MS); a
 * whole-tree stream sees everything without a look-up.
 */
function eventScope(store: Store, scope: Scope) {
  const places = new Map<string, { groupId: string | null; until: number }>();
  const placeOf = async (key: string, look: () => Promise<string | null>) => {
    const now = Date.now();
    const known = places.get(key);
    if (known && known.until > now) return known.groupId;
    const groupId = await look();
    if (places.size >= PLACE_CACHE_MAX) places.clear();
    places.set(key, { groupId, until: now + PLACE_TTL_MS });
    return groupId;
  };
  return async (event: HaishinEvent): Promise<boolean> => {
    if (scope.all) return true;
    if (event.type === 'distribution') {
      const id = event.distributionId;
      return scope.has(
        await placeOf(`d:${id}`, async () => (await store.jobs.getDistribution(id))?.group_id ?? null),
      );
    }
    const id = event.deviceId;
    return scope.has(await placeOf(`v:${id}`, async () => (await store.devices.get(id))?.group_id ?? null));
  };
}

/** Proxies and load balancers close a silent connection; a comment line every 15 s keeps it open. */
export const KEEP_ALIVE_MS = 15_000;
/** Events held for one slow client before newer ones are dropped (and the client told so). */
export const MAX_BUFFERED_EVENTS = 1000;

/** The part of a Node response an event stream writes to. */
export interface SseSink {
  write(chunk: string): boolean;
  on(event: 'drain', listener: () => void): unknown;
}

/**
 * One client's stream with a bounded buffer. While the socket pushes back, events queue up to
 * `maxBuffered`; past that they are dropped and counted, and once the socket drains the client
 * gets a `dropped` event: its picture is incomplete and it should read the state again over REST.
 */
export class SseStream {
  readonly #sink: SseSink;
  readonly #maxBuffered: number;
  #queue: string[] = [];
  #blocked = false;
  #dropped = 0;
  #firstDroppedId: number | null = null;

  constructor(sink: SseSink, maxBuffered = MAX_BUFFERED_EVENTS) {
    this.#sink = sink;
    this.#maxBuffered = maxBuffered;
    sink.on('drain', () => this.#drain());
  }

  get dropped(): number {
    return this.#dropped;
  }

  get buffered(): number {
    return this.#queue.length;
  }

  send(event: string, data: unknown, id?: number): void {
    const chunk = `${id === undefined ? '' : `id: ${id}\n`}event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
    if (!this.#blocked) {
      this.#write(chunk);
      return;
    }
    if (this.#queue.length < this.#maxBuffered) {
      this.#queue.push(chunk);
      return;
    }
    if (this.#dropped === 0) this.#firstDroppedId = id ?? null;
    this.#dropped++;
  }

  /** A comment line: nothing for the client to handle, only traffic. Skipped while blocked. */
  comment(text: string): void {
    if (!this.#blocked) this.#write(`: ${text}\n\n`);
  }

  raw(text: string): void {
    if (!this.#blocked) this.#write(text);
  }

  #write(chunk: string): void {
    if (!this.#sink.write(chunk)) this.#blocked = true;
  }

  #drain(): void {
    this.#blocked = false;
    while (this.#queue.length > 0 && !this.#blocked) this.#write(this.#queue.shift()!);
    if (this.#blocked || this.#dropped === 0) return;
    const dropped = { count: this.#dropped, firstDroppedId: this.#firstDroppedId };
    this.#dropped = 0;
    this.#firstDroppedId = null;
    this.send('dropped', dropped);
  }
}

function matches(
  event: HaishinEvent,
  filter: { distributionId?: string | undefined; deviceId?: string | undefined },
): boolean {
  if (filter.distributionId !== undefined) {
    if (event.type === 'device' || event.distributionId !== filter.distributionId) return false;
  }
  if (filter.deviceId !== undefined) {
    if (event.type === 'distribution' || event.deviceId !== filter.deviceId) return false;
  }
  return true;
}

/**
 * `GET /events`: server-sent events — `job` (every persisted status change), `distribution`
 * (created) and `device` (enrolled, checked out, deactivated, …). Admin auth applies as on every
 * /api/v1 route. With several processes on one PostgreSQL the events of every process come through
 * (relayed over LISTEN/NOTIFY, decision 0020). Events are not replayed: after a reconnect or a
 * `dropped` event, read the state again over REST. `dropped` says how many events this stream
 * lost (`count`), or `count: null` when the events of other processes may have been missed (the
 * relay's connection to PostgreSQL broke and came back).
 */
export async function registerEventRoutes(
  app: AdminApp,
  ctx: AdminContext,
  bus: EventBus,
  o: { keepAliveMs?: number; maxBuffered?: number } = {},
): Promise<void> {
  const closers = new Set<() => void>();
  let nextId = 1;
  // Open streams never end by themselves: without this, closing the server would wait for every client.
  app.addHook('preClose', async () => {
    for (const close of [...closers]) close();
  });

  app.get(
    '/events',
    {
      config: { authz: { permission: 'read', filtered: true } },
      schema: {
        tags: ['events'],
        summary:
          'Server-sent events of job and device changes (text/event-stream); keep-alive comment every 15 s',
        querystring: Type.Object({
          distributionId: Type.Optional(Type.String({ minLength: 1 })),
          deviceId: Type.Optional(Type.String({ minLength: 1 })),
        }),
      },
    },
    (req, reply) => {
      const filter = { distributionId: req.query.distributionId, deviceId: req.query.deviceId };
      reply.hijack();
      const res = reply.raw;
      res.writeHead(200, {
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-cache, no-transform',
        connection: 'keep-alive',
        // nginx buffers responses unless told not to; an event stream must flow as it is written.
        'x-accel-buffering': 'no',
      });
      const stream = new SseStream(res, o.maxBuffered ?? MAX_BUFFERED_EVENTS);
      stream.raw('retry: 5000\n\n');
      stream.send('ready', {
        filter: { distributionId: filter.distributionId ?? null, deviceId: filter.deviceId ?? null },
      });
      const scope = scopeOf(req);
      const visibleIn = eventScope(ctx.store, scope);
      // Events are checked one after another, so a scoped stream keeps their order.
      let checked: Promise<void> = Promise.resolve();
      const unsubscribe = bus.subscribe((event) => {
        if (!matches(event, filter)) return;
        if (scope.all) {
          stream.send(event.type, event, nextId++);
          return;
        }
        checked = checked
          .then(async () => {
            if (!closed && (await visibleIn(event))) stream.send(event.type, event, nextId++);
          })
          .catch((err: unknown) => req.log.warn({ err }, 'event scope look-up failed; event not sent'));
      });
      const offGap = bus.onGap(() => stream.send('dropped', { count: null, firstDroppedId: null }));
      const keepAlive = setInterval(() => stream.comment('keep-alive'), o.keepAliveMs ?? KEEP_ALIVE_MS);
      keepAlive.unref();
      let closed = false;
      const close = () => {
        if (closed) return;
        closed = true;
        unsubscribe();
        offGap();
        clearInterval(keepAlive);
        closers.delete(close);
        if (!res.writableEnded) res.end();
      };
      closers.add(close);
      res.on('close', close);
      req.raw.on('close', close);
    },
  );
}

import http2 from 'node:http2';
import type { ClientHttp2Session, ClientHttp2Stream } from 'node:http2';
import { rootCertificates } from 'node:tls';
import type { Clock } from '../../core/clock.ts';
import type { PushIdentity } from './pushcert.ts';

export interface PushTarget {
  deviceId: string;
  /** The device's push token: raw bytes, or hex as stored. */
  token: Uint8Array | string;
  pushMagic: string;
}

export type PushOutcome =
  | { kind: 'sent'; apnsId: string; status: 200 }
  /** The device left management (or the app was removed): evidence for `device.unenrolled`. */
  | { kind: 'unregistered'; status: 410; timestamp: Date | null; reason: 'Unregistered' }
  /** BadDeviceToken, DeviceTokenNotForTopic and every other 400: retrying the same push cannot help. */
  | { kind: 'bad_token'; status: 400; reason: string }
  /** Server-wide alert: the push certificate is refused, so every push will fail until it is replaced. */
  | { kind: 'certificate_problem'; status: 403; reason: string }
  /** Retries ran out (429, 5xx, network) or APNs answered something no retry can fix. */
  | { kind: 'failed'; status: number | null; reason: string; attempts: number };

export interface PushResult {
  deviceId: string;
  at: Date;
  outcome: PushOutcome;
}

export interface Apns {
  push(target: PushTarget): Promise<PushResult>;
  /** Results arrive in completion order; resolves once every target has one. */
  pushMany(targets: Iterable<PushTarget>, onResult: (result: PushResult) => void): Promise<void>;
  close(): Promise<void>;
}

export interface RetryPolicy {
  /** Tries in total, the first included. */
  attempts: number;
  baseMs: number;
  capMs: number;
}

export interface ApnsClientOptions {
  /** HAISHIN_APNS_URL. */
  url?: string;
  identity: PushIdentity;
  /** HAISHIN_APNS_CA: a PEM CA trusted in addition to the system roots. */
  ca?: string;
  clock: Clock;
  /** Streams in flight at once; never more than the server's SETTINGS_MAX_CONCURRENT_STREAMS. */
  maxInFlight?: number;
  /** Pushes accepted but unfinished before pushMany stops pulling targets. */
  maxQueued?: number;
  retry?: RetryPolicy;
  connectTimeoutMs?: number;
  requestTimeoutMs?: number;
  /** Waits between retries; tests pass a faster one. */
  sleep?: (ms: number) => Promise<void>;
  /** In [0, 1): the jitter source. */
  random?: () => number;
}

export interface ApnsClientStats {
  /** Pushes APNs accepted (200). */
  pushesSent: number;
  /** HTTP/2 requests written, retries included. */
  requests: number;
  /** Requests repeated after 429/5xx/network trouble. */
  retries: number;
  /** Requests resent because the connection went away before the server processed them. */
  rerouted: number;
  sessionsOpened: number;
  goaways: number;
  inFlight: number;
  maxConcurrentStreams: number;
  /** Pushes accepted by push()/pushMany() and not finished. */
  pending: number;
  maxPending: number;
  /** What the current connection's server allows, once known. */
  peerMaxConcurrentStreams: number | null;
}

export type ApnsCheck =
  { ok: true } | { ok: false; kind: 'untrusted_server' | 'certificate_refused' | 'network'; reason: string };

/** Node's codes for a server certificate that does not verify against the trusted CAs. */
const UNTRUSTED_SERVER =
  /^(UNABLE_TO_VERIFY_LEAF_SIGNATURE|SELF_SIGNED_CERT_IN_CHAIN|DEPTH_ZERO_SELF_SIGNED_CERT|UNABLE_TO_GET_ISSUER_CERT(_LOCALLY)?|CERT_UNTRUSTED|CERT_SIGNATURE_FAILURE|ERR_TLS_CERT_ALTNAME_INVALID)$/;

export const DEFAULT_APNS_URL = 'https://api.push.apple.com';
const DEFAULT_RETRY: RetryPolicy = { attempts: 5, baseMs: 250, capMs: 15_000 };
/** A GOAWAY storm must not loop forever: past this many resends a push counts as failed. */
const MAX_REROUTES = 10;

type Attempt =
  | { kind: 'response'; status: number; apnsId: string | null; body: string }
  /** The server never processed it (refused stream, GOAWAY, session already closing): resend at once. */
  | { kind: 'unprocessed'; reason: string }
  | { kind: 'network'; reason: string; certificate: boolean; closedAtHandshake: boolean };

interface Connection {
  session: ClientHttp2Session;
  ready: Promise<ClientHttp2Session>;
  usable: boolean;
  lastError: Error | null;
  goawayLastStreamId: number | null;
}

/**
 * The MDM push sender: one HTTP/2 connection to APNs with the push certificate as TLS client
 * certificate, hundreds of streams in flight on it, reconnecting when APNs sends GOAWAY or the
 * connection breaks. Every push ends in exactly one {@link PushOutcome}; push() never rejects.
 */
export class ApnsClient implements Apns {
  readonly #url: string;
  #identity: PushIdentity;
  readonly #ca: string[] | undefined;
  readonly #clock: Clock;
  readonly #maxInFlight: number;
  readonly #maxQueued: number;
  readonly #retry: RetryPolicy;
  readonly #connectTimeoutMs: number;
  readonly #requestTimeoutMs: number;
  readonly #sleepFn: ((ms: number) => Promise<void>) | null;
  readonly #random: () => number;

  #connection: Connection | null = null;
  readonly #connections = new Set<Connection>();
  #peerMax: number | null = null;
  /** Stream slots taken (a slot is held from just before the request until its answer). */
  #inFlight = 0;
  /** HTTP/2 streams open right now, across connections. */
  #streams = 0;
  /** FIFO of pushes waiting for a stream slot; `#waitHead` avoids O(n) shifts. */
  #waiters: Array<() => void> = [];
  #waitHead = 0;
  readonly #pumps = new Set<() => void>();
  readonly #sleeps = new Set<{ timer: ReturnType<typeof setTimeout>; resolve: () => void }>();
  #closed = false;
  readonly #stats = {
    pushesSent: 0,
    requests: 0,
    retries: 0,
    rerouted: 0,
    sessionsOpened: 0,
    goaways: 0,
    maxConcurrentStreams: 0,
    pending: 0,
    maxPending: 0,
  };

  constructor(options: ApnsClientOptions) {
    this.#url = options.url ?? DEFAULT_APNS_URL;
    this.#identity = options.identity;
    // Node's `ca` replaces the default trust store; "extra CA" means the roots plus this one.
    this.#ca = options.ca ? [...rootCertificates, options.ca] : undefined;
    this.#clock = options.clock;
    this.#maxInFlight = Math.max(1, options.maxInFlight ?? 500);
    this.#maxQueued = Math.max(1, options.maxQueued ?? this.#maxInFlight * 2);
    this.#retry = options.retry ?? DEFAULT_RETRY;
    this.#connectTimeoutMs = options.connectTimeoutMs ?? 10_000;
    this.#requestTimeoutMs = options.requestTimeoutMs ?? 30_000;
    this.#sleepFn = options.sleep ?? null;
    this.#random = options.random ?? Math.random;
  }

  get topic(): string {
    return this.#identity.topic;
  }

  /**
   * Pushes from now on with another push certificate (a renewed one, decision 0022): the current
   * connection is told to close once its streams are answered, and the next push opens a new one
   * with the new identity. Nothing in flight is lost.
   */
  setIdentity(identity: PushIdentity): void {
    this.#identity = identity;
    const old = this.#connection;
    this.#connection = null;
    if (old) {
      old.usable = false;
      if (!old.session.destroyed && !old.session.closed) old.session.close();
    }
  }

  stats(): ApnsClientStats {
    return { ...this.#stats, inFlight: this.#streams, peerMaxConcurrentStreams: this.#peerMax };
  }

  async push(target: PushTarget): Promise<PushResult> {
    // Counted before the first await so pushMany sees the bound immediately.
    this.#stats.pending++;
    if (this.#stats.pending > this.#stats.maxPending) this.#stats.maxPending = this.#stats.pending;
    try {
      let outcome: PushOutcome;
      try {
        outcome = await this.#deliver(target);
      } catch (err) {
        // push() promises an outcome, not an exception: a bug below must not lose the device's result.
        outcome = {
          kind: 'failed',
          status: null,
          reason: `internal error: ${(err as Error).message}`,
          attempts: 0,
        };
      }
      return { deviceId: target.deviceId, at: this.#clock.now(), outcome };
    } finally {
      this.#stats.pending--;
      for (const pump of this.#pumps) pump();
    }
  }

  async pushMany(targets: Iterable<PushTarget>, onResult: (result: PushResult) => void): Promise<void> {
    const iterator = targets[Symbol.iterator]();
    let running = 0;
    let exhausted = false;
    let failure: { error: unknown } | null = null;
    await new Promise<void>((resolve, reject) => {
      const finish = () => {
        if (running > 0 || (!exhausted && failure === null)) return;
        this.#pumps.delete(pump);
        if (failure) reject(failure.error);
        else resolve();
      };
      const pump = () => {
        // Pull only while the client-wide backlog is under the bound: this is the back-pressure.
        while (!exhausted && failure === null && this.#stats.pending < this.#maxQueued) {
          let next: IteratorResult<PushTarget>;
          try {
            next = iterator.next();
          } catch (error) {
            failure = { error };
            break;
          }
          if (next.done) {
            exhausted = true;
            break;
          }
          running++;
          void this.push(next.value).then((result) => {
            running--;
            if (failure === null) {
              try {
                onResult(result);
              } catch (error) {
                failure = { error };
                try {
                  iterator.return?.();
                } catch {
                  // The caller's error is the one to report, not the generator's clean-up failure.
                }
              }
            }
            finish();
          });
        }
        finish();
      };
      this.#pumps.add(pump);
      pump();
    });
  }

  /**
   * Opens the connection without pushing, so a server can say at start what is wrong:
   * `untrusted_server` (the APNs host's certificate does not chain to the trusted CAs),
   * `certificate_refused` (APNs refused our client certificate), or `network` (anything else,
   * often passing: a retry may succeed).
   */
  async check(): Promise<ApnsCheck> {
    try {
      await this.#connect().ready;
      return { ok: true };
    } catch (err) {
      const error = err as Error & { code?: string };
      const reason = describe(error);
      if (UNTRUSTED_SERVER.test(error.code ?? '')) return { ok: false, kind: 'untrusted_server', reason };
      if (isCertificateRefusal(error) || isClosedAtHandshake(error))
        return { ok: false, kind: 'certificate_refused', reason };
      return { ok: false, kind: 'network', reason };
    }
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const sleep of this.#sleeps) {
      clearTimeout(sleep.timer);
      sleep.resolve();
    }
    this.#sleeps.clear();
    // Waiting pushes wake up, see the client closed and answer `failed`.
    this.#drain();
    const closing = [...this.#connections].map(
      (connection) =>
        new Promise<void>((resolve) => {
          const { session } = connection;
          if (session.destroyed) return resolve();
          // Answers already on the wire are let through; a stuck server does not hold close() forever.
          const timer = setTimeout(() => session.destroy(), 5_000);
          // Listening to 'close' rather than close(cb): a session already closing ignores the callback.
          session.once('close', () => {
            clearTimeout(timer);
            resolve();
          });
          session.close();
        }),
    );
    this.#connection = null;
    await Promise.all(closing);
  }

  async #deliver(target: PushTarget): Promise<PushOutcome> {
    const tokenHex = tokenToHex(target.token);
    if (tokenHex === null) {
      // Not hex: sending it would put arbitrary text in the request path.
      return { kind: 'bad_token', status: 400, reason: 'BadDeviceToken' };
    }
    const path = `/3/device/${tokenHex}`;
    const body = JSON.stringify({ mdm: target.pushMagic });
    let attempts = 0;
    let reroutes = 0;
    let everyTryClosedAtHandshake = true;
    for (;;) {
      if (this.#closed) return closedOutcome(attempts);
      // Connected first, so stream slots are taken knowing the server's concurrency limit.
      let attempt = await this.#connected();
      if (attempt === null) {
        await this.#acquire();
        try {
          attempt = this.#closed ? null : await this.#attempt(path, body);
        } finally {
          this.#release();
        }
        if (attempt === null) return closedOutcome(attempts);
      }
      if (attempt.kind === 'unprocessed') {
        this.#stats.rerouted++;
        if (++reroutes <= MAX_REROUTES) continue;
        return {
          kind: 'failed',
          status: null,
          reason: `connection kept going away: ${attempt.reason}`,
          attempts,
        };
      }
      attempts++;
      if (attempt.kind === 'network') {
        if (attempt.certificate) return { kind: 'certificate_problem', status: 403, reason: attempt.reason };
        everyTryClosedAtHandshake &&= attempt.closedAtHandshake;
        if (attempts >= this.#retry.attempts) {
          if (everyTryClosedAtHandshake) {
            // APNs refuses a revoked or unknown certificate by ending the TLS session; when every
            // try ends that way, the certificate is the likely cause and the alert must say so.
            return {
              kind: 'certificate_problem',
              status: 403,
              reason: `${attempt.reason}; APNs ends the connection like this when it refuses the push certificate (expired, revoked, or not an MDM push certificate)`,
            };
          }
          return { kind: 'failed', status: null, reason: attempt.reason, attempts };
        }
      } else {
        everyTryClosedAtHandshake = false;
        const outcome = classify(attempt, attempts);
        if (outcome !== 'retry') {
          if (outcome.kind === 'sent') this.#stats.pushesSent++;
          return outcome;
        }
        if (attempts >= this.#retry.attempts) {
          return {
            kind: 'failed',
            status: attempt.status,
            reason: reasonOf(attempt.body) ?? `HTTP ${attempt.status}`,
            attempts,
          };
        }
      }
      this.#stats.retries++;
      await this.#sleep(this.#backoff(attempts));
    }
  }

  /** null once a connection is ready; otherwise the failed try. */
  async #connected(): Promise<Attempt | null> {
    try {
      await this.#connect().ready;
      return null;
    } catch (err) {
      return this.#connectFailure(err as Error);
    }
  }

  #connectFailure(error: Error & { code?: string }): Attempt {
    return {
      kind: 'network',
      reason: `cannot connect to ${this.#url}: ${describe(error)}`,
      certificate: isCertificateRefusal(error),
      closedAtHandshake: isClosedAtHandshake(error),
    };
  }

  /** Full jitter over an exponential ceiling, so a fleet of retries does not arrive in step. */
  #backoff(attempts: number): number {
    const ceiling = Math.min(this.#retry.capMs, this.#retry.baseMs * 2 ** (attempts - 1));
    return Math.round(ceiling / 2 + (this.#random() * ceiling) / 2);
  }

  async #attempt(path: string, body: string): Promise<Attempt> {
    let session: ClientHttp2Session;
    const connection = this.#connect();
    try {
      // Usually settled already; a new connection is awaited when the last one just went away.
      session = await connection.ready;
    } catch (err) {
      return this.#connectFailure(err as Error);
    }
    if (session.closed || session.destroyed || !connection.usable) {
      return { kind: 'unprocessed', reason: 'session closing' };
    }
    let stream: ClientHttp2Stream;
    try {
      stream = session.request(
        {
          ':method': 'POST',
          ':path': path,
          'apns-push-type': 'mdm',
          'apns-topic': this.#identity.topic,
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(body),
        },
        { endStream: false },
      );
    } catch (err) {
      // Thrown when a GOAWAY arrived between the check above and now; nothing was sent.
      connection.usable = false;
      return { kind: 'unprocessed', reason: describe(err as Error) };
    }
    this.#stats.requests++;
    this.#streams++;
    if (this.#streams > this.#stats.maxConcurrentStreams) this.#stats.maxConcurrentStreams = this.#streams;
    return new Promise<Attempt>((resolve) => {
      let status = 0;
      let apnsId: string | null = null;
      const chunks: Buffer[] = [];
      let timedOut = false;
      const timer = setTimeout(() => {
        timedOut = true;
        stream.close(http2.constants.NGHTTP2_CANCEL);
      }, this.#requestTimeoutMs);
      stream.on('response', (headers) => {
        status = Number(headers[':status'] ?? 0);
        const id = headers['apns-id'];
        apnsId = typeof id === 'string' ? id : null;
      });
      stream.on('data', (chunk: Buffer) => chunks.push(chunk));
      // The close handler decides; an 'error' listener only keeps the error from being thrown.
      stream.on('error', () => {});
      stream.on('close', () => {
        clearTimeout(timer);
        this.#streams--;
        if (status !== 0) {
          resolve({ kind: 'response', status, apnsId, body: Buffer.concat(chunks).toString('utf8') });
        } else if (stream.rstCode === http2.constants.NGHTTP2_REFUSED_STREAM) {
          resolve({ kind: 'unprocessed', reason: 'stream refused' });
        } else if (
          stream.id === undefined ||
          (connection.goawayLastStreamId !== null && stream.id > connection.goawayLastStreamId)
        ) {
          // HTTP/2 promises that streams above a GOAWAY's last id (or never sent) were not processed.
          resolve({ kind: 'unprocessed', reason: 'stream not processed before GOAWAY' });
        } else if (timedOut) {
          resolve({
            kind: 'network',
            reason: `no answer within ${this.#requestTimeoutMs} ms`,
            certificate: false,
            closedAtHandshake: false,
          });
        } else {
          const error = connection.lastError;
          resolve({
            kind: 'network',
            reason: error
              ? describe(error)
              : `stream closed without an answer (HTTP/2 code ${stream.rstCode})`,
            certificate: error !== null && isCertificateRefusal(error),
            closedAtHandshake: false,
          });
        }
      });
      stream.end(body);
    });
  }

  #connect(): Connection {
    if (this.#connection && this.#connection.usable) return this.#connection;
    this.#stats.sessionsOpened++;
    const session = http2.connect(this.#url, {
      cert: this.#identity.certPem,
      key: this.#identity.keyPem,
      ...(this.#ca ? { ca: this.#ca } : {}),
      settings: { enablePush: false },
      // Until the server's SETTINGS arrive, stay modest; our own limit applies on top.
      peerMaxConcurrentStreams: 100,
      maxSessionMemory: 64,
    });
    let markReady!: (session: ClientHttp2Session) => void;
    let fail!: (error: Error) => void;
    const connection: Connection = {
      session,
      usable: true,
      lastError: null,
      goawayLastStreamId: null,
      ready: new Promise<ClientHttp2Session>((resolve, reject) => {
        markReady = resolve;
        fail = reject;
      }),
    };
    // Waiters handle the rejection; this keeps an unobserved one from crashing the process.
    connection.ready.catch(() => {});
    this.#connection = connection;
    this.#connections.add(connection);
    const retire = () => {
      connection.usable = false;
      if (this.#connection === connection) this.#connection = null;
    };
    const timer = setTimeout(() => {
      const error = new Error(`no HTTP/2 settings from ${this.#url} within ${this.#connectTimeoutMs} ms`);
      connection.lastError = error;
      fail(error);
      retire();
      session.destroy();
    }, this.#connectTimeoutMs);
    session.on('remoteSettings', (settings) => {
      if (this.#connection === connection) {
        this.#peerMax = settings.maxConcurrentStreams ?? null;
        this.#drain();
      }
      clearTimeout(timer);
      markReady(session);
    });
    session.on('goaway', (_code, lastStreamId) => {
      connection.goawayLastStreamId = Math.min(connection.goawayLastStreamId ?? lastStreamId, lastStreamId);
      // A graceful close can repeat the GOAWAY; count connections told to go, not frames.
      if (connection.usable) this.#stats.goaways++;
      retire();
    });
    let secure = false;
    let ready = false;
    session.once('connect', () => (secure = true));
    session.once('remoteSettings', () => (ready = true));
    session.on('error', (error: Error & { code?: string }) => {
      // TLS 1.3 refuses a client certificate after the client's handshake is done; when our first
      // HTTP/2 bytes are still unread on the server as it closes, the kernel answers with a reset
      // that can overtake the alert. Reset between handshake and SETTINGS means the same refusal.
      connection.lastError =
        secure && !ready && (error.code === 'ECONNRESET' || error.code === 'EPIPE')
          ? Object.assign(
              new Error(`the server reset the connection right after the TLS handshake (${error.code})`),
              {
                code: CLOSED_AT_HANDSHAKE,
              },
            )
          : error;
      retire();
    });
    session.on('close', () => {
      clearTimeout(timer);
      retire();
      this.#connections.delete(connection);
      if (!ready && connection.lastError === null && secure) {
        connection.lastError = Object.assign(
          new Error('the server closed the connection right after the TLS handshake'),
          {
            code: CLOSED_AT_HANDSHAKE,
          },
        );
      }
      fail(connection.lastError ?? new Error('connection closed before it was ready'));
    });
    return connection;
  }

  #limit(): number {
    return Math.max(1, Math.min(this.#maxInFlight, this.#peerMax ?? this.#maxInFlight));
  }

  #acquire(): Promise<void> {
    if (this.#closed || (this.#inFlight < this.#limit() && this.#waitHead === this.#waiters.length)) {
      this.#take();
      return Promise.resolve();
    }
    return new Promise<void>((resolve) => this.#waiters.push(resolve));
  }

  #take(): void {
    this.#inFlight++;
  }

  #release(): void {
    this.#inFlight--;
    this.#drain();
  }

  #drain(): void {
    while (this.#waitHead < this.#waiters.length && (this.#closed || this.#inFlight < this.#limit())) {
      const wake = this.#waiters[this.#waitHead]!;
      this.#waiters[this.#waitHead++] = noop;
      this.#take();
      wake();
    }
    if (this.#waitHead > 1024 && this.#waitHead * 2 > this.#waiters.length) {
      this.#waiters = this.#waiters.slice(this.#waitHead);
      this.#waitHead = 0;
    }
  }

  #sleep(ms: number): Promise<void> {
    if (this.#sleepFn) return this.#sleepFn(ms);
    return new Promise<void>((resolve) => {
      const entry = {
        resolve,
        timer: setTimeout(() => {
          this.#sleeps.delete(entry);
          resolve();
        }, ms),
      };
      this.#sleeps.add(entry);
    });
  }
}

function noop(): void {}

function classify(attempt: Extract<Attempt, { kind: 'response' }>, attempts: number): PushOutcome | 'retry' {
  const { status } = attempt;
  if (status === 200) return { kind: 'sent', apnsId: attempt.apnsId ?? '', status: 200 };
  if (status === 429 || status >= 500) return 'retry';
  const reason = reasonOf(attempt.body) ?? `HTTP ${status}`;
  if (status === 410)
    return {
      kind: 'unregistered',
      status: 410,
      timestamp: timestampOf(attempt.body),
      reason: 'Unregistered',
    };
  if (status === 400) return { kind: 'bad_token', status: 400, reason };
  if (status === 403) return { kind: 'certificate_problem', status: 403, reason };
  // 404 BadPath, 405, 413: a bug or a wrong URL, which no retry fixes.
  return { kind: 'failed', status, reason, attempts };
}

function parseBody(body: string): Record<string, unknown> | null {
  if (body === '') return null;
  try {
    const parsed: unknown = JSON.parse(body);
    return typeof parsed === 'object' && parsed !== null ? (parsed as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

function reasonOf(body: string): string | null {
  const reason = parseBody(body)?.reason;
  return typeof reason === 'string' ? reason : null;
}

/** Apple sends milliseconds since the epoch; anything else is treated as absent. */
function timestampOf(body: string): Date | null {
  const timestamp = parseBody(body)?.timestamp;
  const ms = typeof timestamp === 'string' ? Number(timestamp) : timestamp;
  if (typeof ms !== 'number' || !Number.isFinite(ms) || ms <= 0) return null;
  return new Date(ms);
}

/** Lowercase hex, or null when the string form is not hex bytes. */
export function tokenToHex(token: Uint8Array | string): string | null {
  if (typeof token !== 'string')
    return Buffer.from(token.buffer, token.byteOffset, token.byteLength).toString('hex');
  if (token.length === 0 || token.length % 2 !== 0 || !/^[0-9a-fA-F]+$/.test(token)) return null;
  return token.toLowerCase();
}

function closedOutcome(attempts: number): PushOutcome {
  return { kind: 'failed', status: null, reason: 'the APNs client was closed', attempts };
}

const CLOSED_AT_HANDSHAKE = 'APNS_CLOSED_AT_HANDSHAKE';

/** TLS 1.3 reports a refused client certificate after the handshake; TLS 1.2 as a reset during it. */
function isClosedAtHandshake(error: Error & { code?: string }): boolean {
  return (
    error.code === CLOSED_AT_HANDSHAKE || /before secure TLS connection was established/.test(error.message)
  );
}

function describe(error: Error & { code?: string }): string {
  return error.code ? `${error.code}: ${error.message}` : error.message;
}

/** TLS alerts that mean "your client certificate is refused": no retry helps, the certificate must change. */
function isCertificateRefusal(error: Error & { code?: string }): boolean {
  const code = error.code ?? '';
  return /ALERT_(BAD_CERTIFICATE|CERTIFICATE_EXPIRED|CERTIFICATE_REVOKED|CERTIFICATE_UNKNOWN|UNKNOWN_CA|CERTIFICATE_REQUIRED|UNSUPPORTED_CERTIFICATE|ACCESS_DENIED)/.test(
    code,
  );
}

import { generateKeyPairSync, randomBytes, randomUUID } from 'node:crypto';
import http2 from 'node:http2';
import type { Http2SecureServer, Http2Session, IncomingHttpHeaders, ServerHttp2Stream } from 'node:http2';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import forge from 'node-forge';
import type { Clock } from '../../core/clock.ts';
import { systemClock } from '../../core/clock.ts';

/** An answer forced on requests, named with Apple's reason strings (`Unregistered`, `TooManyRequests`, …). */
export interface InjectedFailure {
  status: number;
  reason: string;
  /** For 410: when APNs learnt the token stopped being valid, ms since the epoch. Defaults to the fake's clock. */
  timestamp?: number;
}

export interface FakeApnsOptions {
  /** PEM push certificates (self-signed demo ones or any leaf) whose holders may push. */
  accept: string[];
  /** SETTINGS_MAX_CONCURRENT_STREAMS announced to clients. Apple announces about a thousand. */
  maxConcurrentStreams?: number;
  /**
   * true: an unknown or expired client certificate fails the TLS handshake, as the real APNs does.
   * false (default): the handshake completes and every request answers 403, which tests can read.
   */
  rejectAtTls?: boolean;
  /** Wakes the simulated device that owns the token; called at most once per token per turn of the event loop. */
  onPush?: (tokenHex: string, pushMagic: string) => void;
  clock?: Clock;
  /** How many recent requests {@link FakeApns.recent} keeps. */
  keepRecent?: number;
}

export interface SeenRequest {
  method: string;
  path: string;
  headers: Record<string, string>;
  body: string;
  status: number;
  reason: string | null;
  session: number;
  /** SHA-256 fingerprint of the client (push) certificate of the connection. */
  certificate: string | null;
}

export interface FakeApnsStats {
  requests: number;
  accepted: number;
  sessions: number;
  maxConcurrentStreams: number;
  /** Streams refused because they arrived after the GOAWAY's last stream id. */
  refused: number;
  goaways: number;
  /** Connections cut by {@link FakeApns.dropAfter}. */
  drops: number;
  /** onPush callbacks that threw. */
  deliveryErrors: number;
}

const MAX_PAYLOAD = 4096;
const TOKEN_PATH = /^\/3\/device\/([0-9a-fA-F]+)$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

interface SessionState {
  id: number;
  open: number;
  /** Set once this session has been sent a GOAWAY: streams above it are refused. */
  lastStreamId: number | null;
  /** null when the client presented a certificate we accept and that is in its validity window. */
  problem: InjectedFailure | null;
  topic: string | null;
  certificate: string | null;
}

/**
 * A stand-in for api.push.apple.com on 127.0.0.1: HTTP/2 over TLS with client certificates, the
 * request validation and reason strings of Apple's provider API, coalescing to the latest push per
 * token, and failure injection. Certificate validity is checked by OpenSSL against the real time.
 */
export class FakeApns {
  readonly caPem: string;
  readonly #server: Http2SecureServer;
  readonly #clock: Clock;
  readonly #keepRecent: number;
  readonly #accept: string[];
  readonly #serverKeyPem: string;
  readonly #sessions = new Map<Http2Session, SessionState>();
  readonly #latest = new Map<string, { pushMagic: string; at: Date }>();
  readonly #perToken = new Map<string, number>();
  readonly #scheduled = new Set<string>();
  readonly #tokenFailures = new Map<string, InjectedFailure>();
  #allFailure: InjectedFailure | null = null;
  #nextFailures: { remaining: number; failure: InjectedFailure } | null = null;
  #goAwayIn: number | null = null;
  #dropIn: number | null = null;
  #recent: SeenRequest[] = [];
  #port = 0;
  #sessionSeq = 0;
  onPush: ((tokenHex: string, pushMagic: string) => void) | null;
  readonly stats: FakeApnsStats = {
    requests: 0,
    accepted: 0,
    sessions: 0,
    maxConcurrentStreams: 0,
    refused: 0,
    goaways: 0,
    drops: 0,
    deliveryErrors: 0,
  };

  constructor(options: FakeApnsOptions) {
    this.#clock = options.clock ?? systemClock;
    this.#keepRecent = options.keepRecent ?? 100;
    this.onPush = options.onPush ?? null;
    this.#accept = [...options.accept];
    const tls = createLocalhostCertificate();
    this.caPem = tls.certPem;
    this.#serverKeyPem = tls.keyPem;
    this.#server = http2.createSecureServer({
      cert: tls.certPem,
      key: tls.keyPem,
      ca: this.#accept,
      requestCert: true,
      rejectUnauthorized: options.rejectAtTls ?? false,
      settings: { maxConcurrentStreams: options.maxConcurrentStreams ?? 1000, enablePush: false },
      // A burst of thousands of streams must not trip Node's per-session memory guard.
      maxSessionMemory: 64,
    });
    this.#server.on('session', (session) => this.#onSession(session));
    this.#server.on('stream', (stream, headers) => this.#onStream(stream, headers));
    // A client that drops mid-handshake is normal under failure tests; it must not crash the process.
    this.#server.on('tlsClientError', () => {});
    this.#server.on('sessionError', () => {});
  }

  async listen(): Promise<string> {
    await new Promise<void>((resolve, reject) => {
      this.#server.once('error', reject);
      this.#server.listen(0, '127.0.0.1', () => {
        this.#server.off('error', reject);
        resolve();
      });
    });
    this.#port = (this.#server.address() as AddressInfo).port;
    return this.url;
  }

  get url(): string {
    return `https://127.0.0.1:${this.#port}`;
  }

  /** Accepts one more push certificate; connections opened from now on see it. */
  trust(certPem: string): void {
    this.#accept.push(certPem);
    this.#server.setSecureContext({ cert: this.caPem, key: this.#serverKeyPem, ca: this.#accept });
  }

  /** Every request for this token answers `failure` until {@link clearFailures}. */
  failToken(tokenHex: string, failure: InjectedFailure): void {
    this.#tokenFailures.set(tokenHex.toLowerCase(), failure);
  }

  /** Every request answers `failure` until {@link clearFailures} (a per-token failure still wins). */
  failAll(failure: InjectedFailure): void {
    this.#allFailure = failure;
  }

  /** The next `count` valid requests answer `failure` (429 `TooManyRequests`, 503 `ServiceUnavailable`, …). */
  failNext(count: number, failure: InjectedFailure): void {
    this.#nextFailures = count > 0 ? { remaining: count, failure } : null;
  }

  clearFailures(): void {
    this.#tokenFailures.clear();
    this.#allFailure = null;
    this.#nextFailures = null;
    this.#goAwayIn = null;
    this.#dropIn = null;
  }

  /** After `count` more requests, the session that carried the last one gets a GOAWAY and closes. */
  goAwayAfter(count: number): void {
    this.#goAwayIn = Math.max(1, count);
  }

  /** After `count` more requests, the connection carrying the last one is cut without an answer. */
  dropAfter(count: number): void {
    this.#dropIn = Math.max(1, count);
  }

  /** Cuts every open connection at once, as a network failure or a restarting front end would. */
  dropConnections(): void {
    for (const session of this.#sessions.keys()) session.destroy();
  }

  /** What APNs would deliver to the device now: only the latest push per token is kept. */
  latest(tokenHex: string): { pushMagic: string; at: Date } | undefined {
    return this.#latest.get(tokenHex.toLowerCase());
  }

  /** Requests seen for this token, whatever their answer. */
  countFor(tokenHex: string): number {
    return this.#perToken.get(tokenHex.toLowerCase()) ?? 0;
  }

  /** Requests seen per token (hex), whatever their answer: every token pushed so far. */
  countsByToken(): Record<string, number> {
    return Object.fromEntries(this.#perToken);
  }

  /** The last requests, oldest first (bounded by `keepRecent`). */
  recent(): SeenRequest[] {
    return [...this.#recent];
  }

  async close(): Promise<void> {
    for (const session of this.#sessions.keys()) session.destroy();
    this.#sessions.clear();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  #onSession(session: Http2Session): void {
    this.stats.sessions++;
    const socket = session.socket as TLSSocket;
    const state: SessionState = {
      id: ++this.#sessionSeq,
      open: 0,
      lastStreamId: null,
      ...certificateVerdict(socket),
      certificate: socket.getPeerCertificate()?.fingerprint256 ?? null,
    };
    this.#sessions.set(session, state);
    session.on('error', () => {});
    session.on('close', () => this.#sessions.delete(session));
  }

  #onStream(stream: ServerHttp2Stream, headers: IncomingHttpHeaders): void {
    stream.on('error', () => {});
    const session = stream.session;
    const state = session ? this.#sessions.get(session) : undefined;
    if (!session || !state) {
      stream.close(http2.constants.NGHTTP2_REFUSED_STREAM);
      return;
    }
    if (state.lastStreamId !== null && (stream.id ?? 0) > state.lastStreamId) {
      // Past the GOAWAY: the client must resend these on a new connection.
      this.stats.refused++;
      stream.close(http2.constants.NGHTTP2_REFUSED_STREAM);
      return;
    }
    state.open++;
    this.stats.maxConcurrentStreams = Math.max(this.stats.maxConcurrentStreams, state.open);
    stream.on('close', () => state.open--);
    const chunks: Buffer[] = [];
    let size = 0;
    stream.on('data', (chunk: Buffer) => {
      size += chunk.length;
      // Keep a little more than the limit so "too large" is still detected without buffering a flood.
      if (size <= MAX_PAYLOAD + 1) chunks.push(chunk);
    });
    stream.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      this.#answer(stream, session, state, headers, body, size);
    });
  }

  #answer(
    stream: ServerHttp2Stream,
    session: Http2Session,
    state: SessionState,
    headers: IncomingHttpHeaders,
    body: string,
    size: number,
  ): void {
    if (state.lastStreamId !== null && (stream.id ?? 0) > state.lastStreamId) {
      // Arrived before the GOAWAY went out but above its last id: promised unprocessed.
      this.stats.refused++;
      if (!stream.closed && !stream.destroyed) stream.close(http2.constants.NGHTTP2_REFUSED_STREAM);
      return;
    }
    this.stats.requests++;
    if (this.#dropIn !== null && --this.#dropIn <= 0) {
      this.#dropIn = null;
      this.stats.drops++;
      session.destroy();
      return;
    }
    const method = String(headers[':method'] ?? '');
    const path = String(headers[':path'] ?? '');
    const tokenHex = TOKEN_PATH.exec(path)?.[1]?.toLowerCase() ?? null;
    if (tokenHex !== null) this.#perToken.set(tokenHex, (this.#perToken.get(tokenHex) ?? 0) + 1);
    const clientId = header(headers, 'apns-id');
    const apnsId = clientId !== null && UUID.test(clientId) ? clientId.toLowerCase() : randomUUID();

    const verdict = this.#validate(state, method, path, tokenHex, headers, body, size);
    let failure = verdict;
    let pushMagic: string | null = null;
    if (failure === null && tokenHex !== null) {
      failure = this.#injected(tokenHex);
      if (failure === null) pushMagic = (JSON.parse(body) as { mdm: string }).mdm;
    }
    this.#remember({
      method,
      path,
      headers: flatHeaders(headers),
      body: body.slice(0, MAX_PAYLOAD),
      status: failure?.status ?? 200,
      reason: failure?.reason ?? null,
      session: state.id,
      certificate: state.certificate,
    });

    if (!stream.closed && !stream.destroyed) {
      if (failure === null) {
        stream.respond({ ':status': 200, 'apns-id': apnsId }, { endStream: true });
      } else {
        const payload: Record<string, unknown> = { reason: failure.reason };
        if (failure.status === 410) payload.timestamp = failure.timestamp ?? this.#clock.now().getTime();
        stream.respond({ ':status': failure.status, 'apns-id': apnsId, 'content-type': 'application/json' });
        stream.end(JSON.stringify(payload));
      }
    }
    if (pushMagic !== null && tokenHex !== null) {
      this.stats.accepted++;
      this.#deliver(tokenHex, pushMagic);
    }
    if (this.#goAwayIn !== null && --this.#goAwayIn <= 0) {
      this.#goAwayIn = null;
      this.#goAway(session, state, stream.id ?? 0);
    }
  }

  /** Apple's checks, in the order its reasons suggest: certificate, request line, headers, payload. */
  #validate(
    state: SessionState,
    method: string,
    path: string,
    tokenHex: string | null,
    headers: IncomingHttpHeaders,
    body: string,
    size: number,
  ): InjectedFailure | null {
    if (state.problem) return state.problem;
    if (method !== 'POST') return { status: 405, reason: 'MethodNotAllowed' };
    if (!path.startsWith('/3/device/')) return { status: 404, reason: 'BadPath' };
    if (path === '/3/device/') return { status: 400, reason: 'MissingDeviceToken' };
    // Tokens are 32 bytes today; Apple says to expect longer ones, so 64 is a minimum.
    if (tokenHex === null || tokenHex.length < 64 || tokenHex.length % 2 !== 0) {
      return { status: 400, reason: 'BadDeviceToken' };
    }
    const topic = header(headers, 'apns-topic');
    if (topic === null) return { status: 400, reason: 'MissingTopic' };
    if (topic !== state.topic) {
      return { status: 400, reason: topic.startsWith('com.apple.mgmt.') ? 'TopicDisallowed' : 'BadTopic' };
    }
    const pushType = header(headers, 'apns-push-type');
    if (pushType !== 'mdm') return { status: 400, reason: 'InvalidPushType' };
    const priority = header(headers, 'apns-priority');
    if (priority !== null && !['1', '5', '10'].includes(priority))
      return { status: 400, reason: 'BadPriority' };
    const expiration = header(headers, 'apns-expiration');
    if (expiration !== null && !/^\d+$/.test(expiration)) return { status: 400, reason: 'BadExpirationDate' };
    const clientId = header(headers, 'apns-id');
    if (clientId !== null && !UUID.test(clientId)) return { status: 400, reason: 'BadMessageId' };
    if (size === 0) return { status: 400, reason: 'PayloadEmpty' };
    if (size > MAX_PAYLOAD) return { status: 413, reason: 'PayloadTooLarge' };
    if (!isMdmPayload(body)) return { status: 400, reason: 'BadPayload' };
    return null;
  }

  #injected(tokenHex: string): InjectedFailure | null {
    const perToken = this.#tokenFailures.get(tokenHex);
    if (perToken) return perToken;
    if (this.#nextFailures) {
      const next = this.#nextFailures;
      if (--next.remaining <= 0) this.#nextFailures = null;
      return next.failure;
    }
    return this.#allFailure;
  }

  /** Only the latest push per token survives; the device is woken once for however many arrived. */
  #deliver(tokenHex: string, pushMagic: string): void {
    this.#latest.set(tokenHex, { pushMagic, at: this.#clock.now() });
    if (this.#scheduled.has(tokenHex)) return;
    this.#scheduled.add(tokenHex);
    setImmediate(() => {
      this.#scheduled.delete(tokenHex);
      const latest = this.#latest.get(tokenHex);
      if (!latest || !this.onPush) return;
      try {
        this.onPush(tokenHex, latest.pushMagic);
      } catch {
        // A broken simulated device must not take the fake APNs (and the demo) down with it.
        this.stats.deliveryErrors++;
      }
    });
  }

  #goAway(session: Http2Session, state: SessionState, lastStreamId: number): void {
    if (session.closed || session.destroyed) return;
    this.stats.goaways++;
    state.lastStreamId = lastStreamId;
    session.goaway(
      http2.constants.NGHTTP2_NO_ERROR,
      lastStreamId,
      Buffer.from(JSON.stringify({ reason: 'Shutdown' })),
    );
    // Streams at or below the last id still get their answers; close() waits for them.
    session.close();
  }

  #remember(request: SeenRequest): void {
    this.#recent.push(request);
    if (this.#recent.length > this.#keepRecent)
      this.#recent.splice(0, this.#recent.length - this.#keepRecent);
  }
}

/** The body haishin must send: exactly one key, `mdm`, holding the PushMagic string. */
function isMdmPayload(body: string): boolean {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    return false;
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return false;
  const keys = Object.keys(parsed);
  return keys.length === 1 && keys[0] === 'mdm' && typeof (parsed as { mdm: unknown }).mdm === 'string';
}

function certificateVerdict(socket: TLSSocket): { problem: InjectedFailure | null; topic: string | null } {
  const peer = socket.getPeerCertificate();
  if (!peer || Object.keys(peer).length === 0) {
    return { problem: { status: 403, reason: 'MissingProviderToken' }, topic: null };
  }
  // Node types subject fields as strings, but a repeated attribute arrives as an array.
  const uid = (peer.subject as unknown as Record<string, string | string[] | undefined>).UID;
  const topic = (Array.isArray(uid) ? uid[0] : uid) ?? null;
  if (socket.authorized) return { problem: null, topic };
  const error = String(socket.authorizationError ?? '');
  if (error === 'CERT_HAS_EXPIRED' || error === 'CERT_NOT_YET_VALID') {
    return { problem: { status: 403, reason: 'ExpiredProviderToken' }, topic };
  }
  return { problem: { status: 403, reason: 'BadCertificate' }, topic };
}

function header(headers: IncomingHttpHeaders, name: string): string | null {
  const value = headers[name];
  if (value === undefined) return null;
  return Array.isArray(value) ? (value[0] ?? null) : String(value);
}

function flatHeaders(headers: IncomingHttpHeaders): Record<string, string> {
  const flat: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value !== undefined) flat[name] = Array.isArray(value) ? value.join(', ') : String(value);
  }
  return flat;
}

/** A self-signed TLS server identity for 127.0.0.1 and localhost: the fake's own, and the bench's baseline server. */
export function createLocalhostCertificate(): { certPem: string; keyPem: string } {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const keyPem = privateKey.export({ type: 'pkcs1', format: 'pem' }).toString();
  const key = forge.pki.privateKeyFromPem(keyPem) as forge.pki.rsa.PrivateKey;
  const cert = forge.pki.createCertificate();
  cert.publicKey = forge.pki.setRsaPublicKey(key.n, key.e);
  cert.serialNumber = '01' + randomBytes(15).toString('hex');
  // OpenSSL checks validity against the real time, whatever clock the simulation runs on.
  const now = systemClock.now().getTime();
  cert.validity.notBefore = new Date(now - 3600_000);
  cert.validity.notAfter = new Date(now + 30 * 24 * 3600_000);
  const attrs = [
    { name: 'commonName', value: 'fake api.push.apple.com' },
    { name: 'organizationName', value: 'haishin simulation' },
  ];
  cert.setSubject(attrs);
  cert.setIssuer(attrs);
  cert.setExtensions([
    { name: 'basicConstraints', cA: false },
    { name: 'extKeyUsage', serverAuth: true },
    {
      name: 'subjectAltName',
      altNames: [
        { type: 7, ip: '127.0.0.1' },
        { type: 2, value: 'localhost' },
      ],
    },
  ]);
  cert.sign(key, forge.md.sha256.create());
  return { certPem: forge.pki.certificateToPem(cert), keyPem };
}

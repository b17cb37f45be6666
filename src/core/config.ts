import { parseDuration } from './duration.ts';

/** Everything haishin reads from its environment (DESIGN §7). Parsing is pure; the caller passes `process.env`. */
export interface Config {
  db: string;
  dataDir: string;
  listen: { host: string; port: number };
  publicUrl: string;
  adminToken: string | null;
  /** HAISHIN_METRICS_TOKEN: the bearer GET /metrics asks for; null serves it to anyone (decision 0016). */
  metricsToken: string | null;
  secretKey: string | null;
  apns: {
    url: string;
    certFile: string | null;
    keyFile: string | null;
    /** HAISHIN_APNS_CERT_PASSWORD: the password of a .p12 in HAISHIN_APNS_CERT. */
    certPassword: string;
    caFile: string | null;
  };
  /** HAISHIN_TLS_CERT/KEY: serve HTTPS directly (else a reverse proxy terminates TLS). */
  tls: { certFile: string; keyFile: string } | null;
  vppUrl: string;
  appMetaUrl: string;
  timeouts: { pushMs: number; requestMs: number; sessionMs: number };
  offlineAfterMs: number;
  unenrolledAfterMs: number;
  /** How often haishin asks a device whether an install it acknowledged has finished. */
  verifyEveryMs: number;
  /** HAISHIN_INSTALLS_PER_DEVICE: jobs of one device in flight at once. */
  installsPerDevice: number;
  /** How long haishin waits before asking again a device that answered NotNow. */
  notNowRetryMs: number;
  /** HAISHIN_SILENT_REPUSH: a device silent this long after it was handed a job's command is pushed again. */
  silentRepushMs: number;
  maxBodyBytes: number;
  /**
   * Device identities (decision 0023): HAISHIN_DEVICE_IDENTITY_VALIDITY, how long an issued identity
   * is valid; HAISHIN_IDENTITY_RENEW_BEFORE, how long before its expiry haishin sends a device a
   * renewed one; HAISHIN_IDENTITY_RENEW_EVERY, how often the renewal pass runs.
   */
  identity: { validityMs: number; renewBeforeMs: number; renewEveryMs: number };
  /**
   * HAISHIN_QUEUE_RETENTION and HAISHIN_QUEUE_KEEP_MESSAGES: how long answered commands, their
   * results and device messages are kept, and how many of each device's newest messages are kept
   * whatever their age (src/store/queue-compaction.ts says what else always stays).
   */
  queue: { retentionMs: number; keepMessagesPerDevice: number };
  /**
   * HAISHIN_DEVICE_IDENTITY (decision 0024): `pkcs12` (default) puts an identity haishin made in the
   * enrollment profile; `scep` puts a `com.apple.security.scep` payload there, and the device makes
   * its own key and asks haishin's SCEP service (`/scep`) for its certificate with a one-time
   * challenge valid for HAISHIN_SCEP_CHALLENGE_TTL (1h).
   */
  deviceIdentity: { source: 'pkcs12' | 'scep'; challengeTtlMs: number };
  deviceKeyBits: number;
  /** `rsa` (default) or `ec` (P-256): the key of issued device identities. */
  deviceKeyType: 'rsa' | 'ec';
  /** PBE iteration count of the identity's PKCS#12 (its password travels in the same profile). */
  pkcs12Iterations: number;
  /**
   * HAISHIN_ENROLL_OPEN_GROUPS: `GET /mdm/enroll?group=<id>` without an enrollment link's secret
   * issues identities (labs only; decision 0022). Default false: the bare group form is refused.
   */
  enrollOpenGroups: boolean;
  /** Request limits per client address and the admin API's body size (issue 18, decision 0027). */
  limits: LimitsConfig;
  /**
   * HAISHIN_SIGNATURE_THREADS (decision 0030): worker threads checking `Mdm-Signature`s in
   * batches; `auto` (default) is one fewer than the cores, 1 to 4; 0 checks them on the event loop
   * with only the public-key step in libuv's thread pool.
   */
  signatureThreads: number | 'auto';
}

/** `n` requests per `windowMs` from one address; null: no limit. */
export interface RateLimit {
  max: number;
  windowMs: number;
}

export interface LimitsConfig {
  /** HAISHIN_RATE_LIMIT_ENROLL: `GET /mdm/enroll` (profile downloads) per address. */
  enroll: RateLimit | null;
  /** HAISHIN_RATE_LIMIT_SCEP: `/scep` requests per address (an enrollment makes about four). */
  scep: RateLimit | null;
  /** HAISHIN_RATE_LIMIT_AUTH: wrong admin tokens per address before the API answers 429. */
  authFailures: RateLimit | null;
  /** HAISHIN_TRUST_PROXY: addresses/CIDRs of reverse proxies whose X-Forwarded-For names the client. */
  trustProxy: string[];
  /** HAISHIN_API_MAX_BODY_BYTES: largest admin API body (routes taking long lists get HAISHIN_MAX_BODY_BYTES). */
  apiMaxBodyBytes: number;
}

export class ConfigError extends Error {}

type Env = Readonly<Record<string, string | undefined>>;

export function parseConfig(env: Env): Config {
  const get = (name: string, fallback: string) => {
    const value = env[name];
    return value === undefined || value === '' ? fallback : value;
  };
  const optional = (name: string) => {
    const value = env[name];
    return value === undefined || value === '' ? null : value;
  };
  const duration = (name: string, fallback: string) => {
    try {
      return parseDuration(get(name, fallback));
    } catch (err) {
      throw new ConfigError(`${name}: ${(err as Error).message}`);
    }
  };
  const integer = (name: string, fallback: number, min: number) => {
    const text = get(name, String(fallback));
    const value = Number(text);
    if (!Number.isInteger(value) || value < min)
      throw new ConfigError(`${name}="${text}" must be an integer ≥ ${min}`);
    return value;
  };

  const listenText = get('HAISHIN_LISTEN', '127.0.0.1:8080');
  const colon = listenText.lastIndexOf(':');
  const port = Number(listenText.slice(colon + 1));
  if (colon < 0 || !Number.isInteger(port) || port < 0 || port > 65535) {
    throw new ConfigError(`HAISHIN_LISTEN="${listenText}" must be host:port, e.g. 127.0.0.1:8080`);
  }
  const publicUrl = get('HAISHIN_PUBLIC_URL', 'http://127.0.0.1:8080').replace(/\/+$/, '');
  if (!/^https?:\/\//.test(publicUrl))
    throw new ConfigError(`HAISHIN_PUBLIC_URL="${publicUrl}" must start with https:// or http://`);
  const deviceKeyBits = integer('HAISHIN_DEVICE_KEY_BITS', 2048, 1024);
  const deviceKeyType = get('HAISHIN_DEVICE_KEY_TYPE', 'rsa');
  if (deviceKeyType !== 'rsa' && deviceKeyType !== 'ec')
    throw new ConfigError(`HAISHIN_DEVICE_KEY_TYPE="${deviceKeyType}" must be rsa or ec`);
  const pkcs12Iterations = integer('HAISHIN_PKCS12_ITERATIONS', 2048, 1);
  const signatureThreads =
    get('HAISHIN_SIGNATURE_THREADS', 'auto') === 'auto' ? 'auto' : integer('HAISHIN_SIGNATURE_THREADS', 0, 0);
  const identitySource = get('HAISHIN_DEVICE_IDENTITY', 'pkcs12');
  if (identitySource !== 'pkcs12' && identitySource !== 'scep')
    throw new ConfigError(
      `HAISHIN_DEVICE_IDENTITY="${identitySource}" must be pkcs12 or scep (scep: devices make their own key and ask haishin's SCEP service for their identity)`,
    );
  const scepChallengeTtlMs = duration('HAISHIN_SCEP_CHALLENGE_TTL', '1h');
  if (scepChallengeTtlMs < 1_000)
    throw new ConfigError(
      'HAISHIN_SCEP_CHALLENGE_TTL must be at least 1s (e.g. 1h): it is how long a downloaded enrollment profile can still obtain its identity',
    );
  const identityValidityMs = duration('HAISHIN_DEVICE_IDENTITY_VALIDITY', '365d');
  const renewBeforeMs = duration('HAISHIN_IDENTITY_RENEW_BEFORE', '30d');
  const renewEveryMs = duration('HAISHIN_IDENTITY_RENEW_EVERY', '1d');
  if (identityValidityMs < 1_000)
    throw new ConfigError(
      'HAISHIN_DEVICE_IDENTITY_VALIDITY must be at least 1s (e.g. 365d; seconds are for tests): it is how long a device identity is valid',
    );
  if (renewBeforeMs <= 0 || renewBeforeMs >= identityValidityMs)
    throw new ConfigError(
      `HAISHIN_IDENTITY_RENEW_BEFORE must be longer than 0 and shorter than HAISHIN_DEVICE_IDENTITY_VALIDITY (e.g. 30d of 365d): otherwise identities are renewed ${renewBeforeMs <= 0 ? 'never' : 'as soon as they are issued'}`,
    );
  // At most a week: a timer cannot wait longer than 24.8 days (Node fires it at once instead).
  if (renewEveryMs <= 0 || renewEveryMs > renewBeforeMs || renewEveryMs > 7 * 86_400_000)
    throw new ConfigError(
      'HAISHIN_IDENTITY_RENEW_EVERY must be longer than 0, at most 7d and at most HAISHIN_IDENTITY_RENEW_BEFORE (e.g. 1d): the renewal pass must run several times within the renewal window',
    );
  const queueRetentionMs = duration('HAISHIN_QUEUE_RETENTION', '7d');
  if (queueRetentionMs <= 0)
    throw new ConfigError(
      'HAISHIN_QUEUE_RETENTION must be longer than 0 (e.g. 7d): it is how long answered commands are kept',
    );
  const openGroupsText = get('HAISHIN_ENROLL_OPEN_GROUPS', 'false').toLowerCase();
  if (!['true', 'false', '1', '0', 'yes', 'no'].includes(openGroupsText))
    throw new ConfigError(
      `HAISHIN_ENROLL_OPEN_GROUPS="${openGroupsText}" must be true or false (true lets anyone who knows a group id enroll a device: labs only)`,
    );
  const tlsCert = optional('HAISHIN_TLS_CERT');
  const tlsKey = optional('HAISHIN_TLS_KEY');
  if ((tlsCert === null) !== (tlsKey === null))
    throw new ConfigError(
      `${tlsCert ? 'HAISHIN_TLS_KEY' : 'HAISHIN_TLS_CERT'} is not set: HAISHIN_TLS_CERT and HAISHIN_TLS_KEY go together (the server certificate chain and its key, PEM)`,
    );

  return {
    db: get('HAISHIN_DB', 'sqlite:./data/haishin.db'),
    dataDir: get('HAISHIN_DATA_DIR', './data'),
    listen: { host: listenText.slice(0, colon).replace(/^\[|\]$/g, ''), port },
    publicUrl,
    adminToken: optional('HAISHIN_ADMIN_TOKEN'),
    metricsToken: optional('HAISHIN_METRICS_TOKEN'),
    secretKey: optional('HAISHIN_SECRET_KEY'),
    apns: {
      url: get('HAISHIN_APNS_URL', 'https://api.push.apple.com'),
      certFile: optional('HAISHIN_APNS_CERT'),
      keyFile: optional('HAISHIN_APNS_KEY'),
      certPassword: get('HAISHIN_APNS_CERT_PASSWORD', ''),
      caFile: optional('HAISHIN_APNS_CA'),
    },
    tls: tlsCert && tlsKey ? { certFile: tlsCert, keyFile: tlsKey } : null,
    vppUrl: get('HAISHIN_VPP_URL', 'https://vpp.itunes.apple.com/mdm/v2'),
    appMetaUrl: get('HAISHIN_APPMETA_URL', 'https://itunes.apple.com'),
    timeouts: {
      pushMs: duration('HAISHIN_PUSH_TIMEOUT', '6d'),
      requestMs: duration('HAISHIN_REQUEST_TIMEOUT', '6d'),
      sessionMs: duration('HAISHIN_SESSION_TIMEOUT', '80m'),
    },
    offlineAfterMs: duration('HAISHIN_OFFLINE_AFTER', '1d'),
    unenrolledAfterMs: duration('HAISHIN_UNENROLLED_AFTER', '30d'),
    verifyEveryMs: duration('HAISHIN_VERIFY_EVERY', '60s'),
    installsPerDevice: integer('HAISHIN_INSTALLS_PER_DEVICE', 5, 1),
    notNowRetryMs: duration('HAISHIN_NOTNOW_RETRY', '5m'),
    silentRepushMs: duration('HAISHIN_SILENT_REPUSH', '3m'),
    identity: { validityMs: identityValidityMs, renewBeforeMs, renewEveryMs },
    maxBodyBytes: integer('HAISHIN_MAX_BODY_BYTES', 10 * 1024 * 1024, 1024),
    queue: {
      retentionMs: queueRetentionMs,
      keepMessagesPerDevice: integer('HAISHIN_QUEUE_KEEP_MESSAGES', 20, 0),
    },
    deviceIdentity: { source: identitySource, challengeTtlMs: scepChallengeTtlMs },
    deviceKeyBits: deviceKeyBits === 1024 || deviceKeyBits >= 2048 ? deviceKeyBits : 2048,
    deviceKeyType,
    pkcs12Iterations,
    signatureThreads,
    enrollOpenGroups: ['true', '1', 'yes'].includes(openGroupsText),
    limits: {
      enroll: rateLimit('HAISHIN_RATE_LIMIT_ENROLL', get('HAISHIN_RATE_LIMIT_ENROLL', '60/1m')),
      scep: rateLimit('HAISHIN_RATE_LIMIT_SCEP', get('HAISHIN_RATE_LIMIT_SCEP', '240/1m')),
      authFailures: rateLimit('HAISHIN_RATE_LIMIT_AUTH', get('HAISHIN_RATE_LIMIT_AUTH', '20/1m')),
      trustProxy: trustProxy(get('HAISHIN_TRUST_PROXY', '')),
      apiMaxBodyBytes: integer('HAISHIN_API_MAX_BODY_BYTES', 1024 * 1024, 1024),
    },
  };
}

/** `60/1m` (60 requests a minute), or `off`. */
function rateLimit(name: string, text: string): RateLimit | null {
  if (/^(off|false|0|no)$/i.test(text.trim())) return null;
  const m = /^\s*(\d+)\s*\/\s*(\S+)\s*$/.exec(text);
  let windowMs = NaN;
  try {
    windowMs = m ? parseDuration(m[2]!) : NaN;
  } catch {
    // reported below with the expected form
  }
  const max = m ? Number(m[1]) : NaN;
  if (!m || !Number.isInteger(max) || max < 1 || !(windowMs >= 1_000) || windowMs > 86_400_000)
    throw new ConfigError(
      `${name}="${text}" must be <requests>/<window> (e.g. 60/1m; the window from 1s to 1d) or off`,
    );
  return { max, windowMs };
}

/** `127.0.0.1,::1,10.0.0.0/8`: the reverse proxies in front of haishin; empty trusts none. */
function trustProxy(text: string): string[] {
  const list = text
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  for (const entry of list)
    if (!/^(\d{1,3}(\.\d{1,3}){3}|[0-9a-f:]*:[0-9a-f:.]*)(\/\d{1,3})?$/i.test(entry))
      throw new ConfigError(
        `HAISHIN_TRUST_PROXY="${text}": "${entry}" is not an IP address or CIDR (list the reverse proxies in front of haishin, e.g. 127.0.0.1)`,
      );
  return list;
}

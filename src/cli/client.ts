import type { Lang, Texts } from './output.ts';

/**
 * Exit codes scripts can rely on (also in `haishin --help`):
 *
 * | code | meaning |
 * |---|---|
 * | 0 | done |
 * | 1 | the server refused the request (4xx), or Apple refused part of a licence change |
 * | 2 | usage error: unknown command or option, missing or malformed argument, unreadable file |
 * | 3 | the server cannot be reached, timed out, or failed (5xx) |
 * | 4 | `distribute` finished, and some jobs failed |
 * | 5 | `distribute` gave up waiting (`--timeout`) while jobs were still running |
 */
export const EXIT = {
  ok: 0,
  refused: 1,
  usage: 2,
  unreachable: 3,
  failedJobs: 4,
  timeout: 5,
} as const;

export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

/** An error the CLI reports as one line, `haishin: <message> [<code>]`, and exits with. */
export class CliError extends Error {
  readonly exitCode: ExitCode;
  readonly code: string;
  readonly messages: Texts;
  readonly status: number | null;

  constructor(exitCode: ExitCode, code: string, messages: Texts, status: number | null = null) {
    super(messages.en);
    this.exitCode = exitCode;
    this.code = code;
    this.messages = messages;
    this.status = status;
  }

  line(lang: Lang): string {
    return `haishin: ${this.messages[lang]} [${this.code}]`;
  }
}

export const usageError = (code: string, messages: Texts) => new CliError(EXIT.usage, code, messages);

export const DEFAULT_URL = 'http://127.0.0.1:8080';
const API_PREFIX = '/api/v1';
/** Token registration and sync talk to Apple before answering; give them time. */
const REQUEST_TIMEOUT_MS = 120_000;

type Query = Record<string, string | number | boolean | undefined>;

export interface RequestOptions {
  query?: Query;
  body?: unknown;
  /** `text` asks for `text/plain` and returns the body as a string. */
  accept?: 'json' | 'text';
}

interface ErrorShape {
  error?: { code?: unknown; message?: unknown; messages?: { ja?: unknown; en?: unknown } };
}

/** The REST admin API over global fetch; every failure becomes a CliError with its exit code. */
export class ApiClient {
  readonly baseUrl: string;
  readonly #token: string | undefined;
  readonly #lang: Lang;

  constructor(o: { url: string; token: string | undefined; lang: Lang }) {
    let parsed: URL;
    try {
      parsed = new URL(o.url);
    } catch {
      throw usageError('usage.url', {
        ja: `サーバーの URL「${o.url}」が正しくありません（例: http://127.0.0.1:8080）。`,
        en: `The server URL "${o.url}" is not valid (e.g. http://127.0.0.1:8080).`,
      });
    }
    if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:')
      throw usageError('usage.url', {
        ja: `サーバーの URL は http:// か https:// で始めてください: ${o.url}`,
        en: `The server URL must start with http:// or https://: ${o.url}`,
      });
    this.baseUrl = o.url.replace(/\/+$/, '');
    this.#token = o.token;
    this.#lang = o.lang;
  }

  get<T>(path: string, query?: Query): Promise<T> {
    return this.request<T>('GET', path, query ? { query } : {});
  }

  post<T>(path: string, body: unknown = {}): Promise<T> {
    return this.request<T>('POST', path, { body });
  }

  /** Every page of a list endpoint, up to `max` items, as one `{items, nextCursor}` document. */
  async all<T>(
    path: string,
    query: Query = {},
    max = Infinity,
  ): Promise<{ items: T[]; nextCursor: string | null }> {
    const items: T[] = [];
    let cursor: string | undefined;
    for (;;) {
      const limit = Math.min(1000, max - items.length);
      const page = await this.get<{ items: T[]; nextCursor: string | null }>(path, {
        ...query,
        limit,
        ...(cursor ? { cursor } : {}),
      });
      items.push(...page.items);
      if (!page.nextCursor || items.length >= max) return { items, nextCursor: page.nextCursor };
      cursor = page.nextCursor;
    }
  }

  async request<T>(method: string, path: string, o: RequestOptions = {}): Promise<T> {
    const url = new URL(`${this.baseUrl}${API_PREFIX}${path}`);
    for (const [k, v] of Object.entries(o.query ?? {}))
      if (v !== undefined) url.searchParams.set(k, String(v));
    const headers: Record<string, string> = {
      accept: o.accept === 'text' ? 'text/plain' : 'application/json',
      'accept-language': this.#lang,
    };
    if (this.#token) headers.authorization = `Bearer ${this.#token}`;
    if (o.body !== undefined) headers['content-type'] = 'application/json';

    let response: Response;
    let text: string;
    try {
      response = await fetch(url, {
        method,
        headers,
        ...(o.body !== undefined ? { body: JSON.stringify(o.body) } : {}),
        signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
      });
      text = await response.text();
    } catch (err) {
      throw this.#unreachable(err);
    }
    if (!response.ok) {
      const err = refusal(response.status, text, method, path);
      // The server's wording speaks of HTTP headers; a CLI user sets an option or a variable.
      if (err.code === 'auth.required' && !this.#token)
        throw new CliError(EXIT.refused, err.code, {
          ja: `${err.messages.ja} CLI では --token か HAISHIN_TOKEN で指定します。`,
          en: `${err.messages.en} With the CLI, use --token or HAISHIN_TOKEN.`,
        });
      throw err;
    }
    if (o.accept === 'text') return text as T;
    if (text === '') return null as T;
    try {
      return JSON.parse(text) as T;
    } catch {
      throw new CliError(EXIT.unreachable, 'response.invalid', {
        ja: `サーバーの応答が JSON ではありません（${method} ${path}）。URL が haishin を指しているか確認してください。`,
        en: `The server's answer is not JSON (${method} ${path}). Check that the URL points to haishin.`,
      });
    }
  }

  #unreachable(err: unknown): CliError {
    const cause = err instanceof Error ? describeCause(err) : String(err);
    if (err instanceof Error && (err.name === 'TimeoutError' || err.name === 'AbortError'))
      return new CliError(EXIT.unreachable, 'connection.timeout', {
        ja: `サーバー ${this.baseUrl} が ${REQUEST_TIMEOUT_MS / 1000} 秒以内に応答しませんでした。`,
        en: `The server at ${this.baseUrl} did not answer within ${REQUEST_TIMEOUT_MS / 1000} s.`,
      });
    return new CliError(EXIT.unreachable, 'connection.failed', {
      ja: `サーバー ${this.baseUrl} に接続できません（${cause}）。--url か HAISHIN_URL を確認してください。`,
      en: `Cannot reach the server at ${this.baseUrl} (${cause}). Check --url or HAISHIN_URL.`,
    });
  }
}

/** fetch wraps the socket error ("fetch failed"); the useful part is in `cause`. */
function describeCause(err: Error): string {
  const cause = (err as Error & { cause?: unknown }).cause;
  if (cause && typeof cause === 'object') {
    const c = cause as { code?: unknown; message?: unknown };
    if (typeof c.code === 'string') return c.code;
    if (typeof c.message === 'string') return c.message;
  }
  return err.message;
}

/** The API's `{error: {code, message, messages}}`, or a plain HTTP status when something else answered. */
function refusal(status: number, text: string, method: string, path: string): CliError {
  const exitCode = status >= 500 ? EXIT.unreachable : EXIT.refused;
  let body: ErrorShape | null = null;
  try {
    body = JSON.parse(text) as ErrorShape;
  } catch {
    // not the API's error shape: described by its status below
  }
  const e = body?.error;
  if (e && typeof e.code === 'string') {
    const fallback = typeof e.message === 'string' ? e.message : e.code;
    const ja = typeof e.messages?.ja === 'string' ? e.messages.ja : fallback;
    const en = typeof e.messages?.en === 'string' ? e.messages.en : fallback;
    return new CliError(exitCode, e.code, { ja, en }, status);
  }
  return new CliError(
    exitCode,
    `http.${status}`,
    {
      ja: `サーバーが ${method} ${path} に HTTP ${status} で応答しました。`,
      en: `The server answered ${method} ${path} with HTTP ${status}.`,
    },
    status,
  );
}

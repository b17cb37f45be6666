import http from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface FakeAppSeed {
  adamId: string;
  name: string;
  bundleId: string;
  sizeBytes: number;
  minimumOsVersion?: string;
  supportedDevices?: string[];
  /** '4+', '9+', '12+', '17+'. */
  contentRating?: string;
  version?: string;
  /** Storefronts (two letters) that sell the app; every storefront when absent. */
  countries?: string[];
}

export interface FakeLookupRequest {
  ids: string[];
  country: string | null;
  status: number;
}

interface Fault {
  status: number;
  body: string | undefined;
}

const DEFAULT_DEVICES = [
  'iPhone12-iPhone12',
  'iPhone15-iPhone15',
  'iPadAir5-iPadAir5',
  'iPadPro11M4-iPadPro11M4',
  'iPad10-iPad10',
];

/**
 * A stand-in for Apple's public app look-up (`GET /lookup?id=…&country=…`, iTunes Search API
 * shape) on 127.0.0.1. Answers like Apple: `fileSizeBytes` as a string, results only for known
 * ids, `resultCount`, `text/javascript` content type and leading blank lines.
 */
export class FakeAppMeta {
  readonly #server: Server;
  readonly #apps = new Map<string, FakeAppSeed>();
  readonly #faults: Fault[] = [];
  readonly #requests: FakeLookupRequest[] = [];
  #url: string | null = null;
  #calls = 0;

  constructor() {
    this.#server = http.createServer((req, res) => this.#handle(req, res));
  }

  async listen(): Promise<string> {
    await new Promise<void>((resolve, reject) => {
      this.#server.once('error', reject);
      this.#server.listen(0, '127.0.0.1', () => {
        this.#server.off('error', reject);
        resolve();
      });
    });
    const { port } = this.#server.address() as AddressInfo;
    this.#url = `http://127.0.0.1:${port}`;
    return this.#url;
  }

  /** The base URL (what HAISHIN_APPMETA_URL would be). */
  get url(): string {
    if (!this.#url) throw new Error('FakeAppMeta: call listen() first');
    return this.#url;
  }

  async close(): Promise<void> {
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  /** Adds or replaces an app. */
  add(app: FakeAppSeed): void {
    this.#apps.set(app.adamId, { ...app });
  }

  remove(adamId: string): void {
    this.#apps.delete(adamId);
  }

  /** The app as the look-up answers it now, or undefined. */
  get(adamId: string): FakeAppSeed | undefined {
    const app = this.#apps.get(adamId);
    return app ? { ...app } : undefined;
  }

  /**
   * The developer publishes a new version: the look-up answers `version` (and the new requirements
   * or size given) from now on. Returns the app as it is now; throws for an unknown id.
   */
  publishVersion(
    adamId: string,
    version: string,
    changes: Partial<Pick<FakeAppSeed, 'minimumOsVersion' | 'sizeBytes'>> = {},
  ): FakeAppSeed {
    const app = this.#apps.get(adamId);
    if (!app) throw new Error(`FakeAppMeta: no app ${adamId} to publish a version of`);
    const next = { ...app, ...changes, version };
    this.#apps.set(adamId, next);
    return { ...next };
  }

  /** Requests to /lookup so far, failed ones included. */
  get calls(): number {
    return this.#calls;
  }

  /** What each /lookup request asked, in order. */
  get requests(): readonly FakeLookupRequest[] {
    return this.#requests;
  }

  /**
   * The next `n` lookups answer `status` with `body` (default: Apple-style `errorMessage` JSON).
   * A 200 with a body such as `'<html>'` simulates a malformed answer.
   */
  failNext(n: number, status = 503, body?: string): void {
    for (let i = 0; i < n; i++) this.#faults.push({ status, body });
  }

  #handle(req: IncomingMessage, res: ServerResponse): void {
    const url = new URL(req.url ?? '/', 'http://fake');
    if (req.method !== 'GET' || url.pathname !== '/lookup') {
      send(res, 404, JSON.stringify({ errorMessage: 'Not found' }));
      return;
    }
    this.#calls++;
    const ids = (url.searchParams.get('id') ?? '')
      .split(',')
      .map((s) => s.trim())
      .filter((s) => s !== '');
    const countryParam = url.searchParams.get('country');
    const record = (status: number): void => {
      this.#requests.push({ ids, country: countryParam, status });
    };

    const fault = this.#faults.shift();
    if (fault) {
      record(fault.status);
      send(
        res,
        fault.status,
        fault.body ?? JSON.stringify({ errorMessage: `Service unavailable (HTTP ${fault.status})` }),
      );
      return;
    }

    const country = (countryParam ?? 'us').toLowerCase();
    if (!/^[a-z]{2}$/.test(country)) {
      record(400);
      send(
        res,
        400,
        JSON.stringify({
          errorMessage: 'Invalid value(s) for key(s): [country]',
          queryParameters: { id: url.searchParams.get('id'), country: countryParam },
        }),
      );
      return;
    }

    const results: Array<Record<string, unknown>> = [];
    for (const id of ids) {
      const app = this.#apps.get(id);
      if (!app) continue;
      if (app.countries && !app.countries.some((c) => c.toLowerCase() === country)) continue;
      results.push(this.#result(app));
    }
    record(200);
    // Apple's lookup really answers text/javascript with blank lines before the JSON.
    send(res, 200, `\n\n\n${JSON.stringify({ resultCount: results.length, results })}\n`);
  }

  #result(app: FakeAppSeed): Record<string, unknown> {
    const rating = app.contentRating ?? '4+';
    return {
      wrapperType: 'software',
      kind: 'software',
      trackId: Number(app.adamId),
      trackName: app.name,
      trackCensoredName: app.name,
      bundleId: app.bundleId,
      fileSizeBytes: String(app.sizeBytes),
      minimumOsVersion: app.minimumOsVersion ?? '15.0',
      supportedDevices: app.supportedDevices ?? DEFAULT_DEVICES,
      trackContentRating: rating,
      contentAdvisoryRating: rating,
      version: app.version ?? '1.0.0',
      artworkUrl60: `${this.url}/artwork/${app.adamId}/60x60bb.jpg`,
      artworkUrl100: `${this.url}/artwork/${app.adamId}/100x100bb.jpg`,
      artworkUrl512: `${this.url}/artwork/${app.adamId}/512x512bb.jpg`,
      trackViewUrl: `https://apps.apple.com/app/id${app.adamId}`,
      sellerName: 'Fake Developer',
      artistName: 'Fake Developer',
      price: 0,
      currency: 'JPY',
      formattedPrice: 'Free',
      primaryGenreName: 'Education',
      genres: ['Education'],
      isVppDeviceBasedLicensingEnabled: true,
    };
  }
}

function send(res: ServerResponse, status: number, body: string): void {
  res.writeHead(status, {
    'content-type': 'text/javascript; charset=utf-8',
    'content-length': Buffer.byteLength(body),
  });
  res.end(body);
}

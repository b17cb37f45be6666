import { writeFileSync } from 'node:fs';
import http from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join, resolve } from 'node:path';
import { generateDemoPushIdentity } from '../apple/apns/pushcert.ts';
import { startFakes } from '../sim/fakes.ts';
import type { Fakes } from '../sim/fakes.ts';
import { extraApps, lookupSeedOf, SCENARIO_APPS } from '../sim/scenario.ts';
import type { ScenarioApp } from '../sim/scenario.ts';
import { FakeVppService } from '../sim/vpp/server.ts';
import type { FakeFaultType } from '../sim/vpp/server.ts';

interface FakesCommandOptions {
  dir: string;
  control: string;
  licences: string;
  apps: string;
  /** Every Apps and Books notification delivered twice, as Apple may (tests of the de-duplication). */
  duplicateNotifications?: boolean;
}

const DAY_MS = 86_400_000;

/**
 * `haishin fakes`: Apple's services as a process of their own — the fake APNs (HTTP/2 over TLS,
 * its own CA), the fake Apps and Books API and the fake app look-up — so that `haishin serve` can
 * be run against them exactly as in production. It writes the push certificate, its key, the
 * CA and a VPP token into `--dir`, prints the HAISHIN_* variables to use, and answers a small
 * control API (pushes as server-sent events for simulated devices, counters, failure injection).
 */
export async function runFakes(options: FakesCommandOptions): Promise<void> {
  const dir = resolve(options.dir);
  const licences = Number(options.licences);
  if (!Number.isInteger(licences) || licences < 0) throw new Error('--licences must be a whole number ≥ 0');
  const extra = Number(options.apps);
  if (!Number.isInteger(extra) || extra < 0 || extra > 999)
    throw new Error('--apps must be a whole number from 0 to 999');
  // The demo's apps, then the extra ones a benchmark asked for.
  const apps = [...SCENARIO_APPS, ...extraApps(extra)];
  const listeners = new Set<ServerResponse>();
  const fakes = await startFakes({
    dir,
    apps: apps.map(lookupSeedOf),
    ...(options.duplicateNotifications ? { vpp: { eventDelayMs: 50, duplicateNotifications: true } } : {}),
    onPush: (token, pushMagic) => {
      const event = `data: ${JSON.stringify({ token, pushMagic })}\n\n`;
      for (const res of listeners) res.write(event);
    },
  });
  // A comment now and then: a stream with nothing on it for 5 minutes is cut by fetch's body
  // timeout (undici), and the simulated devices listening on it would stop waking.
  const keepAlive = setInterval(() => {
    for (const res of listeners) res.write(': keep-alive\n\n');
  }, 15_000);
  keepAlive.unref();
  const tokenFile = join(dir, 'school.vpptoken');
  writeFileSync(tokenFile, addToken(fakes, apps, 'school', licences, 365), { mode: 0o600 });

  const control = http.createServer((req, res) => {
    handleControl(fakes, apps, listeners, req, res).catch((err: unknown) => {
      if (!res.headersSent) json(res, 500, { error: (err as Error).message });
    });
  });
  const colon = options.control.lastIndexOf(':');
  await new Promise<void>((done, fail) => {
    control.once('error', fail);
    control.listen(Number(options.control.slice(colon + 1)), options.control.slice(0, colon), done);
  });
  const controlUrl = `http://127.0.0.1:${(control.address() as AddressInfo).port}/control`;
  const summary = { env: fakes.env, control: controlUrl, tokenFile, topic: fakes.push.topic };
  writeFileSync(join(dir, 'fakes.json'), JSON.stringify(summary, null, 2));
  writeFileSync(
    join(dir, 'fakes.env'),
    Object.entries(fakes.env)
      .map(([k, v]) => `${k}=${v}\n`)
      .join(''),
  );
  console.log(`haishin fakes: Apple's services on 127.0.0.1 (push topic ${fakes.push.topic})`);
  for (const [k, v] of Object.entries(fakes.env)) console.log(`export ${k}=${v}`);
  console.log(`VPP token to register with haishin: ${tokenFile}`);
  console.log(
    `control API: ${controlUrl} (GET /pushes as server-sent events, GET /stats, GET /pushes/by-token, GET /catalog, POST /apps/<adamId>/version, POST /vpp/fault, GET /vpp/log, POST /apns/push-certificate)`,
  );
  console.log('fakes ready');

  const stop = async () => {
    clearInterval(keepAlive);
    for (const res of listeners) res.end();
    control.closeAllConnections();
    control.close();
    await fakes.close();
    process.exit(0);
  };
  process.once('SIGINT', () => void stop());
  process.once('SIGTERM', () => void stop());
}

/** A token with every app of the catalogue, `licences` each; returns the .vpptoken file text. */
function addToken(
  fakes: Fakes,
  apps: readonly ScenarioApp[],
  name: string,
  licences: number,
  expiresInDays: number,
): string {
  const sToken = FakeVppService.tokenFile(
    `fakes-${name}-${Date.now()}`,
    '教育委員会',
    new Date(Date.now() + expiresInDays * DAY_MS),
  );
  fakes.vpp.addToken({ sToken, orgName: '教育委員会', locationName: name });
  for (const app of apps) fakes.vpp.addAsset(sToken, { adamId: app.adamId, total: licences });
  return sToken;
}

async function handleControl(
  fakes: Fakes,
  apps: ScenarioApp[],
  listeners: Set<ServerResponse>,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<void> {
  const route = `${req.method} ${new URL(req.url ?? '/', 'http://fakes').pathname}`;
  const publish = /^POST \/control\/apps\/(\d+)\/version$/.exec(route);
  if (publish) return publishVersion(fakes, apps, listeners, publish[1]!, req, res);
  switch (route) {
    case 'GET /control/pushes': {
      // Simulated devices wake on these, as real ones do on APNs's notification.
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store' });
      res.write(': pushes\n\n');
      listeners.add(res);
      req.on('close', () => listeners.delete(res));
      return;
    }
    case 'GET /control/stats':
      return json(res, 200, {
        apns: fakes.apns.stats,
        vpp: {
          calls: fakes.vpp.callCounts(),
          associate: fakes.vpp.submittedRequests('ASSOCIATE'),
          disassociate: fakes.vpp.submittedRequests('DISASSOCIATE'),
        },
        appMeta: { calls: fakes.appMeta.calls },
        // SHA-256 fingerprints of the push certificates of the latest requests, oldest first.
        apnsCertificates: fakes.apns.recent().map((r) => r.certificate),
      });
    case 'GET /control/pushes/by-token':
      // Push requests per device token (hex): what a benchmark counts pushes per device with.
      return json(res, 200, { tokens: fakes.apns.countsByToken() });
    case 'GET /control/catalog':
      return json(res, 200, { apps });
    case 'POST /control/apns/fail': {
      const body = (await readJson(req)) as { status?: unknown; reason?: unknown };
      if (typeof body.status !== 'number' || typeof body.reason !== 'string')
        return json(res, 400, { error: 'body must be {"status": <number>, "reason": "<APNs reason>"}' });
      fakes.apns.failAll({ status: body.status, reason: body.reason });
      return json(res, 200, { failing: { status: body.status, reason: body.reason } });
    }
    case 'POST /control/apns/push-certificate': {
      // Apple's Push Certificates Portal, faked: "renew" keeps the topic, "create" makes a new one;
      // the fake APNs trusts the certificate from now on (issue 17, decision 0022).
      const body = (await readJson(req)) as { mode?: unknown; validDays?: unknown };
      const mode = body.mode === 'create' ? 'create' : 'renew';
      const identity = generateDemoPushIdentity(new Date(), {
        ...(mode === 'renew' ? { topic: fakes.push.topic } : {}),
        ...(typeof body.validDays === 'number' ? { validDays: body.validDays } : {}),
      });
      fakes.apns.trust(identity.certPem);
      return json(res, 201, {
        mode,
        topic: identity.topic,
        notAfter: identity.notAfter.toISOString(),
        certPem: identity.certPem,
        keyPem: identity.keyPem,
      });
    }
    case 'POST /control/apns/clear':
      fakes.apns.clearFailures();
      return json(res, 200, { failing: null });
    case 'POST /control/vpp/fault': {
      // The next `count` Apps and Books requests (of one endpoint, if given) answer this fault.
      const body = (await readJson(req)) as {
        type?: unknown;
        count?: unknown;
        retryAfterSec?: unknown;
        endpoint?: unknown;
      };
      const types = ['http429', 'http503', 'error9709', 'error9610', 'error9603'];
      if (typeof body.type !== 'string' || !types.includes(body.type))
        return json(res, 400, {
          error: `body must be {"type": one of ${types.join(', ')}, "count"?, "retryAfterSec"?, "endpoint"?}`,
        });
      fakes.vpp.injectFault({
        type: body.type as FakeFaultType,
        count: typeof body.count === 'number' ? body.count : 1,
        ...(typeof body.retryAfterSec === 'number' ? { retryAfterSec: body.retryAfterSec } : {}),
        ...(typeof body.endpoint === 'string' ? { endpoint: body.endpoint } : {}),
      });
      return json(res, 200, { injected: body });
    }
    case 'GET /control/vpp/log':
      // The latest Apps and Books requests with their times (ms since the epoch) and statuses.
      return json(res, 200, { calls: fakes.vpp.log() });
    case 'POST /control/vpp/tokens': {
      const body = (await readJson(req)) as { name?: unknown; licences?: unknown; expiresInDays?: unknown };
      const name = typeof body.name === 'string' ? body.name : 'extra';
      const licences = typeof body.licences === 'number' ? body.licences : 100;
      const days = typeof body.expiresInDays === 'number' ? body.expiresInDays : 365;
      return json(res, 201, { sToken: addToken(fakes, apps, name, licences, days) });
    }
    default:
      return json(res, 404, { error: `no such control route: ${route}` });
  }
}

/**
 * `POST /control/apps/:adamId/version {"version": "1.1", "minimumOsVersion"?: "17.0"}`: the
 * developer publishes a new version. The look-up answers it from now on, `GET /control/catalog`
 * lists it, and the push stream tells the simulated iPads (`event: catalog`), whose App Store then
 * installs it — on an InstallApplication for an app they manage, as an update.
 */
async function publishVersion(
  fakes: Fakes,
  apps: ScenarioApp[],
  listeners: Set<ServerResponse>,
  adamId: string,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<void> {
  const body = (await readJson(req)) as { version?: unknown; minimumOsVersion?: unknown };
  if (typeof body.version !== 'string' || !/^\d+(\.\d+)*$/.test(body.version))
    return json(res, 400, {
      error: 'body must be {"version": "<dotted numbers>", "minimumOsVersion"?: "<version>"}',
    });
  const i = apps.findIndex((a) => a.adamId === adamId);
  if (i < 0) return json(res, 404, { error: `no app ${adamId} in the catalogue` });
  const minimumOsVersion = typeof body.minimumOsVersion === 'string' ? body.minimumOsVersion : undefined;
  fakes.appMeta.publishVersion(adamId, body.version, minimumOsVersion ? { minimumOsVersion } : {});
  const app: ScenarioApp = {
    ...apps[i]!,
    version: body.version,
    ...(minimumOsVersion ? { minimumOsVersion } : {}),
  };
  apps[i] = app;
  const event = `event: catalog\ndata: ${JSON.stringify({ adamId, version: app.version, minimumOsVersion: app.minimumOsVersion, sizeBytes: app.sizeBytes })}\n\n`;
  for (const listener of listeners) listener.write(event);
  return json(res, 200, { app });
}

function json(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  const text = Buffer.concat(chunks).toString('utf8');
  return text === '' ? {} : (JSON.parse(text) as unknown);
}

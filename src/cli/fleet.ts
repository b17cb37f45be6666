import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseDuration } from '../core/duration.ts';
import { SimDevice } from '../sim/device/device.ts';
import type { SimApp } from '../sim/device/device.ts';
import { mapLimit, relayPushes, SimFleet } from '../sim/fleet.ts';

interface FleetCommandOptions {
  fakes: string;
  enroll: string;
  devices: string;
  /** `20s`, `1500ms`; `0`: installed at once. */
  downloadTime?: string;
  downloadConcurrency?: string;
  /** Serial numbers `<prefix>0…01` upwards instead of random ones: fleets of one server never collide. */
  serialPrefix?: string;
}

const MAX_DEVICES = 10_000;
/** Enrollments in flight: the server makes a key pair for each. */
const ENROLL_CONCURRENCY = 8;

type Catalog = Map<number, Omit<SimApp, 'managedAdamId' | 'managedStatus'>>;

/**
 * `haishin fleet`: simulated iPads for a `haishin serve` that runs against `haishin fakes`. They
 * enroll from an enrollment link (real profile, real CMS signatures), wake on the pushes
 * the fake APNs receives (its control API's server-sent events) and install what haishin asks from
 * the fakes' app catalogue — at once, or after `--download-time` (Installing meanwhile; the server
 * sees the end at its next ManagedApplicationList). The devices live in this process: stopping it
 * switches them all off.
 */
export async function runFleet(options: FleetCommandOptions): Promise<void> {
  const count = Number(options.devices);
  if (!Number.isInteger(count) || count < 1 || count > MAX_DEVICES)
    throw new Error(`--devices must be a whole number from 1 to ${MAX_DEVICES}`);
  let enrollUrl: URL;
  try {
    enrollUrl = new URL(options.enroll);
  } catch {
    throw new Error(
      `--enroll ${options.enroll} is not a URL: give an enrollment link (haishin enrollment-links create --group <id>: …/mdm/enroll?group=…&token=…)`,
    );
  }
  const download = downloadSpec(options);
  const serialOf = serialNumbers(options.serialPrefix, count);
  const dir = resolve(options.fakes);
  const control = controlUrl(dir);
  const catalog = await fetchCatalog(control, dir);

  const fleet = new SimFleet();
  // Listening before enrolling, so no push sent right after an enrollment is missed.
  let relay: { close(): void };
  try {
    relay = await relayPushes(
      control,
      fleet,
      (reason) => {
        console.error(
          `haishin: the push stream of the fakes at ${control} ended (${reason}); the iPads no longer wake — is \`haishin fakes --dir ${options.fakes}\` still running?`,
        );
        process.exit(1);
      },
      (app) => {
        // A new version published in the fakes: the simulated App Store installs it from now on.
        const known = catalog.get(Number(app.adamId));
        if (!known) return;
        catalog.set(Number(app.adamId), {
          ...known,
          version: app.version,
          ...(app.minimumOsVersion ? { minimumOsVersion: app.minimumOsVersion } : {}),
          ...(app.sizeBytes ? { sizeBytes: app.sizeBytes } : {}),
        });
        console.log(`the App Store now has version ${app.version} of ${app.adamId}`);
      },
    );
  } catch (err) {
    throw new Error(
      `the fakes at ${control} do not answer (${describe(err)}): start \`haishin fakes --dir ${options.fakes}\` first`,
    );
  }
  const devices = Array.from({ length: count }, (_, i) =>
    fleet.add(new SimDevice({ spec: { ...download, ...serialOf(i) }, catalog })),
  );

  let enrolled = 0;
  const failures: string[] = [];
  await mapLimit(devices, ENROLL_CONCURRENCY, async (device) => {
    try {
      await device.enroll(enrollUrl.href);
      enrolled++;
      console.log(`enrolled ${device.serialNumber} (${enrolled}/${count}), UDID ${device.udid}`);
    } catch (err) {
      failures.push(describe(err));
      console.error(`haishin: ${device.serialNumber} did not enroll: ${describe(err)}`);
    }
  });
  if (enrolled === 0) {
    relay.close();
    throw new Error(`no iPad enrolled from ${enrollUrl.href}: ${failures[0] ?? 'unknown error'}`);
  }
  if (download.downloadMs > 0)
    console.log(
      `each app downloads for ${download.downloadMs} ms once accepted, ${download.downloadConcurrency ?? 'all'} at once per iPad`,
    );
  console.log(
    `fleet ready: ${enrolled} of ${count} iPads enrolled, waking on the pushes of the fakes at ${control} (Ctrl-C to stop)`,
  );

  // A session that fails (the server unreachable, a socket closed under the iPad) leaves its
  // commands unanswered: say so as it happens, not only in the server's job list.
  let reportedErrors = 0;
  const watch = setInterval(() => {
    if (fleet.sessionErrors === reportedErrors) return;
    reportedErrors = fleet.sessionErrors;
    console.error(
      `haishin fleet: ${fleet.sessionErrors} of ${fleet.sessions} sessions failed so far (last: ${fleet.lastSessionError})`,
    );
  }, 10_000);
  watch.unref();

  const stop = async () => {
    clearInterval(watch);
    relay.close();
    // Sessions under way end by themselves once the server has nothing more; do not wait forever.
    await Promise.race([fleet.idle(), new Promise((r) => setTimeout(r, 5_000).unref())]);
    process.exit(0);
  };
  process.once('SIGINT', () => void stop());
  process.once('SIGTERM', () => void stop());
}

/**
 * --serial-prefix: the i-th iPad's serial number, 12 characters (the prefix, then i + 1 padded with
 * zeros); without it each iPad draws a random one, which can collide across 100,000 iPads.
 */
function serialNumbers(prefix: string | undefined, count: number): (i: number) => { serialNumber?: string } {
  if (prefix === undefined) return () => ({});
  const digits = 12 - prefix.length;
  if (!/^[A-Z0-9]{1,8}$/.test(prefix) || String(count).length > digits)
    throw new Error(
      `--serial-prefix ${prefix}: 1 to 8 capital letters or digits, leaving room for ${count} numbers in 12 characters`,
    );
  return (i) => ({ serialNumber: `${prefix}${String(i + 1).padStart(digits, '0')}` });
}

/** --download-time and --download-concurrency as the simulated iPads' spec. */
function downloadSpec(options: FleetCommandOptions): { downloadMs: number; downloadConcurrency?: number } {
  const text = (options.downloadTime ?? '0').trim();
  let downloadMs: number;
  try {
    downloadMs = /^0+$/.test(text) ? 0 : parseDuration(text);
  } catch {
    throw new Error(`--download-time ${text} is not a duration: use e.g. 20s, 1500ms, 2m (or 0)`);
  }
  if (options.downloadConcurrency === undefined) return { downloadMs };
  const concurrency = Number(options.downloadConcurrency);
  if (!Number.isInteger(concurrency) || concurrency < 1)
    throw new Error('--download-concurrency must be a whole number ≥ 1');
  return { downloadMs, downloadConcurrency: concurrency };
}

/** The control API of `haishin fakes`, from the fakes.json it writes into its --dir. */
function controlUrl(dir: string): string {
  const file = join(dir, 'fakes.json');
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    throw new Error(
      `no ${file}: start \`haishin fakes --dir ${dir}\` first and give the same folder to --fakes`,
    );
  }
  const control = (JSON.parse(text) as { control?: unknown }).control;
  if (typeof control !== 'string')
    throw new Error(`${file} has no control URL: start \`haishin fakes\` again`);
  return control;
}

/** The apps the fake App Store installs (what the fake look-up and Apps and Books API know). */
async function fetchCatalog(control: string, dir: string): Promise<Catalog> {
  let apps: {
    adamId: string;
    name: string;
    bundleId: string;
    sizeBytes: number;
    minimumOsVersion?: string;
    version?: string;
  }[];
  try {
    const res = await fetch(`${control}/catalog`);
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
    apps = ((await res.json()) as { apps: typeof apps }).apps;
  } catch (err) {
    throw new Error(
      `the fakes at ${control} do not answer (${describe(err)}): start \`haishin fakes --dir ${dir}\` first`,
    );
  }
  return new Map(
    apps.map((a) => [
      Number(a.adamId),
      {
        bundleId: a.bundleId,
        name: a.name,
        version: a.version ?? '1.0',
        sizeBytes: a.sizeBytes,
        ...(a.minimumOsVersion ? { minimumOsVersion: a.minimumOsVersion } : {}),
      },
    ]),
  );
}

function describe(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  // fetch says only "fetch failed"; the reason (ECONNREFUSED, a certificate error) is its cause.
  const cause = err.cause instanceof Error ? `: ${err.cause.message}` : '';
  const code = (err.cause as { code?: unknown } | undefined)?.code;
  const untrusted =
    typeof code === 'string' && /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|UNABLE_TO_GET_ISSUER/.test(code);
  // Node trusts the system CAs only; a server certificate from a private CA needs it added.
  const hint = untrusted
    ? ' (a certificate from your own CA: run with NODE_EXTRA_CA_CERTS=<its CA file>)'
    : '';
  return `${err.message}${cause}${hint}`;
}

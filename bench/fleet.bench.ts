// How many simulated iPads fit in one process, and what enrolling them costs: a real haishin
// on SQLite, N SimDevices enrolling over HTTP with real CMS signatures, then one command
// session each. Prints figures; bounded by N (default 2000, FLEET_BENCH_DEVICES to change, max 20000).
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createHaishin } from '../src/app/haishin.ts';
import { startFakes } from '../src/sim/fakes.ts';
import { freePort } from '../src/cli/net.ts';
import { systemClock } from '../src/core/clock.ts';
import { parseConfig } from '../src/core/config.ts';
import { SimDevice } from '../src/sim/device/device.ts';
import { mapLimit, SimFleet } from '../src/sim/fleet.ts';

const count = Math.min(20_000, Number(process.env.FLEET_BENCH_DEVICES ?? 2000));
const port = await freePort();
const baseUrl = `http://127.0.0.1:${port}`;
// Pushes go to a fake APNs that wakes nobody: this bench measures enrollment and sessions.
const fakes = await startFakes({ dir: mkdtempSync(`${tmpdir()}/haishin-bench-`) });
const config = parseConfig({
  ...fakes.env,
  HAISHIN_SECRET_KEY: 'bench-secret-key-0123456789',
  HAISHIN_DB: 'sqlite::memory:',
  HAISHIN_LISTEN: `127.0.0.1:${port}`,
  HAISHIN_PUBLIC_URL: baseUrl,
  HAISHIN_DEVICE_KEY_BITS: '1024',
});
const haishin = await createHaishin({
  config,
  clock: systemClock,
});
await haishin.listen();
const root = (await haishin.store.rootGroup())!;

global.gc?.();
const heapBefore = process.memoryUsage().heapUsed;
const fleet = new SimFleet();
for (let i = 0; i < count; i++)
  fleet.add(new SimDevice({ spec: { serialNumber: `BENCH${String(i).padStart(7, '0')}` } }));
const t0 = performance.now();
await fleet.enrollAll(() => `${baseUrl}/mdm/enroll?group=${root.id}`, 16);
const enrollMs = performance.now() - t0;
const t1 = performance.now();
await mapLimit(fleet.devices, 32, (d) => d.connect());
const sessionMs = performance.now() - t1;
global.gc?.();
const heapAfter = process.memoryUsage().heapUsed;

console.log(`devices                 ${count}`);
console.log(
  `enroll (profile+Auth+TokenUpdate)  ${(enrollMs / 1000).toFixed(1)} s  ${(count / (enrollMs / 1000)).toFixed(0)} devices/s`,
);
console.log(
  `one Idle session each   ${(sessionMs / 1000).toFixed(2)} s  ${(count / (sessionMs / 1000)).toFixed(0)} sessions/s`,
);
console.log(
  `heap growth             ${((heapAfter - heapBefore) / 1024 / 1024).toFixed(1)} MB  (${((heapAfter - heapBefore) / count / 1024).toFixed(1)} KB per device, server side included)`,
);
console.log(`rss                     ${(process.memoryUsage().rss / 1024 / 1024).toFixed(0)} MB`);
await haishin.close();
await fakes.close();

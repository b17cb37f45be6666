/**
 * Mdm-Signature throughput: the verifier with a warm and a cold certificate cache, the
 * simulator's CmsSigner, and the one-off identity work (issuing, PKCS#12).
 * Run: node --import tsx bench/signature.bench.ts   (not a test; numbers are relative to the machine)
 */
import {
  createDeviceCa,
  identityToPkcs12,
  issueDeviceIdentity,
  pkcs12ToIdentity,
} from '../src/mdm/identity/ca.ts';
import type { IssuedIdentity } from '../src/mdm/identity/ca.ts';
import { MdmSignatureVerifier } from '../src/mdm/identity/signature.ts';
import { CmsSigner } from '../src/sim/device/signer.ts';

const SECONDS_PER_RUN = Number(process.env.BENCH_SECONDS ?? 1);

/** Calls `fn` repeatedly for SECONDS_PER_RUN (after a short warm-up) and returns calls per second. */
function measure(fn: (i: number) => void): number {
  const warmUntil = performance.now() + 150;
  let i = 0;
  while (performance.now() < warmUntil) fn(i++);
  const start = performance.now();
  const deadline = start + SECONDS_PER_RUN * 1000;
  let calls = 0;
  let now = start;
  while (now < deadline) {
    for (let k = 0; k < 10; k++) fn(i++);
    calls += 10;
    now = performance.now();
  }
  return calls / ((now - start) / 1000);
}

function must(ok: boolean, what: string): void {
  if (!ok) throw new Error(`bench sanity check failed: ${what}`);
}

const now = new Date();
const body = Buffer.from(
  '<?xml version="1.0" encoding="UTF-8"?><plist version="1.0"><dict><key>MessageType</key><string>TokenUpdate</string>' +
    '<key>Topic</key><string>com.apple.mgmt.External.0f3c</string><key>UDID</key><string>00008103-001A2B3C4D5E6F70</string>' +
    '<key>Token</key><data>3q2+7w==</data><key>PushMagic</key><string>5B4B2F6A</string></dict></plist>',
);

const ca = createDeviceCa({ now });
const rows: [string, string, string][] = [];
const add = (name: string, perSecond: number, note = '') => {
  rows.push([
    name,
    perSecond >= 100 ? Math.round(perSecond).toLocaleString('en-US') : perSecond.toFixed(1),
    note,
  ]);
};

// Verification. One device, many devices (distinct certificates, round-robin), and cold.
const rsa2048 = issueDeviceIdentity(ca, { now, commonName: 'bench rsa2048' });
const fleet: IssuedIdentity[] = Array.from({ length: 200 }, (_, i) =>
  issueDeviceIdentity(ca, { now, commonName: `bench ${i}`, keyBits: 1024 }),
);
const ec = issueDeviceIdentity(ca, { now, commonName: 'bench p256', keyType: 'ec' });
const oneSignature = new CmsSigner(rsa2048).sign(body);
const fleetSignatures = fleet.map((identity) => new CmsSigner(identity).sign(body));
const ecSignature = new CmsSigner(ec).sign(body);

const warm = new MdmSignatureVerifier(ca.certPem);
must(warm.verify(body, oneSignature, now).ok, 'rsa2048 signature verifies');
add(
  'verify, warm cache, 1 device (RSA-2048)',
  measure(() => warm.verify(body, oneSignature, now)),
);

const fleetVerifier = new MdmSignatureVerifier(ca.certPem);
add(
  'verify, warm cache, 200 devices round-robin (RSA-1024)',
  measure((i) => fleetVerifier.verify(body, fleetSignatures[i % fleetSignatures.length]!, now)),
);

add(
  'verify, warm cache, 1 device (P-256)',
  measure(() => warm.verify(body, ecSignature, now)),
);

add(
  'verify, cold (new verifier every call, RSA-2048)',
  measure(() => new MdmSignatureVerifier(ca.certPem).verify(body, oneSignature, now)),
  'chain check each time',
);

const tiny = new MdmSignatureVerifier(ca.certPem, { cacheSize: 1 });
add(
  'verify, cache thrashing (cacheSize 1, 200 devices)',
  measure((i) => tiny.verify(body, fleetSignatures[i % fleetSignatures.length]!, now)),
  'chain check each time',
);

const tampered = Buffer.from(body);
tampered[10] = 0x21;
add(
  'refuse a tampered body (digest check)',
  measure(() => warm.verify(tampered, oneSignature, now)),
);
add(
  'refuse garbage',
  measure(() => warm.verify(body, 'bm90IGEgc2lnbmF0dXJl', now)),
);

// Signing, as each simulated device does for every message.
for (const [label, identity] of [
  ['RSA-2048', rsa2048],
  ['RSA-1024', fleet[0]!],
  ['P-256', ec],
] as const) {
  const signer = new CmsSigner(identity);
  must(warm.verify(body, signer.sign(body), now).ok, `${label} signer output verifies`);
  add(
    `CmsSigner.sign (${label})`,
    measure(() => signer.sign(body)),
  );
}

// One-off work per enrollment: fewer runs, so each sample is a whole operation.
add(
  'issueDeviceIdentity (RSA-2048)',
  measure(() => issueDeviceIdentity(ca, { now, commonName: 'x' })),
  'key generation dominates',
);
add(
  'issueDeviceIdentity (RSA-1024)',
  measure(() => issueDeviceIdentity(ca, { now, commonName: 'x', keyBits: 1024 })),
);
const p12 = identityToPkcs12(rsa2048, { password: 'bench', friendlyName: 'haishin device identity' });
add(
  'identityToPkcs12',
  measure(() => identityToPkcs12(rsa2048, { password: 'bench' })),
  '3DES, 2048 iterations',
);
add(
  'pkcs12ToIdentity',
  measure(() => pkcs12ToIdentity(p12, 'bench')),
);

const header: [string, string, string] = ['operation', 'per second', 'note'];
const widths = header.map((h, c) => Math.max(h.length, ...rows.map((r) => r[c]!.length)));
for (const [n, row] of [header, ...rows].entries()) {
  console.log(
    row
      .map((cell, c) => (c === 1 ? cell.padStart(widths[c]!) : cell.padEnd(widths[c]!)))
      .join('  ')
      .trimEnd(),
  );
  if (n === 0) console.log(widths.map((w) => '-'.repeat(w)).join('  '));
}
console.log(`\nNode ${process.version}, ${SECONDS_PER_RUN}s per measurement (BENCH_SECONDS to change).`);

import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { createDeviceCa, issueDeviceIdentity } from '../src/mdm/identity/ca.ts';
import { MdmSignatureVerifier } from '../src/mdm/identity/signature.ts';
import { decodeBatch, encodeBatch, narrow, SignatureThreads } from '../src/mdm/identity/signature-threads.ts';
import { CmsSigner } from '../src/sim/device/signer.ts';

const REPO = fileURLToPath(new URL('..', import.meta.url));
const DAY = 86_400_000;
const now = new Date();
const ca = createDeviceCa({ now });
const device = issueDeviceIdentity(ca, { now, commonName: 'threads', keyBits: 1024 });
const ec = issueDeviceIdentity(ca, { now, commonName: 'threads p256', keyType: 'ec' });
const stranger = issueDeviceIdentity(createDeviceCa({ now }), { now, commonName: 'stranger', keyBits: 1024 });
const body = Buffer.from('<plist version="1.0"><dict><key>Status</key><string>Idle</string></dict></plist>');
const good = new CmsSigner(device).sign(body);
const badSignature = Buffer.from(good, 'base64');
badSignature[badSignature.length - 1] = badSignature[badSignature.length - 1]! ^ 1;
const tampered = Buffer.from(body);
tampered[5] = tampered[5]! ^ 1;

/** Every kind of answer the verifier gives: accepted, and each refusal on the way. */
const CASES: [Uint8Array, string | undefined, Date][] = [
  [body, good, now],
  [body, new CmsSigner(ec).sign(body), now],
  [body, badSignature.toString('base64'), now],
  [tampered, good, now],
  [body, new CmsSigner(stranger).sign(body), now],
  [body, good, new Date(device.notAfter.getTime() + DAY)],
  [body, good, new Date(Number.NaN)],
  [body, '!!!not base64!!!', now],
  [body, undefined, now],
  [body, '', now],
  [new Uint8Array(0), good, now],
  [body, `${good}\u00e9`, now],
];

const DYING_WORKER = `import { parentPort } from 'node:worker_threads';
parentPort.on('message', () => process.exit(3));`;

const threads: SignatureThreads[] = [];
afterAll(async () => {
  for (const t of threads) await t.close();
});

describe('Mdm-Signature checks on worker threads (decision 0030)', () => {
  it('a batch survives its encoding byte for byte, no header and latin1 included', () => {
    const jobs = CASES.map(([b, header, at]) => ({ body: b, header, now: at }));
    const back = decodeBatch(encodeBatch(jobs));
    expect(back).toHaveLength(jobs.length);
    back.forEach((job, i) => {
      expect(Buffer.from(job.body).equals(Buffer.from(jobs[i]!.body))).toBe(true);
      expect(job.header).toBe(jobs[i]!.header);
      expect(Number.isNaN(job.now.getTime()) ? 'NaN' : job.now.getTime()).toBe(
        Number.isNaN(jobs[i]!.now.getTime()) ? 'NaN' : jobs[i]!.now.getTime(),
      );
    });
  });

  it('answers exactly as the verifier on the event loop does, cold and cached, one by one and many at once', async () => {
    const here = new MdmSignatureVerifier(ca.certPem);
    const expected = CASES.map(([b, header, at]) => narrow(here.verify(b, header, at)));
    expect(expected.filter((c) => c.ok)).toHaveLength(2);
    const pool = new SignatureThreads([ca.certPem], { threads: 2 });
    threads.push(pool);
    for (let round = 0; round < 2; round++) {
      for (let i = 0; i < CASES.length; i++) {
        const [b, header, at] = CASES[i]!;
        expect(await pool.verify(b, header, at)).toEqual(expected[i]);
      }
    }
    // Asked within one loop turn: they travel as batches, and each gets its own answer back.
    const many = Array.from({ length: 300 }, (_, i) => CASES[i % CASES.length]!);
    const answers = await Promise.all(many.map(([b, header, at]) => pool.verify(b, header, at)));
    answers.forEach((answer, i) => expect(answer).toEqual(expected[i % CASES.length]));
  });

  it('a thread that dies with a batch in hand: the batch is checked on the event loop, and a new thread is started — but not forever when each one dies at once', async () => {
    // A worker that dies on the first batch it is handed, every time it is started.
    const dying = new URL(`data:text/javascript,${encodeURIComponent(DYING_WORKER)}`);
    const pool = new SignatureThreads([ca.certPem], { threads: 1, entry: dying });
    threads.push(pool);
    for (let round = 0; round < 5; round++) {
      const answers = await Promise.all(CASES.map(([b, header, at]) => pool.verify(b, header, at)));
      const here = new MdmSignatureVerifier(ca.certPem);
      answers.forEach((answer, i) => {
        const [b, header, at] = CASES[i]!;
        expect(answer).toEqual(narrow(here.verify(b, header, at)));
      });
    }
    expect(pool.restarts).toBe(2);
  });

  it('after close, checks still answer, on the event loop', async () => {
    const pool = new SignatureThreads([ca.certPem], { threads: 1 });
    await pool.close();
    expect(await pool.verify(body, good, now)).toMatchObject({ ok: true });
    expect((await pool.verify(body, undefined, now)).ok).toBe(false);
  });
});

describe('Mdm-Signature checks on worker threads: the process', () => {
  it('answers in a process where nothing else holds the event loop, and an idle thread lets the process end by itself', () => {
    // Nothing else holds the event loop: the awaited check alone must keep it running, and once
    // answered the idle thread must let the process end by itself (without close()).
    const script = `
      import { SignatureThreads } from './src/mdm/identity/signature-threads.ts';
      const pool = new SignatureThreads([process.env.CA], { threads: 1 });
      const check = await pool.verify(Buffer.from(process.env.BODY, 'base64'), process.env.SIG, new Date());
      console.log(JSON.stringify(check));`;
    const run = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
      cwd: REPO,
      env: { ...process.env, CA: ca.certPem, BODY: body.toString('base64'), SIG: good },
      encoding: 'utf8',
      timeout: 30_000,
    });
    expect(run.status).toBe(0);
    expect(JSON.parse(run.stdout.trim())).toEqual({ ok: true, fingerprintSha256: device.fingerprintSha256 });
  });
});

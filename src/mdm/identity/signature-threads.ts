/**
 * `Mdm-Signature` checks on worker threads, handed over in batches (decision 0030).
 *
 * Every check-in needs one: parsing the CMS, hashing the body and the signed attributes, and the
 * public-key operation. Done on the event loop (or with only the RSA/ECDSA step in libuv's thread
 * pool, one wake-up of a pool thread per request) it was the largest share of a signed `Idle`'s
 * cost. Here the event loop only copies body and header into one buffer per loop turn and hands
 * the whole batch to a worker thread, which runs the same {@link MdmSignatureVerifier} (its own
 * signer cache included) and answers the batch with one message.
 */
import { Worker } from 'node:worker_threads';
import { MdmSignatureVerifier } from './signature.ts';

/** What the MDM service needs of a check: the signer's fingerprint, or why the message is refused. */
export type ThreadCheck = { ok: true; fingerprintSha256: string } | { ok: false; reason: string };

/** Marks a job whose request had no Mdm-Signature header at all (a header length never reaches it). */
const NO_HEADER = 0xffff_ffff;
/** Per job: the check's instant (ms, NaN allowed), the body's length and the header's. */
const JOB_HEAD = 16;

export interface SignatureThreadsOptions {
  /** How many worker threads share the checks (at least 1). */
  threads: number;
  /** Each thread's signer-certificate cache (MdmSignatureVerifier's `cacheSize`). */
  cacheSize?: number;
  /** The worker's entry module; tests give one that fails. */
  entry?: URL;
}

interface Job {
  body: Uint8Array;
  header: string | undefined;
  now: Date;
  resolve: (check: ThreadCheck) => void;
}

interface Lane {
  worker: Worker;
  inFlight: Map<number, Job[]>;
  dead: boolean;
  answered: boolean;
}

/** Threads that die before their first answer this many times in a row are not started again. */
const MAX_DEAD_ON_ARRIVAL = 3;

/** Encodes a batch as one transferable buffer (the worker decodes it with {@link decodeBatch}). */
export function encodeBatch(jobs: readonly Pick<Job, 'body' | 'header' | 'now'>[]): ArrayBuffer {
  let size = 4;
  for (const job of jobs) size += JOB_HEAD + job.body.byteLength + (job.header?.length ?? 0);
  const buf = Buffer.allocUnsafeSlow(size);
  buf.writeUInt32LE(jobs.length, 0);
  let at = 4;
  for (const job of jobs) {
    buf.writeDoubleLE(job.now.getTime(), at);
    buf.writeUInt32LE(job.body.byteLength, at + 8);
    // HTTP header values reach Node as latin1 strings, so latin1 carries them back byte for byte.
    buf.writeUInt32LE(job.header === undefined ? NO_HEADER : job.header.length, at + 12);
    at += JOB_HEAD;
    buf.set(job.body, at);
    at += job.body.byteLength;
    if (job.header !== undefined) at += buf.write(job.header, at, 'latin1');
  }
  return buf.buffer.slice(buf.byteOffset, buf.byteOffset + at) as ArrayBuffer;
}

/** The jobs of an encoded batch, their bodies as views into it. */
export function decodeBatch(
  data: ArrayBuffer,
): { body: Uint8Array; header: string | undefined; now: Date }[] {
  const buf = Buffer.from(data);
  const count = buf.readUInt32LE(0);
  const jobs = [];
  let at = 4;
  for (let i = 0; i < count; i++) {
    const now = new Date(buf.readDoubleLE(at));
    const bodyLength = buf.readUInt32LE(at + 8);
    const headerLength = buf.readUInt32LE(at + 12);
    at += JOB_HEAD;
    const body = buf.subarray(at, at + bodyLength);
    at += bodyLength;
    let header: string | undefined;
    if (headerLength !== NO_HEADER) {
      header = buf.toString('latin1', at, at + headerLength);
      at += headerLength;
    }
    jobs.push({ body, header, now });
  }
  return jobs;
}

/** A check as one string for the way back: `+fingerprint` or `-reason`. */
export const encodeCheck = (check: ThreadCheck): string =>
  check.ok ? `+${check.fingerprintSha256}` : `-${check.reason}`;

const decodeCheck = (text: string): ThreadCheck =>
  text.startsWith('+')
    ? { ok: true, fingerprintSha256: text.slice(1) }
    : { ok: false, reason: text.slice(1) };

export class SignatureThreads {
  readonly #caPems: readonly string[];
  readonly #cacheSize: number | undefined;
  readonly #entry: URL;
  readonly #lanes: Lane[] = [];
  /** Checks asked for during this loop turn; handed over together by the next `setImmediate`. */
  #pending: Job[] = [];
  #flushScheduled = false;
  #nextBatch = 1;
  #closed = false;
  #restarts = 0;
  /** Threads that died before answering anything, in a row: a broken start is not retried forever. */
  #deadOnArrival = 0;
  /**
   * Checks on this thread when a worker died with a batch in hand: a refusal would make the
   * device retry for nothing, and a worker failing is haishin's fault, not the device's.
   */
  #fallback: MdmSignatureVerifier | undefined;

  constructor(caPems: readonly string[], options: SignatureThreadsOptions) {
    if (caPems.length === 0) throw new Error('no device CA to verify signatures with');
    this.#caPems = caPems;
    this.#cacheSize = options.cacheSize;
    this.#entry = options.entry ?? new URL('./signature-thread-entry.mjs', import.meta.url);
    for (let i = 0; i < Math.max(1, options.threads); i++) this.#lanes.push(this.#startLane());
  }

  /** Threads started again after one died (a figure for logs and tests). */
  get restarts(): number {
    return this.#restarts;
  }

  verify(body: Uint8Array, header: string | undefined, now: Date): Promise<ThreadCheck> {
    if (this.#closed) return Promise.resolve(this.#checkHere(body, header, now));
    return new Promise((resolve) => {
      this.#pending.push({ body, header, now, resolve });
      if (!this.#flushScheduled) {
        this.#flushScheduled = true;
        setImmediate(() => this.#flush());
      }
    });
  }

  /** Stops the threads; checks still in their hands are made on this thread. */
  async close(): Promise<void> {
    this.#closed = true;
    this.#flush();
    await Promise.all(
      this.#lanes.map(async (lane) => {
        lane.dead = true;
        this.#rescue(lane);
        await lane.worker.terminate();
      }),
    );
  }

  #flush(): void {
    this.#flushScheduled = false;
    const jobs = this.#pending;
    if (jobs.length === 0) return;
    this.#pending = [];
    const lane = this.#leastBusy();
    if (!lane) {
      for (const job of jobs) job.resolve(this.#checkHere(job.body, job.header, job.now));
      return;
    }
    const batch = this.#nextBatch++;
    // Held while it owes answers: a caller awaiting a check keeps the process alive.
    if (lane.inFlight.size === 0) lane.worker.ref();
    lane.inFlight.set(batch, jobs);
    const data = encodeBatch(jobs);
    lane.worker.postMessage({ batch, data }, [data]);
  }

  #leastBusy(): Lane | undefined {
    let best: Lane | undefined;
    for (const lane of this.#lanes) {
      if (lane.dead) continue;
      if (!best || lane.inFlight.size < best.inFlight.size) best = lane;
    }
    return best;
  }

  #startLane(): Lane {
    const worker = new Worker(this.#entry, {
      workerData: { caPems: [...this.#caPems], cacheSize: this.#cacheSize },
    });
    // An idle thread must not keep the process alive (held again while it owes answers).
    worker.unref();
    const lane: Lane = { worker, inFlight: new Map(), dead: false, answered: false };
    worker.on('message', (msg: { batch: number; results: string[] }) => {
      const jobs = lane.inFlight.get(msg.batch);
      if (!jobs) return;
      lane.inFlight.delete(msg.batch);
      if (lane.inFlight.size === 0) lane.worker.unref();
      lane.answered = true;
      this.#deadOnArrival = 0;
      for (let i = 0; i < jobs.length; i++) jobs[i]!.resolve(decodeCheck(msg.results[i] ?? '-no answer'));
    });
    const replace = () => {
      if (lane.dead) return;
      lane.dead = true;
      this.#rescue(lane);
      if (!lane.answered) this.#deadOnArrival++;
      // From then on every check is made on the event loop (#leastBusy finds no lane).
      if (this.#closed || this.#deadOnArrival >= MAX_DEAD_ON_ARRIVAL) return;
      const index = this.#lanes.indexOf(lane);
      if (index >= 0) {
        this.#restarts++;
        this.#lanes[index] = this.#startLane();
      }
    };
    worker.on('error', replace);
    worker.on('exit', replace);
    return lane;
  }

  #rescue(lane: Lane): void {
    for (const jobs of lane.inFlight.values())
      for (const job of jobs) job.resolve(this.#checkHere(job.body, job.header, job.now));
    lane.inFlight.clear();
  }

  #checkHere(body: Uint8Array, header: string | undefined, now: Date): ThreadCheck {
    this.#fallback ??= new MdmSignatureVerifier(this.#caPems, { cacheSize: this.#cacheSize });
    return narrow(this.#fallback.verify(body, header, now));
  }
}

/** Only what crosses back from the thread: the fingerprint or the reason. */
export function narrow(check: ReturnType<MdmSignatureVerifier['verify']>): ThreadCheck {
  return check.ok
    ? { ok: true, fingerprintSha256: check.fingerprintSha256 }
    : { ok: false, reason: check.reason };
}

/**
 * The worker side of {@link SignatureThreads}: checks each batch it is handed with its own
 * {@link MdmSignatureVerifier} and answers the batch with one message.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { MdmSignatureVerifier } from './signature.ts';
import { decodeBatch, encodeCheck, narrow } from './signature-threads.ts';

const data = workerData as { caPems: string[]; cacheSize: number | undefined };
const verifier = new MdmSignatureVerifier(data.caPems, { cacheSize: data.cacheSize });

parentPort?.on('message', (msg: { batch: number; data: ArrayBuffer }) => {
  const results = decodeBatch(msg.data).map((job) =>
    encodeCheck(narrow(verifier.verify(job.body, job.header, job.now))),
  );
  parentPort?.postMessage({ batch: msg.batch, results });
});

// The baseline of bench/checkin.bench.ts: a bare Fastify process with one `PUT /mdm/connect`
// route that reads the raw body (as haishin's MDM routes do) and answers an empty 200 — what a
// check-in would cost if haishin did nothing with it. No logger, no plugins.
//
//   node --import tsx bench/support/bare-fastify.ts <port>
import Fastify from 'fastify';

const port = Number(process.argv[2] ?? 0);
const app = Fastify({ logger: false, bodyLimit: 10 * 1024 * 1024 });
app.removeAllContentTypeParsers();
app.addContentTypeParser('*', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));
for (const endpoint of ['checkin', 'connect']) {
  app.put(`/mdm/${endpoint}`, async (req, reply) => {
    const body = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
    if (body.length === 0 || typeof req.headers['mdm-signature'] !== 'string') reply.code(400);
    return reply.send('');
  });
}
await app.listen({ host: '127.0.0.1', port, backlog: 4096 });
console.log(`bare fastify listening on ${port}`);
const stop = () => void app.close().then(() => process.exit(0));
process.once('SIGTERM', stop);
process.once('SIGINT', stop);

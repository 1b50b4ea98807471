// fastify_app.js as it runs in production: Fastify's logger on (pino to stdout: "incoming
// request" and "request completed" per request), fastify-metrics (prom-client's default metrics
// + http_request_duration_seconds by route, GET /metrics), /healthz and /readyz. The twin of
// `hello_app --observe` for the overhead row in docs/benchmarks.md ("Observability overhead").
'use strict';
const fastify = require('fastify')({ logger: { level: process.env.LOG_LEVEL || 'info' } });
const metrics = require('fastify-metrics');

async function main() {
  await fastify.register(metrics, { endpoint: '/metrics' });
  fastify.addHook('onRequest', (req, reply, done) => { reply.header('x-app', 'fastify'); done(); });
  for (const r of ['users', 'products', 'orders', 'carts', 'reviews']) {
    fastify.get(`/api/${r}`, async () => []);
    fastify.post(`/api/${r}`, async (req, reply) => { reply.code(201); return ''; });
    fastify.get(`/api/${r}/:id`, async (req) => ({ id: req.params.id }));
    fastify.delete(`/api/${r}/:id`, async (req, reply) => { reply.code(204); return ''; });
  }
  const hello = async (req, reply) => { reply.type('text/plain'); return 'Hello, World!'; };
  fastify.get('/', hello);
  fastify.get('/plaintext', hello);
  fastify.get('/json', async () => ({ message: 'Hello, World!' }));
  let ready = false;
  fastify.get('/healthz', async () => ({ status: 'ok' }));
  fastify.get('/readyz', async (req, reply) => {
    reply.code(ready ? 200 : 503);
    return { status: ready ? 'ready' : 'starting' };
  });
  const port = Number(process.env.PORT || 3000);
  await fastify.listen({ port, host: '127.0.0.1' });
  ready = true;
  console.error(`fastify_observed: listening on ${port}`);
}
main();

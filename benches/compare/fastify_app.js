// The app-layer row on Fastify 5: one onRequest hook, a table of 20 REST routes, the contract routes.
'use strict';
const fastify = require('fastify')({ logger: false });
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
const port = Number(process.env.PORT || 3000);
fastify.listen({ port, host: '127.0.0.1' }).then(() => console.log(`fastify_app: listening on ${port}`));

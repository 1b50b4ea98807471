'use strict';
// Fastify 5 serving the same bytes as examples/hello.rs (see node_http.js for the routes).
// Logger off (the default); every content type is read as a raw Buffer for /echo.
// PORT from env (default 3000). Prints one ready line.
const fastify = require('fastify')({ logger: false, bodyLimit: 16 * 1024 * 1024 });

const HELLO = Buffer.from('Hello, World!');
const JSON_BODY = Buffer.from('{"message":"Hello, World!"}');

fastify.removeAllContentTypeParsers();
fastify.addContentTypeParser('*', { parseAs: 'buffer' }, (req, body, done) => done(null, body));

const plaintext = async (req, reply) => reply.type('text/plain').send(HELLO);
fastify.get('/', plaintext);
fastify.get('/plaintext', plaintext);
fastify.get('/json', async (req, reply) => reply.type('application/json').send(JSON_BODY));
fastify.post('/echo', async (req, reply) => {
  const ct = req.headers['content-type'];
  if (ct !== undefined) reply.header('content-type', ct);
  return reply.send(Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0));
});
fastify.setNotFoundHandler((req, reply) => {
  reply.code(404).type('text/plain').send(Buffer.from('Not Found'));
});

const port = Number(process.env.PORT || 3000);
const host = process.env.HOST || '127.0.0.1';
fastify.listen({ port, host }).then(() => {
  console.log(`fastify: ready on http://${host}:${port} (pid ${process.pid})`);
}, (err) => {
  console.error(err);
  process.exit(1);
});

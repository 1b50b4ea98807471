// The Express twin of examples/redis_rate_limit.rs: express-rate-limit 8.7.5 with
// rate-limit-redis 6.0.1 on the redis-server given as argv[2] (node-redis' sendCommand),
// argv[3] hits per argv[4] ms on GET /. Prints its port, then serves until killed.
'use strict';
const express = require('express');
const { rateLimit } = require('express-rate-limit');
const { RedisStore } = require('rate-limit-redis');
const { createClient } = require('redis');

async function main() {
  const client = createClient({ url: process.argv[2] });
  client.on('error', (e) => console.error('redis', e.message));
  await client.connect();
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  app.use(rateLimit({
    limit: Number(process.argv[3]), windowMs: Number(process.argv[4]),
    store: new RedisStore({ sendCommand: (...args) => client.sendCommand(args) }),
  }));
  app.get('/', (req, res) => res.type('text/plain').send('ok'));
  const server = app.listen(0, '127.0.0.1', () => console.log(server.address().port));
}
main();

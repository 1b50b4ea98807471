// The Express twin of tests/redis_session_store.rs: express-session 1.18 with connect-redis on
// the redis-server given as argv[2], the same secret, routes and cookie as the oneloop app.
// Prints its port, then serves until killed.
'use strict';
const express = require('express');
const session = require('express-session');
const { RedisStore } = require('connect-redis');
const { createClient } = require('redis');

async function main() {
  const client = createClient({ url: process.argv[2] });
  client.on('error', (e) => console.error('redis', e.message));
  await client.connect();
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  app.use(session({
    store: new RedisStore({ client }),
    secret: 'keyboard cat', resave: false, saveUninitialized: false,
    cookie: { maxAge: 60000 },
  }));
  const text = (res, s) => res.type('text/plain').send(String(s));
  app.get('/peek', (req, res) => text(res, req.session.views || 0));
  app.get('/inc', (req, res) => {
    req.session.views = (req.session.views || 0) + 1;
    text(res, req.session.views);
  });
  app.post('/logout', (req, res, next) => req.session.destroy((err) => (err ? next(err) : text(res, 'bye'))));
  const server = app.listen(0, '127.0.0.1', () => console.log(server.address().port));
}
main();

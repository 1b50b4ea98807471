// The Express 5 twin of the oneloop app in tests/app_session_diff.rs: express-session 1.18 with
// its MemoryStore, resave/saveUninitialized false; under /r a second session with rolling
// expiry and a max-age. Prints its port, then serves until killed.
'use strict';
const express = require('express');
const session = require('express-session');

const app = express();
app.disable('x-powered-by');
app.set('etag', false);
app.use('/r', session({
  name: 'r.sid', secret: ['keyboard cat', 'old cat'], resave: false, saveUninitialized: false,
  rolling: true, cookie: { maxAge: 60000, sameSite: 'lax' },
}));
app.use(session({ secret: ['keyboard cat', 'old cat'], resave: false, saveUninitialized: false }));
const text = (res, s) => res.type('text/plain').send(String(s));
for (const base of ['', '/r']) {
  app.get(`${base}/peek`, (req, res) => text(res, req.session.views || 0));
  app.get(`${base}/inc`, (req, res) => {
    req.session.views = (req.session.views || 0) + 1;
    text(res, req.session.views);
  });
  app.post(`${base}/login`, (req, res, next) => req.session.regenerate((err) => {
    if (err) return next(err);
    req.session.user = 'ada';
    text(res, 'ok');
  }));
  app.post(`${base}/logout`, (req, res, next) => req.session.destroy((err) => (err ? next(err) : text(res, 'bye'))));
  app.get(`${base}/me`, (req, res) => text(res, req.session.user || 'anon'));
}
const server = app.listen(0, '127.0.0.1', () => console.log(server.address().port));

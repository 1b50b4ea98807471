// The Express 5 twin of the oneloop app in tests/app_cookies_diff.rs: cookie-parser with two
// secrets (the first signs), Express's res.cookie, and cookie-signature for test fixtures.
// Prints its port, then serves until killed.
'use strict';
const express = require('express');
const cookieParser = require('cookie-parser');
const signature = require('cookie-signature');

const app = express();
app.disable('x-powered-by');
app.set('etag', false);
app.get('/nosecret/read', cookieParser(), (req, res) =>
  res.json({ cookies: req.cookies, signed: req.signedCookies }));
app.use(cookieParser(['new secret', 'old secret']));
app.get('/read', (req, res) => res.json({ cookies: req.cookies, signed: req.signedCookies }));
// A fixture: `s:` + cookie-signature's sign(v, secret), signed by the real package.
app.get('/sign', (req, res) => res.type('text/plain').send('s:' + signature.sign(req.query.v, req.query.secret)));
app.get('/set', (req, res) => {
  res.cookie('plain', 'v w;x\u20ac');
  res.cookie('s', 'ada', {
    signed: true, httpOnly: true, secure: true, sameSite: 'lax', maxAge: 60000,
    domain: 'example.com', path: '/app', partitioned: true,
  });
  res.cookie('strict', 'x', { sameSite: 'strict', expires: new Date(Date.UTC(2030, 0, 2, 3, 4, 5)) });
  res.cookie('none', 'y', { sameSite: 'none', secure: true });
  res.type('text/plain').send('ok');
});
const server = app.listen(0, '127.0.0.1', () => console.log(server.address().port));

// The Express 5 twin of the oneloop app in tests/app_security_diff.rs: the real `cors` and
// `helmet` packages under the same paths and options. Prints its port, then serves until killed.
'use strict';
const express = require('express');
const cors = require('cors');
const helmet = require('helmet');

const app = express();
app.set('etag', false);
app.disable('x-powered-by'); // oneloop never sends it
app.use('/any', cors());
app.use('/list', cors({
  origin: ['https://a.example', 'https://b.example'],
  credentials: true,
  maxAge: 600,
  exposedHeaders: ['X-Total', 'X-Page'],
  allowedHeaders: ['Content-Type', 'Authorization'],
}));
app.use('/fixed', cors({ origin: 'https://fixed.example', methods: ['GET', 'POST'] }));
app.use('/reflect', cors({ origin: true, credentials: true }));
app.use('/pattern', cors({ origin: /\.trusted\.example$/ }));
app.use('/cont', cors({ preflightContinue: true, optionsSuccessStatus: 200 }));
app.use('/helmet', helmet());
app.use('/helmet2', helmet({
  contentSecurityPolicy: { directives: { scriptSrc: ["'self'", 'https://cdn.example'], upgradeInsecureRequests: null } },
  crossOriginEmbedderPolicy: true,
  frameguard: { action: 'deny' },
  strictTransportSecurity: { maxAge: 100, preload: true },
  referrerPolicy: { policy: ['origin', 'unsafe-url'] },
  xDnsPrefetchControl: { allow: true },
  xXssProtection: false,
}));
for (const p of ['any', 'list', 'fixed', 'reflect', 'pattern', 'cont', 'helmet', 'helmet2']) {
  app.all(`/${p}/x`, (req, res) => res.type('text/plain').send('ok'));
}
const server = app.listen(0, '127.0.0.1', () => console.log(server.address().port));

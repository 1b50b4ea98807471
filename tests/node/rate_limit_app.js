// The Express 5 twin of the oneloop app in tests/app_rate_limit_diff.rs: express-rate-limit 8
// under four paths, behind one trusted proxy hop. Prints its port, then serves until killed.
'use strict';
const express = require('express');
const { rateLimit } = require('express-rate-limit');

const app = express();
app.disable('x-powered-by');
app.set('etag', false);
app.set('trust proxy', 1);
app.use('/a', rateLimit({ windowMs: 60000, limit: 3 }));
app.use('/b', rateLimit({ windowMs: 60000, limit: 2, standardHeaders: 'draft-6', legacyHeaders: false }));
app.use('/c', rateLimit({ windowMs: 30000, limit: 1, standardHeaders: 'draft-7' }));
app.use('/k', rateLimit({ windowMs: 60000, limit: 2, keyGenerator: (req) => req.get('x-api-key') || '' }));
for (const p of ['a', 'b', 'c', 'k']) app.get(`/${p}`, (req, res) => res.type('text/plain').send('ok'));
const server = app.listen(0, '127.0.0.1', () => console.log(server.address().port));

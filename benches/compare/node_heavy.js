'use strict';
// The CPU-heavy row's Node server (examples/heavy.rs's routes): ~5 ms of PBKDF2-SHA256 per
// request, either with crypto.pbkdf2Sync in the request handler (/heavy-blocking: the event loop
// is blocked meanwhile) or with crypto.pbkdf2 (/heavy-pool: libuv's thread pool, 4 threads or
// UV_THREADPOOL_SIZE); GET / and /plaintext answer "Hello, World!". The iteration count is
// calibrated at start-up to HEAVY_MS (5) ms, fastest of 15 trials, or HEAVY_ITERS if set.
// PORT (3000) and HOST (127.0.0.1) from env. Prints one ready line.
const http = require('node:http');
const crypto = require('node:crypto');

const HELLO = Buffer.from('Hello, World!');
const MS = Number(process.env.HEAVY_MS || 5);

function calibrate() {
  let best = Infinity;
  for (let i = 0; i < 15; i++) {
    const t = process.hrtime.bigint();
    crypto.pbkdf2Sync('password', 'salt', 1000, 32, 'sha256');
    best = Math.min(best, Number(process.hrtime.bigint() - t) / 1e6);
  }
  return Math.max(1, Math.round((MS / best) * 1000));
}
const ITERS = Number(process.env.HEAVY_ITERS || 0) || calibrate();

function handler(req, res) {
  const q = req.url.indexOf('?');
  const path = q === -1 ? req.url : req.url.slice(0, q);
  if (path === '/heavy-blocking') {
    const key = crypto.pbkdf2Sync('password', 'salt', ITERS, 32, 'sha256');
    res.setHeader('content-type', 'text/plain');
    res.end(key.toString('hex'));
  } else if (path === '/heavy-pool') {
    crypto.pbkdf2('password', 'salt', ITERS, 32, 'sha256', (err, key) => {
      if (err) {
        res.statusCode = 500;
        res.end(String(err));
        return;
      }
      res.setHeader('content-type', 'text/plain');
      res.end(key.toString('hex'));
    });
  } else if (path === '/' || path === '/plaintext') {
    res.setHeader('content-type', 'text/plain');
    res.end(HELLO);
  } else {
    res.statusCode = 404;
    res.setHeader('content-type', 'text/plain');
    res.end('Not Found');
  }
}

const port = Number(process.env.PORT || 3000);
const host = process.env.HOST || '127.0.0.1';
const t = process.hrtime.bigint();
crypto.pbkdf2Sync('password', 'salt', ITERS, 32, 'sha256');
const once = Number(process.hrtime.bigint() - t) / 1e6;
http.createServer(handler).listen(port, host, () => {
  console.log(`node_heavy: ready on http://${host}:${port} (${ITERS} PBKDF2-SHA256 iterations, ${once.toFixed(1)} ms)`);
});

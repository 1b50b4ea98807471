'use strict';
// Node's http module serving the same bytes as examples/hello.rs:
// GET / and /plaintext -> "Hello, World!" text/plain; GET /json -> {"message":"Hello, World!"};
// POST /echo -> the body (16 MiB limit, 413 above); anything else -> 404 "Not Found" text/plain.
// PORT from env (default 3000). Prints one ready line. Also used by node_cluster.js workers.
const http = require('node:http');

const HELLO = Buffer.from('Hello, World!');
const JSON_BODY = Buffer.from('{"message":"Hello, World!"}');
const ECHO_LIMIT = 16 * 1024 * 1024;

function handler(req, res) {
  const q = req.url.indexOf('?');
  const path = q === -1 ? req.url : req.url.slice(0, q);
  const get = req.method === 'GET' || req.method === 'HEAD';
  if (get && (path === '/' || path === '/plaintext')) {
    res.setHeader('content-type', 'text/plain');
    res.end(HELLO);
  } else if (get && path === '/json') {
    res.setHeader('content-type', 'application/json');
    res.end(JSON_BODY);
  } else if (req.method === 'POST' && path === '/echo') {
    const chunks = [];
    let size = 0;
    let tooBig = false;
    req.on('data', (c) => {
      size += c.length;
      if (size > ECHO_LIMIT) tooBig = true;
      else chunks.push(c);
    });
    req.on('end', () => {
      if (tooBig) {
        res.statusCode = 413;
        res.end('body too large');
        return;
      }
      const ct = req.headers['content-type'];
      if (ct !== undefined) res.setHeader('content-type', ct);
      res.end(Buffer.concat(chunks, size));
    });
  } else {
    res.statusCode = 404;
    res.setHeader('content-type', 'text/plain');
    res.end('Not Found');
  }
}

function start(label) {
  const port = Number(process.env.PORT || 3000);
  const server = http.createServer(handler);
  server.listen(port, process.env.HOST || '127.0.0.1', () => {
    console.log(`${label}: ready on http://${process.env.HOST || '127.0.0.1'}:${port} (pid ${process.pid})`);
  });
  return server;
}

module.exports = { handler, start };

if (require.main === module) start('node_http');

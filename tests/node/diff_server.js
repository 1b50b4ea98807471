// The Node side of tests/http_node_diff.rs: Node's own `http` server with the routes of
// tests/http_common/mod.rs `route`, default options. Prints its port on stdout, one line.
// Run: node tests/node/diff_server.js
'use strict';
const http = require('http');

const server = http.createServer((req, res) => {
  const path = new URL(req.url, 'http://x').pathname;
  if (req.url.startsWith('http://') || req.url === '*') {
    // absolute-form / asterisk-form: route on the path as oneloop does
  }
  if (path === '/echo') {
    const chunks = [];
    let size = 0;
    req.on('data', (c) => { size += c.length; if (size <= 1 << 20) chunks.push(c); });
    req.on('end', () => {
      if (size > 1 << 20) { res.statusCode = 413; res.end('too large'); return; }
      const body = Buffer.concat(chunks);
      res.setHeader('content-length', body.length);
      res.end(body);
    });
  } else if (path.startsWith('/n/')) {
    res.end(path.slice(3));
  } else if (path.startsWith('/slow/')) {
    setTimeout(() => res.end(path.slice(6)), 50);
  } else if (path === '/chunked') {
    res.write('a');
    res.write('b');
    res.addTrailers({ 'x-t': '1' });
    res.end('c');
  } else if (path.startsWith('/status/')) {
    res.statusCode = Number(path.slice(8)) || 500;
    res.end('x');
  } else if (path.startsWith('/big/')) {
    res.end('x'.repeat(Number(path.slice(5)) || 0));
  } else if (path === '/close') {
    res.setHeader('connection', 'close');
    res.end('bye');
  } else {
    res.end('Hello, World!');
  }
});

server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`${server.address().port}\n`);
});
// Exit when the test process closes our stdin (or dies).
process.stdin.on('end', () => process.exit(0));
process.stdin.on('error', () => process.exit(0));
process.stdin.resume();

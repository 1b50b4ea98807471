// The Node side of tests/http_client.rs `client_receives_exact_bytes_from_a_node_server`:
// Node's own `http` server sending the same 1000 bytes two ways. Prints its port on stdout,
// one line. Run: node tests/http_client_node.js
'use strict';
const http = require('http');

// 0..=255 repeated, 1000 bytes: every byte value, so nothing is lost to text decoding.
const body = Buffer.alloc(1000);
for (let i = 0; i < body.length; i++) body[i] = i % 256;
const sum = body.reduce((a, b) => a + b, 0);

const server = http.createServer((req, res) => {
  if (req.url === '/chunked') {
    // No Content-Length and several writes: Node frames the body as chunked.
    res.setHeader('x-route', 'chunked');
    res.setHeader('trailer', 'X-Checksum');
    res.write(body.subarray(0, 1));
    res.write(body.subarray(1, 300));
    res.write(body.subarray(300, 1000));
    res.addTrailers({ 'X-Checksum': `sum-${sum}` });
    res.end();
  } else if (req.url === '/length') {
    res.setHeader('x-route', 'length');
    res.setHeader('content-length', body.length);
    res.end(body);
  } else {
    res.statusCode = 404;
    res.end();
  }
});

server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`${server.address().port}\n`);
});

'use strict';
// Express 5 serving the same bytes as examples/hello.rs (see node_http.js for the routes).
// x-powered-by and ETag are turned off and Content-Type is set with Node's setHeader (Express's
// res.set would append '; charset=utf-8') so the bytes match the other servers; bodies
// go through Express's routing and res.send. PORT from env (default 3000). Prints one ready line.
const express = require('express');

const HELLO = Buffer.from('Hello, World!');
const JSON_BODY = Buffer.from('{"message":"Hello, World!"}');

const app = express();
app.disable('x-powered-by');
app.set('etag', false);

const plaintext = (req, res) => {
  res.setHeader('content-type', 'text/plain');
  res.send(HELLO);
};
app.get('/', plaintext);
app.get('/plaintext', plaintext);
app.get('/json', (req, res) => {
  res.setHeader('content-type', 'application/json');
  res.send(JSON_BODY);
});
app.post('/echo', express.raw({ type: () => true, limit: '16mb' }), (req, res) => {
  const ct = req.get('content-type');
  if (ct !== undefined) res.setHeader('content-type', ct);
  res.send(Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0));
});
app.use((req, res) => {
  res.status(404);
  res.setHeader('content-type', 'text/plain');
  res.send(Buffer.from('Not Found'));
});

const port = Number(process.env.PORT || 3000);
const host = process.env.HOST || '127.0.0.1';
app.listen(port, host, () => {
  console.log(`express: ready on http://${host}:${port} (pid ${process.pid})`);
});

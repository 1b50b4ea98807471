// The Express 5 twin of the oneloop app in tests/app_compression_diff.rs: the real
// `compression` package (1.8) with its defaults in front of the same routes. Prints its port,
// then serves until killed.
'use strict';
const fs = require('fs');
const os = require('os');
const path = require('path');
const express = require('express');
const compression = require('compression');

// The same text as `text` in the Rust test.
function text(len) {
  let s = '';
  for (let i = 0; s.length < len; i++) s += `line ${i} value ${(i * 2654435761) % 9973} `;
  return s.slice(0, len);
}

// One fixed file (the twin is killed, so it could not clean up a per-run one), replaced
// atomically so concurrent runs never read a half-written file.
const file = path.join(os.tmpdir(), 'oneloop-compression-twin.txt');
const tmp = `${file}.${process.pid}`;
fs.writeFileSync(tmp, text(200 * 1024));
fs.renameSync(tmp, file);

const app = express();
app.disable('x-powered-by');
app.use(compression());
app.get('/text', (req, res) => res.type('text/plain').send(text(5000)));
app.get('/json', (req, res) => res.json(Array.from({ length: 300 }, (_, i) => `item-${i}`)));
app.get('/small', (req, res) => res.type('text/plain').send(text(1023)));
app.get('/exact', (req, res) => res.type('text/plain').send(text(1024)));
app.get('/html', (req, res) => res.send(text(3000)));
app.get('/no-transform', (req, res) => {
  res.set('Cache-Control', 'public, no-transform');
  res.type('text/plain').send(text(5000));
});
app.get('/encoded', (req, res) => {
  res.set('Content-Encoding', 'x-custom');
  res.type('text/plain').send(text(5000));
});
app.get('/png', (req, res) => res.type('png').send(Buffer.from(text(5000))));
app.get('/bytes', (req, res) => res.send(Buffer.from(text(5000))));
app.get('/vary', (req, res) => {
  res.set('Vary', 'Origin');
  res.type('text/plain').send(text(5000));
});
app.get('/no-content', (req, res) => res.status(204).end());
app.get('/stream', (req, res) => {
  res.type('text/plain');
  const t = text(50000);
  for (let i = 0; i < t.length; i += 4096) res.write(t.slice(i, i + 4096));
  res.end();
});
app.get('/stream-small', (req, res) => {
  res.type('text/plain');
  res.write('tiny');
  res.end();
});
app.get('/file', (req, res) => res.sendFile(file));
const server = app.listen(0, '127.0.0.1', () => console.log(server.address().port));

'use strict';
// Node's https module serving GET / and /plaintext -> "Hello, World!" (as examples/hello.rs).
// node node_https.js CERT.pem KEY.pem; PORT from env (default 3443). Prints one ready line.
const https = require('node:https');
const fs = require('node:fs');

const HELLO = Buffer.from('Hello, World!');
const server = https.createServer(
  { cert: fs.readFileSync(process.argv[2]), key: fs.readFileSync(process.argv[3]) },
  (req, res) => {
    res.setHeader('content-type', 'text/plain');
    res.end(HELLO);
  },
);
server.listen(Number(process.env.PORT || 3443), '127.0.0.1', () => console.log('node https ready'));

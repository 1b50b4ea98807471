// The Express 5 + compression 1.8.2 twin of examples/compression.rs's `/p/json` and `/c/json`
// routes (the same 176-product list). Uses the packages pinned in tests/node (installed by
// ./test.sh): `NODE_PATH=tests/node/node_modules PORT=3918 node benches/compare/compression_express.js`.
'use strict';
const express = require('express');
const compression = require('compression');

const products = Array.from({ length: 176 }, (_, i) => ({
  id: i, name: `product ${i}`, price: (i * 7) % 100, tags: ['a', 'b'],
}));
const list = { products };
const app = express();
app.disable('x-powered-by');
app.use('/c', compression());
app.get('/c/json', (req, res) => res.json(list));
app.get('/p/json', (req, res) => res.json(list));
const port = Number(process.env.PORT || 3000);
app.listen(port, '127.0.0.1', () => console.log(`compression_express: listening on port ${port}`));

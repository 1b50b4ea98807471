// find-my-way (Fastify's router) on the same 100-route table and lookups as benches/router.rs.
//   node benches/node/router_bench.js        (uses benches/compare/node_modules: run npm ci there)
'use strict';
const path = require('path');
const FindMyWay = require(path.join(__dirname, '../compare/node_modules/find-my-way'));

const router = FindMyWay();
const noop = () => {};
let n = 0;
const add = (m, p) => { router.on(m, p, noop); n++; };
for (const res of ['users', 'products', 'orders', 'carts', 'invoices', 'reviews', 'stores',
  'teams', 'projects', 'tickets']) {
  add('GET', `/api/${res}`);
  add('POST', `/api/${res}`);
  add('GET', `/api/${res}/search`);
  add('GET', `/api/${res}/stats`);
  add('GET', `/admin/${res}/export`);
  add('GET', `/api/${res}/:id`);
  add('PUT', `/api/${res}/:id`);
  add('GET', `/api/${res}/:id/items/:itemId`);
  add('DELETE', `/api/${res}/:id/items/:itemId`);
  add('GET', `/files/${res}/*`);
}
if (n !== 100) throw new Error(`expected 100 routes, got ${n}`);

const cases = [
  ['static_hit', '/api/products/search'],
  ['two_param_hit', '/api/orders/12345/items/678'],
  ['wildcard_hit', '/files/tickets/2024/03/report.pdf'],
  ['miss', '/api/nothing/here'],
];
const ITER = 2_000_000;
let sink = 0;
for (const [name, p] of cases) {
  const found = router.find('GET', p);
  if ((name === 'miss') !== (found === null)) throw new Error(`unexpected result for ${p}`);
  for (let i = 0; i < 200_000; i++) { const r = router.find('GET', p); if (r) sink++; } // warm-up
  const samples = [];
  for (let s = 0; s < 5; s++) {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < ITER; i++) { const r = router.find('GET', p); if (r) sink += r.params ? 1 : 0; }
    samples.push(Number(process.hrtime.bigint() - t0) / ITER);
  }
  samples.sort((a, b) => a - b);
  console.log(`${name.padEnd(14)} ${samples[2].toFixed(1)} ns/lookup (median of 5 x ${ITER})`);
}
if (sink === -1) console.log(sink);

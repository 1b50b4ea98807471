// examples/shop.rs's Fastify 5 twin: the same routes and answers with Fastify's own plugins.
// `PORT=3000 node app.js`. tests/shop_example.rs runs the shop scenario against it too.
'use strict';
const path = require('path');
const os = require('os');
const fs = require('fs');
const { pipeline } = require('stream/promises');
const crypto = require('crypto');
const fastify = require('fastify')({ logger: process.env.SHOP_LOG === '1' });

const USERS = [['ada', 'lovelace', 'tok-ada'], ['alan', 'turing', 'tok-alan']];
const db = { products: new Map(), orders: [] };
const uploads = path.join(os.tmpdir(), 'shop-uploads');
fs.mkdirSync(uploads, { recursive: true });

function httpError(statusCode, message) {
  return Object.assign(new Error(message), { statusCode });
}
async function requireUser(req) {
  if (!req.user) throw httpError(401, 'log in first');
}

fastify.register(require('@fastify/helmet'));
fastify.register(require('@fastify/cors'), { origin: ['http://localhost:5173'], credentials: true });
fastify.register(require('@fastify/cookie'));
fastify.register(require('@fastify/session'), {
  secret: 'shop secret shop secret shop secret!', saveUninitialized: false,
  cookieName: 'connect.sid', cookie: { secure: false, sameSite: 'lax' },
});
fastify.register(require('@fastify/multipart'), { limits: { fileSize: 5 << 20, files: 1 } });
fastify.register(require('@fastify/rate-limit'), { global: false });
fastify.register(require('@fastify/static'), {
  root: process.env.SHOP_PUBLIC || path.join(__dirname, '../../../examples/shop_public'),
});
fastify.decorateRequest('user', null);
fastify.addHook('preHandler', async (req) => {
  const token = (req.headers.authorization || '').replace(/^Bearer /, '');
  req.user = req.session.get('user') || USERS.find((u) => u[2] === token)?.[0] || null;
});
fastify.setErrorHandler((err, req, reply) => {
  const status = err.statusCode || 500;
  reply.status(status).send({ error: status < 500 ? err.message : 'internal error' });
});

fastify.register(async (app) => {
  app.post('/api/login', {
    config: { rateLimit: { max: 5, timeWindow: 15 * 60 * 1000, errorResponseBuilder: (req, ctx) => httpError(429, `Too many requests, please try again later.`) } },
  }, async (req) => {
    const { user, password } = req.body || {};
    const u = USERS.find((x) => x[0] === user && x[1] === password);
    if (!u) throw httpError(401, 'bad credentials');
    await req.session.regenerate();
    req.session.set('user', u[0]);
    return { user: u[0], token: u[2] };
  });
  app.post('/api/logout', async (req, reply) => {
    await req.session.destroy();
    reply.status(204).send();
  });
  app.get('/api/products', async () => [...db.products.values()]);
  app.get('/api/products/:id', async (req) => {
    const p = db.products.get(Number(req.params.id));
    if (!p) throw httpError(404, 'no such product');
    return p;
  });
  app.post('/api/products', { preHandler: requireUser }, async (req, reply) => {
    const { name, price } = req.body || {};
    if (typeof name !== 'string' || !name || name.length > 100 || typeof price !== 'number' || !(price >= 0)) {
      throw httpError(400, 'name (1-100 chars) and price (>= 0) are required');
    }
    const product = { id: db.products.size + 1, name, price, image: null };
    db.products.set(product.id, product);
    reply.status(201).send(product);
  });
  app.post('/api/images/:id', { preHandler: requireUser }, async (req) => {
    const file = await req.file();
    if (!file || file.fieldname !== 'image') throw httpError(400, 'no image');
    const dest = path.join(uploads, crypto.randomBytes(16).toString('hex'));
    await pipeline(file.file, fs.createWriteStream(dest));
    const p = db.products.get(Number(req.params.id));
    if (!p) throw httpError(404, 'no such product');
    p.image = dest;
    return p;
  });
  app.post('/api/orders', { preHandler: requireUser }, async (req, reply) => {
    const items = req.body?.items;
    if (!Array.isArray(items)) throw httpError(400, 'items are required');
    let total = 0;
    for (const { product_id: id, quantity } of items) {
      const p = db.products.get(id);
      if (!p) throw httpError(400, 'unknown product');
      total += p.price * quantity;
    }
    if (!items.length || items.some((i) => !Number.isInteger(i.quantity) || i.quantity < 1)) {
      throw httpError(400, 'items, each with a quantity of at least 1, are required');
    }
    const order = { id: db.orders.length + 1, user: req.user, total, items: items.length };
    db.orders.push(order);
    reply.status(201).send(order);
  });
  app.get('/api/orders', { preHandler: requireUser }, async (req) => db.orders.filter((o) => o.user === req.user));
});

fastify.listen({ port: Number(process.env.PORT || 3000), host: process.env.HOST || '127.0.0.1' }).then((addr) => {
  console.log(`shop listening on ${addr}`);
});

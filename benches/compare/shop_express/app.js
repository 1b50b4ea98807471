// examples/shop.rs's Express 5 twin: the same routes, middleware and answers, written the way an
// Express developer would, with the usual packages. `PORT=3000 node app.js`.
'use strict';
const path = require('path');
const os = require('os');
const express = require('express');
const helmet = require('helmet');
const cors = require('cors');
const session = require('express-session');
const multer = require('multer');
const { rateLimit } = require('express-rate-limit');

const USERS = [['ada', 'lovelace', 'tok-ada'], ['alan', 'turing', 'tok-alan']];
const db = { products: new Map(), orders: [] };
const upload = multer({ dest: path.join(os.tmpdir(), 'shop-uploads'), limits: { fileSize: 5 << 20, files: 1 } });

function httpError(status, message) {
  return Object.assign(new Error(message), { status, expose: true });
}

function requireUser(req, res, next) {
  next(req.user ? undefined : httpError(401, 'log in first'));
}

const app = express();
app.use(helmet());
app.use(cors({ origin: ['http://localhost:5173'], credentials: true }));
app.use(express.json());
app.use(session({ secret: 'shop secret', resave: false, saveUninitialized: false, cookie: { sameSite: 'lax' } }));
app.use(express.static(process.env.SHOP_PUBLIC || path.join(__dirname, '../../../examples/shop_public')));
app.use((req, res, next) => {
  const token = (req.get('authorization') || '').replace(/^Bearer /, '');
  req.user = req.session.user || USERS.find((u) => u[2] === token)?.[0];
  next();
});

const loginLimit = rateLimit({ windowMs: 15 * 60 * 1000, limit: 5, handler: (req, res, next, o) => next(httpError(429, o.message)) });
app.post('/api/login', loginLimit, (req, res, next) => {
  const { user, password } = req.body || {};
  const u = USERS.find((x) => x[0] === user && x[1] === password);
  if (!u) return next(httpError(401, 'bad credentials'));
  req.session.regenerate((err) => {
    if (err) return next(err);
    req.session.user = u[0];
    res.json({ user: u[0], token: u[2] });
  });
});
app.post('/api/logout', (req, res) => req.session.destroy(() => res.sendStatus(204)));

app.get('/api/products', (req, res) => res.json([...db.products.values()]));
app.get('/api/products/:id', (req, res, next) => {
  const p = db.products.get(Number(req.params.id));
  if (!p) return next(httpError(404, 'no such product'));
  res.json(p);
});
app.post('/api/products', requireUser, (req, res, next) => {
  const { name, price } = req.body || {};
  if (typeof name !== 'string' || !name || name.length > 100 || typeof price !== 'number' || !(price >= 0)) {
    return next(httpError(400, 'name (1-100 chars) and price (>= 0) are required'));
  }
  const product = { id: db.products.size + 1, name, price, image: null };
  db.products.set(product.id, product);
  res.status(201).json(product);
});
app.post('/api/images/:id', requireUser, upload.single('image'), (req, res, next) => {
  const p = db.products.get(Number(req.params.id));
  if (!req.file) return next(httpError(400, 'no image'));
  if (!p) return next(httpError(404, 'no such product'));
  p.image = req.file.path;
  res.json(p);
});

app.post('/api/orders', requireUser, (req, res, next) => {
  const items = req.body?.items;
  if (!Array.isArray(items)) return next(httpError(400, 'items are required'));
  let total = 0;
  for (const { product_id: id, quantity } of items) {
    const p = db.products.get(id);
    if (!p) return next(httpError(400, 'unknown product'));
    total += p.price * quantity;
  }
  if (!items.length || items.some((i) => !Number.isInteger(i.quantity) || i.quantity < 1)) {
    return next(httpError(400, 'items, each with a quantity of at least 1, are required'));
  }
  const order = { id: db.orders.length + 1, user: req.user, total, items: items.length };
  db.orders.push(order);
  res.status(201).json(order);
});
app.get('/api/orders', requireUser, (req, res) => res.json(db.orders.filter((o) => o.user === req.user)));

app.use((err, req, res, next) => {
  const status = err.status || err.statusCode || 500;
  res.status(status).json({ error: status < 500 && err.expose !== false ? err.message : 'internal error' });
});

const server = app.listen(Number(process.env.PORT || 3000), process.env.HOST || '127.0.0.1', () => {
  console.log(`shop listening on http://${server.address().address}:${server.address().port}`);
});

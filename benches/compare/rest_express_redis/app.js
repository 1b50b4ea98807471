// examples/rest_api.rs --redis's Express 5 + ioredis twin for benches/rest_redis.sh: products
// as JSON at product:<id> in Redis, GETs cache-aside in Redis (ecache:<url>, 5 s, X-Cache
// HIT/MISS), ioredis with enableAutoPipelining. Usage: node app.js REDIS_URL PORT
'use strict';
const express = require('express');
const Redis = require('ioredis');

const redis = new Redis(process.argv[2], { enableAutoPipelining: true });
const app = express();
app.disable('x-powered-by');
app.use(express.json());

// The cache middleware: a hit answers from Redis, a miss runs the route and stores a 200.
app.use('/api/products', async (req, res, next) => {
  if (req.method !== 'GET') return next();
  const key = `ecache:${req.originalUrl}`;
  let hit;
  try { hit = await redis.get(key); } catch { hit = null; }
  if (hit) {
    res.set('x-cache', 'HIT').type('application/json').send(hit);
    return;
  }
  res.set('x-cache', 'MISS');
  const send = res.send.bind(res);
  res.send = (body) => {
    if (res.statusCode === 200) redis.set(key, body, 'PX', 5000).catch(() => {});
    return send(body);
  };
  next();
});
app.get('/api/products/:id', async (req, res, next) => {
  try {
    const json = await redis.get(`product:${Number(req.params.id)}`);
    if (!json) return res.status(404).json({ statusCode: 404, error: 'Not Found', message: 'no such product' });
    res.type('application/json').send(json);
  } catch (e) { next(e); }
});
app.post('/api/products', async (req, res, next) => {
  try {
    const id = await redis.incr('product:next_id');
    const product = { id, name: req.body.name, price: req.body.price };
    await redis.set(`product:${id}`, JSON.stringify(product));
    await redis.zadd('products', id, String(id));
    res.status(201).json(product);
  } catch (e) { next(e); }
});
const server = app.listen(Number(process.argv[3]), '127.0.0.1', () => console.log(`listening on ${server.address().port}`));

// The app-layer row on Express 5: one middleware, a table of 20 REST routes, the contract routes.
'use strict';
const express = require('express');
const app = express();
app.use((req, res, next) => { res.set('x-app', 'express'); next(); });
for (const r of ['users', 'products', 'orders', 'carts', 'reviews']) {
  app.get(`/api/${r}`, (req, res) => res.json([]));
  app.post(`/api/${r}`, (req, res) => res.status(201).end());
  app.get(`/api/${r}/:id`, (req, res) => res.json({ id: req.params.id }));
  app.delete(`/api/${r}/:id`, (req, res) => res.status(204).end());
}
const hello = (req, res) => res.type('text/plain').send('Hello, World!');
app.get('/', hello);
app.get('/plaintext', hello);
app.get('/json', (req, res) => res.json({ message: 'Hello, World!' }));
const port = Number(process.env.PORT || 3000);
app.listen(port, '127.0.0.1', () => console.log(`express_app: listening on ${port}`));

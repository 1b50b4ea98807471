// The Express 5 twin of the oneloop app in tests/app_multipart_diff.rs: multer's upload.any()
// with the same limits; answers the parsed form as JSON, or the error's multer code.
// Prints its port, then serves until killed.
'use strict';
const os = require('os');
const path = require('path');
const express = require('express');
const multer = require('multer');

const upload = multer({
  dest: path.join(os.tmpdir(), 'oneloop-multer-twin'),
  limits: { fileSize: 100000, files: 2, fieldSize: 1000 },
});
const app = express();
app.post('/upload', upload.any(), (req, res) => res.json({
  fields: Object.entries(req.body).flatMap(([k, v]) => (Array.isArray(v) ? v : [v]).map((x) => [k, x])),
  files: req.files.map((f) => ({ field: f.fieldname, name: f.originalname, type: f.mimetype, size: f.size })),
}));
app.use((err, req, res, next) => res.status(err.code && err.code.startsWith('LIMIT_') ? 413 : 400).json({ error: err.code || err.message }));
const server = app.listen(0, '127.0.0.1', () => console.log(server.address().port));

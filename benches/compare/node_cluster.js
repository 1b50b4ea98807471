'use strict';
// node_http.js behind Node's cluster module: a primary and WORKERS (default 2) workers sharing
// the port (default scheduling policy: SCHED_RR, the primary accepts and hands connections out
// round-robin). PORT from env. The primary prints the ready line once every worker listens.
const cluster = require('node:cluster');

const WORKERS = Number(process.env.WORKERS || 2);

if (cluster.isPrimary) {
  let listening = 0;
  for (let i = 0; i < WORKERS; i++) cluster.fork();
  cluster.on('listening', () => {
    listening += 1;
    if (listening === WORKERS) {
      const port = Number(process.env.PORT || 3000);
      console.log(`node_cluster: ready on http://${process.env.HOST || '127.0.0.1'}:${port} (${WORKERS} workers, primary pid ${process.pid})`);
    }
  });
  cluster.on('exit', (worker, code, signal) => {
    console.error(`node_cluster: worker ${worker.process.pid} exited (${signal || code})`);
  });
  const stop = () => {
    for (const id in cluster.workers) cluster.workers[id].process.kill('SIGTERM');
    process.exit(0);
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
} else {
  const http = require('node:http');
  const { handler } = require('./node_http.js');
  http.createServer(handler).listen(Number(process.env.PORT || 3000), process.env.HOST || '127.0.0.1');
}

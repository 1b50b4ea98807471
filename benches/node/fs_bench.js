// Node's side of runtime/benches/fs.rs: `taskset -c 0 node benches/node/fs_bench.js`.
//
// fs.readFile of a 4 KiB file, BATCH reads a round, one at a time (each callback starts the
// next) or with 64 in flight; per-read time = round time / BATCH; the median of ROUNDS rounds.
// Node's default pool: UV_THREADPOOL_SIZE 4, as the Rust side.
'use strict';
const fs = require('fs');
const os = require('os');
const path = require('path');

const BATCH = 2000;
const ROUNDS = 15;
const IN_FLIGHT = 64;

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'oneloop-fs-bench-'));
const file = path.join(dir, '4k.bin');
fs.writeFileSync(file, Buffer.alloc(4096, 'x'));

function round(chains) {
  return new Promise((resolve) => {
    let left = BATCH;
    let running = chains;
    const t0 = process.hrtime.bigint();
    const chain = () => {
      if (left === 0) {
        if (--running === 0) resolve(Number(process.hrtime.bigint() - t0) / BATCH);
        return;
      }
      left--;
      fs.readFile(file, (err, data) => {
        if (err || data.length !== 4096) throw err || new Error('short read');
        chain();
      });
    };
    for (let i = 0; i < chains; i++) chain();
  });
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

(async () => {
  for (const [name, chains] of [['sequential', 1], ['64 in flight', IN_FLIGHT]]) {
    await round(chains); // warm-up
    const runs = [];
    for (let i = 0; i < ROUNDS; i++) runs.push(await round(chains));
    console.log(
      `node fs.readFile 4 KiB, ${name.padEnd(13)} ${median(runs).toFixed(0).padStart(8)} ns/read (median of ${ROUNDS} rounds of ${BATCH})`
    );
  }
  fs.rmSync(dir, { recursive: true });
})();

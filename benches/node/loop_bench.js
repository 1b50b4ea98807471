// Node's side of runtime/benches/loop.rs: `taskset -c 1 node benches/node/loop_bench.js`.
//
// Same operations, same method: batches of 10,000 (arm N, let the loop run them), the per-op
// time is the batch time / N; each benchmark runs ROUNDS batches-of-batches and reports the
// median. Timers: the 2 ms wait that makes the 1 ms timers due is subtracted, as the Rust bench
// leaves it untimed. Thread-pool round trip: sequential crypto.randomFill of 1 byte (the
// lightest libuv uv_queue_work op reachable without fs; compared with pbkdf2/1 iteration below).
'use strict';
const crypto = require('crypto');

const BATCH = 10_000;
const ROUNDS = 15;
const now = () => process.hrtime.bigint();
const noop = () => {};

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

// Runs `batch(done)` ROUNDS times (each calls done(ns, ops)), then resolves the median ns/op.
function measure(batch) {
  return new Promise((resolve) => {
    const results = [];
    const next = () => {
      if (results.length === ROUNDS) return resolve(median(results));
      batch((ns, ops) => {
        results.push(Number(ns) / ops);
        setImmediate(next);
      });
    };
    next();
  });
}

function timers(done) {
  // 10 batches per round, so a round is ~100k timers.
  let total = 0n;
  let left = 10;
  const one = () => {
    let fired = 0;
    const t0 = now();
    const last = () => {
      total += now() - t0 - spun;
      if (--left === 0) done(total, 10 * BATCH);
      else setImmediate(one);
    };
    for (let i = 0; i < BATCH - 1; i++) setTimeout(noop, 1);
    setTimeout(last, 1);
    const s0 = now();
    const end = Date.now() + 2;
    while (Date.now() < end);
    const spun = now() - s0;
    void fired;
  };
  one();
}

function immediates(done) {
  let total = 0n;
  let left = 10;
  const one = () => {
    const t0 = now();
    for (let i = 0; i < BATCH - 1; i++) setImmediate(noop);
    setImmediate(() => {
      total += now() - t0;
      if (--left === 0) done(total, 10 * BATCH);
      else setImmediate(one);
    });
  };
  one();
}

function ticks(done) {
  let total = 0n;
  let left = 10;
  const one = () => {
    const t0 = now();
    for (let i = 0; i < BATCH - 1; i++) process.nextTick(noop);
    process.nextTick(() => {
      total += now() - t0;
      if (--left === 0) done(total, 10 * BATCH);
      else setImmediate(one);
    });
  };
  one();
}

function threadpool(op) {
  return (done) => {
    const N = 5_000;
    let n = 0;
    const t0 = now();
    const step = () => {
      if (++n === N) return done(now() - t0, N);
      op(step);
    };
    op(step);
  };
}
const buf = Buffer.alloc(1);
const randomFill = (cb) => crypto.randomFill(buf, cb);
const pbkdf2 = (cb) => crypto.pbkdf2('p', 's', 1, 1, 'sha1', cb);

function emptyIterations(done) {
  // Each immediate queues the next, so each runs in its own loop iteration (the check phase
  // only runs immediates queued before it began): the cost of one iteration plus one immediate.
  const N = 100_000;
  let n = 0;
  const t0 = now();
  const step = () => {
    if (++n === N) return done(now() - t0, N);
    setImmediate(step);
  };
  setImmediate(step);
}

(async () => {
  const rows = [
    ['timer set+fire', await measure(timers)],
    ['immediate', await measure(immediates)],
    ['next_tick', await measure(ticks)],
    ['queue_work round trip (randomFill 1 B)', await measure(threadpool(randomFill))],
    ['queue_work round trip (pbkdf2 1 iter)', await measure(threadpool(pbkdf2))],
    ['empty iteration (setImmediate chain)', await measure(emptyIterations)],
  ];
  console.log(`node ${process.version}, median of ${ROUNDS} rounds`);
  for (const [name, ns] of rows) console.log(`${name.padEnd(40)} ${ns.toFixed(1).padStart(10)} ns/op`);
})();

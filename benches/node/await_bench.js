// Node's side of runtime/benches/task.rs: `taskset -c 0 node benches/node/await_bench.js`.
// - await_settled: `await p` on a fulfilled promise, N in one async function.
// - spawn_await_once_finish: calling an async function that awaits once and returns, N calls,
//   then waiting until all finished.
// Each runs ROUNDS times after a warm-up; the median ns/op is printed.
'use strict';
const N = 1_000_000;
const ROUNDS = 9;
const now = () => process.hrtime.bigint();
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function awaitSettled(n) {
  const p = Promise.resolve(1);
  let sum = 0;
  const t = now();
  for (let i = 0; i < n; i++) sum += await p;
  const ns = Number(now() - t);
  if (sum !== n) throw new Error('sum');
  return ns / n;
}

async function once(i) { await null; return i; }

// In batches of 10,000 calls (as the Rust bench), so the live set stays small.
async function spawnAwaitOnce(n) {
  const BATCH = 10_000;
  const t = now();
  for (let done = 0; done < n; done += BATCH) {
    let last;
    for (let i = 0; i < BATCH; i++) last = once(i);
    await last;
  }
  return Number(now() - t) / n;
}

(async () => {
  for (const [name, f] of [['await_settled_promise', awaitSettled], ['spawn_await_once_finish', spawnAwaitOnce]]) {
    await f(N); // warm-up (JIT)
    const xs = [];
    for (let r = 0; r < ROUNDS; r++) xs.push(await f(N));
    console.log(`${name}: ${median(xs).toFixed(1)} ns/op (median of ${ROUNDS} x ${N})`);
  }
})();

// Awaits of an already-settled promise by async functions resumed in the microtask drain: alone
// in the queue (each await's resumption is the next job), beside other async functions and
// `.then` chains (resumptions interleave), with a queueMicrotask or a nextTick queued between
// two awaits, and from a timer while the next timer waits; and a fresh async function whose
// first await is of the settled promise.
const log = (s) => console.log(s);
const spin = (ms) => { const end = Date.now() + ms; while (Date.now() < end); };
const p = Promise.resolve(7);
async function f(name, n) {
  await null;
  for (let i = 0; i < n; i++) {
    await p;
    log(`${name}${i}`);
    if (i === 1) process.nextTick(() => log(`${name}.tick`));
    if (i === 2) queueMicrotask(() => log(`${name}.micro`));
  }
  log(`${name} done`);
}
// Its first await runs in the caller's callback, not in the drain: it must still yield.
async function g() {
  await p;
  log('g resumed');
}
f('a', 4);
Promise.resolve().then(() => log('p1')).then(() => log('p2')).then(() => log('p3'));
f('b', 3);
setTimeout(() => {
  log('t1');
  g();
  f('c', 4);
  log('t1 end');
}, 0);
setTimeout(() => log('t2'), 0);
setImmediate(() => log('immediate'));
log('sync');
spin(5);

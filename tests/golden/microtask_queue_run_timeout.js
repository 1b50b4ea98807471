// Port of node/test/parallel/test-microtask-queue-run.js: the same with timeouts: microtasks
// run after the timeout that queued them, and their ticks before the next timeout.
const log = (s) => console.log(s);
setTimeout(() => {
  log('t-1');
  Promise.resolve().then(() => log('micro-1'));
}, 0);
setTimeout(() => {
  log('t-2');
  let called = false;
  Promise.resolve().then(() => {
    log('micro-2');
    process.nextTick(() => { called = true; log('tick-from-micro-2'); });
  });
  setTimeout(() => log('t-3 called=' + called), 0);
}, 0);

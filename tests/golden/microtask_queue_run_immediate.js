// Port of node/test/parallel/test-microtask-queue-run-immediate.js: microtasks queued by an
// immediate run after it, and a tick queued by such a microtask runs before the next immediate.
const log = (s) => console.log(s);
setImmediate(() => {
  log('imm-1');
  Promise.resolve().then(() => log('micro-1'));
});
setImmediate(() => {
  log('imm-2');
  let called = false;
  Promise.resolve().then(() => {
    log('micro-2');
    process.nextTick(() => { called = true; log('tick-from-micro-2'); });
  });
  setImmediate(() => log('imm-3 called=' + called));
});

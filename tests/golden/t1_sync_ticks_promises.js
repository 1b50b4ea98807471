// t1: sync code, next ticks, promises, queueMicrotask, then a timeout and an immediate.
// The timeout/immediate tail races in the main module (see docs/event-loop.md); spinning 5 ms
// before the main module ends makes the 1 ms timer due before the loop starts, so the timers
// phase runs it before the check phase runs the immediate.
const log = (s) => console.log(s);
const spin = (ms) => { const end = Date.now() + ms; while (Date.now() < end); };
log('sync');
setTimeout(() => log('timeout'), 0);
setImmediate(() => log('immediate'));
process.nextTick(() => log('tick1'));
process.nextTick(() => {
  log('tick2');
  process.nextTick(() => log('tick-from-tick'));
  Promise.resolve().then(() => log('promise-from-tick'));
});
Promise.resolve().then(() => {
  log('promise1');
  process.nextTick(() => log('tick-from-promise'));
});
queueMicrotask(() => log('micro2'));
Promise.resolve().then(() => log('promise3'));
spin(5);

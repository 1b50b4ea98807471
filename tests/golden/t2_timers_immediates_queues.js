// t2: two timers and two immediates that schedule promises and ticks; an immediate queued
// inside an immediate runs in the next check phase, so last. Spinning 5 ms makes both timers
// due before the loop starts (otherwise the main-module race applies).
const log = (s) => console.log(s);
const spin = (ms) => { const end = Date.now() + ms; while (Date.now() < end); };
setTimeout(() => {
  log('t1');
  Promise.resolve().then(() => log('t1.promise'));
  process.nextTick(() => log('t1.tick'));
}, 0);
setTimeout(() => {
  log('t2');
  Promise.resolve().then(() => log('t2.promise'));
}, 0);
setImmediate(() => {
  log('i1');
  process.nextTick(() => log('i1.tick'));
  setImmediate(() => log('i3-nested'));
});
setImmediate(() => log('i2'));
spin(5);

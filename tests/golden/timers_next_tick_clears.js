// Port of node/test/parallel/test-timers-next-tick.js: the tick queue runs after each single
// timeout and each single immediate, so a tick can clear the siblings still queued behind it.
const log = (s) => console.log(s);
const spin = (ms) => { const end = Date.now() + ms; while (Date.now() < end); };
setTimeout(() => {
  log('t1');
  process.nextTick(() => { log('tick clears t2 t3'); clearTimeout(t2); clearTimeout(t3); });
}, 1);
const t2 = setTimeout(() => log('t2 (never)'), 1);
const t3 = setTimeout(() => log('t3 (never)'), 1);
setTimeout(() => log('t4'), 1);
spin(5);
setImmediate(() => {
  log('i1');
  process.nextTick(() => { log('tick clears i2 i3'); clearImmediate(i2); clearImmediate(i3); });
});
const i2 = setImmediate(() => log('i2 (never)'));
const i3 = setImmediate(() => log('i3 (never)'));
setImmediate(() => log('i4'));

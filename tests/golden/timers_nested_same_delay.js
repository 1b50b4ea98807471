// Port of node/test/parallel/test-timers-nested.js: a timer armed inside a timer callback with
// the same delay, then made due by a busy loop, waits for the next timers phase (a tick queued
// by the outer callback runs first), for a 1 ms and a 100 ms delay.
const log = (s) => console.log(s);
const spin = (ms) => { const end = Date.now() + ms; while (Date.now() < end); };
for (const delay of [0, 100]) {
  let nested = false;
  setTimeout(() => {
    log('A' + delay);
    setTimeout(() => { nested = true; log('B' + delay); }, delay);
    spin(delay + 2);
    process.nextTick(() => log('tick after A' + delay + ' nested=' + nested));
  }, delay);
}
process.on('exit', () => log('exit'));

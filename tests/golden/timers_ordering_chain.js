// Port of node/test/parallel/test-timers-ordering.js: a chain of 1 ms timers, each armed by the
// previous one, runs in order. (The original also checks each fired >= 1 ms after the previous
// by libuv's loop time, an internal binding; performance.now() is another clock, so only the
// order is compared.)
const log = (s) => console.log(s);
const f = (i) => {
  if (i > 10) return;
  log('timer ' + i);
  setTimeout(f, 1, i + 1);
};
f(1);

// Port of node/test/parallel/test-timers-max-duration-warning.js: a delay of 2^31 does not fit
// (Node warns on stderr) and becomes 1 ms; cleared at once it never runs. Here, also one that
// is not cleared: it shares the 1 ms list with a 1 ms timer, in arming order.
const log = (s) => console.log(s);
const OVERFLOW = Math.pow(2, 31);
clearTimeout(setTimeout(() => log('timeout (never)'), OVERFLOW));
clearInterval(setInterval(() => log('interval (never)'), OVERFLOW));
setTimeout(() => log('1 ms'), 1);
setTimeout(() => log('overflow, as 1 ms'), OVERFLOW);
setTimeout(() => log('2 ms'), 2);

// Port of node/test/parallel/test-timers-clear-timeout-interval-equivalent.js: clearInterval
// cancels a timeout and clearTimeout cancels an interval.
const log = (s) => console.log(s);
const t = setTimeout(() => log('timeout (never)'), 1);
clearInterval(t);
const iv = setInterval(() => log('interval (never)'), 1);
clearTimeout(iv);
setTimeout(() => log('done'), 5);

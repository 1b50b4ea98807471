// Port of node/test/parallel/test-timers-unrefd-interval-still-fires.js: an unref'd interval
// keeps firing while a ref'd interval keeps the loop alive; clearing both ends the loop.
const log = (s) => console.log(s);
const keepOpen = setInterval(() => log('keepOpen (never)'), 9999);
let n = 0;
const timer = setInterval(() => {
  n += 1;
  log('unref-interval-' + n);
  if (n === 3) {
    clearInterval(timer);
    clearInterval(keepOpen);
  }
}, 1);
timer.unref();
process.on('exit', () => log('exit'));

// Port of node/test/parallel/test-timers-unrefed-in-callback.js: an interval unref'd inside its
// own callback keeps firing while something ref'd (here a ref'd timeout) keeps the loop alive,
// and stops once cleared.
const log = (s) => console.log(s);
let n1 = 0;
const keep1 = setTimeout(() => log('keep1 (never)'), 10000);
const timer1 = setInterval(() => {
  timer1.unref();
  n1 += 1;
  log('timer1-' + n1);
  if (n1 === 4) {
    clearInterval(timer1);
    clearTimeout(keep1);
    test2();
  }
}, 1);
function test2() {
  let n2 = 0;
  const keep2 = setTimeout(() => log('keep2 (never)'), 10000);
  const timer2 = setInterval(() => {
    timer2.unref();
    n2 += 1;
    log('timer2-' + n2);
    if (n2 === 4) clearTimeout(keep2);
  }, 1);
}
process.on('exit', () => log('exit'));

// 'beforeExit' listeners as EventEmitter gives them: a once-listener runs at the first event
// only; a listener removed during an event still runs in that event (emit runs a copy of the
// list) but not in later ones. Port of test/parallel/test-process-beforeexit.js (its once and
// removeListener steps).
const log = (s) => console.log(s);
let n = 0;
const fourth = () => log('listener-4 #' + n);
process.on('beforeExit', () => { n += 1; log('listener-1 #' + n); });
process.once('beforeExit', () => log('once'));
process.on('beforeExit', () => {
  log('listener-3 #' + n);
  if (n === 1) {
    process.removeListener('beforeExit', fourth);
    setTimeout(() => log('timer'), 1);
  }
});
process.on('beforeExit', fourth);
process.on('exit', () => log('exit'));

// Port of node/test/parallel/test-timers-immediate-unref.js: an immediate unref'd then ref'd
// again runs; an unref'd immediate runs while a ref'd timer keeps the loop alive; an unref'd
// immediate with nothing else alive does not run.
const log = (s) => console.log(s);
let left = 2;
const dec = (what) => { log(what); if (--left === 0) setImmediate(finalStep); };
setImmediate(firstStep).ref().unref().unref().ref();
function firstStep() {
  log('first');
  setImmediate(() => dec('unref immediate')).unref();
  setTimeout(() => dec('timeout-30'), 30);
}
function finalStep() {
  log('final');
  setImmediate(() => log('unref immediate (never)')).unref();
}
process.on('exit', () => log('exit'));

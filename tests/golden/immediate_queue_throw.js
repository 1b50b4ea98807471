// Port of node/test/parallel/test-timers-immediate-queue-throw.js (without the domain case):
// when an immediate throws, 'uncaughtException' runs, then the next immediate of the batch, and
// only then the tick the thrower queued (Node's CheckImmediate calls processImmediate again,
// which runs the next immediate before its first runNextTicks); immediates queued by the batch
// wait for the next iteration. When the thrower is the batch's last immediate, the second
// processImmediate call runs the immediates queued meanwhile at once (the 'last' part).
const log = (s) => console.log(s);
let threw = false;
let stage = -1;
const run = (callStage) => {
  stage = callStage;
  log('run stage=' + callStage);
  if (threw) return;
  setImmediate(run, 2);
};
for (let i = 0; i < 3; i++) setImmediate(run, 0);
setImmediate(() => {
  threw = true;
  process.nextTick(() => log('tick from thrower stage=' + stage));
  throw new Error('setImmediate Err');
});
for (let i = 0; i < 3; i++) setImmediate(run, 1);
let last = false;
process.on('uncaughtException', (err) => log('uncaught ' + err.message + ' stage=' + stage));
process.on('beforeExit', () => {
  if (last) return;
  last = true;
  setImmediate(() => {
    log('last');
    process.nextTick(() => log('tick from last'));
    setImmediate(() => log('queued by last'));
    setTimeout(() => log('timeout'), 0);
    throw new Error('last Err');
  });
});
process.on('exit', () => log('exit'));

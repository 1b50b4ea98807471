// Port of node/test/parallel/test-timers-uncaught-exception.js: a timer that throws is reported
// to 'uncaughtException' and the next timer of the same list still runs. The tick and the
// microtask the thrower queued run after that next timer (Node's RunTimers calls processTimers
// again, which runs the next timer before its first runNextTicks); when the thrower is the
// last timer of the phase they run at the end of the phase.
const log = (s) => console.log(s);
const spin = (ms) => { const end = Date.now() + ms; while (Date.now() < end); };
setTimeout(() => {
  log('first timer');
  process.nextTick(() => log('tick from first'));
  Promise.resolve().then(() => log('micro from first'));
  throw new Error('BAM!');
}, 20);
setTimeout(() => log('second timer'), 20);
setTimeout(() => log('third timer'), 20);
spin(25); // all three overdue when the loop starts, whatever millisecond each was armed in
setTimeout(() => {
  log('last timer');
  process.nextTick(() => log('tick from last'));
  setImmediate(() => log('immediate'));
  throw new Error('BAM again!');
}, 40);
process.on('uncaughtException', (err) => {
  log('uncaught ' + err.message);
  process.nextTick(() => log('tick from handler'));
});
process.on('exit', () => log('exit'));

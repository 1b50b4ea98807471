// 'beforeExit' is one event: every listener runs, and only then do the nextTick and microtask
// queues drain (EventEmitter.emit runs inside one MakeCallback scope). The timer a listener
// arms restarts the loop, and the event fires again once the loop is out of work.
// Port of the ordering in test/parallel/test-process-beforeexit.js.
const log = (s) => console.log(s);
let n = 0;
process.on('beforeExit', () => {
  n += 1;
  log('listener-1 #' + n);
  process.nextTick(() => log('tick-from-1'));
  Promise.resolve().then(() => log('micro-from-1'));
  if (n === 1) setTimeout(() => log('timer'), 1);
});
process.on('beforeExit', () => log('listener-2 #' + n));
process.on('exit', () => log('exit'));

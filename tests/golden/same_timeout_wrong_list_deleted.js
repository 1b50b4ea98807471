// Port of node/test/parallel/test-timers-same-timeout-wrong-list-deleted.js: clearing a timer
// inside its own callback, then arming another of the same delay, must not lose the new
// timer's list: the new timer can still be cleared, and no timer stays active.
const log = (s) => console.log(s);
const timers = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
const handle1 = setTimeout(() => {
  log('handle1');
  clearTimeout(handle1);
  const handle2 = setTimeout(() => log('handle2 (never)'), 30);
  setTimeout(() => {
    log('short active=' + timers());
    clearTimeout(handle2);
    setImmediate(() => setImmediate(() => log('immediate active=' + timers())));
  }, 1);
  log('in handle1 active=' + timers());
}, 30);
process.on('exit', () => log('exit'));

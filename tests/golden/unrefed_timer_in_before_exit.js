// Port of node/test/parallel/test-timers-unrefed-in-beforeexit.js: an unref'd timer armed in
// 'beforeExit' does not restart the loop, so 'beforeExit' is emitted once.
const log = (s) => console.log(s);
process.on('beforeExit', () => {
  log('beforeExit');
  setTimeout(() => log('unref timer (never)'), 1).unref();
});
process.on('exit', () => log('exit'));

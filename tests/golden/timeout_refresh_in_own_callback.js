// Port of node/test/parallel/test-timers-refresh-in-callback.js: a timeout refreshed inside its
// own callback is re-armed, keeps the loop alive, and the same callback runs again.
const log = (s) => console.log(s);
let n = 0;
const t = setTimeout(() => {
  n += 1;
  log('t-' + n + ' hasRef=' + t.hasRef());
  if (n < 3) t.refresh();
}, 20);
setTimeout(() => log('other-30'), 30);
process.on('exit', () => log('exit'));

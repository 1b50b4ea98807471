// Port of node/test/parallel/test-timers-refresh.js: refresh() right after arming moves a
// timer behind a later timer of the same delay (unref'd, ref'd and interval cases).
const log = (s) => console.log(s);
const u = setTimeout(() => log('unref-refreshed'), 1);
u.unref();
setTimeout(() => log('after-unref'), 1);
u.refresh();
const t = setTimeout(() => log('refreshed'), 1);
setTimeout(() => log('after-refreshed'), 1);
t.refresh();
let n = 0;
const iv = setInterval(() => {
  n += 1;
  log('interval-' + n);
  if (n === 2) clearInterval(iv);
}, 1);
setTimeout(() => log('after-interval'), 1);
iv.refresh();

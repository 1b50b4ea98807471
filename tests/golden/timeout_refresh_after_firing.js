// A Timeout outlives its firing (lib/internal/timers.js: a fired timer is `_destroyed`, and
// `refresh()` re-inserts it and counts it as ref'd again; `hasRef`/`ref`/`unref` only flip its
// flag; `clearTimeout` returns at once). The unref'd one, refreshed, cannot keep the loop alive.
const log = (s) => console.log(s);
const a = setTimeout(() => log('a'), 5);
const b = setTimeout(() => log('b'), 60);
const c = setTimeout(() => log('c'), 5);
setTimeout(() => {
  log('later a.hasRef=' + a.hasRef() + ' b.hasRef=' + b.hasRef());
  clearTimeout(c);
  b.unref();
  log('b.hasRef=' + b.hasRef());
  a.unref();
  a.ref();
  log('a.hasRef=' + a.hasRef());
  a.refresh();
  b.refresh();
}, 80);
process.on('exit', () => log('exit'));

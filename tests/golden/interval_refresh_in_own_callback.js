// Margins of 60 ms either way (from start: 240 ms; from the refresh: 360 ms; the timeout: 300 ms)
// so a loaded machine cannot swap them.
// An interval's next turn is inserted at (callback start + period) after its callback returns,
// whatever the callback did: a refresh() inside its own callback (after a 120 ms block) does not
// move it (lib/internal/timers.js listOnTimeout's `insert(timer, .., start)`).
const log = (s) => console.log(s);
const spin = (ms) => { const end = Date.now() + ms; while (Date.now() < end); };
let n = 0;
const iv = setInterval(() => {
  n += 1;
  log('iv-' + n);
  if (n === 1) { spin(120); iv.refresh(); }
  if (n === 3) clearInterval(iv);
}, 120);
setTimeout(() => log('t-300'), 300);

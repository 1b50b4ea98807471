// Node keeps one list per duration and runs every due timer of the first list before the next
// list (lib/internal/timers.js listOnTimeout): after a 30 ms block, the second 10 ms timer (due
// at +18) runs before the 15 ms timer (due at +15), because the 10 ms list expired first.
const log = (s) => console.log(s);
const spin = (ms) => { const end = Date.now() + ms; while (Date.now() < end); };
setImmediate(() => {
  setTimeout(() => log('d10-first'), 10);
  setTimeout(() => log('d15'), 15);
  spin(8);
  setTimeout(() => log('d10-second'), 10);
  spin(30);
});

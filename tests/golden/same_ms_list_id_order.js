// Node runs overdue lists in (expiry, list id) order (lib/internal/timers.js `compareTimersLists`).
// The 200 ms list is rescheduled (new id) at 200 ms when its second timer (q2, armed at ~100 ms)
// is not yet due, so at ~300 ms it ties with the 160 ms list created at ~140 ms and runs after
// it, although its timer was armed first (a per-timer (due, arm order) queue would run q2
// first). q1's callback blocks 120 ms, so both lists are overdue when the next timers phase runs.
// The tie needs q2 and x armed exactly 40 loop-milliseconds apart, which a loaded machine does
// not always give: the first line says whether it happened (the Rust test retries until it did).
const log = (s) => console.log(s);
const spin = (ms) => { const end = Date.now() + ms; while (Date.now() < end); };
setImmediate(() => {
  setTimeout(() => { log('q1-200'); spin(120); }, 200);
  spin(100);
  const q2 = setTimeout(() => log('q2-200'), 200);
  spin(40);
  const x = setTimeout(() => log('x-160'), 160);
  log('tie=' + (q2._idleStart + 200 === x._idleStart + 160));
});

// Node runs overdue lists in (expiry, list id) order (lib/internal/timers.js `compareTimersLists`).
// The 200 ms list is rescheduled (new id) at 200 ms when its second timer is not yet due, so at
// 300 ms it ties with the 160 ms list created at 140 ms and runs after it, although its timer
// was armed first (a per-timer (due, arm order) queue would run q2 before x). q1's callback
// blocks 120 ms, so both lists are overdue when the next timers phase runs.
const log = (s) => console.log(s);
const spin = (ms) => { const end = Date.now() + ms; while (Date.now() < end); };
setImmediate(() => {
  setTimeout(() => { log('q1-200'); spin(120); }, 200);
  spin(100);
  setTimeout(() => log('q2-200'), 200);
  spin(40);
  setTimeout(() => log('x-160'), 160);
});

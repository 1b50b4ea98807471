// An interval and a timeout with the same delay run in creation order; the interval then runs
// once per period until cleared, and a timeout armed inside the interval's callback runs before
// the interval's next turn (Node re-inserts an interval after its callback returns).
const log = (s) => console.log(s);
let n = 0;
const iv = setInterval(() => {
  n += 1;
  log('interval-' + n);
  if (n === 1) setTimeout(() => log('timeout-from-interval'), 20);
  if (n === 3) clearInterval(iv);
}, 20);
setTimeout(() => log('timeout'), 20);

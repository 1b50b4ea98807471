// A timeout armed and cleared inside an interval's callback (same duration, after a 40 ms block)
// is unlinked at once and cannot delay the interval's next turn (Node's unenroll).
const log = (s) => console.log(s);
const spin = (ms) => { const end = Date.now() + ms; while (Date.now() < end); };
let n = 0;
const iv = setInterval(() => {
  n += 1;
  log('iv-' + n);
  if (n === 1) {
    spin(40);
    const t = setTimeout(() => log('never'), 40);
    clearTimeout(t);
  }
  if (n === 2) clearInterval(iv);
}, 40);
setTimeout(() => log('t-100'), 100);

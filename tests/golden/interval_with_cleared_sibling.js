// A timeout armed and cleared inside an interval's callback (same duration, after a 20 ms block)
// is unlinked at once and cannot delay the interval's next turn (Node's unenroll).
const log = (s) => console.log(s);
const spin = (ms) => { const end = Date.now() + ms; while (Date.now() < end); };
let n = 0;
const iv = setInterval(() => {
  n += 1;
  log('iv-' + n);
  if (n === 1) {
    spin(20);
    const t = setTimeout(() => log('never'), 20);
    clearTimeout(t);
  }
  if (n === 2) clearInterval(iv);
}, 20);
setTimeout(() => log('t-50'), 50);

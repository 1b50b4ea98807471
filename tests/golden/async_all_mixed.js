// Promise.all over timers of different lengths, a resolved promise and an async function;
// the last input settles in a timer that also starts a .then chain.
const log = (s) => console.log(s);
const later = (ms, v) => new Promise((r) => setTimeout(() => {
  log(`timer ${v}`);
  Promise.resolve().then(() => log(`${v}.x1`)).then(() => log(`${v}.x2`)).then(() => log(`${v}.x3`));
  r(v);
}, ms));
async function fn() { await null; return 'fn'; }
(async () => {
  const r = await Promise.all([later(20, 'a'), Promise.resolve('b'), later(5, 'c'), fn()]);
  log(`all ${r.join(',')}`);
})();
log('sync');

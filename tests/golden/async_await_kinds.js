// await on a thenable, a plain value and a native promise; resolve() with a promise and a
// .then returning a promise; a plain .then chain counts the microtask ticks.
const log = (s) => console.log(s);
(async () => { await { then(r) { r(); } }; log('thenable'); })();
(async () => { await null; log('value'); })();
(async () => { await Promise.resolve(); log('promise'); })();
const pp = Promise.resolve(1);
new Promise((r) => r(pp)).then(() => log('resolve-with-promise'));
Promise.resolve().then(() => pp).then(() => log('then-returns-promise'));
Promise.resolve().then(() => log('t1')).then(() => log('t2')).then(() => log('t3'))
  .then(() => log('t4')).then(() => log('t5'));
log('sync');

// How many microtasks each combinator takes over settled inputs, against a .then chain.
const log = (s) => console.log(s);
const p = Promise.resolve(1);
const r = Promise.reject(2);
Promise.all([p, p]).then(() => log('all'));
Promise.race([p]).then(() => log('race'));
Promise.allSettled([p, r]).then(() => log('allSettled'));
Promise.any([r, p]).then(() => log('any'));
Promise.all([]).then(() => log('all-empty'));
Promise.any([r]).catch(() => log('any-rejected'));
Promise.all([r]).catch(() => log('all-rejected'));
(async () => { await Promise.all([p]); log('await-all'); })();
Promise.resolve().then(() => log('t1')).then(() => log('t2')).then(() => log('t3'))
  .then(() => log('t4'));

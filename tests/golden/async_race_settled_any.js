// Promise.race, allSettled and any (both outcomes), and Promise.all rejecting.
const log = (s) => console.log(s);
const later = (ms, v, ok = true) =>
  new Promise((res, rej) => setTimeout(() => (ok ? res(v) : rej(v)), ms));
(async () => {
  log('race ' + await Promise.race([later(30, 'slow'), later(2, 'fast')]));
  const s = await Promise.allSettled([later(1, 'x'), later(3, 'y', false), Promise.resolve('z')]);
  log('allSettled ' + s.map((o) => o.status[0] + ':' + (o.status === 'fulfilled' ? o.value : o.reason)).join(','));
  log('any ' + await Promise.any([later(1, 'e1', false), later(8, 'ok'), later(2, 'e2', false)]));
  try {
    await Promise.any([Promise.reject('r1'), later(1, 'r2', false)]);
  } catch (e) {
    log('any rejected ' + e.errors.join(','));
  }
  try {
    await Promise.all([later(5, 'unused'), Promise.reject('boom')]);
  } catch (e) {
    log('all rejected ' + e);
  }
})();

// Nested async calls: await f() where f awaits g() which awaits h(); each level resumes one
// microtask after the level below returned. A .then chain counts.
const log = (s) => console.log(s);
async function h() { log('h'); await null; log('h resumed'); return 1; }
async function g() { log('g'); const v = await h(); log('g resumed'); return v + 1; }
async function f() { log('f'); const v = await g(); log(`f resumed ${v}`); }
f();
Promise.resolve().then(() => log('t1')).then(() => log('t2')).then(() => log('t3'))
  .then(() => log('t4')).then(() => log('t5'));
log('sync');

// Two async functions awaiting in a loop, a .then chain and nextTicks queued between awaits.
const log = (s) => console.log(s);
async function f(name, n) {
  for (let i = 0; i < n; i++) {
    await null;
    log(`${name}${i}`);
    process.nextTick(() => log(`${name}${i}.tick`));
  }
  log(`${name} done`);
}
f('a', 3);
Promise.resolve().then(() => log('p1')).then(() => log('p2')).then(() => log('p3'));
f('b', 2);
process.nextTick(() => log('tick0'));
log('sync');

// An async function run by a thread-pool completion (poll phase): a timeout and an immediate
// armed before its first await (the timeout is made due by a spin); then await an immediate, then more thread-pool work.
const fs = require('fs');
const log = (s) => console.log(s);
const spin = (ms) => { const end = Date.now() + ms; while (Date.now() < end); };
const work = () => new Promise((r) => fs.stat(__filename, () => r()));
fs.stat(__filename, async () => {
  log('io');
  setTimeout(() => log('timeout'), 0);
  setImmediate(() => log('immediate'));
  spin(5); // the timeout is due when the tail timers phase of this iteration looks
  await null;
  log('resumed');
  process.nextTick(() => log('tick'));
  await new Promise((r) => setImmediate(r));
  log('after immediate');
  await work();
  log('after work');
});

// An async function run by a timer: its awaits drain before the next timer runs; a sleep
// armed inside it waits for a later timers phase.
const log = (s) => console.log(s);
const spin = (ms) => { const end = Date.now() + ms; while (Date.now() < end); };
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
setTimeout(async () => {
  log('t1 start');
  await null;
  log('t1 resumed');
  process.nextTick(() => log('t1 tick'));
  await sleep(0);
  log('t1 after sleep');
}, 0);
setTimeout(() => log('t2'), 0);
spin(5);

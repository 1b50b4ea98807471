// Sleeps and immediates awaited against plain timers and immediates.
const log = (s) => console.log(s);
const spin = (ms) => { const end = Date.now() + ms; while (Date.now() < end); };
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
(async () => { log('a0'); await sleep(1); log('a1'); await sleep(1); log('a2'); })();
setTimeout(() => log('t1'), 1);
(async () => { log('b0'); await new Promise((r) => setImmediate(r)); log('b1'); })();
setImmediate(() => log('i1'));
spin(5);

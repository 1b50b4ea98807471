// libuv >= 1.45 runs due timers at the tail of an iteration, before it asks whether the loop is
// still alive: an unref'd timer that is due when the last ref'd work (here an immediate that
// spins 20 ms) finishes still fires before the process exits.
const log = (s) => console.log(s);
const spin = (ms) => { const end = Date.now() + ms; while (Date.now() < end); };
setTimeout(() => log('unref-timer'), 5).unref();
setImmediate(() => { log('immediate'); spin(20); });
process.on('exit', () => log('exit'));

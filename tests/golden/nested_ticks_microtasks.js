// Nested chains: ticks that queue microtasks that queue ticks, several levels deep. Each
// next-tick drain runs to empty (including ticks queued during it) before any microtask; each
// microtask drain runs to empty before the ticks queued by microtasks.
const log = (s) => console.log(s);
setImmediate(() => {
  log('imm');
  process.nextTick(() => {
    log('tick-1');
    Promise.resolve().then(() => {
      log('micro-1');
      process.nextTick(() => {
        log('tick-2');
        queueMicrotask(() => {
          log('micro-2');
          process.nextTick(() => log('tick-3'));
          queueMicrotask(() => log('micro-2b'));
        });
        process.nextTick(() => log('tick-2b'));
      });
      Promise.resolve().then(() => log('micro-1-chained'));
    });
    process.nextTick(() => log('tick-1b'));
  });
  queueMicrotask(() => log('micro-0'));
});
setImmediate(() => log('imm-2'));

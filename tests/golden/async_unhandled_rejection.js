// Unhandled rejections (Node 20: --unhandled-rejections=throw) reach 'uncaughtException' with
// origin 'unhandledRejection' once ticks and microtasks drained; a catch added in a microtask
// before that counts as handled.
const log = (s) => console.log(s);
process.on('uncaughtException', (e, origin) => log(`uncaught ${origin}`));
setTimeout(() => {
  log('timer');
  Promise.reject(new Error('boom'));
  const late = Promise.reject(new Error('late'));
  Promise.resolve().then(() => late.catch(() => log('caught late')));
  process.nextTick(() => log('tick'));
  Promise.resolve().then(() => log('micro'));
  setImmediate(() => log('immediate'));
}, 0);
(async () => {
  await null;
  log('async throws');
  throw new Error('from async');
})();

// fs and dns callbacks are thread-pool completions (poll phase): ticks and microtasks drain after
// each, the check phase follows; a dns.lookup of an IP literal answers on the next tick, and an
// fs error prints errno, syscall and path. Each step starts from the previous one's callback, so
// no two pool requests race.
const fs = require('fs');
const dns = require('dns');
const log = (s) => console.log(s);
fs.stat(__filename, (err) => {
  log('stat ' + (err ? err.code : 'ok'));
  setImmediate(() => log('immediate'));
  process.nextTick(() => log('tick'));
  Promise.resolve().then(() => log('microtask'));
  fs.readFile('/nonexistent/oneloop-golden', (err) => {
    log(err.message);
    dns.lookup('127.0.0.1', (err, addr) => log('literal ' + addr));
    process.nextTick(() => log('tick-2'));
    setImmediate(() => {
      log('immediate-2');
      dns.lookup('localhost', { family: 4 }, (err, addr) => log('localhost ' + addr));
    });
  });
});

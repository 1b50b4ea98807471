// A UDP 'message' callback is an I/O callback of the poll phase: its ticks and microtasks drain
// right after it, the check phase (setImmediate) follows, and a setTimeout(0) armed in it waits
// for the timers phase after that.
const dgram = require('dgram');
const log = (s) => console.log(s);
const rx = dgram.createSocket('udp4');
const tx = dgram.createSocket('udp4');
rx.on('message', (msg) => {
  log('message ' + msg);
  setTimeout(() => log('timeout'), 0);
  setImmediate(() => {
    log('immediate');
    rx.close(() => log('close'));
    tx.close();
  });
  process.nextTick(() => log('tick'));
  Promise.resolve().then(() => log('microtask'));
});
rx.bind(0, '127.0.0.1', () => {
  tx.send('one', rx.address().port, '127.0.0.1');
});

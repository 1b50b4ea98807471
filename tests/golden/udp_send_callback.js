// A UDP send callback: Node looks the address up first (an IP literal answers on the next tick),
// sends from that tick and reports a send the kernel took at once on the tick after. So a tick
// queued right after send() runs first, then 'sent', and both before the next datagram's
// 'message' (read in the same poll phase) and before the check phase.
const dgram = require('dgram');
const log = (s) => console.log(s);
const a = dgram.createSocket('udp4');
const b = dgram.createSocket('udp4');
let n = 0;
b.on('message', (m) => {
  log('message ' + m);
  if (++n === 1) {
    a.send('two', b.address().port, '127.0.0.1', () => log('sent two'));
    setImmediate(() => log('immediate'));
    process.nextTick(() => log('tick'));
    setTimeout(() => log('timeout'), 0);
  } else { a.close(); b.close(); }
});
b.bind(0, '127.0.0.1', () => a.send('one', b.address().port, '127.0.0.1'));

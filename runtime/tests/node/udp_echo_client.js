// Sends COUNT datagrams to the oneloop echo server at 127.0.0.1:PORT (argv[2]), checks that
// every one comes back unchanged (UDP on loopback does not drop at this rate, but the script
// resends what is missing a few times so a lost datagram cannot fail the check), prints the
// result and exits 0 only if all came back.
const dgram = require('dgram');
const port = Number(process.argv[2]);
const COUNT = 200;
const sock = dgram.createSocket('udp4');
const got = new Set();
let tries = 0;
sock.on('message', (msg, rinfo) => {
  if (rinfo.port !== port) return;
  const m = /^ping (\d+) (x*)$/.exec(msg.toString());
  if (m && m[2].length === Number(m[1]) % 100) got.add(Number(m[1]));
  if (got.size === COUNT) {
    console.log(`echoed ${COUNT}`);
    sock.close();
  }
});
function sendMissing() {
  for (let i = 0; i < COUNT; i++) {
    if (!got.has(i)) sock.send(`ping ${i} ${'x'.repeat(i % 100)}`, port, '127.0.0.1');
  }
  if (++tries < 5) setTimeout(() => { if (got.size < COUNT) sendMissing(); }, 500).unref();
}
const deadline = setTimeout(() => {
  console.log(`echoed only ${got.size} of ${COUNT}`);
  process.exit(1);
}, 10000);
deadline.unref();
sock.bind(0, '127.0.0.1', sendMissing);
sock.on('close', () => clearTimeout(deadline));

// A timer's delay counts from the moment it is armed, not from the loop's cached time: after a
// callback blocks for 30 ms, a new 1 ms timer is due after one armed 20 ms earlier with 10 ms.
const log = (s) => console.log(s);
const spin = (ms) => { const end = Date.now() + ms; while (Date.now() < end); };
setImmediate(() => {
  setTimeout(() => log('armed-first-10ms'), 10);
  spin(30);
  setTimeout(() => log('armed-after-spin-1ms'), 1);
});

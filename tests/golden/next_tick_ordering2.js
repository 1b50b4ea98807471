// Port of node/test/parallel/test-next-tick-ordering2.js: a tick queued by a tick runs before
// a 0 ms timeout queued by the same tick.
const log = (s) => console.log(s);
process.nextTick(() => {
  setTimeout(() => log('setTimeout'), 0);
  process.nextTick(() => log('nextTick'));
});

// Port of node/test/parallel/test-timers-immediate-queue.js: the check phase runs only the
// immediates queued before it began; a tick queued by the first runs before the second.
const log = (s) => console.log(s);
let ticked = false;
let hit = 0;
const QUEUE = 10;
function run() {
  if (hit === 0) process.nextTick(() => { ticked = true; log('tick'); });
  if (ticked) return;
  hit += 1;
  log('run ' + hit);
  setImmediate(run);
}
for (let i = 0; i < QUEUE; i++) setImmediate(run);
process.on('exit', () => log('exit hit=' + hit));

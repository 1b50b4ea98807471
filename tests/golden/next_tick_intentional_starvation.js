// Port of node/test/parallel/test-next-tick-intentional-starvation.js: a tick that keeps
// queueing ticks starves a due timer until it stops (here after 1000 ticks, not a time limit).
const log = (s) => console.log(s);
const spin = (ms) => { const end = Date.now() + ms; while (Date.now() < end); };
let ticks = 0;
let ran = false;
setTimeout(() => { ran = true; log('timeout after ' + ticks + ' ticks'); }, 0);
spin(5);
function tick() {
  ticks += 1;
  if (ran) log('timer ran before the ticks ended');
  if (ticks < 1000) process.nextTick(tick);
  else log('ticks done ran=' + ran);
}
process.nextTick(tick);

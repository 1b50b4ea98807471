// t4: a timeout scheduled inside a timer callback waits for the next iteration, after the
// immediate queued next to it. Spinning 5 ms makes A and B due in the same timers phase even
// if the clock ticked over a millisecond between arming them.
const log = (s) => console.log(s);
const spin = (ms) => { const end = Date.now() + ms; while (Date.now() < end); };
setTimeout(() => {
  log('A');
  setTimeout(() => log('C'), 0);
  setImmediate(() => log('imm-from-A'));
}, 0);
setTimeout(() => log('B'), 0);
spin(5);

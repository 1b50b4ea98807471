// Port of node/test/parallel/test-timers-zero-timeout.js: a 0 ms timeout runs once, a 0 ms
// interval runs until its third run clears it with clearTimeout (the arguments Node passes
// are a closure's captures here).
const log = (s) => console.log(s);
setTimeout((a, b, c) => log('timeout ' + a + b + c), 0, 'foo', 'bar', 'baz');
setTimeout(() => log('empty timeout'), 0);
let n = 0;
const iv = setInterval((a, b, c) => {
  n += 1;
  log('interval ' + n + ' ' + a + b + c);
  if (n === 3) clearTimeout(iv);
}, 0, 'foo', 'bar', 'baz');
process.on('exit', () => log('exit'));

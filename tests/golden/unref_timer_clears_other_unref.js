// Port of node/test/parallel/test-timers-unref-remove-other-unref-timers.js (public API instead
// of timers.enroll): an unref'd timer that clears another unref'd timer of another delay does
// not break the lists; a ref'd 100 ms timer keeps the process alive.
const log = (s) => console.log(s);
const foo = setTimeout(() => log('foo (never)'), 50);
foo.unref();
const bar = setTimeout(() => { log('bar clears foo'); clearTimeout(foo); }, 1);
bar.unref();
setTimeout(() => log('keep-alive 100'), 100);
process.on('exit', () => log('exit'));

// Port of node/test/parallel/test-timers-clearImmediate.js: an immediate that clears itself in
// its own callback still ran (a no-op clear), N times for N immediates.
const log = (s) => console.log(s);
let count = 0;
function next() {
  const immediate = setImmediate(() => {
    clearImmediate(immediate);
    count += 1;
    log('immediate ' + count);
  });
}
for (let i = 0; i < 3; i++) next();
process.on('exit', () => log('exit count=' + count));

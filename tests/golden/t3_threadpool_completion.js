// t3: setTimeout(0) vs setImmediate inside a thread-pool completion (an fs.readFile callback
// runs in the poll phase): the check phase comes first, always.
const fs = require('fs');
const log = (s) => console.log(s);
fs.readFile(__filename, () => {
  log('readFile');
  setTimeout(() => log('timeout'), 0);
  setImmediate(() => log('immediate'));
  process.nextTick(() => log('tick'));
});

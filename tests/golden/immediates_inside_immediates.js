// Immediates queued inside immediates run in the next check phase; a timer due in between runs
// between the two check phases when it is already due (here: by a 5 ms spin).
const log = (s) => console.log(s);
const spin = (ms) => { const end = Date.now() + ms; while (Date.now() < end); };
const fs = require('fs');
fs.readFile(__filename, () => {
  setImmediate(() => {
    log('i1');
    setImmediate(() => {
      log('i1-child');
      setImmediate(() => log('i1-grandchild'));
    });
    setTimeout(() => log('timeout'), 0);
    spin(5);
  });
  setImmediate(() => log('i2'));
});

// The classic interview puzzle: async functions, a promise executor, nextTick, setTimeout and
// setImmediate. The spin makes the 1 ms timer due before the loop starts.
const log = (s) => console.log(s);
const spin = (ms) => { const end = Date.now() + ms; while (Date.now() < end); };
async function async1() { log('async1 start'); await async2(); log('async1 end'); }
async function async2() { log('async2'); }
log('script start');
setTimeout(() => log('setTimeout'), 0);
async1();
new Promise((r) => { log('promise1'); r(); }).then(() => log('promise2'));
process.nextTick(() => log('nextTick'));
setImmediate(() => log('setImmediate'));
log('script end');
spin(5);

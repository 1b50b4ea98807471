// A timer cleared by an earlier timer in the same batch never runs, even though it was due.
const log = (s) => console.log(s);
const spin = (ms) => { const end = Date.now() + ms; while (Date.now() < end); };
let b;
setTimeout(() => { log('a'); clearTimeout(b); }, 1);
b = setTimeout(() => log('b'), 1);
setTimeout(() => log('c'), 1);
spin(5);

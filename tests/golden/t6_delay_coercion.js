// t6: delays 10, 1, 0, -5, NaN, 1, 2: everything below 1 (and NaN) becomes 1 ms, and timers
// due together run in insertion order.
const log = (s) => console.log(s);
setTimeout(() => log('d10'), 10);
setTimeout(() => log('d1-a'), 1);
setTimeout(() => log('d0'), 0);
setTimeout(() => log('dneg'), -5);
setTimeout(() => log('dNaN'), NaN);
setTimeout(() => log('d1-b'), 1);
setTimeout(() => log('d2'), 2);

// Without an 'uncaughtException' listener an unhandled rejection ends the process (code 1)
// after the current queues drain: 'after' prints, 'never' does not.
const log = (s) => console.log(s);
Promise.reject(new Error('boom'));
process.nextTick(() => log('tick'));
Promise.resolve().then(() => log('after'));
setTimeout(() => log('never'), 0);

// t5: only unref'd timers keep nothing alive; 'beforeExit' fires, the timer it schedules
// restarts the loop, then 'beforeExit' fires again and the process exits. The unref'd timers
// never run.
const log = (s) => console.log(s);
setTimeout(() => log('unref-timer'), 1000).unref();
setInterval(() => log('unref-interval'), 1000).unref();
let restarted = false;
process.on('beforeExit', () => {
  log('beforeExit');
  if (!restarted) {
    restarted = true;
    setTimeout(() => log('after-beforeExit-timer'), 0);
  }
});
process.on('exit', () => log('exit'));

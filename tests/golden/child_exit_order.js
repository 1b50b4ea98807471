// A child's 'exit' vs its stdout 'end' vs 'close' (child_process.spawn). Two children, run one
// after the other so their events cannot interleave:
// A closes its stdout, then exits later: 'end' first, then 'exit', and 'close' right after
//   'exit' (synchronously: before a tick queued in the exit listener).
// B exits while a background grandchild still holds its stdout: 'exit' first, then the
//   grandchild's output, 'end', and 'close' only once stdout closed.
const { spawn } = require('child_process');
const log = (s) => console.log(s);
function run(name, script, next) {
  const c = spawn('sh', ['-c', script], { stdio: ['ignore', 'pipe', 'ignore'] });
  c.stdout.on('data', (d) => log(`${name} data ${String(d).trim()}`));
  c.stdout.on('end', () => log(`${name} stdout end`));
  c.on('exit', (code, sig) => {
    log(`${name} exit ${code} ${sig}`);
    process.nextTick(() => log(`${name} tick after exit`));
  });
  c.on('close', (code, sig) => {
    log(`${name} close ${code} ${sig}`);
    if (next) next();
  });
}
run('A', 'echo hi; exec >&-; sleep 0.3; exit 3', () =>
  run('B', 'echo hi; sleep 0.2; (sleep 0.5; echo late) & exit 4'));

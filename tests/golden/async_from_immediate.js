// An async function run by an immediate: it resumes before the next immediate; awaiting
// another immediate takes it to the next check phase.
const log = (s) => console.log(s);
setImmediate(async () => {
  log('i1');
  await null;
  log('i1 resumed');
  await new Promise((r) => setImmediate(r));
  log('i1 after immediate');
});
setImmediate(() => log('i2'));

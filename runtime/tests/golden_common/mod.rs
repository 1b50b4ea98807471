//! Helpers shared by the golden tests (`golden_order.rs`, `golden_timers.rs`): run a
//! `tests/golden/<name>.js` under real `node`, run the same scenario on [`Loop`] on both
//! clocks, compare the token lists. These tests need Node 20 on `PATH`; without it they fail
//! (they never skip silently).
#![allow(dead_code)] // each test binary uses a different subset

use std::cell::RefCell;
use std::path::PathBuf;
use std::process::Command;
use std::rc::Rc;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use oneloop_runtime::{Clock, Loop, LoopOptions};

pub type Log = Rc<RefCell<Vec<String>>>;

/// Serializes the timing-sensitive part of each golden test (node's run, whose spins are busy
/// loops, and the real-clock run) within a test binary: several node processes spinning at once
/// on a 2-core machine wake each other's timers tens of milliseconds late, which changes the
/// order node itself prints.
pub fn timing_lock() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The lines `node tests/golden/<name>.js` prints.
pub fn node_output(name: &str) -> Vec<String> {
    let path: PathBuf = [env!("CARGO_MANIFEST_DIR"), "..", "tests", "golden"]
        .iter()
        .collect::<PathBuf>()
        .join(format!("{name}.js"));
    assert!(path.exists(), "golden script {} is missing", path.display());
    let out = Command::new("node")
        .arg(&path)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "golden tests need `node` (v20) on PATH to produce the expected order; \
             running `node {}` failed: {e}",
                path.display()
            )
        });
    assert!(
        out.status.success(),
        "node {} exited with {}: {}",
        path.display(),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .expect("node printed UTF-8")
        .lines()
        .map(str::to_owned)
        .collect()
}

pub fn new_loop(clock: Clock) -> Loop {
    Loop::with_options(LoopOptions {
        threadpool_size: 2,
        trace_to_stderr: false,
        clock,
    })
    .expect("loop")
}

pub fn push(log: &Log, token: &str) {
    log.borrow_mut().push(token.to_owned());
}

/// A callback that logs `token`.
pub fn say(log: &Log, token: &'static str) -> impl FnOnce(&mut Loop) + 'static {
    let log = log.clone();
    move |_| push(&log, token)
}

/// Runs `scenario` on a fresh real-clock loop and on a fresh virtual-clock loop, runs each
/// loop, and compares both with node's output.
pub fn assert_same_as_node(name: &str, scenario: impl Fn(&mut Loop, &Log)) {
    let _serial = timing_lock();
    let expected = node_output(name);
    for clock in [Clock::Real, Clock::Virtual] {
        let log = Log::default();
        let mut lp = new_loop(clock);
        scenario(&mut lp, &log);
        lp.run().expect("run");
        assert_eq!(
            *log.borrow(),
            expected,
            "{name} on a {clock:?} clock: oneloop (left) vs node (right)"
        );
    }
}

/// Node's `fs.readFile(__filename, cb)`: thread-pool work whose completion runs in poll.
pub fn read_file(lp: &mut Loop, after: impl FnOnce(&mut Loop) + 'static) {
    lp.queue_work(
        || std::fs::read(file!()).map(|b| b.len()).unwrap_or(0),
        move |lp, _len| after(lp),
    )
    .expect("queue_work");
}

/// A synchronous spin: real time passes (a sleep), or on a virtual clock, virtual time.
pub fn spin(lp: &mut Loop, ms: u64) {
    if !lp.advance(Duration::from_millis(ms)) {
        std::thread::sleep(Duration::from_millis(ms));
    }
}

/// Runs `scenario` on both clocks like [`assert_same_as_node`], and logs `exit` after `run`
/// returns (node's `process.on('exit')`).
pub fn assert_same_as_node_with_exit(name: &str, scenario: impl Fn(&mut Loop, &Log)) {
    let _serial = timing_lock();
    let expected = node_output(name);
    for clock in [Clock::Real, Clock::Virtual] {
        let log = Log::default();
        let mut lp = new_loop(clock);
        scenario(&mut lp, &log);
        lp.run().expect("run");
        push(&log, "exit");
        assert_eq!(
            *log.borrow(),
            expected,
            "{name} on a {clock:?} clock: oneloop (left) vs node (right)"
        );
    }
}

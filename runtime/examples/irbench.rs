//! Instruction-count probe (not committed): runs one loop operation `rounds` x 10,000 times
//! the way runtime/benches/loop.rs does, for `valgrind --tool=cachegrind`.
use oneloop_runtime::{Loop, LoopOptions};
use std::time::Duration;

fn main() {
    let mut args = std::env::args().skip(1);
    let op = args.next().unwrap_or_default();
    let rounds: u64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(10);
    let mut lp = Loop::with_options(LoopOptions {
        threadpool_size: 4,
        trace_to_stderr: false,
        ..LoopOptions::default()
    })
    .unwrap();
    lp.set_timeout(1_000_000_000u64, |_| {});
    for _ in 0..rounds {
        match op.as_str() {
            "tick" => {
                for _ in 0..10_000 {
                    lp.next_tick(|_| {});
                }
                lp.run_nowait().unwrap();
            }
            "immediate" => {
                for _ in 0..10_000 {
                    lp.set_immediate(|_| {});
                }
                lp.run_nowait().unwrap();
            }
            "timer" => {
                for _ in 0..10_000 {
                    lp.set_timeout(1, |_| {});
                }
                std::thread::sleep(Duration::from_millis(2));
                lp.run_nowait().unwrap();
            }
            "empty" => {
                for _ in 0..10_000 {
                    lp.run_nowait().unwrap();
                }
            }
            "none" => {}
            _ => panic!("op"),
        }
    }
}

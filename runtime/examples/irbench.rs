//! Instruction-count probe for the loop's hot paths, for `valgrind --tool=cachegrind`: on a
//! shared, loaded machine wall-clock benches swing by 2-4x, instruction counts do not. Runs one
//! operation `rounds` x 10,000 times the way `runtime/benches/loop.rs` does (docs/benchmarks.md,
//! "Issue #16", has the commands and numbers).
//!
//! `cargo build --release -p oneloop-runtime --example irbench`, then
//! `valgrind --tool=cachegrind --cache-sim=no target/release/examples/irbench <op> 20`; the
//! per-op cost is (I refs - I refs of `none`) / (20 x 10,000).
//!
//! Ops: `tick`, `immediate`, `timer` (10,000 one-delay timers armed, then fired by one
//! `run_nowait`), `empty` (an iteration with nothing to do), `await` (10,000 awaits of a
//! fulfilled promise in one task), `await-ref` (the same awaiting `&p`), `spawn` (10,000 tasks that await once and finish), and on a
//! virtual clock (no sleeps):
//! `v-timer-1` (10,000 timers, one delay), `v-timer-distinct` (10,000 timers, 10,000 delays: a
//! list each), `arm-clear` (a 30 s timer armed and cleared, one after another).
use std::time::Duration;

use oneloop_runtime::task::{self, Promise};
use oneloop_runtime::{Clock, Loop, LoopOptions};

const BATCH: u64 = 10_000;

fn new_loop(clock: Clock) -> Loop {
    let mut lp = Loop::with_options(LoopOptions {
        threadpool_size: 4,
        trace_to_stderr: false,
        clock,
    })
    .expect("loop");
    lp.set_timeout(1_000_000_000u64, |_| {}); // keeps it alive, as the bench's `alive_loop`
    lp
}

fn main() {
    let mut args = std::env::args().skip(1);
    let op = args.next().unwrap_or_default();
    let rounds: u64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(10);
    let clock = if op.starts_with("v-") || op == "arm-clear" {
        Clock::Virtual
    } else {
        Clock::Real
    };
    let mut lp = new_loop(clock);
    for _ in 0..rounds {
        match op.as_str() {
            "tick" => {
                for _ in 0..BATCH {
                    lp.next_tick(|_| {});
                }
                lp.run_nowait().expect("run");
            }
            "immediate" => {
                for _ in 0..BATCH {
                    lp.set_immediate(|_| {});
                }
                lp.run_nowait().expect("run");
            }
            "timer" => {
                for _ in 0..BATCH {
                    lp.set_timeout(1, |_| {});
                }
                std::thread::sleep(Duration::from_millis(2));
                lp.run_nowait().expect("run");
            }
            "empty" => {
                for _ in 0..BATCH {
                    lp.run_nowait().expect("run");
                }
            }
            "v-timer-1" => {
                for _ in 0..BATCH {
                    lp.set_timeout(1, |_| {});
                }
                lp.advance(Duration::from_millis(2));
                lp.run_nowait().expect("run");
            }
            "v-timer-distinct" => {
                for i in 0..BATCH {
                    lp.set_timeout(1 + i, |_| {});
                }
                lp.advance(Duration::from_millis(BATCH + 1));
                lp.run_nowait().expect("run");
            }
            "arm-clear" => {
                for _ in 0..BATCH {
                    let t = lp.set_timeout(30_000, |_| {});
                    lp.clear_timeout(t).expect("armed");
                }
            }
            "await" => {
                // BATCH awaits of a fulfilled promise in one task (runtime/benches/task.rs).
                let p = Promise::<u64, ()>::resolved(1);
                lp.spawn_task(async move {
                    let mut sum = 0;
                    for _ in 0..BATCH {
                        sum += p.clone().await.unwrap_or(0);
                    }
                    std::hint::black_box(sum);
                })
                .detach();
                lp.run_nowait().expect("run");
            }
            "await-ref" => {
                // The same, awaiting a reference (`(&p).await`: no `Rc` clone per await).
                let p = Promise::<u64, ()>::resolved(1);
                lp.spawn_task(async move {
                    let mut sum = 0;
                    for _ in 0..BATCH {
                        sum += (&p).await.unwrap_or(0);
                    }
                    std::hint::black_box(sum);
                })
                .detach();
                lp.run_nowait().expect("run");
            }
            "spawn" => {
                // BATCH tasks that await once and finish (runtime/benches/task.rs).
                for i in 0..BATCH {
                    lp.spawn_task(async move {
                        task::yield_now().await;
                        std::hint::black_box(i);
                    })
                    .detach();
                }
                lp.run_nowait().expect("run");
            }
            "none" => {}
            other => panic!("unknown op {other:?}"),
        }
    }
}

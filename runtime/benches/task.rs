//! Promise/task micro-benchmarks: `taskset -c 0 cargo bench -p oneloop-runtime --bench task`,
//! compared with `taskset -c 0 node benches/node/await_bench.js`.
//!
//! - `await_settled`: one `await` of an already-fulfilled promise (the task suspends, a
//!   `Resume` microtask is queued, the drain polls it again), timed over BATCH awaits in one
//!   task: Node's `for (..) await p`.
//! - `spawn_and_finish`: spawning a task that awaits once and finishes (Node: calling an
//!   `async function` with one `await` and letting it return), BATCH per run.
use std::time::{Duration, Instant};

use criterion::{black_box, criterion_group, Criterion};
use oneloop_runtime::task::{self, Promise};
use oneloop_runtime::{Loop, LoopOptions};

const BATCH: u64 = 10_000;

fn new_loop() -> Loop {
    Loop::with_options(LoopOptions {
        threadpool_size: 1,
        trace_to_stderr: false,
        ..LoopOptions::default()
    })
    .unwrap()
}

fn await_settled(lp: &mut Loop, iters: u64) -> Duration {
    let p = Promise::<u64, ()>::resolved(1);
    let started = Instant::now();
    lp.spawn_task(async move {
        let mut sum = 0;
        for _ in 0..iters {
            sum += p.clone().await.unwrap();
        }
        black_box(sum);
    })
    .detach();
    lp.run().unwrap();
    started.elapsed()
}

fn spawn_and_finish(lp: &mut Loop, iters: u64) -> Duration {
    let started = Instant::now();
    for i in 0..iters {
        lp.spawn_task(async move {
            task::yield_now().await;
            black_box(i);
        })
        .detach();
    }
    lp.run().unwrap();
    started.elapsed()
}

fn benches(c: &mut Criterion) {
    let mut lp = new_loop();
    c.bench_function("task/await_settled_promise", |b| {
        b.iter_custom(|iters| await_settled(&mut lp, iters))
    });
    c.bench_function("task/spawn_await_once_finish", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            let mut left = iters;
            while left > 0 {
                let n = left.min(BATCH);
                total += spawn_and_finish(&mut lp, n);
                left -= n;
            }
            total
        })
    });
}

criterion_group!(task_benches, benches);

fn main() {
    task_benches();
    Criterion::default().configure_from_args().final_summary();
}

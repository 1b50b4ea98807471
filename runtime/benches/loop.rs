//! Loop micro-benchmarks: `cargo bench -p oneloop-runtime --bench loop`.
//!
//! Each operation is timed in batches (arm N, then run the loop once) so the per-op number is
//! the amortised cost of queueing plus running one callback, comparable with
//! `benches/node/loop_bench.js`. Before the timings, the bench prints how many heap allocations
//! one timer and one immediate cost in steady state, counted by a global allocator wrapper.
//!
//! `ONELOOP_BENCH_OBSERVE=metrics` runs every loop with `enable_metrics(true)`, `=trace` with a
//! Chrome trace written to /dev/null, `=both` with both: the cost of watching the loop.
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use criterion::{black_box, criterion_group, Criterion};
use oneloop_runtime::{ListenOptions, Loop, LoopOptions};

/// Counts allocations (including reallocations) on every thread, then forwards to `System`.
struct CountingAlloc;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

// SAFETY: every method forwards its arguments unchanged to `System`, which implements
// `GlobalAlloc` correctly; the only addition is a relaxed atomic increment, which neither
// allocates nor touches the memory being managed. So each method upholds exactly the contract
// `System` upholds (layout, alignment, ownership of the returned pointer).
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: the caller upholds `GlobalAlloc::alloc`'s contract, which is `System`'s.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: as for `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: `ptr` was allocated by this allocator, i.e. by `System`, with `layout`.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` was allocated by this allocator, i.e. by `System`, with `layout`.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: CountingAlloc = CountingAlloc;

/// Operations per timed batch.
const BATCH: u64 = 10_000;

fn new_loop() -> Loop {
    let mut lp = Loop::with_options(LoopOptions {
        threadpool_size: 4,
        trace_to_stderr: false,
        ..LoopOptions::default()
    })
    .expect("loop");
    let observe = std::env::var("ONELOOP_BENCH_OBSERVE").unwrap_or_default();
    if matches!(observe.as_str(), "metrics" | "both") {
        lp.enable_metrics(true);
    }
    if matches!(observe.as_str(), "trace" | "both") {
        lp.start_trace_file("/dev/null").expect("trace");
    }
    // The uncaught-panic hook puts every callback under `catch_unwind`; measure both paths.
    if std::env::var("ONELOOP_BENCH_PANIC_HOOK").is_ok_and(|v| v == "1") {
        lp.on_uncaught_panic(|_lp, _panic| {});
    }
    lp
}

/// A loop kept alive by one ref'd timer that never fires during the bench.
fn alive_loop() -> Loop {
    let mut lp = new_loop();
    lp.set_timeout(1_000_000_000u64, |_| {});
    lp
}

/// Arms `n` 1 ms timers, waits (untimed) until they are due, then fires them with one
/// `run_nowait`. Returns the timed part.
fn timers_round(lp: &mut Loop, n: u64) -> Duration {
    let start = Instant::now();
    for _ in 0..n {
        lp.set_timeout(1, |_| {});
    }
    let armed = start.elapsed();
    std::thread::sleep(Duration::from_millis(2));
    let start = Instant::now();
    lp.run_nowait().expect("run");
    armed + start.elapsed()
}

/// [`timers_round`] with the 2 ms wait spun instead of slept, as `benches/node/loop_bench.js`
/// waits: a sleep gives the core away mid-op, and on a shared machine whatever runs meanwhile
/// evicts the batch's timers (800 KB) from the caches before they fire; Node's side keeps them.
fn timers_round_spin(lp: &mut Loop, n: u64) -> Duration {
    let start = Instant::now();
    for _ in 0..n {
        lp.set_timeout(1, |_| {});
    }
    let armed = start.elapsed();
    let until = Instant::now() + Duration::from_millis(2);
    while Instant::now() < until {
        std::hint::spin_loop();
    }
    let start = Instant::now();
    lp.run_nowait().expect("run");
    armed + start.elapsed()
}

fn immediates_round(lp: &mut Loop, n: u64) -> Duration {
    let start = Instant::now();
    for _ in 0..n {
        lp.set_immediate(|_| {});
    }
    lp.run_nowait().expect("run");
    start.elapsed()
}

fn ticks_round(lp: &mut Loop, n: u64) -> Duration {
    let start = Instant::now();
    for _ in 0..n {
        lp.next_tick(|_| {});
    }
    lp.run_nowait().expect("run");
    start.elapsed()
}

/// Runs `round` over `iters` operations in batches of at most `BATCH`.
fn batched(iters: u64, lp: &mut Loop, round: fn(&mut Loop, u64) -> Duration) -> Duration {
    let mut total = Duration::ZERO;
    let mut left = iters;
    while left > 0 {
        let n = left.min(BATCH);
        total += round(lp, n);
        left -= n;
    }
    total
}

fn bench_loop(c: &mut Criterion) {
    c.bench_function("timer set+fire", |b| {
        let mut lp = alive_loop();
        b.iter_custom(|iters| batched(iters, &mut lp, timers_round));
    });
    c.bench_function("timer set+fire (2 ms wait spun, as node's)", |b| {
        let mut lp = alive_loop();
        b.iter_custom(|iters| batched(iters, &mut lp, timers_round_spin));
    });
    c.bench_function("immediate", |b| {
        let mut lp = alive_loop();
        b.iter_custom(|iters| batched(iters, &mut lp, immediates_round));
    });
    c.bench_function("next_tick", |b| {
        let mut lp = alive_loop();
        b.iter_custom(|iters| batched(iters, &mut lp, ticks_round));
    });
    c.bench_function("queue_work round trip", |b| {
        let mut lp = new_loop();
        b.iter(|| {
            lp.queue_work(
                || black_box(1u32),
                |_, r| {
                    black_box(r).ok();
                },
            )
            .expect("queue_work");
            while lp.run_once().expect("run") {}
        });
    });
    c.bench_function("empty iteration (run_nowait)", |b| {
        let mut lp = alive_loop();
        b.iter(|| lp.run_nowait().expect("run"));
    });
    c.bench_function("empty iteration, one listener (epoll_wait)", |b| {
        // With a descriptor registered, poll makes its zero-timeout `epoll_wait` every time.
        let mut lp = alive_loop();
        let any_port = "127.0.0.1:0".parse().expect("addr");
        lp.tcp_listen(any_port, ListenOptions::default(), |_, _| {})
            .expect("listen");
        b.iter(|| lp.run_nowait().expect("run"));
    });
    // Floors, not loop operations: what the machine charges for the pieces the loop is made of.
    c.bench_function("floor: clock read (Instant::now)", |b| {
        b.iter(|| black_box(Instant::now()))
    });
    c.bench_function(
        "floor: clock read (Loop::hrtime, the read a timer arm makes)",
        |b| {
            // `hrtime` is uncached: one `CLOCK_MONOTONIC` read through rustix, as `update_time`.
            let lp = new_loop();
            b.iter(|| black_box(lp.hrtime()))
        },
    );
    c.bench_function("floor: thread wake round trip (park/unpark)", |b| {
        b.iter_custom(thread_wake_round_trips)
    });
}

/// `n` round trips between this thread and a fresh one, each side parking until the other
/// unparks it: two futex wake-ups and two context switches, the least any thread-pool round
/// trip can cost (the pool adds a queue, a condition variable and the loop's eventfd + poll).
fn thread_wake_round_trips(n: u64) -> Duration {
    use std::sync::Arc;
    let ping = Arc::new(AtomicU64::new(0));
    let pong = Arc::new(AtomicU64::new(0));
    let me = std::thread::current();
    let (worker_ping, worker_pong) = (Arc::clone(&ping), Arc::clone(&pong));
    let worker = std::thread::spawn(move || {
        for i in 1..=n {
            while worker_ping.load(Ordering::Acquire) < i {
                std::thread::park();
            }
            worker_pong.store(i, Ordering::Release);
            me.unpark();
        }
    });
    let worker_thread = worker.thread().clone();
    let start = Instant::now();
    for i in 1..=n {
        ping.store(i, Ordering::Release);
        worker_thread.unpark();
        while pong.load(Ordering::Acquire) < i {
            std::thread::park();
        }
    }
    let elapsed = start.elapsed();
    worker.join().expect("worker");
    elapsed
}

/// Allocations per operation once the loop's slabs, heap and queues have grown to size.
fn allocations_per_op(lp: &mut Loop, round: fn(&mut Loop, u64) -> Duration) -> f64 {
    for _ in 0..3 {
        round(lp, BATCH); // warm up: grow every buffer once
    }
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    round(lp, BATCH);
    let after = ALLOCATIONS.load(Ordering::Relaxed);
    (after - before) as f64 / BATCH as f64
}

fn report_allocations() {
    let timer = allocations_per_op(&mut alive_loop(), timers_round);
    let immediate = allocations_per_op(&mut alive_loop(), immediates_round);
    let tick = allocations_per_op(&mut alive_loop(), ticks_round);
    let mut lp = new_loop();
    let work_round = |lp: &mut Loop, n: u64| {
        for _ in 0..n {
            lp.queue_work(|| 1u32, |_, _| {}).expect("queue_work");
            while lp.run_once().expect("run") {}
        }
        Duration::ZERO
    };
    let work = allocations_per_op(&mut lp, work_round);
    let mut lp = alive_loop();
    let empty = allocations_per_op(&mut lp, |lp, n| {
        for _ in 0..n {
            lp.run_nowait().expect("run");
        }
        Duration::ZERO
    });
    println!("allocations/op (steady state):");
    println!("  timer set+fire          {timer:.3}");
    println!("  immediate               {immediate:.3}");
    println!("  next_tick               {tick:.3}");
    println!("  queue_work round trip   {work:.3}");
    println!("  empty iteration         {empty:.3}");
}

criterion_group!(benches, bench_loop);

fn main() {
    report_allocations();
    benches();
    Criterion::default().configure_from_args().final_summary();
}

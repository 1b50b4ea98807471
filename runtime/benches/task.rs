//! Promise/task micro-benchmarks: `taskset -c 0 cargo bench -p oneloop-runtime --bench task`,
//! compared with `taskset -c 0 node benches/node/await_bench.js`.
//!
//! - `await_settled`: one `await` of an already-fulfilled promise (the task suspends, a
//!   `Resume` microtask is queued, the drain polls it again), timed over BATCH awaits in one
//!   task: Node's `for (..) await p`. `await_settled_promise_ref`: the same awaiting `&p`
//!   (no clone of the promise's `Rc`, as `await p` takes none).
//! - `spawn_and_finish`: spawning a task that awaits once and finishes (Node: calling an
//!   `async function` with one `await` and letting it return), BATCH per run.
//! - `floor: ...`: what any executor pays per resumption on this machine, without the loop: a
//!   key pushed on a queue and popped, then one poll of a boxed `dyn Future` that is ready every
//!   other poll (the least a microtask-resumed await can cost: queue, dispatch, state machine),
//!   and the same plus an `Rc<RefCell<..>>` borrow of a slab slot to take the future out and put
//!   it back (what a task stored in a slab adds).
use std::cell::RefCell;
use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
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

/// The same, awaiting `&p` (JavaScript's `await p` does not consume `p`: no `Rc` clone).
fn await_settled_ref(lp: &mut Loop, iters: u64) -> Duration {
    let p = Promise::<u64, ()>::resolved(1);
    let started = Instant::now();
    lp.spawn_task(async move {
        let mut sum = 0;
        for _ in 0..iters {
            sum += (&p).await.unwrap();
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

/// Ready every other poll: an `await` that yields once, as a settled promise's does.
struct EveryOther(bool);

impl Future for EveryOther {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<()> {
        self.0 = !self.0;
        if self.0 {
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    }
}

/// `iters` resumptions: queue a key, pop it, poll the boxed future once.
fn floor_queue_and_poll(iters: u64) -> Duration {
    let mut queue: VecDeque<u32> = VecDeque::with_capacity(16);
    let mut future: Pin<Box<dyn Future<Output = ()>>> = Box::pin(EveryOther(false));
    let waker = Waker::noop();
    let mut cx = Context::from_waker(waker);
    let started = Instant::now();
    for i in 0..iters {
        queue.push_back(black_box(i as u32));
        if let Some(key) = queue.pop_front() {
            black_box(key);
            let _ = black_box(future.as_mut().poll(&mut cx));
        }
    }
    started.elapsed()
}

type Slot = Option<Pin<Box<dyn Future<Output = ()>>>>;

/// The same, with the future taken out of a shared slab slot and put back around the poll.
fn floor_queue_slab_and_poll(iters: u64) -> Duration {
    let mut queue: VecDeque<u32> = VecDeque::with_capacity(16);
    let slab: Rc<RefCell<Vec<Slot>>> =
        Rc::new(RefCell::new(vec![Some(Box::pin(EveryOther(false)))]));
    let waker = Waker::noop();
    let mut cx = Context::from_waker(waker);
    let started = Instant::now();
    for _ in 0..iters {
        queue.push_back(black_box(0));
        if let Some(key) = queue.pop_front() {
            let taken = slab.borrow_mut()[key as usize].take();
            if let Some(mut future) = taken {
                let _ = black_box(future.as_mut().poll(&mut cx));
                slab.borrow_mut()[key as usize] = Some(future);
            }
        }
    }
    started.elapsed()
}

fn benches(c: &mut Criterion) {
    c.bench_function("task/floor: queue + poll of a boxed future", |b| {
        b.iter_custom(floor_queue_and_poll)
    });
    c.bench_function("task/floor: queue + slab take/put + poll", |b| {
        b.iter_custom(floor_queue_slab_and_poll)
    });
    let mut lp = new_loop();
    c.bench_function("task/await_settled_promise", |b| {
        b.iter_custom(|iters| await_settled(&mut lp, iters))
    });
    c.bench_function("task/await_settled_promise_ref", |b| {
        b.iter_custom(|iters| await_settled_ref(&mut lp, iters))
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

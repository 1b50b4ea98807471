//! Tasks and promises against the loop's lifetime rules: cross-thread wakes, cancellation by
//! dropping a `JoinHandle`, what keeps the loop alive, panics, and allocations per `await`.

mod alloc_counter;

use std::cell::Cell;
use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use oneloop_runtime::task::{self, Promise};
use oneloop_runtime::{Clock, Loop, LoopOptions};

fn virtual_loop() -> Loop {
    Loop::with_options(LoopOptions {
        clock: Clock::Virtual,
        ..LoopOptions::default()
    })
    .unwrap()
}

/// A future completed by another thread: it hands its waker over and the thread wakes it.
struct FromThread {
    shared: Arc<Mutex<(bool, Option<Waker>)>>,
}

impl Future for FromThread {
    type Output = ();
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut s = self.shared.lock().unwrap();
        if s.0 {
            return Poll::Ready(());
        }
        s.1 = Some(cx.waker().clone());
        Poll::Pending
    }
}

#[test]
fn a_wake_from_another_thread_resumes_the_task_on_the_loop_thread() {
    let mut lp = Loop::new().unwrap();
    // The async handle keeps the loop alive while the other thread works (a pending task alone
    // would not), and the guard timer ends a broken run instead of hanging it.
    let keep_alive = lp.async_handle(|_| {});
    let guard = lp.set_timeout(10_000, |lp| lp.stop());
    let shared = Arc::new(Mutex::new((false, None::<Waker>)));
    let resumed_on = Rc::new(Cell::new(None));
    let r = Rc::clone(&resumed_on);
    let keep_id = keep_alive.id();
    let future = FromThread {
        shared: Arc::clone(&shared),
    };
    lp.spawn_task(async move {
        future.await;
        r.set(Some(std::thread::current().id()));
        task::with_loop(move |lp| {
            lp.async_close(keep_id, |_| {}).unwrap();
            lp.clear_timeout(guard).unwrap();
        });
    })
    .detach();
    let waker_thread = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(20));
        let mut s = shared.lock().unwrap();
        s.0 = true;
        s.1.take().expect("the task registered its waker").wake();
    });
    lp.run().unwrap();
    waker_thread.join().unwrap();
    assert_eq!(resumed_on.get(), Some(std::thread::current().id()));
    assert_eq!(lp.tasks_alive(), 0);
}

/// Sets its flag when dropped: proves the task's future (and what it owns) was freed.
struct DropFlag(Rc<Cell<bool>>);
impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.set(true);
    }
}

#[test]
fn dropping_the_join_handle_of_a_sleeping_task_clears_its_timer_and_frees_it() {
    let mut lp = virtual_loop();
    let dropped = Rc::new(Cell::new(false));
    let flag = DropFlag(Rc::clone(&dropped));
    let woke = Rc::new(Cell::new(false));
    let w = Rc::clone(&woke);
    let owned = Rc::new(());
    let held = Rc::clone(&owned);
    let handle = lp.spawn_task(async move {
        let _flag = flag;
        let _held = held;
        task::sleep(10_000).await;
        w.set(true);
    });
    assert_eq!(
        lp.active_handles()
            .iter()
            .filter(|h| h.kind == "timer")
            .count(),
        1,
        "the sleep armed its timer"
    );
    assert_eq!(Rc::strong_count(&owned), 2);
    drop(handle);
    assert!(
        dropped.get(),
        "the task's future is dropped with its handle"
    );
    lp.run().unwrap();
    assert!(!woke.get());
    assert!(
        lp.now() < 10_000,
        "run returned without waiting for the timer"
    );
    assert!(lp.active_handles().is_empty(), "{:?}", lp.active_handles());
    assert_eq!(lp.tasks_alive(), 0);
    assert_eq!(
        Rc::strong_count(&owned),
        1,
        "nothing the task owned is leaked"
    );
}

#[test]
fn a_task_awaiting_a_promise_nobody_settles_does_not_keep_the_loop_alive() {
    let mut lp = virtual_loop();
    let (never, _resolver) = Promise::<(), ()>::pending();
    let finished = Rc::new(Cell::new(false));
    let f = Rc::clone(&finished);
    let handle = lp.spawn_task(async move {
        let _ = never.await;
        f.set(true);
    });
    lp.run().unwrap();
    assert!(!finished.get());
    assert!(!handle.is_finished());
    assert_eq!(
        lp.tasks_alive(),
        1,
        "still pending, as a Node promise would be"
    );
}

#[test]
fn a_task_sleeping_on_a_refd_timer_keeps_the_loop_alive_until_it_finishes() {
    let mut lp = virtual_loop();
    let handle = lp.spawn_task(async {
        task::sleep(5_000).await;
        task::sleep(5_000).await;
        7
    });
    lp.run().unwrap();
    assert!(handle.is_finished());
    assert!(lp.now() >= 10_000, "now = {}", lp.now());
}

#[test]
fn a_panicking_task_goes_to_the_uncaught_hook_and_the_loop_goes_on() {
    let mut lp = virtual_loop();
    let seen = Rc::new(Cell::new(0));
    let s = Rc::clone(&seen);
    lp.on_uncaught_panic(move |_, p| {
        assert!(p.message().contains("bug in a task"), "{}", p.message());
        s.set(s.get() + 1);
    });
    lp.spawn_task(async {
        task::sleep(1).await;
        panic!("bug in a task");
    })
    .detach();
    let after = Rc::new(Cell::new(false));
    let a = Rc::clone(&after);
    lp.set_timeout(5, move |_| a.set(true));
    lp.run().unwrap();
    assert_eq!(seen.get(), 1);
    assert!(after.get());
    assert_eq!(lp.tasks_alive(), 0, "the panicked task is dropped");
}

#[test]
fn a_panicking_task_without_a_hook_unwinds_out_of_run() {
    let mut lp = virtual_loop();
    lp.spawn_task(async {
        task::yield_now().await;
        panic!("bug in a task");
    })
    .detach();
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| lp.run()));
    assert!(result.is_err());
}

#[test]
fn awaiting_a_settled_promise_in_steady_state_allocates_nothing() {
    const AWAITS: u64 = 10_000;
    let mut lp = virtual_loop();
    let settled = Promise::<u64, ()>::resolved(1);
    let counted = Rc::new(Cell::new(None));
    let c = Rc::clone(&counted);
    let handle = lp.spawn_task(async move {
        let mut sum = 0;
        for _ in 0..100 {
            sum += settled.clone().await.unwrap(); // warm-up: the queue reaches its capacity
        }
        alloc_counter::count_this_thread(true);
        let before = alloc_counter::allocations();
        for _ in 0..AWAITS {
            sum += settled.clone().await.unwrap();
            task::yield_now().await;
        }
        let allocated = alloc_counter::allocations() - before;
        alloc_counter::count_this_thread(false);
        c.set(Some(allocated));
        sum
    });
    lp.run().unwrap();
    assert!(handle.is_finished());
    assert_eq!(
        counted.get(),
        Some(0),
        "{AWAITS} awaits of a settled promise + {AWAITS} yields"
    );
}

type Log = Rc<std::cell::RefCell<Vec<&'static str>>>;

fn logger(log: &Log, token: &'static str) -> impl FnOnce(&mut Loop) + 'static {
    let log = Rc::clone(log);
    move |_| log.borrow_mut().push(token)
}

/// JavaScript: `(async () => { queueMicrotask(m1); await p; a1; queueMicrotask(m2); await p; a2
/// })(); queueMicrotask(outer)` logs m1 a1 outer m2 a2: a task resuming itself keeps its place
/// behind the microtasks queued before its wake (the drain runs a resumption at once only when
/// it is the next job).
#[test]
fn a_task_resuming_itself_stays_behind_microtasks_queued_before_its_wake() {
    let mut lp = virtual_loop();
    let log: Log = Rc::default();
    let p = Promise::<u32, ()>::resolved(1);
    let l = Rc::clone(&log);
    lp.spawn_task(async move {
        task::queue_microtask(logger(&l, "m1"));
        p.clone().await.unwrap();
        l.borrow_mut().push("a1");
        task::queue_microtask(logger(&l, "m2"));
        p.await.unwrap();
        l.borrow_mut().push("a2");
    })
    .detach();
    lp.queue_microtask(logger(&log, "outer"));
    lp.run().unwrap();
    assert_eq!(*log.borrow(), ["m1", "a1", "outer", "m2", "a2"]);
}

/// Awaits `p` in a poll that, after the await registered, queues a microtask (first poll) or
/// spawns `child` (if given): the wake came first, so the resumption runs first.
async fn wake_then(p: Promise<u32, ()>, log: Log, child: Option<Promise<u32, ()>>) {
    let mut awaiting = Box::pin(p.into_future());
    let mut first = true;
    std::future::poll_fn(|cx| {
        let polled = awaiting.as_mut().poll(cx);
        if std::mem::take(&mut first) {
            match child.clone() {
                None => task::queue_microtask(logger(&log, "microtask")),
                Some(c) => {
                    let l = Rc::clone(&log);
                    task::spawn(async move {
                        c.await.unwrap();
                        l.borrow_mut().push("child");
                    })
                    .detach();
                }
            }
        }
        polled.map(|_| ())
    })
    .await;
    log.borrow_mut().push("resumed");
}

#[test]
fn a_wake_before_a_microtask_queued_in_the_same_poll_resumes_the_task_first() {
    for later_poll in [false, true] {
        let mut lp = virtual_loop();
        let log: Log = Rc::default();
        let p = Promise::<u32, ()>::resolved(1);
        let l = Rc::clone(&log);
        lp.spawn_task(async move {
            if later_poll {
                task::yield_now().await; // polled by the drain, not by spawn
            }
            wake_then(p, l, None).await;
        })
        .detach();
        lp.run().unwrap();
        assert_eq!(*log.borrow(), ["resumed", "microtask"], "{later_poll}");
    }
}

#[test]
fn a_task_woken_before_it_spawns_a_task_resumes_before_that_task() {
    for later_poll in [false, true] {
        let mut lp = virtual_loop();
        let log: Log = Rc::default();
        let p = Promise::<u32, ()>::resolved(1);
        let l = Rc::clone(&log);
        lp.spawn_task(async move {
            if later_poll {
                task::yield_now().await;
            }
            wake_then(p.clone(), l, Some(p)).await;
        })
        .detach();
        lp.run().unwrap();
        assert_eq!(*log.borrow(), ["resumed", "child"], "{later_poll}");
    }
}

#[test]
fn a_finished_tasks_output_waits_for_its_handle_without_counting_as_alive() {
    let mut lp = virtual_loop();
    let handle = lp.spawn_task(async { String::from("out") });
    assert!(handle.is_finished());
    assert_eq!(lp.tasks_alive(), 0);
    let got = Rc::new(std::cell::RefCell::new(None));
    let g = Rc::clone(&got);
    lp.spawn_task(async move { *g.borrow_mut() = Some(handle.await) })
        .detach();
    lp.run().unwrap();
    assert_eq!(got.borrow().as_deref(), Some("out"));
    let detached = lp.spawn_task(async { vec![1u8; 10] });
    let dropped = lp.spawn_task(async { 3u32 });
    detached.detach();
    assert!(!dropped.cancel(), "finished: not running any more");
    assert_eq!(lp.tasks_alive(), 0);
}

/// Spawns a task that is never ready, wakes `stale` (the waker of a task that finished), runs
/// the loop and returns how many times the new task was polled (1: by its spawn only).
fn polls_after_a_stale_wake(lp: &mut Loop, stale: &Waker) -> u32 {
    let polls = Rc::new(Cell::new(0));
    let p = Rc::clone(&polls);
    let later = lp.spawn_task(std::future::poll_fn(move |_| {
        p.set(p.get() + 1);
        Poll::<()>::Pending
    }));
    stale.wake_by_ref();
    lp.run().unwrap();
    drop(later);
    polls.get()
}

#[test]
fn a_waker_kept_after_its_task_finished_wakes_no_later_task() {
    let mut lp = virtual_loop();
    let kept = Rc::new(std::cell::RefCell::new(None::<Waker>));
    let k = Rc::clone(&kept);
    lp.spawn_task(std::future::poll_fn(move |cx| {
        *k.borrow_mut() = Some(cx.waker().clone());
        Poll::Ready(())
    }))
    .detach();
    let kept = kept.borrow_mut().take().unwrap();
    assert_eq!(
        polls_after_a_stale_wake(&mut lp, &kept),
        1,
        "polled by spawn only"
    );
}

#[test]
fn a_waker_kept_after_a_detached_task_finished_in_the_drain_wakes_no_later_task() {
    // The task finishes in a resumption (detached by then), so its waker goes back with its
    // slot: a clone kept elsewhere must keep it from being handed to the next task.
    let mut lp = virtual_loop();
    let kept = Rc::new(std::cell::RefCell::new(None::<Waker>));
    let k = Rc::clone(&kept);
    lp.spawn_task(async move {
        task::yield_now().await;
        std::future::poll_fn(|cx| {
            *k.borrow_mut() = Some(cx.waker().clone());
            Poll::Ready(())
        })
        .await;
    })
    .detach();
    lp.run().unwrap();
    let kept = kept.borrow_mut().take().unwrap();
    assert_eq!(
        polls_after_a_stale_wake(&mut lp, &kept),
        1,
        "polled by spawn only"
    );
}

#[test]
fn spawning_a_detached_task_in_steady_state_allocates_only_its_future() {
    const TASKS: u64 = 1_000;
    let mut lp = virtual_loop();
    let mut counted = None;
    for round in 0..2 {
        // Round 0 warms up: the slab, the queue and the spare wakers reach their size.
        alloc_counter::count_this_thread(round == 1);
        let before = alloc_counter::allocations();
        for _ in 0..TASKS {
            lp.spawn_task(async { task::yield_now().await }).detach();
        }
        lp.run().unwrap();
        counted = Some(alloc_counter::allocations() - before);
        alloc_counter::count_this_thread(false);
    }
    assert_eq!(counted, Some(TASKS), "{TASKS} spawns: one box each");
}

/// Callbacks counted by `lp.metrics()` for one task that yields once, then awaits a settled
/// promise `awaits` times: with `traced`, a trace observer is attached (every resumption then
/// suspends and is traced as its own microtask); without, the awaits go on in place.
fn callbacks_for_settled_awaits(traced: bool, awaits: usize) -> u64 {
    let mut lp = virtual_loop();
    let trace = std::env::temp_dir().join(format!(
        "oneloop-awaits-{}-{traced}.trace",
        std::process::id()
    ));
    if traced {
        lp.start_trace_file(&trace).unwrap();
    }
    let before = lp.metrics().callbacks;
    let settled = Promise::<u64, ()>::resolved(1);
    let handle = lp.spawn_task(async move {
        task::yield_now().await;
        let mut sum = 0;
        for _ in 0..awaits {
            sum += settled.clone().await.unwrap();
        }
        sum
    });
    lp.run().unwrap();
    assert!(handle.is_finished());
    let counted = lp.metrics().callbacks - before;
    if traced {
        lp.finish_trace().unwrap();
        let _ = std::fs::remove_file(&trace);
    }
    counted
}

#[test]
fn awaits_that_go_on_in_place_still_count_as_one_microtask_each() {
    let in_place = callbacks_for_settled_awaits(false, 50);
    let traced = callbacks_for_settled_awaits(true, 50);
    assert_eq!(in_place, traced, "same callbacks with and without a trace");
    assert!(in_place >= 51, "the yield and the 50 awaits: {in_place}");
}

#[test]
fn awaiting_a_reference_leaves_the_promise_usable_and_waits_like_awaiting_it() {
    let mut lp = virtual_loop();
    let (pending, resolver) = Promise::<u32, ()>::pending();
    let order = Rc::new(std::cell::RefCell::new(Vec::new()));
    let got = Rc::new(Cell::new(None));
    let (o, g) = (Rc::clone(&order), Rc::clone(&got));
    lp.spawn_task(async move {
        let first = (&pending).await;
        o.borrow_mut().push("resumed");
        let again = (&pending).await; // settled now: the same value, the promise still here
        g.set(Some((first, again, pending.is_pending())));
    })
    .detach();
    let o = Rc::clone(&order);
    lp.set_timeout(5, move |_| {
        o.borrow_mut().push("timer");
        resolver.resolve(7);
    });
    lp.run().unwrap();
    assert_eq!(*order.borrow(), ["timer", "resumed"]);
    assert_eq!(got.get(), Some((Ok(7), Ok(7), false)));
}

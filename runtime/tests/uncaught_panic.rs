//! The uncaught-panic policy: without a hook a panic in a callback unwinds out of `run` (Node's
//! default: an uncaught exception ends the process); with `on_uncaught_panic` (Node's
//! `process.on('uncaughtException')`) it reaches the hook and the loop keeps running, with its
//! queues, refs and liveness intact.

use std::cell::RefCell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::rc::Rc;

use oneloop_runtime::{CallbackKind, Loop, Phase};

type Log = Rc<RefCell<Vec<String>>>;

fn logging_hook(lp: &mut Loop) -> Log {
    let log: Log = Rc::default();
    let l = Rc::clone(&log);
    lp.on_uncaught_panic(move |_lp, p| {
        l.borrow_mut()
            .push(format!("hook {} {}", p.callback().name(), p.message()))
    });
    log
}

fn push(log: &Log, s: &str) {
    log.borrow_mut().push(s.to_string());
}

#[test]
fn panic_in_pool_completion_without_hook_propagates_from_run() {
    let mut lp = Loop::new().unwrap();
    lp.queue_work(|| 1, |_lp, _n| panic!("completion bug"))
        .unwrap();
    let out = catch_unwind(AssertUnwindSafe(|| lp.run()));
    let payload = out.expect_err("the panic must leave run");
    assert_eq!(payload.downcast_ref::<&str>(), Some(&"completion bug"));
}

#[test]
fn panic_in_timer_without_hook_propagates_from_run() {
    let mut lp = Loop::with_virtual_clock().unwrap();
    lp.set_timeout(5, |_lp| panic!("timer bug"));
    assert!(catch_unwind(AssertUnwindSafe(|| lp.run())).is_err());
}

#[test]
fn panic_in_timer_reaches_uncaught_hook_and_later_timers_still_fire() {
    let mut lp = Loop::with_virtual_clock().unwrap();
    let log = logging_hook(&mut lp);
    let l = Rc::clone(&log);
    lp.set_timeout(1, |_lp| panic!("timer bug"));
    lp.set_timeout(1, move |_lp| push(&l, "second timer, same ms"));
    let l = Rc::clone(&log);
    lp.set_timeout(10, move |_lp| push(&l, "later timer"));
    lp.run().unwrap();
    assert_eq!(
        *log.borrow(),
        [
            "hook timer timer bug",
            "second timer, same ms",
            "later timer"
        ]
    );
    assert!(!lp.is_alive());
}

#[test]
fn panic_in_pool_completion_reaches_hook_and_the_loop_exits_when_done() {
    let mut lp = Loop::new().unwrap();
    let log = logging_hook(&mut lp);
    for i in 0..4 {
        let l = Rc::clone(&log);
        lp.queue_work(
            move || i,
            move |_lp, n| {
                if n == Ok(1) {
                    panic!("completion bug");
                }
                push(&l, "completion");
            },
        )
        .unwrap();
    }
    // `run` returns: the request whose `after` panicked no longer keeps the loop alive, and
    // the completions swapped out with it still ran.
    lp.run().unwrap();
    let log = log.borrow();
    assert_eq!(log.iter().filter(|l| *l == "completion").count(), 3);
    assert!(log.contains(&"hook work completion bug".to_string()));
}

#[test]
fn panic_in_a_tick_does_not_drop_the_ticks_and_microtasks_behind_it() {
    let mut lp = Loop::with_virtual_clock().unwrap();
    let log = logging_hook(&mut lp);
    let l = Rc::clone(&log);
    lp.set_immediate(move |lp| {
        let (a, b, c) = (Rc::clone(&l), Rc::clone(&l), Rc::clone(&l));
        lp.next_tick(move |_| push(&a, "tick 1"));
        lp.next_tick(|_| panic!("tick bug"));
        lp.next_tick(move |_| push(&b, "tick 3"));
        lp.queue_microtask(|_| panic!("microtask bug"));
        lp.queue_microtask(move |_| push(&c, "microtask 2"));
    });
    lp.run().unwrap();
    assert_eq!(
        *log.borrow(),
        [
            "tick 1",
            "hook next-tick tick bug",
            "tick 3",
            "hook microtask microtask bug",
            "microtask 2"
        ]
    );
}

#[test]
fn panicking_interval_is_rearmed_and_can_be_cleared_as_in_node() {
    let mut lp = Loop::with_virtual_clock().unwrap();
    let turns = Rc::new(RefCell::new(0));
    let t = Rc::clone(&turns);
    let panics = Rc::new(RefCell::new(0));
    let p = Rc::clone(&panics);
    lp.on_uncaught_panic(move |_lp, _| *p.borrow_mut() += 1);
    let id = Rc::new(RefCell::new(None));
    let own = Rc::clone(&id);
    let interval = lp.set_interval(10, move |lp| {
        *t.borrow_mut() += 1;
        if *t.borrow() == 3 {
            lp.clear_interval(own.borrow().unwrap()).unwrap();
        }
        panic!("interval bug");
    });
    *id.borrow_mut() = Some(interval);
    lp.run().unwrap();
    assert_eq!((*turns.borrow(), *panics.borrow()), (3, 3));
}

#[test]
fn every_kind_of_loop_callback_reaches_the_hook() {
    let mut lp = Loop::with_virtual_clock().unwrap();
    let seen = Rc::new(RefCell::new(Vec::new()));
    let s = Rc::clone(&seen);
    lp.on_uncaught_panic(move |_lp, p| s.borrow_mut().push((p.callback(), p.phase())));
    lp.set_immediate(|_| panic!("immediate"));
    lp.defer(|_| panic!("pending"));
    lp.queue_work(|| (), |_, _| panic!("work")).unwrap();
    let mut once = true;
    lp.on_before_exit(move |_| {
        if std::mem::take(&mut once) {
            panic!("before exit")
        }
    });
    lp.run().unwrap();
    let seen = seen.borrow();
    for want in [
        (CallbackKind::Immediate, Phase::Check),
        (CallbackKind::Pending, Phase::Pending),
        (CallbackKind::Work, Phase::Poll),
        (CallbackKind::BeforeExit, Phase::BeforeExit),
    ] {
        assert!(seen.contains(&want), "{want:?} in {seen:?}");
    }
}

#[test]
fn panic_in_the_hook_propagates_from_run_and_the_hook_stays() {
    let mut lp = Loop::with_virtual_clock().unwrap();
    let calls = Rc::new(RefCell::new(0));
    let c = Rc::clone(&calls);
    lp.on_uncaught_panic(move |_lp, _| {
        *c.borrow_mut() += 1;
        panic!("hook bug");
    });
    lp.set_timeout(1, |_| panic!("first"));
    lp.set_timeout(2, |_| panic!("second"));
    assert!(catch_unwind(AssertUnwindSafe(|| lp.run())).is_err());
    assert!(catch_unwind(AssertUnwindSafe(|| lp.run())).is_err());
    assert_eq!(*calls.borrow(), 2);
    assert!(lp.clear_uncaught_panic());
    assert!(!lp.clear_uncaught_panic());
}

#[test]
fn a_cleared_hook_restores_the_default_policy() {
    let mut lp = Loop::with_virtual_clock().unwrap();
    lp.on_uncaught_panic(|_, _| {});
    lp.clear_uncaught_panic();
    lp.set_timeout(1, |_| panic!("x"));
    assert!(catch_unwind(AssertUnwindSafe(|| lp.run())).is_err());
}

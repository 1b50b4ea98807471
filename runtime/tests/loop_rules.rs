//! One test per loop rule, each named as the sentence it checks.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use oneloop_runtime::{
    CallbackKind, HandleError, ListenOptions, Loop, LoopOptions, Phase, TimerDelay, TimerId,
    TraceEvent, WorkError, TIMEOUT_MAX_MS,
};

type Log = Rc<RefCell<Vec<String>>>;

fn new_loop() -> Loop {
    with_pool(2)
}

fn with_pool(threadpool_size: usize) -> Loop {
    Loop::with_options(LoopOptions {
        threadpool_size,
        trace_to_stderr: false,
        ..LoopOptions::default()
    })
    .expect("loop")
}

fn say(log: &Log, token: &'static str) -> impl FnOnce(&mut Loop) + 'static {
    let log = log.clone();
    move |_| log.borrow_mut().push(token.to_owned())
}

fn tokens(log: &Log) -> Vec<String> {
    log.borrow().clone()
}

fn sleep_ms(ms: u64) {
    std::thread::sleep(Duration::from_millis(ms));
}

// ---------------------------------------------------------------------------------------------
// Timers
// ---------------------------------------------------------------------------------------------

#[test]
fn timers_due_at_the_same_deadline_fire_in_creation_order() {
    let mut lp = new_loop();
    let log = Log::default();
    for token in ["a", "b", "c", "d", "e"] {
        lp.set_timeout(1, say(&log, token));
    }
    sleep_ms(3);
    lp.run().unwrap();
    assert_eq!(tokens(&log), ["a", "b", "c", "d", "e"]);
}

#[test]
fn delays_of_zero_negative_nan_and_above_2_pow_31_minus_1_become_one_ms() {
    assert_eq!(0.to_delay_ms(), 1);
    assert_eq!((-5).to_delay_ms(), 1);
    assert_eq!(f64::NAN.to_delay_ms(), 1);
    assert_eq!((TIMEOUT_MAX_MS + 1).to_delay_ms(), 1);
    assert_eq!(TIMEOUT_MAX_MS.to_delay_ms(), TIMEOUT_MAX_MS);
    assert_eq!(2.9f64.to_delay_ms(), 2, "fractions are truncated");

    // And on the loop: all of them join the 1 ms timers, ahead of a 2 ms one armed first.
    let mut lp = new_loop();
    let log = Log::default();
    lp.set_timeout(2, say(&log, "two"));
    lp.set_timeout(0, say(&log, "zero"));
    lp.set_timeout(-5, say(&log, "negative"));
    lp.set_timeout(f64::NAN, say(&log, "nan"));
    lp.set_timeout(TIMEOUT_MAX_MS + 1, say(&log, "huge"));
    sleep_ms(5);
    lp.run().unwrap();
    assert_eq!(tokens(&log), ["zero", "negative", "nan", "huge", "two"]);
}

#[test]
fn a_timer_that_becomes_due_while_timers_run_waits_for_the_next_iteration() {
    // On the virtual clock: "late" must not be due when the first batch is collected, which a
    // real clock cannot promise on a loaded machine (the run may start more than 5 ms late).
    let mut lp = Loop::with_virtual_clock().unwrap();
    let log = Log::default();
    let l = log.clone();
    lp.set_timeout(1, move |lp| {
        l.borrow_mut().push("first".into());
        lp.set_immediate(say(&l, "immediate"));
        lp.set_timeout(0, say(&l, "armed-in-batch"));
        // Busy for 10 ms: "late" is due by now, but was not due when the batch was collected.
        lp.advance(Duration::from_millis(10));
    });
    lp.set_timeout(5, say(&log, "late"));
    lp.advance(Duration::from_millis(2));
    lp.run().unwrap();
    assert_eq!(
        tokens(&log),
        ["first", "immediate", "armed-in-batch", "late"],
        "both were due before the batch ended, and both waited for the next timers phase"
    );
}

#[test]
fn an_interval_is_rearmed_relative_to_the_time_its_callback_started() {
    let mut lp = new_loop();
    let starts = Rc::new(RefCell::new(Vec::new()));
    let s = starts.clone();
    let id: Rc<Cell<Option<TimerId>>> = Rc::default();
    let id2 = id.clone();
    let iv = lp.set_interval(10, move |lp| {
        s.borrow_mut().push(lp.now());
        if s.borrow().len() == 3 {
            lp.clear_interval(id2.get().unwrap()).unwrap();
        }
    });
    id.set(Some(iv));
    lp.run().unwrap();
    let starts = starts.borrow();
    assert_eq!(starts.len(), 3);
    for pair in starts.windows(2) {
        assert!(
            pair[1] - pair[0] >= 10,
            "runs {pair:?} closer than the period"
        );
    }
}

#[test]
fn an_interval_slower_than_its_period_runs_once_per_iteration_without_a_burst() {
    let mut lp = new_loop();
    let iterations = Rc::new(RefCell::new(Vec::new()));
    let it = iterations.clone();
    let id: Rc<Cell<Option<TimerId>>> = Rc::default();
    let id2 = id.clone();
    let iv = lp.set_interval(1, move |lp| {
        it.borrow_mut().push(lp.metrics().iterations);
        sleep_ms(5); // five periods
        if it.borrow().len() == 4 {
            lp.clear_interval(id2.get().unwrap()).unwrap();
        }
    });
    id.set(Some(iv));
    lp.run().unwrap();
    let iterations = iterations.borrow();
    let mut distinct = iterations.clone();
    distinct.dedup();
    assert_eq!(*iterations, distinct, "at most one run per iteration");
}

#[test]
fn refresh_timer_restarts_the_delay_and_keeps_the_callback() {
    let mut lp = new_loop();
    let fired_at = Rc::new(Cell::new(0u64));
    let f = fired_at.clone();
    let start = Instant::now();
    let target = lp.set_timeout(30, move |_| f.set(start.elapsed().as_millis() as u64));
    lp.set_timeout(20, move |lp| lp.refresh_timer(target).unwrap());
    lp.run().unwrap();
    assert!(
        fired_at.get() >= 50,
        "refreshed at ~20 ms with a 30 ms delay, fired at {} ms",
        fired_at.get()
    );
    assert_eq!(lp.refresh_timer(target), Err(HandleError::Stale));
}

#[test]
fn clear_timeout_from_a_sibling_in_the_same_batch_cancels_a_due_timer() {
    let mut lp = new_loop();
    let log = Log::default();
    let victim: Rc<Cell<Option<TimerId>>> = Rc::default();
    let (l, v) = (log.clone(), victim.clone());
    lp.set_timeout(1, move |lp| {
        l.borrow_mut().push("killer".into());
        assert_eq!(lp.clear_timeout(v.get().unwrap()), Ok(()));
    });
    victim.set(Some(lp.set_timeout(1, say(&log, "victim"))));
    lp.set_timeout(1, say(&log, "bystander"));
    sleep_ms(3);
    lp.run().unwrap();
    assert_eq!(tokens(&log), ["killer", "bystander"]);
}

// ---------------------------------------------------------------------------------------------
// Immediates, ticks, microtasks
// ---------------------------------------------------------------------------------------------

#[test]
fn immediates_queued_in_the_check_phase_run_in_the_next_iteration() {
    let mut lp = new_loop();
    let seen = Rc::new(RefCell::new(Vec::new()));
    let s = seen.clone();
    lp.set_immediate(move |lp| {
        s.borrow_mut().push(("outer", lp.metrics().iterations));
        let s2 = s.clone();
        lp.set_immediate(move |lp| s2.borrow_mut().push(("inner", lp.metrics().iterations)));
    });
    lp.run().unwrap();
    let seen = seen.borrow();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[1].1, seen[0].1 + 1);
}

#[test]
fn ticks_then_microtasks_drain_after_each_callback() {
    let mut lp = new_loop();
    let log = Log::default();
    let l = log.clone();
    lp.set_immediate(move |lp| {
        l.borrow_mut().push("i1".into());
        lp.queue_microtask(say(&l, "i1.micro"));
        lp.next_tick(say(&l, "i1.tick"));
    });
    lp.set_immediate(say(&log, "i2"));
    lp.run().unwrap();
    assert_eq!(tokens(&log), ["i1", "i1.tick", "i1.micro", "i2"]);
}

// ---------------------------------------------------------------------------------------------
// Poll timeout, liveness, ref/unref
// ---------------------------------------------------------------------------------------------

#[test]
fn poll_timeout_is_zero_when_immediates_are_queued() {
    let mut lp = new_loop();
    lp.set_timeout(1000, |_| {});
    lp.set_immediate(|_| {});
    assert_eq!(lp.poll_timeout(), Some(Duration::ZERO));
}

#[test]
fn poll_timeout_is_zero_when_pending_callbacks_exist() {
    let mut lp = new_loop();
    lp.set_timeout(1000, |_| {});
    lp.defer(|_| {});
    assert_eq!(lp.poll_timeout(), Some(Duration::ZERO));
}

#[test]
fn poll_timeout_is_zero_when_the_loop_is_stopped_or_nothing_is_alive() {
    let mut lp = new_loop();
    assert!(!lp.is_alive());
    assert_eq!(lp.poll_timeout(), Some(Duration::ZERO));
    lp.set_timeout(1000, |_| {});
    lp.stop();
    assert_eq!(lp.poll_timeout(), Some(Duration::ZERO));
}

#[test]
fn poll_timeout_is_zero_while_a_close_callback_is_pending() {
    let mut lp = new_loop();
    lp.set_timeout(1000, |_| {});
    let addr = "127.0.0.1:0".parse().unwrap();
    let server = lp
        .tcp_listen(addr, ListenOptions::default(), |_, _| {})
        .unwrap();
    lp.run_nowait().unwrap(); // runs the listener's deferred first accept
    assert!(lp.poll_timeout() > Some(Duration::ZERO));
    let closed = Rc::new(Cell::new(false));
    let c = closed.clone();
    lp.tcp_server_close(server, move |_| c.set(true)).unwrap();
    assert_eq!(lp.poll_timeout(), Some(Duration::ZERO));
    lp.run_nowait().unwrap();
    assert!(closed.get());
}

#[test]
fn poll_timeout_waits_until_the_nearest_timer() {
    let mut lp = new_loop();
    lp.set_timeout(500, |_| {});
    lp.set_timeout(50, |_| {});
    lp.set_timeout(200, |_| {});
    let t = lp.poll_timeout().expect("a timer bounds the wait");
    assert!(
        t <= Duration::from_millis(50) && t >= Duration::from_millis(45),
        "{t:?}"
    );
}

#[test]
fn poll_timeout_is_none_when_only_io_keeps_the_loop_alive() {
    let mut lp = new_loop();
    let (tx, rx) = mpsc::channel::<()>();
    lp.queue_work(move || rx.recv().ok(), |_, _| {}).unwrap();
    assert!(lp.is_alive());
    assert_eq!(lp.poll_timeout(), None, "block until the pool wakes us");
    tx.send(()).unwrap();
    lp.run().unwrap();
}

#[test]
fn run_returns_when_only_unrefd_timers_remain() {
    let mut lp = new_loop();
    let fired = Rc::new(Cell::new(false));
    let f = fired.clone();
    let t = lp.set_timeout(10_000, move |_| f.set(true));
    let iv = lp.set_interval(1, |_| {});
    lp.unref(t).unwrap();
    lp.unref(iv).unwrap();
    let start = Instant::now();
    lp.run().unwrap();
    assert!(start.elapsed() < Duration::from_secs(1));
    assert!(!fired.get());
    assert!(!lp.is_alive());
}

#[test]
fn has_ref_reports_and_ref_and_unref_are_idempotent() {
    let mut lp = new_loop();
    let t = lp.set_timeout(1000, |_| {});
    assert_eq!(lp.has_ref(t), Ok(true));
    lp.unref(t).unwrap();
    lp.unref(t).unwrap();
    assert_eq!(lp.has_ref(t), Ok(false));
    assert!(!lp.is_alive());
    lp.ref_(t).unwrap();
    assert_eq!(lp.has_ref(t), Ok(true));
    assert!(lp.is_alive());
    lp.ref_(t).unwrap();
    lp.clear_timeout(t).unwrap();
    assert!(
        !lp.is_alive(),
        "one ref per handle, however often ref_ was called"
    );

    let imm = lp.set_immediate(|_| {});
    lp.unref(imm).unwrap();
    assert!(!lp.is_alive());
    assert!(
        lp.poll_timeout() > Some(Duration::ZERO) || lp.poll_timeout().is_some(),
        "an unref'd immediate alone does not force a zero timeout"
    );
}

#[test]
fn before_exit_can_restart_the_loop_then_run_exits() {
    let mut lp = new_loop();
    let log = Log::default();
    let l = log.clone();
    let calls = Rc::new(Cell::new(0));
    let c = calls.clone();
    lp.on_before_exit(move |lp| {
        c.set(c.get() + 1);
        l.borrow_mut().push("beforeExit".into());
        if c.get() == 1 {
            lp.set_timeout(0, say(&l, "timer-from-beforeExit"));
        }
    });
    lp.run().unwrap();
    assert_eq!(
        tokens(&log),
        ["beforeExit", "timer-from-beforeExit", "beforeExit"]
    );
}

#[test]
fn stop_returns_from_run_and_a_later_run_continues() {
    let mut lp = new_loop();
    let count = Rc::new(Cell::new(0));
    let c = count.clone();
    let iv = lp.set_interval(1, move |lp| {
        c.set(c.get() + 1);
        if c.get() == 2 {
            lp.stop();
        }
    });
    lp.run().unwrap();
    assert_eq!(count.get(), 2);
    assert!(lp.is_alive());
    lp.set_timeout(20, move |lp| lp.clear_interval(iv).unwrap());
    lp.run().unwrap();
    assert!(
        count.get() > 2,
        "the second run picked up where stop left off"
    );
}

#[test]
fn run_once_and_run_nowait_return_whether_the_loop_is_still_alive() {
    let mut lp = new_loop();
    assert!(!lp.run_nowait().unwrap(), "an empty loop is not alive");
    lp.set_immediate(|_| {});
    assert!(
        !lp.run_once().unwrap(),
        "the immediate ran; nothing is left"
    );
    let t = lp.set_timeout(10_000, |_| {});
    let start = Instant::now();
    assert!(lp.run_nowait().unwrap(), "the far timer keeps it alive");
    assert!(
        start.elapsed() < Duration::from_millis(500),
        "nowait never blocks"
    );
    lp.clear_timeout(t).unwrap();
    lp.set_timeout(1, |_| {});
    while lp.run_once().unwrap() {}
    assert!(!lp.is_alive());
}

// ---------------------------------------------------------------------------------------------
// Stale ids
// ---------------------------------------------------------------------------------------------

#[test]
fn clearing_a_timer_after_it_fired_is_stale() {
    let mut lp = new_loop();
    let t = lp.set_timeout(0, |_| {});
    lp.run().unwrap();
    assert_eq!(lp.clear_timeout(t), Err(HandleError::Stale));
}

#[test]
fn clearing_a_timer_twice_is_stale_the_second_time() {
    let mut lp = new_loop();
    let t = lp.set_timeout(10, |_| {});
    assert_eq!(lp.clear_timeout(t), Ok(()));
    assert_eq!(lp.clear_timeout(t), Err(HandleError::Stale));
    let i = lp.set_immediate(|_| {});
    assert_eq!(lp.clear_immediate(i), Ok(()));
    assert_eq!(lp.clear_immediate(i), Err(HandleError::Stale));
}

#[test]
fn a_stale_id_never_touches_the_handle_that_reused_its_slot() {
    let mut lp = new_loop();
    let log = Log::default();
    let old = lp.set_timeout(10, say(&log, "old"));
    lp.clear_timeout(old).unwrap();
    let new = lp.set_timeout(1, say(&log, "new")); // reuses the freed slot
    assert_ne!(old, new);
    assert_eq!(lp.unref(old), Err(HandleError::Stale));
    assert_eq!(lp.ref_(old), Err(HandleError::Stale));
    assert_eq!(lp.has_ref(old), Err(HandleError::Stale));
    assert_eq!(lp.refresh_timer(old), Err(HandleError::Stale));
    assert_eq!(lp.clear_timeout(old), Err(HandleError::Stale));
    assert_eq!(lp.has_ref(new), Ok(true), "the new timer kept its ref");
    lp.run().unwrap();
    assert_eq!(tokens(&log), ["new"]);
}

#[test]
fn immediate_ids_are_stale_once_run_or_cleared_and_never_name_a_later_immediate() {
    let mut lp = new_loop();
    let log = Log::default();
    let ran = lp.set_immediate(say(&log, "ran"));
    let cleared = lp.set_immediate(say(&log, "cleared"));
    let kept = lp.set_immediate(say(&log, "kept"));
    lp.clear_immediate(cleared).unwrap();
    assert_eq!(lp.has_ref(cleared), Err(HandleError::Stale));
    assert_eq!(lp.unref(cleared), Err(HandleError::Stale));
    assert_eq!(
        lp.has_ref(kept),
        Ok(true),
        "clearing one left its neighbour alone"
    );
    lp.run().unwrap();
    // Later immediates take later ids: the old ids stay stale and touch nothing.
    let later = lp.set_immediate(say(&log, "later"));
    for old in [ran, cleared, kept] {
        assert_ne!(old, later);
        assert_eq!(lp.clear_immediate(old), Err(HandleError::Stale));
        assert_eq!(lp.has_ref(old), Err(HandleError::Stale));
    }
    assert_eq!(lp.has_ref(later), Ok(true));
    lp.run().unwrap();
    assert_eq!(tokens(&log), ["ran", "kept", "later"]);
}

#[test]
fn an_immediate_cleared_by_an_earlier_one_in_the_same_check_phase_does_not_run() {
    let mut lp = new_loop();
    let log = Log::default();
    let victim: Rc<Cell<Option<oneloop_runtime::ImmediateId>>> = Rc::default();
    let (l, v) = (log.clone(), victim.clone());
    lp.set_immediate(move |lp| {
        l.borrow_mut().push("first".into());
        let id = v.get().expect("queued");
        assert_eq!(lp.clear_immediate(id), Ok(()));
        assert_eq!(lp.clear_immediate(id), Err(HandleError::Stale));
    });
    victim.set(Some(lp.set_immediate(say(&log, "victim"))));
    lp.set_immediate(say(&log, "third"));
    lp.run().unwrap();
    assert_eq!(tokens(&log), ["first", "third"]);
}

#[test]
fn an_unrefd_immediate_does_not_keep_the_loop_alive_but_runs_if_the_loop_does() {
    let mut lp = new_loop();
    let log = Log::default();
    let lone = lp.set_immediate(say(&log, "unrefd"));
    lp.unref(lone).unwrap();
    assert_eq!(lp.has_ref(lone), Ok(false));
    lp.run().unwrap();
    assert!(
        tokens(&log).is_empty(),
        "nothing ref'd: the loop exits without a check phase"
    );
    assert_eq!(lp.has_ref(lone), Ok(false), "still queued");
    lp.set_immediate(say(&log, "refd"));
    lp.run().unwrap();
    assert_eq!(tokens(&log), ["unrefd", "refd"]);
    assert_eq!(lp.has_ref(lone), Err(HandleError::Stale));
}

// ---------------------------------------------------------------------------------------------
// Thread pool
// ---------------------------------------------------------------------------------------------

#[test]
fn queue_work_delivers_the_result_to_after_on_the_loop_thread() {
    let mut lp = new_loop();
    let got = Rc::new(RefCell::new(None));
    let g = got.clone();
    let loop_thread = std::thread::current().id();
    lp.queue_work(
        || (1..=10u64).product::<u64>(),
        move |lp, r| {
            assert_eq!(std::thread::current().id(), loop_thread);
            assert_eq!(lp.phase(), Phase::Poll);
            *g.borrow_mut() = Some(r);
        },
    )
    .unwrap();
    lp.run().unwrap();
    assert_eq!(*got.borrow(), Some(Ok(3_628_800)));
}

#[test]
fn cancel_work_removes_a_queued_request_and_after_sees_cancelled() {
    let mut lp = with_pool(1);
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let (started_tx, started_rx) = mpsc::channel::<()>();
    let results = Rc::new(RefCell::new(Vec::new()));
    let r = results.clone();
    lp.queue_work(
        move || {
            started_tx.send(()).unwrap();
            release_rx.recv().unwrap();
            "blocker"
        },
        move |_, res| r.borrow_mut().push(res),
    )
    .unwrap();
    let r = results.clone();
    let queued = lp
        .queue_work(|| "queued", move |_, res| r.borrow_mut().push(res))
        .unwrap();
    started_rx.recv().unwrap(); // the only worker is busy
    assert_eq!(lp.threadpool_queued(), 1);
    assert_eq!(lp.cancel_work(queued), Ok(true));
    release_tx.send(()).unwrap();
    lp.run().unwrap();
    let mut results = results.borrow().clone();
    results.sort_by_key(|r| r.is_ok());
    assert_eq!(results, [Err(WorkError::Cancelled), Ok("blocker")]);
    assert_eq!(lp.cancel_work(queued), Err(HandleError::Stale));
}

#[test]
fn a_panic_in_work_reaches_after_and_the_pool_keeps_running() {
    let mut lp = with_pool(1);
    let results = Rc::new(RefCell::new(Vec::new()));
    let r = results.clone();
    lp.queue_work(
        || -> u32 { panic!("boom") },
        move |_, res| r.borrow_mut().push(res),
    )
    .unwrap();
    lp.run().unwrap();
    let r = results.clone();
    lp.queue_work(|| 7u32, move |_, res| r.borrow_mut().push(res))
        .unwrap();
    lp.run().unwrap();
    assert_eq!(
        *results.borrow(),
        [Err(WorkError::Panicked("boom".into())), Ok(7)]
    );
}

#[test]
fn pending_work_keeps_the_loop_alive_until_after_runs() {
    let mut lp = new_loop();
    let done = Rc::new(Cell::new(false));
    let d = done.clone();
    lp.queue_work(|| sleep_ms(30), move |_, _| d.set(true))
        .unwrap();
    assert!(lp.is_alive());
    lp.run().unwrap();
    assert!(done.get(), "run waited for the completion");
}

/// The poll phase skips a zero-timeout `epoll_wait` only when nothing registered could report
/// anything; a job in flight still gets polled for, so `run_nowait` in a loop sees it finish.
#[test]
fn run_nowait_still_polls_for_a_pool_completion_when_nothing_else_is_registered() {
    let mut lp = new_loop();
    lp.set_timeout(60_000, |_| {}); // keeps the loop alive; not due during the test
    let done = Rc::new(Cell::new(false));
    let d = done.clone();
    lp.queue_work(|| 7u32, move |_, r| d.set(matches!(r, Ok(7))))
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done.get() && Instant::now() < deadline {
        lp.run_nowait().unwrap();
    }
    assert!(
        done.get(),
        "the completion reached `after` through run_nowait"
    );
}

/// Same for an I/O source: with a listener registered, a zero-timeout poll still runs and
/// delivers a connection that arrives while the loop spins with `run_nowait`.
#[test]
fn run_nowait_still_polls_a_registered_listener() {
    let mut lp = new_loop();
    let accepted = Rc::new(Cell::new(0));
    let a = accepted.clone();
    let server = lp
        .tcp_listen(
            "127.0.0.1:0".parse().unwrap(),
            ListenOptions::default(),
            move |_, _| a.set(a.get() + 1),
        )
        .unwrap();
    let addr = lp.tcp_server_addr(server).unwrap();
    lp.run_nowait().unwrap(); // the listener's deferred first accept
    let _client = std::net::TcpStream::connect(addr).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while accepted.get() == 0 && Instant::now() < deadline {
        lp.run_nowait().unwrap();
    }
    assert_eq!(
        accepted.get(),
        1,
        "the connection was accepted through run_nowait"
    );
}

// ---------------------------------------------------------------------------------------------
// Signals
// ---------------------------------------------------------------------------------------------

#[test]
fn a_signal_watcher_is_unrefd_by_default_and_a_raised_signal_reaches_it_when_refd() {
    let mut lp = new_loop();
    let got = Rc::new(Cell::new(0));
    let g = got.clone();
    let id = lp
        .on_signal(libc::SIGUSR1, move |lp, signum| {
            g.set(signum);
            lp.stop();
        })
        .unwrap();
    assert_eq!(lp.has_ref(id), Ok(false));
    assert!(
        !lp.is_alive(),
        "a signal watcher alone does not keep the loop alive"
    );
    lp.ref_(id).unwrap();
    assert!(lp.is_alive());
    signal_hook::low_level::raise(libc::SIGUSR1).unwrap();
    // A guard so a lost signal fails the test instead of hanging it.
    let guard = lp.set_timeout(5_000, |lp| lp.stop());
    lp.unref(guard).unwrap();
    lp.run().unwrap();
    assert_eq!(got.get(), libc::SIGUSR1);
    lp.close_signal(id).unwrap();
    assert!(!lp.is_alive());
}

// ---------------------------------------------------------------------------------------------
// Trace and metrics
// ---------------------------------------------------------------------------------------------

#[test]
fn the_trace_sink_receives_phase_and_callback_events() {
    let mut lp = new_loop();
    let events = Rc::new(RefCell::new(Vec::new()));
    let e = events.clone();
    lp.set_trace(Some(Box::new(move |ev: &TraceEvent| {
        e.borrow_mut().push(*ev)
    })));
    lp.set_timeout(0, |lp| lp.next_tick(|_| {}));
    lp.set_immediate(|_| {});
    lp.run().unwrap();
    let events = events.borrow();
    let has = |want: &TraceEvent| events.iter().any(|ev| ev == want);
    assert!(events.iter().any(|ev| matches!(
        ev,
        TraceEvent::Phase {
            phase: Phase::Poll,
            ..
        }
    )));
    assert!(events.iter().any(|ev| matches!(
        ev,
        TraceEvent::Callback {
            phase: Phase::Check,
            kind: CallbackKind::Immediate,
            ..
        }
    )));
    assert!(events.iter().any(|ev| matches!(
        ev,
        TraceEvent::Callback {
            phase: Phase::Timers,
            kind: CallbackKind::Timer,
            ..
        }
    )));
    assert!(events.iter().any(|ev| matches!(
        ev,
        TraceEvent::Callback {
            phase: Phase::Timers,
            kind: CallbackKind::NextTick,
            ..
        }
    )));
    assert!(has(&TraceEvent::Phase {
        iteration: 1,
        phase: Phase::Timers
    }));
    let line = events[0].to_string();
    assert!(line.starts_with("[oneloop] iter="), "{line}");
}

#[test]
fn metrics_count_iterations_and_callbacks_and_utilization_is_a_fraction() {
    let mut lp = new_loop();
    let before = lp.metrics();
    lp.set_timeout(5, |lp| {
        lp.next_tick(|_| {});
        lp.queue_microtask(|_| {});
    });
    lp.set_immediate(|_| {});
    lp.run().unwrap();
    let after = lp.metrics();
    assert!(after.iterations >= 2, "{after:?}");
    assert_eq!(
        after.callbacks - before.callbacks,
        4,
        "timer, tick, microtask, immediate"
    );
    let u = after.utilization(Some(&before));
    assert!((0.0..=1.0).contains(&u), "{u}");
    assert!((0.0..=1.0).contains(&after.utilization(None)));
    assert!(after.idle_ns > 0, "it waited for the 5 ms timer");
}

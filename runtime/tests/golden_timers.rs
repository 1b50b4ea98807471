//! Golden tests for timers, immediates, ticks, microtasks and 'beforeExit', most of them ports
//! of Node's own tests (the Node test's path is in each `tests/golden/<name>.js` and in the
//! comment above each test). The scenario is written twice, in JS and in Rust; node runs the
//! `.js` live and the loop runs the Rust on a real and on a virtual clock; the token lists must
//! be equal (see `golden_common`). docs/event-loop.md lists them with their status.
//!
//! Mapping as in `golden_order.rs`; in addition a JS `Timeout` that is refreshed after it fired
//! is armed with `set_timeout_mut` (an `FnMut` that can run again), `process.on('exit')` is
//! code after `run` returns, and `process.getActiveResourcesInfo()`'s `Timeout`s are
//! [`Loop::active_handles`] of kind `timer`.

mod golden_common;

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use golden_common::{
    assert_same_as_node, assert_same_as_node_with_exit, new_loop, node_output, push, say, spin,
    timing_lock, Log,
};
use oneloop_runtime::{Clock, ImmediateId, Loop, TimerId};

type Slot<T> = Rc<Cell<Option<T>>>;

fn slot<T>() -> Slot<T> {
    Rc::new(Cell::new(None))
}

fn active_timers(lp: &Loop) -> usize {
    lp.active_handles()
        .iter()
        .filter(|h| h.kind == "timer" || h.kind == "interval")
        .count()
}

// ---- A timer outlives its firing (issue #16, first bullet) ---------------------------------

/// node/test/parallel/test-timers-refresh-in-callback.js
#[test]
fn a_timeout_refreshed_in_its_own_callback_runs_again_and_keeps_the_loop_alive() {
    assert_same_as_node_with_exit("timeout_refresh_in_own_callback", |lp, log| {
        let me: Slot<TimerId> = slot();
        let (l, me2) = (log.clone(), me.clone());
        let mut n = 0;
        let t = lp.set_timeout_mut(20, move |lp| {
            n += 1;
            let id = me2.get().expect("armed");
            let has_ref = lp.has_ref(id).expect("valid in its own callback");
            push(&l, &format!("t-{n} hasRef={has_ref}"));
            if n < 3 {
                lp.refresh_timer(id).expect("refresh in its own callback");
            }
        });
        me.set(Some(t));
        lp.set_timeout(30, say(log, "other-30"));
    });
}

/// lib/internal/timers.js: a fired timer is `_destroyed`; `refresh()` re-inserts it and counts
/// it as ref'd again, `hasRef`/`ref`/`unref` flip only its flag, `clearTimeout` returns at once.
#[test]
fn a_fired_timeout_can_be_refreshed_reffed_unreffed_and_cleared_as_in_node() {
    assert_same_as_node_with_exit("timeout_refresh_after_firing", |lp, log| {
        let a = lp.set_timeout_mut(5, {
            let l = log.clone();
            move |_| push(&l, "a")
        });
        let b = lp.set_timeout_mut(60, {
            let l = log.clone();
            move |_| push(&l, "b")
        });
        let c = lp.set_timeout_mut(5, {
            let l = log.clone();
            move |_| push(&l, "c")
        });
        let l = log.clone();
        lp.set_timeout(80, move |lp| {
            let (ra, rb) = (lp.has_ref(a).unwrap(), lp.has_ref(b).unwrap());
            push(&l, &format!("later a.hasRef={ra} b.hasRef={rb}"));
            lp.clear_timeout(c)
                .expect("clearing a fired timer is a no-op");
            lp.unref(b).unwrap();
            push(&l, &format!("b.hasRef={}", lp.has_ref(b).unwrap()));
            lp.unref(a).unwrap();
            lp.ref_(a).unwrap();
            push(&l, &format!("a.hasRef={}", lp.has_ref(a).unwrap()));
            lp.refresh_timer(a).expect("a fired timer can be refreshed");
            lp.refresh_timer(b).expect("a fired timer can be refreshed");
        });
    });
}

/// node/test/parallel/test-timers-refresh.js (the unref'd, ref'd and interval cases; the
/// internal `setUnrefTimeout` case has no public equivalent).
#[test]
fn refresh_moves_a_timer_behind_the_later_timers_of_its_list() {
    assert_same_as_node("timers_refresh_moves_to_list_tail", |lp, log| {
        let u = lp.set_timeout(1, say(log, "unref-refreshed"));
        lp.unref(u).unwrap();
        lp.set_timeout(1, say(log, "after-unref"));
        lp.refresh_timer(u).unwrap();
        let t = lp.set_timeout(1, say(log, "refreshed"));
        lp.set_timeout(1, say(log, "after-refreshed"));
        lp.refresh_timer(t).unwrap();
        let me: Slot<TimerId> = slot();
        let (l, me2) = (log.clone(), me.clone());
        let mut n = 0;
        let iv = lp.set_interval(1, move |lp| {
            n += 1;
            push(&l, &format!("interval-{n}"));
            if n == 2 {
                lp.clear_interval(me2.get().unwrap()).unwrap();
            }
        });
        me.set(Some(iv));
        lp.set_timeout(1, say(log, "after-interval"));
        lp.refresh_timer(iv).unwrap();
    });
}

/// node/test/parallel/test-timers-same-timeout-wrong-list-deleted.js
#[test]
fn clearing_a_timer_in_its_own_callback_keeps_the_new_list_of_its_delay() {
    assert_same_as_node_with_exit("same_timeout_wrong_list_deleted", |lp, log| {
        let me: Slot<TimerId> = slot();
        let (l, me2) = (log.clone(), me.clone());
        let handle1 = lp.set_timeout(30, move |lp| {
            push(&l, "handle1");
            lp.clear_timeout(me2.get().unwrap())
                .expect("a running timer can clear itself");
            let handle2 = lp.set_timeout(30, say(&l, "handle2 (never)"));
            let l2 = l.clone();
            lp.set_timeout(1, move |lp| {
                push(&l2, &format!("short active={}", active_timers(lp)));
                lp.clear_timeout(handle2).expect("handle2 still pending");
                let l3 = l2.clone();
                lp.set_immediate(move |lp| {
                    lp.set_immediate(move |lp| {
                        push(&l3, &format!("immediate active={}", active_timers(lp)))
                    });
                });
            });
            push(&l, &format!("in handle1 active={}", active_timers(lp)));
        });
        me.set(Some(handle1));
    });
}

// ---- Immediates, ticks, microtasks -----------------------------------------------------------

/// node/test/parallel/test-timers-immediate-queue.js
#[test]
fn the_check_phase_runs_only_the_immediates_queued_before_it_and_ticks_after_each() {
    fn run(lp: &mut Loop, log: &Log, state: &Rc<(Cell<bool>, Cell<u32>)>) {
        if state.1.get() == 0 {
            let (l, s) = (log.clone(), state.clone());
            lp.next_tick(move |_| {
                s.0.set(true);
                push(&l, "tick");
            });
        }
        if state.0.get() {
            return;
        }
        state.1.set(state.1.get() + 1);
        push(log, &format!("run {}", state.1.get()));
        let (l, s) = (log.clone(), state.clone());
        lp.set_immediate(move |lp| run(lp, &l, &s));
    }
    let state: Rc<(Cell<bool>, Cell<u32>)> = Rc::default();
    let hits = state.clone();
    assert_same_as_node("immediate_queue_once_per_turn", move |lp, log| {
        state.0.set(false);
        state.1.set(0);
        for _ in 0..10 {
            let (l, s) = (log.clone(), state.clone());
            lp.set_immediate(move |lp| run(lp, &l, &s));
        }
        // node logs this in 'exit'; with no work left, 'beforeExit' comes right before it.
        let (l, s) = (log.clone(), state.clone());
        lp.on_before_exit(move |_| push(&l, &format!("exit hit={}", s.1.get())));
    });
    assert_eq!(hits.1.get(), 1);
}

/// node/test/parallel/test-timers-nested.js
#[test]
fn a_same_delay_timer_armed_in_a_timer_callback_waits_even_when_due() {
    assert_same_as_node_with_exit("timers_nested_same_delay", |lp, log| {
        for delay in [0u64, 100] {
            let nested = Rc::new(Cell::new(false));
            let l = log.clone();
            lp.set_timeout(delay, move |lp| {
                push(&l, &format!("A{delay}"));
                let (l2, n2) = (l.clone(), nested.clone());
                lp.set_timeout(delay, move |_| {
                    n2.set(true);
                    push(&l2, &format!("B{delay}"));
                });
                spin(lp, delay + 2);
                let (l3, n3) = (l.clone(), nested.clone());
                lp.next_tick(move |_| {
                    push(&l3, &format!("tick after A{delay} nested={}", n3.get()))
                });
            });
        }
    });
}

/// node/test/parallel/test-next-tick-ordering2.js
#[test]
fn a_tick_queued_by_a_tick_runs_before_a_zero_timeout_it_armed() {
    assert_same_as_node("next_tick_ordering2", |lp, log| {
        let l = log.clone();
        lp.next_tick(move |lp| {
            lp.set_timeout(0, say(&l, "setTimeout"));
            lp.next_tick(say(&l, "nextTick"));
        });
    });
}

/// node/test/parallel/test-microtask-queue-run-immediate.js
#[test]
fn microtasks_run_after_each_immediate_and_their_ticks_before_the_next() {
    assert_same_as_node("microtask_queue_run_immediate", |lp, log| {
        let l = log.clone();
        lp.set_immediate(move |lp| {
            push(&l, "imm-1");
            lp.queue_microtask(say(&l, "micro-1"));
        });
        let l = log.clone();
        lp.set_immediate(move |lp| {
            push(&l, "imm-2");
            let called = Rc::new(Cell::new(false));
            let (l2, c2) = (l.clone(), called.clone());
            lp.queue_microtask(move |lp| {
                push(&l2, "micro-2");
                let l3 = l2.clone();
                lp.next_tick(move |_| {
                    c2.set(true);
                    push(&l3, "tick-from-micro-2");
                });
            });
            let l4 = l.clone();
            lp.set_immediate(move |_| push(&l4, &format!("imm-3 called={}", called.get())));
        });
    });
}

/// node/test/parallel/test-microtask-queue-run.js
#[test]
fn microtasks_run_after_each_timeout_and_their_ticks_before_the_next() {
    assert_same_as_node("microtask_queue_run_timeout", |lp, log| {
        let l = log.clone();
        lp.set_timeout(0, move |lp| {
            push(&l, "t-1");
            lp.queue_microtask(say(&l, "micro-1"));
        });
        let l = log.clone();
        lp.set_timeout(0, move |lp| {
            push(&l, "t-2");
            let called = Rc::new(Cell::new(false));
            let (l2, c2) = (l.clone(), called.clone());
            lp.queue_microtask(move |lp| {
                push(&l2, "micro-2");
                let l3 = l2.clone();
                lp.next_tick(move |_| {
                    c2.set(true);
                    push(&l3, "tick-from-micro-2");
                });
            });
            let l4 = l.clone();
            lp.set_timeout(0, move |_| {
                push(&l4, &format!("t-3 called={}", called.get()))
            });
        });
    });
}

/// node/test/parallel/test-timers-next-tick.js
#[test]
fn a_tick_after_one_timeout_or_immediate_can_clear_the_siblings_behind_it() {
    assert_same_as_node("timers_next_tick_clears", |lp, log| {
        let timers: Rc<RefCell<Vec<TimerId>>> = Rc::default();
        let (l, ts) = (log.clone(), timers.clone());
        lp.set_timeout(1, move |lp| {
            push(&l, "t1");
            let l2 = l.clone();
            lp.next_tick(move |lp| {
                push(&l2, "tick clears t2 t3");
                for id in ts.borrow().iter() {
                    lp.clear_timeout(*id).expect("still pending");
                }
            });
        });
        let t2 = lp.set_timeout(1, say(log, "t2 (never)"));
        let t3 = lp.set_timeout(1, say(log, "t3 (never)"));
        timers.borrow_mut().extend([t2, t3]);
        lp.set_timeout(1, say(log, "t4"));
        spin(lp, 5);
        let imms: Rc<RefCell<Vec<ImmediateId>>> = Rc::default();
        let (l, is) = (log.clone(), imms.clone());
        lp.set_immediate(move |lp| {
            push(&l, "i1");
            let l2 = l.clone();
            lp.next_tick(move |lp| {
                push(&l2, "tick clears i2 i3");
                for id in is.borrow().iter() {
                    lp.clear_immediate(*id).expect("still queued");
                }
            });
        });
        let i2 = lp.set_immediate(say(log, "i2 (never)"));
        let i3 = lp.set_immediate(say(log, "i3 (never)"));
        imms.borrow_mut().extend([i2, i3]);
        lp.set_immediate(say(log, "i4"));
    });
}

/// node/test/parallel/test-next-tick-intentional-starvation.js (1000 ticks instead of a
/// time limit)
#[test]
fn ticks_that_keep_queueing_ticks_starve_a_due_timer() {
    fn tick(lp: &mut Loop, log: &Log, ticks: &Rc<Cell<u32>>, ran: &Rc<Cell<bool>>) {
        ticks.set(ticks.get() + 1);
        if ran.get() {
            push(log, "timer ran before the ticks ended");
        }
        if ticks.get() < 1000 {
            let (l, t, r) = (log.clone(), ticks.clone(), ran.clone());
            lp.next_tick(move |lp| tick(lp, &l, &t, &r));
        } else {
            push(log, &format!("ticks done ran={}", ran.get()));
        }
    }
    assert_same_as_node("next_tick_intentional_starvation", |lp, log| {
        let ticks = Rc::new(Cell::new(0));
        let ran = Rc::new(Cell::new(false));
        let (l, t, r) = (log.clone(), ticks.clone(), ran.clone());
        lp.set_timeout(0, move |_| {
            r.set(true);
            push(&l, &format!("timeout after {} ticks", t.get()));
        });
        spin(lp, 5);
        let l = log.clone();
        lp.next_tick(move |lp| tick(lp, &l, &ticks, &ran));
    });
}

// ---- ref/unref, beforeExit ----------------------------------------------------------------

/// node/test/parallel/test-timers-unrefed-in-beforeexit.js
#[test]
fn an_unrefd_timer_armed_in_before_exit_does_not_restart_the_loop() {
    assert_same_as_node_with_exit("unrefed_timer_in_before_exit", |lp, log| {
        let l = log.clone();
        lp.on_before_exit(move |lp| {
            push(&l, "beforeExit");
            let t = lp.set_timeout(1, say(&l, "unref timer (never)"));
            lp.unref(t).unwrap();
        });
    });
}

/// node/test/parallel/test-timers-unrefd-interval-still-fires.js
#[test]
fn an_unrefd_interval_fires_while_a_refd_interval_keeps_the_loop_alive() {
    assert_same_as_node_with_exit("unrefd_interval_still_fires", |lp, log| {
        let keep_open = lp.set_interval(9999, {
            let l = log.clone();
            move |_| push(&l, "keepOpen (never)")
        });
        let me: Slot<TimerId> = slot();
        let (l, me2) = (log.clone(), me.clone());
        let mut n = 0;
        let timer = lp.set_interval(1, move |lp| {
            n += 1;
            push(&l, &format!("unref-interval-{n}"));
            if n == 3 {
                lp.clear_interval(me2.get().unwrap()).unwrap();
                lp.clear_interval(keep_open).unwrap();
            }
        });
        me.set(Some(timer));
        lp.unref(timer).unwrap();
    });
}

/// node/test/parallel/test-timers-unrefed-in-callback.js (a ref'd 10 s timeout keeps the loop
/// alive instead of a listening server)
#[test]
fn an_interval_unrefd_in_its_own_callback_keeps_firing_while_the_loop_is_alive() {
    fn test2(lp: &mut Loop, log: &Log) {
        let keep2 = lp.set_timeout(10_000, say(log, "keep2 (never)"));
        let me: Slot<TimerId> = slot();
        let (l, me2) = (log.clone(), me.clone());
        let mut n2 = 0;
        let timer2 = lp.set_interval(1, move |lp| {
            lp.unref(me2.get().unwrap()).unwrap();
            n2 += 1;
            push(&l, &format!("timer2-{n2}"));
            if n2 == 4 {
                lp.clear_timeout(keep2).unwrap();
            }
        });
        me.set(Some(timer2));
    }
    assert_same_as_node_with_exit("interval_unrefed_in_callback", |lp, log| {
        let keep1 = lp.set_timeout(10_000, say(log, "keep1 (never)"));
        let me: Slot<TimerId> = slot();
        let (l, me2) = (log.clone(), me.clone());
        let mut n1 = 0;
        let timer1 = lp.set_interval(1, move |lp| {
            let me = me2.get().unwrap();
            lp.unref(me).unwrap();
            n1 += 1;
            push(&l, &format!("timer1-{n1}"));
            if n1 == 4 {
                lp.clear_interval(me).unwrap();
                lp.clear_timeout(keep1).unwrap();
                test2(lp, &l);
            }
        });
        me.set(Some(timer1));
    });
}

/// node/test/parallel/test-timers-immediate-unref.js
#[test]
fn an_unrefd_immediate_runs_only_while_something_else_keeps_the_loop_alive() {
    assert_same_as_node_with_exit("immediate_unref_ref", |lp, log| {
        let left = Rc::new(Cell::new(2));
        let l = log.clone();
        let first = lp.set_immediate(move |lp| {
            push(&l, "first");
            let dec = {
                let (l, left) = (l.clone(), left.clone());
                move |lp: &mut Loop, what: &str| {
                    push(&l, what);
                    left.set(left.get() - 1);
                    if left.get() == 0 {
                        let l2 = l.clone();
                        lp.set_immediate(move |lp| {
                            push(&l2, "final");
                            let i = lp.set_immediate(say(&l2, "unref immediate (never)"));
                            lp.unref(i).unwrap();
                        });
                    }
                }
            };
            let dec2 = dec.clone();
            let i = lp.set_immediate(move |lp| dec(lp, "unref immediate"));
            lp.unref(i).unwrap();
            lp.set_timeout(30, move |lp| dec2(lp, "timeout-30"));
        });
        lp.ref_(first).unwrap();
        lp.unref(first).unwrap();
        lp.unref(first).unwrap();
        lp.ref_(first).unwrap();
    });
}

// ---- Timer lists ---------------------------------------------------------------------------

/// node/test/parallel/test-timers-ordering.js (10 timers; the order only, see the `.js`)
#[test]
fn a_chain_of_one_ms_timers_each_armed_by_the_last_runs_in_order() {
    fn f(lp: &mut Loop, log: &Log, i: u32) {
        if i > 10 {
            return;
        }
        push(log, &format!("timer {i}"));
        let l = log.clone();
        lp.set_timeout(1, move |lp| f(lp, &l, i + 1));
    }
    assert_same_as_node("timers_ordering_chain", |lp, log| f(lp, log, 1));
}

/// node/test/parallel/test-timers-clear-timeout-interval-equivalent.js
#[test]
fn clear_interval_cancels_a_timeout_and_clear_timeout_an_interval() {
    assert_same_as_node("timers_clear_equivalent", |lp, log| {
        let t = lp.set_timeout(1, say(log, "timeout (never)"));
        lp.clear_interval(t).unwrap();
        let l = log.clone();
        let iv = lp.set_interval(1, move |_| push(&l, "interval (never)"));
        lp.clear_timeout(iv).unwrap();
        lp.set_timeout(5, say(log, "done"));
    });
}

/// node/test/parallel/test-timers-zero-timeout.js (the arguments are captures here)
#[test]
fn a_zero_timeout_runs_once_and_a_zero_interval_until_cleared() {
    assert_same_as_node_with_exit("timers_zero_timeout", |lp, log| {
        let (a, b, c) = ("foo", "bar", "baz");
        let l = log.clone();
        lp.set_timeout(0, move |_| push(&l, &format!("timeout {a}{b}{c}")));
        lp.set_timeout(0, say(log, "empty timeout"));
        let me: Slot<TimerId> = slot();
        let (l, me2) = (log.clone(), me.clone());
        let mut n = 0;
        let iv = lp.set_interval(0, move |lp| {
            n += 1;
            push(&l, &format!("interval {n} {a}{b}{c}"));
            if n == 3 {
                lp.clear_timeout(me2.get().unwrap()).unwrap();
            }
        });
        me.set(Some(iv));
    });
}

/// node/test/parallel/test-timers-max-duration-warning.js (without the warning, which node
/// prints on stderr; plus an overflowing timer that is not cleared)
#[test]
fn a_delay_over_the_maximum_becomes_one_ms() {
    assert_same_as_node("timers_max_duration", |lp, log| {
        const OVERFLOW: u64 = 1 << 31;
        let t = lp.set_timeout(OVERFLOW, say(log, "timeout (never)"));
        lp.clear_timeout(t).unwrap();
        let l = log.clone();
        let iv = lp.set_interval(OVERFLOW, move |_| push(&l, "interval (never)"));
        lp.clear_interval(iv).unwrap();
        lp.set_timeout(1, say(log, "1 ms"));
        lp.set_timeout(OVERFLOW, say(log, "overflow, as 1 ms"));
        lp.set_timeout(2, say(log, "2 ms"));
    });
}

/// node/test/parallel/test-timers-clearImmediate.js
#[test]
fn an_immediate_clearing_itself_in_its_callback_still_ran() {
    assert_same_as_node("timers_clear_immediate_self", |lp, log| {
        let count = Rc::new(Cell::new(0));
        for _ in 0..3 {
            let me: Slot<ImmediateId> = slot();
            let (l, c, me2) = (log.clone(), count.clone(), me.clone());
            let id = lp.set_immediate(move |lp| {
                // Node's clearImmediate of the running immediate is a no-op; here the id of an
                // immediate that is running is already spent (Err(Stale)): nothing changes.
                let _ = lp.clear_immediate(me2.get().unwrap());
                c.set(c.get() + 1);
                push(&l, &format!("immediate {}", c.get()));
            });
            me.set(Some(id));
        }
        let (l, c) = (log.clone(), count.clone());
        lp.on_before_exit(move |_| push(&l, &format!("exit count={}", c.get())));
    });
}

/// node/test/parallel/test-timers-unref-remove-other-unref-timers.js (the public API instead of
/// `timers.enroll`)
#[test]
fn an_unrefd_timer_clearing_another_unrefd_timer_leaves_the_lists_working() {
    assert_same_as_node_with_exit("unref_timer_clears_other_unref", |lp, log| {
        let foo = lp.set_timeout(50, say(log, "foo (never)"));
        lp.unref(foo).unwrap();
        let l = log.clone();
        let bar = lp.set_timeout(1, move |lp| {
            push(&l, "bar clears foo");
            lp.clear_timeout(foo).unwrap();
        });
        lp.unref(bar).unwrap();
        lp.set_timeout(100, say(log, "keep-alive 100"));
    });
}

/// lib/internal/timers.js `compareTimersLists`: lists due at the same millisecond run in list
/// id order, and a list gets a new id when it is rescheduled. The tie needs two timers armed
/// exactly 40 loop-milliseconds apart, which a loaded machine does not always give (node's and
/// this loop's real clock alike; the virtual clock always does): each side reports `tie=..`
/// first, and a real-clock run is repeated (at most 10 times) until it tied.
#[test]
fn overdue_lists_with_the_same_expiry_run_in_list_id_order() {
    const NAME: &str = "same_ms_list_id_order";
    let tied = |lines: &[String]| lines.first().is_some_and(|l| l == "tie=true");
    let _serial = timing_lock();
    let expected = (0..10)
        .map(|_| node_output(NAME))
        .find(|lines| tied(lines))
        .expect("node armed the two timers 40 loop-ms apart in one of 10 runs");
    for clock in [Clock::Real, Clock::Virtual] {
        let got = (0..10)
            .map(|_| {
                let log = Log::default();
                let mut lp = new_loop(clock);
                let l = log.clone();
                lp.set_immediate(move |lp| {
                    let l1 = l.clone();
                    lp.set_timeout(200, move |lp| {
                        push(&l1, "q1-200");
                        spin(lp, 120);
                    });
                    spin(lp, 100);
                    lp.set_timeout(200, say(&l, "q2-200"));
                    let q2_start = lp.now();
                    spin(lp, 40);
                    lp.set_timeout(160, say(&l, "x-160"));
                    let x_start = lp.now();
                    push(&l, &format!("tie={}", q2_start + 200 == x_start + 160));
                });
                lp.run().expect("run");
                let lines = log.borrow().clone();
                lines
            })
            .find(|lines| tied(lines))
            .unwrap_or_else(|| panic!("{clock:?}: no tie in 10 runs"));
        assert_eq!(
            got, expected,
            "{NAME} on a {clock:?} clock: oneloop (left) vs node (right)"
        );
    }
}

// ---- Uncaught exceptions (panics the hook handles) -----------------------------------------

/// node/test/parallel/test-timers-uncaught-exception.js (plus the tick and microtask the
/// thrower queued, and a thrower that is the last timer of its phase)
#[test]
fn after_a_handled_panic_the_next_timer_runs_before_the_throwers_ticks() {
    assert_same_as_node_with_exit("timers_uncaught_exception", |lp, log| {
        let l = log.clone();
        lp.on_uncaught_panic(move |lp, panic| {
            push(&l, &format!("uncaught {}", panic.message()));
            lp.next_tick(say(&l, "tick from handler"));
        });
        let l = log.clone();
        lp.set_timeout(20, move |lp| {
            push(&l, "first timer");
            lp.next_tick(say(&l, "tick from first"));
            lp.queue_microtask(say(&l, "micro from first"));
            panic!("BAM!");
        });
        lp.set_timeout(20, say(log, "second timer"));
        lp.set_timeout(20, say(log, "third timer"));
        // All three overdue when the loop starts, whatever millisecond each was armed in.
        spin(lp, 25);
        let l = log.clone();
        lp.set_timeout(40, move |lp| {
            push(&l, "last timer");
            lp.next_tick(say(&l, "tick from last"));
            lp.set_immediate(say(&l, "immediate"));
            panic!("BAM again!");
        });
    });
}

/// node/test/parallel/test-timers-immediate-queue-throw.js (without the domain case; plus a
/// thrower that is the last immediate of its batch)
#[test]
fn after_a_handled_panic_the_next_immediate_runs_before_the_throwers_ticks() {
    fn run(lp: &mut Loop, log: &Log, call_stage: i32, state: &Rc<(Cell<bool>, Cell<i32>)>) {
        state.1.set(call_stage);
        push(log, &format!("run stage={call_stage}"));
        if state.0.get() {
            return;
        }
        let (l, s) = (log.clone(), state.clone());
        lp.set_immediate(move |lp| run(lp, &l, 2, &s));
    }
    assert_same_as_node_with_exit("immediate_queue_throw", |lp, log| {
        let state: Rc<(Cell<bool>, Cell<i32>)> = Rc::new((Cell::new(false), Cell::new(-1)));
        let (l, s) = (log.clone(), state.clone());
        lp.on_uncaught_panic(move |_, panic| {
            push(
                &l,
                &format!("uncaught {} stage={}", panic.message(), s.1.get()),
            )
        });
        for _ in 0..3 {
            let (l, s) = (log.clone(), state.clone());
            lp.set_immediate(move |lp| run(lp, &l, 0, &s));
        }
        let (l, s) = (log.clone(), state.clone());
        lp.set_immediate(move |lp| {
            s.0.set(true);
            let (l2, s2) = (l.clone(), s.clone());
            lp.next_tick(move |_| push(&l2, &format!("tick from thrower stage={}", s2.1.get())));
            panic!("setImmediate Err");
        });
        for _ in 0..3 {
            let (l, s) = (log.clone(), state.clone());
            lp.set_immediate(move |lp| run(lp, &l, 1, &s));
        }
        let l = log.clone();
        lp.once_before_exit(move |lp| {
            lp.set_immediate(move |lp| {
                push(&l, "last");
                lp.next_tick(say(&l, "tick from last"));
                lp.set_immediate(say(&l, "queued by last"));
                lp.set_timeout(0, say(&l, "timeout"));
                panic!("last Err");
            });
        });
    });
}

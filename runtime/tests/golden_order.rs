//! Golden ordering tests: each scenario runs twice, once as `tests/golden/<name>.js` under real
//! `node` and once on [`Loop`], and the two token lists must be equal.
//!
//! Mapping: `process.nextTick` = `next_tick`; `queueMicrotask` and a `.then` on a resolved
//! promise = `queue_microtask` (a chained `.then` = a microtask that queues a microtask);
//! `fs.readFile`'s callback = `queue_work`'s `after` (both run in the poll phase); a
//! synchronous spin = `std::thread::sleep`; `process.on('exit')` = code after `run` returns.
//!
//! Every scenario also runs on a virtual-clock loop (`Clock::Virtual`), where waiting for a
//! timer takes no real time and a spin advances the virtual clock instead of sleeping: the order
//! must be the same as node's there too.
//!
//! These tests need Node 20 on `PATH`; without it they fail (they never skip silently).

mod golden_common;

use std::cell::RefCell;
use std::rc::Rc;

use golden_common::{
    assert_same_as_node, assert_same_as_node_with_exit, new_loop, node_output, push, read_file,
    say, spin, timing_lock, Log,
};
use oneloop_runtime::{Clock, Loop, TimerId};

#[test]
fn t1_sync_ticks_promises_microtasks_then_timeout_and_immediate() {
    assert_same_as_node("t1_sync_ticks_promises", |lp, log| {
        push(log, "sync");
        lp.set_timeout(0, say(log, "timeout"));
        lp.set_immediate(say(log, "immediate"));
        lp.next_tick(say(log, "tick1"));
        let l = log.clone();
        lp.next_tick(move |lp| {
            push(&l, "tick2");
            lp.next_tick(say(&l, "tick-from-tick"));
            lp.queue_microtask(say(&l, "promise-from-tick"));
        });
        let l = log.clone();
        lp.queue_microtask(move |lp| {
            push(&l, "promise1");
            lp.next_tick(say(&l, "tick-from-promise"));
        });
        lp.queue_microtask(say(log, "micro2"));
        lp.queue_microtask(say(log, "promise3"));
        spin(lp, 5);
    });
}

#[test]
fn t2_timers_and_immediates_drain_their_ticks_and_promises_in_between() {
    assert_same_as_node("t2_timers_immediates_queues", |lp, log| {
        let l = log.clone();
        lp.set_timeout(0, move |lp| {
            push(&l, "t1");
            lp.queue_microtask(say(&l, "t1.promise"));
            lp.next_tick(say(&l, "t1.tick"));
        });
        let l = log.clone();
        lp.set_timeout(0, move |lp| {
            push(&l, "t2");
            lp.queue_microtask(say(&l, "t2.promise"));
        });
        let l = log.clone();
        lp.set_immediate(move |lp| {
            push(&l, "i1");
            lp.next_tick(say(&l, "i1.tick"));
            lp.set_immediate(say(&l, "i3-nested"));
        });
        lp.set_immediate(say(log, "i2"));
        spin(lp, 5);
    });
}

#[test]
fn t3_immediate_runs_before_timeout_inside_a_thread_pool_completion() {
    assert_same_as_node("t3_threadpool_completion", |lp, log| {
        let l = log.clone();
        read_file(lp, move |lp| {
            push(&l, "readFile");
            lp.set_timeout(0, say(&l, "timeout"));
            lp.set_immediate(say(&l, "immediate"));
            lp.next_tick(say(&l, "tick"));
        });
    });
}

#[test]
fn t4_timeout_armed_in_a_timer_callback_waits_for_the_next_iteration() {
    assert_same_as_node("t4_timeout_inside_timer", |lp, log| {
        let l = log.clone();
        lp.set_timeout(0, move |lp| {
            push(&l, "A");
            lp.set_timeout(0, say(&l, "C"));
            lp.set_immediate(say(&l, "imm-from-A"));
        });
        lp.set_timeout(0, say(log, "B"));
        spin(lp, 5);
    });
}

#[test]
fn t5_before_exit_restarts_the_loop_and_unrefd_timers_never_run() {
    let _serial = timing_lock();
    let expected = node_output("t5_before_exit_restart");
    for clock in [Clock::Real, Clock::Virtual] {
        t5_on(clock, &expected);
    }
}

fn t5_on(clock: Clock, expected: &[String]) {
    let log = Log::default();
    let mut lp = new_loop(clock);
    let t = lp.set_timeout(1000, say(&log, "unref-timer"));
    lp.unref(t).unwrap();
    let l = log.clone();
    let iv = lp.set_interval(1000, move |_| push(&l, "unref-interval"));
    lp.unref(iv).unwrap();
    let l = log.clone();
    let mut restarted = false;
    lp.on_before_exit(move |lp| {
        push(&l, "beforeExit");
        if !restarted {
            restarted = true;
            lp.set_timeout(0, say(&l, "after-beforeExit-timer"));
        }
    });
    lp.run().unwrap();
    push(&log, "exit");
    assert_eq!(*log.borrow(), expected, "{clock:?} clock");
}

#[test]
fn t6_delays_below_one_and_nan_share_the_one_ms_list_in_insertion_order() {
    assert_same_as_node("t6_delay_coercion", |lp, log| {
        lp.set_timeout(10, say(log, "d10"));
        lp.set_timeout(1, say(log, "d1-a"));
        lp.set_timeout(0, say(log, "d0"));
        lp.set_timeout(-5, say(log, "dneg"));
        lp.set_timeout(f64::NAN, say(log, "dNaN"));
        lp.set_timeout(1, say(log, "d1-b"));
        lp.set_timeout(2, say(log, "d2"));
    });
}

#[test]
fn nested_tick_and_microtask_chains_drain_level_by_level() {
    assert_same_as_node("nested_ticks_microtasks", |lp, log| {
        let l = log.clone();
        lp.set_immediate(move |lp| {
            push(&l, "imm");
            let l2 = l.clone();
            lp.next_tick(move |lp| {
                push(&l2, "tick-1");
                let l3 = l2.clone();
                lp.queue_microtask(move |lp| {
                    push(&l3, "micro-1");
                    let l4 = l3.clone();
                    lp.next_tick(move |lp| {
                        push(&l4, "tick-2");
                        let l5 = l4.clone();
                        lp.queue_microtask(move |lp| {
                            push(&l5, "micro-2");
                            lp.next_tick(say(&l5, "tick-3"));
                            lp.queue_microtask(say(&l5, "micro-2b"));
                        });
                        lp.next_tick(say(&l4, "tick-2b"));
                    });
                    lp.queue_microtask(say(&l3, "micro-1-chained"));
                });
                lp.next_tick(say(&l2, "tick-1b"));
            });
            lp.queue_microtask(say(&l, "micro-0"));
        });
        lp.set_immediate(say(log, "imm-2"));
    });
}

#[test]
fn a_timer_cleared_by_an_earlier_timer_in_the_same_batch_never_runs() {
    assert_same_as_node("clear_timeout_by_sibling", |lp, log| {
        let b: Rc<RefCell<Option<TimerId>>> = Rc::default();
        let (l, b2) = (log.clone(), b.clone());
        lp.set_timeout(1, move |lp| {
            push(&l, "a");
            let id = b2.borrow().expect("b armed");
            lp.clear_timeout(id).expect("b still pending");
        });
        *b.borrow_mut() = Some(lp.set_timeout(1, say(log, "b")));
        lp.set_timeout(1, say(log, "c"));
        spin(lp, 5);
    });
}

#[test]
fn immediates_queued_in_the_check_phase_run_after_the_next_timers_phase() {
    assert_same_as_node("immediates_inside_immediates", |lp, log| {
        let l = log.clone();
        read_file(lp, move |lp| {
            let l2 = l.clone();
            lp.set_immediate(move |lp| {
                push(&l2, "i1");
                let l3 = l2.clone();
                lp.set_immediate(move |lp| {
                    push(&l3, "i1-child");
                    lp.set_immediate(say(&l3, "i1-grandchild"));
                });
                lp.set_timeout(0, say(&l2, "timeout"));
                spin(lp, 5);
            });
            lp.set_immediate(say(&l, "i2"));
        });
    });
}

#[test]
fn interval_and_timeout_with_one_delay_run_in_creation_order() {
    assert_same_as_node("interval_and_timeout", |lp, log| {
        let l = log.clone();
        let id: Rc<RefCell<Option<TimerId>>> = Rc::default();
        let id2 = id.clone();
        let mut n = 0;
        let iv = lp.set_interval(20, move |lp| {
            n += 1;
            push(&l, &format!("interval-{n}"));
            if n == 1 {
                lp.set_timeout(20, say(&l, "timeout-from-interval"));
            }
            if n == 3 {
                lp.clear_interval(id2.borrow().unwrap()).unwrap();
            }
        });
        *id.borrow_mut() = Some(iv);
        lp.set_timeout(20, say(log, "timeout"));
    });
}

#[test]
fn a_timer_armed_after_a_blocking_callback_counts_its_delay_from_real_time() {
    assert_same_as_node("timer_after_blocking_callback", |lp, log| {
        let l = log.clone();
        lp.set_immediate(move |lp| {
            lp.set_timeout(10, say(&l, "armed-first-10ms"));
            spin(lp, 30);
            lp.set_timeout(1, say(&l, "armed-after-spin-1ms"));
        });
    });
}

#[test]
fn an_unrefd_timer_due_when_the_last_refd_work_ends_still_fires() {
    assert_same_as_node_with_exit("tail_timers_unrefd_due_at_end", |lp, log| {
        let t = lp.set_timeout(5, say(log, "unref-timer"));
        lp.unref(t).unwrap();
        let l = log.clone();
        lp.set_immediate(move |lp| {
            push(&l, "immediate");
            spin(lp, 20);
        });
    });
}

#[test]
fn before_exit_runs_every_listener_then_drains_ticks_and_microtasks() {
    assert_same_as_node_with_exit("before_exit_one_event", |lp, log| {
        let n = Rc::new(RefCell::new(0));
        let (l, n1) = (log.clone(), n.clone());
        lp.on_before_exit(move |lp| {
            *n1.borrow_mut() += 1;
            let k = *n1.borrow();
            push(&l, &format!("listener-1 #{k}"));
            lp.next_tick(say(&l, "tick-from-1"));
            lp.queue_microtask(say(&l, "micro-from-1"));
            if k == 1 {
                lp.set_timeout(1, say(&l, "timer"));
            }
        });
        let l = log.clone();
        lp.on_before_exit(move |_| push(&l, &format!("listener-2 #{}", n.borrow())));
    });
}

#[test]
fn a_once_before_exit_listener_runs_once_and_a_removed_one_still_runs_in_that_event() {
    assert_same_as_node_with_exit("before_exit_once_and_remove", |lp, log| {
        let n = Rc::new(RefCell::new(0));
        let fourth: Rc<RefCell<Option<oneloop_runtime::BeforeExitId>>> = Rc::default();
        let (l, n1) = (log.clone(), n.clone());
        lp.on_before_exit(move |_| {
            *n1.borrow_mut() += 1;
            push(&l, &format!("listener-1 #{}", n1.borrow()));
        });
        lp.once_before_exit(say(log, "once"));
        let (l, n3, f3) = (log.clone(), n.clone(), fourth.clone());
        lp.on_before_exit(move |lp| {
            let k = *n3.borrow();
            push(&l, &format!("listener-3 #{k}"));
            if k == 1 {
                let id = f3.borrow().expect("fourth registered");
                lp.remove_before_exit(id).expect("fourth still registered");
                lp.set_timeout(1, say(&l, "timer"));
            }
        });
        let l = log.clone();
        let id = lp.on_before_exit(move |_| push(&l, &format!("listener-4 #{}", n.borrow())));
        *fourth.borrow_mut() = Some(id);
    });
}

#[test]
fn overdue_timers_run_list_by_list_not_by_due_time() {
    assert_same_as_node("lists_overdue_by_duration", |lp, log| {
        let l = log.clone();
        lp.set_immediate(move |lp| {
            lp.set_timeout(10, say(&l, "d10-first"));
            lp.set_timeout(15, say(&l, "d15"));
            spin(lp, 8);
            lp.set_timeout(10, say(&l, "d10-second"));
            spin(lp, 30);
        });
    });
}

#[test]
fn an_interval_refreshed_in_its_own_callback_is_still_rearmed_from_its_start() {
    assert_same_as_node("interval_refresh_in_own_callback", |lp, log| {
        let l = log.clone();
        let id: Rc<RefCell<Option<TimerId>>> = Rc::default();
        let id2 = id.clone();
        let mut n = 0;
        let iv = lp.set_interval(120, move |lp| {
            n += 1;
            push(&l, &format!("iv-{n}"));
            let me = id2.borrow().expect("armed");
            if n == 1 {
                spin(lp, 120);
                lp.refresh_timer(me).unwrap();
            }
            if n == 3 {
                lp.clear_interval(me).unwrap();
            }
        });
        *id.borrow_mut() = Some(iv);
        lp.set_timeout(300, say(log, "t-300"));
    });
}

#[test]
fn a_timeout_armed_and_cleared_in_an_interval_callback_cannot_delay_the_interval() {
    assert_same_as_node("interval_with_cleared_sibling", |lp, log| {
        let l = log.clone();
        let id: Rc<RefCell<Option<TimerId>>> = Rc::default();
        let id2 = id.clone();
        let mut n = 0;
        let iv = lp.set_interval(40, move |lp| {
            n += 1;
            push(&l, &format!("iv-{n}"));
            if n == 1 {
                spin(lp, 40);
                let t = lp.set_timeout(40, say(&l, "never"));
                lp.clear_timeout(t).unwrap();
            }
            if n == 2 {
                lp.clear_interval(id2.borrow().unwrap()).unwrap();
            }
        });
        *id.borrow_mut() = Some(iv);
        lp.set_timeout(100, say(log, "t-100"));
    });
}

#[test]
fn fs_and_dns_callbacks_run_as_pool_completions_and_an_ip_literal_on_the_next_tick() {
    use oneloop_runtime::{dns, fs};
    assert_same_as_node("fs_dns_callbacks", |lp, log| {
        let l = log.clone();
        fs::stat(
            lp,
            concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml"),
            move |lp, r| {
                push(
                    &l,
                    &format!("stat {}", if r.is_ok() { "ok" } else { "error" }),
                );
                lp.set_immediate(say(&l, "immediate"));
                lp.next_tick(say(&l, "tick"));
                lp.queue_microtask(say(&l, "microtask"));
                let l = l.clone();
                fs::read_file(lp, "/nonexistent/oneloop-golden", move |lp, r| {
                    push(&l, &r.map_or_else(|e| e.to_string(), |_| "read".into()));
                    let l2 = l.clone();
                    dns::lookup(lp, "127.0.0.1", dns::Family::Any, move |_lp, a| {
                        push(&l2, &format!("literal {}", a.expect("a literal")))
                    })
                    .expect("pool");
                    lp.next_tick(say(&l, "tick-2"));
                    lp.set_immediate(move |lp| {
                        push(&l, "immediate-2");
                        dns::lookup(lp, "localhost", dns::Family::V4, move |_lp, a| {
                            push(&l, &format!("localhost {}", a.expect("localhost")))
                        })
                        .expect("pool");
                    });
                })
                .expect("pool");
            },
        )
        .expect("pool");
    });
}

#[test]
fn a_udp_message_callback_runs_in_poll_then_ticks_microtasks_immediates_close_timers() {
    use oneloop_runtime::UdpOptions;
    assert_same_as_node("udp_message_callbacks", |lp, log| {
        let local = "127.0.0.1:0".parse().expect("addr");
        let rx = lp.udp_bind(local, UdpOptions::default()).expect("bind");
        let tx = lp.udp_bind(local, UdpOptions::default()).expect("bind");
        let l = log.clone();
        lp.udp_on_message(rx, move |lp, msg, _peer| {
            push(&l, &format!("message {}", String::from_utf8_lossy(msg)));
            lp.set_timeout(0, say(&l, "timeout"));
            let l2 = l.clone();
            lp.set_immediate(move |lp| {
                push(&l2, "immediate");
                lp.udp_close(rx, say(&l2, "close")).expect("open");
                lp.udp_close(tx, |_| {}).expect("open");
            });
            lp.next_tick(say(&l, "tick"));
            lp.queue_microtask(say(&l, "microtask"));
        })
        .expect("open");
        let to = lp.udp_local_addr(rx).expect("open");
        lp.udp_send(tx, b"one", to, |_, r| {
            r.expect("sent");
        })
        .expect("open");
    });
}

/// `child.on('exit')` vs stdout `'end'` vs `'close'` (tests/golden/child_exit_order.js): a
/// child that closes its stdout before exiting ('end', 'exit', then 'close' synchronously
/// after 'exit', before the exit listener's tick), then one whose background grandchild keeps
/// stdout open past the exit ('exit' first; 'close' waits for stdout).
#[test]
fn child_exit_vs_stdout_end_vs_close() {
    use oneloop_runtime::{SpawnOptions, StdioMode};
    type Next = Box<dyn FnOnce(&mut Loop)>;
    fn run(lp: &mut Loop, log: &Log, name: &'static str, script: &str, next: Option<Next>) {
        let child = lp
            .spawn(SpawnOptions {
                stdio: [StdioMode::Ignore, StdioMode::Pipe, StdioMode::Ignore],
                ..SpawnOptions::new("sh", ["-c", script])
            })
            .expect("spawn sh");
        let stdout = lp.process_stdout(child).expect("piped");
        let l = log.clone();
        lp.tcp_on_data(stdout, move |_lp, _id, d| {
            let text = String::from_utf8_lossy(d);
            for line in text.lines() {
                push(&l, &format!("{name} data {line}"));
            }
        })
        .unwrap();
        let l = log.clone();
        lp.tcp_on_end(stdout, move |_lp, _id| {
            push(&l, &format!("{name} stdout end"))
        })
        .unwrap();
        let show = |v: Option<i32>| v.map_or("null".to_string(), |n| n.to_string());
        let l = log.clone();
        lp.process_on_exit(child, move |lp, code, sig| {
            push(&l, &format!("{name} exit {} {}", show(code), show(sig)));
            let l = l.clone();
            lp.next_tick(move |_| push(&l, &format!("{name} tick after exit")));
        })
        .unwrap();
        let l = log.clone();
        lp.process_on_close(child, move |lp, code, sig| {
            push(&l, &format!("{name} close {} {}", show(code), show(sig)));
            if let Some(next) = next {
                next(lp);
            }
        })
        .unwrap();
    }
    assert_same_as_node("child_exit_order", |lp, log| {
        let l = log.clone();
        let b: Next = Box::new(move |lp| {
            run(
                lp,
                &l,
                "B",
                "echo hi; sleep 0.2; (sleep 0.5; echo late) & exit 4",
                None,
            )
        });
        run(
            lp,
            log,
            "A",
            "echo hi; exec >&-; sleep 0.3; exit 3",
            Some(b),
        );
    });
}

#[test]
fn a_udp_send_callback_runs_two_ticks_after_send_before_the_next_message() {
    use oneloop_runtime::UdpOptions;
    assert_same_as_node("udp_send_callback", |lp, log| {
        let local = "127.0.0.1:0".parse().expect("addr");
        let a = lp.udp_bind(local, UdpOptions::default()).expect("bind");
        let b = lp.udp_bind(local, UdpOptions::default()).expect("bind");
        let to = lp.udp_local_addr(b).expect("open");
        let l = log.clone();
        let mut n = 0;
        lp.udp_on_message(b, move |lp, msg, _peer| {
            push(&l, &format!("message {}", String::from_utf8_lossy(msg)));
            n += 1;
            if n == 1 {
                let l2 = l.clone();
                lp.udp_send(a, b"two", to, move |_, r| {
                    r.expect("sent");
                    push(&l2, "sent two");
                })
                .expect("open");
                lp.set_immediate(say(&l, "immediate"));
                lp.next_tick(say(&l, "tick"));
                lp.set_timeout(0, say(&l, "timeout"));
            } else {
                lp.udp_close(a, |_| {}).expect("open");
                lp.udp_close(b, |_| {}).expect("open");
            }
        })
        .expect("open");
        lp.udp_send(a, b"one", to, |_, r| {
            r.expect("sent");
        })
        .expect("open");
    });
}

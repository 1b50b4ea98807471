//! Golden tests for promises and `async`/`await`: each scenario runs as
//! `tests/golden/async_<name>.js` under real `node` and on [`Loop`] (both clocks), and the two
//! token lists must be equal.
//!
//! Mapping: `async function` call = `lp.spawn_task(async { .. }).detach()` (or
//! [`Promise::from_future`] where its promise is used); `await null` = `task::yield_now()`;
//! `await promise` = `promise.await`; `new Promise(r => setTimeout(r, ms))` = `task::sleep(ms)`;
//! `new Promise(r => setImmediate(r))` = `task::immediate()`; `fs.stat` = thread-pool work;
//! `process.nextTick` inside an async function = `task::next_tick`; a timer or immediate armed
//! inside one = `task::with_loop(|lp| ..)`.
//!
//! These tests need Node 20 on `PATH`; without it they fail (they never skip silently).

mod golden_common;

use std::cell::RefCell;
use std::rc::Rc;

use golden_common::{
    assert_same_as_node, new_loop, node_output, push, read_file, say, spin, timing_lock, Log,
};
use oneloop_runtime::task::{self, Promise, Thenable};
use oneloop_runtime::{Clock, Loop};

type P<T> = Promise<T, &'static str>;

/// A callback that logs `token` and passes its value on (for `.then` chains).
fn log_then<T>(log: &Log, token: &'static str) -> impl FnOnce(&mut Loop, T) + 'static {
    let log = log.clone();
    move |_, _| push(&log, token)
}

/// `Promise.resolve().then(() => log(t1)).then(() => log(t2))...`
fn then_chain(log: &Log, tokens: &[&'static str]) {
    let mut p: P<()> = Promise::resolved(());
    for &t in tokens {
        p = p.then(log_then(log, t));
    }
}

#[test]
fn await_on_value_promise_and_thenable_take_node_tick_counts() {
    assert_same_as_node("async_await_kinds", |lp, log| {
        let l = log.clone();
        lp.spawn_task(async move {
            let thenable = Thenable::<(), &str>::new(|_lp, resolve| {
                resolve.resolve(());
            });
            thenable.await.unwrap();
            push(&l, "thenable");
        })
        .detach();
        let l = log.clone();
        lp.spawn_task(async move {
            task::yield_now().await;
            push(&l, "value");
        })
        .detach();
        let l = log.clone();
        lp.spawn_task(async move {
            P::resolved(()).await.unwrap();
            push(&l, "promise");
        })
        .detach();
        let pp: P<i32> = Promise::resolved(1);
        let (p, resolve) = P::<i32>::pending();
        resolve.follow(&pp);
        p.then(log_then(log, "resolve-with-promise"));
        P::resolved(())
            .then_promise(move |_, _| pp.clone())
            .then(log_then(log, "then-returns-promise"));
        then_chain(log, &["t1", "t2", "t3", "t4", "t5"]);
        push(log, "sync");
    });
}

#[test]
fn classic_puzzle_async_functions_promise_executor_tick_timeout_immediate() {
    assert_same_as_node("async_classic_puzzle", |lp, log| {
        push(log, "script start");
        lp.set_timeout(0, say(log, "setTimeout"));
        let l = log.clone();
        lp.spawn_task(async move {
            push(&l, "async1 start");
            let l2 = l.clone();
            let async2 = P::from_future(async move {
                push(&l2, "async2");
                Ok(())
            });
            async2.await.unwrap();
            push(&l, "async1 end");
        })
        .detach();
        let l = log.clone();
        P::new(move |resolve| {
            push(&l, "promise1");
            resolve.resolve(());
        })
        .then(log_then(log, "promise2"));
        lp.next_tick(say(log, "nextTick"));
        lp.set_immediate(say(log, "setImmediate"));
        push(log, "script end");
        spin(lp, 5);
    });
}

/// `async function f(name, n)` of the script: `n` awaits, a nextTick after each.
fn awaiting_loop(lp: &mut Loop, log: &Log, name: &'static str, n: usize) {
    let l = log.clone();
    lp.spawn_task(async move {
        for i in 0..n {
            task::yield_now().await;
            push(&l, &format!("{name}{i}"));
            let l2 = l.clone();
            task::next_tick(move |_| push(&l2, &format!("{name}{i}.tick")));
        }
        push(&l, &format!("{name} done"));
    })
    .detach();
}

#[test]
fn chained_awaits_interleave_with_then_chains_and_next_ticks() {
    assert_same_as_node("async_chained_awaits_ticks", |lp, log| {
        awaiting_loop(lp, log, "a", 3);
        then_chain(log, &["p1", "p2", "p3"]);
        awaiting_loop(lp, log, "b", 2);
        lp.next_tick(say(log, "tick0"));
        push(log, "sync");
    });
}

/// `async function f(name, n)` of `async_settled_awaits.js`: `await null`, then `n` awaits of
/// the settled `p`, a nextTick after the second and a queueMicrotask after the third. `g` is
/// spawned inline in the timer: its first await runs in the timer's callback.
fn settled_awaits(log: &Log, p: &P<i32>, name: &'static str, n: usize) {
    let l = log.clone();
    let p = p.clone();
    task::spawn(async move {
        task::yield_now().await;
        for i in 0..n {
            p.clone().await.unwrap();
            push(&l, &format!("{name}{i}"));
            if i == 1 {
                let l2 = l.clone();
                task::next_tick(move |_| push(&l2, &format!("{name}.tick")));
            }
            if i == 2 {
                let l2 = l.clone();
                task::queue_microtask(move |_| push(&l2, &format!("{name}.micro")));
            }
        }
        push(&l, &format!("{name} done"));
    })
    .detach();
}

#[test]
fn awaits_of_a_settled_promise_in_resumed_tasks_keep_node_order() {
    assert_same_as_node("async_settled_awaits", |lp, log| {
        let p: P<i32> = Promise::resolved(7);
        settled_awaits(log, &p, "a", 4);
        then_chain(log, &["p1", "p2", "p3"]);
        settled_awaits(log, &p, "b", 3);
        let l = log.clone();
        lp.set_timeout(0, move |_| {
            push(&l, "t1");
            let (l2, p2) = (l.clone(), p.clone());
            task::spawn(async move {
                p2.await.unwrap();
                push(&l2, "g resumed");
            })
            .detach();
            settled_awaits(&l, &p, "c", 4);
            push(&l, "t1 end");
        });
        lp.set_timeout(0, say(log, "t2"));
        lp.set_immediate(say(log, "immediate"));
        push(log, "sync");
        spin(lp, 5);
    });
}

#[test]
fn async_function_run_by_a_timer_drains_before_the_next_timer() {
    assert_same_as_node("async_from_timer", |lp, log| {
        let l = log.clone();
        lp.set_timeout(0, move |lp| {
            lp.spawn_task(async move {
                push(&l, "t1 start");
                task::yield_now().await;
                push(&l, "t1 resumed");
                let l2 = l.clone();
                task::next_tick(move |_| push(&l2, "t1 tick"));
                task::sleep(0).await;
                push(&l, "t1 after sleep");
            })
            .detach();
        });
        lp.set_timeout(0, say(log, "t2"));
        spin(lp, 5);
    });
}

#[test]
fn async_function_run_by_an_immediate_resumes_before_the_next_immediate() {
    assert_same_as_node("async_from_immediate", |lp, log| {
        let l = log.clone();
        lp.set_immediate(move |lp| {
            lp.spawn_task(async move {
                push(&l, "i1");
                task::yield_now().await;
                push(&l, "i1 resumed");
                task::immediate().await;
                push(&l, "i1 after immediate");
            })
            .detach();
        });
        lp.set_immediate(say(log, "i2"));
    });
}

#[test]
fn async_function_run_by_an_io_callback_then_awaits_immediate_and_work() {
    assert_same_as_node("async_from_io", |lp, log| {
        let l = log.clone();
        read_file(lp, move |lp| {
            lp.spawn_task(async move {
                push(&l, "io");
                let (lt, li) = (l.clone(), l.clone());
                task::with_loop(move |lp| {
                    lp.set_timeout(0, say(&lt, "timeout"));
                    lp.set_immediate(say(&li, "immediate"));
                    spin(lp, 5);
                });
                task::yield_now().await;
                push(&l, "resumed");
                let l2 = l.clone();
                task::next_tick(move |_| push(&l2, "tick"));
                task::immediate().await;
                push(&l, "after immediate");
                task::work(|| std::fs::metadata(file!()).is_ok())
                    .await
                    .unwrap();
                push(&l, "after work");
            })
            .detach();
        });
    });
}

/// The script's `later(ms, v)`: a timer that logs, starts a 3-step `.then` chain, and resolves.
fn later_logged(lp: &mut Loop, log: &Log, ms: u64, v: &'static str) -> P<&'static str> {
    let (p, resolve) = P::pending();
    let l = log.clone();
    lp.set_timeout(ms, move |_| {
        push(&l, &format!("timer {v}"));
        let (a, b, c) = (l.clone(), l.clone(), l.clone());
        P::resolved(())
            .then(move |_, _| push(&a, &format!("{v}.x1")))
            .then(move |_, _| push(&b, &format!("{v}.x2")))
            .then(move |_, _| push(&c, &format!("{v}.x3")));
        resolve.resolve(v);
    });
    p
}

#[test]
fn promise_all_over_timers_a_resolved_promise_and_an_async_function() {
    assert_same_as_node("async_all_mixed", |lp, log| {
        let a = later_logged(lp, log, 20, "a");
        let c = later_logged(lp, log, 5, "c");
        let l = log.clone();
        lp.spawn_task(async move {
            let fun = P::from_future(async {
                task::yield_now().await;
                Ok("fn")
            });
            let all = task::all(vec![a, P::resolved("b"), c, fun]).await.unwrap();
            push(&l, &format!("all {}", all.join(",")));
        })
        .detach();
        push(log, "sync");
    });
}

/// The script's `later(ms, v, ok)`: a timer that fulfils or rejects.
fn later(ms: u64, v: &'static str, ok: bool) -> P<&'static str> {
    let (p, resolve) = P::pending();
    task::with_loop(move |lp| {
        lp.set_timeout(ms, move |_| {
            if ok {
                resolve.resolve(v);
            } else {
                resolve.reject(v);
            }
        });
    });
    p
}

#[test]
fn race_all_settled_any_and_all_rejecting() {
    assert_same_as_node("async_race_settled_any", |lp, log| {
        let l = log.clone();
        lp.spawn_task(async move {
            let r = task::race(vec![later(30, "slow", true), later(2, "fast", true)]).await;
            push(&l, &format!("race {}", r.unwrap()));
            let s = task::all_settled(vec![
                later(1, "x", true),
                later(3, "y", false),
                P::resolved("z"),
            ])
            .await
            .unwrap();
            let s: Vec<String> = s
                .iter()
                .map(|r| match r {
                    Ok(v) => format!("f:{v}"),
                    Err(e) => format!("r:{e}"),
                })
                .collect();
            push(&l, &format!("allSettled {}", s.join(",")));
            let any = task::any(vec![
                later(1, "e1", false),
                later(8, "ok", true),
                later(2, "e2", false),
            ])
            .await;
            push(&l, &format!("any {}", any.unwrap()));
            let none = task::any(vec![P::rejected("r1"), later(1, "r2", false)]).await;
            push(
                &l,
                &format!("any rejected {}", none.unwrap_err().0.join(",")),
            );
            let all = task::all(vec![later(5, "unused", true), P::rejected("boom")]).await;
            push(&l, &format!("all rejected {}", all.unwrap_err()));
        })
        .detach();
    });
}

#[test]
fn combinators_over_settled_inputs_take_node_tick_counts() {
    assert_same_as_node("async_combinator_ticks", |lp, log| {
        let p: P<i32> = Promise::resolved(1);
        let r: P<i32> = Promise::rejected("2");
        task::all(vec![p.clone(), p.clone()]).then(log_then(log, "all"));
        task::race(vec![p.clone()]).then(log_then(log, "race"));
        task::all_settled(vec![p.clone(), r.clone()]).then(log_then(log, "allSettled"));
        task::any(vec![r.clone(), p.clone()]).then(log_then(log, "any"));
        task::all(Vec::<P<i32>>::new()).then(log_then(log, "all-empty"));
        let l = log.clone();
        task::any(vec![r.clone()]).catch(move |_, _| {
            push(&l, "any-rejected");
            0
        });
        let l = log.clone();
        task::all(vec![r.clone()]).catch(move |_, _| {
            push(&l, "all-rejected");
            Vec::new()
        });
        let l = log.clone();
        lp.spawn_task(async move {
            task::all(vec![p]).await.unwrap();
            push(&l, "await-all");
        })
        .detach();
        then_chain(log, &["t1", "t2", "t3", "t4"]);
    });
}

#[test]
fn nested_async_calls_resume_one_microtask_per_level() {
    assert_same_as_node("async_nested_async_calls", |lp, log| {
        let l = log.clone();
        lp.spawn_task(async move {
            push(&l, "f");
            let lg = l.clone();
            let g = P::<i32>::from_future(async move {
                push(&lg, "g");
                let lh = lg.clone();
                let h = P::<i32>::from_future(async move {
                    push(&lh, "h");
                    task::yield_now().await;
                    push(&lh, "h resumed");
                    Ok(1)
                });
                let v = h.await?;
                push(&lg, "g resumed");
                Ok(v + 1)
            });
            let v = g.await.unwrap();
            push(&l, &format!("f resumed {v}"));
        })
        .detach();
        then_chain(log, &["t1", "t2", "t3", "t4", "t5"]);
        push(log, "sync");
    });
}

#[test]
fn awaited_sleeps_and_immediates_against_plain_timers_and_immediates() {
    assert_same_as_node("async_sleep_and_timers", |lp, log| {
        let l = log.clone();
        lp.spawn_task(async move {
            push(&l, "a0");
            task::sleep(1).await;
            push(&l, "a1");
            task::sleep(1).await;
            push(&l, "a2");
        })
        .detach();
        lp.set_timeout(1, say(log, "t1"));
        let l = log.clone();
        lp.spawn_task(async move {
            push(&l, "b0");
            task::immediate().await;
            push(&l, "b1");
        })
        .detach();
        lp.set_immediate(say(log, "i1"));
        spin(lp, 5);
    });
}

#[test]
fn unhandled_rejections_reach_the_uncaught_hook_after_the_queues_drain() {
    assert_same_as_node("async_unhandled_rejection", |lp, log| {
        let l = log.clone();
        lp.on_uncaught_panic(move |_, panic| {
            let origin = if panic.message().starts_with("unhandled promise rejection") {
                "unhandledRejection"
            } else {
                "uncaughtException"
            };
            push(&l, &format!("uncaught {origin}"));
        });
        let l = log.clone();
        lp.set_timeout(0, move |lp| {
            push(&l, "timer");
            let _ = P::<()>::rejected("boom");
            let late = P::<()>::rejected("late");
            let l2 = l.clone();
            P::resolved(()).then(move |_, _| {
                late.catch(move |_, _| push(&l2, "caught late"));
            });
            lp.next_tick(say(&l, "tick"));
            P::resolved(()).then(log_then(&l, "micro"));
            lp.set_immediate(say(&l, "immediate"));
        });
        let l = log.clone();
        let _async_throws = P::<()>::from_future(async move {
            task::yield_now().await;
            push(&l, "async throws");
            Err("from async")
        });
    });
}

/// Node exits with code 1 when a rejection stays unhandled and nothing listens for
/// 'uncaughtException'; here `run` panics with the reason, after the same queues drained.
#[test]
fn an_unhandled_rejection_without_a_hook_ends_run_as_node_ends_the_process() {
    let _serial = timing_lock();
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/golden/async_unhandled_crash.js");
    let out = std::process::Command::new("node")
        .arg(&script)
        .output()
        .expect("this test needs `node` (v20) on PATH");
    assert_eq!(out.status.code(), Some(1), "node exits with 1");
    assert!(String::from_utf8_lossy(&out.stderr).contains("Error: boom"));
    let node_lines: Vec<String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    for clock in [Clock::Real, Clock::Virtual] {
        let log = Log::default();
        let mut lp = new_loop(clock);
        let _ = Promise::<(), String>::rejected("Error: boom".to_owned());
        lp.next_tick(say(&log, "tick"));
        Promise::<(), String>::resolved(()).then(log_then(&log, "after"));
        lp.set_timeout(0, say(&log, "never"));
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| lp.run()));
        let payload = result.expect_err("run must panic on an unhandled rejection");
        let message = payload
            .downcast_ref::<String>()
            .cloned()
            .unwrap_or_default();
        assert!(
            message.contains("unhandled promise rejection") && message.contains("boom"),
            "panic message: {message}"
        );
        assert_eq!(*log.borrow(), node_lines, "{clock:?} clock vs node");
    }
}

/// Keep `node_output` and `RefCell`/`Rc` in use for helpers above (they share the harness).
#[allow(dead_code)]
fn _uses(_: Rc<RefCell<()>>) -> Vec<String> {
    node_output("async_await_kinds")
}

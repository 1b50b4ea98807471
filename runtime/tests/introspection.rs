//! Seeing into the loop: virtual time, stepping, why-alive, metrics and Chrome traces. One test
//! per behaviour, each named as the sentence it checks.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::{Duration, Instant};

use oneloop_runtime::{CallbackKind, Clock, Loop, LoopOptions, Phase, StepReport};

fn virtual_loop() -> Loop {
    Loop::with_options(LoopOptions {
        threadpool_size: 2,
        trace_to_stderr: false,
        clock: Clock::Virtual,
    })
    .expect("loop")
}

fn real_loop() -> Loop {
    Loop::with_options(LoopOptions {
        threadpool_size: 2,
        trace_to_stderr: false,
        clock: Clock::Real,
    })
    .expect("loop")
}

// ---------------------------------------------------------------------------------------------
// Virtual time
// ---------------------------------------------------------------------------------------------

#[test]
fn a_one_second_interval_runs_for_a_virtual_hour_in_well_under_a_real_second() {
    let mut lp = virtual_loop();
    let fires = Rc::new(Cell::new(0u32));
    let f = fires.clone();
    let id = Rc::new(Cell::new(None));
    let id2 = id.clone();
    id.set(Some(lp.set_interval(1000, move |lp| {
        f.set(f.get() + 1);
        assert_eq!(lp.now(), u64::from(f.get()) * 1000, "fires exactly on time");
        if f.get() == 3600 {
            lp.clear_interval(id2.get().unwrap()).unwrap();
        }
    })));
    let started = Instant::now();
    lp.run().unwrap();
    let elapsed = started.elapsed();
    assert_eq!(fires.get(), 3600);
    assert_eq!(lp.now(), 3_600_000);
    assert_eq!(lp.hrtime(), 3_600_000_000_000);
    assert!(elapsed < Duration::from_secs(1), "took {elapsed:?}");
}

#[test]
fn virtual_time_jumps_over_long_timeouts_and_refresh_pushes_them_back() {
    let mut lp = virtual_loop();
    let log = Rc::new(RefCell::new(Vec::new()));
    let l = log.clone();
    let long = lp.set_timeout(7 * 24 * 3_600_000u64, move |lp| {
        l.borrow_mut().push(("week", lp.now()))
    });
    let l = log.clone();
    lp.set_timeout(500, move |lp| {
        l.borrow_mut().push(("half-second", lp.now()));
        lp.refresh_timer(long).unwrap(); // a week from now (500 ms)
    });
    let started = Instant::now();
    lp.run().unwrap();
    assert_eq!(
        *log.borrow(),
        vec![("half-second", 500), ("week", 500 + 7 * 24 * 3_600_000)]
    );
    assert!(started.elapsed() < Duration::from_secs(1));
}

#[test]
fn advance_makes_timers_due_for_the_next_run() {
    let mut lp = virtual_loop();
    let fired = Rc::new(Cell::new(false));
    let f = fired.clone();
    lp.set_timeout(50, move |_| f.set(true));
    assert!(lp.run_nowait().unwrap());
    assert!(!fired.get(), "no time passed");
    assert!(lp.advance(Duration::from_millis(49)));
    lp.run_nowait().unwrap();
    assert!(!fired.get(), "49 ms is not 50");
    lp.advance(Duration::from_millis(1));
    assert!(!lp.run_nowait().unwrap(), "fired and nothing is left");
    assert!(fired.get());
    assert_eq!(lp.now(), 50);
}

#[test]
fn advance_does_nothing_on_a_real_clock() {
    let mut lp = real_loop();
    assert_eq!(lp.clock(), Clock::Real);
    assert!(!lp.advance(Duration::from_secs(3600)));
    assert!(lp.hrtime() < 3_600_000_000_000);
}

#[test]
fn thread_pool_work_takes_no_virtual_time_and_lands_before_a_pending_timer() {
    let mut lp = virtual_loop();
    let log = Rc::new(RefCell::new(Vec::new()));
    let l = log.clone();
    lp.set_timeout(10, move |lp| l.borrow_mut().push(("timer", lp.now())));
    let l = log.clone();
    lp.queue_work(
        || std::thread::sleep(Duration::from_millis(30)),
        move |lp, r| {
            r.unwrap();
            l.borrow_mut().push(("work", lp.now()));
        },
    )
    .unwrap();
    lp.run().unwrap();
    assert_eq!(*log.borrow(), vec![("work", 0), ("timer", 10)]);
}

// ---------------------------------------------------------------------------------------------
// Stepping
// ---------------------------------------------------------------------------------------------

fn all_steps(lp: &mut Loop) -> Vec<StepReport> {
    let mut steps = Vec::new();
    while let Some(step) = lp.step().unwrap() {
        steps.push(step);
        assert!(steps.len() < 1000, "runaway");
    }
    steps
}

#[test]
fn step_runs_one_phase_at_a_time_in_iteration_order() {
    let mut lp = virtual_loop();
    lp.next_tick(|_| {});
    lp.set_timeout(1, |lp| lp.queue_microtask(|_| {}));
    lp.set_immediate(|_| {});
    let steps = all_steps(&mut lp);
    assert_eq!(steps[0].phase, Phase::Main);
    assert_eq!(steps[0].callbacks, vec![CallbackKind::NextTick]);
    // Then whole iterations, phase by phase, in Phase::ITERATION order.
    let rest = &steps[1..];
    assert_eq!(rest.len() % 7, 0, "{rest:?}");
    for (i, step) in rest.iter().enumerate() {
        assert_eq!(step.phase, Phase::ITERATION[i % 7]);
        assert_eq!(step.iteration, 1 + i as u64 / 7);
    }
    // Iteration 1: the immediate (the 1 ms timer is not due at virtual time 0 when iteration
    // 1's tail timers phase runs). Iteration 2: poll jumps to 1 ms, and the timer and its
    // microtask run in the same iteration's timers phase, at its tail (libuv >= 1.45).
    let ran: Vec<(u64, Phase, Vec<CallbackKind>)> = rest
        .iter()
        .filter(|s| !s.callbacks.is_empty())
        .map(|s| (s.iteration, s.phase, s.callbacks.clone()))
        .collect();
    assert_eq!(
        ran,
        vec![
            (1, Phase::Check, vec![CallbackKind::Immediate]),
            (
                2,
                Phase::Timers,
                vec![CallbackKind::Timer, CallbackKind::Microtask]
            ),
        ]
    );
}

#[test]
fn stepping_and_running_produce_the_same_order() {
    fn scenario(lp: &mut Loop, log: &Rc<RefCell<Vec<&'static str>>>) {
        let l = log.clone();
        lp.set_timeout(0, move |lp| {
            l.borrow_mut().push("A");
            let l2 = l.clone();
            lp.set_timeout(0, move |_| l2.borrow_mut().push("C"));
            let l3 = l.clone();
            lp.set_immediate(move |_| l3.borrow_mut().push("imm"));
        });
        let l = log.clone();
        lp.set_timeout(0, move |_| l.borrow_mut().push("B"));
        let l = log.clone();
        lp.set_interval(3, move |_| l.borrow_mut().push("iv"));
    }
    let (run_log, step_log) = (Rc::default(), Rc::default());
    let mut lp = virtual_loop();
    scenario(&mut lp, &run_log);
    lp.advance(Duration::from_millis(2));
    for _ in 0..6 {
        lp.run_once().unwrap();
    }
    let mut lp = virtual_loop();
    scenario(&mut lp, &step_log);
    lp.advance(Duration::from_millis(2));
    for _ in 0..6 * 7 {
        lp.step().unwrap().unwrap();
    }
    assert_eq!(*run_log.borrow(), *step_log.borrow());
    assert_eq!(run_log.borrow()[..3], ["A", "B", "imm"]);
    assert!(run_log.borrow().contains(&"C"));
}

#[test]
fn run_once_after_a_few_steps_finishes_the_iteration_they_began() {
    let mut lp = virtual_loop();
    lp.set_immediate(|_| {});
    let first = lp.step().unwrap().unwrap();
    assert_eq!((first.iteration, first.phase), (1, Phase::Pending));
    lp.step().unwrap().unwrap(); // idle
    let before = lp.metrics().iterations;
    assert!(
        !lp.run_once().unwrap(),
        "the immediate ran in this iteration's check"
    );
    assert_eq!(
        lp.metrics().iterations,
        before,
        "no new iteration was started"
    );
    assert_eq!(lp.step().unwrap(), None);
}

#[test]
fn step_runs_before_exit_once_then_reports_the_end() {
    let mut lp = virtual_loop();
    let calls = Rc::new(Cell::new(0));
    let c = calls.clone();
    lp.on_before_exit(move |_| c.set(c.get() + 1));
    let s = lp.step().unwrap().unwrap();
    assert_eq!(s.phase, Phase::BeforeExit);
    assert_eq!(s.callbacks, vec![CallbackKind::BeforeExit]);
    assert_eq!(lp.step().unwrap(), None);
    assert_eq!(calls.get(), 1);
}

// ---------------------------------------------------------------------------------------------
// Why alive
// ---------------------------------------------------------------------------------------------

#[test]
fn why_alive_names_the_file_and_line_of_a_forgotten_timer() {
    let mut lp = virtual_loop();
    let line = line!() + 1;
    lp.set_timeout(60_000, |_| {});
    let report = lp.why_alive_report();
    assert!(report.contains("timer"), "{report}");
    assert!(
        report.contains(&format!("{}:{line}", file!())),
        "{report} should name {}:{line}",
        file!()
    );
}

#[test]
fn why_alive_lists_immediates_work_and_intervals_with_their_callers() {
    let mut lp = virtual_loop();
    let (l1, l2, l3) = (line!() + 1, line!() + 2, line!() + 3);
    lp.set_immediate(|_| {});
    let iv = lp.set_interval(5, |_| {});
    lp.queue_work(|| std::thread::sleep(Duration::from_millis(20)), |_, _| {})
        .unwrap();
    let handles = lp.active_handles();
    let at = |kind: &str, line: u32| {
        handles.iter().any(|h| {
            h.kind == kind && h.created_at.as_deref() == Some(&format!("{}:{line}", file!()))
        })
    };
    assert!(at("immediate", l1), "{handles:?}");
    assert!(at("interval", l2), "{handles:?}");
    assert!(at("work", l3), "{handles:?}");
    lp.unref(iv).unwrap();
    assert!(!lp.why_alive_report().contains("interval"), "unref'd");
    lp.run().unwrap();
    assert_eq!(
        lp.why_alive_report(),
        "oneloop: nothing keeps the loop alive\n"
    );
}

#[test]
fn on_alive_after_reports_a_loop_still_running_past_its_deadline() {
    let mut lp = virtual_loop();
    let report = Rc::new(RefCell::new(None));
    let r = report.clone();
    lp.on_alive_after(Duration::from_secs(5), move |lp, text| {
        *r.borrow_mut() = Some((lp.now(), text))
    });
    let line = line!() + 1;
    let forgotten = lp.set_interval(1000, |_| {});
    lp.set_timeout(10_000, move |lp| lp.clear_interval(forgotten).unwrap());
    lp.run().unwrap();
    let (at, text) = report.borrow_mut().take().expect("the report ran");
    assert_eq!(at, 5000);
    assert!(text.contains(&format!("{}:{line}", file!())), "{text}");
}

#[test]
fn on_alive_after_stays_silent_when_the_loop_exits_in_time() {
    let mut lp = virtual_loop();
    let called = Rc::new(Cell::new(false));
    let c = called.clone();
    lp.warn_if_alive_after(Duration::from_secs(1));
    lp.on_alive_after(Duration::from_secs(1), move |_, _| c.set(true));
    lp.set_timeout(10, |_| {});
    lp.run().unwrap();
    assert!(!called.get());
    assert_eq!(
        lp.now(),
        10,
        "the unref'd check did not keep the loop alive"
    );
}

// ---------------------------------------------------------------------------------------------
// Metrics
// ---------------------------------------------------------------------------------------------

#[test]
fn metrics_are_absent_until_enabled_and_count_exactly_the_callbacks_run() {
    let mut lp = virtual_loop();
    assert!(lp.stats().is_none());
    lp.enable_metrics(true);
    let ran = Rc::new(Cell::new(0u64));
    let bump = |ran: &Rc<Cell<u64>>| {
        let r = ran.clone();
        move || r.set(r.get() + 1)
    };
    let (a, b, c, d, e) = (bump(&ran), bump(&ran), bump(&ran), bump(&ran), bump(&ran));
    let mut n = 0;
    let iv = Rc::new(Cell::new(None));
    let iv2 = iv.clone();
    iv.set(Some(lp.set_interval(10, move |lp| {
        a();
        n += 1;
        if n == 5 {
            lp.clear_interval(iv2.get().unwrap()).unwrap();
        }
    })));
    lp.set_immediate(move |lp| {
        b();
        lp.next_tick(move |lp| {
            c();
            lp.queue_microtask(move |_| d());
        });
    });
    lp.queue_work(|| 1, move |_, _| e()).unwrap();
    lp.run().unwrap();
    let stats = lp.stats().expect("enabled");
    assert_eq!(ran.get(), 5 + 4);
    assert_eq!(stats.total_callbacks(), ran.get());
    assert_eq!(stats.callbacks(CallbackKind::Timer), 5);
    assert_eq!(stats.callbacks(CallbackKind::Immediate), 1);
    assert_eq!(stats.callbacks(CallbackKind::NextTick), 1);
    assert_eq!(stats.callbacks(CallbackKind::Microtask), 1);
    assert_eq!(stats.callbacks(CallbackKind::Work), 1);
    assert_eq!(stats.phase(Phase::Timers).callbacks, 5);
    assert_eq!(
        stats.phase(Phase::Check).callbacks,
        3,
        "immediate, tick, microtask"
    );
    assert_eq!(stats.phase(Phase::Poll).callbacks, 1);
    let iterations = lp.metrics().iterations;
    // Once per iteration (at its tail), plus `run`'s pass before the first iteration.
    assert_eq!(stats.phase(Phase::Timers).entries, iterations + 1);
    assert_eq!(stats.phase(Phase::Close).entries, iterations);
    assert_eq!(stats.timer_lateness_us().len(), 5);
    assert_eq!(
        stats.timer_lateness_us().max(),
        0,
        "virtual timers are never late"
    );
    assert!(stats.max_queue_depths().timers >= 1);
    assert!(!stats.loop_delay_ns().is_empty());
    assert!(stats.summary().contains("timers"));
    lp.enable_metrics(false);
    assert!(lp.stats().is_none());
}

#[test]
fn metrics_measure_a_blocking_callback_as_timer_lateness_and_busy_phase_time() {
    let mut lp = real_loop();
    lp.enable_metrics(true);
    lp.set_timeout(1, |_| {});
    lp.set_timeout(40, |_| {}); // one more poll after the busy one, to end the delay sample
    lp.set_immediate(|_| std::thread::sleep(Duration::from_millis(20)));
    lp.run().unwrap();
    let stats = lp.stats().unwrap();
    assert!(stats.phase(Phase::Check).time_ns >= 20_000_000);
    assert!(
        stats.timer_lateness_us().max() >= 15_000,
        "the 1 ms timer waited for the 20 ms immediate: {}",
        stats.summary()
    );
    assert!(stats.loop_delay_ns().max() >= 20_000_000);
}

// ---------------------------------------------------------------------------------------------
// Chrome trace
// ---------------------------------------------------------------------------------------------

#[derive(Debug)]
struct Span {
    name: String,
    cat: String,
    ts: f64,
    end: f64,
}

fn spans(path: &std::path::Path) -> Vec<Span> {
    let text = std::fs::read_to_string(path).unwrap();
    let json: serde_json::Value = serde_json::from_str(&text).expect("the trace is valid JSON");
    let events = json["traceEvents"].as_array().expect("traceEvents array");
    events
        .iter()
        .filter(|e| e["ph"] == "X")
        .map(|e| {
            assert_eq!(e["pid"], 1);
            assert_eq!(e["tid"], 1);
            let ts = e["ts"].as_f64().unwrap();
            Span {
                name: e["name"].as_str().unwrap().to_owned(),
                cat: e["cat"].as_str().unwrap().to_owned(),
                ts,
                end: ts + e["dur"].as_f64().unwrap(),
            }
        })
        .collect()
}

fn trace_path(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("oneloop-trace-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

#[test]
fn a_trace_file_is_json_and_every_callback_lies_inside_its_phase() {
    let path = trace_path("puzzle.json");
    let mut lp = real_loop();
    lp.start_trace_file(&path).unwrap();
    lp.next_tick(|_| {});
    lp.set_timeout(1, |lp| {
        lp.next_tick(|_| {});
        lp.set_immediate(|_| {});
    });
    lp.queue_work(|| 2, |lp, _| lp.queue_microtask(|_| {}))
        .unwrap();
    lp.on_before_exit(|_| {});
    lp.run().unwrap();
    lp.finish_trace().unwrap();

    let spans = spans(&path);
    let callbacks: Vec<&Span> = spans.iter().filter(|s| s.cat == "callback").collect();
    let names: Vec<&str> = callbacks.iter().map(|s| s.name.as_str()).collect();
    for want in [
        "next-tick",
        "timer",
        "immediate",
        "work",
        "microtask",
        "before-exit",
    ] {
        assert!(names.contains(&want), "{want} missing from {names:?}");
    }
    assert_eq!(callbacks.len(), 7);
    let eps = 0.0015;
    for cb in &callbacks {
        assert!(cb.end >= cb.ts);
        let inside = spans.iter().any(|p| {
            p.cat == "phase" && p.ts <= cb.ts + eps && cb.end <= p.end + eps && p.end > p.ts - eps
        });
        assert!(inside, "{cb:?} lies in no phase span");
    }
    // Phases lie inside their iteration; every phase of ITERATION shows up.
    for p in spans.iter().filter(|s| s.cat == "phase") {
        if p.name == "main" || p.name == "before-exit" {
            continue;
        }
        assert!(
            spans
                .iter()
                .any(|i| i.cat == "iteration" && i.ts <= p.ts + eps && p.end <= i.end + eps),
            "{p:?} lies in no iteration"
        );
    }
    for phase in Phase::ITERATION {
        assert!(spans
            .iter()
            .any(|s| s.cat == "phase" && s.name == phase.name()));
    }
    assert!(
        spans.iter().any(|s| s.cat == "wait"),
        "poll waited for the timer"
    );
}

#[test]
fn a_trace_dropped_with_its_loop_is_still_complete_json() {
    let path = trace_path("dropped.json");
    {
        let mut lp = real_loop();
        lp.start_trace_file(&path).unwrap();
        lp.enable_metrics(true);
        lp.set_immediate(|_| {});
        lp.run().unwrap();
    }
    let text = std::fs::read_to_string(&path).unwrap();
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    let events = json["traceEvents"].as_array().unwrap();
    assert!(events.iter().any(|e| e["name"] == "immediate"));
    assert!(
        events
            .iter()
            .any(|e| e["ph"] == "C" && e["name"] == "queues"),
        "queue counters when metrics are on"
    );
}

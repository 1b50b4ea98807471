//! The classic event-loop ordering puzzles: `cargo run --release --example event_order`.
//!
//! Each puzzle prints its name and the order its callbacks ran in; the orders match Node 20
//! (`tests/golden/*.js`, checked by `runtime/tests/golden_order.rs`).
//!
//! - `--trace out.json [PUZZLE]` writes a Chrome trace of one puzzle (`io-callback` by default):
//!   open it in <https://ui.perfetto.dev>, or draw it with
//!   `cargo run --example trace_render -- out.json out.svg`.
//! - `--print-trace [PUZZLE]` prints the loop's trace (one line per phase and per callback,
//!   tokens interleaved) for one puzzle.
//! - `ONELOOP_TRACE=1` prints the trace of every puzzle to stderr.
//! - `--list` prints the puzzle names.
use std::cell::RefCell;
use std::env;
use std::io;
use std::rc::Rc;
use std::time::Duration;

use oneloop::runtime::{Loop, TraceEvent};

/// Where a puzzle writes its tokens. With `echo`, each token is also printed as it happens, so
/// it lands between the trace lines of the callback that produced it.
#[derive(Clone, Default)]
struct Out {
    tokens: Rc<RefCell<Vec<&'static str>>>,
    echo: bool,
}

impl Out {
    fn say(&self, token: &'static str) {
        if self.echo {
            println!("    -> {token}");
        }
        self.tokens.borrow_mut().push(token);
    }

    /// A callback that says `token`.
    fn cb(&self, token: &'static str) -> impl FnOnce(&mut Loop) + 'static {
        let out = self.clone();
        move |_| out.say(token)
    }
}

/// A synchronous pause, like a busy loop in JS: it makes 1 ms timers due before the loop starts,
/// which turns the main-module timeout/immediate race into a fixed order.
fn spin(ms: u64) {
    std::thread::sleep(Duration::from_millis(ms));
}

type Puzzle = fn(&mut Loop, &Out);

const PUZZLES: &[(&str, &str, Puzzle)] = &[
    (
        "sync-ticks-promises",
        "t1: sync, nextTick, promises, queueMicrotask, timeout, immediate",
        sync_ticks_promises,
    ),
    (
        "timers-vs-immediates",
        "t2: timers and immediates with their own ticks and promises",
        timers_vs_immediates,
    ),
    (
        "io-callback",
        "t3: setTimeout(0) vs setImmediate inside an I/O (thread-pool) callback",
        io_callback,
    ),
    (
        "timeout-in-timer",
        "t4: a timeout armed inside a timer callback",
        timeout_in_timer,
    ),
    (
        "before-exit",
        "t5: only unref'd timers, and beforeExit restarting the loop",
        before_exit,
    ),
    (
        "delay-coercion",
        "t6: delays 10, 1, 0, -5, NaN, 1, 2",
        delay_coercion,
    ),
    (
        "nested-ticks",
        "ticks queueing microtasks queueing ticks",
        nested_ticks,
    ),
    (
        "blocking-callback",
        "a 10 ms heartbeat interval and a timer callback that blocks for 60 ms",
        blocking_callback,
    ),
    (
        "offloaded-work",
        "the same 60 ms of work moved to queue_work: the heartbeat keeps its beat",
        offloaded_work,
    ),
];

fn sync_ticks_promises(lp: &mut Loop, out: &Out) {
    out.say("sync");
    lp.set_timeout(0, out.cb("timeout"));
    lp.set_immediate(out.cb("immediate"));
    lp.next_tick(out.cb("tick1"));
    let o = out.clone();
    lp.next_tick(move |lp| {
        o.say("tick2");
        lp.next_tick(o.cb("tick-from-tick"));
        lp.queue_microtask(o.cb("promise-from-tick"));
    });
    let o = out.clone();
    lp.queue_microtask(move |lp| {
        o.say("promise1");
        lp.next_tick(o.cb("tick-from-promise"));
    });
    lp.queue_microtask(out.cb("micro2"));
    lp.queue_microtask(out.cb("promise3"));
    spin(5);
}

fn timers_vs_immediates(lp: &mut Loop, out: &Out) {
    let o = out.clone();
    lp.set_timeout(0, move |lp| {
        o.say("t1");
        lp.queue_microtask(o.cb("t1.promise"));
        lp.next_tick(o.cb("t1.tick"));
    });
    let o = out.clone();
    lp.set_timeout(0, move |lp| {
        o.say("t2");
        lp.queue_microtask(o.cb("t2.promise"));
    });
    let o = out.clone();
    lp.set_immediate(move |lp| {
        o.say("i1");
        lp.next_tick(o.cb("i1.tick"));
        lp.set_immediate(o.cb("i3-nested"));
    });
    lp.set_immediate(out.cb("i2"));
    spin(5);
}

fn io_callback(lp: &mut Loop, out: &Out) {
    let o = out.clone();
    // Node's fs.readFile: thread-pool work whose callback runs in the poll phase.
    let read = lp.queue_work(
        || std::fs::read(file!()).map(|b| b.len()).unwrap_or(0),
        move |lp, _len| {
            o.say("readFile");
            lp.set_timeout(0, o.cb("timeout"));
            lp.set_immediate(o.cb("immediate"));
            lp.next_tick(o.cb("tick"));
        },
    );
    if let Err(e) = read {
        eprintln!("queue_work failed: {e}");
    }
}

fn timeout_in_timer(lp: &mut Loop, out: &Out) {
    let o = out.clone();
    lp.set_timeout(0, move |lp| {
        o.say("A");
        lp.set_timeout(0, o.cb("C"));
        lp.set_immediate(o.cb("imm-from-A"));
    });
    lp.set_timeout(0, out.cb("B"));
    spin(5);
}

fn before_exit(lp: &mut Loop, out: &Out) {
    let t = lp.set_timeout(1000, out.cb("unref-timer"));
    let _ = lp.unref(t);
    let o = out.clone();
    let mut restarted = false;
    lp.on_before_exit(move |lp| {
        o.say("beforeExit");
        if !restarted {
            restarted = true;
            lp.set_timeout(0, o.cb("after-beforeExit-timer"));
        }
    });
}

fn delay_coercion(lp: &mut Loop, out: &Out) {
    lp.set_timeout(10, out.cb("d10"));
    lp.set_timeout(1, out.cb("d1-a"));
    lp.set_timeout(0, out.cb("d0"));
    lp.set_timeout(-5, out.cb("dneg"));
    lp.set_timeout(f64::NAN, out.cb("dNaN"));
    lp.set_timeout(1, out.cb("d1-b"));
    lp.set_timeout(2, out.cb("d2"));
}

fn nested_ticks(lp: &mut Loop, out: &Out) {
    let o = out.clone();
    lp.next_tick(move |lp| {
        o.say("tick-1");
        let o2 = o.clone();
        lp.queue_microtask(move |lp| {
            o2.say("micro-1");
            let o3 = o2.clone();
            lp.next_tick(move |lp| {
                o3.say("tick-2");
                lp.queue_microtask(o3.cb("micro-2"));
            });
            lp.queue_microtask(o2.cb("micro-1-chained"));
        });
        lp.next_tick(o.cb("tick-1b"));
    });
    lp.queue_microtask(out.cb("micro-0"));
}

/// A heartbeat every 10 ms for 100 ms, so a stall shows as beats that come late.
fn heartbeat(lp: &mut Loop, out: &Out) {
    let o = out.clone();
    let beat = lp.set_interval(10, move |_| o.say("beat"));
    lp.set_timeout(100, move |lp| {
        let _ = lp.clear_interval(beat);
    });
}

fn blocking_callback(lp: &mut Loop, out: &Out) {
    heartbeat(lp, out);
    let o = out.clone();
    lp.set_timeout(15, move |_| {
        o.say("heavy-start");
        spin(60); // a CPU-heavy callback: nothing else runs meanwhile
        o.say("heavy-end");
    });
}

fn offloaded_work(lp: &mut Loop, out: &Out) {
    heartbeat(lp, out);
    let o = out.clone();
    lp.set_timeout(15, move |lp| {
        o.say("heavy-start");
        let o2 = o.clone();
        // The same 60 ms, on the thread pool: the loop keeps running timers meanwhile.
        let queued = lp.queue_work(|| spin(60), move |_, _| o2.say("heavy-end"));
        if let Err(e) = queued {
            eprintln!("queue_work failed: {e}");
        }
    });
}

/// How a puzzle is watched.
enum Watch<'a> {
    Quiet,
    /// Trace lines on stdout, tokens interleaved.
    Print,
    /// A Chrome trace written to this file.
    ChromeFile(&'a str),
}

fn run_puzzle(puzzle: Puzzle, watch: Watch) -> io::Result<Vec<&'static str>> {
    let mut lp = Loop::new()?;
    let out = Out {
        echo: matches!(watch, Watch::Print),
        ..Out::default()
    };
    match watch {
        Watch::Quiet => {}
        Watch::Print => lp.set_trace(Some(Box::new(|ev: &TraceEvent| println!("{ev}")))),
        Watch::ChromeFile(path) => lp.start_trace_file(path)?,
    }
    puzzle(&mut lp, &out);
    lp.run()?;
    lp.finish_trace()?;
    let tokens = out.tokens.borrow().clone();
    Ok(tokens)
}

fn find(name: &str) -> (&'static str, &'static str, Puzzle) {
    match PUZZLES.iter().find(|(n, _, _)| *n == name) {
        Some(p) => *p,
        None => {
            eprintln!("unknown puzzle {name:?}; try --list");
            std::process::exit(2);
        }
    }
}

fn main() -> io::Result<()> {
    let args: Vec<String> = env::args().skip(1).collect();
    if args.iter().any(|a| a == "--list") {
        for (name, what, _) in PUZZLES {
            println!("{name:<22} {what}");
        }
        return Ok(());
    }
    if let Some(pos) = args.iter().position(|a| a == "--print-trace") {
        let (name, what, puzzle) = find(args.get(pos + 1).map_or("io-callback", String::as_str));
        println!("{name} ({what}), traced:");
        let tokens = run_puzzle(puzzle, Watch::Print)?;
        println!("order: {}", tokens.join(" "));
        return Ok(());
    }
    if let Some(pos) = args.iter().position(|a| a == "--trace") {
        let Some(path) = args.get(pos + 1) else {
            eprintln!("usage: event_order --trace out.json [PUZZLE]");
            std::process::exit(2);
        };
        let (name, what, puzzle) = find(args.get(pos + 2).map_or("io-callback", String::as_str));
        let tokens = run_puzzle(puzzle, Watch::ChromeFile(path))?;
        println!("{name} ({what})\n  {}\ntrace: {path}", tokens.join(" "));
        return Ok(());
    }
    for (name, what, puzzle) in PUZZLES {
        let tokens = run_puzzle(*puzzle, Watch::Quiet)?;
        println!("{name} ({what})\n  {}", tokens.join(" "));
    }
    Ok(())
}

//! Child processes over real programs (`sh`, `cat`, `sleep`): output piped through the loop and
//! the exit code, a signal kill, 4 MiB through `cat` with stdin backpressure, a missing
//! program, env/cwd, ref/unref, why-alive and trace kinds.

mod tcp_common;

use std::cell::{Cell, RefCell};
use std::io::ErrorKind;
use std::rc::Rc;

use oneloop_runtime::{CallbackKind, Loop, ProcessId, SpawnOptions, StdioMode, TraceEvent};
use tcp_common::{watchdog, Hash64, Pattern};

type Log = Rc<RefCell<Vec<String>>>;

fn sh(script: &str) -> SpawnOptions {
    SpawnOptions::new("sh", ["-c", script])
}

/// Collects a child's stdout (and stderr) as text and logs exit/close.
fn watch(lp: &mut Loop, child: ProcessId, log: &Log) -> Rc<RefCell<(String, String)>> {
    let out = Rc::new(RefCell::new((String::new(), String::new())));
    let o = out.clone();
    let stdout = lp.process_stdout(child).expect("stdout piped");
    lp.tcp_on_data(stdout, move |_lp, _id, d| {
        o.borrow_mut().0.push_str(&String::from_utf8_lossy(d))
    })
    .unwrap();
    if let Some(stderr) = lp.process_stderr(child) {
        let o = out.clone();
        lp.tcp_on_data(stderr, move |_lp, _id, d| {
            o.borrow_mut().1.push_str(&String::from_utf8_lossy(d))
        })
        .unwrap();
    }
    let l = log.clone();
    lp.tcp_on_end(stdout, move |_lp, _id| {
        l.borrow_mut().push("stdout end".into())
    })
    .unwrap();
    let l = log.clone();
    lp.process_on_exit(child, move |_lp, code, signal| {
        l.borrow_mut().push(format!("exit {code:?} {signal:?}"))
    })
    .unwrap();
    let l = log.clone();
    lp.process_on_close(child, move |_lp, code, signal| {
        l.borrow_mut().push(format!("close {code:?} {signal:?}"))
    })
    .unwrap();
    out
}

/// `sh -c 'echo hi; echo err >&2; exit 3'`: stdout and stderr arrive through the loop, exit
/// reports code 3 and no signal, close comes last, and the loop then ends by itself.
#[test]
fn output_is_piped_through_the_loop_and_the_exit_code_arrives() {
    let mut lp = Loop::new().unwrap();
    watchdog(&mut lp, 20);
    let log = Log::default();
    let child = lp.spawn(sh("echo hi; echo err >&2; exit 3")).unwrap();
    assert!(lp.process_pid(child).is_some());
    let out = watch(&mut lp, child, &log);
    lp.run().unwrap();
    assert_eq!(*out.borrow(), ("hi\n".to_string(), "err\n".to_string()));
    let log = log.borrow();
    assert!(log.contains(&"exit Some(3) None".to_string()), "{log:?}");
    assert_eq!(log.last().unwrap(), "close Some(3) None", "{log:?}");
    assert_eq!(lp.process_count(), 0);
    assert!(lp.process_pid(child).is_none(), "stale after close");
}

/// A child killed with SIGTERM: exit reports no code and signal 15. `kill` after the exit
/// returns false (the pid may be someone else's by then).
#[test]
fn a_child_killed_by_a_signal_reports_the_signal() {
    let mut lp = Loop::new().unwrap();
    watchdog(&mut lp, 20);
    let log = Log::default();
    let child = lp
        .spawn(SpawnOptions {
            stdio: [StdioMode::Ignore, StdioMode::Pipe, StdioMode::Ignore],
            ..sh("echo started; exec sleep 30")
        })
        .unwrap();
    let out = watch(&mut lp, child, &log);
    // Kill once the child has shown it runs (its first output).
    let stdout = lp.process_stdout(child).unwrap();
    let o = out.clone();
    lp.tcp_on_data(stdout, move |lp, _id, d| {
        o.borrow_mut().0.push_str(&String::from_utf8_lossy(d));
        assert!(lp.process_kill(child, libc::SIGTERM).unwrap());
    })
    .unwrap();
    let l = log.clone();
    lp.process_on_exit(child, move |lp, code, signal| {
        l.borrow_mut().push(format!("exit {code:?} {signal:?}"));
        assert!(
            !lp.process_kill(child, libc::SIGTERM).unwrap(),
            "already reaped"
        );
    })
    .unwrap();
    lp.run().unwrap();
    let log = log.borrow();
    assert!(
        log.contains(&format!("exit None Some({})", libc::SIGTERM)),
        "{log:?}"
    );
    assert_eq!(
        log.last().unwrap(),
        &format!("close None Some({})", libc::SIGTERM)
    );
    assert_eq!(out.borrow().0, "started\n");
}

/// 4 MiB written to `cat`'s stdin with backpressure (write until false, continue on drain,
/// then end) comes back on its stdout byte for byte; exit code 0.
#[test]
fn four_mib_through_cat_with_stdin_backpressure_comes_back_equal() {
    const TOTAL: usize = 4 << 20;
    let mut lp = Loop::new().unwrap();
    watchdog(&mut lp, 60);
    let child = lp
        .spawn(SpawnOptions {
            stdio: [StdioMode::Pipe, StdioMode::Pipe, StdioMode::Inherit],
            ..SpawnOptions::new("cat", Vec::<String>::new())
        })
        .unwrap();
    let stdin = lp.process_stdin(child).unwrap();
    let stdout = lp.process_stdout(child).unwrap();
    assert!(lp.stream_is_pipe(stdin));
    struct Writer {
        pattern: Pattern,
        hash: Hash64,
        sent: usize,
        falses: usize,
    }
    let w = Rc::new(RefCell::new(Writer {
        pattern: Pattern::new(11),
        hash: Hash64::default(),
        sent: 0,
        falses: 0,
    }));
    fn pump(lp: &mut Loop, id: oneloop_runtime::TcpId, w: &RefCell<Writer>) {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let mut st = w.borrow_mut();
            if st.sent == TOTAL {
                lp.tcp_end(id).unwrap();
                return;
            }
            let n = (TOTAL - st.sent).min(buf.len());
            st.pattern.fill(&mut buf[..n]);
            st.hash.update(&buf[..n]);
            st.sent += n;
            if !lp.tcp_write(id, &buf[..n]).unwrap() {
                st.falses += 1;
                return;
            }
        }
    }
    let w2 = w.clone();
    lp.tcp_on_drain(stdin, move |lp, id| pump(lp, id, &w2))
        .unwrap();
    pump(&mut lp, stdin, &w);
    let got = Rc::new(RefCell::new(Hash64::default()));
    let g = got.clone();
    lp.tcp_on_data(stdout, move |_lp, _id, d| g.borrow_mut().update(d))
        .unwrap();
    let code = Rc::new(Cell::new(None));
    let c = code.clone();
    lp.process_on_exit(child, move |_lp, code, _sig| c.set(code))
        .unwrap();
    lp.run().unwrap();
    assert_eq!(code.get(), Some(0));
    let w = Rc::try_unwrap(w).ok().unwrap().into_inner();
    assert!(w.falses > 0, "4 MiB into a pipe hit the high-water mark");
    let got = Rc::try_unwrap(got).ok().unwrap().into_inner().finish();
    let sent = w.hash.finish();
    assert_eq!(got.1, TOTAL as u64);
    assert_eq!(got, sent);
}

/// A missing program: `spawn` fails with Node's message and kind NotFound, and leaves
/// nothing behind (the loop has nothing to do).
#[test]
fn spawning_a_missing_program_is_a_clear_enoent() {
    let mut lp = Loop::new().unwrap();
    let err = lp
        .spawn(SpawnOptions::new("nosuchprog-oneloop", ["x"]))
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert_eq!(err.to_string(), "spawn nosuchprog-oneloop ENOENT");
    assert_eq!(lp.process_count(), 0);
    assert_eq!(lp.tcp_socket_count(), 0, "the stdio pairs were closed");
    assert!(!lp.is_alive());
}

/// env (cleared, with extras) and cwd reach the child.
#[test]
fn env_and_cwd_reach_the_child() {
    let mut lp = Loop::new().unwrap();
    watchdog(&mut lp, 20);
    let log = Log::default();
    let dir = std::env::temp_dir();
    let child = lp
        .spawn(SpawnOptions {
            program: "/bin/sh".into(),
            env_clear: true,
            env: vec![("ONELOOP_X".into(), "42".into())],
            cwd: Some(dir.clone()),
            ..sh("echo \"$ONELOOP_X:${HOME:-nohome}:$(pwd -P)\"")
        })
        .unwrap();
    let out = watch(&mut lp, child, &log);
    lp.run().unwrap();
    let expected = format!("42:nohome:{}\n", dir.canonicalize().unwrap().display());
    assert_eq!(out.borrow().0, expected);
}

/// A running child keeps the loop alive while ref'd and is listed as "process"; unref'd
/// (stdio ignored, so no pipe keeps it either) the loop exits with the child still running.
/// Exit callbacks are traced as kind "process".
#[test]
fn a_refd_child_keeps_the_loop_alive_and_an_unrefd_one_does_not() {
    let mut lp = Loop::new().unwrap();
    watchdog(&mut lp, 20);
    let ignore = [StdioMode::Ignore; 3];
    let long = lp
        .spawn(SpawnOptions {
            stdio: ignore,
            ..SpawnOptions::new("sleep", ["30"])
        })
        .unwrap();
    let kinds: Vec<_> = lp.active_handles().iter().map(|h| h.kind).collect();
    assert_eq!(kinds, ["process"]);
    assert!(lp.has_ref(long).unwrap());
    lp.unref(long).unwrap();
    assert!(!lp.is_alive());
    lp.run().unwrap(); // returns at once
    assert!(lp.process_pid(long).is_some(), "still running");

    // A short ref'd child: the loop waits for it.
    let traced = Rc::new(RefCell::new(Vec::new()));
    let t = traced.clone();
    lp.set_trace(Some(Box::new(move |e: &TraceEvent| {
        if let TraceEvent::Callback { kind, .. } = e {
            t.borrow_mut().push(*kind);
        }
    })));
    let exited = Rc::new(Cell::new(false));
    let short = lp
        .spawn(SpawnOptions {
            stdio: ignore,
            ..sh("exit 0")
        })
        .unwrap();
    let e = exited.clone();
    lp.process_on_exit(short, move |_lp, code, _| {
        assert_eq!(code, Some(0));
        e.set(true);
    })
    .unwrap();
    lp.run().unwrap();
    assert!(exited.get(), "the loop waited for the ref'd child");
    assert!(traced.borrow().contains(&CallbackKind::Process));
    assert_eq!(CallbackKind::Process.name(), "process");
    lp.set_trace(None);

    // Clean up the long one: kill it and wait for its exit with a ref again.
    lp.ref_(long).unwrap();
    assert!(lp.process_kill(long, libc::SIGKILL).unwrap());
    let code = Rc::new(Cell::new(None));
    let c = code.clone();
    lp.process_on_exit(long, move |_lp, _code, sig| c.set(sig))
        .unwrap();
    lp.run().unwrap();
    assert_eq!(code.get(), Some(libc::SIGKILL));
}

/// Several children exiting together (their SIGCHLDs may coalesce into one) are all reaped.
#[test]
fn children_exiting_together_are_all_reaped() {
    let mut lp = Loop::new().unwrap();
    watchdog(&mut lp, 20);
    let codes = Rc::new(RefCell::new(Vec::new()));
    for i in 0..8 {
        let child = lp
            .spawn(SpawnOptions {
                stdio: [StdioMode::Ignore; 3],
                ..sh(&format!("exit {i}"))
            })
            .unwrap();
        let c = codes.clone();
        lp.process_on_exit(child, move |_lp, code, _| {
            c.borrow_mut().push(code.unwrap())
        })
        .unwrap();
    }
    lp.run().unwrap();
    let mut codes = codes.borrow().clone();
    codes.sort();
    assert_eq!(codes, (0..8).collect::<Vec<_>>());
}

/// On a virtual clock a running child is an outside event like a socket: a 10 s timer does not
/// jump ahead of a child that exits after 0.2 s of real time.
#[test]
fn on_a_virtual_clock_a_running_child_is_waited_for_in_real_time() {
    let mut lp = Loop::with_virtual_clock().unwrap();
    let log = Log::default();
    let child = lp
        .spawn(SpawnOptions {
            stdio: [StdioMode::Ignore; 3],
            ..sh("sleep 0.2; exit 5")
        })
        .unwrap();
    let l = log.clone();
    lp.process_on_exit(child, move |_lp, code, _| {
        l.borrow_mut().push(format!("exit {code:?}"))
    })
    .unwrap();
    let l = log.clone();
    let timer = lp.set_timeout(10_000, move |_| l.borrow_mut().push("timer".into()));
    lp.unref(timer).unwrap();
    lp.run().unwrap();
    assert_eq!(*log.borrow(), ["exit Some(5)"]);
}

/// As Node (`stdin.destroy()` in `onexit`): when the child exits, the parent's end of its piped
/// stdin is destroyed (its `on_close` runs, without error), even if never ended and even while
/// a background grandchild still holds the pipe's other end (so no EOF would close it).
#[test]
fn a_childs_piped_stdin_is_destroyed_when_it_exits() {
    let mut lp = Loop::new().unwrap();
    watchdog(&mut lp, 20);
    let child = lp
        .spawn(SpawnOptions {
            stdio: [StdioMode::Pipe, StdioMode::Ignore, StdioMode::Ignore],
            ..sh("exec 3<&0; (sleep 1 <&3) & exit 0")
        })
        .unwrap();
    let stdin = lp.process_stdin(child).unwrap();
    let closed = Rc::new(Cell::new(None));
    let c = closed.clone();
    lp.tcp_on_close(stdin, move |_lp, _id, had_error| c.set(Some(had_error)))
        .unwrap();
    let seen = Rc::new(Cell::new(true));
    let s = seen.clone();
    lp.process_on_exit(child, move |lp, _, _| {
        s.set(lp.process_stdin(child).is_some() || lp.tcp_is_open(stdin))
    })
    .unwrap();
    lp.run().unwrap();
    assert!(!seen.get(), "stdin gone by the time on_exit runs");
    assert_eq!(closed.get(), Some(false));
}

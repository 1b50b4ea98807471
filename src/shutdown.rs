//! Graceful shutdown on SIGTERM/SIGINT, as deployments need it.
//!
//! The drain, step by step (docs/deploy.md has the picture):
//! 1. first signal: every server stops accepting, idle keep-alive connections close at once,
//!    in-flight requests finish and their responses carry `Connection: close`;
//! 2. when the last connection has closed, `on_done` runs (the loop then has nothing ref'd left
//!    and `run` returns: the process exits 0);
//! 3. if connections remain at the deadline (default 10 s), they are closed;
//! 4. a second signal closes everything at once.

use std::cell::RefCell;
use std::io;
use std::rc::Rc;
use std::time::Duration;

use oneloop_runtime::{Loop, TimerId};

use crate::http;

/// Options for [`graceful_shutdown`].
#[derive(Clone, Debug)]
pub struct ShutdownOptions {
    /// How long in-flight requests get before their connections are closed (default 10 s).
    pub deadline: Duration,
    /// The signals that start the drain (default SIGTERM and SIGINT).
    pub signals: Vec<i32>,
}

impl Default for ShutdownOptions {
    fn default() -> Self {
        ShutdownOptions {
            deadline: Duration::from_secs(10),
            signals: vec![libc::SIGTERM, libc::SIGINT],
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Stage {
    Serving,
    Draining,
    Done,
}

type DoneCallback = Box<dyn FnOnce(&mut Loop)>;

struct State {
    stage: Stage,
    open_servers: usize,
    deadline: Option<TimerId>,
    on_done: Option<DoneCallback>,
}

/// Drains `servers` when one of `options.signals` arrives (see the module docs). The signal
/// watchers are unref'd, as Node's are: they do not keep the loop alive by themselves.
///
/// # Errors
/// If a signal handler cannot be installed.
pub fn graceful_shutdown(
    lp: &mut Loop,
    servers: Vec<http::Server>,
    options: ShutdownOptions,
    on_done: impl FnOnce(&mut Loop) + 'static,
) -> io::Result<()> {
    let state = Rc::new(RefCell::new(State {
        stage: Stage::Serving,
        open_servers: servers.len(),
        deadline: None,
        on_done: Some(Box::new(on_done)),
    }));
    let servers = Rc::new(servers);
    for &sig in &options.signals {
        let state = Rc::clone(&state);
        let servers = Rc::clone(&servers);
        let deadline = options.deadline;
        lp.on_signal(sig, move |lp, signum| {
            on_signal(lp, signum, &state, &servers, deadline);
        })?;
    }
    Ok(())
}

fn on_signal(
    lp: &mut Loop,
    signum: i32,
    state: &Rc<RefCell<State>>,
    servers: &Rc<Vec<http::Server>>,
    deadline: Duration,
) {
    let stage = state.borrow().stage;
    match stage {
        Stage::Serving => {
            log::info!(
                "signal {signum}: draining {} server(s), deadline {deadline:?}",
                servers.len()
            );
            state.borrow_mut().stage = Stage::Draining;
            if servers.is_empty() {
                finish(lp, state);
                return;
            }
            let s = Rc::clone(servers);
            let timer = lp.set_timeout(deadline, move |lp| {
                log::warn!("shutdown deadline reached: closing remaining connections");
                for server in s.iter() {
                    server.close_all_connections(lp);
                }
            });
            let _ = lp.unref(timer);
            state.borrow_mut().deadline = Some(timer);
            for server in servers.iter() {
                let state = Rc::clone(state);
                server.close(lp, move |lp| {
                    let last = {
                        let mut st = state.borrow_mut();
                        st.open_servers = st.open_servers.saturating_sub(1);
                        st.open_servers == 0
                    };
                    if last {
                        finish(lp, &state);
                    }
                });
            }
        }
        Stage::Draining => {
            log::warn!("second signal {signum}: closing every connection now");
            for server in servers.iter() {
                server.close_all_connections(lp);
            }
        }
        Stage::Done => {}
    }
}

fn finish(lp: &mut Loop, state: &Rc<RefCell<State>>) {
    let (timer, on_done) = {
        let mut st = state.borrow_mut();
        st.stage = Stage::Done;
        (st.deadline.take(), st.on_done.take())
    };
    if let Some(t) = timer {
        let _ = lp.clear_timeout(t);
    }
    log::info!("shutdown complete");
    if let Some(cb) = on_done {
        cb(lp);
    }
}

//! Graceful shutdown on SIGTERM/SIGINT, as deployments need it.
//!
//! The drain, step by step (docs/deploy.md has the picture):
//! 0. first signal: the [`Readiness`] given in the options (if any) turns `Draining`, so
//!    `/readyz` answers 503; for `unready_delay` (default 0) the servers go on serving, so a
//!    load balancer that polls `/readyz` stops sending before the listener closes;
//! 1. then every server stops accepting, idle keep-alive connections close at once,
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

use crate::health::Readiness;
use crate::http;

/// Options for [`graceful_shutdown`].
#[derive(Clone, Debug)]
pub struct ShutdownOptions {
    /// How long in-flight requests get before their connections are closed (default 10 s).
    pub deadline: Duration,
    /// The signals that start the drain (default SIGTERM and SIGINT).
    pub signals: Vec<i32>,
    /// Turned `Draining` at the first signal (for `/readyz`).
    pub readiness: Option<Readiness>,
    /// How long servers keep serving after the first signal, unready, before they stop
    /// accepting (default 0; a few load-balancer health-check periods in production). A second
    /// signal cuts it short.
    pub unready_delay: Duration,
}

impl Default for ShutdownOptions {
    fn default() -> Self {
        ShutdownOptions {
            deadline: Duration::from_secs(10),
            signals: vec![libc::SIGTERM, libc::SIGINT],
            readiness: None,
            unready_delay: Duration::ZERO,
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Stage {
    Serving,
    /// Signalled, unready, still accepting until the delay timer fires.
    Unready,
    Draining,
    Done,
}

type DoneCallback = Box<dyn FnOnce(&mut Loop)>;

struct State {
    stage: Stage,
    open_servers: usize,
    deadline: Option<TimerId>,
    /// The unready-delay timer while in `Unready`.
    unready_timer: Option<TimerId>,
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
        unready_timer: None,
        on_done: Some(Box::new(on_done)),
    }));
    let servers = Rc::new(servers);
    for &sig in &options.signals {
        let state = Rc::clone(&state);
        let servers = Rc::clone(&servers);
        let (deadline, delay) = (options.deadline, options.unready_delay);
        let readiness = options.readiness.clone();
        lp.on_signal(sig, move |lp, signum| {
            on_signal(lp, signum, &state, &servers, deadline, delay, &readiness);
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
    unready_delay: Duration,
    readiness: &Option<Readiness>,
) {
    let stage = state.borrow().stage;
    match stage {
        Stage::Serving => {
            if let Some(r) = readiness {
                r.set_draining();
            }
            if unready_delay.is_zero() {
                start_drain(lp, signum, state, servers, deadline);
                return;
            }
            log::info!("signal {signum}: unready, serving {unready_delay:?} more before draining");
            state.borrow_mut().stage = Stage::Unready;
            let (st, sv) = (Rc::clone(state), Rc::clone(servers));
            let timer = lp.set_timeout(unready_delay, move |lp| {
                st.borrow_mut().unready_timer = None;
                start_drain(lp, signum, &st, &sv, deadline);
            });
            state.borrow_mut().unready_timer = Some(timer);
        }
        Stage::Unready => {
            log::warn!("second signal {signum}: draining now, closing every connection");
            let timer = state.borrow_mut().unready_timer.take();
            if let Some(t) = timer {
                let _ = lp.clear_timeout(t);
            }
            start_drain(lp, signum, state, servers, deadline);
            for server in servers.iter() {
                server.close_all_connections(lp);
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

/// Stops accepting and drains (steps 1-3 of the module docs).
fn start_drain(
    lp: &mut Loop,
    signum: i32,
    state: &Rc<RefCell<State>>,
    servers: &Rc<Vec<http::Server>>,
    deadline: Duration,
) {
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

//! Past one core: N worker threads, each with its own [`Loop`] and its own listener on the same
//! port (`SO_REUSEPORT`: the kernel spreads connections, as uWS does).
//!
//! Workers share no mutable state. A worker whose setup or loop panics is logged and started
//! again (at most `max_restarts` times). Node's `cluster` instead has a primary accept
//! connections and hand them round-robin to worker processes over IPC; that costs a hop per
//! connection and a process per worker, and only helps where the kernel balances badly (long
//! ago, on Linux, under `SO_REUSEPORT` with very uneven accept rates). We keep the kernel's
//! balancing and document the trade-off in docs/deploy.md.

use std::io;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Condvar, Mutex};

use oneloop_runtime::Loop;

/// Options for [`run`].
#[derive(Clone, Debug)]
pub struct ClusterOptions {
    /// Worker threads; 0 = one per available core.
    pub workers: usize,
    /// Restarts allowed per worker after a panic.
    pub max_restarts: u32,
}

impl Default for ClusterOptions {
    fn default() -> Self {
        ClusterOptions {
            workers: 1,
            max_restarts: 10,
        }
    }
}

/// The number of workers `workers` means (0 = one per core).
pub fn worker_count(workers: usize) -> usize {
    if workers == 0 {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    } else {
        workers
    }
}

/// Holds every worker's loop until all workers finished their first setup (or failed it).
///
/// Why: `setup` usually installs the SIGTERM handler ([`crate::shutdown::graceful_shutdown`])
/// and a signal reaches only the handlers registered when it arrives. Until every worker has
/// registered, no loop runs, so nothing announces readiness (a `listen` callback runs from the
/// loop), and a signal sent after readiness reaches every worker.
struct StartGate {
    /// Workers still in their first setup, and whether starting was abandoned.
    state: Mutex<(usize, bool)>,
    all_set: Condvar,
}

impl StartGate {
    fn new(workers: usize) -> StartGate {
        StartGate {
            state: Mutex::new((workers, false)),
            all_set: Condvar::new(),
        }
    }

    /// One worker is set up; waits for the others (or for [`StartGate::abandon`]).
    fn arrive_and_wait(&self) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.0 = state.0.saturating_sub(1);
        if state.0 == 0 {
            self.all_set.notify_all();
        }
        while state.0 > 0 && !state.1 {
            state = self.all_set.wait(state).unwrap_or_else(|e| e.into_inner());
        }
    }

    /// Not every worker could be started: release the ones waiting.
    fn abandon(&self) {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).1 = true;
        self.all_set.notify_all();
    }
}

/// Runs `setup(&mut lp, worker_index)` on each worker's fresh loop, then runs the loop; returns
/// when every worker's loop has finished. `setup` usually listens with `reuse_port: true`.
/// No worker's loop starts before every worker has finished its first setup, so handlers that
/// setup installs (signals above all) are in place in every worker before any `listen`
/// callback reports readiness.
///
/// # Errors
/// The first setup or loop error of any worker (a worker that fails setup is not restarted).
pub fn run(
    options: ClusterOptions,
    setup: impl Fn(&mut Loop, usize) -> io::Result<()> + Send + Sync + 'static,
) -> io::Result<()> {
    let setup = Arc::new(setup);
    let n = worker_count(options.workers);
    let gate = Arc::new(StartGate::new(n));
    let mut handles = Vec::with_capacity(n);
    for index in 0..n {
        let setup = Arc::clone(&setup);
        let max_restarts = options.max_restarts;
        // Taken once: only the first setup of each worker holds the others back.
        let mut gate_once = Some(Arc::clone(&gate));
        let spawned = std::thread::Builder::new()
            .name(format!("oneloop-worker-{index}"))
            .spawn(move || -> io::Result<()> {
                let mut restarts = 0;
                loop {
                    let result = catch_unwind(AssertUnwindSafe(|| -> io::Result<()> {
                        let mut lp = Loop::new()?;
                        let set_up = setup(&mut lp, index);
                        if let Some(gate) = gate_once.take() {
                            gate.arrive_and_wait();
                        }
                        set_up?;
                        lp.run()
                    }));
                    // A setup that failed or panicked before the gate still counts as arrived.
                    if let Some(gate) = gate_once.take() {
                        gate.arrive_and_wait();
                    }
                    match result {
                        Ok(r) => return r,
                        Err(_) if restarts < max_restarts => {
                            restarts += 1;
                            log::error!(
                                "worker {index} panicked; restarting ({restarts}/{max_restarts})"
                            );
                        }
                        Err(_) => {
                            return Err(io::Error::other(format!(
                                "worker {index} panicked {restarts} times; giving up"
                            )))
                        }
                    }
                }
            });
        match spawned {
            Ok(handle) => handles.push(handle),
            Err(e) => {
                // The missing worker will never arrive: release the others (as before the
                // gate existed, they keep running detached) and report.
                gate.abandon();
                return Err(e);
            }
        }
    }
    let mut first_err = None;
    for h in handles {
        let r = h
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("worker thread died")));
        if let Err(e) = r {
            log::error!("worker failed: {e}");
            first_err.get_or_insert(e);
        }
    }
    first_err.map_or(Ok(()), Err)
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    use super::{run, ClusterOptions};

    /// The default uncaught-panic policy under a cluster: a panic in a callback the app
    /// scheduled (here a timer) leaves the worker's `run`, and the worker starts again with a
    /// fresh loop and setup; with a hook the same panic stays in the loop.
    #[test]
    fn worker_whose_timer_panics_without_a_hook_is_restarted_and_with_one_is_not() {
        for hook in [false, true] {
            let setups = Arc::new(AtomicUsize::new(0));
            let caught = Arc::new(AtomicUsize::new(0));
            let (s, c) = (Arc::clone(&setups), Arc::clone(&caught));
            let options = ClusterOptions {
                workers: 1,
                max_restarts: 3,
            };
            run(options, move |lp, _index| {
                if hook {
                    let c = Arc::clone(&c);
                    lp.on_uncaught_panic(move |_lp, _p| {
                        c.fetch_add(1, Ordering::SeqCst);
                    });
                }
                if s.fetch_add(1, Ordering::SeqCst) == 0 {
                    lp.set_timeout(1, |_lp| panic!("bug in a timer"));
                }
                Ok(())
            })
            .unwrap();
            let want = if hook { (1, 1) } else { (2, 0) };
            let got = (setups.load(Ordering::SeqCst), caught.load(Ordering::SeqCst));
            assert_eq!(got, want, "hook: {hook}");
        }
    }
}

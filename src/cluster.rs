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
use std::sync::Arc;

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

/// Runs `setup(&mut lp, worker_index)` on each worker's fresh loop, then runs the loop; returns
/// when every worker's loop has finished. `setup` usually listens with `reuse_port: true`.
///
/// # Errors
/// The first setup or loop error of any worker (a worker that fails setup is not restarted).
pub fn run(
    options: ClusterOptions,
    setup: impl Fn(&mut Loop, usize) -> io::Result<()> + Send + Sync + 'static,
) -> io::Result<()> {
    let setup = Arc::new(setup);
    let n = worker_count(options.workers);
    let mut handles = Vec::with_capacity(n);
    for index in 0..n {
        let setup = Arc::clone(&setup);
        let max_restarts = options.max_restarts;
        let handle = std::thread::Builder::new()
            .name(format!("oneloop-worker-{index}"))
            .spawn(move || -> io::Result<()> {
                let mut restarts = 0;
                loop {
                    let result = catch_unwind(AssertUnwindSafe(|| -> io::Result<()> {
                        let mut lp = Loop::new()?;
                        setup(&mut lp, index)?;
                        lp.run()
                    }));
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
            })?;
        handles.push(handle);
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

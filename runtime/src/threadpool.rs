//! The thread pool behind [`Loop::queue_work`](crate::Loop::queue_work), modelled on libuv's
//! `threadpool.c`.
//!
//! Workers take jobs from a queue guarded by a mutex and a condvar. A finished job is pushed onto
//! the loop's completion queue and the loop is woken through its one `mio::Waker` (the same
//! coalesced wake async handles use: see `async_handle.rs`); the loop swaps
//! the whole completion queue out under the lock, releases it, and only then runs the `after`
//! callbacks (in the poll phase, as libuv's `uv__work_done`).
//!
//! Lock order: a thread never holds `queue` and `done` at the same time.
//!
//! The pool belongs to one `Loop` (no process-wide statics); its threads start on first use.

use std::any::Any;
use std::collections::VecDeque;
use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use crate::async_handle::AsyncHub;
use crate::handle::Key;
use crate::uncaught::panic_message;

/// Default number of worker threads (libuv's `UV_THREADPOOL_SIZE` default).
pub const DEFAULT_POOL_SIZE: usize = 4;
/// Largest pool size accepted (as libuv).
pub const MAX_POOL_SIZE: usize = 1024;

/// Why a thread-pool request did not produce a value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WorkError {
    /// Cancelled with [`Loop::cancel_work`](crate::Loop::cancel_work) before a worker took it.
    Cancelled,
    /// The work function panicked; the message is the panic payload when it was a string.
    Panicked(String),
}

impl fmt::Display for WorkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WorkError::Cancelled => f.write_str("work cancelled before it started"),
            WorkError::Panicked(msg) => write!(f, "work panicked: {msg}"),
        }
    }
}

impl std::error::Error for WorkError {}

pub(crate) type AnyResult = Result<Box<dyn Any + Send>, WorkError>;

struct Job {
    key: Key,
    work: Box<dyn FnOnce() -> Box<dyn Any + Send> + Send>,
}

pub(crate) struct Done {
    pub(crate) key: Key,
    pub(crate) result: AnyResult,
}

struct Shared {
    queue: Mutex<VecDeque<Job>>,
    available: Condvar,
    done: Mutex<Vec<Done>>,
    /// The loop's async hub: completions wake the loop through the same coalesced wake as
    /// async handles (one eventfd write per loop wake-up, not per completion).
    waker: Arc<AsyncHub>,
    shutdown: AtomicBool,
}

/// Locks a mutex whose data stays consistent even if a holder panicked (we never panic while
/// holding these locks, but a poisoned lock must not take the loop down).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

pub(crate) struct ThreadPool {
    shared: Arc<Shared>,
    size: usize,
    started: bool,
}

impl ThreadPool {
    pub(crate) fn new(size: usize, waker: Arc<AsyncHub>) -> ThreadPool {
        ThreadPool {
            shared: Arc::new(Shared {
                queue: Mutex::new(VecDeque::new()),
                available: Condvar::new(),
                done: Mutex::new(Vec::new()),
                waker,
                shutdown: AtomicBool::new(false),
            }),
            size: size.clamp(1, MAX_POOL_SIZE),
            started: false,
        }
    }

    pub(crate) fn size(&self) -> usize {
        self.size
    }

    pub(crate) fn submit(
        &mut self,
        key: Key,
        work: Box<dyn FnOnce() -> Box<dyn Any + Send> + Send>,
    ) -> std::io::Result<()> {
        if !self.started {
            self.start()?;
        }
        lock(&self.shared.queue).push_back(Job { key, work });
        self.shared.available.notify_one();
        Ok(())
    }

    /// Removes a job that no worker has taken yet; its completion is reported as `Cancelled`.
    pub(crate) fn cancel(&self, key: Key) -> bool {
        let job = {
            let mut queue = lock(&self.shared.queue);
            let pos = queue.iter().position(|j| j.key == key);
            pos.and_then(|p| queue.remove(p))
        };
        match job {
            Some(job) => {
                drop(job.work);
                self.complete(Done {
                    key,
                    result: Err(WorkError::Cancelled),
                });
                true
            }
            None => false,
        }
    }

    /// Jobs waiting for a worker (not yet started).
    pub(crate) fn queued(&self) -> usize {
        lock(&self.shared.queue).len()
    }

    fn complete(&self, done: Done) {
        lock(&self.shared.done).push(done);
        // A failed wake only happens if the poll is gone, i.e. the loop is being dropped.
        let _ = self.shared.waker.wake();
    }

    /// Moves every finished job into `out` (swapping under the lock, as `uv__work_done`).
    pub(crate) fn take_done(&self, out: &mut Vec<Done>) {
        std::mem::swap(&mut *lock(&self.shared.done), out);
    }

    fn start(&mut self) -> std::io::Result<()> {
        for i in 0..self.size {
            let shared = Arc::clone(&self.shared);
            std::thread::Builder::new()
                .name(format!("oneloop-pool-{i}"))
                .spawn(move || worker(shared))?;
        }
        self.started = true;
        Ok(())
    }
}

impl Drop for ThreadPool {
    fn drop(&mut self) {
        // Workers are detached: one stuck in a long job must not block the loop's drop.
        self.shared.shutdown.store(true, Ordering::Release);
        lock(&self.shared.queue).clear();
        self.shared.available.notify_all();
    }
}

fn worker(shared: Arc<Shared>) {
    loop {
        let job = {
            let mut queue = lock(&shared.queue);
            loop {
                if shared.shutdown.load(Ordering::Acquire) {
                    return;
                }
                if let Some(job) = queue.pop_front() {
                    break job;
                }
                queue = shared
                    .available
                    .wait(queue)
                    .unwrap_or_else(|p| p.into_inner());
            }
        };
        let result = catch_unwind(AssertUnwindSafe(job.work))
            .map_err(|payload| WorkError::Panicked(panic_message(&*payload)));
        lock(&shared.done).push(Done {
            key: job.key,
            result,
        });
        let _ = shared.waker.wake();
    }
}

/// The pool size from `ONELOOP_THREADPOOL_SIZE` (1..=1024), or the default.
pub(crate) fn size_from_env() -> usize {
    std::env::var("ONELOOP_THREADPOOL_SIZE")
        .ok()
        .and_then(|v| v.trim().parse::<usize>().ok())
        .filter(|n| (1..=MAX_POOL_SIZE).contains(n))
        .unwrap_or(DEFAULT_POOL_SIZE)
}

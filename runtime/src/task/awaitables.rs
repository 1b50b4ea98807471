//! Loop operations as futures: [`sleep`] (a timer), [`immediate`] (`setImmediate`), [`work`]
//! (thread-pool work) and [`yield_now`] (`await undefined`).
//!
//! Each one starts its operation when first polled (through [`with_loop`](crate::task::with_loop)) and resumes its task
//! in a microtask after the operation's callback, as `await new Promise(r => setTimeout(r, ms))`
//! does. Dropping one before it completed cancels the operation: the timer is cleared, the
//! immediate cleared, the thread-pool request cancelled (or, if a worker already runs it, its
//! result dropped). A ref'd timer, immediate or pool request keeps the loop alive; the future
//! itself does not.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use crate::handle::{ImmediateId, TimerId, WorkId};
use crate::task::jobs::{self, Jobs};
use crate::threadpool::WorkError;
use crate::timers::TimerDelay;
use crate::Loop;

/// What an operation future shares with its loop callback.
struct OpState<H, T> {
    /// The loop's id for the operation, once started.
    handle: Cell<Option<H>>,
    /// The output, once the callback ran.
    output: RefCell<Option<T>>,
    waker: RefCell<Option<Waker>>,
    /// The future was dropped: a start that had not run yet must not run.
    dropped: Cell<bool>,
}

impl<H: Copy, T> OpState<H, T> {
    fn new() -> Rc<Self> {
        Rc::new(OpState {
            handle: Cell::new(None),
            output: RefCell::new(None),
            waker: RefCell::new(None),
            dropped: Cell::new(false),
        })
    }

    /// The loop callback: store the output, wake the task.
    fn complete(&self, output: T) {
        *self.output.borrow_mut() = Some(output);
        self.handle.set(None);
        if let Some(w) = self.waker.borrow_mut().take() {
            w.wake();
        }
    }

    fn poll_output(&self, cx: &mut Context<'_>) -> Poll<T> {
        if let Some(out) = self.output.borrow_mut().take() {
            return Poll::Ready(out);
        }
        let mut waker = self.waker.borrow_mut();
        match &*waker {
            Some(w) if w.will_wake(cx.waker()) => {}
            _ => *waker = Some(cx.waker().clone()),
        }
        Poll::Pending
    }
}

/// Starts an operation on the loop; returns its id.
type Start<H, T> = Box<dyn FnOnce(&mut Loop, Rc<OpState<H, T>>) -> H>;

/// A started-on-first-poll loop operation, cancelled on drop.
struct Op<H: Copy + 'static, T: 'static> {
    state: Rc<OpState<H, T>>,
    /// The loop it was started on (its cancellation goes there, even if another loop on this
    /// thread is the newest by the time it is dropped).
    jobs: Option<Rc<Jobs>>,
    start: Option<Start<H, T>>,
    cancel: fn(&mut Loop, H),
}

impl<H: Copy + 'static, T: 'static> Op<H, T> {
    fn poll_op(&mut self, cx: &mut Context<'_>) -> Poll<T> {
        if let Some(start) = self.start.take() {
            let state = Rc::clone(&self.state);
            let jobs = jobs::current();
            self.jobs = Some(Rc::clone(&jobs));
            jobs.defer(move |lp| {
                if !state.dropped.get() {
                    let h = start(lp, Rc::clone(&state));
                    if state.output.borrow().is_none() {
                        state.handle.set(Some(h));
                    }
                }
            });
        }
        self.state.poll_output(cx)
    }
}

impl<H: Copy + 'static, T: 'static> Drop for Op<H, T> {
    fn drop(&mut self) {
        self.state.dropped.set(true);
        if let Some(h) = self.state.handle.take() {
            let cancel = self.cancel;
            if let Some(jobs) = &self.jobs {
                // Applied after the running task's poll, or at the next drain; dropped unrun
                // if the loop itself is being dropped.
                jobs.defer(move |lp| cancel(lp, h));
            }
        }
    }
}

/// `await new Promise(r => setTimeout(r, ms))`: completes in a microtask after a timer of `ms`
/// (coerced as [`Loop::set_timeout`] does). The timer is ref'd: a task sleeping keeps the loop
/// alive. Dropping the future clears the timer.
pub fn sleep(ms: impl TimerDelay + 'static) -> Sleep {
    Sleep {
        op: Op {
            state: OpState::new(),
            jobs: None,
            start: Some(Box::new(
                move |lp: &mut Loop, state: Rc<OpState<TimerId, ()>>| {
                    lp.set_timeout(ms, move |_| state.complete(()))
                },
            )),
            cancel: |lp, id| {
                let _ = lp.clear_timeout(id);
            },
        },
    }
}

/// The future of [`sleep`].
pub struct Sleep {
    op: Op<TimerId, ()>,
}

impl Sleep {
    /// The timer's id once the sleep started (first poll, plus the task's poll returning), for
    /// [`Loop::unref`]: an unref'd sleep no longer keeps the loop alive.
    pub fn timer(&self) -> Option<TimerId> {
        self.op.state.handle.get()
    }
}

impl Future for Sleep {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.op.poll_op(cx)
    }
}

/// `await new Promise(r => setImmediate(r))`: completes in a microtask after an immediate (the
/// check phase). Dropping the future clears the immediate.
pub fn immediate() -> Immediate {
    Immediate {
        op: Op {
            state: OpState::new(),
            jobs: None,
            start: Some(Box::new(
                |lp: &mut Loop, state: Rc<OpState<ImmediateId, ()>>| {
                    lp.set_immediate(move |_| state.complete(()))
                },
            )),
            cancel: |lp, id| {
                let _ = lp.clear_immediate(id);
            },
        },
    }
}

/// The future of [`immediate`].
pub struct Immediate {
    op: Op<ImmediateId, ()>,
}

impl Future for Immediate {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.op.poll_op(cx)
    }
}

/// Runs `job` on the loop's thread pool ([`Loop::queue_work`]); completes in a microtask after
/// the completion (poll phase) with its result. A pending request keeps the loop alive.
/// Dropping the future cancels the request if no worker took it yet; else the result is
/// dropped when it arrives.
pub fn work<T: Send + 'static>(job: impl FnOnce() -> T + Send + 'static) -> Work<T> {
    Work {
        op: Op {
            state: OpState::new(),
            jobs: None,
            start: Some(Box::new(
                move |lp: &mut Loop, state: Rc<OpState<Option<WorkId>, Result<T, WorkError>>>| {
                    let done = Rc::clone(&state);
                    match lp.queue_work(job, move |_, r| done.complete(r)) {
                        Ok(id) => Some(id),
                        Err(e) => {
                            state.complete(Err(WorkError::Panicked(format!("thread pool: {e}"))));
                            None
                        }
                    }
                },
            )),
            cancel: |lp, id| {
                if let Some(id) = id {
                    let _ = lp.cancel_work(id);
                }
            },
        },
    }
}

/// The future of [`work`].
pub struct Work<T: 'static> {
    op: Op<Option<WorkId>, Result<T, WorkError>>,
}

impl<T: 'static> Future for Work<T> {
    type Output = Result<T, WorkError>;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.op.poll_op(cx)
    }
}

/// `await undefined`: yields for exactly one microtask.
pub fn yield_now() -> YieldNow {
    YieldNow { yielded: false }
}

/// The future of [`yield_now`].
pub struct YieldNow {
    yielded: bool,
}

impl Future for YieldNow {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.yielded {
            return Poll::Ready(());
        }
        self.yielded = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

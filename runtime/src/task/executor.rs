//! The executor: tasks are futures in the loop's task slab, resumed by `Resume` microtasks.
//!
//! - [`Loop::spawn_task`] polls the future at once, as calling an `async function` runs its body up
//!   to the first `await` before the call returns.
//! - A wake on the loop thread queues one `Resume` microtask (none if one is queued already);
//!   a wake from another thread pushes the task's key to the loop's [`RemoteWakes`] and wakes
//!   poll, which turns it into a `Resume` microtask (so it runs after the poll-phase callback
//!   it arrived with, like a thread-pool completion's `.then`).
//! - A task that panics is handled like any panicking callback ([`Loop::on_uncaught_panic`]):
//!   without a hook the panic unwinds out of `run`; with one, the task is dropped (its
//!   [`JoinHandle`] stays pending forever) and the loop goes on.

use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use crate::async_handle::lock;
use crate::event_loop::Loop;
use crate::handle::Key;
use crate::task::jobs::{self, Jobs, JoinSlot, Microtask, Owed, Polling, TaskSlot, TaskWaker};
use crate::trace::CallbackKind;

/// The owner of a spawned task: await it for the task's output.
///
/// # Cancellation (dropping)
/// Dropping a `JoinHandle` **cancels** its task unless [`JoinHandle::detach`] was called: the
/// task's future is dropped at once, and with it whatever it was awaiting, so its timers are
/// cleared, its immediates and thread-pool requests cancelled (a thread-pool job a worker already
/// runs finishes, and its result is dropped). This is `smol::Task`'s rule, not tokio's (which
/// detaches on drop): a task nobody owns should not keep the loop alive by accident.
/// [`JoinHandle::detach`] lets the task run to completion on its own, as an `async function`
/// called without `await` does.
///
/// Awaiting it takes one microtask after the task finished, as awaiting the promise an `async
/// function` returned does.
#[must_use = "dropping a JoinHandle cancels its task; call .detach() to let it run"]
pub struct JoinHandle<T> {
    jobs: Rc<Jobs>,
    key: Key,
    detached: bool,
    /// Awaiting started on a task that had already finished: yield once first.
    yielded: bool,
    /// `.await` returned the output (the slot is gone).
    taken: bool,
    output: PhantomData<fn() -> T>,
}

impl<T> JoinHandle<T> {
    /// Lets the task run to completion without an owner; its output is dropped.
    pub fn detach(mut self) {
        self.detached = true;
        let mut tasks = self.jobs.tasks.borrow_mut();
        let Some(slot) = tasks.get_mut(self.key) else {
            return;
        };
        if slot.join.finished {
            let slot = tasks.remove(self.key);
            drop(tasks);
            if let Some(slot) = slot {
                self.jobs.retire(slot, None);
            }
        } else {
            slot.join.detached = true;
        }
    }

    /// Whether the task has finished (its output may already have been taken by `.await`).
    pub fn is_finished(&self) -> bool {
        self.taken
            || self
                .jobs
                .tasks
                .borrow()
                .get(self.key)
                .is_some_and(|slot| slot.join.finished)
    }

    /// Cancels the task now (same as dropping the handle). Returns whether it was still running.
    pub fn cancel(mut self) -> bool {
        self.detached = true; // the drop below must not cancel twice
        cancel_task(&self.jobs, self.key)
    }
}

/// Drops task `key`'s future (if it is running, when its poll returns), or the output it left
/// for its handle. Returns whether it was still running.
fn cancel_task(jobs: &Jobs, key: Key) -> bool {
    let slot = jobs.tasks.borrow_mut().remove(key);
    // Dropped outside the borrow: the future's drops may spawn, wake or defer loop operations.
    match slot {
        Some(slot) => {
            let running = !slot.join.finished;
            jobs.retire(slot, None);
            running
        }
        None => false,
    }
}

impl<T> Drop for JoinHandle<T> {
    fn drop(&mut self) {
        if !self.detached {
            cancel_task(&self.jobs, self.key);
        }
    }
}

impl<T: 'static> Future for JoinHandle<T> {
    type Output = T;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        let this = &mut *self;
        let mut tasks = this.jobs.tasks.borrow_mut();
        let Some(slot) = tasks.get_mut(this.key) else {
            // Taken already: a second poll after Ready breaks the Future contract.
            assert!(
                !this.taken,
                "JoinHandle polled after it returned its output"
            );
            return Poll::Pending; // the task panicked (with a hook): pending forever
        };
        if !slot.join.finished {
            match &slot.join.waiter {
                Some(w) if w.will_wake(cx.waker()) => {}
                _ => slot.join.waiter = Some(cx.waker().clone()),
            }
            return Poll::Pending;
        }
        if !this.yielded && slot.join.waiter.is_none() {
            // Finished before the await began: one microtask, as `await` on a settled promise.
            this.yielded = true;
            drop(tasks);
            if !this.jobs.wake_polling(cx.waker()) {
                cx.waker().wake_by_ref();
            }
            return Poll::Pending;
        }
        let slot = tasks.remove(this.key);
        drop(tasks);
        let Some(mut slot) = slot else {
            unreachable!("the slot was just found")
        };
        let output = slot.join.output.take();
        this.jobs.retire(slot, None);
        this.taken = true;
        match output.map(|o| o.downcast::<T>()) {
            Some(Ok(output)) => Poll::Ready(*output),
            _ => unreachable!("a finished task left an output of its handle's type"),
        }
    }
}

/// A spawned task's wrapper: runs the user's future, then hands the output to the JoinHandle.
async fn run_to_join<F>(future: F, jobs: Rc<Jobs>, key: Key)
where
    F: Future,
    F::Output: 'static,
{
    let output = future.await;
    let mut tasks = jobs.tasks.borrow_mut();
    let Some(slot) = tasks.get_mut(key) else {
        return;
    };
    if slot.join.detached {
        drop(tasks);
        drop(output); // outside the borrow
        return;
    }
    slot.join.output = Some(Box::new(output));
    slot.join.finished = true;
    let waiter = slot.join.waiter.take();
    drop(tasks);
    jobs.finished.set(jobs.finished.get() + 1);
    if let Some(w) = waiter {
        w.wake();
    }
}

/// A task's future, boxed (its output goes to the JoinHandle).
type BoxedTask = Pin<Box<dyn Future<Output = ()>>>;

/// Inserts `future` as a task of `jobs` (not polled yet); returns its handle, the boxed future
/// and its waker, for the first poll.
fn spawn_on<F>(jobs: &Rc<Jobs>, future: F) -> (JoinHandle<F::Output>, BoxedTask, Waker)
where
    F: Future + 'static,
    F::Output: 'static,
{
    let spare = jobs.spare_wakers.borrow_mut().pop();
    let mut tasks = jobs.tasks.borrow_mut();
    let mut waker = None;
    let key = tasks.insert_with(|key| {
        let arc = match spare {
            Some((arc, spare_waker)) => {
                arc.reassign(key);
                waker = Some(spare_waker);
                arc
            }
            None => {
                let arc = Arc::new(TaskWaker::new(jobs.id, key, Arc::clone(&jobs.remote)));
                waker = Some(Waker::from(Arc::clone(&arc)));
                arc
            }
        };
        TaskSlot {
            parts: None, // being polled
            waker: arc,
            queued: false,
            join: JoinSlot::default(),
        }
    });
    drop(tasks);
    let waker = waker.unwrap_or_else(|| Waker::noop().clone());
    let boxed: BoxedTask = Box::pin(run_to_join(future, Rc::clone(jobs), key));
    let handle = JoinHandle {
        jobs: Rc::clone(jobs),
        key,
        detached: false,
        yielded: false,
        taken: false,
        output: PhantomData,
    };
    (handle, boxed, waker)
}

/// Task `key` is being polled (see [`Polling`]): its wakes are recorded in `Jobs::owed`. Ends
/// (also when its poll panics) by putting the owed resumption in the queue and restoring the
/// task polled before, if any (a stale one would let a later waker at the same address pass for
/// this task's).
struct PollingScope<'a> {
    jobs: &'a Jobs,
    key: Key,
    outer: Option<Polling>,
    ended: bool,
}

impl<'a> PollingScope<'a> {
    #[inline]
    fn enter(jobs: &'a Jobs, key: Key, waker: &Waker, resumed: bool) -> PollingScope<'a> {
        let outer = jobs
            .polling
            .replace(Some(Polling::new(key, waker, resumed)));
        if let Some(outer) = outer {
            lend_owed(jobs, outer);
        }
        jobs.owed.set(Owed::No);
        PollingScope {
            jobs,
            key,
            outer,
            ended: false,
        }
    }

    /// Ends the poll; returns whether the task's resumption is in the queue.
    #[inline]
    fn end(mut self) -> bool {
        self.finish()
    }

    #[inline]
    fn finish(&mut self) -> bool {
        self.ended = true;
        let queued = match self.jobs.owed.get() {
            Owed::No => false,
            Owed::At(at) => {
                self.jobs.queue_resume_at(self.key, at);
                true
            }
            Owed::Queued => true,
        };
        let mut owed = Owed::No;
        if let Some(o) = self.outer {
            // The inner poll may have woken `o` through its slot's flag: move it back.
            if let Some(slot) = self.jobs.tasks.borrow_mut().get_mut(o.key) {
                if std::mem::take(&mut slot.queued) {
                    owed = Owed::Queued;
                }
            }
        }
        self.jobs.polling.set(self.outer);
        self.jobs.owed.set(owed);
        queued
    }
}

impl Drop for PollingScope<'_> {
    fn drop(&mut self) {
        if !self.ended {
            self.finish();
        }
    }
}

/// A task is polled inside another's (spawned by it): the outer task's resumption goes to the
/// queue and to its slot's flag for the inner poll, where wakes of tasks other than the one
/// being polled look.
#[cold]
fn lend_owed(jobs: &Jobs, outer: Polling) {
    let owed = jobs.owed.get();
    if let Owed::At(at) = owed {
        jobs.queue_resume_at(outer.key, at);
    }
    if owed != Owed::No {
        if let Some(slot) = jobs.tasks.borrow_mut().get_mut(outer.key) {
            slot.queued = true;
        }
    }
}

/// Puts a task that did not finish back in its slot (`queued`: a resumption of it is in the
/// microtask queue), or drops it if it finished or was cancelled meanwhile (outside the borrow:
/// its drops may spawn, wake or defer loop operations).
fn put_back(jobs: &Jobs, key: Key, future: BoxedTask, waker: Waker, done: bool, queued: bool) {
    let mut tasks = jobs.tasks.borrow_mut();
    if done {
        // A finished task's slot stays for its handle (which holds the output).
        let slot = match tasks.get(key) {
            Some(slot) if slot.join.finished => None,
            _ => tasks.remove(key),
        };
        drop(tasks);
        drop(future);
        match slot {
            Some(slot) => jobs.retire(slot, Some(waker)),
            None => drop(waker),
        }
    } else if let Some(slot) = tasks.get_mut(key) {
        slot.parts = Some((future, waker));
        slot.queued = queued;
    } else {
        drop(tasks);
    }
}

/// Polls a new task once, outside every borrow, and stores it (its first poll, from `spawn`).
fn poll_task(jobs: &Jobs, key: Key, mut future: BoxedTask, waker: Waker) {
    let scope = PollingScope::enter(jobs, key, &waker, false);
    let done = future
        .as_mut()
        .poll(&mut Context::from_waker(&waker))
        .is_ready();
    let queued = scope.end();
    put_back(jobs, key, future, waker, done, queued);
}

impl Loop {
    /// Spawns a local task (Node's calling an `async function`): `future` is polled at once, up
    /// to its first `.await` that is not ready, before `spawn` returns; it resumes in a
    /// microtask each time what it awaits completes. Returns its [`JoinHandle`]: **dropping the
    /// handle cancels the task** (call [`JoinHandle::detach`] to let it run on its own).
    ///
    /// A pending task alone does not keep the loop alive (a pending promise does not keep a Node
    /// process alive): what it awaits does, if that is a ref'd handle (a timer from
    /// [`sleep`](crate::task::sleep), a socket, thread-pool work).
    ///
    /// ```
    /// use oneloop_runtime::{task, Loop};
    /// let mut lp = Loop::new()?;
    /// let answer = lp.spawn_task(async {
    ///     task::sleep(10).await;
    ///     42
    /// });
    /// let check = lp.spawn_task(async move { assert_eq!(answer.await, 42) });
    /// lp.run()?;
    /// assert!(check.is_finished());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[track_caller]
    pub fn spawn_task<F>(&mut self, future: F) -> JoinHandle<F::Output>
    where
        F: Future + 'static,
        F::Output: 'static,
    {
        let jobs = Rc::clone(&self.jobs);
        let (handle, boxed, waker) = spawn_on(&jobs, future);
        let key = handle.key;
        self.invoke(CallbackKind::Microtask, |_| {
            poll_task(&jobs, key, boxed, waker);
        });
        self.apply_task_ops();
        handle
    }

    /// Runs a `Resume` microtask: polls the task once if it still exists. If that poll queued
    /// the task's next resumption and nothing else is queued before it (an `await` of something
    /// already complete), that resumption is run right away, without storing the task between
    /// the two polls: the same order as going through the drain.
    pub(crate) fn resume_task(&mut self, key: Key) {
        let taken = {
            let mut tasks = self.jobs.tasks.borrow_mut();
            match tasks.get_mut(key) {
                Some(slot) => {
                    slot.queued = false;
                    // The waker moves out with the future (no refcount traffic) and back in
                    // with it.
                    slot.parts.take()
                }
                None => None,
            }
        };
        let Some((mut future, waker)) = taken else {
            return; // cancelled, or (re-entrantly) being polled
        };
        let jobs = Rc::clone(&self.jobs);
        // Awaits may continue in place only where nothing watches each microtask and nothing
        // is held back for the next callback (see `Jobs::continue_in_place`).
        let in_place = self.observer.is_none() && self.held_after_panic.is_none();
        let scope = PollingScope::enter(&jobs, key, &waker, in_place);
        loop {
            let mut polled = None;
            self.invoke(CallbackKind::Microtask, |_| {
                polled = Some(
                    future
                        .as_mut()
                        .poll(&mut Context::from_waker(&waker))
                        .is_ready(),
                );
            });
            let Some(done) = polled else {
                // Panicked (caught by the hook): the task is gone, as a callback that threw is.
                drop(scope);
                let slot = jobs.tasks.borrow_mut().remove(key);
                drop(future);
                match slot {
                    Some(slot) => jobs.retire(slot, Some(waker)),
                    None => drop(waker),
                }
                self.apply_task_ops();
                return;
            };
            if !done && jobs.ops.borrow().is_empty() {
                // Nothing to run before the next job: if that is this task's resumption (it
                // woke itself while the queue was empty), run it now instead of queuing it.
                let owed = jobs.owed.get();
                if owed == Owed::At(0) || (owed == Owed::Queued && jobs.pop_resume_of(key)) {
                    jobs.owed.set(Owed::No);
                    // Counted as the drain counts a job.
                    self.trace_callback(CallbackKind::Microtask);
                    if jobs.tasks.borrow().get(key).is_some() {
                        continue;
                    }
                    return; // cancelled by its own poll: dropped here
                }
            }
            let queued = scope.end();
            put_back(&jobs, key, future, waker, done, queued);
            self.apply_task_ops();
            return;
        }
    }

    /// Applies the loop operations tasks deferred (see [`with_loop`]).
    #[inline]
    pub(crate) fn apply_task_ops(&mut self) {
        loop {
            let op = self.jobs.ops.borrow_mut().pop_front();
            match op {
                Some(op) => op(self),
                None => break,
            }
        }
    }

    /// Moves wakes that came from other threads onto the microtask queue (on the waker event).
    pub(crate) fn take_remote_wakes(&mut self) {
        let keys = std::mem::take(&mut *lock(&self.jobs.remote.keys));
        for key in keys {
            self.jobs.schedule(key);
        }
    }

    /// Number of tasks spawned and not finished or cancelled.
    pub fn tasks_alive(&self) -> usize {
        self.jobs.tasks.borrow().len() - self.jobs.finished.get()
    }

    /// Runs one queued microtask job; used by the drain.
    #[inline]
    pub(crate) fn run_microtask(&mut self, job: Microtask) {
        self.trace_callback(CallbackKind::Microtask);
        match job {
            Microtask::Callback(task) => self.invoke(CallbackKind::Microtask, task),
            Microtask::Resume(key) => {
                self.resume_task(key);
                // Awaits that continued in place count as the microtasks they stand for.
                let n = self.jobs.resumed_in_place.take();
                self.count_untraced_callbacks(n);
            }
        }
    }
}

/// Spawns a task from inside a task or a promise callback, on this thread's loop (see
/// [`Loop::spawn_task`]): polled at once, like `lp.spawn`.
///
/// # Panics
/// If no loop exists on this thread.
pub fn spawn<F>(future: F) -> JoinHandle<F::Output>
where
    F: Future + 'static,
    F::Output: 'static,
{
    let jobs = jobs::current();
    let (handle, boxed, waker) = spawn_on(&jobs, future);
    let key = handle.key;
    poll_task(&jobs, key, boxed, waker);
    handle
}

/// Runs `op` with the loop as soon as the running task's poll returns, before any other callback
/// (a task has no `&mut Loop`: this is how it calls `set_timeout`, `set_immediate`,
/// `next_tick`, `queue_work`, TCP...). Operations run in the order they were asked for, so a
/// task that arms two timers arms them in that order, as the same `async function` would.
///
/// Called outside a task (from a callback that has `&mut Loop`, call the loop directly), `op`
/// runs after the current callback returns, before its ticks and microtasks.
///
/// # Panics
/// If no loop exists on this thread.
pub fn with_loop(op: impl FnOnce(&mut Loop) + 'static) {
    jobs::current().ops.borrow_mut().push_back(Box::new(op));
}

/// Queues `callback` on the loop's `next_tick` queue, from inside a task (Node's
/// `process.nextTick`, which an `async function` can call between its awaits). Queued at once,
/// so its order against microtasks the task queues is Node's.
pub fn next_tick(callback: impl FnOnce(&mut Loop) + 'static) {
    jobs::current()
        .ticks
        .borrow_mut()
        .push_back(Box::new(callback));
}

/// Queues a microtask from inside a task (Node's `queueMicrotask`), at once.
pub fn queue_microtask(callback: impl FnOnce(&mut Loop) + 'static) {
    jobs::current().queue(Box::new(callback));
}

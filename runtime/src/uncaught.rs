//! Uncaught panics: the loop's `process.on('uncaughtException')`.
//!
//! By default a panic in a callback unwinds out of [`Loop::run`], as an uncaught exception ends a
//! Node process (and a cluster worker restarts). With a hook installed by
//! [`Loop::on_uncaught_panic`], every user callback the loop invokes runs under `catch_unwind`:
//! a panic is handed to the hook and the loop goes on with the next callback.
//!
//! Every call site goes through [`Loop::invoke`], which tests one enum before the call: without
//! a hook the callback is called exactly as before (no landing pad on the hot path).

use std::any::Any;
use std::collections::VecDeque;
use std::fmt;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};

use crate::event_loop::{Loop, Task};
use crate::task::jobs::Microtask;
use crate::trace::{CallbackKind, Phase};

/// The uncaught-panic hook: see [`Loop::on_uncaught_panic`].
pub(crate) type UncaughtPanicHook = Box<dyn FnMut(&mut Loop, &UncaughtPanic)>;

/// Where the loop keeps its hook. `Running` while the hook itself runs (it is taken out of the
/// slot to be called with `&mut Loop`), so that a hook the hook installs or clears wins.
#[derive(Default)]
pub(crate) enum HookSlot {
    #[default]
    Unset,
    Set(UncaughtPanicHook),
    Running,
}

/// The ticks and microtasks held back after a timer or an immediate panicked (see
/// [`Loop::release_held_queues`]).
pub(crate) struct HeldQueues {
    ticks: VecDeque<Task>,
    microtasks: VecDeque<Microtask>,
}

/// A panic that escaped a loop callback, as handed to the hook of [`Loop::on_uncaught_panic`]
/// (Node's `uncaughtException` listener gets `(err, origin)`; this is both).
pub struct UncaughtPanic {
    payload: Box<dyn Any + Send>,
    message: String,
    callback: CallbackKind,
    phase: Phase,
}

impl UncaughtPanic {
    /// The panic message when the payload is a string (`panic!("..")`, `unwrap` on `None`/`Err`,
    /// `expect`), else `"non-string panic payload"`. The panic's file and line are not in the
    /// payload: Rust's panic hook prints them to stderr when the panic happens.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The kind of callback that panicked (timer, immediate, next-tick, microtask, thread-pool
    /// completion, I/O, signal, pending, close, before-exit).
    pub fn callback(&self) -> CallbackKind {
        self.callback
    }

    /// The phase the loop was in (`Phase::Main` for ticks and microtasks drained before the
    /// first iteration).
    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// The raw panic payload, for `downcast_ref` to a custom type passed to
    /// `std::panic::panic_any`.
    pub fn payload(&self) -> &(dyn Any + Send) {
        &*self.payload
    }

    /// Gives the payload back, e.g. to `std::panic::resume_unwind` it.
    pub fn into_payload(self) -> Box<dyn Any + Send> {
        self.payload
    }
}

impl fmt::Debug for UncaughtPanic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UncaughtPanic")
            .field("message", &self.message)
            .field("callback", &self.callback)
            .field("phase", &self.phase)
            .finish()
    }
}

impl fmt::Display for UncaughtPanic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "panic in a {} callback ({:?} phase): {}",
            self.callback.name(),
            self.phase,
            self.message
        )
    }
}

/// The message of a panic payload when it is a string.
pub(crate) fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".to_string()
    }
}

impl Loop {
    /// Installs the loop's uncaught-panic hook (Node's `process.on('uncaughtException')`;
    /// one hook per loop, as Node's `setUncaughtExceptionCaptureCallback`: installing another
    /// replaces it).
    ///
    /// Without a hook (the default), a panic in any callback unwinds out of `run` (as an
    /// uncaught exception ends a Node process); under `oneloop::cluster` the worker is restarted.
    /// With a hook, a panic in a timer, interval, immediate, next-tick, microtask, thread-pool
    /// completion, I/O, signal, pending, close or before-exit callback is caught, the hook runs
    /// with the loop and an [`UncaughtPanic`], and the loop carries on with the next callback.
    ///
    /// ```
    /// use oneloop_runtime::Loop;
    /// let mut lp = Loop::new()?;
    /// lp.on_uncaught_panic(|_lp, panic| eprintln!("uncaught: {panic}"));
    /// lp.set_timeout(0, |_lp| panic!("bug in a timer"));
    /// lp.set_timeout(1, |_lp| println!("still running"));
    /// lp.run()?; // returns normally, after both timers
    /// # Ok::<(), std::io::Error>(())
    /// ```
    ///
    /// # Guarantees
    /// - The loop's own state stays consistent: a callback is taken out of its queue or slot
    ///   before it runs, as without a hook, so a panicking one-shot callback (timer, immediate,
    ///   tick, completion, close) is gone and counts no more towards [`Loop::is_alive`]; an
    ///   interval is re-armed and a socket or signal callback stays installed (Node re-arms an
    ///   interval that threw, in a `finally`). Ticks and microtasks still drain after it.
    /// - The callbacks queued behind the one that panicked run, in their order.
    ///
    /// # Pitfalls
    /// - Rust's panic hook still prints `thread '..' panicked at ..` to stderr when the panic
    ///   happens, before this hook runs (the loop installs no process-wide `std::panic` hook).
    /// - State the callback was changing may be half-updated (the closure is run under
    ///   `AssertUnwindSafe`), exactly as after a JavaScript exception. Node's advice holds:
    ///   log, then shut down gracefully, rather than serve on for long in an unknown state.
    /// - A panic in the hook itself unwinds out of `run` (Node exits when an
    ///   `uncaughtException` listener throws); the hook stays installed.
    /// - A callback the loop did not invoke is not covered: code run directly between `run`
    ///   calls, and the `work` function of [`Loop::queue_work`] (its panic already arrives in
    ///   `after` as `Err(WorkError::Panicked)`).
    /// - With `panic = "abort"` in the build profile nothing unwinds and nothing is caught.
    pub fn on_uncaught_panic(&mut self, hook: impl FnMut(&mut Loop, &UncaughtPanic) + 'static) {
        self.uncaught_panic = HookSlot::Set(Box::new(hook));
    }

    /// Removes the uncaught-panic hook: panics unwind out of `run` again. Returns whether one
    /// was installed.
    pub fn clear_uncaught_panic(&mut self) -> bool {
        !matches!(std::mem::take(&mut self.uncaught_panic), HookSlot::Unset)
    }

    /// Calls a user callback of `kind`: directly without a hook, under `catch_unwind` with one.
    #[inline(always)]
    pub(crate) fn invoke(&mut self, kind: CallbackKind, callback: impl FnOnce(&mut Loop)) {
        if matches!(self.uncaught_panic, HookSlot::Unset) {
            callback(self);
        } else {
            self.invoke_catching(kind, callback);
        }
    }

    /// With a hook. After a timer or an immediate panicked, the ticks and microtasks it (and the
    /// hook) queued are held back, and released right before the next callback runs (or at the
    /// end of the phase, by the phase): Node's `RunTimers`/`CheckImmediate` call
    /// `processTimers`/`processImmediate` again after an exception 'uncaughtException' handled,
    /// and that call runs the next timer or immediate before its first `runNextTicks`.
    #[inline(never)]
    fn invoke_catching(&mut self, kind: CallbackKind, callback: impl FnOnce(&mut Loop)) {
        if self.held_after_panic.is_some() {
            self.release_held_queues();
        }
        if let Err(payload) = catch_unwind(AssertUnwindSafe(|| callback(self))) {
            self.report_uncaught_panic(kind, payload);
            if matches!(kind, CallbackKind::Timer | CallbackKind::Immediate) {
                self.hold_queues();
            }
        }
    }

    /// Sets aside the queued ticks and microtasks (so the drain after the failed callback finds
    /// nothing) and records that a panic is being handled. Allocates only on a panic.
    #[cold]
    fn hold_queues(&mut self) {
        let ticks = std::mem::take(&mut *self.ticks.borrow_mut());
        let microtasks = std::mem::take(&mut *self.jobs.microtasks.borrow_mut());
        self.held_after_panic = Some(Box::new(HeldQueues { ticks, microtasks }));
    }

    /// Puts the held ticks and microtasks back in front of anything queued since.
    #[cold]
    pub(crate) fn release_held_queues(&mut self) {
        let Some(held) = self.held_after_panic.take() else {
            return;
        };
        let HeldQueues {
            mut ticks,
            mut microtasks,
        } = *held;
        let mut queued = self.ticks.borrow_mut();
        ticks.append(&mut queued);
        *queued = ticks;
        drop(queued);
        let mut queued = self.jobs.microtasks.borrow_mut();
        microtasks.append(&mut queued);
        *queued = microtasks;
    }

    /// Reports the rejections still unhandled now that the queues drained (Node 20's
    /// `--unhandled-rejections=throw`: each becomes an uncaught exception). Returns whether any
    /// was reported. Without a hook, panics (unwinds out of `run`).
    #[cold]
    #[inline(never)]
    pub(crate) fn report_unhandled_rejections(&mut self) -> bool {
        let pending = std::mem::take(&mut *self.jobs.unhandled.borrow_mut());
        let mut reported = false;
        for entry in pending {
            if entry.handled.get() {
                continue;
            }
            reported = true;
            let message = format!("unhandled promise rejection: {}", entry.reason);
            if matches!(self.uncaught_panic, HookSlot::Unset) {
                std::panic::panic_any(message);
            }
            self.report_uncaught_panic(CallbackKind::Microtask, Box::new(message));
        }
        reported
    }

    #[cold]
    #[inline(never)]
    fn report_uncaught_panic(&mut self, kind: CallbackKind, payload: Box<dyn Any + Send>) {
        let mut hook = match std::mem::replace(&mut self.uncaught_panic, HookSlot::Running) {
            HookSlot::Set(hook) => hook,
            // Cleared by the callback that panicked, or a panic in a callback the hook itself
            // ran (a nested `run`): nobody to report to, so it propagates.
            other => {
                self.uncaught_panic = other;
                resume_unwind(payload);
            }
        };
        let panic = UncaughtPanic {
            message: panic_message(&*payload),
            payload,
            callback: kind,
            phase: self.phase(),
        };
        log::debug!("uncaught {panic}");
        let result = catch_unwind(AssertUnwindSafe(|| hook(self, &panic)));
        // Put the hook back unless it installed a new one or cleared itself.
        if matches!(self.uncaught_panic, HookSlot::Running) {
            self.uncaught_panic = HookSlot::Set(hook);
        }
        if let Err(hook_panic) = result {
            resume_unwind(hook_panic);
        }
    }
}

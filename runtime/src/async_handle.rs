//! Async handles (libuv's `uv_async_t`): wake a loop from any thread and run a callback there.
//!
//! Every async handle of a loop shares the loop's one `mio::Waker` through an [`AsyncHub`]:
//!
//! - [`AsyncHandle::send`] sets the handle's `pending` flag. If it was already set, the send
//!   coalesces into the callback already on its way and returns (one atomic swap, nothing else).
//!   Otherwise it pushes the handle's key onto the hub's `ready` list (a mutex-guarded `Vec`) and
//!   wakes the poller, unless a wake is already on its way (the hub's `woken` flag). The thread
//!   pool's completions use the same coalesced wake.
//! - On the waker's event the poll phase clears `woken`, swaps the `ready` list out under the
//!   lock (the loop keeps a spare `Vec`, so neither side allocates in steady state: each list
//!   holds at most one entry per handle), and for each key clears `pending` and runs the
//!   callback, then drains `next_tick` and microtasks, as after any callback.
//!
//! Cost: a coalesced send is one atomic swap; a first send is a swap, one uncontended lock and
//! push, and one eventfd write per loop wake-up (not per send). The loop's side is O(handles
//! that were sent to), not O(all handles) as libuv's scan of every async handle is.
//!
//! # Guarantees
//! - Coalescing as libuv: any number of sends before the callback runs produce one callback.
//! - No send is lost: `pending` is cleared *before* the callback runs, so a send that happens
//!   after the callback started (or finished) causes another callback. The last send is always
//!   followed by a callback, unless the handle is closed first.
//! - Memory written before `send` is visible to the callback (`pending` is swapped with
//!   acquire-release ordering on both sides).

use std::io;
use std::panic::Location;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use mio::Waker;

use crate::event_loop::ActiveHandle;
use crate::handle::{AsyncId, GenSlab, HandleError, Key};
use crate::trace::CallbackKind;
use crate::Loop;

/// Locks a mutex whose data stays consistent even if a holder panicked (nothing panics while
/// holding these locks).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// What every async handle of one loop shares: the waker and the list of handles sent to.
pub(crate) struct AsyncHub {
    /// Keys of handles whose `pending` flag went from false to true since the last swap.
    ready: Mutex<Vec<Key>>,
    /// A wake is on its way to the poller (cleared by the loop before it looks at anything).
    woken: AtomicBool,
    /// Set when the loop is dropped: sends fail from then on.
    loop_gone: AtomicBool,
    waker: Arc<Waker>,
}

impl AsyncHub {
    pub(crate) fn new(waker: Arc<Waker>) -> AsyncHub {
        AsyncHub {
            ready: Mutex::new(Vec::new()),
            woken: AtomicBool::new(false),
            loop_gone: AtomicBool::new(false),
            waker,
        }
    }

    /// Wakes the loop's poll phase unless a wake is already on its way.
    pub(crate) fn wake(&self) -> io::Result<()> {
        if self.woken.swap(true, Ordering::SeqCst) {
            return Ok(());
        }
        self.waker.wake()
    }

    /// Called by the loop on the waker's event, before it takes completions or ready handles:
    /// anything pushed after this point wakes the poller again.
    pub(crate) fn begin_wake(&self) {
        self.woken.store(false, Ordering::SeqCst);
    }
}

/// Per-handle state shared between the loop and every clone of its [`AsyncHandle`].
struct AsyncShared {
    pending: AtomicBool,
    closed: AtomicBool,
}

/// The sending side of an async handle from [`Loop::async_handle`]: `Send + Sync`, and a clone
/// is two `Arc` increments. Dropping every clone does not close the handle (as in libuv, close it
/// with [`Loop::async_close`]).
#[derive(Clone)]
pub struct AsyncHandle {
    shared: Arc<AsyncShared>,
    hub: Arc<AsyncHub>,
    key: Key,
}

impl std::fmt::Debug for AsyncHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AsyncHandle")
            .field("id", &self.id())
            .field("closed", &self.is_closed())
            .finish()
    }
}

/// [`AsyncHandle::send`] on a handle that was closed, or whose loop is gone.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct AsyncClosed;

impl std::fmt::Display for AsyncClosed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("async handle closed (or its loop is gone)")
    }
}

impl std::error::Error for AsyncClosed {}

impl AsyncHandle {
    /// Asks the loop to run the handle's callback (libuv's `uv_async_send`). Callable from any
    /// thread, the loop's own included; never blocks on the loop and never allocates in steady
    /// state. Sends before the callback runs coalesce into one callback.
    ///
    /// # Errors
    /// [`AsyncClosed`] if the handle was closed or the loop dropped.
    pub fn send(&self) -> Result<(), AsyncClosed> {
        if self.is_closed() {
            return Err(AsyncClosed);
        }
        if self.shared.pending.swap(true, Ordering::AcqRel) {
            return Ok(()); // a callback is already on its way: coalesced
        }
        lock(&self.hub.ready).push(self.key);
        // Fails only if the poller is gone, i.e. the loop is being dropped.
        self.hub.wake().map_err(|_| AsyncClosed)
    }

    /// Whether the handle was closed or its loop dropped (a send would fail).
    pub fn is_closed(&self) -> bool {
        self.shared.closed.load(Ordering::Acquire) || self.hub.loop_gone.load(Ordering::Acquire)
    }

    /// The id to close, ref or unref the handle with on the loop.
    pub fn id(&self) -> AsyncId {
        AsyncId(self.key)
    }
}

/// What an async handle is, for why-alive.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum AsyncKind {
    /// [`Loop::async_handle`]: the loop traces one `Async` callback per wake.
    Handle,
    /// [`Loop::channel`]: the channel traces one `Async` callback per message itself.
    Channel,
}

pub(crate) type AsyncCallback = Box<dyn FnMut(&mut Loop)>;

pub(crate) struct AsyncEntry {
    shared: Arc<AsyncShared>,
    /// `None` while the callback runs (or before a channel installs its receiver).
    callback: Option<AsyncCallback>,
    kind: AsyncKind,
    pub(crate) refed: bool,
    created_at: &'static Location<'static>,
}

/// Every async handle of one loop.
pub(crate) struct Asyncs {
    pub(crate) hub: Arc<AsyncHub>,
    pub(crate) entries: GenSlab<AsyncEntry>,
    /// The spare list swapped with `hub.ready` (empty between wakes; keeps its capacity).
    batch: Vec<Key>,
}

impl Asyncs {
    pub(crate) fn new(waker: Arc<Waker>) -> Asyncs {
        Asyncs {
            hub: Arc::new(AsyncHub::new(waker)),
            entries: GenSlab::default(),
            batch: Vec::new(),
        }
    }

    pub(crate) fn active_handles(&self, out: &mut Vec<ActiveHandle>) {
        for key in self.entries.keys() {
            if let Some(e) = self.entries.get(key).filter(|e| e.refed) {
                out.push(ActiveHandle {
                    kind: match e.kind {
                        AsyncKind::Handle => "async",
                        AsyncKind::Channel => "channel",
                    },
                    created_at: Some(format!("{}:{}", e.created_at.file(), e.created_at.line())),
                });
            }
        }
    }

    pub(crate) fn refed_mut(&mut self, id: AsyncId) -> Option<&mut bool> {
        self.entries.get_mut(id.0).map(|e| &mut e.refed)
    }

    pub(crate) fn refed(&self, id: AsyncId) -> Option<bool> {
        self.entries.get(id.0).map(|e| e.refed)
    }
}

impl Drop for Asyncs {
    fn drop(&mut self) {
        // Every handle is gone with the loop: later sends fail instead of waking nothing.
        self.hub.loop_gone.store(true, Ordering::Release);
        for key in self.entries.keys().collect::<Vec<_>>() {
            if let Some(e) = self.entries.remove(key) {
                e.shared.closed.store(true, Ordering::Release);
            }
        }
    }
}

impl Loop {
    /// Creates an async handle (libuv's `uv_async_t`): `callback` runs on the loop thread, in
    /// the poll phase, after [`AsyncHandle::send`] is called from any thread. Sends before the
    /// callback runs coalesce into one callback (see the module docs of `async_handle` in
    /// docs/event-loop.md).
    ///
    /// The handle is ref'd, as libuv's is: while it is open, `run` does not return (a loop that
    /// waits for other threads needs that). Node has no JS-visible async handle; its
    /// `MessagePort` is the closest, and it keeps the process alive only while it has a
    /// `'message'` listener. [`Loop::unref`] it to let the loop exit while it is open.
    ///
    /// ```
    /// use oneloop_runtime::Loop;
    /// let mut lp = Loop::new()?;
    /// let wakeup = lp.async_handle(|lp| println!("woken at {} ms", lp.now()));
    /// let id = wakeup.id();
    /// let remote = wakeup.clone();
    /// let t = std::thread::spawn(move || remote.send().unwrap());
    /// t.join().unwrap();
    /// lp.run_once()?; // the callback runs
    /// lp.async_close(id, |_| println!("closed"))?;
    /// lp.run()?; // the close callback runs, then nothing is left
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[track_caller]
    pub fn async_handle(&mut self, callback: impl FnMut(&mut Loop) + 'static) -> AsyncHandle {
        let handle = self.async_open(AsyncKind::Handle, Location::caller());
        self.async_set_callback(handle.key, Box::new(callback));
        handle
    }

    /// An async handle with no callback yet (see [`Loop::async_set_callback`]).
    pub(crate) fn async_open(
        &mut self,
        kind: AsyncKind,
        created_at: &'static Location<'static>,
    ) -> AsyncHandle {
        let shared = Arc::new(AsyncShared {
            pending: AtomicBool::new(false),
            closed: AtomicBool::new(false),
        });
        let key = self.asyncs.entries.insert(AsyncEntry {
            shared: Arc::clone(&shared),
            callback: None,
            kind,
            refed: true,
            created_at,
        });
        self.refs += 1;
        AsyncHandle {
            shared,
            hub: Arc::clone(&self.asyncs.hub),
            key,
        }
    }

    pub(crate) fn async_set_callback(&mut self, key: Key, callback: AsyncCallback) {
        if let Some(e) = self.asyncs.entries.get_mut(key) {
            e.callback = Some(callback);
        }
    }

    /// Closes an async handle (libuv's `uv_close`): its callback never runs again, sends fail
    /// with [`AsyncClosed`], and `on_close` runs in this iteration's close phase. Sends that
    /// were pending when it closed are dropped.
    ///
    /// # Errors
    /// [`HandleError::Stale`] if it was already closed.
    pub fn async_close(
        &mut self,
        id: AsyncId,
        on_close: impl FnOnce(&mut Loop) + 'static,
    ) -> Result<(), HandleError> {
        let entry = self.asyncs.entries.remove(id.0).ok_or(HandleError::Stale)?;
        entry.shared.closed.store(true, Ordering::Release);
        if entry.refed {
            self.refs -= 1;
        }
        // A channel's receiver lives in the callback: dropping it refuses later sends. While
        // the callback runs it is out of the entry and is dropped when it returns.
        drop(entry);
        self.queue_close(on_close);
        Ok(())
    }

    /// Whether `id` is an open async handle (or channel).
    pub fn async_is_open(&self, id: AsyncId) -> bool {
        self.asyncs.entries.get(id.0).is_some()
    }

    /// Runs the callbacks of the async handles sent to since the last wake (poll phase).
    pub(crate) fn run_async_callbacks(&mut self) {
        let mut batch = std::mem::take(&mut self.asyncs.batch);
        std::mem::swap(&mut *lock(&self.asyncs.hub.ready), &mut batch);
        for key in batch.drain(..) {
            let Some(entry) = self.asyncs.entries.get_mut(key) else {
                continue; // closed after its send
            };
            // Cleared before the callback runs: a send from now on causes another callback.
            if !entry.shared.pending.swap(false, Ordering::AcqRel) {
                continue;
            }
            let kind = entry.kind;
            let Some(mut callback) = entry.callback.take() else {
                continue;
            };
            match kind {
                AsyncKind::Handle => {
                    self.trace_callback(CallbackKind::Async);
                    self.invoke(CallbackKind::Async, |lp| callback(lp));
                    self.after_callback();
                }
                // Traces, invokes and drains once per message itself.
                AsyncKind::Channel => callback(self),
            }
            if let Some(entry) = self.asyncs.entries.get_mut(key) {
                entry.callback = Some(callback);
            }
        }
        self.asyncs.batch = batch;
    }
}

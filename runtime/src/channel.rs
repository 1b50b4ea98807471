//! A typed channel into the loop, on top of an async handle: [`Loop::channel`].
//!
//! Senders push onto one mutex-guarded `VecDeque` and send the async handle; the loop swaps the
//! whole queue out under the lock (keeping a spare queue, so steady state allocates nothing) and
//! calls the callback once per message, draining `next_tick` and microtasks after each.
//!
//! # Bound
//! Unbounded: `send` never blocks and never fails while the channel is open. That is safe here
//! because the senders are this process's own threads, not a network peer: a peer cannot make
//! the queue grow, only code the application wrote can, and memory grows only while the loop is
//! busy elsewhere. (A thread that must not outrun the loop can wait for a reply.) The queue is
//! swapped out whole, so a burst of messages is handed to the loop in one lock.

use std::collections::VecDeque;
use std::fmt;
use std::panic::Location;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use crate::async_handle::{lock, AsyncHandle, AsyncKind};
use crate::handle::AsyncId;
use crate::trace::CallbackKind;
use crate::Loop;

type MessageCallback<T> = Box<dyn FnMut(&mut Loop, T)>;

struct State<T> {
    queue: VecDeque<T>,
    /// The loop side is gone (closed or the loop dropped): sends fail.
    closed: bool,
    /// Every [`Sender`] was dropped: the loop closes the channel once the queue is empty.
    disconnected: bool,
}

struct Shared<T> {
    state: Mutex<State<T>>,
    senders: AtomicUsize,
}

/// The sending half of a channel from [`Loop::channel`]: `Clone + Send` (for `T: Send`), usable
/// from any thread.
///
/// # Guarantees
/// - Each message sent successfully is delivered exactly once, unless the channel is closed
///   first (then messages not yet delivered are dropped).
/// - Messages from one sender are delivered in the order it sent them. Messages from different
///   senders are delivered in the order their `send` calls took the queue's lock.
pub struct Sender<T> {
    shared: Arc<Shared<T>>,
    handle: AsyncHandle,
}

impl<T> fmt::Debug for Sender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sender")
            .field("id", &self.handle.id())
            .finish()
    }
}

/// [`Sender::send`] after the channel closed; holds the message that was not sent.
#[derive(PartialEq, Eq)]
pub struct SendError<T>(pub T);

impl<T> fmt::Debug for SendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SendError(..)")
    }
}

impl<T> fmt::Display for SendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("sending on a closed channel (closed on the loop, or the loop is gone)")
    }
}

impl<T> std::error::Error for SendError<T> {}

impl<T: Send> Sender<T> {
    /// Queues `msg` for the loop's callback and wakes the loop (sends before the loop runs
    /// coalesce into one wake). Never blocks on the loop.
    ///
    /// # Errors
    /// [`SendError`] with the message if the channel was closed with [`Loop::async_close`] or
    /// the loop was dropped.
    pub fn send(&self, msg: T) -> Result<(), SendError<T>> {
        {
            let mut state = lock(&self.shared.state);
            // `closed` is set when the receiver is dropped; the handle's flag already at
            // `async_close` (the receiver may still be running a callback then).
            if state.closed || self.handle.is_closed() {
                return Err(SendError(msg));
            }
            state.queue.push_back(msg);
        }
        // Fails only if the loop closed the channel after the push: the message is then
        // dropped with the queue, exactly as if it had been sent just before the close.
        let _ = self.handle.send();
        Ok(())
    }

    /// The channel's id on the loop (to close, ref or unref it).
    pub fn id(&self) -> AsyncId {
        self.handle.id()
    }
}

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Self {
        self.shared.senders.fetch_add(1, Ordering::Relaxed);
        Sender {
            shared: Arc::clone(&self.shared),
            handle: self.handle.clone(),
        }
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        if self.shared.senders.fetch_sub(1, Ordering::AcqRel) != 1 {
            return;
        }
        // The last sender: let the loop close the channel after the last message.
        lock(&self.shared.state).disconnected = true;
        let _ = self.handle.send();
    }
}

/// The loop's half, owned by the async handle's callback; dropping it (close, or the loop
/// dropped) refuses later sends.
struct Receiver<T> {
    shared: Arc<Shared<T>>,
    /// Messages taken from the queue and not yet delivered (keeps its capacity).
    batch: VecDeque<T>,
    id: AsyncId,
    on_message: MessageCallback<T>,
}

impl<T> Receiver<T> {
    fn deliver(&mut self, lp: &mut Loop) {
        let disconnected = {
            let mut state = lock(&self.shared.state);
            std::mem::swap(&mut state.queue, &mut self.batch);
            state.disconnected
        };
        while let Some(msg) = self.batch.pop_front() {
            let on_message = &mut self.on_message;
            lp.trace_callback(CallbackKind::Async);
            lp.invoke(CallbackKind::Async, |lp| on_message(lp, msg));
            lp.after_callback();
            if !lp.async_is_open(self.id) {
                self.batch.clear(); // closed by a callback: the rest is dropped
                return;
            }
        }
        if disconnected {
            // No sender is left and the queue was empty after the swap: nothing can arrive.
            let _ = lp.async_close(self.id, |_| {});
        }
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        let mut state = lock(&self.shared.state);
        state.closed = true;
        state.queue.clear();
    }
}

impl Loop {
    /// A typed channel into the loop: `on_message(lp, msg)` runs on the loop thread, in the
    /// poll phase, once per message sent with the returned [`Sender`] from any thread, with
    /// `next_tick` and microtasks drained after each (the Rust shape of Node's
    /// `worker.on('message')`).
    ///
    /// The channel is an async handle: ref'd (the loop stays alive while it is open), closed
    /// with [`Loop::async_close`], unref'd with [`Loop::unref`]. It closes itself once every
    /// [`Sender`] is dropped and the messages sent before are delivered, so a loop that waits
    /// for worker threads returns from `run` when the last one finishes. Unbounded (see the
    /// `channel` module docs in docs/event-loop.md: the senders are in-process code).
    ///
    /// ```
    /// use oneloop_runtime::Loop;
    /// let mut lp = Loop::new()?;
    /// let (tx, _id) = lp.channel(|_lp, n: u64| println!("got {n}"));
    /// let workers: Vec<_> = (0..2)
    ///     .map(|w| {
    ///         let tx = tx.clone();
    ///         std::thread::spawn(move || tx.send(w).unwrap())
    ///     })
    ///     .collect();
    /// drop(tx); // the workers' clones keep it open
    /// lp.run()?; // returns once both threads are done and their messages delivered
    /// for w in workers {
    ///     w.join().unwrap();
    /// }
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[track_caller]
    pub fn channel<T: Send + 'static>(
        &mut self,
        on_message: impl FnMut(&mut Loop, T) + 'static,
    ) -> (Sender<T>, AsyncId) {
        let handle = self.async_open(AsyncKind::Channel, Location::caller());
        let id = handle.id();
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                queue: VecDeque::new(),
                closed: false,
                disconnected: false,
            }),
            senders: AtomicUsize::new(1),
        });
        let mut receiver = Receiver {
            shared: Arc::clone(&shared),
            batch: VecDeque::new(),
            id,
            on_message: Box::new(on_message),
        };
        self.async_set_callback(id.0, Box::new(move |lp| receiver.deliver(lp)));
        (Sender { shared, handle }, id)
    }
}

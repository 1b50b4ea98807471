//! The loop's job queues as tasks and promises see them: the microtask queue (shared, so a
//! promise settled or a task woken without `&mut Loop` queues its job at once, in order), the
//! task slab, the deferred loop operations of a running task, and the rejections not yet handled.
//!
//! One [`Jobs`] per [`Loop`], owned through an `Rc` by the loop and by every promise created on
//! it. The loop thread keeps a stack of the live loops' `Jobs` ([`current`]); a waker finds its
//! loop there by id, or learns that it runs on another thread ([`RemoteWakes`]).

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{RawWakerVTable, Wake, Waker};

use crate::async_handle::{lock, AsyncHub};
use crate::event_loop::Task;
use crate::handle::{GenSlab, Key};

/// One entry of the microtask queue: a callback (`queue_microtask`, a promise reaction) or the
/// resumption of a task (an `await` that completed), which allocates nothing.
pub(crate) enum Microtask {
    Callback(Task),
    Resume(Key),
}

/// A task's future, boxed.
pub(crate) type BoxedFuture = Pin<Box<dyn Future<Output = ()>>>;

/// A spawned task: its future and its waker, taken out together while it is being polled
/// (`None` then), so a resumption moves two words out and back with no refcount traffic and no
/// placeholder waker to drop.
pub(crate) struct TaskSlot {
    pub(crate) parts: Option<(BoxedFuture, Waker)>,
    /// The `Arc` behind the waker, kept so that a later task can reuse it once no clone of
    /// the waker is left (see [`Jobs::retire`]): a spawn then allocates only its future.
    pub(crate) waker: Arc<TaskWaker>,
    /// A `Resume` for this task is in the microtask queue: a second wake before it runs adds
    /// nothing (one resumption per settled `await`, as V8's one reaction job).
    pub(crate) queued: bool,
    /// What the task's `JoinHandle` shares with it.
    pub(crate) join: JoinSlot,
}

/// The `JoinHandle` side of a task's slot. A task that finishes while its handle is attached
/// keeps its slot (without its future) until the handle takes the output or is dropped.
#[derive(Default)]
pub(crate) struct JoinSlot {
    /// `JoinHandle::detach` was called: the output is dropped when the task returns.
    pub(crate) detached: bool,
    /// The task returned; `output` waits for its handle.
    pub(crate) finished: bool,
    /// Boxed as `Any`: no allocation for a zero-sized output such as `()`.
    pub(crate) output: Option<Box<dyn Any>>,
    /// The task awaiting the handle.
    pub(crate) waiter: Option<Waker>,
}

/// The waker of one task: `Send + Sync` (the key and the loop's id; the loop's queues are
/// reached through the loop thread's registry, never from another thread).
pub(crate) struct TaskWaker {
    pub(crate) jobs_id: u64,
    /// The task's [`Key`] (index in the low half, generation in the high half). Atomic only so
    /// that a spare waker can be given to the next task without `Arc::get_mut`: it changes only
    /// while the loop holds the only two references (see [`Jobs::retire`]).
    key: AtomicU64,
    pub(crate) remote: Arc<RemoteWakes>,
}

impl TaskWaker {
    pub(crate) fn new(jobs_id: u64, key: Key, remote: Arc<RemoteWakes>) -> TaskWaker {
        TaskWaker {
            jobs_id,
            key: AtomicU64::new(Self::pack(key)),
            remote,
        }
    }

    fn pack(key: Key) -> u64 {
        u64::from(key.index) | (u64::from(key.gen) << 32)
    }

    pub(crate) fn key(&self) -> Key {
        let bits = self.key.load(Ordering::Relaxed);
        Key {
            index: bits as u32,
            gen: (bits >> 32) as u32,
        }
    }

    /// Points a spare waker at task `key` (only for a waker from [`Jobs::spare_wakers`]).
    pub(crate) fn reassign(&self, key: Key) {
        self.key.store(Self::pack(key), Ordering::Relaxed);
    }
}

impl Wake for TaskWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref()
    }

    #[inline]
    fn wake_by_ref(self: &Arc<Self>) {
        let key = self.key();
        if !with_local(self.jobs_id, |jobs| jobs.schedule(key)) {
            self.remote.push(key);
        }
    }
}

/// A rejection no handler had when it happened; `handled` is set if one is attached later.
pub(crate) struct Unhandled {
    pub(crate) handled: Rc<Cell<bool>>,
    pub(crate) reason: String,
}

/// The task being polled: its key and its waker's identity (data and vtable pointers, compared,
/// never dereferenced). A wake of this task needs no registry lookup, no slab borrow and no
/// queue push: it records the queue's length in [`Jobs::owed`].
#[derive(Clone, Copy)]
pub(crate) struct Polling {
    pub(crate) key: Key,
    waker: (*const (), *const RawWakerVTable),
    /// Polled by its `Resume` microtask in the drain, with no observer and nothing held after a
    /// panic: an `await` whose resumption would be the very next microtask may continue in place
    /// (see [`Jobs::continue_in_place`]). `false` for a task's first poll (`spawn`), which runs
    /// inside the caller's callback: what follows its first `await` must wait for the drain.
    resumed: bool,
}

impl Polling {
    pub(crate) fn new(key: Key, waker: &Waker, resumed: bool) -> Polling {
        Polling {
            key,
            waker: (waker.data(), waker.vtable()),
            resumed,
        }
    }

    /// Whether `waker` is this task's waker (same data and vtable pointers).
    #[inline]
    fn is_waker(&self, waker: &Waker) -> bool {
        self.waker == (waker.data(), waker.vtable() as *const _)
    }
}

/// Where the resumption of the task being polled stands.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Owed {
    /// Not woken during this poll.
    No,
    /// Woken while the microtask queue held `n` jobs: its `Resume` belongs at index `n` (jobs
    /// queued after the wake go behind it) and is put there when the poll ends, or, at index 0
    /// in the drain, run at once (see `Loop::resume_task`).
    At(usize),
    /// Its `Resume` is in the queue.
    Queued,
}

/// Wakes that came from other threads: task keys, picked up on the loop's waker event.
pub(crate) struct RemoteWakes {
    pub(crate) keys: Mutex<Vec<Key>>,
    pub(crate) hub: Arc<AsyncHub>,
}

impl RemoteWakes {
    pub(crate) fn push(&self, key: Key) {
        lock(&self.keys).push(key);
        // A loop that is gone cannot be woken; the key is then never looked at.
        let _ = self.hub.wake();
    }
}

/// See the module documentation.
pub(crate) struct Jobs {
    /// Unique across the process (wakers carry it to find their loop).
    pub(crate) id: u64,
    /// The loop's `next_tick` queue (the same `Rc` as `Loop::ticks`).
    pub(crate) ticks: Rc<RefCell<VecDeque<Task>>>,
    pub(crate) microtasks: RefCell<VecDeque<Microtask>>,
    pub(crate) tasks: RefCell<GenSlab<TaskSlot>>,
    /// The task being polled, if any (see [`Polling`]), and where its resumption stands.
    pub(crate) polling: Cell<Option<Polling>>,
    pub(crate) owed: Cell<Owed>,
    /// Loop operations a task asked for while it ran (it has no `&mut Loop`): applied, in order,
    /// as soon as its poll returns and before any other callback (see `task::with_loop`).
    pub(crate) ops: RefCell<VecDeque<Task>>,
    pub(crate) unhandled: RefCell<Vec<Unhandled>>,
    /// Finished tasks whose slot waits for their `JoinHandle` (not alive: see `tasks_alive`).
    pub(crate) finished: Cell<usize>,
    /// Resumptions run in place ([`Jobs::continue_in_place`]) since the loop last counted them
    /// as microtask callbacks.
    pub(crate) resumed_in_place: Cell<u64>,
    /// Task wakers no clone is left of, for the next spawns (at most one per slot the task
    /// slab ever had, as the slab keeps its capacity): each `Arc` with the one `Waker` made
    /// from it, its only two references, so a spawn reuses both without touching the
    /// reference count (no atomic read-modify-write per spawn or finish).
    pub(crate) spare_wakers: RefCell<Vec<(Arc<TaskWaker>, Waker)>>,
    pub(crate) remote: Arc<RemoteWakes>,
}

thread_local! {
    /// The `Jobs` of every live loop created on this thread, newest last.
    static CURRENT: RefCell<Vec<Rc<Jobs>>> = const { RefCell::new(Vec::new()) };
}

impl Jobs {
    pub(crate) fn new(ticks: Rc<RefCell<VecDeque<Task>>>, hub: Arc<AsyncHub>) -> Rc<Jobs> {
        static NEXT_ID: AtomicU64 = AtomicU64::new(1);
        let jobs = Rc::new(Jobs {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            ticks,
            microtasks: RefCell::new(VecDeque::new()),
            tasks: RefCell::new(GenSlab::default()),
            polling: Cell::new(None),
            owed: Cell::new(Owed::No),
            ops: RefCell::new(VecDeque::new()),
            unhandled: RefCell::new(Vec::new()),
            finished: Cell::new(0),
            resumed_in_place: Cell::new(0),
            spare_wakers: RefCell::new(Vec::new()),
            remote: Arc::new(RemoteWakes {
                keys: Mutex::new(Vec::new()),
                hub,
            }),
        });
        CURRENT.with(|c| c.borrow_mut().push(Rc::clone(&jobs)));
        jobs
    }

    /// Called when the loop is dropped: its promises and wakers can no longer reach it.
    pub(crate) fn unregister(&self) {
        let id = self.id;
        // `try_with`: the thread-local may already be gone when a loop is dropped at thread exit.
        let _ = CURRENT.try_with(|c| c.borrow_mut().retain(|j| j.id != id));
        // Drop the tasks (and with them the futures that hold promises pointing back here).
        let tasks = std::mem::take(&mut *self.tasks.borrow_mut());
        drop(tasks);
        self.microtasks.borrow_mut().clear();
        self.ops.borrow_mut().clear();
        self.spare_wakers.borrow_mut().clear();
    }

    /// Drops a slot removed from the task slab (call outside the slab's borrow: the future's
    /// drops may spawn, wake or defer loop operations) and keeps its waker for reuse if no
    /// clone of it is left. `waker`: the task's `Waker` if the caller took it out of the slot
    /// with the future.
    pub(crate) fn retire(&self, slot: TaskSlot, waker: Option<Waker>) {
        let TaskSlot {
            parts,
            waker: arc,
            join,
            ..
        } = slot;
        if join.finished {
            self.finished.set(self.finished.get() - 1);
        }
        let waker = match parts {
            Some((future, waker)) => {
                drop(future);
                Some(waker)
            }
            None => waker,
        };
        drop(join);
        // Kept only if the slot's `Arc` and its `Waker` are the only references: then no
        // other thread can make one, and the next task may take it over.
        match waker {
            Some(waker) if Arc::strong_count(&arc) == 2 => {
                self.spare_wakers.borrow_mut().push((arc, waker));
            }
            // A finished task whose handle took its output: the waker went with the future.
            None if Arc::strong_count(&arc) == 1 => {
                let waker = Waker::from(Arc::clone(&arc));
                self.spare_wakers.borrow_mut().push((arc, waker));
            }
            _ => {}
        }
    }

    /// Queues a microtask callback.
    #[inline]
    pub(crate) fn queue(&self, callback: Task) {
        self.microtasks
            .borrow_mut()
            .push_back(Microtask::Callback(callback));
    }

    /// Queues a loop operation to run as soon as the running task's poll returns (or at the next
    /// drain): see `task::with_loop`.
    pub(crate) fn defer(&self, op: impl FnOnce(&mut crate::Loop) + 'static) {
        self.ops.borrow_mut().push_back(Box::new(op));
    }

    /// Queues the resumption of task `key` unless one is queued already.
    #[inline]
    pub(crate) fn schedule(&self, key: Key) {
        if let Some(polling) = self.polling.get() {
            if polling.key == key {
                self.schedule_polling();
                return;
            }
        }
        if let Some(slot) = self.tasks.borrow_mut().get_mut(key) {
            if !slot.queued && !slot.join.finished {
                slot.queued = true;
                self.microtasks
                    .borrow_mut()
                    .push_back(Microtask::Resume(key));
            }
        }
    }

    /// Records the wake of the task being polled unless it was woken already.
    #[inline]
    fn schedule_polling(&self) {
        if self.owed.get() == Owed::No {
            self.owed.set(Owed::At(self.microtasks.borrow().len()));
        }
    }

    /// Wakes the task being polled if `waker` is its waker (the common `await` of something
    /// already complete: no call through the waker, no registry lookup) and returns `true`;
    /// `false` if `waker` is someone else's (the caller then calls `wake_by_ref`).
    #[inline]
    pub(crate) fn wake_polling(&self, waker: &Waker) -> bool {
        match self.polling.get() {
            Some(polling) if polling.is_waker(waker) => {
                self.schedule_polling();
                true
            }
            _ => false,
        }
    }

    /// An `await` of something already settled, by the task being polled with `waker`: returns
    /// `true` (and counts one microtask) if its one resumption microtask would be the next job
    /// of the drain, so the task may go on in place instead of suspending: the task was resumed
    /// by the drain, is not woken yet, and the microtask queue and the deferred loop operations
    /// are empty. Nothing can run between the suspension and the resumption then (the drain
    /// runs microtasks back to back, as V8's `RunMicrotasks` does; ticks wait until it is
    /// empty), so the order of every callback is the same as with the suspension; only the
    /// poll, the queue push and pop and the state-machine round trip are saved.
    #[inline]
    pub(crate) fn continue_in_place(&self, waker: &Waker) -> bool {
        match self.polling.get() {
            Some(polling)
                if polling.resumed
                    && polling.is_waker(waker)
                    && self.owed.get() == Owed::No
                    && self.microtasks.borrow().is_empty()
                    && self.ops.borrow().is_empty() =>
            {
                self.resumed_in_place.set(self.resumed_in_place.get() + 1);
                true
            }
            _ => false,
        }
    }

    /// Puts the `Resume` of task `key` at index `at` of the microtask queue (see [`Owed::At`]).
    pub(crate) fn queue_resume_at(&self, key: Key, at: usize) {
        let mut queue = self.microtasks.borrow_mut();
        if at >= queue.len() {
            queue.push_back(Microtask::Resume(key));
        } else {
            queue.insert(at, Microtask::Resume(key));
        }
    }

    /// If the next microtask is the resumption of task `key`, removes it and returns `true`
    /// (the caller runs it now: see `Loop::resume_task`).
    #[inline]
    pub(crate) fn pop_resume_of(&self, key: Key) -> bool {
        let mut queue = self.microtasks.borrow_mut();
        match queue.front() {
            Some(Microtask::Resume(k)) if *k == key => {
                queue.pop_front();
                true
            }
            _ => false,
        }
    }
}

/// The `Jobs` of the newest live loop on this thread.
///
/// # Panics
/// If no [`Loop`](crate::Loop) exists on this thread: promises and tasks belong to a loop.
pub(crate) fn current() -> Rc<Jobs> {
    try_current().expect(
        "oneloop: promises and tasks need a Loop on this thread (create one with Loop::new first)",
    )
}

/// The `Jobs` of the newest live loop on this thread, if any.
pub(crate) fn try_current() -> Option<Rc<Jobs>> {
    CURRENT.with(|c| c.borrow().last().cloned())
}

/// Runs `f` with the `Jobs` of loop `id` if that loop lives on this thread; `false` otherwise.
#[inline]
pub(crate) fn with_local(id: u64, f: impl FnOnce(&Jobs)) -> bool {
    CURRENT
        .try_with(|c| {
            let c = c.borrow();
            match c.iter().rev().find(|j| j.id == id) {
                Some(jobs) => {
                    f(jobs);
                    true
                }
                None => false,
            }
        })
        .unwrap_or(false)
}

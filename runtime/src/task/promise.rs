//! `Promise<T, E>`: a JavaScript promise on the loop.
//!
//! A promise is pending, then settles once: fulfilled with a `T` or rejected with an `E`. What
//! waits on it (a `.then` callback, an awaiting task) is a *reaction*; settling queues one
//! microtask per reaction, in the order they were added, exactly as V8's `TriggerPromiseReactions`
//! does. Reactions added to a settled promise are queued at once. So:
//!
//! | JavaScript | here | microtasks until it runs |
//! |---|---|---|
//! | `p.then(f)` on a settled `p` | `p.then(f)` | 1 |
//! | `await p` (native promise, settled or not) | `p.await` | 1 after `p` settles |
//! | `await 42` | `Promise::resolved(42).await` / `task::yield_now()` | 1 |
//! | `await thenable` (its `then` resolves at once) | `Thenable::new(..).await` | 2 |
//! | `resolve(p)` / `return p` from `.then` | `Resolver::follow`, `then_promise` | 2 more than `p` |
//!
//! # Values
//! `T` and `E` are cloned for each reaction (a JavaScript reaction gets a reference to the same
//! object): use `Rc<..>` for large values. Await a [`JoinHandle`](crate::task::JoinHandle) to
//! move a task's output without `Clone`.
//!
//! # Unhandled rejections
//! A promise rejected while nothing waits on it, and still without a reaction when the `next_tick`
//! and microtask queues have drained, is an *unhandled rejection*. Node 20 (default
//! `--unhandled-rejections=throw`) turns it into an uncaught exception; the loop does the same
//! with its uncaught-panic policy: without a hook, `run` panics with `unhandled promise
//! rejection: {reason:?}` (Node prints the reason and exits with code 1); with a hook
//! ([`Loop::on_uncaught_panic`]) the hook receives that message and the loop goes on.

use std::cell::{Cell, RefCell};
use std::fmt::{self, Debug};
use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use crate::event_loop::Loop;
use crate::task::jobs::{self, Jobs, Unhandled};

/// A callback reaction: gets the settled result (cloned) in its microtask.
type ThenCallback<T, E> = Box<dyn FnOnce(&mut Loop, Result<T, E>)>;

enum Reaction<T, E> {
    /// An awaiting task: waking it queues its resumption (no allocation).
    Wake(Waker),
    Then(ThenCallback<T, E>),
}

/// Reactions of a pending promise: most have none or one, which need no allocation.
enum Reactions<T, E> {
    None,
    One(Reaction<T, E>),
    Many(Vec<Reaction<T, E>>),
}

impl<T, E> Reactions<T, E> {
    fn push(&mut self, r: Reaction<T, E>) {
        *self = match std::mem::replace(self, Reactions::None) {
            Reactions::None => Reactions::One(r),
            Reactions::One(first) => Reactions::Many(vec![first, r]),
            Reactions::Many(mut v) => {
                v.push(r);
                Reactions::Many(v)
            }
        };
    }
}

enum State<T, E> {
    Pending(Reactions<T, E>),
    Settled(Result<T, E>),
}

struct Inner<T, E> {
    state: State<T, E>,
    /// Set when it was rejected with no reaction; flipped to handled when one is added.
    unhandled: Option<Rc<Cell<bool>>>,
    jobs: Rc<Jobs>,
}

/// A JavaScript promise on the loop: see the [module documentation](self). Cloning it clones
/// the reference (both clones are the same promise).
///
/// ```
/// use oneloop_runtime::{task::Promise, Loop};
/// let mut lp = Loop::new()?;
/// let (p, resolver) = Promise::<u32, String>::pending();
/// let doubled = p.then(|_lp, v| v * 2);
/// lp.set_timeout(5, move |_lp| { resolver.resolve(21); });
/// let check = lp.spawn_task(async move { assert_eq!(doubled.await, Ok(42)) });
/// lp.run()?;
/// assert!(check.is_finished());
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct Promise<T, E> {
    inner: Rc<RefCell<Inner<T, E>>>,
}

impl<T, E> Clone for Promise<T, E> {
    fn clone(&self) -> Self {
        Promise {
            inner: Rc::clone(&self.inner),
        }
    }
}

impl<T, E> Debug for Promise<T, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match &self.inner.borrow().state {
            State::Pending(_) => "pending",
            State::Settled(Ok(_)) => "fulfilled",
            State::Settled(Err(_)) => "rejected",
        };
        write!(f, "Promise {{ <{state}> }}")
    }
}

/// Settles its promise (the `resolve`/`reject` pair `new Promise` hands its executor). Only the
/// first call counts; later ones return `false`, as in JavaScript. Cloneable; dropping every
/// clone leaves the promise pending forever (which keeps nothing alive).
pub struct Resolver<T, E> {
    inner: Rc<RefCell<Inner<T, E>>>,
}

impl<T, E> Clone for Resolver<T, E> {
    fn clone(&self) -> Self {
        Resolver {
            inner: Rc::clone(&self.inner),
        }
    }
}

impl<T, E> Debug for Resolver<T, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Resolver")
    }
}

impl<T: Clone + 'static, E: Clone + Debug + 'static> Promise<T, E> {
    fn with_state(state: State<T, E>, jobs: Rc<Jobs>) -> Self {
        Promise {
            inner: Rc::new(RefCell::new(Inner {
                state,
                unhandled: None,
                jobs,
            })),
        }
    }

    /// A pending promise of this thread's loop and the resolver that settles it.
    ///
    /// # Panics
    /// If no [`Loop`] exists on this thread.
    pub fn pending() -> (Promise<T, E>, Resolver<T, E>) {
        let p = Promise::with_state(State::Pending(Reactions::None), jobs::current());
        let r = Resolver {
            inner: Rc::clone(&p.inner),
        };
        (p, r)
    }

    /// `new Promise(executor)`: runs `executor` at once with the resolver.
    pub fn new(executor: impl FnOnce(Resolver<T, E>)) -> Promise<T, E> {
        let (p, r) = Promise::pending();
        executor(r);
        p
    }

    /// `Promise.resolve(value)`: already fulfilled.
    pub fn resolved(value: T) -> Promise<T, E> {
        Promise::with_state(State::Settled(Ok(value)), jobs::current())
    }

    /// `Promise.reject(reason)`: already rejected (unhandled unless a reaction is added before
    /// the microtask queue drains).
    pub fn rejected(reason: E) -> Promise<T, E> {
        let (p, r) = Promise::pending();
        r.reject(reason);
        p
    }

    /// A promise settled by an `async` block run as a task (an `async function` call): the block
    /// runs at once up to its first pending `.await`; the promise settles with its result when
    /// it returns. The task is detached: it runs to completion (a JavaScript promise cannot be
    /// cancelled); use [`Loop::spawn_task`] for a cancellable one.
    pub fn from_future(future: impl Future<Output = Result<T, E>> + 'static) -> Promise<T, E> {
        let (p, r) = Promise::pending();
        crate::task::spawn(async move {
            match future.await {
                Ok(v) => r.resolve(v),
                Err(e) => r.reject(e),
            };
        })
        .detach();
        p
    }

    /// The result, if settled (cloned). Does not count as handling a rejection.
    pub fn result(&self) -> Option<Result<T, E>> {
        match &self.inner.borrow().state {
            State::Pending(_) => None,
            State::Settled(r) => Some(r.clone()),
        }
    }

    /// Whether it is still pending.
    pub fn is_pending(&self) -> bool {
        matches!(self.inner.borrow().state, State::Pending(_))
    }

    /// Adds a reaction: queued now if settled, else when it settles.
    fn react(&self, reaction: Reaction<T, E>) {
        let mut inner = self.inner.borrow_mut();
        if let Some(flag) = inner.unhandled.take() {
            flag.set(true);
        }
        match &mut inner.state {
            State::Pending(reactions) => reactions.push(reaction),
            State::Settled(_) => {
                let jobs = Rc::clone(&inner.jobs);
                drop(inner);
                trigger(&self.inner, &jobs, reaction);
            }
        }
    }

    /// `p.then(onFulfilled, onRejected)` in one callback: `f` gets the result in a microtask;
    /// returns `f`'s promise (its result is the returned value).
    pub fn on_settled<U: Clone + 'static, F2: Clone + Debug + 'static>(
        &self,
        f: impl FnOnce(&mut Loop, Result<T, E>) -> Result<U, F2> + 'static,
    ) -> Promise<U, F2> {
        let (next, resolver) = Promise::<U, F2>::pending();
        self.react(Reaction::Then(Box::new(move |lp, r| {
            resolver.settle(f(lp, r));
        })));
        next
    }

    /// `p.then(f)`: `f` runs in a microtask once `p` is fulfilled; a rejection passes through
    /// (also one microtask later, as in JavaScript).
    pub fn then<U: Clone + 'static>(
        &self,
        f: impl FnOnce(&mut Loop, T) -> U + 'static,
    ) -> Promise<U, E> {
        self.on_settled(move |lp, r| r.map(|v| f(lp, v)))
    }

    /// `p.then(f)` where `f` returns a promise: the result follows it, two microtasks after it
    /// settles (V8's `NewPromiseResolveThenableJob` plus its `then`).
    pub fn then_promise<U: Clone + 'static>(
        &self,
        f: impl FnOnce(&mut Loop, T) -> Promise<U, E> + 'static,
    ) -> Promise<U, E> {
        let (next, resolver) = Promise::<U, E>::pending();
        self.react(Reaction::Then(Box::new(move |lp, r| match r {
            Ok(v) => resolver.follow(&f(lp, v)),
            Err(e) => {
                resolver.reject(e);
            }
        })));
        next
    }

    /// `p.catch(f)`: `f` turns a rejection into a value; a fulfilment passes through.
    pub fn catch(&self, f: impl FnOnce(&mut Loop, E) -> T + 'static) -> Promise<T, E> {
        self.on_settled(move |lp, r| Ok(r.unwrap_or_else(|e| f(lp, e))))
    }
}

/// Queues the microtask of one reaction to a settled promise.
fn trigger<T: Clone + 'static, E: Clone + 'static>(
    inner: &Rc<RefCell<Inner<T, E>>>,
    jobs: &Jobs,
    reaction: Reaction<T, E>,
) {
    match reaction {
        Reaction::Wake(w) => w.wake(),
        Reaction::Then(cb) => {
            let inner = Rc::clone(inner);
            jobs.queue(Box::new(move |lp| {
                let result = match &inner.borrow().state {
                    State::Settled(r) => r.clone(),
                    State::Pending(_) => unreachable!("a reaction is triggered once settled"),
                };
                cb(lp, result)
            }));
        }
    }
}

impl<T: Clone + 'static, E: Clone + Debug + 'static> Resolver<T, E> {
    /// Fulfils the promise; returns `false` if it was settled already.
    pub fn resolve(&self, value: T) -> bool {
        self.settle(Ok(value))
    }

    /// Rejects the promise; returns `false` if it was settled already.
    pub fn reject(&self, reason: E) -> bool {
        self.settle(Err(reason))
    }

    /// Settles with `result`: `Ok` fulfils, `Err` rejects.
    pub fn settle(&self, result: Result<T, E>) -> bool {
        let mut inner = self.inner.borrow_mut();
        let State::Pending(_) = inner.state else {
            return false;
        };
        let rejected_reason = match (&result, &inner.state) {
            (Err(e), State::Pending(Reactions::None)) => Some(format!("{e:?}")),
            _ => None,
        };
        let State::Pending(reactions) = std::mem::replace(&mut inner.state, State::Settled(result))
        else {
            unreachable!()
        };
        let jobs = Rc::clone(&inner.jobs);
        if let Some(reason) = rejected_reason {
            let handled = Rc::new(Cell::new(false));
            inner.unhandled = Some(Rc::clone(&handled));
            jobs.unhandled
                .borrow_mut()
                .push(Unhandled { handled, reason });
        }
        drop(inner);
        match reactions {
            Reactions::None => {}
            Reactions::One(r) => trigger(&self.inner, &jobs, r),
            Reactions::Many(v) => {
                for r in v {
                    trigger(&self.inner, &jobs, r);
                }
            }
        }
        true
    }

    /// `resolve(otherPromise)`: the promise follows `other`, settling two microtasks after it
    /// (V8's `NewPromiseResolveThenableJob`, then the `then` reaction it adds).
    pub fn follow(&self, other: &Promise<T, E>) {
        let me = self.clone();
        let other = other.clone();
        let jobs = Rc::clone(&self.inner.borrow().jobs);
        jobs.queue(Box::new(move |_lp| {
            other.react(Reaction::Then(Box::new(move |_lp, r| {
                me.settle(r);
            })));
        }));
    }

    /// Whether the promise is still pending.
    pub fn is_pending(&self) -> bool {
        matches!(self.inner.borrow().state, State::Pending(_))
    }
}

/// The future of `promise.await`: one microtask after the promise settles (at once settled:
/// still one microtask, as `await` always yields in JavaScript). Output: the result, cloned.
pub struct Awaiting<T, E> {
    promise: Promise<T, E>,
    registered: bool,
}

impl<T: Clone + 'static, E: Clone + Debug + 'static> IntoFuture for Promise<T, E> {
    type Output = Result<T, E>;
    type IntoFuture = Awaiting<T, E>;

    fn into_future(self) -> Awaiting<T, E> {
        Awaiting {
            promise: self,
            registered: false,
        }
    }
}

/// The future of `(&promise).await`: [`Awaiting`] without taking the promise (JavaScript's
/// `await p` leaves `p` usable; awaiting a reference saves the clone of the `Rc`).
pub struct AwaitingRef<'a, T, E> {
    promise: &'a Promise<T, E>,
    registered: bool,
}

impl<'a, T: Clone + 'static, E: Clone + Debug + 'static> IntoFuture for &'a Promise<T, E> {
    type Output = Result<T, E>;
    type IntoFuture = AwaitingRef<'a, T, E>;

    fn into_future(self) -> AwaitingRef<'a, T, E> {
        AwaitingRef {
            promise: self,
            registered: false,
        }
    }
}

/// First poll, when the fast path of [`poll_await`] does not apply: a pending promise (the task
/// becomes a reaction) or a rejection nobody handled yet (now handled).
#[cold]
#[inline(never)]
fn register<T: Clone + 'static, E: Clone + Debug + 'static>(
    promise: &Promise<T, E>,
    cx: &mut Context<'_>,
) {
    let mut inner = promise.inner.borrow_mut();
    if let State::Settled(_) = inner.state {
        if let Some(flag) = inner.unhandled.take() {
            flag.set(true);
        }
        let woke = inner.jobs.wake_polling(cx.waker());
        drop(inner);
        if !woke {
            cx.waker().wake_by_ref();
        }
        return;
    }
    drop(inner);
    promise.react(Reaction::Wake(cx.waker().clone()));
}

/// The poll of [`Awaiting`] and [`AwaitingRef`]: `registered` is whether an earlier poll
/// queued the resumption (or became a reaction).
#[inline(always)]
fn poll_await<T: Clone + 'static, E: Clone + Debug + 'static>(
    promise: &Promise<T, E>,
    registered: &mut bool,
    cx: &mut Context<'_>,
) -> Poll<Result<T, E>> {
    let inner = promise.inner.borrow();
    if !*registered {
        *registered = true;
        if let (State::Settled(r), None) = (&inner.state, &inner.unhandled) {
            if inner.jobs.continue_in_place(cx.waker()) {
                // Its resumption would be the next microtask: go on now (same order).
                return Poll::Ready(r.clone());
            }
            // Settled: the one reaction job is queued now (fast path of `react`, without
            // cloning the waker; through `Jobs` without calling it if it is the waker of
            // the task being polled).
            let woke = inner.jobs.wake_polling(cx.waker());
            drop(inner);
            if !woke {
                cx.waker().wake_by_ref();
            }
        } else {
            drop(inner);
            register(promise, cx);
        }
        return Poll::Pending;
    }
    match &inner.state {
        State::Settled(r) => Poll::Ready(r.clone()),
        // A wake that was not ours (another future of the same task); ours is still due.
        State::Pending(_) => Poll::Pending,
    }
}

impl<T: Clone + 'static, E: Clone + Debug + 'static> Future for Awaiting<T, E> {
    type Output = Result<T, E>;

    #[inline]
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        poll_await(&this.promise, &mut this.registered, cx)
    }
}

impl<T: Clone + 'static, E: Clone + Debug + 'static> Future for AwaitingRef<'_, T, E> {
    type Output = Result<T, E>;

    #[inline]
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        poll_await(this.promise, &mut this.registered, cx)
    }
}

/// A JavaScript *thenable*: an object with a `then` method that is not a native promise.
/// `await thenable` calls its `then` in a microtask (V8's `NewPromiseResolveThenableJob`), with
/// the resolver of a fresh promise, and resumes one microtask after that promise settles: two
/// microtasks if `then` resolves at once (one more than a native promise).
pub struct Thenable<T, E> {
    then: ThenFn<T, E>,
}

/// A thenable's `then(resolve, reject)`.
type ThenFn<T, E> = Box<dyn FnOnce(&mut Loop, Resolver<T, E>)>;

impl<T: Clone + 'static, E: Clone + Debug + 'static> Thenable<T, E> {
    /// A thenable whose `then(resolve, reject)` is `then`.
    pub fn new(then: impl FnOnce(&mut Loop, Resolver<T, E>) + 'static) -> Self {
        Thenable {
            then: Box::new(then),
        }
    }

    /// `Promise.resolve(thenable)`: a promise that follows the thenable.
    pub fn into_promise(self) -> Promise<T, E> {
        let (p, r) = Promise::pending();
        let then = self.then;
        p.inner.borrow().jobs.queue(Box::new(move |lp| then(lp, r)));
        p
    }
}

impl<T: Clone + 'static, E: Clone + Debug + 'static> IntoFuture for Thenable<T, E> {
    type Output = Result<T, E>;
    type IntoFuture = Awaiting<T, E>;

    fn into_future(self) -> Awaiting<T, E> {
        self.into_promise().into_future()
    }
}

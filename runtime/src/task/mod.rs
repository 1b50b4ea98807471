//! Promises and `async`/`await` on the loop, ordered as Node orders them.
//!
//! The executor is the loop's microtask queue: [`Loop::spawn_task`](crate::Loop::spawn_task) runs an
//! `async` block as a local task (not `Send`), polling it at once (as calling an `async
//! function` runs it up to its first `await`); each time what it awaits completes, the task
//! resumes **in a microtask**, with V8's tick counts (see [`Promise`]). No async runtime crate
//! is involved: wakers are `Arc`-based ([`std::task::Wake`]); a wake on the loop thread queues a
//! microtask at once, a wake from another thread goes through the loop's waker (the one async
//! handles and the thread pool use) and becomes a microtask in the poll phase.
//!
//! - [`Promise`], [`Resolver`], [`Thenable`]: JavaScript promises (callback style with
//!   `then`/`catch`, or awaited).
//! - [`all`], [`race`], [`all_settled`], [`any`]: the `Promise` combinators.
//! - [`sleep`], [`immediate`], [`work`], [`yield_now`]: loop operations to await.
//! - [`tcp_connect`], [`TcpStream`], [`TcpListener`]: TCP connect, accept, read, write and end to
//!   await, with bounded queues.
//! - [`with_loop`], [`next_tick`], [`queue_microtask`], [`spawn`]: what a task, which has no
//!   `&mut Loop`, uses to reach the loop.
//!
//! Read docs/async.md for the mapping from JavaScript and a tick-by-tick trace.

mod awaitables;
mod combinators;
mod executor;
pub(crate) mod jobs;
mod promise;
mod tcp;

pub use awaitables::{immediate, sleep, work, yield_now, Immediate, Sleep, Work, YieldNow};
pub use combinators::{all, all_settled, any, race, AggregateError};
pub use executor::{next_tick, queue_microtask, spawn, with_loop, JoinHandle};
pub use promise::{Awaiting, AwaitingRef, Promise, Resolver, Thenable};
pub use tcp::{
    tcp_connect, Accept, Connect, Read, TcpListener, TcpStream, Write, ACCEPT_QUEUE_BOUND,
    READ_HIGH_WATER_MARK,
};

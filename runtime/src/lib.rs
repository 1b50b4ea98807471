//! oneloop-runtime: oneloop's libuv.
//!
//! A single-threaded event loop on mio with Node's phases (timers, pending, idle/prepare, poll,
//! check, close) and Node's queues (`next_tick`, microtasks, immediates, timers, a thread pool),
//! plus TCP with Node `net` semantics, UDP with Node `dgram` semantics, async handles and typed
//! channels into the loop from other threads, and signals. Start at [`Loop`], and read
//! [`Loop::run_iteration`] for the whole iteration on one screen.
//!
//! ```
//! use oneloop_runtime::Loop;
//! let mut lp = Loop::new()?;
//! lp.set_timeout(0, |_lp| println!("timeout"));
//! lp.set_immediate(|_lp| println!("immediate"));
//! lp.next_tick(|_lp| println!("nextTick"));
//! lp.queue_microtask(|_lp| println!("microtask"));
//! lp.queue_work(|| 6 * 7, |_lp, n| println!("work = {n:?}"))?;
//! lp.run()?;
//! # Ok::<(), std::io::Error>(())
//! ```
#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod async_handle;
mod channel;
pub mod chrome_trace;
mod clock;
pub mod dns;
mod event_loop;
pub mod fs;
mod handle;
mod introspect;
pub mod metrics;
pub mod process;
mod signal;
pub mod task;
pub mod tcp;
mod threadpool;
mod timers;
pub mod tls;
pub mod trace;
mod udp;
mod uncaught;

pub use async_handle::{AsyncClosed, AsyncHandle};
pub use channel::{SendError, Sender};
pub use chrome_trace::ChromeTrace;
pub use clock::Clock;
pub use event_loop::{
    ActiveHandle, BeforeExitId, Loop, LoopHandle, LoopOptions, RunMode, StepReport, Task,
};
pub use handle::{
    AsyncId, Handle, HandleError, ImmediateId, ProcessId, ServerId, SignalId, TcpId, TimerId,
    UdpId, WorkId,
};
pub use hdrhistogram::Histogram;
pub use metrics::{LoopStats, PhaseStats, QueueDepths};
pub use process::{SpawnOptions, StdioMode};
pub use tcp::{DropInfo, ListenOptions, SocketOptions, StreamAddr, TcpError};
pub use threadpool::{WorkError, DEFAULT_POOL_SIZE, MAX_POOL_SIZE};
pub use timers::{TimerDelay, TIMEOUT_MAX_MS};
pub use tls::{TlsClientError, TlsConnectOptions, TlsError, TlsInfo, TlsServerOptions};
pub use trace::{CallbackKind, LoopMetrics, Phase, TraceEvent};
pub use udp::{UdpError, UdpOptions, MAX_DATAGRAMS_PER_EVENT};
pub use uncaught::UncaughtPanic;

//! Tracing and metrics: the loop explaining itself.
//!
//! With a trace sink installed ([`Loop::set_trace`](crate::Loop::set_trace), or
//! `ONELOOP_TRACE=1` for a sink that prints to stderr) the loop reports one [`TraceEvent`] per
//! phase entry and one per callback it runs. Without a sink the cost is one predictable branch
//! per phase and per callback.

use std::fmt;

/// The phases of one loop iteration, in the order they run (libuv's `uv_run`).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
pub enum Phase {
    /// Before the first iteration (the "main module") or between `run` calls.
    Main,
    /// Due timers.
    Timers,
    /// I/O callbacks deferred from the previous iteration.
    Pending,
    /// Idle handles.
    Idle,
    /// Prepare handles.
    Prepare,
    /// Waiting for I/O, then running I/O callbacks and thread-pool completions.
    Poll,
    /// Immediates.
    Check,
    /// Close callbacks.
    Close,
    /// `on_before_exit` callbacks, when the loop ran out of work.
    BeforeExit,
}

impl Phase {
    /// A short lowercase name, as used in traces and docs.
    pub fn name(self) -> &'static str {
        match self {
            Phase::Main => "main",
            Phase::Timers => "timers",
            Phase::Pending => "pending",
            Phase::Idle => "idle",
            Phase::Prepare => "prepare",
            Phase::Poll => "poll",
            Phase::Check => "check",
            Phase::Close => "close",
            Phase::BeforeExit => "before-exit",
        }
    }
}

/// What kind of callback ran.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
pub enum CallbackKind {
    /// A timer or interval.
    Timer,
    /// An immediate.
    Immediate,
    /// A `next_tick` callback.
    NextTick,
    /// A microtask.
    Microtask,
    /// A thread-pool completion (`after`).
    Work,
    /// A signal watcher.
    Signal,
    /// An I/O callback (data, end, drain, connect, connection, error).
    Io,
    /// A deferred (pending-phase) callback.
    Pending,
    /// A close callback.
    Close,
    /// An `on_before_exit` callback.
    BeforeExit,
}

/// Where [`Loop::set_trace`](crate::Loop::set_trace) sends [`TraceEvent`]s.
pub type TraceSink = Box<dyn FnMut(&TraceEvent)>;

/// One thing the loop did.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum TraceEvent {
    /// The loop entered `phase` in iteration `iteration`.
    Phase {
        /// Iteration number, starting at 1 (0 before the first iteration).
        iteration: u64,
        /// The phase entered.
        phase: Phase,
    },
    /// A callback of `kind` ran during `phase`.
    Callback {
        /// Iteration number.
        iteration: u64,
        /// The phase it ran in.
        phase: Phase,
        /// What ran.
        kind: CallbackKind,
    },
}

impl fmt::Display for TraceEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TraceEvent::Phase { iteration, phase } => {
                write!(f, "[oneloop] iter={iteration} phase={}", phase.name())
            }
            TraceEvent::Callback {
                iteration,
                phase,
                kind,
            } => write!(
                f,
                "[oneloop] iter={iteration} phase={}   callback={kind:?}",
                phase.name()
            ),
        }
    }
}

/// Counters the loop keeps at all times (they cost an add each).
///
/// `idle_time` follows libuv's `uv_metrics_idle_time`: time spent blocked in the poll phase's
/// wait. Node's `performance.eventLoopUtilization()` is `1 - idle / elapsed`, available here as
/// [`LoopMetrics::utilization`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LoopMetrics {
    /// Iterations started (libuv's `loop_count`).
    pub iterations: u64,
    /// I/O events delivered by the poller (libuv's `events`).
    pub events: u64,
    /// Callbacks run, of every kind.
    pub callbacks: u64,
    /// Nanoseconds spent waiting in poll.
    pub idle_ns: u64,
    /// Nanoseconds since the loop was created, when these metrics were read.
    pub elapsed_ns: u64,
}

impl LoopMetrics {
    /// Event-loop utilisation between `earlier` (or the loop's creation) and `self`, in `0..=1`:
    /// the share of wall time not spent idle in poll.
    pub fn utilization(&self, earlier: Option<&LoopMetrics>) -> f64 {
        let (idle, elapsed) = match earlier {
            Some(e) => (
                self.idle_ns.saturating_sub(e.idle_ns),
                self.elapsed_ns.saturating_sub(e.elapsed_ns),
            ),
            None => (self.idle_ns, self.elapsed_ns),
        };
        if elapsed == 0 {
            return 0.0;
        }
        (1.0 - idle as f64 / elapsed as f64).clamp(0.0, 1.0)
    }
}

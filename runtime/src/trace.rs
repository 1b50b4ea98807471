//! Tracing and metrics: the loop explaining itself.
//!
//! With a trace sink installed ([`Loop::set_trace`](crate::Loop::set_trace), or
//! `ONELOOP_TRACE=1` for a sink that prints to stderr) the loop reports one [`TraceEvent`] per
//! phase entry and one per callback it runs. Without a sink the cost is one predictable branch
//! per phase and per callback.
//!
//! Every way of watching the loop (a [`TraceSink`], a [`ChromeTrace`], metrics, a
//! [`Loop::step`](crate::Loop::step) in progress) lives in one boxed `Observer`, absent when
//! nothing watches: the hot path pays the same single branch however many are installed.

use std::fmt;
use std::time::Instant;

use crate::chrome_trace::ChromeTrace;
use crate::metrics::{LoopStats, QueueDepths};

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
    /// The phases of one iteration, in the order
    /// [`Loop::run_iteration`](crate::Loop::run_iteration) runs them.
    /// Timers come last, as in libuv >= 1.45 (`uv_run` runs them after the close phase, before it
    /// decides whether the loop is still alive); `run` also runs them once before the first
    /// iteration.
    pub const ITERATION: [Phase; 7] = [
        Phase::Pending,
        Phase::Idle,
        Phase::Prepare,
        Phase::Poll,
        Phase::Check,
        Phase::Close,
        Phase::Timers,
    ];

    /// Every phase, `Main` and `BeforeExit` included.
    pub const ALL: [Phase; 9] = [
        Phase::Main,
        Phase::Timers,
        Phase::Pending,
        Phase::Idle,
        Phase::Prepare,
        Phase::Poll,
        Phase::Check,
        Phase::Close,
        Phase::BeforeExit,
    ];

    pub(crate) const COUNT: usize = 9;

    pub(crate) fn index(self) -> usize {
        self as usize
    }

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
    /// An async handle's callback, or one channel message (poll phase).
    Async,
    /// A child process's `on_exit` (run when SIGCHLD reaps it).
    Process,
}

impl CallbackKind {
    pub(crate) const COUNT: usize = 12;

    pub(crate) fn index(self) -> usize {
        self as usize
    }

    /// A short lowercase name, as used in Chrome traces.
    pub fn name(self) -> &'static str {
        match self {
            CallbackKind::Timer => "timer",
            CallbackKind::Immediate => "immediate",
            CallbackKind::NextTick => "next-tick",
            CallbackKind::Microtask => "microtask",
            CallbackKind::Work => "work",
            CallbackKind::Signal => "signal",
            CallbackKind::Io => "io",
            CallbackKind::Pending => "pending",
            CallbackKind::Close => "close",
            CallbackKind::BeforeExit => "before-exit",
            CallbackKind::Async => "async",
            CallbackKind::Process => "process",
        }
    }
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

/// Everything watching one loop. The loop holds it as `Option<Box<Observer>>` and drops it when
/// every part is off, so an unobserved loop pays one branch per phase and per callback.
pub(crate) struct Observer {
    /// Time zero for timestamps: the loop's creation.
    base: Instant,
    pub(crate) sink: Option<TraceSink>,
    pub(crate) chrome: Option<ChromeTrace>,
    pub(crate) stats: Option<Box<LoopStats>>,
    /// Callbacks run during the current [`Loop::step`](crate::Loop::step).
    pub(crate) step_log: Option<Vec<CallbackKind>>,
}

impl Observer {
    pub(crate) fn new(base: Instant) -> Observer {
        Observer {
            base,
            sink: None,
            chrome: None,
            stats: None,
            step_log: None,
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.sink.is_none()
            && self.chrome.is_none()
            && self.stats.is_none()
            && self.step_log.is_none()
    }

    /// Whether any part needs timestamps or queue depths.
    pub(crate) fn timed(&self) -> bool {
        self.chrome.is_some() || self.stats.is_some()
    }

    pub(crate) fn now(&self) -> u64 {
        self.base.elapsed().as_nanos() as u64
    }

    pub(crate) fn ns_of(&self, t: Instant) -> u64 {
        t.saturating_duration_since(self.base).as_nanos() as u64
    }

    pub(crate) fn iteration_begin(&mut self, iteration: u64, depths: QueueDepths) {
        let now = self.now();
        if let Some(c) = self.chrome.as_mut() {
            c.iteration_begin(now, iteration);
            if self.stats.is_some() {
                c.queues(now, depths);
            }
        }
        if let Some(s) = self.stats.as_mut() {
            s.iteration_begin(now, depths);
        }
    }

    pub(crate) fn iteration_end(&mut self) {
        if self.timed() {
            let now = self.now();
            if let Some(c) = self.chrome.as_mut() {
                c.iteration_end(now);
            }
            if let Some(s) = self.stats.as_mut() {
                s.close(now);
            }
        }
    }

    pub(crate) fn phase(&mut self, iteration: u64, phase: Phase) {
        if let Some(sink) = self.sink.as_mut() {
            sink(&TraceEvent::Phase { iteration, phase });
        }
        if self.timed() {
            let now = self.now();
            if let Some(c) = self.chrome.as_mut() {
                c.phase(now, iteration, phase);
            }
            if let Some(s) = self.stats.as_mut() {
                s.enter(now, phase);
            }
        }
    }

    /// A callback of `kind` starts; `late_ns` is a timer's lateness.
    pub(crate) fn callback(
        &mut self,
        iteration: u64,
        phase: Phase,
        kind: CallbackKind,
        late_ns: Option<u64>,
    ) {
        if let Some(sink) = self.sink.as_mut() {
            sink(&TraceEvent::Callback {
                iteration,
                phase,
                kind,
            });
        }
        if let Some(log) = self.step_log.as_mut() {
            log.push(kind);
        }
        // The clock is read only when something uses the time: the Chrome trace stamps every
        // callback, the stats only the first of a phase they did not see entered (a callback
        // in an open phase is just counted: no clock read per callback with metrics on).
        let stats_enter = self.stats.as_ref().is_some_and(|s| !s.in_phase(phase));
        if self.chrome.is_some() || stats_enter {
            let now = self.now();
            if let Some(c) = self.chrome.as_mut() {
                c.callback(now, iteration, phase, kind);
            }
            if stats_enter {
                if let Some(s) = self.stats.as_mut() {
                    s.enter(now, phase);
                }
            }
        }
        if let Some(s) = self.stats.as_mut() {
            s.callback(phase, kind);
            if let Some(late) = late_ns {
                s.timer_late(late);
            }
        }
    }

    pub(crate) fn poll_wait(&mut self, iteration: u64, start: Instant, end: Instant) {
        if self.timed() {
            let (start, end) = (self.ns_of(start), self.ns_of(end));
            if let Some(c) = self.chrome.as_mut() {
                c.wait(start, end, iteration);
            }
            if let Some(s) = self.stats.as_mut() {
                s.poll_wait(start, end);
            }
        }
    }
}

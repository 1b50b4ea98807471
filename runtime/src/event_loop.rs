//! The event loop: Node's phases and queues on a hand-written mio reactor.
//!
//! Read [`Loop::run_iteration`] first: it is the whole iteration, one call per phase, in libuv's
//! order. Everything else in this file is one phase, one queue, or one rule
//! ([`Loop::poll_timeout`], [`Loop::is_alive`]).

use std::any::Any;
use std::cell::RefCell;
use std::collections::VecDeque;
use std::io;
use std::panic::Location;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::{Events, Interest, Poll, Token, Waker};

use crate::async_handle::Asyncs;
use crate::clock::{self, Clock};
use crate::handle::{GenSlab, Handle, HandleError, ImmediateId, SignalId, TimerId, WorkId};
use crate::metrics::QueueDepths;
use crate::signal::Signals;
use crate::task::jobs::Jobs;
use crate::tcp::Net;
use crate::threadpool::{self, AnyResult, Done, ThreadPool, WorkError};
use crate::timers::{Timer, TimerCallback, TimerDelay, TimerHeap, TimerKind};
use crate::trace::{CallbackKind, LoopMetrics, Observer, Phase, TraceEvent, TraceSink};
use crate::uncaught::{HeldQueues, HookSlot};

/// Token of the loop's one `mio::Waker`, shared by the thread pool and every async handle.
pub(crate) const WAKER_TOKEN: Token = Token(usize::MAX - 1);
/// Token of the signal pipe.
pub(crate) const SIGNAL_TOKEN: Token = Token(usize::MAX - 2);

/// How many events one poll call may return (libuv's epoll batch size).
const EVENTS_CAPACITY: usize = 1024;

/// A one-shot callback on the loop: next-tick, microtask, immediate, pending and close callbacks.
pub type Task = Box<dyn FnOnce(&mut Loop)>;
type WorkDone = Box<dyn FnOnce(&mut Loop, AnyResult)>;
pub(crate) type SignalCallback = Box<dyn FnMut(&mut Loop, i32)>;

/// A `'beforeExit'` listener's callback: every emit, or the first one only.
enum BeforeExitCallback {
    Every(Box<dyn FnMut(&mut Loop)>),
    Once(Box<dyn FnOnce(&mut Loop)>),
}

/// A registered `'beforeExit'` listener; `callback` is `None` while an emit runs it.
struct BeforeExitListener {
    id: u64,
    callback: Option<BeforeExitCallback>,
}

/// A `'beforeExit'` listener from [`Loop::on_before_exit`] or [`Loop::once_before_exit`], for
/// [`Loop::remove_before_exit`]. Ids are never reused.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct BeforeExitId(u64);

/// How [`Loop::run_mode`] runs.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum RunMode {
    /// Until nothing ref'd is alive or [`Loop::stop`] is called (`UV_RUN_DEFAULT`).
    Default,
    /// One iteration, blocking in poll if there is nothing else to do (`UV_RUN_ONCE`).
    Once,
    /// One iteration that never blocks (`UV_RUN_NOWAIT`).
    NoWait,
}

/// Settings fixed when a loop is created.
#[derive(Clone, Debug)]
pub struct LoopOptions {
    /// Worker threads for [`Loop::queue_work`]: 1..=1024, default 4 or `ONELOOP_THREADPOOL_SIZE`.
    pub threadpool_size: usize,
    /// Print a trace line per phase and callback to stderr (default: `ONELOOP_TRACE=1`).
    pub trace_to_stderr: bool,
    /// Real or virtual time (default real); see [`Clock`].
    pub clock: Clock,
}

impl Default for LoopOptions {
    fn default() -> Self {
        LoopOptions {
            threadpool_size: threadpool::size_from_env(),
            trace_to_stderr: std::env::var("ONELOOP_TRACE").is_ok_and(|v| v == "1"),
            clock: Clock::Real,
        }
    }
}

/// A queued immediate; `callback` is `None` once cleared (it stays queued until the check
/// phase pops it, so the ids of those behind it keep their positions).
pub(crate) struct Immediate {
    pub(crate) callback: Option<Task>,
    pub(crate) refed: bool,
    pub(crate) created_at: &'static Location<'static>,
}

pub(crate) struct WorkRequest {
    after: Option<WorkDone>,
    pub(crate) created_at: &'static Location<'static>,
}

pub(crate) struct SignalWatcher {
    pub(crate) signum: i32,
    pub(crate) callback: Option<SignalCallback>,
    pub(crate) refed: bool,
    pub(crate) created_at: &'static Location<'static>,
}

/// What one [`Loop::step`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StepReport {
    /// The iteration the phase belongs to (0 for the main-module drain before the first).
    pub iteration: u64,
    /// The phase that ran: one of [`Phase::ITERATION`], or `Main` (ticks and microtasks queued
    /// outside the loop) or `BeforeExit`.
    pub phase: Phase,
    /// The callbacks it ran, in order, next-tick and microtask drains included.
    pub callbacks: Vec<CallbackKind>,
}

/// A handle that keeps the loop alive, as reported by [`Loop::active_handles`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ActiveHandle {
    /// "timer", "interval", "immediate", "signal", "tcp", "server", "pipe", "pipe_server",
    /// "udp", "async", "channel", "process", "work" or "closing".
    pub kind: &'static str,
    /// Where it was created, when known (`file:line`).
    pub created_at: Option<String>,
}

/// A cloneable handle, usable only on the loop's thread, that queues `next_tick` callbacks without
/// holding `&mut Loop` (for objects such as an HTTP response that may be finished from any later
/// callback). The tick runs when the current callback returns, like [`Loop::next_tick`].
#[derive(Clone)]
pub struct LoopHandle {
    ticks: Rc<RefCell<VecDeque<Task>>>,
}

impl LoopHandle {
    /// Queues `callback` on the loop's `next_tick` queue.
    pub fn next_tick(&self, callback: impl FnOnce(&mut Loop) + 'static) {
        self.ticks.borrow_mut().push_back(Box::new(callback));
    }

    /// Arms a timer from the next tick (see [`Loop::set_timeout`]); for code that holds a
    /// handle but not the loop, such as an app-layer handler.
    #[track_caller]
    pub fn set_timeout(
        &self,
        delay: impl TimerDelay + 'static,
        callback: impl FnOnce(&mut Loop) + 'static,
    ) {
        let at = Location::caller();
        self.next_tick(move |lp| {
            let callback = TimerCallback::Once(Box::new(callback));
            lp.start_timer(delay.to_delay_ms(), TimerKind::Once, callback, at);
        });
    }

    /// Queues thread-pool work from the next tick (see [`Loop::queue_work`]). If the pool
    /// cannot start, `after` receives `Err(WorkError::Panicked(..))` with the OS error.
    #[track_caller]
    pub fn queue_work<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
        after: impl FnOnce(&mut Loop, Result<T, WorkError>) + 'static,
    ) {
        let at = Location::caller();
        self.next_tick(move |lp| {
            let after = std::rc::Rc::new(std::cell::RefCell::new(Some(after)));
            let on_done = std::rc::Rc::clone(&after);
            let queued = lp.queue_work_at(at, work, move |lp, r| {
                if let Some(after) = on_done.borrow_mut().take() {
                    after(lp, r)
                }
            });
            if let Err(e) = queued {
                if let Some(after) = after.borrow_mut().take() {
                    after(lp, Err(WorkError::Panicked(format!("thread pool: {e}"))));
                }
            }
        });
    }
}

/// A single-threaded event loop with Node's phases and queues.
///
/// # Guarantees
/// - One iteration runs the phases in libuv >= 1.45's order: pending, idle, prepare, poll,
///   check, close, timers ([`Loop::run_iteration`]); `run` also runs due timers once before the
///   first iteration.
/// - After **every** callback the loop drains the `next_tick` queue, then the microtask queue,
///   repeating until both are empty (Node >= 11).
/// - Timers due at the same millisecond run in the order they were armed; a timer that becomes
///   due while timers run waits for the next iteration.
/// - Immediates queued during the check phase run in the next iteration.
/// - `run` returns when no ref'd handle, no pending thread-pool request and no closing handle
///   remains, after giving `on_before_exit` callbacks a chance to add work.
///
/// # Pitfalls
/// - Callbacks run on the loop thread: a callback that blocks (sleeps, loops, does blocking I/O)
///   stalls every other callback. Move such work to [`Loop::queue_work`].
/// - Ids are generation-checked: using an id after its object is gone returns
///   [`HandleError::Stale`]. A [`Loop::set_timeout`] timer's id is stale once it has fired;
///   a [`Loop::set_timeout_mut`] timer's stays valid (refreshable) until it is cleared.
pub struct Loop {
    pub(crate) poll: Poll,
    events: Option<Events>,
    pub(crate) started: Instant,
    /// `clock::monotonic_ns()` at `started` (the loop's time origin on a real clock).
    started_ns: u64,
    /// The cached loop time in ms since `started` (libuv's `uv_now`).
    now_ms: u64,
    /// `Some(ns since start)` on a virtual clock; `None` reads `started.elapsed()`.
    pub(crate) virtual_ns: Option<u64>,
    /// Index into [`Phase::ITERATION`] of the next phase to run; 0 between iterations (not 0
    /// only while [`Loop::step`] has stopped mid-iteration).
    cursor: usize,
    /// Whether `step` already ran before-exit callbacks since the loop last had work.
    step_exit_done: bool,
    /// Set by `run`'s pre-loop timers pass, which opens the iteration `run_iteration` finishes.
    iteration_begun: bool,
    stop_flag: bool,
    phase: Phase,

    pub(crate) timers: GenSlab<Timer>,
    pub(crate) timer_heap: TimerHeap,

    /// Queued immediates in order, a ring buffer (arming writes at the back, the check phase
    /// reads from the front): the id of `immediates[i]` is `immediate_base + i`.
    pub(crate) immediates: VecDeque<Immediate>,
    /// The id of `immediates[0]`: the number of immediates ever popped.
    immediate_base: u64,
    pub(crate) refed_immediates: usize,

    /// Shared with [`LoopHandle`]s so code without `&mut Loop` can queue a tick.
    pub(crate) ticks: Rc<RefCell<VecDeque<Task>>>,
    /// The batch of ticks being run (empty between drains; keeps its capacity).
    tick_batch: VecDeque<Task>,
    /// The microtask queue, the task slab and what tasks and promises share with the loop
    /// (an `Rc`: a promise settled without `&mut Loop` queues its reactions at once).
    pub(crate) jobs: Rc<Jobs>,
    pending: VecDeque<Task>,
    pub(crate) closing: Vec<Task>,
    before_exit: Vec<BeforeExitListener>,
    next_before_exit_id: u64,

    pub(crate) work: GenSlab<WorkRequest>,
    pool: ThreadPool,
    done_buf: Vec<Done>,

    pub(crate) signals: Option<Signals>,
    pub(crate) signal_watchers: GenSlab<SignalWatcher>,

    pub(crate) net: Net,
    /// Async handles and channels; its hub owns the waker the pool also wakes through.
    pub(crate) asyncs: Asyncs,
    pub(crate) processes: crate::process::Processes,

    /// Ref'd active handles: timers, signals, sockets, servers (immediates are counted in
    /// `refed_immediates` alone: one counter to touch per immediate, not two).
    pub(crate) refs: usize,
    metrics: LoopMetrics,
    /// Trace sink, Chrome trace, metrics, step log: `None` while nothing watches.
    pub(crate) observer: Option<Box<Observer>>,
    /// [`Loop::on_uncaught_panic`]'s hook; every callback goes through [`Loop::invoke`].
    pub(crate) uncaught_panic: HookSlot,
    /// What a timer or immediate that panicked queued, held back until the next callback of its
    /// phase ran or the phase ends (Node's order; see `uncaught.rs`). `None` except right after
    /// such a panic.
    pub(crate) held_after_panic: Option<Box<HeldQueues>>,
}

impl Loop {
    /// A loop with default options (pool size from `ONELOOP_THREADPOOL_SIZE`, trace from
    /// `ONELOOP_TRACE`).
    ///
    /// ```
    /// use oneloop_runtime::Loop;
    /// let mut lp = Loop::new()?;
    /// lp.set_timeout(0, |_lp| println!("timeout"));
    /// lp.run()?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn new() -> io::Result<Loop> {
        Loop::with_options(LoopOptions::default())
    }

    /// A loop with explicit options.
    pub fn with_options(options: LoopOptions) -> io::Result<Loop> {
        let poll = Poll::new()?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER_TOKEN)?);
        let asyncs = Asyncs::new(waker);
        let pool = ThreadPool::new(options.threadpool_size, Arc::clone(&asyncs.hub));
        let ticks = Rc::new(RefCell::new(VecDeque::new()));
        let jobs = Jobs::new(Rc::clone(&ticks), Arc::clone(&asyncs.hub));
        let mut lp = Loop {
            poll,
            events: Some(Events::with_capacity(EVENTS_CAPACITY)),
            started: Instant::now(),
            started_ns: clock::monotonic_ns(),
            now_ms: 0,
            virtual_ns: (options.clock == Clock::Virtual).then_some(0),
            cursor: 0,
            step_exit_done: false,
            iteration_begun: false,
            stop_flag: false,
            phase: Phase::Main,
            timers: GenSlab::default(),
            timer_heap: TimerHeap::default(),
            immediates: VecDeque::new(),
            immediate_base: 0,
            refed_immediates: 0,
            ticks,
            tick_batch: VecDeque::new(),
            jobs,
            pending: VecDeque::new(),
            closing: Vec::new(),
            before_exit: Vec::new(),
            next_before_exit_id: 0,
            work: GenSlab::default(),
            pool,
            done_buf: Vec::new(),
            signals: None,
            signal_watchers: GenSlab::default(),
            processes: Default::default(),
            net: Net::default(),
            asyncs,
            refs: 0,
            metrics: LoopMetrics::default(),
            observer: None,
            uncaught_panic: HookSlot::Unset,
            held_after_panic: None,
        };
        if options.trace_to_stderr {
            lp.set_trace(Some(Box::new(|ev: &TraceEvent| eprintln!("{ev}"))));
        }
        Ok(lp)
    }

    // ---------------------------------------------------------------------------------------
    // Running
    // ---------------------------------------------------------------------------------------

    /// Runs until nothing ref'd is alive (or [`Loop::stop`]). Drains `next_tick` and microtasks
    /// queued before the call first, as Node does after the main module.
    pub fn run(&mut self) -> io::Result<()> {
        self.run_mode(RunMode::Default).map(|_| ())
    }

    /// Runs one iteration, blocking in poll if needed. Returns whether the loop is still alive.
    pub fn run_once(&mut self) -> io::Result<bool> {
        self.run_mode(RunMode::Once)
    }

    /// Runs one iteration without blocking. Returns whether the loop is still alive.
    pub fn run_nowait(&mut self) -> io::Result<bool> {
        self.run_mode(RunMode::NoWait)
    }

    /// Runs the loop in `mode`; returns whether it is still alive (libuv's `uv_run` result).
    pub fn run_mode(&mut self, mode: RunMode) -> io::Result<bool> {
        self.phase = Phase::Main;
        self.drain_ticks_and_microtasks();
        loop {
            let mut alive = self.is_alive();
            // libuv runs due timers once before its loop in DEFAULT mode ("for backwards
            // compatibility"); after that, timers run at the tail of each iteration. This pass
            // opens iteration 1 (or the first iteration after a before-exit restart).
            if mode == RunMode::Default && alive && !self.stop_flag && self.cursor == 0 {
                self.begin_iteration();
                self.update_time();
                self.iteration_begun = true;
                self.run_timers();
            }
            while alive && !self.stop_flag {
                self.run_iteration(mode)?;
                // Decided after the tail timers ran: an unref'd timer due when the last ref'd
                // work finished has already fired.
                alive = self.is_alive();
                if mode != RunMode::Default {
                    break;
                }
            }
            if self.stop_flag || mode != RunMode::Default {
                break;
            }
            // Out of work: Node's 'beforeExit'. New work it schedules restarts the loop.
            if !self.run_before_exit() || !self.is_alive() {
                break;
            }
        }
        self.stop_flag = false;
        self.phase = Phase::Main;
        Ok(self.is_alive())
    }

    /// One turn of the loop: every phase of [`Phase::ITERATION`] in order (libuv >= 1.45's
    /// `uv_run`; see docs/event-loop.md and [`Loop::run_phase`] for what each does). Timers run
    /// at the tail, after the close phase and before the caller asks [`Loop::is_alive`], so a
    /// timer (ref'd or not) that is due when the last ref'd work finishes still fires.
    ///
    /// If [`Loop::step`] stopped in the middle of an iteration, this finishes that iteration.
    pub fn run_iteration(&mut self, mode: RunMode) -> io::Result<()> {
        if self.cursor != 0 {
            return self.finish_stepped_iteration(mode);
        }
        // `Phase::ITERATION` written out, as `uv_run` is: a straight run of calls the compiler
        // inlines, with no per-phase dispatch (measured: walking the list through `run_phase`
        // cost ~30% more instructions per empty iteration, out-of-line phase calls included).
        // `tests::run_iteration_enters_the_phases_of_phase_iteration` keeps the two in step.
        if !std::mem::take(&mut self.iteration_begun) {
            self.begin_iteration(); // count it
        }
        self.run_pending(); // I/O callbacks deferred by the last iteration
        self.run_idle();
        self.run_prepare();
        self.run_poll(mode)?; // wait, then I/O callbacks and thread-pool completions
        self.run_check(); // immediates queued before this phase began
        self.run_closing(); // close callbacks
        self.update_time();
        self.run_timers(); // due timers (libuv >= 1.45: at the tail, before the alive check)
        self.end_iteration();
        Ok(())
    }

    /// The rest of an iteration [`Loop::step`] began: the phases after `cursor`, one by one.
    #[cold]
    fn finish_stepped_iteration(&mut self, mode: RunMode) -> io::Result<()> {
        while let Some(&phase) = Phase::ITERATION.get(self.cursor) {
            self.cursor += 1;
            self.run_phase(phase, mode)?;
        }
        self.end_iteration();
        Ok(())
    }

    /// Runs one phase: what each phase does, for [`Loop::step`] (and an iteration steps began);
    /// [`Loop::run_iteration`] calls the same functions in [`Phase::ITERATION`] order.
    fn run_phase(&mut self, phase: Phase, mode: RunMode) -> io::Result<()> {
        match phase {
            Phase::Timers => {
                self.update_time();
                self.run_timers(); // due timers, at the tail of the iteration
            }
            Phase::Pending => self.run_pending(), // I/O callbacks deferred by the last iteration
            Phase::Idle => self.run_idle(),
            Phase::Prepare => self.run_prepare(),
            Phase::Poll => self.run_poll(mode)?, // wait, then I/O callbacks and completions
            Phase::Check => self.run_check(),    // immediates queued before this phase began
            Phase::Close => self.run_closing(),  // close callbacks
            Phase::Main => {
                self.phase = Phase::Main;
                self.drain_ticks_and_microtasks(); // ticks and microtasks queued outside the loop
            }
            Phase::BeforeExit => {
                self.run_before_exit();
            }
        }
        Ok(())
    }

    /// The poll phase: never blocks in `NoWait` mode, else waits [`Loop::poll_timeout`].
    #[inline(always)]
    fn run_poll(&mut self, mode: RunMode) -> io::Result<()> {
        if self.virtual_ns.is_some() {
            // Time moved by `advance` since the last timers phase counts before the jump to the
            // next deadline (free on a virtual clock: no clock read).
            self.update_time();
        }
        let timeout = match mode {
            RunMode::NoWait => Some(Duration::ZERO),
            _ => self.poll_timeout(),
        };
        self.poll_io(timeout)
    }

    #[inline(always)] // one copy in `run_iteration`, one in the cold `run_phase`
    fn begin_iteration(&mut self) {
        self.metrics.iterations += 1;
        self.step_exit_done = false;
        // No clock read here: as in libuv, the cached time is refreshed by poll (after a wait)
        // and right before the timers phase; a third read per iteration cost ~15 ns (half an
        // empty iteration).
        if self.observer.is_some() {
            let depths = self.queue_depths_if_timed();
            if let Some(obs) = self.observer.as_deref_mut() {
                obs.iteration_begin(self.metrics.iterations, depths);
            }
        }
    }

    #[inline(always)] // one copy in `run_iteration`, one in the cold `run_phase`
    fn end_iteration(&mut self) {
        self.cursor = 0;
        if let Some(obs) = self.observer.as_deref_mut() {
            obs.iteration_end();
        }
    }

    /// Runs the next phase and reports what ran, for teaching and for tests. Between
    /// iterations it first runs a `Main` step if ticks or microtasks were queued outside the
    /// loop, then starts an iteration (`Timers`) if the loop is alive, or else runs the
    /// before-exit callbacks once (`BeforeExit`). Returns `None` once the loop is done. Poll
    /// blocks as in [`Loop::run_once`] (not at all on a virtual clock with only timers left).
    ///
    /// `step` and `run*` can be mixed: `run_once` after a few steps finishes the iteration the
    /// steps began.
    ///
    /// ```
    /// use oneloop_runtime::{CallbackKind, Loop, Phase};
    /// let mut lp = Loop::with_virtual_clock()?;
    /// lp.set_immediate(|lp| lp.next_tick(|_| {}));
    /// let mut check = None;
    /// while let Some(step) = lp.step()? {
    ///     if step.phase == Phase::Check {
    ///         check = Some(step.callbacks);
    ///     }
    /// }
    /// assert_eq!(check, Some(vec![CallbackKind::Immediate, CallbackKind::NextTick]));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn step(&mut self) -> io::Result<Option<StepReport>> {
        let phase = if self.cursor > 0 {
            Phase::ITERATION[self.cursor]
        } else if !self.ticks.borrow().is_empty() || !self.jobs.microtasks.borrow().is_empty() {
            Phase::Main
        } else if self.is_alive() && !self.stop_flag {
            self.begin_iteration();
            Phase::ITERATION[0]
        } else if !self.step_exit_done && !self.before_exit.is_empty() {
            self.step_exit_done = true;
            Phase::BeforeExit
        } else {
            self.stop_flag = false;
            return Ok(None);
        };
        let iteration = self.metrics.iterations;
        self.observer_mut().step_log = Some(Vec::new());
        if Phase::ITERATION.contains(&phase) {
            self.cursor += 1;
        }
        let ran = self.run_phase(phase, RunMode::Once);
        let callbacks = self
            .observer
            .as_deref_mut()
            .and_then(|o| o.step_log.take())
            .unwrap_or_default();
        self.drop_observer_if_idle();
        if self.cursor == Phase::ITERATION.len() {
            self.end_iteration();
        }
        ran?;
        Ok(Some(StepReport {
            iteration,
            phase,
            callbacks,
        }))
    }

    /// Asks the loop to return from `run` after the current iteration. The next `run` starts
    /// fresh (libuv clears `stop_flag` on return).
    pub fn stop(&mut self) {
        self.stop_flag = true;
    }

    /// Whether anything keeps the loop running: a ref'd handle, a pending thread-pool request,
    /// or a closing handle (libuv's `uv__loop_alive`).
    pub fn is_alive(&self) -> bool {
        self.refs > 0
            || self.refed_immediates > 0
            || self.work.len() > 0
            || !self.closing.is_empty()
    }

    /// How long the poll phase may block (libuv's `uv__backend_timeout`): zero when the loop was
    /// stopped, or immediates, pending callbacks or closing handles exist, or nothing is alive;
    /// else until the nearest timer; else `None` (block until I/O).
    pub fn poll_timeout(&self) -> Option<Duration> {
        if self.stop_flag
            || !self.is_alive()
            || self.refed_immediates > 0
            || !self.pending.is_empty()
            || !self.closing.is_empty()
        {
            return Some(Duration::ZERO);
        }
        self.next_timer_due()
            .map(|due| Duration::from_millis(due.saturating_sub(self.now_ms)))
    }

    fn next_timer_due(&self) -> Option<u64> {
        // The heap may start with stale entries; they only make the wait shorter (a spurious
        // wake-up), never longer.
        self.timer_heap.next_expiry()
    }

    // ---------------------------------------------------------------------------------------
    // Time
    // ---------------------------------------------------------------------------------------

    /// The cached loop time in milliseconds (libuv's `uv_now`): refreshed after poll waits,
    /// right before each timers phase, and when a timer is armed; not while callbacks run.
    pub fn now(&self) -> u64 {
        self.now_ms
    }

    /// Refreshes the cached loop time (libuv's `uv_update_time`).
    pub fn update_time(&mut self) {
        self.now_ms = match self.virtual_ns {
            // Never below the last value: `started_ns` was read just after `started`.
            None => clock::monotonic_ns().saturating_sub(self.started_ns) / 1_000_000,
            Some(ns) => ns / 1_000_000,
        };
    }

    /// A monotonic clock in nanoseconds (libuv's `uv_hrtime`), never cached. On a virtual
    /// clock, the virtual time.
    pub fn hrtime(&self) -> u64 {
        match self.virtual_ns {
            None => clock::monotonic_ns().saturating_sub(self.started_ns),
            Some(ns) => ns,
        }
    }

    /// A loop on a virtual clock (see [`Clock::Virtual`]): timers fire in the same order as on
    /// a real clock, but waiting for them takes no real time.
    ///
    /// ```
    /// use oneloop_runtime::Loop;
    /// let mut lp = Loop::with_virtual_clock()?;
    /// lp.set_timeout(3_600_000, |lp| assert_eq!(lp.now(), 3_600_000));
    /// lp.run()?; // returns at once
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn with_virtual_clock() -> io::Result<Loop> {
        Loop::with_options(LoopOptions {
            clock: Clock::Virtual,
            ..LoopOptions::default()
        })
    }

    /// Which clock this loop reads.
    pub fn clock(&self) -> Clock {
        match self.virtual_ns {
            None => Clock::Real,
            Some(_) => Clock::Virtual,
        }
    }

    /// Moves a virtual clock forward by `d`, as if a callback had been busy that long (call it
    /// from a callback) or time had passed between runs (call it between `run_once`s; the next
    /// iteration runs what became due). The cached [`Loop::now`] catches up at the next
    /// iteration or timer arm, as after real time passes. Returns `false`, and does nothing, on
    /// a real clock.
    pub fn advance(&mut self, d: Duration) -> bool {
        match self.virtual_ns.as_mut() {
            Some(ns) => {
                *ns = ns.saturating_add(d.as_nanos() as u64);
                true
            }
            None => false,
        }
    }

    // ---------------------------------------------------------------------------------------
    // Timers phase
    // ---------------------------------------------------------------------------------------

    /// Calls `callback` once, `delay` ms from now (Node's `setTimeout`).
    /// The delay is coerced as Node does: see [`TimerDelay`].
    ///
    /// Arming refreshes the cached loop time first, as Node's `getLibuvNow()` does: a timer
    /// armed after a callback blocked for a while counts its delay from the real time, so it
    /// never fires before a timer armed earlier with a deadline that is really earlier.
    #[track_caller]
    pub fn set_timeout(
        &mut self,
        delay: impl TimerDelay,
        callback: impl FnOnce(&mut Loop) + 'static,
    ) -> TimerId {
        self.start_timer(
            delay.to_delay_ms(),
            TimerKind::Once,
            TimerCallback::Once(Box::new(callback)),
            Location::caller(),
        )
    }

    /// Calls `callback` once, `delay` ms from now, like [`Loop::set_timeout`], but keeps the
    /// timer after it fired, as Node keeps a `Timeout` object: [`Loop::refresh_timer`] (inside
    /// its own callback or any time later) re-arms it, and the same callback runs again;
    /// [`Loop::has_ref`], [`Loop::ref_`], [`Loop::unref`] stay valid, and [`Loop::clear_timeout`]
    /// on it is a no-op for the loop that also frees its slot.
    ///
    /// # Memory
    /// A fired timer holds its slot (64 bytes plus its callback) until `clear_timeout`, as an
    /// interval does: a program arming such timers without end must clear them. (Node frees a
    /// fired `Timeout` when the garbage collector finds no reference; a `Copy` id cannot say
    /// that.) Use [`Loop::set_timeout`] for fire-and-forget timers: its slot is freed on firing.
    #[track_caller]
    pub fn set_timeout_mut(
        &mut self,
        delay: impl TimerDelay,
        callback: impl FnMut(&mut Loop) + 'static,
    ) -> TimerId {
        self.start_timer(
            delay.to_delay_ms(),
            TimerKind::Refreshable,
            TimerCallback::Mut(Box::new(callback)),
            Location::caller(),
        )
    }

    /// Calls `callback` every `delay` ms (Node's `setInterval`).
    ///
    /// The next run is armed after the callback returns, `delay` ms from the time the callback
    /// started (Node's `listOnTimeout`): a timer armed inside the callback with the same delay
    /// runs before the interval's next turn, and an interval whose callback takes longer than
    /// its period runs once per iteration, never in a burst.
    #[track_caller]
    pub fn set_interval(
        &mut self,
        delay: impl TimerDelay,
        callback: impl FnMut(&mut Loop) + 'static,
    ) -> TimerId {
        self.start_timer(
            delay.to_delay_ms(),
            TimerKind::Interval,
            TimerCallback::Mut(Box::new(callback)),
            Location::caller(),
        )
    }

    fn start_timer(
        &mut self,
        delay: u64,
        kind: TimerKind,
        callback: TimerCallback,
        created_at: &'static Location<'static>,
    ) -> TimerId {
        self.update_time();
        let now = self.now_ms;
        self.refs += 1;
        let (key, timer) = self.timers.insert_mut(|_| Timer {
            callback: Some(callback),
            seq: 0,
            delay: Timer::delay_from(delay),
            kind,
            refed: true,
            armed: true,
            fired: false,
            created_at,
        });
        self.timer_heap.arm(key, timer, now);
        TimerId(key)
    }

    /// Cancels a timer or interval (Node's `clearTimeout`/`clearInterval`).
    ///
    /// On a fired [`Loop::set_timeout_mut`] timer it changes nothing in the loop (Node's
    /// `clearTimeout` on a fired timer) and frees the timer's slot: its id is stale afterwards.
    ///
    /// # Errors
    /// [`HandleError::Stale`] if the timer was cleared, or is a [`Loop::set_timeout`] timer
    /// whose callback has returned.
    pub fn clear_timeout(&mut self, id: TimerId) -> Result<(), HandleError> {
        let timer = self.timers.remove(id.0).ok_or(HandleError::Stale)?;
        if timer.fired {
            return Ok(()); // in no list and not counted (Node's `unenroll` returns at once)
        }
        // Node's `unenroll`: a list left without timers leaves the queue (it can delay nothing).
        self.timer_heap.forget(&timer, timer.armed, true);
        if timer.refed {
            self.refs -= 1;
        }
        self.maybe_compact_timer_heap();
        Ok(())
    }

    /// Same as [`Loop::clear_timeout`] (Node's two names for one operation).
    pub fn clear_interval(&mut self, id: TimerId) -> Result<(), HandleError> {
        self.clear_timeout(id)
    }

    /// Re-arms a timer to fire `delay` ms from now (refreshing the cached loop time, as
    /// [`Loop::set_timeout`] does), keeping its callback (Node's `timeout.refresh()`).
    ///
    /// A fired [`Loop::set_timeout_mut`] timer is re-armed and counts as ref'd again if it is
    /// ref'd (Node's `insertGuarded` on a destroyed timer); its callback runs again when due.
    /// Inside its own callback, the timer is re-armed and stays counted.
    ///
    /// # Errors
    /// [`HandleError::Stale`] if the timer was cleared, or is a [`Loop::set_timeout`] timer
    /// that fired or is running its callback (an `FnOnce` cannot run again: use
    /// [`Loop::set_timeout_mut`]).
    pub fn refresh_timer(&mut self, id: TimerId) -> Result<(), HandleError> {
        if self.timers.get(id.0).is_none() {
            return Err(HandleError::Stale);
        }
        self.update_time();
        let now = self.now_ms;
        let timer = self.timers.get_mut(id.0).ok_or(HandleError::Stale)?;
        if timer.kind == TimerKind::Once && timer.callback.is_none() {
            return Err(HandleError::Stale); // running its `FnOnce`: it cannot run again
        }
        if std::mem::take(&mut timer.fired) && timer.refed {
            self.refs += 1;
        }
        // Node's `L.append`: out of its place in the list (which stays), onto the tail.
        self.timer_heap.forget(timer, timer.armed, false);
        timer.armed = true;
        self.timer_heap.arm(id.0, timer, now);
        self.maybe_compact_timer_heap();
        Ok(())
    }

    /// Whether the timer is still pending or running (not cleared, not fired; Node has no
    /// direct equivalent).
    pub fn timer_is_active(&self, id: TimerId) -> bool {
        self.timers.get(id.0).is_some_and(|t| !t.fired)
    }

    fn maybe_compact_timer_heap(&mut self) {
        if self.phase != Phase::Timers
            && self.timer_heap.len() > 64
            && self.timer_heap.len() > 2 * self.timers.len()
        {
            let timers = &self.timers;
            self.timer_heap
                .compact(|seq, key| timers.get(key).is_some_and(|t| t.seq == seq));
        }
    }

    /// Runs every timer due at the cached loop time the way Node's `processTimers` does: the
    /// lists in `(expiry, id)` order, and within the first list every due timer before the next
    /// list (`listOnTimeout`). A timer armed or refreshed by one of these callbacks is due after
    /// `now`, so it waits for a later timers phase even if it is due by the time it is reached.
    ///
    /// An interval is re-armed *after* its callback returns, `delay` ms from the time the
    /// callback started, whatever the callback did (a `refresh_timer` of itself included), as
    /// Node's `listOnTimeout` re-inserts it (libuv re-arms before the callback; Node's JS
    /// timers, which are what users observe, re-insert after it).
    #[inline(always)] // one copy in `run_iteration`, one in the cold `run_phase`
    fn run_timers(&mut self) {
        self.enter_phase(Phase::Timers);
        let now = self.now_ms;
        let Some(mut list) = self.timer_heap.expired_list(now) else {
            return; // nothing due (the common case of an empty iteration)
        };
        loop {
            self.run_timer_list(list, now);
            match self.timer_heap.expired_list(now) {
                Some(next) => list = next,
                None => break,
            }
        }
        self.timer_heap.phase_done();
        if self.held_after_panic.is_some() {
            // The phase's last timer panicked: what it queued drains now (uncaught.rs).
            self.release_held_queues();
            self.drain_ticks_and_microtasks();
        }
    }

    /// Node's `listOnTimeout` for the first list in the queue: it stays first while it runs
    /// (lists created or re-armed meanwhile expire after `now`).
    fn run_timer_list(&mut self, list: usize, now: u64) {
        loop {
            let Some((due, seq, key)) = self.timer_heap.pop_front(list) else {
                self.timer_heap.remove_first(); // out of timers: the list leaves the queue
                return;
            };
            let Some(timer) = self.timers.get_mut(key).filter(|t| t.seq == seq && t.armed) else {
                continue; // stale: cleared, refreshed or re-armed (dropped by the pop)
            };
            if due > now {
                // The head is not due: it goes back, and the list waits for it (with a new
                // list id, as Node).
                self.timer_heap.unpop_front(list, (due, seq, key));
                self.timer_heap.reschedule_first(due, now);
                return;
            }
            // The live entry of an armed timer is in its delay's list, which is `list`.
            self.timer_heap.popped_live(list);
            timer.armed = false;
            let Some(callback) = timer.callback.take() else {
                continue;
            };
            let repeat = timer.kind == TimerKind::Interval;
            let started = if repeat {
                self.update_time();
                self.now_ms
            } else {
                0
            };
            self.trace_timer_callback(due);
            match callback {
                TimerCallback::Once(callback) => {
                    self.invoke(CallbackKind::Timer, callback);
                    // Spent: Node destroys it after its callback; here its slot is freed (a
                    // callback that cleared it has freed it already).
                    // In place: the slot's `armed` byte and callback tag were just written.
                    if self.timers.remove_in_place(key, |t| t.refed) == Some(true) {
                        self.refs -= 1;
                    }
                }
                TimerCallback::Mut(mut callback) => {
                    self.invoke(CallbackKind::Timer, |lp| callback(lp));
                    if let Some(t) = self.timers.get_mut(key) {
                        t.callback = Some(TimerCallback::Mut(callback));
                        if repeat {
                            // Still live (not cleared by its own callback): the next turn is
                            // due `delay` after the callback started, at the tail of its list,
                            // even if the callback refreshed it (Node's `insert(.., start)`).
                            self.timer_heap.forget(t, t.armed, false);
                            t.armed = true;
                            self.timer_heap.arm(key, t, started);
                        } else if !t.armed {
                            // Not refreshed by its callback: fired (Node destroys it; here it
                            // keeps its slot until cleared, and stops counting).
                            t.fired = true;
                            if t.refed {
                                self.refs -= 1;
                            }
                        }
                    }
                }
            }
            self.drain_ticks_and_microtasks();
        }
    }

    // ---------------------------------------------------------------------------------------
    // Pending, idle, prepare phases
    // ---------------------------------------------------------------------------------------

    /// Queues `callback` for the next iteration's pending phase (libuv's deferred I/O callbacks).
    pub fn defer(&mut self, callback: impl FnOnce(&mut Loop) + 'static) {
        self.pending.push_back(Box::new(callback));
    }

    #[inline(always)] // one copy in `run_iteration`, one in the cold `run_phase`
    fn run_pending(&mut self) {
        self.enter_phase(Phase::Pending);
        // Only callbacks queued before the phase began; new ones wait for the next iteration.
        for _ in 0..self.pending.len() {
            let Some(cb) = self.pending.pop_front() else {
                break;
            };
            self.trace_callback(CallbackKind::Pending);
            self.invoke(CallbackKind::Pending, cb);
            self.drain_ticks_and_microtasks();
        }
    }

    fn run_idle(&mut self) {
        self.enter_phase(Phase::Idle);
    }

    fn run_prepare(&mut self) {
        self.enter_phase(Phase::Prepare);
    }

    // ---------------------------------------------------------------------------------------
    // Poll phase
    // ---------------------------------------------------------------------------------------

    /// Waits for I/O up to `timeout` (`None` = forever), then runs the callbacks for the events.
    #[inline(always)] // one copy in `run_iteration`, one in the cold `run_phase`
    fn poll_io(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        self.enter_phase(Phase::Poll);
        if timeout == Some(Duration::ZERO) && self.nothing_to_poll() {
            // libuv's `uv__io_poll` returns at once when no descriptor is watched (`nfds == 0`).
            // Here: no socket, server, signal or async handle is registered and no pool job is in
            // flight, so a zero-timeout `epoll_wait` could only report a stray wake of a handle
            // closed since, which means nothing and stays pending for the next real poll. Skip
            // the syscall.
            if let Some(obs) = self.observer.as_deref_mut() {
                let now = Instant::now();
                obs.poll_wait(self.metrics.iterations, now, now);
            }
            return Ok(());
        }
        let mut events = self
            .events
            .take()
            .unwrap_or_else(|| Events::with_capacity(1));
        // A virtual clock never waits for time to pass (see `clock::virtual_wait`).
        let mut jump = None;
        let timeout = match self.virtual_ns {
            None => timeout,
            Some(_) => {
                let has_io = self.net.entries.len() > 0
                    || self.signal_watchers.len() > 0
                    || self.asyncs.entries.len() > 0
                    || self.processes.has_children();
                let w = clock::virtual_wait(timeout, has_io, self.work.len() > 0);
                jump = Some((w, timeout));
                w.real_timeout
            }
        };
        let wait_started = Instant::now();
        // The first wait gets the whole timeout (no clock read for "remaining": nothing has
        // elapsed yet); only a wait a signal interrupted (EINTR) recomputes what is left.
        let mut remaining = timeout;
        let result = loop {
            match self.poll.poll(&mut events, remaining) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {
                    remaining = timeout.map(|t| t.saturating_sub(wait_started.elapsed()));
                }
                other => break other,
            }
        };
        // One clock read after the wait; the end instant is derived only if watched.
        let real_wait = wait_started.elapsed();
        let mut waited = real_wait;
        if let Some((w, timeout)) = jump {
            let real = if w.follow_real {
                waited.min(timeout.unwrap_or(Duration::MAX))
            } else {
                Duration::ZERO
            };
            waited = w.jump + real;
            self.advance(waited);
        }
        self.metrics.idle_ns += waited.as_nanos() as u64;
        if let Some(obs) = self.observer.as_deref_mut() {
            let wait_ended = wait_started + real_wait;
            obs.poll_wait(self.metrics.iterations, wait_started, wait_ended);
        }
        self.update_time();
        if let Err(e) = result {
            self.events = Some(events);
            return Err(e);
        }
        for event in events.iter() {
            self.metrics.events += 1;
            match event.token() {
                WAKER_TOKEN => {
                    // Cleared first: a completion or send after this point wakes poll again.
                    self.asyncs.hub.begin_wake();
                    self.run_work_completions();
                    self.run_async_callbacks();
                    self.take_remote_wakes();
                    self.drain_ticks_and_microtasks();
                }
                SIGNAL_TOKEN => self.dispatch_signals(),
                Token(index) => self.dispatch_io(index, event),
            }
        }
        self.events = Some(events);
        Ok(())
    }

    /// Whether poll has nothing it could report: no I/O source registered (sockets, servers,
    /// signals) and no thread-pool job whose completion could wake it.
    #[inline(always)]
    fn nothing_to_poll(&self) -> bool {
        self.net.entries.len() == 0
            && self.signals.is_none()
            && self.work.len() == 0
            && self.asyncs.entries.len() == 0
    }

    /// The registry, for I/O sources owned by this loop.
    pub(crate) fn registry(&self) -> &mio::Registry {
        self.poll.registry()
    }

    pub(crate) fn register(
        &self,
        source: &mut impl mio::event::Source,
        token: Token,
        interest: Interest,
    ) -> io::Result<()> {
        self.poll.registry().register(source, token, interest)
    }

    /// A handle that queues ticks on this loop without `&mut Loop` (same thread only).
    pub fn handle(&self) -> LoopHandle {
        LoopHandle {
            ticks: Rc::clone(&self.ticks),
        }
    }

    // ---------------------------------------------------------------------------------------
    // Check phase: immediates
    // ---------------------------------------------------------------------------------------

    /// Calls `callback` in the check phase of this iteration, or the next one if called from the
    /// check phase itself (Node's `setImmediate`).
    #[track_caller]
    pub fn set_immediate(&mut self, callback: impl FnOnce(&mut Loop) + 'static) -> ImmediateId {
        let id = ImmediateId(self.immediate_base + self.immediates.len() as u64);
        self.immediates.push_back(Immediate {
            callback: Some(Box::new(callback)),
            refed: true,
            created_at: Location::caller(),
        });
        self.refed_immediates += 1;
        id
    }

    /// Where immediate `id` sits in the queue, if it has not been popped yet.
    fn immediate_index(&self, id: ImmediateId) -> Option<usize> {
        usize::try_from(id.0.checked_sub(self.immediate_base)?).ok()
    }

    /// The immediate `id` if it is still queued and not cleared.
    fn immediate_mut(&mut self, id: ImmediateId) -> Option<&mut Immediate> {
        let index = self.immediate_index(id)?;
        self.immediates
            .get_mut(index)
            .filter(|imm| imm.callback.is_some())
    }

    /// Cancels an immediate that has not run (Node's `clearImmediate`).
    ///
    /// # Errors
    /// [`HandleError::Stale`] if it already ran or was cleared.
    pub fn clear_immediate(&mut self, id: ImmediateId) -> Result<(), HandleError> {
        let imm = self.immediate_mut(id).ok_or(HandleError::Stale)?;
        imm.callback = None; // dropped now; the slot leaves the queue in the check phase
        if std::mem::replace(&mut imm.refed, false) {
            self.refed_immediates -= 1;
        }
        Ok(())
    }

    #[inline(always)] // one copy in `run_iteration`, one in the cold `run_phase`
    fn run_check(&mut self) {
        self.enter_phase(Phase::Check);
        // Only immediates queued before the phase began run now (Node's processImmediate).
        let batch = self.immediates.len();
        if batch == 0 {
            return;
        }
        self.run_immediates(batch);
        if self.held_after_panic.is_some() {
            self.run_check_after_panic();
        }
    }

    /// Runs the first `batch` queued immediates, draining ticks and microtasks after each.
    #[inline(always)]
    fn run_immediates(&mut self, batch: usize) {
        for _ in 0..batch {
            let Some(imm) = self.immediates.pop_front() else {
                break;
            };
            self.immediate_base += 1;
            let Some(cb) = imm.callback else {
                continue; // cleared
            };
            if imm.refed {
                self.refed_immediates -= 1;
            }
            self.trace_callback(CallbackKind::Immediate);
            self.invoke(CallbackKind::Immediate, cb);
            self.drain_ticks_and_microtasks();
        }
    }

    /// The check phase's last immediate panicked: Node's `CheckImmediate` calls
    /// `processImmediate` again, which runs the immediates queued meanwhile at once (again if
    /// the last of those panics too); then what the panicking one queued drains (uncaught.rs).
    #[cold]
    #[inline(never)]
    fn run_check_after_panic(&mut self) {
        while self.held_after_panic.is_some() && !self.immediates.is_empty() {
            self.run_immediates(self.immediates.len()); // its first call releases the held queues
        }
        self.release_held_queues();
        self.drain_ticks_and_microtasks();
    }

    // ---------------------------------------------------------------------------------------
    // Close phase
    // ---------------------------------------------------------------------------------------

    /// Queues a close callback: it runs in this iteration's close phase (or the next one if
    /// queued from the close phase) and keeps the loop alive until then.
    pub(crate) fn queue_close(&mut self, callback: impl FnOnce(&mut Loop) + 'static) {
        self.closing.push(Box::new(callback));
    }

    #[inline(always)] // one copy in `run_iteration`, one in the cold `run_phase`
    fn run_closing(&mut self) {
        self.enter_phase(Phase::Close);
        let closing = std::mem::take(&mut self.closing);
        for cb in closing {
            self.trace_callback(CallbackKind::Close);
            self.invoke(CallbackKind::Close, cb);
            self.drain_ticks_and_microtasks();
        }
    }

    // ---------------------------------------------------------------------------------------
    // next_tick and microtasks
    // ---------------------------------------------------------------------------------------

    /// Queues `callback` to run as soon as the current callback returns, before any microtask
    /// and before the loop moves on (Node's `process.nextTick`).
    #[inline] // a borrow flag and a ring-buffer push: worth inlining into the caller
    pub fn next_tick(&mut self, callback: impl FnOnce(&mut Loop) + 'static) {
        self.ticks.borrow_mut().push_back(Box::new(callback));
    }

    /// Queues `callback` as a microtask: after the `next_tick` queue is empty (Node's
    /// `queueMicrotask`, and where a resolved promise's `then` runs).
    #[inline]
    pub fn queue_microtask(&mut self, callback: impl FnOnce(&mut Loop) + 'static) {
        self.jobs.queue(Box::new(callback));
    }

    /// Drains `next_tick` fully, then microtasks fully, until both are empty (Node's
    /// `processTicksAndRejections`). Called after every callback.
    #[inline(always)]
    fn drain_ticks_and_microtasks(&mut self) {
        // The common case after a callback: nothing queued, nothing to call.
        if self.jobs.microtasks.borrow().is_empty()
            && self.ticks.borrow().is_empty()
            && self.jobs.ops.borrow().is_empty()
            && self.jobs.unhandled.borrow().is_empty()
        {
            return;
        }
        self.run_ticks_and_microtasks();
    }

    #[inline(never)]
    fn run_ticks_and_microtasks(&mut self) {
        loop {
            loop {
                // Take the whole queue with one borrow (not one per tick). Ticks queued by
                // this batch land in the shared queue and run in the next round, after the
                // rest of the batch: the same FIFO order as one queue. The buffers swap, so
                // neither side allocates in steady state.
                let mut batch = std::mem::take(&mut self.tick_batch);
                std::mem::swap(&mut batch, &mut *self.ticks.borrow_mut());
                if batch.is_empty() {
                    self.tick_batch = batch;
                    break;
                }
                while let Some(tick) = batch.pop_front() {
                    self.trace_callback(CallbackKind::NextTick);
                    self.invoke(CallbackKind::NextTick, tick);
                }
                self.tick_batch = batch;
            }
            // Loop operations a task or a dropped future deferred outside a task's poll.
            self.apply_task_ops();
            loop {
                let job = self.jobs.microtasks.borrow_mut().pop_front();
                match job {
                    Some(job) => self.run_microtask(job),
                    None => break,
                }
            }
            if self.ticks.borrow().is_empty() {
                // Node's `processPromiseRejections`, once both queues are empty; what its
                // reports queue is drained in the next round.
                if self.jobs.unhandled.borrow().is_empty() || !self.report_unhandled_rejections() {
                    break;
                }
            }
        }
    }

    /// Runs a loop callback the way every phase does: trace it, count it, then drain ticks and
    /// microtasks. For I/O layers built on the loop.
    pub(crate) fn after_callback(&mut self) {
        self.drain_ticks_and_microtasks();
    }

    // ---------------------------------------------------------------------------------------
    // Thread pool
    // ---------------------------------------------------------------------------------------

    /// Runs `work` on the thread pool; `after` gets its result on the loop thread, in a later
    /// poll phase (libuv's `uv_queue_work`). A pending request keeps the loop alive.
    ///
    /// `after` receives `Err(WorkError::Cancelled)` if [`Loop::cancel_work`] removed the request
    /// before a worker took it, and `Err(WorkError::Panicked(..))` if `work` panicked; the pool
    /// keeps its threads either way.
    ///
    /// # Errors
    /// Only when the pool's threads could not be spawned on first use.
    #[track_caller]
    pub fn queue_work<T: Send + 'static>(
        &mut self,
        work: impl FnOnce() -> T + Send + 'static,
        after: impl FnOnce(&mut Loop, Result<T, WorkError>) + 'static,
    ) -> io::Result<WorkId> {
        self.queue_work_at(Location::caller(), work, after)
    }

    fn queue_work_at<T: Send + 'static>(
        &mut self,
        created_at: &'static Location<'static>,
        work: impl FnOnce() -> T + Send + 'static,
        after: impl FnOnce(&mut Loop, Result<T, WorkError>) + 'static,
    ) -> io::Result<WorkId> {
        let key = self.work.insert(WorkRequest {
            created_at,
            after: Some(Box::new(move |lp, result: AnyResult| {
                let typed = result.and_then(|boxed| {
                    boxed
                        .downcast::<T>()
                        .map(|b| *b)
                        .map_err(|_| WorkError::Panicked("result type mismatch".into()))
                });
                after(lp, typed)
            })),
        });
        let job = Box::new(move || Box::new(work()) as Box<dyn Any + Send>);
        if let Err(e) = self.pool.submit(key, job) {
            self.work.remove(key);
            return Err(e);
        }
        Ok(WorkId(key))
    }

    /// Cancels a thread-pool request no worker has started; its `after` then runs with
    /// `Err(WorkError::Cancelled)`. Returns `Ok(false)` if a worker already took it (it will
    /// complete normally).
    ///
    /// # Errors
    /// [`HandleError::Stale`] if the request already completed.
    pub fn cancel_work(&mut self, id: WorkId) -> Result<bool, HandleError> {
        if self.work.get(id.0).is_none() {
            return Err(HandleError::Stale);
        }
        Ok(self.pool.cancel(id.0))
    }

    /// Thread-pool size of this loop.
    pub fn threadpool_size(&self) -> usize {
        self.pool.size()
    }

    /// Thread-pool requests queued and not yet started.
    pub fn threadpool_queued(&self) -> usize {
        self.pool.queued()
    }

    fn run_work_completions(&mut self) {
        let mut done = std::mem::take(&mut self.done_buf);
        self.pool.take_done(&mut done);
        for Done { key, result } in done.drain(..) {
            let Some(mut req) = self.work.remove(key) else {
                continue;
            };
            if let Some(after) = req.after.take() {
                self.trace_callback(CallbackKind::Work);
                self.invoke(CallbackKind::Work, |lp| after(lp, result));
                self.drain_ticks_and_microtasks();
            }
        }
        self.done_buf = done;
    }

    // ---------------------------------------------------------------------------------------
    // Before exit
    // ---------------------------------------------------------------------------------------

    /// Calls `callback` each time the loop runs out of work, before `run` returns (Node's
    /// `process.on('beforeExit')`). Work it schedules keeps the loop running.
    ///
    /// # Guarantees
    /// One out-of-work moment is one event, as in Node: every listener registered when it
    /// begins runs, in registration order (even one another listener removes meanwhile, as
    /// `EventEmitter.emit` runs a copy of its list), and only then do the `next_tick` and
    /// microtask queues drain. A listener added during the event first runs at the next one.
    pub fn on_before_exit(&mut self, callback: impl FnMut(&mut Loop) + 'static) -> BeforeExitId {
        self.add_before_exit(BeforeExitCallback::Every(Box::new(callback)))
    }

    /// Like [`Loop::on_before_exit`], but the listener is removed before its first run (Node's
    /// `process.once('beforeExit')`).
    pub fn once_before_exit(&mut self, callback: impl FnOnce(&mut Loop) + 'static) -> BeforeExitId {
        self.add_before_exit(BeforeExitCallback::Once(Box::new(callback)))
    }

    /// Removes a `'beforeExit'` listener (Node's `process.removeListener`). During an event it
    /// still runs if the event began before it was removed (see [`Loop::on_before_exit`]).
    ///
    /// # Errors
    /// [`HandleError::Stale`] if it was removed already (a once-listener is removed when it
    /// runs).
    pub fn remove_before_exit(&mut self, id: BeforeExitId) -> Result<(), HandleError> {
        let index = self
            .before_exit
            .iter()
            .position(|l| l.id == id.0)
            .ok_or(HandleError::Stale)?;
        self.before_exit.remove(index);
        Ok(())
    }

    fn add_before_exit(&mut self, callback: BeforeExitCallback) -> BeforeExitId {
        let id = self.next_before_exit_id;
        self.next_before_exit_id += 1;
        self.before_exit.push(BeforeExitListener {
            id,
            callback: Some(callback),
        });
        BeforeExitId(id)
    }

    /// Emits `'beforeExit'` once: every listener, then one tick and microtask drain. Returns
    /// whether any listener ran.
    fn run_before_exit(&mut self) -> bool {
        if self.before_exit.is_empty() {
            return false;
        }
        self.phase = Phase::BeforeExit;
        // The copy `EventEmitter.emit` runs: once-listeners leave the list now, the others
        // lend their callback for the event.
        let mut event: Vec<(u64, BeforeExitCallback)> = Vec::with_capacity(self.before_exit.len());
        self.before_exit.retain_mut(|l| {
            if let Some(cb) = l.callback.take() {
                let once = matches!(cb, BeforeExitCallback::Once(_));
                event.push((l.id, cb));
                !once
            } else {
                true
            }
        });
        for (id, cb) in event {
            self.trace_callback(CallbackKind::BeforeExit);
            match cb {
                BeforeExitCallback::Once(cb) => self.invoke(CallbackKind::BeforeExit, |lp| cb(lp)),
                BeforeExitCallback::Every(mut cb) => {
                    self.invoke(CallbackKind::BeforeExit, |lp| cb(lp));
                    // Back in its slot unless a listener removed it meanwhile.
                    if let Some(l) = self.before_exit.iter_mut().find(|l| l.id == id) {
                        l.callback = Some(BeforeExitCallback::Every(cb));
                    }
                }
            }
        }
        self.drain_ticks_and_microtasks();
        true
    }

    // ---------------------------------------------------------------------------------------
    // ref / unref
    // ---------------------------------------------------------------------------------------

    /// Lets the loop exit while `handle` is still active (Node's `unref()`). Idempotent.
    ///
    /// # Errors
    /// [`HandleError::Stale`] if the handle is gone.
    pub fn unref(&mut self, handle: impl Into<Handle>) -> Result<(), HandleError> {
        self.set_ref(handle.into(), false)
    }

    /// Makes `handle` keep the loop alive again (Node's `ref()`). Idempotent.
    ///
    /// # Errors
    /// [`HandleError::Stale`] if the handle is gone.
    pub fn ref_(&mut self, handle: impl Into<Handle>) -> Result<(), HandleError> {
        self.set_ref(handle.into(), true)
    }

    /// Whether `handle` keeps the loop alive (Node's `hasRef()`).
    ///
    /// # Errors
    /// [`HandleError::Stale`] if the handle is gone.
    pub fn has_ref(&self, handle: impl Into<Handle>) -> Result<bool, HandleError> {
        let refed = match handle.into() {
            Handle::Timer(id) => self.timers.get(id.0).map(|t| t.refed),
            Handle::Immediate(id) => self
                .immediate_index(id)
                .and_then(|i| self.immediates.get(i))
                .filter(|i| i.callback.is_some())
                .map(|i| i.refed),
            Handle::Signal(id) => self.signal_watchers.get(id.0).map(|s| s.refed),
            Handle::Tcp(id) => self.net.socket_refed(id),
            Handle::Server(id) => self.net.server_refed(id),
            Handle::Async(id) => self.asyncs.refed(id),
            Handle::Udp(id) => self.net.udp_refed(id),
            Handle::Process(id) => self.processes.refed(id),
        };
        refed.ok_or(HandleError::Stale)
    }

    fn set_ref(&mut self, handle: Handle, refed: bool) -> Result<(), HandleError> {
        let flag: &mut bool = match handle {
            Handle::Timer(id) => {
                let timer = self.timers.get_mut(id.0).ok_or(HandleError::Stale)?;
                if timer.fired {
                    // Not counted while fired; a refresh counts it again if ref'd (Node).
                    timer.refed = refed;
                    return Ok(());
                }
                Some(&mut timer.refed)
            }
            Handle::Immediate(id) => {
                let imm = self.immediate_mut(id).ok_or(HandleError::Stale)?;
                if std::mem::replace(&mut imm.refed, refed) != refed {
                    if refed {
                        self.refed_immediates += 1;
                    } else {
                        self.refed_immediates -= 1;
                    }
                }
                return Ok(());
            }
            Handle::Signal(id) => self.signal_watchers.get_mut(id.0).map(|s| &mut s.refed),
            Handle::Tcp(id) => self.net.socket_refed_mut(id),
            Handle::Server(id) => self.net.server_refed_mut(id),
            Handle::Async(id) => self.asyncs.refed_mut(id),
            Handle::Udp(id) => self.net.udp_refed_mut(id),
            Handle::Process(id) => return self.process_set_ref(id, refed),
        }
        .ok_or(HandleError::Stale)?;
        if *flag != refed {
            *flag = refed;
            if refed {
                self.refs += 1;
            } else {
                self.refs -= 1;
            }
        }
        Ok(())
    }

    // ---------------------------------------------------------------------------------------
    // Signals
    // ---------------------------------------------------------------------------------------

    /// Calls `callback(lp, signum)` each time the process receives `signum` (Node's
    /// `process.on('SIGINT', ..)`). Unref'd by default, as Node does: a signal watcher alone does
    /// not keep the loop alive. While no watcher exists for a signal it keeps its default action.
    ///
    /// # Errors
    /// If the signal cannot be handled (e.g. `SIGKILL`) or the signal pipe cannot be created.
    #[track_caller]
    pub fn on_signal(
        &mut self,
        signum: i32,
        callback: impl FnMut(&mut Loop, i32) + 'static,
    ) -> io::Result<SignalId> {
        self.signal_add(signum)?;
        let key = self.signal_watchers.insert(SignalWatcher {
            signum,
            callback: Some(Box::new(callback)),
            refed: false,
            created_at: Location::caller(),
        });
        Ok(SignalId(key))
    }

    /// Stops a signal watcher.
    ///
    /// # Errors
    /// [`HandleError::Stale`] if it was already closed.
    pub fn close_signal(&mut self, id: SignalId) -> Result<(), HandleError> {
        let w = self
            .signal_watchers
            .remove(id.0)
            .ok_or(HandleError::Stale)?;
        if w.refed {
            self.refs -= 1;
        }
        Ok(())
    }

    // ---------------------------------------------------------------------------------------
    // Introspection
    // ---------------------------------------------------------------------------------------

    /// Counters: iterations, events, callbacks, idle time (see [`LoopMetrics`]).
    pub fn metrics(&self) -> LoopMetrics {
        LoopMetrics {
            elapsed_ns: self.hrtime(),
            ..self.metrics
        }
    }

    /// The phase the loop is in (`Phase::Main` outside `run`).
    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// Installs (or removes, with `None`) a sink that receives one [`TraceEvent`] per phase entry
    /// and per callback.
    pub fn set_trace(&mut self, sink: Option<TraceSink>) {
        let none = sink.is_none();
        self.observer_mut().sink = sink;
        if none {
            self.drop_observer_if_idle();
        }
    }

    /// The observer, created if nothing watched the loop yet.
    pub(crate) fn observer_mut(&mut self) -> &mut Observer {
        let started = self.started;
        self.observer
            .get_or_insert_with(|| Box::new(Observer::new(started)))
    }

    /// Drops the observer once nothing uses it, so the hot path's branch falls through again.
    pub(crate) fn drop_observer_if_idle(&mut self) {
        if self.observer.as_deref().is_some_and(Observer::is_empty) {
            self.observer = None;
        }
    }

    /// Queue depths, when an observer wants them (they cost a pool lock).
    fn queue_depths_if_timed(&self) -> QueueDepths {
        match self.observer.as_deref() {
            Some(obs) if obs.timed() => QueueDepths {
                next_tick: self.ticks.borrow().len(),
                microtasks: self.jobs.microtasks.borrow().len(),
                immediates: self.immediates.len(),
                timers: self.timers.len(),
                pool_queued: self.pool.queued(),
            },
            _ => QueueDepths::default(),
        }
    }

    fn enter_phase(&mut self, phase: Phase) {
        self.phase = phase;
        if let Some(obs) = self.observer.as_deref_mut() {
            obs.phase(self.metrics.iterations, phase);
        }
    }

    #[inline(always)]
    pub(crate) fn trace_callback(&mut self, kind: CallbackKind) {
        self.metrics.callbacks += 1;
        if self.observer.is_some() {
            self.observe_callback(kind);
        }
    }

    /// Counts `n` callbacks that ran without [`Loop::trace_callback`] (awaits that continued in
    /// place: only when nothing observes each callback).
    #[inline]
    pub(crate) fn count_untraced_callbacks(&mut self, n: u64) {
        self.metrics.callbacks += n;
    }

    #[cold]
    #[inline(never)]
    fn observe_callback(&mut self, kind: CallbackKind) {
        if let Some(obs) = self.observer.as_deref_mut() {
            obs.callback(self.metrics.iterations, self.phase, kind, None);
        }
    }

    /// [`Loop::trace_callback`] for a timer, which also reports how late it fired.
    #[inline(always)]
    fn trace_timer_callback(&mut self, due_ms: u64) {
        self.metrics.callbacks += 1;
        if self.observer.is_some() {
            self.observe_timer_callback(due_ms);
        }
    }

    /// The watched half of [`Loop::trace_timer_callback`], kept out of line so the timer
    /// phase's loop stays small when nothing watches.
    #[cold]
    #[inline(never)]
    fn observe_timer_callback(&mut self, due_ms: u64) {
        let late = self
            .hrtime()
            .saturating_sub(due_ms.saturating_mul(1_000_000));
        if let Some(obs) = self.observer.as_deref_mut() {
            obs.callback(
                self.metrics.iterations,
                self.phase,
                CallbackKind::Timer,
                Some(late),
            );
        }
    }
}

impl Drop for Loop {
    fn drop(&mut self) {
        // Tasks hold promises that hold the loop's `Jobs`: break the cycle.
        self.jobs.unregister();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `run_iteration` spells the phases out for speed; they must stay `Phase::ITERATION`, the
    /// list `step` walks.
    #[test]
    fn run_iteration_enters_the_phases_of_phase_iteration() {
        let mut lp = Loop::with_virtual_clock().unwrap();
        lp.set_timeout(1_000, |_| {});
        let seen = Rc::new(RefCell::new(Vec::new()));
        let log = Rc::clone(&seen);
        lp.set_trace(Some(Box::new(move |ev: &TraceEvent| {
            if let TraceEvent::Phase { phase, .. } = ev {
                log.borrow_mut().push(*phase);
            }
        })));
        lp.run_nowait().unwrap();
        assert_eq!(*seen.borrow(), Phase::ITERATION);
        // And an iteration a step began finishes with the remaining phases, in order.
        seen.borrow_mut().clear();
        lp.step().unwrap();
        lp.step().unwrap();
        lp.run_nowait().unwrap();
        assert_eq!(*seen.borrow(), Phase::ITERATION);
    }

    /// What introspection added to a timer (`created_at`) must not grow its slab slot past the
    /// 64 bytes it had before: the timer benchmark arms 10,000 at a time.
    #[test]
    fn a_timer_slot_stays_one_cache_line() {
        assert!(std::mem::size_of::<Option<Timer>>() + 8 <= 64);
    }
}

//! Per-phase metrics, kept only while [`Loop::enable_metrics`](crate::Loop::enable_metrics) is
//! on: time and callbacks per phase, queue depths, timer lateness, event-loop delay.
//!
//! The always-on counters ([`LoopMetrics`](crate::LoopMetrics): iterations, events, callbacks,
//! idle time and so utilisation) cost an add each; these cost a clock read per phase and per
//! callback, so they are off by default. While off, the loop carries no `LoopStats` at all.

use hdrhistogram::Histogram;

use crate::trace::{CallbackKind, Phase};

/// Largest value the histograms resolve (one hour, in their unit); larger values saturate.
const HOUR_NS: u64 = 3_600_000_000_000;
const HOUR_US: u64 = 3_600_000_000;

/// Time and callbacks of one phase, summed over every iteration since metrics were enabled.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PhaseStats {
    /// Times the phase was entered.
    pub entries: u64,
    /// Callbacks run in it (including the next-tick and microtask drains after them).
    pub callbacks: u64,
    /// Nanoseconds spent in it; for poll this includes the wait (see [`LoopStats::poll_wait_ns`]).
    pub time_ns: u64,
}

/// Queue lengths sampled at the start of an iteration.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct QueueDepths {
    /// `next_tick` callbacks queued.
    pub next_tick: usize,
    /// Microtasks queued.
    pub microtasks: usize,
    /// Immediates queued (ref'd or not).
    pub immediates: usize,
    /// Timers armed (ref'd or not).
    pub timers: usize,
    /// Thread-pool requests queued and not yet started.
    pub pool_queued: usize,
}

impl QueueDepths {
    fn max(self, o: QueueDepths) -> QueueDepths {
        QueueDepths {
            next_tick: self.next_tick.max(o.next_tick),
            microtasks: self.microtasks.max(o.microtasks),
            immediates: self.immediates.max(o.immediates),
            timers: self.timers.max(o.timers),
            pool_queued: self.pool_queued.max(o.pool_queued),
        }
    }
}

/// What [`Loop::stats`](crate::Loop::stats) returns while metrics are enabled.
///
/// # Guarantees
/// - `callbacks(kind)` and the per-phase `callbacks` count exactly the callbacks the loop ran
///   while enabled (the same events a trace sink sees).
/// - The histograms never panic on large values: they saturate at one hour.
///
/// # Pitfalls
/// - `loop_delay` is sampled once per iteration, as the busy time between one poll returning
///   and the next poll starting: the longest an I/O event that arrived just after a poll waited
///   to be noticed. Node's `monitorEventLoopDelay` samples with a 10 ms timer instead and
///   reports the interval between its firings, so its values include the 10 ms period.
#[derive(Clone, Debug)]
pub struct LoopStats {
    phases: [PhaseStats; Phase::COUNT],
    by_kind: [u64; CallbackKind::COUNT],
    samples: u64,
    max_depths: QueueDepths,
    last_depths: QueueDepths,
    poll_wait_ns: u64,
    timer_lateness_us: Histogram<u64>,
    loop_delay_ns: Histogram<u64>,
    /// The phase being timed and when it started (ns since the loop started).
    open: Option<(Phase, u64)>,
    /// When the last poll wait ended.
    last_poll_end: Option<u64>,
}

impl Default for LoopStats {
    fn default() -> Self {
        LoopStats {
            phases: [PhaseStats::default(); Phase::COUNT],
            by_kind: [0; CallbackKind::COUNT],
            samples: 0,
            max_depths: QueueDepths::default(),
            last_depths: QueueDepths::default(),
            poll_wait_ns: 0,
            timer_lateness_us: Histogram::new_with_bounds(1, HOUR_US, 2).expect("valid bounds"),
            loop_delay_ns: Histogram::new_with_bounds(1, HOUR_NS, 2).expect("valid bounds"),
            open: None,
            last_poll_end: None,
        }
    }
}

impl LoopStats {
    /// Totals for `phase`.
    pub fn phase(&self, phase: Phase) -> PhaseStats {
        self.phases[phase.index()]
    }

    /// Callbacks of `kind` run.
    pub fn callbacks(&self, kind: CallbackKind) -> u64 {
        self.by_kind[kind.index()]
    }

    /// Callbacks of every kind run.
    pub fn total_callbacks(&self) -> u64 {
        self.by_kind.iter().sum()
    }

    /// The largest depth each queue had at an iteration start.
    pub fn max_queue_depths(&self) -> QueueDepths {
        self.max_depths
    }

    /// The depths at the start of the latest iteration.
    pub fn last_queue_depths(&self) -> QueueDepths {
        self.last_depths
    }

    /// Nanoseconds spent blocked in poll's wait (part of the poll phase's `time_ns`).
    pub fn poll_wait_ns(&self) -> u64 {
        self.poll_wait_ns
    }

    /// How late timers fired, in microseconds: loop time when the callback started minus its
    /// due time. One sample per timer callback.
    pub fn timer_lateness_us(&self) -> &Histogram<u64> {
        &self.timer_lateness_us
    }

    /// Event-loop delay in nanoseconds, one sample per poll (see the pitfall above).
    pub fn loop_delay_ns(&self) -> &Histogram<u64> {
        &self.loop_delay_ns
    }

    /// A few lines for logs: per-phase time and callbacks, queue maxima, delay percentiles.
    pub fn summary(&self) -> String {
        let mut s = String::from("phase        entries  callbacks    time ms\n");
        for phase in Phase::ALL {
            let p = self.phase(phase);
            if p.entries == 0 && p.callbacks == 0 {
                continue;
            }
            s += &format!(
                "{:<12} {:>7} {:>10} {:>10.3}\n",
                phase.name(),
                p.entries,
                p.callbacks,
                p.time_ns as f64 / 1e6
            );
        }
        let d = self.max_depths;
        s += &format!(
            "max queues: next_tick {} microtasks {} immediates {} timers {} pool {}\n",
            d.next_tick, d.microtasks, d.immediates, d.timers, d.pool_queued
        );
        let q = |h: &Histogram<u64>, p: f64| h.value_at_quantile(p);
        s += &format!(
            "loop delay us: p50 {} p99 {} max {}; timer lateness us: p50 {} p99 {} max {}\n",
            q(&self.loop_delay_ns, 0.5) / 1000,
            q(&self.loop_delay_ns, 0.99) / 1000,
            self.loop_delay_ns.max() / 1000,
            q(&self.timer_lateness_us, 0.5),
            q(&self.timer_lateness_us, 0.99),
            self.timer_lateness_us.max(),
        );
        s
    }

    // Hooks called by the loop's observer; `now` is ns since the loop started.

    pub(crate) fn iteration_begin(&mut self, now: u64, depths: QueueDepths) {
        self.close(now);
        self.samples += 1;
        self.last_depths = depths;
        self.max_depths = self.max_depths.max(depths);
    }

    pub(crate) fn enter(&mut self, now: u64, phase: Phase) {
        self.close(now);
        self.phases[phase.index()].entries += 1;
        self.open = Some((phase, now));
    }

    /// Whether `phase` is the open one. A callback outside it (main or before-exit: phases
    /// entered without a phase event) must [`enter`](Self::enter) it first.
    pub(crate) fn in_phase(&self, phase: Phase) -> bool {
        matches!(self.open, Some((p, _)) if p == phase)
    }

    /// A callback of `kind` runs in `phase`, which is open (see [`in_phase`](Self::in_phase)).
    pub(crate) fn callback(&mut self, phase: Phase, kind: CallbackKind) {
        self.phases[phase.index()].callbacks += 1;
        self.by_kind[kind.index()] += 1;
    }

    pub(crate) fn timer_late(&mut self, late_ns: u64) {
        self.timer_lateness_us.saturating_record(late_ns / 1000);
    }

    pub(crate) fn poll_wait(&mut self, start: u64, end: u64) {
        if let Some(prev) = self.last_poll_end {
            self.loop_delay_ns
                .saturating_record(start.saturating_sub(prev).max(1));
        }
        self.last_poll_end = Some(end);
        self.poll_wait_ns += end.saturating_sub(start);
    }

    pub(crate) fn close(&mut self, now: u64) {
        if let Some((phase, start)) = self.open.take() {
            self.phases[phase.index()].time_ns += now.saturating_sub(start);
        }
    }
}

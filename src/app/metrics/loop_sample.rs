//! What a worker's loop publishes for the metrics, once per publish period: utilisation and
//! loop delay over the period, active handles by kind, thread-pool queue, iterations.

use hdrhistogram::Histogram;
use oneloop_runtime::{Loop, LoopMetrics};

/// Loop delay over one period, in seconds (all 0 when the period had no sample).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct LagStats {
    /// Smallest delay.
    pub min: f64,
    /// Largest delay.
    pub max: f64,
    /// Mean delay.
    pub mean: f64,
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
}

/// One period's reading of one loop.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LoopSample {
    /// Event-loop utilisation over the period, 0..=1 (Node's `eventLoopUtilization`).
    pub utilization: f64,
    /// Loop delay over the period (see [`oneloop_runtime::metrics::LoopStats::loop_delay_ns`]).
    pub lag: LagStats,
    /// Ref'd handles and requests by kind (`tcp`, `server`, `timer`, `work`, ...).
    pub active_handles: Vec<(&'static str, u64)>,
    /// Thread-pool requests queued, not started, at the latest iteration start.
    pub pool_queued: u64,
    /// Iterations since the loop started.
    pub iterations: u64,
}

/// Keeps the previous reading so each sample covers one period only.
pub struct LoopSampler {
    prev_metrics: Option<LoopMetrics>,
    prev_delay: Option<Histogram<u64>>,
}

impl LoopSampler {
    /// Turns the loop's per-phase metrics on (the delay histogram lives there).
    pub fn new(lp: &mut Loop) -> LoopSampler {
        lp.enable_metrics(true);
        LoopSampler {
            prev_metrics: None,
            prev_delay: None,
        }
    }

    /// The reading since the previous call.
    pub fn sample(&mut self, lp: &Loop) -> LoopSample {
        let now = lp.metrics();
        let utilization = now.utilization(self.prev_metrics.as_ref());
        self.prev_metrics = Some(now);
        let mut lag = LagStats::default();
        let mut pool_queued = 0;
        if let Some(stats) = lp.stats() {
            let total = stats.loop_delay_ns();
            let mut window = total.clone();
            if let Some(prev) = &self.prev_delay {
                // Counts only grow, so the subtraction cannot underflow.
                let _ = window.subtract(prev);
            }
            self.prev_delay = Some(total.clone());
            if !window.is_empty() {
                let s = |ns: u64| ns as f64 / 1e9;
                lag = LagStats {
                    min: s(window.min()),
                    max: s(window.max()),
                    mean: window.mean() / 1e9,
                    p50: s(window.value_at_quantile(0.5)),
                    p90: s(window.value_at_quantile(0.9)),
                    p99: s(window.value_at_quantile(0.99)),
                };
            }
            pool_queued = stats.last_queue_depths().pool_queued as u64;
        }
        let mut active_handles: Vec<(&'static str, u64)> = Vec::new();
        for h in lp.active_handles() {
            match active_handles.iter_mut().find(|(k, _)| *k == h.kind) {
                Some((_, n)) => *n += 1,
                None => active_handles.push((h.kind, 1)),
            }
        }
        active_handles.sort();
        LoopSample {
            utilization,
            lag,
            active_handles,
            pool_queued,
            iterations: now.iterations,
        }
    }
}

//! Encodes every worker's published snapshot (and the process's numbers) into the registry's
//! scrape, as one metric family per name with a `worker` label.

use std::collections::BTreeMap;
use std::fmt::Error;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric, NoLabelSet};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;

use super::http_stats::{Series, BUCKETS};
use super::loop_sample::LoopSample;
use super::process;

/// Reads one number out of a loop sample.
type SampleField = fn(&LoopSample) -> f64;

/// What one worker last published.
#[derive(Clone, Debug, Default)]
pub(crate) struct WorkerSnapshot {
    /// `http_request_duration_seconds` series: (method, route, status) -> histogram.
    pub http: Vec<((&'static str, String, u16), Series)>,
    pub in_flight: i64,
    pub open_connections: u64,
    /// Absent until the worker's first publish period has passed.
    pub loop_sample: Option<LoopSample>,
}

/// The state every worker publishes into and every scrape reads. Locked once per publish
/// period per worker and once per scrape; never on the request path.
#[derive(Debug, Default)]
pub(crate) struct Shared {
    pub workers: Mutex<BTreeMap<usize, WorkerSnapshot>>,
    pub log_dropped: Mutex<Option<Arc<AtomicU64>>>,
}

impl Shared {
    /// Runs `f` on worker `index`'s slot.
    pub fn update(&self, index: usize, f: impl FnOnce(&mut WorkerSnapshot)) {
        let mut w = self.workers.lock().unwrap_or_else(|e| e.into_inner());
        f(w.entry(index).or_default());
    }
}

/// The collector registered in every [`super::Metrics`] registry.
#[derive(Debug)]
pub(crate) struct OneloopCollector(pub Arc<Shared>);

/// Encodes one gauge family: a value per worker.
fn gauge_per_worker(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    values: &[(String, f64)],
) -> Result<(), Error> {
    if values.is_empty() {
        return Ok(());
    }
    let mut m = enc.encode_descriptor(name, help, None, MetricType::Gauge)?;
    for (worker, v) in values {
        let labels = [("worker", worker.as_str())];
        ConstGauge::new(*v).encode(m.encode_family(&labels)?)?;
    }
    Ok(())
}

fn gauge(enc: &mut DescriptorEncoder, name: &str, help: &str, v: f64) -> Result<(), Error> {
    let g = ConstGauge::new(v);
    g.encode(enc.encode_descriptor(name, help, None, g.metric_type())?)
}

fn counter(enc: &mut DescriptorEncoder, name: &str, help: &str, v: f64) -> Result<(), Error> {
    let c = ConstCounter::new(v);
    c.encode(enc.encode_descriptor(name, help, None, c.metric_type())?)
}

impl Collector for OneloopCollector {
    fn encode(&self, mut enc: DescriptorEncoder) -> Result<(), Error> {
        let workers = self
            .0
            .workers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let named: Vec<(String, &WorkerSnapshot)> =
            workers.iter().map(|(i, w)| (i.to_string(), w)).collect();

        // HTTP
        let mut m = enc.encode_descriptor(
            "http_request_duration_seconds",
            "Duration of HTTP requests in seconds, by method, route pattern and status code",
            None,
            MetricType::Histogram,
        )?;
        for (worker, w) in &named {
            for ((method, route, status), s) in &w.http {
                let status = status.to_string();
                let labels = [
                    ("worker", worker.as_str()),
                    ("method", method),
                    ("route", route.as_str()),
                    ("status_code", status.as_str()),
                ];
                let mut buckets: Vec<(f64, u64)> = BUCKETS.iter().copied().zip(s.buckets).collect();
                buckets.push((f64::INFINITY, s.buckets[BUCKETS.len()]));
                m.encode_family(&labels)?
                    .encode_histogram::<NoLabelSet>(s.sum, s.count, &buckets, None)?;
            }
        }
        let per = |f: &dyn Fn(&WorkerSnapshot) -> Option<f64>| -> Vec<(String, f64)> {
            named
                .iter()
                .filter_map(|(n, w)| f(w).map(|v| (n.clone(), v)))
                .collect()
        };
        gauge_per_worker(
            &mut enc,
            "http_requests_in_flight",
            "HTTP requests started and not yet finished",
            &per(&|w| Some(w.in_flight as f64)),
        )?;
        gauge_per_worker(
            &mut enc,
            "oneloop_open_connections",
            "Open HTTP connections",
            &per(&|w| Some(w.open_connections as f64)),
        )?;

        // The loop
        let sample = |f: fn(&LoopSample) -> f64| per(&move |w| w.loop_sample.as_ref().map(f));
        gauge_per_worker(
            &mut enc,
            "oneloop_eventloop_utilization",
            "Event-loop utilisation over the last publish period (0..1)",
            &sample(|s| s.utilization),
        )?;
        let lag: [(&str, SampleField); 6] = [
            ("min", |s| s.lag.min),
            ("max", |s| s.lag.max),
            ("mean", |s| s.lag.mean),
            ("p50", |s| s.lag.p50),
            ("p90", |s| s.lag.p90),
            ("p99", |s| s.lag.p99),
        ];
        for (stat, f) in lag {
            gauge_per_worker(
                &mut enc,
                &format!("oneloop_eventloop_lag_{stat}_seconds"),
                &format!("Event-loop delay over the last publish period: {stat}"),
                &sample(f),
            )?;
        }
        gauge_per_worker(
            &mut enc,
            "oneloop_threadpool_queued",
            "Thread-pool requests queued and not started",
            &sample(|s| s.pool_queued as f64),
        )?;
        let iterations = sample(|s| s.iterations as f64);
        if !iterations.is_empty() {
            let mut m = enc.encode_descriptor(
                "oneloop_eventloop_iterations",
                "Loop iterations",
                None,
                MetricType::Counter,
            )?;
            for (worker, v) in &iterations {
                ConstCounter::new(*v).encode(m.encode_family(&[("worker", worker.as_str())])?)?;
            }
        }
        let mut m = enc.encode_descriptor(
            "oneloop_active_handles",
            "Ref'd handles and requests keeping the loop alive, by type",
            None,
            MetricType::Gauge,
        )?;
        for (worker, w) in &named {
            for (kind, n) in w.loop_sample.iter().flat_map(|s| &s.active_handles) {
                let labels = [("worker", worker.as_str()), ("type", *kind)];
                ConstGauge::new(*n as f64).encode(m.encode_family(&labels)?)?;
            }
        }

        // The process
        let dropped = self
            .0
            .log_dropped
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .map_or(0, |d| d.load(Ordering::Relaxed));
        counter(
            &mut enc,
            "oneloop_log_lines_dropped",
            "Log lines dropped because the log queue was full",
            dropped as f64,
        )?;
        if let Some(p) = process::read() {
            let cpu = "Total user and system CPU time spent in seconds";
            counter(
                &mut enc,
                "process_cpu_user_seconds",
                "User CPU time spent in seconds",
                p.cpu_user_seconds,
            )?;
            counter(
                &mut enc,
                "process_cpu_system_seconds",
                "System CPU time spent in seconds",
                p.cpu_system_seconds,
            )?;
            counter(
                &mut enc,
                "process_cpu_seconds",
                cpu,
                p.cpu_user_seconds + p.cpu_system_seconds,
            )?;
            gauge(
                &mut enc,
                "process_resident_memory_bytes",
                "Resident memory size in bytes",
                p.resident_bytes as f64,
            )?;
            gauge(
                &mut enc,
                "process_virtual_memory_bytes",
                "Virtual memory size in bytes",
                p.virtual_bytes as f64,
            )?;
            gauge(
                &mut enc,
                "process_open_fds",
                "Number of open file descriptors",
                p.open_fds as f64,
            )?;
            gauge(
                &mut enc,
                "process_max_fds",
                "Maximum number of open file descriptors",
                p.max_fds as f64,
            )?;
            gauge(
                &mut enc,
                "process_start_time_seconds",
                "Start time of the process since unix epoch in seconds",
                p.start_time_seconds,
            )?;
        }
        Ok(())
    }
}

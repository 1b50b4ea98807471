//! Prometheus metrics for an app: request durations by route, the loop's own measurements
//! (utilisation, delay, handles, thread-pool queue), open connections, the process's CPU,
//! memory and descriptors, and any metric the application registers; served as OpenMetrics
//! text by `GET /metrics` (the `prometheus-client` crate encodes it).
//!
//! ```no_run
//! use oneloop::app::{metrics::Metrics, App};
//! use prometheus_client::metrics::counter::Counter;
//! use oneloop_runtime::Loop;
//! let metrics = Metrics::new();                        // once per process
//! let orders: Counter = Counter::default();            // an app metric
//! metrics.register("orders_placed", "Orders placed", orders.clone());
//! let mut lp = Loop::new()?;
//! let worker = metrics.worker(&mut lp, 0);             // once per loop (worker)
//! let mut app = App::new();
//! app.use_(worker.middleware());                      // http_request_duration_seconds, in flight
//! app.get("/metrics", worker.handler());
//! app.post("/orders", move |_req, res| { orders.inc(); res.status(201).end() });
//! let server = app.listen_on(&mut lp, "127.0.0.1:3000", Default::default(), |_, _| {})?;
//! worker.track_server(&server);                        // oneloop_open_connections
//! lp.run()?;
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! # Workers
//! With [`crate::cluster`] each worker calls [`Metrics::worker`] on its own loop with its
//! index. A worker updates its request histograms on its own thread with no lock (an
//! `Rc<RefCell<..>>` only it touches) and publishes a copy into the shared state once per
//! publish period ([`Metrics::with_publish_period`], default 1 s), together with a sample of
//! its loop; the scraping worker publishes its own copy first. One scrape therefore covers
//! every worker, labelled `worker="N"`: the scraping worker's request counts are exact, the
//! others' and every loop sample are at most one period old.
//!
//! # Names
//! prom-client / fastify-metrics names where they exist (`http_request_duration_seconds` with
//! `method`, `route`, `status_code`; `process_*`); the loop's under `oneloop_`, because they
//! are measured differently from Node's (see docs/app.md "Metrics"):
//! `oneloop_eventloop_lag_{min,max,mean,p50,p90,p99}_seconds`,
//! `oneloop_eventloop_utilization`, `oneloop_active_handles{type}`,
//! `oneloop_threadpool_queued`, `oneloop_open_connections`, `oneloop_eventloop_iterations_total`,
//! `oneloop_log_lines_dropped_total`, `http_requests_in_flight`.

mod collector;
pub mod http_stats;
pub mod loop_sample;
pub mod process;

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use oneloop_runtime::Loop;
use prometheus_client::registry::{Metric, Registry};

use self::collector::{OneloopCollector, Shared};
use self::http_stats::{method_label, method_label_of, HttpStats, UNMATCHED_ROUTE};
use self::loop_sample::LoopSampler;
use super::logger::AccessLine;
use super::{App, Middleware, Req, Res};
use crate::http;
use crate::logging::LogHandle;

/// The content type of the scrape (OpenMetrics 1.0 text; Prometheus asks for it).
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// A process's metrics: the registry (app metrics plus oneloop's collector) and what workers
/// publish. `Send + Sync`; clone it into each worker.
#[derive(Clone)]
pub struct Metrics {
    registry: Arc<Mutex<Registry>>,
    shared: Arc<Shared>,
    publish_every: Duration,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// A registry with oneloop's metrics, publish period 1 s.
    pub fn new() -> Metrics {
        Metrics::with_publish_period(Duration::from_secs(1))
    }

    /// As [`Metrics::new`], workers publishing every `period` (the window of the loop's
    /// utilisation and delay figures; at least 10 ms).
    pub fn with_publish_period(period: Duration) -> Metrics {
        let shared = Arc::new(Shared::default());
        let mut registry = Registry::default();
        registry.register_collector(Box::new(OneloopCollector(Arc::clone(&shared))));
        Metrics {
            registry: Arc::new(Mutex::new(registry)),
            shared,
            publish_every: period.max(Duration::from_millis(10)),
        }
    }

    /// Registers an application metric (a `prometheus_client` counter, gauge, histogram or
    /// family; they are atomics, so clones may be updated from any worker).
    pub fn register(&self, name: &str, help: &str, metric: impl Metric) {
        self.with_registry(|r| r.register(name, help, metric));
    }

    /// Runs `f` with the registry (for units, sub-registries, collectors).
    pub fn with_registry<T>(&self, f: impl FnOnce(&mut Registry) -> T) -> T {
        f(&mut self.registry.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Exports the log sink's dropped-lines count as `oneloop_log_lines_dropped_total`.
    pub fn watch_log(&self, log: &LogHandle) {
        *self
            .shared
            .log_dropped
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Some(log.dropped_counter());
    }

    /// The scrape: every metric as OpenMetrics text.
    pub fn encode(&self) -> String {
        let mut out = String::with_capacity(16 * 1024);
        let registry = self.registry.lock().unwrap_or_else(|e| e.into_inner());
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &registry) {
            log::error!("metrics: encoding failed: {e}");
        }
        out
    }

    /// This loop's part of the metrics, as worker `index`: turns the loop's per-phase metrics
    /// on and starts an unref'd publish timer (it never keeps the loop alive).
    pub fn worker(&self, lp: &mut Loop, index: usize) -> WorkerMetrics {
        let worker = WorkerMetrics {
            metrics: self.clone(),
            index,
            http: Rc::default(),
            servers: Rc::default(),
            unmatched: Rc::from(UNMATCHED_ROUTE),
        };
        let mut sampler = LoopSampler::new(lp);
        let w = worker.clone();
        let timer = lp.set_interval(self.publish_every, move |lp| {
            let sample = sampler.sample(lp);
            w.publish_http();
            w.metrics
                .shared
                .update(w.index, |snap| snap.loop_sample = Some(sample));
        });
        let _ = lp.unref(timer);
        worker.publish_http();
        worker
    }
}

/// One worker's metrics (not `Send`: lives on its loop's thread).
#[derive(Clone)]
pub struct WorkerMetrics {
    metrics: Metrics,
    index: usize,
    http: Rc<RefCell<HttpStats>>,
    servers: Rc<RefCell<Vec<http::Server>>>,
    unmatched: Rc<str>,
}

/// Decrements `in_flight` when dropped: when the finish hook runs, or when a response is
/// dropped unfinished (its hooks are dropped then), so the gauge cannot leak.
struct InFlight(Rc<RefCell<HttpStats>>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.borrow_mut().in_flight -= 1;
    }
}

impl WorkerMetrics {
    /// The worker index this records as (`worker` label).
    pub fn index(&self) -> usize {
        self.index
    }

    /// The [`Metrics`] this worker publishes into.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Counts open connections of `server` (`oneloop_open_connections`).
    pub fn track_server(&self, server: &http::Server) {
        self.servers.borrow_mut().push(server.clone());
    }

    /// Middleware recording `http_request_duration_seconds` (by method, route pattern,
    /// status) and `http_requests_in_flight`. Put it first, so the duration covers the other
    /// middleware.
    pub fn middleware(&self) -> impl Fn(&mut Req, &mut Res, super::Next) + 'static {
        self.timing(false)
    }

    /// [`WorkerMetrics::middleware`] and the access log ([`logger`](super::logger::logger))
    /// as one middleware: the same series and the same lines, for one chain layer, one finish
    /// hook and one clock read at each end instead of two of each (about a tenth of the CPU a
    /// request costs in `hello_app --observe`, docs/benchmarks.md). Put it first.
    pub fn middleware_with_access_log(&self) -> impl Fn(&mut Req, &mut Res, super::Next) + 'static {
        self.timing(true)
    }

    fn timing(&self, access_log: bool) -> impl Fn(&mut Req, &mut Res, super::Next) + 'static {
        let http = Rc::clone(&self.http);
        let unmatched = Rc::clone(&self.unmatched);
        move |req, res, next| {
            let started = req.start_time();
            http.borrow_mut().in_flight += 1;
            let guard = InFlight(Rc::clone(&http));
            let method = match req.http() {
                Some(r) => method_label_of(r.method_kind()),
                None => method_label(req.method()),
            };
            let route = req.route_shared().unwrap_or_else(|| Rc::clone(&unmatched));
            let line = if access_log {
                AccessLine::begin(req)
            } else {
                None
            };
            res.on_finish(move |status, _bytes| {
                let now = Instant::now();
                let elapsed = now.saturating_duration_since(started);
                guard
                    .0
                    .borrow_mut()
                    .observe((method, route, status), elapsed.as_secs_f64());
                drop(guard);
                if let Some(line) = line {
                    line.finish(status, elapsed, now);
                }
            });
            next.call();
        }
    }

    /// [`WorkerMetrics::middleware`] as a [`Middleware`] value.
    pub fn middleware_rc(&self) -> Middleware {
        Rc::new(self.middleware())
    }

    /// Publishes this worker's request counts, then encodes the scrape (for servers without
    /// the app layer; [`WorkerMetrics::handler`] is this as a route).
    pub fn scrape(&self) -> String {
        self.publish_http();
        self.metrics.encode()
    }

    /// `GET /metrics`: publishes this worker's request counts, then answers the scrape.
    pub fn handler(&self) -> impl Fn(&mut Req, &mut Res) + 'static {
        let worker = self.clone();
        move |_req, res| {
            let body = worker.scrape();
            res.set_static("content-type", CONTENT_TYPE);
            res.set_static("cache-control", "no-store");
            res.send_bytes(body.as_bytes());
        }
    }

    /// The middleware first, `GET /metrics`.
    pub fn install(&self, app: &mut App) {
        app.use_(self.middleware());
        app.get("/metrics", self.handler());
    }

    /// [`WorkerMetrics::middleware_with_access_log`] first, `GET /metrics`: what
    /// [`WorkerMetrics::install`] then `app.use_(logger())` do, cheaper.
    pub fn install_with_access_log(&self, app: &mut App) {
        app.use_(self.middleware_with_access_log());
        app.get("/metrics", self.handler());
    }

    /// Copies this worker's request histograms, in-flight count and open connections into the
    /// shared state.
    fn publish_http(&self) {
        let (series, in_flight) = {
            let h = self.http.borrow();
            (h.snapshot(), h.in_flight)
        };
        let open: usize = self.servers.borrow().iter().map(|s| s.connections()).sum();
        self.metrics.shared.update(self.index, |snap| {
            snap.http = series;
            snap.in_flight = in_flight;
            snap.open_connections = open as u64;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::InjectRequest;

    #[test]
    fn middleware_with_access_log_records_what_the_metrics_middleware_records() {
        let mut lp = Loop::new().unwrap();
        let metrics = Metrics::new();
        let worker = metrics.worker(&mut lp, 0);
        let mut app = App::new();
        worker.install_with_access_log(&mut app);
        app.get("/api/users/:id", |req, res| {
            res.send_text(req.param("id").unwrap_or_default())
        });
        for path in ["/api/users/7", "/api/users/8", "/nowhere"] {
            app.inject(&mut lp, InjectRequest::new("GET", path))
                .unwrap();
        }
        let scrape = app
            .inject(&mut lp, InjectRequest::new("GET", "/metrics"))
            .unwrap()
            .text();
        for series in [
            r#"http_request_duration_seconds_count{worker="0",method="GET",route="/api/users/:id",status_code="200"} 2"#,
            r#"http_request_duration_seconds_count{worker="0",method="GET",route="unmatched",status_code="404"} 1"#,
            // The scrape itself is in flight while it is encoded.
            r#"http_requests_in_flight{worker="0"} 1"#,
        ] {
            assert!(scrape.contains(series), "{series} not in\n{scrape}");
        }
        assert_eq!(worker.http.borrow().in_flight, 0);
    }
}

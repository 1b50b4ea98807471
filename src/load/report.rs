//! The outcome of a run: counts, latency histogram, and their human and JSON forms.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde_json::{json, Value};

/// Errors, counted by kind. Each counts events, except `timeout` and `closed`, which count
/// the requests that were lost.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ErrorCounts {
    /// Connects refused, failed, or slower than the timeout.
    pub connect: u64,
    /// Socket errors while reading (a reset, for instance).
    pub read: u64,
    /// Socket errors while writing (a broken pipe).
    pub write: u64,
    /// Requests with no response within the timeout (the connection is then reopened).
    pub timeout: u64,
    /// Requests in flight when the server closed the connection.
    pub closed: u64,
    /// Responses the parser could not frame (the connection is then reopened).
    pub parse: u64,
}

impl ErrorCounts {
    /// All errors together.
    pub fn total(&self) -> u64 {
        self.connect + self.read + self.write + self.timeout + self.closed + self.parse
    }
}

/// The `--idle` connections.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IdleReport {
    /// Connections asked for.
    pub connections: usize,
    /// Connections established.
    pub connected: u64,
    /// Connections whose first request was answered.
    pub answered: u64,
    /// Repeated requests answered (`--idle-every`).
    pub repeats: u64,
    /// Connections the server closed before the run ended.
    pub closed_by_server: u64,
    /// Connects that failed.
    pub connect_errors: u64,
}

/// The `--slowloris` connections.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SlowlorisReport {
    /// Connections asked for.
    pub connections: usize,
    /// Connections established.
    pub connected: u64,
    /// Connects that failed.
    pub connect_errors: u64,
    /// Connections the server closed before the run ended.
    pub closed_by_server: u64,
    /// Statuses the server answered the dripping requests with (408 expected).
    pub statuses: BTreeMap<u16, u64>,
    /// How long the server let each closed connection drip, in seconds, sorted.
    pub held_secs: Vec<f64>,
}

/// TLS handshakes of the load connections (`https://`), counted as each completes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HandshakeCounts {
    /// Full handshakes (certificate and key exchange).
    pub full: u64,
    /// Resumed handshakes (a session ticket or id accepted by the server).
    pub resumed: u64,
}

/// What a run measured. Every count covers the measured window only (after the warm-up).
#[derive(Clone, Debug)]
pub struct Report {
    /// The URL loaded.
    pub url: String,
    /// Keep-alive connections.
    pub connections: usize,
    /// Requests in flight per connection.
    pub pipeline: usize,
    /// The open-loop rate asked for, `None` in closed loop.
    pub target_rate: Option<f64>,
    /// The measured window.
    pub elapsed: Duration,
    /// Responses received (any status).
    pub requests: u64,
    /// Bytes read from the load connections.
    pub bytes: u64,
    /// Latency in nanoseconds: from send (closed loop) or from the intended send time (open
    /// loop) to the end of the response.
    pub latency: Histogram<u64>,
    /// Responses by status code.
    pub statuses: BTreeMap<u16, u64>,
    /// Responses with a status outside 200..=299.
    pub non_2xx: u64,
    /// Errors by kind.
    pub errors: ErrorCounts,
    /// Connections established (more than `connections` when some were reopened).
    pub connects: u64,
    /// TLS handshakes on the load connections, for an `https://` run.
    pub handshakes: Option<HandshakeCounts>,
    /// The idle connections, when asked for.
    pub idle: Option<IdleReport>,
    /// The slowloris connections, when asked for.
    pub slowloris: Option<SlowlorisReport>,
}

/// The percentiles reported.
pub const PERCENTILES: [f64; 6] = [50.0, 75.0, 90.0, 99.0, 99.9, 99.99];

impl Report {
    /// Responses per second over the measured window.
    pub fn requests_per_sec(&self) -> f64 {
        per_sec(self.requests as f64, self.elapsed)
    }

    /// A latency percentile in nanoseconds (0 when nothing was measured).
    pub fn percentile_ns(&self, p: f64) -> u64 {
        if self.latency.is_empty() {
            0
        } else {
            self.latency.value_at_quantile(p / 100.0)
        }
    }

    /// The report as JSON (latencies in microseconds).
    pub fn to_json(&self) -> Value {
        let us = |ns: f64| (ns / 1e3 * 1000.0).round() / 1000.0;
        let h = &self.latency;
        let (min, max, mean, stdev) = if h.is_empty() {
            (0.0, 0.0, 0.0, 0.0)
        } else {
            (h.min() as f64, h.max() as f64, h.mean(), h.stdev())
        };
        let mut lat = serde_json::Map::new();
        lat.insert("min".into(), json!(us(min)));
        lat.insert("mean".into(), json!(us(mean)));
        lat.insert("stdev".into(), json!(us(stdev)));
        lat.insert("max".into(), json!(us(max)));
        for p in PERCENTILES {
            let key = format!("p{}", p.to_string().replace('.', "_"));
            lat.insert(key, json!(us(self.percentile_ns(p) as f64)));
        }
        let statuses: serde_json::Map<String, Value> = self
            .statuses
            .iter()
            .map(|(k, v)| (k.to_string(), json!(v)))
            .collect();
        let e = &self.errors;
        json!({
            "url": self.url,
            "mode": if self.target_rate.is_some() { "open" } else { "closed" },
            "connections": self.connections,
            "pipeline": self.pipeline,
            "target_rate": self.target_rate,
            "duration_s": self.elapsed.as_secs_f64(),
            "requests": self.requests,
            "requests_per_sec": self.requests_per_sec(),
            "bytes": self.bytes,
            "bytes_per_sec": per_sec(self.bytes as f64, self.elapsed),
            "latency_us": lat,
            "statuses": statuses,
            "non_2xx": self.non_2xx,
            "errors": {
                "connect": e.connect, "read": e.read, "write": e.write,
                "timeout": e.timeout, "closed": e.closed, "parse": e.parse,
                "total": e.total(),
            },
            "connects": self.connects,
            "handshakes": self.handshakes.map(|h| json!({
                "full": h.full, "resumed": h.resumed,
                "per_sec": per_sec((h.full + h.resumed) as f64, self.elapsed),
            })),
            "idle": self.idle.map(|i| json!({
                "connections": i.connections, "connected": i.connected,
                "answered": i.answered, "repeats": i.repeats,
                "closed_by_server": i.closed_by_server,
                "connect_errors": i.connect_errors,
            })),
            "slowloris": self.slowloris.as_ref().map(|s| json!({
                "connections": s.connections, "connected": s.connected,
                "connect_errors": s.connect_errors, "closed_by_server": s.closed_by_server,
                "statuses": s.statuses.iter().map(|(k, v)| (k.to_string(), json!(v)))
                    .collect::<serde_json::Map<String, Value>>(),
                "held_s_median": median(&s.held_secs),
                "held_s_max": s.held_secs.last().copied(),
            })),
        })
    }

    /// The summary printed at the end of a run, in the spirit of wrk's.
    pub fn human(&self) -> String {
        let mut s = String::new();
        let mode = match self.target_rate {
            Some(r) => format!("open loop at {r} req/s"),
            None => "closed loop".to_owned(),
        };
        let _ = writeln!(
            s,
            "{:.2}s against {} ({mode}), {} connections, pipeline {}",
            self.elapsed.as_secs_f64(),
            self.url,
            self.connections,
            self.pipeline
        );
        let h = &self.latency;
        if !h.is_empty() {
            let _ = writeln!(
                s,
                "  Latency   avg {}  stdev {}  min {}  max {}",
                fmt_ns(h.mean()),
                fmt_ns(h.stdev()),
                fmt_ns(h.min() as f64),
                fmt_ns(h.max() as f64)
            );
            let _ = write!(s, "           ");
            for p in PERCENTILES {
                let _ = write!(s, " p{p} {} ", fmt_ns(self.percentile_ns(p) as f64));
            }
            s.push('\n');
        }
        let _ = writeln!(
            s,
            "  {} requests, {} read",
            self.requests,
            fmt_bytes(self.bytes as f64)
        );
        let _ = writeln!(
            s,
            "Requests/sec: {:.2}\nTransfer/sec: {}",
            self.requests_per_sec(),
            fmt_bytes(per_sec(self.bytes as f64, self.elapsed))
        );
        if self.non_2xx > 0 {
            let _ = writeln!(
                s,
                "  Non-2xx responses: {} {:?}",
                self.non_2xx, self.statuses
            );
        }
        let e = &self.errors;
        if e.total() > 0 {
            let _ = writeln!(
                s,
                "  Errors: connect {}, read {}, write {}, timeout {}, closed {}, parse {}",
                e.connect, e.read, e.write, e.timeout, e.closed, e.parse
            );
        }
        if self.connects > self.connections as u64 {
            let _ = writeln!(s, "  Connections opened: {}", self.connects);
        }
        if let Some(h) = &self.handshakes {
            let _ = writeln!(
                s,
                "  TLS handshakes: {} full, {} resumed ({:.2}/s)",
                h.full,
                h.resumed,
                per_sec((h.full + h.resumed) as f64, self.elapsed)
            );
        }
        if let Some(i) = &self.idle {
            let _ = writeln!(
                s,
                "  Idle: {} asked, {} connected, {} answered ({} repeats), {} closed by server, {} connect errors",
                i.connections, i.connected, i.answered, i.repeats, i.closed_by_server, i.connect_errors
            );
        }
        if let Some(sl) = &self.slowloris {
            let _ = writeln!(
                s,
                "  Slowloris: {} asked, {} connected, {} closed by server (statuses {:?}), held median {:.1}s max {:.1}s, {} connect errors",
                sl.connections,
                sl.connected,
                sl.closed_by_server,
                sl.statuses,
                median(&sl.held_secs).unwrap_or(0.0),
                sl.held_secs.last().copied().unwrap_or(0.0),
                sl.connect_errors
            );
        }
        s
    }
}

fn per_sec(n: f64, d: Duration) -> f64 {
    let secs = d.as_secs_f64();
    if secs > 0.0 {
        n / secs
    } else {
        0.0
    }
}

fn median(sorted: &[f64]) -> Option<f64> {
    sorted.get(sorted.len() / 2).copied()
}

fn fmt_ns(ns: f64) -> String {
    if ns >= 1e9 {
        format!("{:.2}s", ns / 1e9)
    } else if ns >= 1e6 {
        format!("{:.2}ms", ns / 1e6)
    } else {
        format!("{:.2}us", ns / 1e3)
    }
}

fn fmt_bytes(b: f64) -> String {
    if b >= 1024.0 * 1024.0 * 1024.0 {
        format!("{:.2}GB", b / (1024.0 * 1024.0 * 1024.0))
    } else if b >= 1024.0 * 1024.0 {
        format!("{:.2}MB", b / (1024.0 * 1024.0))
    } else if b >= 1024.0 {
        format!("{:.2}KB", b / 1024.0)
    } else {
        format!("{b:.0}B")
    }
}

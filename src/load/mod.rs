//! `oneloop-load`, the load generator, as a library: build a [`LoadConfig`], call [`run`],
//! read the [`Report`].
//!
//! It runs on oneloop's own [`Loop`](crate::runtime::Loop) and TCP client (`tcp_connect`),
//! one thread, as the servers it measures do. See docs/load.md for the command line and what
//! every number means.
//!
//! ```text
//! config.rs    LoadConfig, the command line (parse_args), durations
//! engine.rs    the run: connections, closed/open-loop schedule, timeouts, counting
//! response.rs  a small response framer (status, Content-Length or chunked, close)
//! report.rs    Report: counts, HDR latency histogram, human and JSON output
//! ```
//!
//! # Closed and open loop
//!
//! Closed loop (the default, as wrk): each connection keeps `pipeline` requests in flight and
//! sends the next as soon as a response arrives; latency runs from the send. Open loop
//! (`rate`, as wrk2): each connection has a fixed schedule of *intended* send times, and
//! latency runs from the intended time, so a server that stalls is charged for the requests
//! that could not be sent while it stalled (no coordinated omission).
//!
//! ```no_run
//! use oneloop::load::{self, LoadConfig};
//! use std::time::Duration;
//!
//! let mut config = LoadConfig::new("http://127.0.0.1:3000/plaintext")?;
//! config.connections = 64;
//! config.duration = Duration::from_secs(5);
//! let report = load::run(config, None)?;
//! println!("{:.0} req/s, p99 {} ns", report.requests_per_sec(), report.percentile_ns(99.0));
//! # Ok::<(), std::io::Error>(())
//! ```

mod config;
mod engine;
mod report;
pub mod response;
pub mod ws;

pub use config::{parse_args, parse_duration, Command, LoadConfig, USAGE};
pub use engine::{run, Progress, ProgressFn};
pub use report::{ErrorCounts, HandshakeCounts, IdleReport, Report, SlowlorisReport, PERCENTILES};

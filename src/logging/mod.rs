//! The log sink: pino-shaped JSON lines (or text lines for development) on the `log` crate, so
//! library records, the access log and the application's own records share one output.
//!
//! ```no_run
//! // LOG_LEVEL=debug (pino's names) or RUST_LOG=oneloop=debug; LOG_FORMAT=text for text lines.
//! let logs = oneloop::logging::init_from_env()?;
//! log::info!("server starting");          // {"level":30,"time":..,"pid":..,"hostname":..,"msg":"server starting"}
//! log::info!(port = 3000; "listening");   // ..,"port":3000,"msg":"listening"}
//! # let _ = logs.dropped_lines();
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! # Guarantees
//! - A log call never blocks on the output: it formats the line into a bounded buffer that a
//!   writer thread empties (see [`writer`] for the bound); when the buffer is full the line is
//!   dropped and counted ([`LogHandle::dropped_lines`], exported by the metrics as
//!   `oneloop_log_lines_dropped_total`).
//! - Lines are written whole, in the order they were queued.
//!
//! # Pitfalls
//! - A record's line is formatted on the calling thread before it is queued: a `Display`
//!   implementation that itself logs queues its own line first (on its own thread it gets a
//!   fresh scratch string, not the one being formatted into).
//! - Lines still queued when the process exits are lost unless [`LogHandle::flush`] (or
//!   `log::logger().flush()`) runs first; the examples flush after their loop returns.

mod filter;
mod format;
pub mod writer;

use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub use filter::{parse_level, Filter};
pub use format::pino_level;
#[cfg(test)]
pub(crate) use format::{json_bindings, json_line, push_json_head};
pub(crate) use format::{push_json_millis, push_json_string};
use writer::LineWriter;

/// The line format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// pino's JSON shape (the default).
    Json,
    /// `LEVEL target: message key=value`, for a terminal.
    Text,
}

impl Format {
    /// `LOG_FORMAT` (`json` or `text`); JSON when unset.
    ///
    /// # Errors
    /// Any other value.
    pub fn from_env() -> Result<Format, String> {
        match std::env::var("LOG_FORMAT").as_deref() {
            Err(_) | Ok("json") => Ok(Format::Json),
            Ok("text") | Ok("pretty") => Ok(Format::Text),
            Ok(other) => Err(format!("LOG_FORMAT={other:?}: expected json or text")),
        }
    }
}

/// The `log::Log` implementation: filter, format, queue.
pub struct Logger {
    format: Format,
    filter: Filter,
    /// `,"pid":N,"hostname":"h",` (fixed for the process).
    bindings: String,
    writer: LineWriter,
}

/// What [`init`] returns: the dropped-lines counter and a flush.
#[derive(Clone)]
pub struct LogHandle {
    dropped: Arc<AtomicU64>,
}

impl LogHandle {
    /// Lines dropped because the queue was full.
    pub fn dropped_lines(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// The shared counter (the metrics read it).
    pub fn dropped_counter(&self) -> Arc<AtomicU64> {
        Arc::clone(&self.dropped)
    }

    /// Writes out every line queued so far (blocks until done: call it at exit).
    pub fn flush(&self) {
        log::logger().flush();
    }
}

/// The machine's host name (pino's `hostname`): `/proc/sys/kernel/hostname`, else `HOSTNAME`.
fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_default()
}

impl Logger {
    /// A logger writing to `out` from its own thread.
    ///
    /// # Errors
    /// The writer thread cannot be started.
    pub fn new(
        format: Format,
        filter: Filter,
        out: Box<dyn io::Write + Send>,
    ) -> io::Result<Logger> {
        Ok(Logger {
            format,
            filter,
            bindings: format::json_bindings(std::process::id(), &hostname()),
            writer: LineWriter::spawn(out)?,
        })
    }

    /// Installs this logger as the process's `log` logger.
    ///
    /// # Errors
    /// Another logger is already installed.
    pub fn install(self) -> io::Result<LogHandle> {
        let handle = LogHandle {
            dropped: self.writer.dropped(),
        };
        let max = self.filter.max();
        let direct = DirectJson {
            access_max: self.filter.for_target(ACCESS_TARGET),
            bindings: self.bindings.clone(),
            writer: self.writer.clone(),
        };
        let json = self.format == Format::Json;
        log::set_boxed_logger(Box::new(self))
            .map_err(|e| io::Error::new(io::ErrorKind::AlreadyExists, e.to_string()))?;
        log::set_max_level(max);
        if json {
            // Only the first install reaches here (`set_boxed_logger` refuses a second).
            let _ = DIRECT_JSON.set(direct);
        }
        Ok(handle)
    }
}

impl log::Log for Logger {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.level() <= self.filter.for_target(metadata.target())
    }

    fn log(&self, record: &log::Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let format = |out: &mut String| match self.format {
            Format::Json => format::push_json_line(out, record, format::epoch_ms(), &self.bindings),
            Format::Text => format::push_text_line(out, record),
        };
        // Formatted into this thread's scratch string, then copied into the queue whole (the
        // queue holds bytes; the access log's fast path writes into it directly).
        let queued = SCRATCH.try_with(|scratch| {
            let Ok(mut line) = scratch.try_borrow_mut() else {
                return false;
            };
            line.clear();
            format(&mut line);
            self.writer
                .write_line(|out| out.extend_from_slice(line.as_bytes()));
            if line.capacity() > SCRATCH_KEEP {
                *line = String::new();
            }
            true
        });
        if queued != Ok(true) {
            // Logging from inside a value's `Display` while its line is formatted, or from a
            // thread-local destructor: a string of its own.
            let mut line = String::new();
            format(&mut line);
            self.writer
                .write_line(|out| out.extend_from_slice(line.as_bytes()));
        }
    }

    fn flush(&self) {
        self.writer.flush();
    }
}

/// Largest scratch string [`Logger::log`] keeps for the thread's next record.
const SCRATCH_KEEP: usize = 16 * 1024;

thread_local! {
    static SCRATCH: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
}

/// The `log` target of the access log ([`crate::app::logger`]).
pub const ACCESS_TARGET: &str = "oneloop::access";

/// What [`Logger::install`] leaves for the access log's direct path: the installed JSON
/// logger's bindings and queue, so a request's line is formatted straight into the queue
/// (no `log::Record`, no key-value visitor, no intermediate string). Set once, by the first
/// JSON logger installed; the `log` crate's own logger is process-wide in the same way.
struct DirectJson {
    access_max: log::LevelFilter,
    bindings: String,
    writer: LineWriter,
}

static DIRECT_JSON: std::sync::OnceLock<DirectJson> = std::sync::OnceLock::new();

/// Whether the access log can take the direct JSON path: `Some(most verbose level the access
/// target logs at)` when a JSON [`Logger`] of this module is installed (the filter was
/// resolved for [`ACCESS_TARGET`] at install, so no per-request target matching). `None`:
/// access lines go through `log::log!` (text format, another logger).
pub(crate) fn direct_access_max() -> Option<log::LevelFilter> {
    DIRECT_JSON
        .get()
        .map(|d| d.access_max.min(log::max_level()))
}

/// Writes one JSON line at `level` for [`ACCESS_TARGET`] through the installed JSON logger:
/// `{"level":..,"time":..,"pid":..,"hostname":..,` then what `fields` writes (members, each
/// followed by a comma), then `"msg":"request completed"}`. The same bytes as the generic path
/// (`format::push_json_line` of a record with the same key-values), checked by a test.
/// `now` is the monotonic time the line is for (the clock read that also timed the
/// response): `time` is derived from it ([`AccessCache::epoch_ms_at`]). `fields` also gets
/// this thread's [`Ipv4Json`]. Returns false (writing nothing) if no JSON logger is
/// installed; true if the level is filtered out.
pub(crate) fn write_access_json(
    level: log::Level,
    now: Instant,
    fields: impl FnOnce(&mut Vec<u8>, &mut Ipv4Json),
) -> bool {
    let Some(direct) = DIRECT_JSON.get() else {
        return false;
    };
    if level > direct.access_max {
        return true;
    }
    ACCESS_CACHE.with_borrow_mut(|cache| {
        let fresh = matches!(cache.head_for, Some((from, until, l))
            if l == level && from <= now && now < until);
        if !fresh {
            cache.new_head(level, now, &direct.bindings);
        }
        let AccessCache { head, ip, .. } = cache;
        direct.writer.write_line(|out| {
            out.extend_from_slice(head.as_bytes());
            fields(out, ip);
            out.extend_from_slice(b"\"msg\":\"request completed\"}\n");
        });
    });
    true
}

/// How long a pairing of the monotonic clock with the wall clock is used by
/// [`AccessCache::epoch_ms_at`] before the wall clock is read again.
const WALL_CLOCK_REREAD: Duration = Duration::from_secs(1);

/// One thread's state for its access lines (one thread-local, so one lookup per line).
struct AccessCache {
    /// The last line head formatted (`{"level":..,"time":..` and the bindings): the lines of
    /// one millisecond at one level copy it instead of formatting the level, the 13-digit
    /// time and the bindings again.
    head: String,
    /// The monotonic instants `[from, until)` that `head` is right for (the wall clock's
    /// millisecond it names), and its level: a line checks two instants, no clock arithmetic.
    head_for: Option<(Instant, Instant, log::Level)>,
    /// (monotonic instant, wall-clock nanoseconds since the epoch at that instant).
    anchor: Option<(Instant, u64)>,
    ip: Ipv4Json,
}

thread_local! {
    static ACCESS_CACHE: std::cell::RefCell<AccessCache> = const {
        std::cell::RefCell::new(AccessCache::EMPTY)
    };
}

impl AccessCache {
    /// No head, no wall-clock anchor, no address formatted yet.
    const EMPTY: AccessCache = AccessCache {
        head: String::new(),
        head_for: None,
        anchor: None,
        ip: Ipv4Json {
            last: None,
            json: [0; 17],
            len: 0,
        },
    };

    /// Formats the head for `level` at `now` and notes the instants it holds for.
    #[cold]
    #[inline(never)]
    fn new_head(&mut self, level: log::Level, now: Instant, bindings: &str) {
        let wall_ns = self.epoch_ns_at(now);
        self.head.clear();
        format::push_json_head(&mut self.head, level, wall_ns / 1_000_000, bindings);
        let rest_of_ms = Duration::from_nanos(1_000_000 - wall_ns % 1_000_000);
        self.head_for = now.checked_add(rest_of_ms).map(|until| (now, until, level));
    }

    /// Milliseconds since the Unix epoch at the monotonic instant `now`.
    #[cfg(test)]
    fn epoch_ms_at(&mut self, now: Instant) -> u64 {
        self.epoch_ns_at(now) / 1_000_000
    }

    /// Nanoseconds since the Unix epoch at the monotonic instant `now`, for the access
    /// lines' `time`: the wall clock is read at most once per [`WALL_CLOCK_REREAD`] on each
    /// thread and the monotonic clock's progress since then added (one clock read per line
    /// instead of two: the response's timing already read `now`). Bound: a wall-clock step
    /// (settimeofday, an NTP step) shows within a second; NTP's slewing (at most 500 ppm)
    /// moves the two clocks apart by at most 0.5 ms in that second. `now` must be a fresh
    /// reading (an older one re-anchors the wall clock to it).
    fn epoch_ns_at(&mut self, now: Instant) -> u64 {
        if let Some((at, wall_ns)) = self.anchor {
            match now.checked_duration_since(at) {
                Some(since) if since < WALL_CLOCK_REREAD => {
                    return wall_ns + since.as_nanos() as u64;
                }
                _ => {}
            }
        }
        let wall_ns = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        self.anchor = Some((now, wall_ns));
        wall_ns
    }
}

/// The last IPv4 address written as a JSON string on this thread, and its bytes: the peers
/// of one server are mostly one address (a proxy, a load balancer, loopback), so a line
/// usually copies it instead of formatting four octets.
#[derive(Default)]
pub(crate) struct Ipv4Json {
    last: Option<std::net::Ipv4Addr>,
    json: [u8; 17],
    len: usize,
}

impl Ipv4Json {
    /// Appends `ip` as a JSON string (what `Display` writes, quoted).
    pub(crate) fn push(&mut self, out: &mut Vec<u8>, ip: std::net::Ipv4Addr) {
        if self.last != Some(ip) {
            self.format(ip);
        }
        out.extend_from_slice(self.json.get(..self.len).unwrap_or_default());
    }

    #[cold]
    #[inline(never)]
    fn format(&mut self, ip: std::net::Ipv4Addr) {
        (self.json, self.len) = format::ipv4_json(ip);
        self.last = Some(ip);
    }
}

/// Installs a logger to stdout with `format` and `filter`.
///
/// # Errors
/// Another logger is installed, or the writer thread cannot start.
pub fn init(format: Format, filter: Filter) -> io::Result<LogHandle> {
    Logger::new(format, filter, Box::new(io::stdout()))?.install()
}

/// [`init`] with `LOG_FORMAT` ([`Format::from_env`]) and `LOG_LEVEL`/`RUST_LOG`
/// ([`Filter::from_env`]).
///
/// # Errors
/// A bad variable (the message names it), or as [`init`].
pub fn init_from_env() -> io::Result<LogHandle> {
    let bad = |e: String| io::Error::new(io::ErrorKind::InvalidInput, e);
    init(
        Format::from_env().map_err(bad)?,
        Filter::from_env().map_err(bad)?,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use log::Log as _;
    use std::sync::Mutex;

    /// An output the test reads back.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    /// A value whose `Display` logs through the same logger (as an error type that logs
    /// while it is formatted might).
    struct LogsWhileFormatted<'a>(&'a Logger);

    impl std::fmt::Display for LogsWhileFormatted<'_> {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            self.0.log(
                &log::Record::builder()
                    .level(log::Level::Warn)
                    .args(format_args!("inner"))
                    .build(),
            );
            f.write_str("outer")
        }
    }

    #[test]
    fn a_display_that_logs_queues_its_own_line_first_instead_of_deadlocking() {
        let out = Captured::default();
        let logger = Logger::new(
            Format::Json,
            Filter::level(log::LevelFilter::Info),
            Box::new(out.clone()),
        )
        .unwrap();
        logger.log(
            &log::Record::builder()
                .level(log::Level::Info)
                .args(format_args!("{}", LogsWhileFormatted(&logger)))
                .build(),
        );
        logger.flush();
        let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
        let msgs: Vec<String> = text
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["msg"].to_string())
            .collect();
        assert_eq!(msgs, ["\"inner\"", "\"outer\""]);
    }

    #[test]
    fn ipv4_cache_writes_each_peer_as_display_writes_it_when_peers_alternate() {
        let mut cache = Ipv4Json::default();
        for ip in [
            "127.0.0.1",
            "10.0.0.255",
            "10.0.0.255",
            "192.168.100.9",
            "127.0.0.1",
        ] {
            let ip: std::net::Ipv4Addr = ip.parse().unwrap();
            let mut out = Vec::new();
            cache.push(&mut out, ip);
            assert_eq!(out, format!("\"{ip}\"").as_bytes());
        }
    }

    #[test]
    fn access_line_time_is_the_wall_clock_advanced_by_the_monotonic_one() {
        let mut cache = AccessCache::EMPTY;
        let now = Instant::now();
        let wall = format::epoch_ms();
        let at_now = cache.epoch_ms_at(now);
        assert!(at_now.abs_diff(wall) <= 2, "{at_now} vs wall clock {wall}");
        // Within the re-read interval the time is derived, millisecond for millisecond.
        let later = cache.epoch_ms_at(now + Duration::from_millis(300));
        assert!(
            (299..=301).contains(&(later - at_now)),
            "{later} - {at_now}"
        );
        // An instant before the anchor re-reads the wall clock instead of going backwards
        // through an underflow.
        let before = now.checked_sub(Duration::from_millis(5)).unwrap_or(now);
        assert!(cache.epoch_ms_at(before).abs_diff(format::epoch_ms()) <= 2);
    }

    #[test]
    fn access_line_head_is_reused_within_its_millisecond_only() {
        let mut cache = AccessCache::EMPTY;
        let now = Instant::now();
        cache.new_head(log::Level::Info, now, ",");
        let (from, until, level) = cache.head_for.unwrap();
        assert_eq!((from, level), (now, log::Level::Info));
        assert!(until > now && until <= now + Duration::from_millis(1));
        let ms = cache.epoch_ms_at(now);
        assert_eq!(cache.head, format!("{{\"level\":30,\"time\":{ms},"));
        // The instant the millisecond ends belongs to the next one.
        assert_eq!(cache.epoch_ms_at(until), ms + 1);
    }

    #[test]
    fn ipv4_json_is_cached_per_address() {
        let mut ip = Ipv4Json {
            last: None,
            json: [0; 17],
            len: 0,
        };
        let mut out = Vec::new();
        for a in ["127.0.0.1", "127.0.0.1", "10.0.0.255", "127.0.0.1"] {
            ip.push(&mut out, a.parse().unwrap());
            out.push(b' ');
        }
        assert_eq!(
            out,
            b"\"127.0.0.1\" \"127.0.0.1\" \"10.0.0.255\" \"127.0.0.1\" "
        );
    }
}

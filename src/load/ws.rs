//! `oneloop-ws-load`, the WebSocket load client, as a library: build a [`WsLoadConfig`], call
//! [`run`], read the [`WsReport`].
//!
//! Like the HTTP load generator it runs on one oneloop [`Loop`] and its TCP client, one thread.
//! It speaks just enough RFC 6455 for a benchmark: the opening handshake (the server's
//! `Sec-WebSocket-Accept` is checked), masked binary frames out (one fixed masking key: the
//! mask exists to protect proxies, not to hide anything from a benchmark server), unmasked
//! frames in (fragmented messages are reassembled by count, pings answered, a Close or a
//! protocol error ends the run with an error).
//!
//! Two modes:
//!
//! - **echo**: `connections` connections each keep `pipeline` messages of `size` bytes in
//!   flight; every reply is checked (length and bytes) and answered with a new message. All
//!   the replies found in one read are answered with one write. Latency runs from the send of
//!   a message to the arrival of its echo (FIFO per connection).
//! - **fanout**: `connections` subscribers and one publisher connect to the same URL, where the
//!   server broadcasts every message it receives to every connection (the publisher included;
//!   its own copies are not counted). The publisher keeps `pipeline` messages "open": a message
//!   is open until every subscriber has received it. Each message carries its sequence number
//!   in its first 8 bytes, so every delivery is matched to its message and checked to arrive in
//!   order. Reported: deliveries/s (messages received by subscribers per second), the latency
//!   of each delivery, and the time until the last subscriber got each message.
//!
//! A run is bounded in time: connecting and the handshakes must finish within `timeout`, no
//! progress for `timeout` ends the run with an error, and the run never lasts longer than
//! `warmup + duration` after the connections are up (in count-bounded mode, `messages`, too).
//!
//! ```no_run
//! use oneloop::load::ws::{self, WsLoadConfig, WsMode};
//! use std::time::Duration;
//!
//! let mut config = WsLoadConfig::new("ws://127.0.0.1:3000/echo", WsMode::Echo)?;
//! config.connections = 64;
//! config.pipeline = 8;
//! config.duration = Duration::from_secs(5);
//! let report = ws::run(config)?;
//! println!("{:.0} msg/s", report.messages_per_sec());
//! # Ok::<(), std::io::Error>(())
//! ```

use std::cell::RefCell;
use std::collections::VecDeque;
use std::fmt::Write as _;
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use bytes::BytesMut;
use hdrhistogram::Histogram;
use oneloop_runtime::{Loop, SocketOptions, TcpId, TimerId};
use serde_json::{json, Value};

use super::config::{parse_duration, parse_url};
use crate::ws::deflate::Inflater;
use crate::ws::frame::{encode_masked_frame, OpCode};
use crate::ws::handshake::accept_key;

/// The masking key of every frame sent.
const MASK: [u8; 4] = [0x5a, 0xc3, 0x96, 0x0f];
/// The `Sec-WebSocket-Key` of every handshake (its accept value is checked all the same).
const KEY: &str = "b25lbG9vcC13cy1sb2FkIQ==";
/// Latencies above this are recorded as this (1 hour, in ns).
const MAX_LATENCY_NS: u64 = 3_600_000_000_000;
/// Connections opening (connect + handshake) at the same time, so a burst of 1,000 SYNs does
/// not overflow the server's accept backlog.
const MAX_OPENING: usize = 128;
/// A response head longer than this is an error.
const MAX_HEAD: usize = 16 * 1024;
/// Sequence number bytes at the front of every fan-out message.
const SEQ_LEN: usize = 8;

/// What the run does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WsMode {
    /// Connections send messages and count the echoes.
    Echo,
    /// Subscribers count the messages one publisher sends through the server.
    Fanout,
}

impl WsMode {
    fn name(self) -> &'static str {
        match self {
            WsMode::Echo => "echo",
            WsMode::Fanout => "fanout",
        }
    }
}

/// One WebSocket load run.
#[derive(Clone, Debug)]
pub struct WsLoadConfig {
    /// The URL as given (for reports).
    pub url: String,
    /// Where to connect.
    pub addr: SocketAddr,
    /// The `Host` header.
    pub authority: String,
    /// The request target of the handshake.
    pub path: String,
    /// Echo or fan-out.
    pub mode: WsMode,
    /// Echo: connections sending (64). Fan-out: subscribers, the publisher not counted (1,000).
    pub connections: usize,
    /// Echo: messages in flight per connection. Fan-out: messages the publisher keeps open,
    /// i.e. not yet received by every subscriber (8).
    pub pipeline: usize,
    /// Payload bytes per message (32; at least 8 in fan-out, for the sequence number).
    pub size: usize,
    /// How long to measure after the warm-up (5 s).
    pub duration: Duration,
    /// Load sent but not counted before measuring (1 s).
    pub warmup: Duration,
    /// Count-bounded: send exactly this many messages after the warm-up (echo: over all
    /// connections; fan-out: published), wait for all of them, stop. Still bounded by
    /// `duration`.
    pub messages: Option<u64>,
    /// Connecting + handshakes must finish within this; no message received for this long
    /// while some are expected ends the run (5 s).
    pub timeout: Duration,
    /// A process (the server) whose CPU time over the measured interval is reported, read
    /// from `/proc/<pid>/stat` when measuring starts and ends.
    pub server_pid: Option<u32>,
    /// Offer permessage-deflate (RFC 7692, `permessage-deflate; client_max_window_bits`) and
    /// inflate the compressed messages the server sends (messages sent stay uncompressed,
    /// which the extension allows).
    pub deflate: bool,
    /// The payload is JSON-like text (chat messages with varied names and numbers, which
    /// compresses about as real JSON does) instead of a repeated alphabet (which compresses
    /// to almost nothing). Fan-out keeps the sequence number in its first 8 bytes.
    pub json_payload: bool,
    /// Fan-out: where the subscribers connect instead of `addr` (`--subscribers-at
    /// ws://host:port`, same path): a second server sharing the topic with the first, e.g.
    /// through Redis (docs/ws.md "Across workers and processes").
    pub subscribers_addr: Option<SocketAddr>,
}

impl WsLoadConfig {
    /// A run against `url` (`ws://host[:port][/path]`) with the defaults of `mode`.
    ///
    /// # Errors
    /// A URL that is not `ws://` or whose host does not resolve.
    pub fn new(url: &str, mode: WsMode) -> io::Result<WsLoadConfig> {
        let (addr, authority, path) = parse_url(url, "ws://")?;
        let connections = match mode {
            WsMode::Echo => 64,
            WsMode::Fanout => 1000,
        };
        Ok(WsLoadConfig {
            url: url.to_owned(),
            addr,
            authority: authority.to_owned(),
            path: path.to_owned(),
            mode,
            connections,
            pipeline: 8,
            size: 32,
            duration: Duration::from_secs(5),
            warmup: Duration::from_secs(1),
            messages: None,
            timeout: Duration::from_secs(5),
            server_pid: None,
            deflate: false,
            json_payload: false,
            subscribers_addr: None,
        })
    }

    /// Checks the settings that would make a run meaningless.
    ///
    /// # Errors
    /// Zero connections or pipeline, a fan-out size below 8, a zero timeout, a run with
    /// neither a duration nor a message count.
    pub fn validate(&self) -> io::Result<()> {
        if self.connections == 0 {
            return Err(invalid("--connections must be at least 1".into()));
        }
        if self.connections > 100_000 {
            return Err(invalid("--connections is limited to 100000".into()));
        }
        if self.pipeline == 0 || self.pipeline > 100_000 {
            return Err(invalid("--pipeline must be 1..=100000".into()));
        }
        if self.mode == WsMode::Fanout && self.size < SEQ_LEN {
            return Err(invalid(format!(
                "--size must be at least {SEQ_LEN} in fanout mode (the sequence number)"
            )));
        }
        if self.size > 64 * 1024 * 1024 {
            return Err(invalid("--size is limited to 64 MiB".into()));
        }
        if self.timeout.is_zero() {
            return Err(invalid("--timeout must be above 0".into()));
        }
        if self.duration.is_zero() {
            return Err(invalid(
                "--duration must be above 0 (it bounds count-bounded runs too)".into(),
            ));
        }
        if self.messages == Some(0) {
            return Err(invalid("--messages must be at least 1".into()));
        }
        Ok(())
    }

    fn handshake_request(&self) -> Vec<u8> {
        let ext = if self.deflate {
            "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"
        } else {
            ""
        };
        format!(
            "GET {} HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n{ext}\r\n",
            self.path, self.authority
        )
        .into_bytes()
    }
}

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg)
}

/// The usage text of `oneloop-ws-load`.
pub const USAGE: &str = "\
oneloop-ws-load: a WebSocket load client on oneloop's loop (one thread)

usage: oneloop-ws-load echo   [options] ws://host:port/path
       oneloop-ws-load fanout [options] ws://host:port/path

echo:   C connections, each keeping P binary messages of S bytes in flight; every echo is
        checked and answered at once. Reports messages/s and round-trip latency.
fanout: N subscribers + 1 publisher on the URL, where the server broadcasts every message to
        every connection. The publisher keeps P messages open (not yet received by every
        subscriber). Reports deliveries/s (messages received by subscribers per second), the
        latency of each delivery and the time until all subscribers got a message.

options:
  -c, --connections N  echo: connections (64); fanout: subscribers (1000)
  -p, --pipeline N     echo: in flight per connection; fanout: open messages (8)
  -s, --size BYTES     payload size (32; fanout: at least 8)
  -d, --duration T     measured time after the warm-up (5s)
  -w, --warmup T       load sent but not counted (1s)
  -n, --messages N     send exactly N messages after the warm-up, wait for them, stop
                       (still bounded by --duration)
  -t, --timeout T      for connecting + handshakes, and for a stall (5s)
      --server-pid PID report this process's CPU time over the measured interval
      --deflate        offer permessage-deflate and inflate what the server compresses
                       (the run fails if the server does not accept it)
      --json-payload   JSON-like text payloads (chat messages) instead of a repeated
                       alphabet: realistic compression ratios
      --subscribers-at ws://HOST:PORT
                       fanout: subscribers connect there (same path), the publisher to
                       the URL: two servers sharing the topic (chat --redis)
      --json           one JSON object instead of the human summary
  -h, --help           this text
T: 500ms, 5s, 1m or plain seconds.
Exit status: 0 done, 1 the run failed (connect, handshake, protocol, lost connection,
stall), 2 bad command line.";

/// What the command line asked for.
#[derive(Debug)]
pub enum WsCommand {
    /// Print [`USAGE`].
    Help,
    /// Run this configuration; `json` selects the output.
    Run {
        /// The run.
        config: Box<WsLoadConfig>,
        /// `--json`.
        json: bool,
    },
}

/// Parses `oneloop-ws-load`'s arguments (without the program name).
///
/// # Errors
/// Unknown options, missing or bad values, no mode or URL.
pub fn parse_args(args: impl IntoIterator<Item = String>) -> io::Result<WsCommand> {
    let mut args = args.into_iter();
    let mut mode = None;
    let mut url = None;
    let mut json = false;
    let mut deflate = false;
    let mut json_payload = false;
    let mut sets: Vec<(String, String)> = Vec::new();
    while let Some(a) = args.next() {
        match a.as_str() {
            "-h" | "--help" => return Ok(WsCommand::Help),
            "--json" => json = true,
            "--deflate" => deflate = true,
            "--json-payload" => json_payload = true,
            "echo" if mode.is_none() => mode = Some(WsMode::Echo),
            "fanout" if mode.is_none() => mode = Some(WsMode::Fanout),
            "-c" | "--connections" | "-p" | "--pipeline" | "-s" | "--size" | "-d"
            | "--duration" | "-w" | "--warmup" | "-n" | "--messages" | "-t" | "--timeout"
            | "--server-pid" | "--subscribers-at" => {
                let v = args
                    .next()
                    .ok_or_else(|| invalid(format!("{a} needs a value")))?;
                sets.push((a, v));
            }
            s if s.starts_with('-') => return Err(invalid(format!("unknown option {s}"))),
            s if url.is_none() && mode.is_some() => url = Some(s.to_owned()),
            s => return Err(invalid(format!("unexpected argument {s} (see --help)"))),
        }
    }
    let mode = mode.ok_or_else(|| invalid("no mode: echo or fanout (see --help)".into()))?;
    let url = url.ok_or_else(|| invalid("no URL (see --help)".into()))?;
    let mut c = WsLoadConfig::new(&url, mode)?;
    c.deflate = deflate;
    c.json_payload = json_payload;
    for (k, v) in sets {
        let num = |v: &str| -> io::Result<u64> {
            v.replace('_', "")
                .parse::<u64>()
                .map_err(|_| invalid(format!("{k}: not a number: {v}")))
        };
        let dur = |v: &str| -> io::Result<Duration> {
            parse_duration(v).map_err(|e| invalid(format!("{k}: {e}")))
        };
        match k.as_str() {
            "-c" | "--connections" => c.connections = num(&v)? as usize,
            "-p" | "--pipeline" => c.pipeline = num(&v)? as usize,
            "-s" | "--size" => c.size = num(&v)? as usize,
            "-d" | "--duration" => c.duration = dur(&v)?,
            "-w" | "--warmup" => c.warmup = dur(&v)?,
            "-n" | "--messages" => c.messages = Some(num(&v)?),
            "--subscribers-at" => c.subscribers_addr = Some(parse_url(&v, "ws://")?.0),
            "--server-pid" => {
                let pid =
                    u32::try_from(num(&v)?).map_err(|_| invalid(format!("{k}: not a pid: {v}")))?;
                c.server_pid = Some(pid);
            }
            _ => c.timeout = dur(&v)?,
        }
    }
    c.validate()?;
    Ok(WsCommand::Run {
        config: Box::new(c),
        json,
    })
}

// -- the report ----------------------------------------------------------------------------------

/// What a run measured.
#[derive(Clone, Debug)]
pub struct WsReport {
    /// The configuration of the run.
    pub config: WsLoadConfig,
    /// Time from the first connect to the last handshake.
    pub connect_time: Duration,
    /// The measured interval.
    pub elapsed: Duration,
    /// Echo: messages sent in the measured interval. Fan-out: messages published.
    pub sent: u64,
    /// Echo: echoes received. Fan-out: messages received by every subscriber.
    pub messages: u64,
    /// Fan-out: messages received by subscribers (each subscriber's copy counts). Echo: equal
    /// to `messages`.
    pub deliveries: u64,
    /// Payload bytes received in the measured interval (inflated, when compressed).
    pub bytes: u64,
    /// Bytes read from the sockets in the measured interval (frames as sent: compressed ones
    /// compressed), all connections.
    pub wire_bytes: u64,
    /// Echo: round trip of each message. Fan-out: publish to the arrival of each delivery.
    pub latency: Histogram<u64>,
    /// Fan-out: publish to the arrival at the last subscriber, per message.
    pub complete_latency: Histogram<u64>,
    /// Echoes that differed from what was sent, or deliveries out of order / unexpected.
    pub mismatches: u64,
    /// Why the run ended early, if it did (the exit status is then 1).
    pub failure: Option<String>,
    /// This process's CPU time (user + system) over the measured interval, if readable.
    pub client_cpu: Option<Duration>,
    /// `server_pid`'s CPU time over the measured interval, if asked for and readable.
    pub server_cpu: Option<Duration>,
}

/// The percentiles in reports.
pub const PERCENTILES: [f64; 5] = [50.0, 90.0, 99.0, 99.9, 100.0];

impl WsReport {
    fn secs(&self) -> f64 {
        self.elapsed.as_secs_f64()
    }

    /// Echo: echoes per second. Fan-out: messages fully delivered per second.
    pub fn messages_per_sec(&self) -> f64 {
        per_sec(self.messages, self.secs())
    }

    /// Deliveries per second (echo: echoes per second).
    pub fn deliveries_per_sec(&self) -> f64 {
        per_sec(self.deliveries, self.secs())
    }

    /// Deliveries per second of server CPU time (needs `server_pid`).
    pub fn deliveries_per_server_cpu_sec(&self) -> Option<f64> {
        let cpu = self.server_cpu?.as_secs_f64();
        (cpu > 0.0).then(|| self.deliveries as f64 / cpu)
    }

    /// The `p`-th percentile of [`WsReport::latency`], in ns (0 when empty).
    pub fn percentile_ns(&self, p: f64) -> u64 {
        pct(&self.latency, p)
    }

    /// One JSON object.
    pub fn to_json(&self) -> Value {
        let lat = |h: &Histogram<u64>| {
            let mut m = serde_json::Map::new();
            for p in PERCENTILES {
                let key = if p >= 100.0 {
                    "max".to_owned()
                } else {
                    format!("p{}", p.to_string().replace('.', "_"))
                };
                m.insert(key, json!(round2(pct(h, p) as f64 / 1e3)));
            }
            m.insert("mean".into(), json!(round2(h.mean() / 1e3)));
            Value::Object(m)
        };
        let c = &self.config;
        let mut v = json!({
            "mode": c.mode.name(),
            "url": c.url,
            "connections": c.connections,
            "pipeline": c.pipeline,
            "size": c.size,
            "warmup_s": c.warmup.as_secs_f64(),
            "connect_s": round2(self.connect_time.as_secs_f64()),
            "seconds": round2(self.secs()),
            "sent": self.sent,
            "messages": self.messages,
            "msgs_per_s": self.messages_per_sec().round(),
            "deliveries": self.deliveries,
            "deliveries_per_s": self.deliveries_per_sec().round(),
            "bytes": self.bytes,
            "wire_bytes": self.wire_bytes,
            "deflate": c.deflate,
            "latency_us": lat(&self.latency),
            "mismatches": self.mismatches,
            "failure": self.failure,
            "client_cpu_s": self.client_cpu.map(|d| round2(d.as_secs_f64())),
            "server_pid": c.server_pid,
            "server_cpu_s": self.server_cpu.map(|d| round2(d.as_secs_f64())),
            "deliveries_per_server_cpu_s": self.deliveries_per_server_cpu_sec().map(f64::round),
        });
        if c.mode == WsMode::Fanout {
            v["complete_latency_us"] = lat(&self.complete_latency);
        }
        v
    }

    /// The human summary.
    pub fn human(&self) -> String {
        let c = &self.config;
        let mut s = String::new();
        let _ = match c.mode {
            WsMode::Echo => writeln!(
                s,
                "echo {}: {} connections x {} in flight x {} B, {:.2} s measured (connect {:.2} s)",
                c.url,
                c.connections,
                c.pipeline,
                c.size,
                self.secs(),
                self.connect_time.as_secs_f64()
            ),
            WsMode::Fanout => writeln!(
                s,
                "fanout {}: {} subscribers, {} open messages x {} B, {:.2} s measured (connect {:.2} s)",
                c.url,
                c.connections,
                c.pipeline,
                c.size,
                self.secs(),
                self.connect_time.as_secs_f64()
            ),
        };
        let _ = match c.mode {
            WsMode::Echo => writeln!(
                s,
                "  {:.0} messages/s ({} echoes of {} sent)",
                self.messages_per_sec(),
                self.messages,
                self.sent
            ),
            WsMode::Fanout => writeln!(
                s,
                "  {:.0} deliveries/s ({} deliveries; {} of {} published messages reached every subscriber, {:.0}/s)",
                self.deliveries_per_sec(),
                self.deliveries,
                self.messages,
                self.sent,
                self.messages_per_sec()
            ),
        };
        let line = |s: &mut String, name: &str, h: &Histogram<u64>| {
            let _ = write!(s, "  {name:<18}");
            for p in PERCENTILES {
                let label = if p >= 100.0 {
                    "max".to_owned()
                } else {
                    format!("p{p}")
                };
                let _ = write!(s, " {label} {}", fmt_ns(pct(h, p)));
            }
            s.push('\n');
        };
        let name = match c.mode {
            WsMode::Echo => "round trip",
            WsMode::Fanout => "delivery",
        };
        line(&mut s, name, &self.latency);
        if c.mode == WsMode::Fanout {
            line(&mut s, "all subscribers", &self.complete_latency);
        }
        let _ = writeln!(
            s,
            "  {} payload bytes, {} bytes on the wire{}",
            self.bytes,
            self.wire_bytes,
            if c.deflate {
                " (permessage-deflate)"
            } else {
                ""
            }
        );
        if let Some(cpu) = self.client_cpu {
            let _ = writeln!(
                s,
                "  client CPU {:.2} s ({:.0}% of one core)",
                cpu.as_secs_f64(),
                100.0 * cpu.as_secs_f64() / self.secs().max(1e-9)
            );
        }
        if let Some(cpu) = self.server_cpu {
            let _ = writeln!(
                s,
                "  server CPU {:.2} s ({:.0}% of one core), {:.0} deliveries per server CPU-second",
                cpu.as_secs_f64(),
                100.0 * cpu.as_secs_f64() / self.secs().max(1e-9),
                self.deliveries_per_server_cpu_sec().unwrap_or(0.0)
            );
        }
        if self.mismatches > 0 {
            let _ = writeln!(s, "  MISMATCHES: {}", self.mismatches);
        }
        if let Some(f) = &self.failure {
            let _ = writeln!(s, "  FAILED: {f}");
        }
        s
    }
}

fn per_sec(n: u64, secs: f64) -> f64 {
    if secs > 0.0 {
        n as f64 / secs
    } else {
        0.0
    }
}

fn pct(h: &Histogram<u64>, p: f64) -> u64 {
    if h.is_empty() {
        0
    } else {
        h.value_at_quantile(p / 100.0)
    }
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

fn fmt_ns(ns: u64) -> String {
    match ns {
        0..=9_999 => format!("{:.2}us", ns as f64 / 1e3),
        10_000..=9_999_999 => format!("{:.0}us", ns as f64 / 1e3),
        _ => format!("{:.1}ms", ns as f64 / 1e6),
    }
}

/// User + system CPU time of a process (`None`: this one), from `/proc/<pid>/stat` (Linux).
fn process_cpu(pid: Option<u32>) -> Option<Duration> {
    let path = match pid {
        Some(p) => format!("/proc/{p}/stat"),
        None => "/proc/self/stat".to_owned(),
    };
    let stat = std::fs::read_to_string(path).ok()?;
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let rest = stat.get(stat.rfind(')')? + 2..)?;
    let mut f = rest.split_ascii_whitespace().skip(11);
    let utime: u64 = f.next()?.parse().ok()?;
    let stime: u64 = f.next()?.parse().ok()?;
    // USER_HZ is 100 on every Linux this runs on.
    Some(Duration::from_millis((utime + stime) * 10))
}

/// `size` bytes of JSON-like chat messages (varied names and numbers, a few recurring
/// words): compresses about 3-4x with deflate, as chat JSON does.
fn json_payload(size: usize) -> Vec<u8> {
    let words = [
        "hello",
        "ok",
        "see you",
        "lunch?",
        "deploy done",
        "merging now",
        "+1",
    ];
    let mut s = String::from("[");
    let mut x: u32 = 0x2545_f491;
    while s.len() < size {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        let w = words[(x % words.len() as u32) as usize];
        s.push_str(&format!(
            "{{\"id\":{},\"user\":\"user{}\",\"text\":\"{} {}\",\"ts\":{}}},",
            x % 100_000,
            x >> 24,
            w,
            x % 977,
            1_700_000_000 + (x % 86_400)
        ));
    }
    let mut v = s.into_bytes();
    v.truncate(size);
    v
}

// -- frames from the server ----------------------------------------------------------------------

/// One server frame header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Head {
    fin: bool,
    /// First frame of a compressed message.
    rsv1: bool,
    opcode: u8,
    header: usize,
    len: usize,
}

/// Parses an unmasked server frame header at the front of `buf`: `Ok(None)` when incomplete.
fn parse_head(buf: &[u8], max: usize, allow_rsv1: bool) -> Result<Option<Head>, String> {
    let (b0, b1) = match buf {
        [b0, b1, ..] => (*b0, *b1),
        _ => return Ok(None),
    };
    let rsv = if allow_rsv1 { 0x30 } else { 0x70 };
    if b0 & rsv != 0 {
        return Err("server frame with a reserved bit set".into());
    }
    if b1 & 0x80 != 0 {
        return Err("masked server frame".into());
    }
    let opcode = b0 & 0x0F;
    let (len, header) = match b1 & 0x7F {
        126 => match buf.get(2..4) {
            Some(&[a, b]) => (u64::from(u16::from_be_bytes([a, b])), 4),
            _ => return Ok(None),
        },
        127 => match buf.get(2..10) {
            Some(s) => {
                let mut a = [0u8; 8];
                a.copy_from_slice(s);
                (u64::from_be_bytes(a), 10)
            }
            None => return Ok(None),
        },
        n => (u64::from(n), 2),
    };
    if len > max as u64 {
        return Err(format!("server frame of {len} bytes (limit {max})"));
    }
    let rsv1 = b0 & 0x40 != 0;
    if rsv1 && !matches!(opcode, 0x1 | 0x2) {
        return Err("RSV1 on a continuation or control frame".into());
    }
    Ok(Some(Head {
        fin: b0 & 0x80 != 0,
        rsv1,
        opcode,
        header,
        len: len as usize,
    }))
}

// -- the engine ----------------------------------------------------------------------------------

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Phase {
    /// Connections and handshakes.
    Opening,
    Warmup,
    Measure,
    /// Count-bounded: everything sent, waiting for the last messages.
    Draining,
    Done,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Role {
    /// Echo connection.
    Echo,
    Subscriber,
    Publisher,
}

struct Conn {
    role: Role,
    id: Option<TcpId>,
    /// The 101 arrived.
    open: bool,
    /// Unconsumed input: a partial head or frame.
    pending: Vec<u8>,
    /// Echo: send time of each message in flight, and whether it counts (sent while measuring).
    inflight: VecDeque<(u64, bool)>,
    /// Bytes of the data message being reassembled (fragments) and its first bytes (seq).
    frag_len: usize,
    frag_head: Vec<u8>,
    in_fragment: bool,
    /// Fan-out: the sequence number this subscriber expects next.
    next_seq: u64,
    /// permessage-deflate accepted: the decompressor, and whether to reset it after each
    /// message (`server_no_context_takeover`).
    inflater: Option<(Box<Inflater>, bool)>,
    /// The compressed message being received (its frames' payloads).
    zbuf: Vec<u8>,
    compressed: bool,
}

/// A published fan-out message not yet received by every subscriber.
struct Open {
    sent: u64,
    remaining: usize,
    counted: bool,
}

struct Engine {
    cfg: WsLoadConfig,
    handshake: Vec<u8>,
    accept: [u8; 28],
    /// Echo: `pipeline` copies of the masked frame, back to back.
    batch: Vec<u8>,
    frame_len: usize,
    /// Echo: the payload every echo must equal.
    payload: Vec<u8>,
    conns: Vec<Conn>,
    phase: Phase,
    /// Slots not yet opened, and how many are opening now.
    to_open: VecDeque<usize>,
    opening: usize,
    opened: usize,
    t_start: u64,
    t_open: u64,
    measure_start: u64,
    measure_end: u64,
    cpu_start: Option<Duration>,
    cpu_end: Option<Duration>,
    server_cpu_start: Option<Duration>,
    server_cpu_end: Option<Duration>,
    /// When a message last arrived (stall detection).
    last_progress: u64,
    /// Count-bounded: messages still to send after the warm-up.
    budget: Option<u64>,
    /// Echo: messages in flight in all connections, and those of them that count.
    inflight_total: u64,
    inflight_counted: u64,
    // fan-out
    open_msgs: VecDeque<Open>,
    /// Sequence number of `open_msgs[0]`.
    base_seq: u64,
    next_seq: u64,
    // counters (measured interval)
    sent: u64,
    messages: u64,
    deliveries: u64,
    bytes: u64,
    wire_bytes: u64,
    mismatches: u64,
    latency: Histogram<u64>,
    complete_latency: Histogram<u64>,
    failure: Option<String>,
    timers: Vec<TimerId>,
}

type Shared = Rc<RefCell<Engine>>;

/// Runs `config` on a fresh loop on this thread.
///
/// # Errors
/// An invalid configuration, or the loop failing to start or poll. Connection, handshake and
/// protocol failures are not errors here: they end the run and are in
/// [`WsReport::failure`].
pub fn run(config: WsLoadConfig) -> io::Result<WsReport> {
    config.validate()?;
    let mut lp = Loop::new()?;
    let engine: Shared = Rc::new(RefCell::new(Engine::new(config)));
    start(&engine, &mut lp);
    lp.run()?;
    let report = engine.borrow_mut().report(&lp);
    Ok(report)
}

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_LATENCY_NS, 3).expect("valid histogram bounds")
}

impl Engine {
    fn new(cfg: WsLoadConfig) -> Engine {
        let payload: Vec<u8> = if cfg.json_payload {
            json_payload(cfg.size)
        } else {
            (0..cfg.size).map(|i| b'a' + (i % 26) as u8).collect()
        };
        let mut frame = BytesMut::new();
        encode_masked_frame(&mut frame, true, OpCode::Binary, MASK, &payload);
        let frame_len = frame.len();
        let batch = if cfg.mode == WsMode::Echo {
            frame.repeat(cfg.pipeline)
        } else {
            Vec::new()
        };
        let conn = |role| Conn {
            role,
            id: None,
            open: false,
            pending: Vec::new(),
            inflight: VecDeque::new(),
            frag_len: 0,
            frag_head: Vec::new(),
            in_fragment: false,
            next_seq: 0,
            inflater: None,
            zbuf: Vec::new(),
            compressed: false,
        };
        let mut conns: Vec<Conn> = match cfg.mode {
            WsMode::Echo => (0..cfg.connections).map(|_| conn(Role::Echo)).collect(),
            WsMode::Fanout => (0..cfg.connections)
                .map(|_| conn(Role::Subscriber))
                .collect(),
        };
        if cfg.mode == WsMode::Fanout {
            conns.push(conn(Role::Publisher));
        }
        Engine {
            handshake: cfg.handshake_request(),
            accept: accept_key(KEY.as_bytes()),
            batch,
            frame_len,
            payload,
            to_open: (0..conns.len()).collect(),
            conns,
            phase: Phase::Opening,
            opening: 0,
            opened: 0,
            t_start: 0,
            t_open: 0,
            measure_start: 0,
            measure_end: 0,
            cpu_start: None,
            cpu_end: None,
            server_cpu_start: None,
            server_cpu_end: None,
            last_progress: 0,
            budget: None,
            inflight_total: 0,
            inflight_counted: 0,
            open_msgs: VecDeque::new(),
            base_seq: 0,
            next_seq: 0,
            sent: 0,
            messages: 0,
            deliveries: 0,
            bytes: 0,
            wire_bytes: 0,
            mismatches: 0,
            latency: histogram(),
            complete_latency: histogram(),
            failure: None,
            timers: Vec::new(),
            cfg,
        }
    }

    fn measuring(&self) -> bool {
        matches!(self.phase, Phase::Measure | Phase::Draining)
    }

    fn report(&mut self, lp: &Loop) -> WsReport {
        if self.phase != Phase::Done {
            self.measure_end = lp.hrtime();
        }
        let diff = |a: Option<Duration>, b: Option<Duration>| Some(b?.saturating_sub(a?));
        let client_cpu = diff(self.cpu_start, self.cpu_end);
        let server_cpu = diff(self.server_cpu_start, self.server_cpu_end);
        WsReport {
            config: self.cfg.clone(),
            connect_time: Duration::from_nanos(self.t_open.saturating_sub(self.t_start)),
            elapsed: Duration::from_nanos(self.measure_end.saturating_sub(self.measure_start)),
            sent: self.sent,
            messages: self.messages,
            deliveries: self.deliveries,
            bytes: self.bytes,
            wire_bytes: self.wire_bytes,
            latency: self.latency.clone(),
            complete_latency: self.complete_latency.clone(),
            mismatches: self.mismatches,
            failure: self.failure.clone(),
            client_cpu,
            server_cpu,
        }
    }

    /// Ends the run with `failure`, unless it already ended.
    fn abort(&mut self, lp: &mut Loop, failure: String) {
        if self.phase == Phase::Done {
            return;
        }
        log::debug!("oneloop-ws-load: {failure}");
        if self.failure.is_none() {
            self.failure = Some(failure);
        }
        self.finish(lp);
    }

    /// Stops everything: timers, sockets, the loop.
    fn finish(&mut self, lp: &mut Loop) {
        if self.phase == Phase::Done {
            return;
        }
        if !self.measuring() {
            self.mark_start(lp);
        }
        self.phase = Phase::Done;
        self.measure_end = lp.hrtime();
        self.cpu_end = process_cpu(None);
        self.server_cpu_end = self.cfg.server_pid.and_then(|p| process_cpu(Some(p)));
        for t in self.timers.drain(..) {
            let _ = lp.clear_timeout(t);
        }
        for c in &mut self.conns {
            if let Some(id) = c.id.take() {
                let _ = lp.tcp_destroy(id);
            }
        }
        lp.stop();
    }

    fn mark_start(&mut self, lp: &Loop) {
        self.measure_start = lp.hrtime();
        self.cpu_start = process_cpu(None);
        self.server_cpu_start = self.cfg.server_pid.and_then(|p| process_cpu(Some(p)));
    }

    fn begin_measure(&mut self, lp: &mut Loop) {
        if self.phase != Phase::Warmup {
            return;
        }
        self.phase = Phase::Measure;
        self.mark_start(lp);
        self.sent = 0;
        self.messages = 0;
        self.deliveries = 0;
        self.bytes = 0;
        self.mismatches = 0;
        self.latency.reset();
        self.complete_latency.reset();
        // Messages still in flight from the warm-up are answered but not counted.
        self.budget = self.cfg.messages;
    }

    // -- opening -------------------------------------------------------------------------------

    fn on_connect(&mut self, lp: &mut Loop, slot: usize) {
        if let Some(id) = self.conns.get(slot).and_then(|c| c.id) {
            let _ = lp.tcp_write(id, &self.handshake);
        }
    }

    /// The 101 arrived on `slot`.
    fn on_open(&mut self, lp: &mut Loop, slot: usize) {
        let Some(c) = self.conns.get_mut(slot) else {
            return;
        };
        c.open = true;
        self.opening = self.opening.saturating_sub(1);
        self.opened += 1;
        if self.opened == self.conns.len() {
            self.t_open = lp.hrtime();
            self.start_load(lp);
        }
    }

    fn start_load(&mut self, lp: &mut Loop) {
        self.phase = Phase::Warmup;
        self.last_progress = lp.hrtime();
        if self.cfg.warmup.is_zero() {
            self.begin_measure(lp);
        }
        match self.cfg.mode {
            WsMode::Echo => {
                for slot in 0..self.conns.len() {
                    self.pump_echo(lp, slot);
                }
            }
            WsMode::Fanout => self.pump_publisher(lp),
        }
    }

    // -- input ---------------------------------------------------------------------------------

    fn on_data(&mut self, lp: &mut Loop, slot: usize, data: &[u8]) {
        if self.phase == Phase::Done {
            return;
        }
        let Some(c) = self.conns.get_mut(slot) else {
            return;
        };
        let mut pending = std::mem::take(&mut c.pending);
        let from_pending = !pending.is_empty();
        if from_pending {
            pending.extend_from_slice(data);
        }
        let input: &[u8] = if from_pending { &pending } else { data };
        if self.measuring() {
            self.wire_bytes += data.len() as u64;
        }
        let used = if self.conns[slot].open {
            self.frames(lp, slot, input)
        } else {
            self.handshake_response(lp, slot, input)
        };
        let used = match used {
            Ok(n) => n,
            Err(e) => {
                self.abort(lp, format!("connection {slot}: {e}"));
                return;
            }
        };
        if self.phase == Phase::Done {
            return;
        }
        if from_pending {
            pending.drain(..used.min(pending.len()));
        } else {
            pending.clear();
            pending.extend_from_slice(data.get(used..).unwrap_or(&[]));
        }
        if let Some(c) = self.conns.get_mut(slot) {
            c.pending = pending;
        }
    }

    /// Parses the handshake response; returns the bytes consumed (then frames follow).
    fn handshake_response(
        &mut self,
        lp: &mut Loop,
        slot: usize,
        input: &[u8],
    ) -> Result<usize, String> {
        let Some(end) = memchr::memmem::find(input, b"\r\n\r\n") else {
            if input.len() > MAX_HEAD {
                return Err("handshake response head too long".into());
            }
            return Ok(0);
        };
        let head = &input[..end + 4];
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut resp = httparse::Response::new(&mut headers);
        match resp.parse(head) {
            Ok(httparse::Status::Complete(_)) => {}
            Ok(httparse::Status::Partial) => return Err("bad handshake response".into()),
            Err(e) => return Err(format!("bad handshake response: {e}")),
        }
        if resp.code != Some(101) {
            return Err(format!(
                "handshake answered {} {} (expected 101)",
                resp.code.unwrap_or(0),
                resp.reason.unwrap_or("")
            ));
        }
        let accept = resp
            .headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case("sec-websocket-accept"))
            .map(|h| h.value);
        if accept != Some(&self.accept[..]) {
            return Err("wrong or missing Sec-WebSocket-Accept".into());
        }
        let ext = resp
            .headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case("sec-websocket-extensions"))
            .map(|h| String::from_utf8_lossy(h.value).to_ascii_lowercase());
        match (self.cfg.deflate, ext) {
            (_, None) if self.cfg.deflate => {
                return Err("the server did not accept permessage-deflate".into())
            }
            (_, None) => {}
            (true, Some(e)) if e.trim_start().starts_with("permessage-deflate") => {
                let reset = e.contains("server_no_context_takeover");
                if let Some(c) = self.conns.get_mut(slot) {
                    c.inflater = Some((Box::default(), reset));
                }
            }
            (_, Some(e)) => return Err(format!("unexpected Sec-WebSocket-Extensions: {e}")),
        }
        self.on_open(lp, slot);
        let n = end + 4;
        let rest = n + self.frames(lp, slot, &input[n..])?;
        Ok(rest)
    }

    /// Handles every complete frame at the front of `input`; returns the bytes consumed.
    fn frames(&mut self, lp: &mut Loop, slot: usize, input: &[u8]) -> Result<usize, String> {
        let max = (self.cfg.size + 1024).max(64 * 1024);
        let mut off = 0;
        let mut got = 0usize;
        let now = lp.hrtime();
        let allow_rsv1 = self.conns[slot].inflater.is_some();
        while let Some(h) = parse_head(&input[off..], max, allow_rsv1)? {
            let Some(payload) = input.get(off + h.header..off + h.header + h.len) else {
                break;
            };
            off += h.header + h.len;
            match h.opcode {
                0x0..=0x2 => {
                    let c = &mut self.conns[slot];
                    match (h.opcode, c.in_fragment) {
                        (0x0, false) => return Err("continuation without a message".into()),
                        (0x1 | 0x2, true) => {
                            return Err("new message inside a fragmented one".into())
                        }
                        _ => {}
                    }
                    if !c.in_fragment {
                        c.frag_len = 0;
                        c.frag_head.clear();
                        c.compressed = h.rsv1;
                    }
                    if c.compressed {
                        c.zbuf.extend_from_slice(payload);
                        if !h.fin {
                            c.in_fragment = true;
                            continue;
                        }
                        c.in_fragment = false;
                        let z = std::mem::take(&mut c.zbuf);
                        let mut out = Vec::new();
                        let Some((inf, reset)) = c.inflater.as_mut() else {
                            return Err("compressed message without permessage-deflate".into());
                        };
                        inf.inflate(&z, &mut out, max)
                            .and_then(|_| inf.finish(&mut out, max))
                            .map_err(|e| format!("inflating a message: {e}"))?;
                        if *reset {
                            inf.reset();
                        }
                        c.zbuf = z;
                        c.zbuf.clear();
                        let len = out.len();
                        self.on_message(lp, slot, now, len, &out);
                        got += 1;
                        if self.phase == Phase::Done {
                            return Ok(off);
                        }
                        continue;
                    }
                    c.frag_len += h.len;
                    if c.frag_head.len() < SEQ_LEN.max(self.cfg.size.min(64)) {
                        c.frag_head.extend_from_slice(payload);
                    }
                    if !h.fin {
                        c.in_fragment = true;
                        continue;
                    }
                    c.in_fragment = false;
                    let len = c.frag_len;
                    let single = h.opcode != 0x0;
                    self.on_message(lp, slot, now, len, if single { payload } else { &[] });
                    got += 1;
                }
                0x8 => {
                    let code = match payload {
                        [a, b, ..] => u16::from_be_bytes([*a, *b]),
                        _ => 1005,
                    };
                    return Err(format!("server sent Close {code}"));
                }
                0x9 => {
                    // Ping: answer with a masked pong carrying the same payload.
                    let mut out = BytesMut::new();
                    encode_masked_frame(&mut out, true, OpCode::Pong, MASK, payload);
                    if let Some(id) = self.conns[slot].id {
                        let _ = lp.tcp_write(id, &out);
                    }
                }
                0xA => {}
                op => return Err(format!("reserved opcode {op:#x}")),
            }
            if self.phase == Phase::Done {
                return Ok(off);
            }
        }
        if got > 0 {
            self.last_progress = now;
            match self.conns[slot].role {
                Role::Echo => self.pump_echo(lp, slot),
                Role::Publisher | Role::Subscriber => self.pump_publisher(lp),
            }
        }
        Ok(off)
    }

    /// One complete data message of `len` bytes on `slot`; `payload` is its bytes when it came
    /// in one frame (else the first bytes are in `frag_head`).
    fn on_message(&mut self, lp: &mut Loop, slot: usize, now: u64, len: usize, payload: &[u8]) {
        let measuring = self.measuring();
        let c = &mut self.conns[slot];
        let head: &[u8] = if payload.is_empty() && len > 0 {
            &c.frag_head
        } else {
            payload
        };
        match c.role {
            Role::Echo => {
                let Some((sent, counted)) = c.inflight.pop_front() else {
                    self.mismatches += 1;
                    return;
                };
                self.inflight_total = self.inflight_total.saturating_sub(1);
                let n = head.len().min(len);
                let same = len == self.payload.len() && head.get(..n) == self.payload.get(..n);
                if counted {
                    self.inflight_counted = self.inflight_counted.saturating_sub(1);
                }
                if measuring && counted {
                    self.messages += 1;
                    self.deliveries += 1;
                    self.bytes += len as u64;
                    self.latency
                        .saturating_record(now.saturating_sub(sent).max(1));
                    if !same {
                        self.mismatches += 1;
                    }
                }
                if self.phase == Phase::Draining && self.inflight_counted == 0 {
                    self.finish(lp);
                }
            }
            Role::Publisher => {}
            Role::Subscriber => {
                let seq = match head.get(..SEQ_LEN) {
                    Some(b) => {
                        let mut a = [0u8; SEQ_LEN];
                        a.copy_from_slice(b);
                        u64::from_le_bytes(a)
                    }
                    None => u64::MAX,
                };
                if seq != c.next_seq || len != self.cfg.size {
                    self.mismatches += 1;
                    return;
                }
                c.next_seq += 1;
                let Some(idx) = seq.checked_sub(self.base_seq) else {
                    self.mismatches += 1;
                    return;
                };
                let Some(m) = self.open_msgs.get_mut(idx as usize) else {
                    self.mismatches += 1;
                    return;
                };
                m.remaining = m.remaining.saturating_sub(1);
                if measuring && m.counted {
                    self.deliveries += 1;
                    self.bytes += len as u64;
                    self.latency
                        .saturating_record(now.saturating_sub(m.sent).max(1));
                }
                // Completion is in order: a subscriber gets message k after k-1.
                while self.open_msgs.front().is_some_and(|m| m.remaining == 0) {
                    if let Some(m) = self.open_msgs.pop_front() {
                        self.base_seq += 1;
                        if measuring && m.counted {
                            self.messages += 1;
                            self.complete_latency
                                .saturating_record(now.saturating_sub(m.sent).max(1));
                        }
                    }
                }
                if self.phase == Phase::Draining
                    && !self.open_msgs.back().is_some_and(|m| m.counted)
                {
                    self.finish(lp);
                }
            }
        }
    }

    // -- output --------------------------------------------------------------------------------

    /// How many more messages may be sent (count-bounded runs).
    fn allowance(&self) -> u64 {
        match (self.phase, self.budget) {
            (Phase::Done | Phase::Opening | Phase::Draining, _) => 0,
            (_, Some(b)) => b,
            _ => u64::MAX,
        }
    }

    fn take_budget(&mut self, lp: &mut Loop, k: u64) {
        if let Some(b) = self.budget.as_mut() {
            *b = b.saturating_sub(k);
            if *b == 0 && self.phase == Phase::Measure {
                self.phase = Phase::Draining;
                let empty = match self.cfg.mode {
                    WsMode::Echo => self.inflight_counted == 0,
                    WsMode::Fanout => !self.open_msgs.back().is_some_and(|m| m.counted),
                };
                if empty {
                    self.finish(lp);
                }
            }
        }
    }

    /// Echo: tops `slot` up to `pipeline` messages in flight, in one write.
    fn pump_echo(&mut self, lp: &mut Loop, slot: usize) {
        let allowance = self.allowance();
        let Some(c) = self.conns.get_mut(slot) else {
            return;
        };
        let Some(id) = c.id else { return };
        let room = self.cfg.pipeline.saturating_sub(c.inflight.len()) as u64;
        let k = room.min(allowance) as usize;
        if k == 0 {
            return;
        }
        let now = lp.hrtime();
        let measuring = matches!(self.phase, Phase::Measure | Phase::Draining);
        for _ in 0..k {
            c.inflight.push_back((now, measuring));
        }
        self.inflight_total += k as u64;
        if measuring {
            self.inflight_counted += k as u64;
        }
        let _ = lp.tcp_write(id, &self.batch[..k * self.frame_len]);
        if measuring {
            self.sent += k as u64;
            self.take_budget(lp, k as u64);
        }
    }

    /// Fan-out: publishes until `pipeline` messages are open, in one write.
    fn pump_publisher(&mut self, lp: &mut Loop) {
        let allowance = self.allowance();
        let Some(id) = self.conns.last().and_then(|c| c.id) else {
            return;
        };
        let room = self.cfg.pipeline.saturating_sub(self.open_msgs.len()) as u64;
        let k = room.min(allowance);
        if k == 0 {
            return;
        }
        let now = lp.hrtime();
        let measuring = self.measuring();
        let mut out = BytesMut::with_capacity(k as usize * self.frame_len);
        let mut payload = self.payload.clone();
        for _ in 0..k {
            payload[..SEQ_LEN].copy_from_slice(&self.next_seq.to_le_bytes());
            encode_masked_frame(&mut out, true, OpCode::Binary, MASK, &payload);
            self.open_msgs.push_back(Open {
                sent: now,
                remaining: self.cfg.connections,
                counted: measuring,
            });
            self.next_seq += 1;
        }
        let _ = lp.tcp_write(id, &out);
        if measuring {
            self.sent += k;
            self.take_budget(lp, k);
        }
    }

    // -- failures and timers ---------------------------------------------------------------------

    fn on_error(&mut self, lp: &mut Loop, slot: usize, err: &io::Error) {
        let what = if self.conns.get(slot).is_some_and(|c| c.open) {
            "lost"
        } else {
            "could not open"
        };
        self.abort(lp, format!("connection {slot} {what}: {err}"));
    }

    fn on_close(&mut self, lp: &mut Loop, slot: usize) {
        if let Some(c) = self.conns.get_mut(slot) {
            c.id = None;
        }
        self.abort(lp, format!("connection {slot} closed by the server"));
    }

    /// Opens slots while fewer than `MAX_OPENING` are opening.
    fn open_more(&mut self) -> Vec<usize> {
        let mut slots = Vec::new();
        while self.opening < MAX_OPENING {
            let Some(s) = self.to_open.pop_front() else {
                break;
            };
            self.opening += 1;
            slots.push(s);
        }
        slots
    }

    /// Every 100 ms: the opening deadline, stalls.
    fn check(&mut self, lp: &mut Loop) {
        let now = lp.hrtime();
        let limit = self.cfg.timeout.as_nanos() as u64;
        match self.phase {
            Phase::Opening => {
                if now.saturating_sub(self.t_start) > limit {
                    let msg = format!(
                        "only {} of {} connections open after {:?}",
                        self.opened,
                        self.conns.len(),
                        self.cfg.timeout
                    );
                    self.abort(lp, msg);
                }
            }
            Phase::Warmup | Phase::Measure | Phase::Draining => {
                let waiting = match self.cfg.mode {
                    WsMode::Echo => self.inflight_total > 0,
                    WsMode::Fanout => !self.open_msgs.is_empty(),
                };
                if waiting && now.saturating_sub(self.last_progress) > limit {
                    let msg = format!(
                        "stalled: no message for {:?} ({} expected)",
                        self.cfg.timeout,
                        match self.cfg.mode {
                            WsMode::Echo => self.inflight_total,
                            WsMode::Fanout =>
                                self.open_msgs.iter().map(|m| m.remaining as u64).sum(),
                        }
                    );
                    self.abort(lp, msg);
                }
            }
            Phase::Done => {}
        }
    }
}

/// Opens the socket for `slot` and wires its callbacks.
fn connect(engine: &Shared, lp: &mut Loop, slot: usize) {
    let addr = {
        let e = engine.borrow();
        let subscriber = e
            .conns
            .get(slot)
            .is_some_and(|c| c.role == Role::Subscriber);
        match (subscriber, e.cfg.subscribers_addr) {
            (true, Some(at)) => at,
            _ => e.cfg.addr,
        }
    };
    let options = SocketOptions {
        no_delay: true,
        ..SocketOptions::default()
    };
    let on_connect = {
        let e = Rc::clone(engine);
        move |lp: &mut Loop, _id: TcpId| e.borrow_mut().on_connect(lp, slot)
    };
    let id = match lp.tcp_connect(addr, options, on_connect) {
        Ok(id) => id,
        Err(err) => {
            engine
                .borrow_mut()
                .abort(lp, format!("connection {slot}: no socket: {err}"));
            return;
        }
    };
    if let Some(c) = engine.borrow_mut().conns.get_mut(slot) {
        c.id = Some(id);
    }
    let e = Rc::clone(engine);
    let _ = lp.tcp_on_data(id, move |lp, _id, data| {
        let (more, started) = {
            let mut e = e.borrow_mut();
            let was_open = e.conns.get(slot).is_some_and(|c| c.open);
            e.on_data(lp, slot, data);
            let now_open = e.conns.get(slot).is_some_and(|c| c.open);
            let started = !was_open && now_open && e.opened == e.conns.len();
            if !was_open && now_open && e.phase == Phase::Opening {
                (e.open_more(), started)
            } else {
                (Vec::new(), started && e.phase != Phase::Done)
            }
        };
        for s in more {
            connect(&e, lp, s);
        }
        if started {
            arm_phase_timers(&e, lp);
        }
    });
    let e = Rc::clone(engine);
    let _ = lp.tcp_on_error(id, move |lp, _id, err| {
        e.borrow_mut().on_error(lp, slot, err)
    });
    let e = Rc::clone(engine);
    let _ = lp.tcp_on_close(id, move |lp, _id, _had_error| {
        e.borrow_mut().on_close(lp, slot)
    });
}

/// Opens the first connections and arms the timers.
fn start(engine: &Shared, lp: &mut Loop) {
    let (first, hard_stop) = {
        let mut e = engine.borrow_mut();
        e.t_start = lp.hrtime();
        let first = e.open_more();
        // Opening + warm-up + measuring + a stall's worth of draining.
        let hard_stop = e.cfg.timeout * 2 + e.cfg.warmup + e.cfg.duration;
        (first, hard_stop)
    };
    for s in first {
        connect(engine, lp, s);
    }
    let mut timers = Vec::new();
    let e = Rc::clone(engine);
    timers.push(lp.set_interval(100u64, move |lp| e.borrow_mut().check(lp)));
    let e = Rc::clone(engine);
    timers.push(lp.set_timeout(hard_stop, move |lp| {
        e.borrow_mut()
            .abort(lp, "the run took longer than its time bound".into())
    }));
    engine.borrow_mut().timers.extend(timers);
}

/// The load started (the last handshake completed): arms the warm-up and duration timers.
fn arm_phase_timers(engine: &Shared, lp: &mut Loop) {
    let (warmup, total) = {
        let e = engine.borrow();
        (e.cfg.warmup, e.cfg.warmup + e.cfg.duration)
    };
    let mut new = Vec::new();
    if !warmup.is_zero() {
        let e = Rc::clone(engine);
        new.push(lp.set_timeout(warmup, move |lp| e.borrow_mut().begin_measure(lp)));
    }
    let e = Rc::clone(engine);
    new.push(lp.set_timeout(total, move |lp| e.borrow_mut().finish(lp)));
    engine.borrow_mut().timers.extend(new);
}

#[cfg(test)]
fn parse_head_plain(buf: &[u8], max: usize) -> Result<Option<Head>, String> {
    parse_head(buf, max, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_server_frames() {
        assert_eq!(
            parse_head_plain(&[0x82, 3, 1, 2, 3], 100),
            Ok(Some(Head {
                fin: true,
                rsv1: false,
                opcode: 2,
                header: 2,
                len: 3
            }))
        );
        assert_eq!(parse_head_plain(&[0x82], 100), Ok(None));
        assert_eq!(parse_head_plain(&[0x82, 126, 1], 100_000), Ok(None));
        assert_eq!(
            parse_head_plain(&[0x02, 126, 1, 0], 100_000).map(|h| h.map(|h| (h.fin, h.len))),
            Ok(Some((false, 256)))
        );
        assert!(parse_head_plain(&[0x82, 0x83, 0, 0, 0, 0], 100).is_err());
        assert!(parse_head_plain(&[0xC2, 1, 0], 100).is_err());
        assert!(parse_head_plain(&[0x82, 127, 0xFF, 0, 0, 0, 0, 0, 0, 0], 100).is_err());
        // With permessage-deflate: RSV1 on a data frame only.
        assert!(parse_head(&[0xC2, 1, 0], 100, true).is_ok_and(|h| h.is_some_and(|h| h.rsv1)));
        assert!(parse_head(&[0xC0, 1, 0], 100, true).is_err());
        assert!(parse_head(&[0xC9, 0], 100, true).is_err());
        assert!(parse_head(&[0xA2, 1, 0], 100, true).is_err());
    }

    #[test]
    fn parses_command_lines() {
        let args = |s: &str| s.split(' ').map(String::from).collect::<Vec<_>>();
        let WsCommand::Run { config, json } = parse_args(args(
            "fanout -c 10 -p 2 -s 16 -d 2s -n 5 --json ws://127.0.0.1:1/b",
        ))
        .unwrap() else {
            panic!("expected a run");
        };
        assert!(json);
        assert_eq!(config.mode, WsMode::Fanout);
        assert_eq!(
            (config.connections, config.pipeline, config.size),
            (10, 2, 16)
        );
        assert_eq!(config.messages, Some(5));
        assert_eq!(config.path, "/b");
        for bad in [
            "echo",
            "ws://127.0.0.1:1/",
            "echo -c 0 ws://127.0.0.1:1/",
            "fanout -s 4 ws://127.0.0.1:1/",
            "echo -c x ws://127.0.0.1:1/",
            "echo --bogus ws://127.0.0.1:1/",
            "echo http://127.0.0.1:1/",
            "echo -d 0 ws://127.0.0.1:1/",
        ] {
            assert!(parse_args(args(bad)).is_err(), "{bad}");
        }
    }
}

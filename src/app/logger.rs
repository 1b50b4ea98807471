//! The access log on the `log` crate: one record per finished response with pino-http's fields.

use std::borrow::Cow;
use std::cell::RefCell;
use std::fmt::Write as _;
use std::rc::Rc;
use std::time::{Duration, Instant};

use super::{Middleware, Req};
use crate::logging::{self, ACCESS_TARGET};

/// Logs `"request completed"` at info level (target `oneloop::access`; 5xx at error level)
/// when each response finishes, with pino-http's fields as key-values:
/// `reqId`, `req.id`, `req.method`, `req.url`, `req.remoteAddress`, `req.remotePort`,
/// `res.statusCode`, `responseTime` (milliseconds, a float). The JSON sink
/// ([`crate::logging`]) nests the dotted keys, so a line reads
/// `{"level":30,..,"reqId":1,"req":{"id":1,"method":"GET","url":"/","remoteAddress":"127.0.0.1","remotePort":50412},"res":{"statusCode":200},"responseTime":0.21,"msg":"request completed"}`.
/// Injected requests (no socket) have no `remoteAddress`/`remotePort`.
pub fn logger() -> Middleware {
    Rc::new(|req, res, next| {
        if let Some(line) = AccessLine::begin(req) {
            let started = req.start_time();
            res.on_finish(move |status, _bytes| {
                let now = Instant::now();
                line.finish(status, now.saturating_duration_since(started), now);
            });
        }
        next.call();
    })
}

/// One request's access line between its start and its finish: what [`logger`] keeps, and
/// what the metrics middleware keeps when it writes the line too
/// ([`WorkerMetrics::middleware_with_access_log`](super::metrics::WorkerMetrics::middleware_with_access_log):
/// one layer, one finish hook and one clock read at each end for both).
pub(crate) enum AccessLine {
    /// The common request on the installed JSON sink, kept as raw fields (see [`Short`]); the
    /// whole line is written at the finish by one function.
    Short(Short),
    /// The installed JSON sink is ours, the request is not [`Short`]: the request's part of
    /// the line, already formatted and escaped; the rest is written at the finish.
    Direct(String),
    /// Another logger, or text lines: a `log` record at the finish.
    Record(Box<RequestPart>),
}

/// Longest request target an [`AccessLine::Short`] keeps (inline, no allocation); a longer
/// one takes the [`AccessLine::Direct`] path.
pub(crate) const SHORT_URL: usize = 64;

/// A request whose fields need no escaping: from a socket (its method is one of the HTTP
/// layer's, all tokens), with an IPv4 peer, its target at most [`SHORT_URL`] bytes of
/// printable ASCII without `"` or `\`.
pub(crate) struct Short {
    id: u64,
    method: &'static str,
    peer: Option<std::net::SocketAddrV4>,
    url_len: u8,
    url: [u8; SHORT_URL],
}

/// What the record path keeps of the request.
pub(crate) struct RequestPart {
    id: u64,
    method: Cow<'static, str>,
    url: String,
    peer: Option<std::net::SocketAddr>,
}

impl AccessLine {
    /// The request's part of its line, or `None` when the access target logs nothing.
    pub(crate) fn begin(req: &Req) -> Option<AccessLine> {
        match logging::direct_access_max() {
            Some(max) if max >= log::Level::Error => {}
            Some(_) => return None,
            None if log::log_enabled!(target: ACCESS_TARGET, log::Level::Error) => {
                return Some(AccessLine::record(req))
            }
            None => return None,
        }
        if let Some(r) = req.http() {
            if let Some(short) = Short::new(req.id, r.method(), r.target_bytes(), r.remote_addr()) {
                return Some(AccessLine::Short(short));
            }
        }
        Some(AccessLine::direct(req))
    }

    /// The [`AccessLine::Direct`] part of a request that is not [`Short`].
    #[cold]
    #[inline(never)]
    fn direct(req: &Req) -> AccessLine {
        let url = req.url();
        let mut line = spare_line(128 + url.len());
        let peer = req.http().and_then(|r| r.remote_addr());
        push_request_fields(&mut line, req.id, req.method(), url, peer);
        AccessLine::Direct(line)
    }

    /// The [`AccessLine::Record`] part (another logger than ours, or text lines).
    #[cold]
    #[inline(never)]
    fn record(req: &Req) -> AccessLine {
        // The standard methods without an allocation; any other as sent.
        let method = match super::metrics::http_stats::method_label(req.method()) {
            "OTHER" => Cow::Owned(req.method().to_string()),
            known => Cow::Borrowed(known),
        };
        AccessLine::Record(Box::new(RequestPart {
            id: req.id,
            method,
            url: req.url().to_string(),
            peer: req.http().and_then(|r| r.remote_addr()),
        }))
    }

    /// Writes the line of a response finished with `status` at `now`, `elapsed` after it
    /// started.
    pub(crate) fn finish(self, status: u16, elapsed: Duration, now: Instant) {
        let us = micros(elapsed);
        match self {
            AccessLine::Short(short) => {
                logging::write_access_json(level_for(status), now, |out, ip| {
                    short.push_fields(out, ip, status, us)
                });
            }
            AccessLine::Direct(line) => finish_direct(line, status, us, now),
            AccessLine::Record(part) => finish_record(*part, status, us),
        }
    }
}

impl Short {
    /// `None` unless the request qualifies (see [`Short`]).
    #[inline]
    fn new(
        id: u64,
        method: &'static str,
        target: &[u8],
        peer: Option<std::net::SocketAddr>,
    ) -> Option<Short> {
        let peer = match peer {
            None => None,
            Some(std::net::SocketAddr::V4(v4)) => Some(v4),
            Some(std::net::SocketAddr::V6(_)) => return None,
        };
        let mut url = [0; SHORT_URL];
        let dst = url.get_mut(..target.len())?;
        // What `push_json_string` would copy as is (and valid UTF-8: ASCII).
        if !target
            .iter()
            .all(|&b| (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\')
        {
            return None;
        }
        dst.copy_from_slice(target);
        Some(Short {
            id,
            method,
            peer,
            url_len: target.len() as u8,
            url,
        })
    }

    /// The line's members after the head, the same bytes as [`push_request_fields`] then
    /// [`push_response_fields`] write: `"reqId":ID,"req":{"id":ID,"method":"M","url":"U"[,
    /// "remoteAddress":"A","remotePort":P]},"res":{"statusCode":S},"responseTime":MS,`.
    fn push_fields(&self, out: &mut Vec<u8>, ip: &mut logging::Ipv4Json, status: u16, us: u64) {
        let mut n = itoa::Buffer::new();
        let id = n.format(self.id).as_bytes();
        out.extend_from_slice(b"\"reqId\":");
        out.extend_from_slice(id);
        out.extend_from_slice(b",\"req\":{\"id\":");
        out.extend_from_slice(id);
        out.extend_from_slice(b",\"method\":\"");
        out.extend_from_slice(self.method.as_bytes());
        out.extend_from_slice(b"\",\"url\":\"");
        out.extend_from_slice(self.url.get(..usize::from(self.url_len)).unwrap_or(&[]));
        out.push(b'"');
        if let Some(peer) = self.peer {
            out.extend_from_slice(b",\"remoteAddress\":");
            ip.push(out, *peer.ip());
            out.extend_from_slice(b",\"remotePort\":");
            out.extend_from_slice(itoa::Buffer::new().format(peer.port()).as_bytes());
        }
        out.extend_from_slice(b"},");
        push_response_fields(out, status, us);
    }
}

/// [`AccessLine::finish`] of an [`AccessLine::Direct`] line.
#[cold]
#[inline(never)]
fn finish_direct(line: String, status: u16, us: u64, now: Instant) {
    logging::write_access_json(level_for(status), now, |out, _| {
        out.extend_from_slice(line.as_bytes());
        push_response_fields(out, status, us);
    });
    give_back_line(line);
}

/// [`AccessLine::finish`] of an [`AccessLine::Record`]: a `log` record.
#[cold]
#[inline(never)]
fn finish_record(part: RequestPart, status: u16, us: u64) {
    let RequestPart {
        id,
        method,
        url,
        peer,
    } = part;
    let ms = us as f64 / 1e3;
    let level = level_for(status);
    match peer {
        Some(peer) => {
            let ip = peer.ip();
            log::log!(target: ACCESS_TARGET, level,
                reqId = id, "req.id" = id, "req.method" = &*method,
                "req.url" = url.as_str(), "req.remoteAddress" :% = ip,
                "req.remotePort" = peer.port(), "res.statusCode" = status,
                responseTime = ms; "request completed");
        }
        None => {
            log::log!(target: ACCESS_TARGET, level,
                reqId = id, "req.id" = id, "req.method" = &*method,
                "req.url" = url.as_str(), "res.statusCode" = status,
                responseTime = ms; "request completed");
        }
    }
}

/// Request halves of access lines kept for reuse on this thread (a fresh `String` per request
/// cost a `malloc` and a `free`): at most [`SPARE_LINES`] of them, none larger than
/// [`SPARE_LINE_BYTES`].
const SPARE_LINES: usize = 256;
const SPARE_LINE_BYTES: usize = 4096;

thread_local! {
    static SPARE: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
}

/// An empty string with room for `bytes`, reused when one is spare.
fn spare_line(bytes: usize) -> String {
    let mut line = SPARE
        .with_borrow_mut(|spare| spare.pop())
        .unwrap_or_default();
    line.reserve(bytes);
    line
}

/// Keeps `line` for [`spare_line`] (within the bounds).
fn give_back_line(mut line: String) {
    if line.capacity() <= SPARE_LINE_BYTES {
        line.clear();
        SPARE.with_borrow_mut(|spare| {
            if spare.len() < SPARE_LINES {
                spare.push(line);
            }
        });
    }
}

/// 5xx at error level, the rest at info (pino-http's default `customLogLevel`).
fn level_for(status: u16) -> log::Level {
    if status >= 500 {
        log::Level::Error
    } else {
        log::Level::Info
    }
}

/// `d` in microseconds, rounded (`responseTime` is this in milliseconds).
fn micros(d: Duration) -> u64 {
    d.as_secs() * 1_000_000 + u64::from(d.subsec_nanos() + 500) / 1000
}

/// `"reqId":ID,"req":{"id":ID,"method":..,"url":..[,"remoteAddress":..,"remotePort":..]},`:
/// the members the record path writes from its `reqId` and `req.*` key-values.
fn push_request_fields(
    out: &mut String,
    id: u64,
    method: &str,
    url: &str,
    peer: Option<std::net::SocketAddr>,
) {
    let mut n = itoa::Buffer::new();
    let id = n.format(id);
    out.push_str("\"reqId\":");
    out.push_str(id);
    out.push_str(",\"req\":{\"id\":");
    out.push_str(id);
    out.push_str(",\"method\":");
    logging::push_json_string(out, method);
    out.push_str(",\"url\":");
    logging::push_json_string(out, url);
    if let Some(peer) = peer {
        out.push_str(",\"remoteAddress\":");
        let _ = write!(out, "\"{}\"", peer.ip());
        out.push_str(",\"remotePort\":");
        out.push_str(itoa::Buffer::new().format(peer.port()));
    }
    out.push_str("},");
}

/// `"res":{"statusCode":S},"responseTime":MS,` (`MS` from `us`, as the record path writes
/// `us as f64 / 1e3`).
fn push_response_fields(out: &mut Vec<u8>, status: u16, us: u64) {
    // The common case, a three-digit status and under 10 ms, as one piece: a template with
    // the digits filled in, cut after the last nonzero thousandth (`0.21`, `1.0`).
    const PIECE: &[u8; 46] = b"\"res\":{\"statusCode\":000},\"responseTime\":0.000,";
    const STATUS: usize = 20; // after `"res":{"statusCode":`
    const MS: usize = STATUS + 3 + 17; // after `},"responseTime":`
    if (100..1000).contains(&status) && us < 10_000 {
        let mut piece = *PIECE;
        piece[STATUS] = b'0' + (status / 100) as u8;
        piece[STATUS + 1] = b'0' + (status / 10 % 10) as u8;
        piece[STATUS + 2] = b'0' + (status % 10) as u8;
        let frac = (us % 1000) as u16;
        piece[MS] = b'0' + (us / 1000) as u8;
        piece[MS + 2] = b'0' + (frac / 100) as u8;
        piece[MS + 3] = b'0' + (frac / 10 % 10) as u8;
        piece[MS + 4] = b'0' + (frac % 10) as u8;
        let end = if frac.is_multiple_of(100) {
            MS + 3
        } else if frac.is_multiple_of(10) {
            MS + 4
        } else {
            MS + 5
        };
        piece[end] = b',';
        out.extend_from_slice(&piece[..=end]);
        return;
    }
    push_response_fields_general(out, status, us);
}

#[cold]
#[inline(never)]
fn push_response_fields_general(out: &mut Vec<u8>, status: u16, us: u64) {
    out.extend_from_slice(b"\"res\":{\"statusCode\":");
    out.extend_from_slice(itoa::Buffer::new().format(status).as_bytes());
    out.extend_from_slice(b"},\"responseTime\":");
    logging::push_json_millis(out, us);
    out.push(b',');
}

#[cfg(test)]
mod tests {
    use super::*;
    use log::kv::ToValue;

    /// The line the record path writes for the same request, through the generic sink.
    fn record_line(
        level: log::Level,
        id: u64,
        method: &str,
        url: &str,
        peer: Option<std::net::SocketAddr>,
        status: u16,
        ms: f64,
    ) -> String {
        let bindings = logging::json_bindings(7, "host");
        let (ip, port) = match peer {
            Some(p) => (p.ip().to_string(), p.port()),
            None => (String::new(), 0),
        };
        let mut kvs: Vec<(&str, &dyn ToValue)> = vec![
            ("reqId", &id),
            ("req.id", &id),
            ("req.method", &method),
            ("req.url", &url),
        ];
        if peer.is_some() {
            kvs.push(("req.remoteAddress", &ip));
            kvs.push(("req.remotePort", &port));
        }
        kvs.push(("res.statusCode", &status));
        kvs.push(("responseTime", &ms));
        let record = log::Record::builder()
            .level(level)
            .target(ACCESS_TARGET)
            .args(format_args!("request completed"))
            .key_values(&kvs)
            .build();
        logging::json_line(&record, 1234, &bindings)
    }

    fn direct_line(
        level: log::Level,
        id: u64,
        method: &str,
        url: &str,
        peer: Option<std::net::SocketAddr>,
        status: u16,
        us: u64,
    ) -> String {
        test_line(level, |out| {
            let mut request = String::new();
            push_request_fields(&mut request, id, method, url, peer);
            out.extend_from_slice(request.as_bytes());
            push_response_fields(out, status, us);
        })
    }

    /// A line as the direct sink writes it: the head (time 1234, pid 7, host `host`), what
    /// `fields` writes, the message.
    fn test_line(level: log::Level, fields: impl FnOnce(&mut Vec<u8>)) -> String {
        let mut head = String::new();
        logging::push_json_head(&mut head, level, 1234, &logging::json_bindings(7, "host"));
        let mut out = head.into_bytes();
        fields(&mut out);
        out.extend_from_slice(b"\"msg\":\"request completed\"}\n");
        String::from_utf8(out).unwrap()
    }

    /// The [`Short`] line of the same request, if it qualifies.
    fn short_line(
        level: log::Level,
        id: u64,
        method: &'static str,
        url: &str,
        peer: Option<std::net::SocketAddr>,
        status: u16,
        us: u64,
    ) -> Option<String> {
        let short = Short::new(id, method, url.as_bytes(), peer)?;
        let mut ip = logging::Ipv4Json::default();
        Some(test_line(level, |out| {
            short.push_fields(out, &mut ip, status, us)
        }))
    }

    #[test]
    fn direct_access_line_is_byte_identical_to_the_record_path() {
        let v4 = Some("127.0.0.1:50412".parse().unwrap());
        let v6 = Some("[::1]:8080".parse().unwrap());
        let cases = [
            (log::Level::Info, 1, "GET", "/", v4, 200, 210),
            (
                log::Level::Error,
                99,
                "PROPFIND",
                "/a?b=\"c\"\n\\",
                v6,
                503,
                1000,
            ),
            (
                log::Level::Info,
                u64::MAX,
                "POST",
                "/caf\u{e9}",
                None,
                404,
                0,
            ),
            (log::Level::Info, 3, "GET", "/x", v4, 200, 12_345_678),
            (log::Level::Info, 4, "GET", "/y", v4, 200, 1),
            (log::Level::Info, 5, "GET", "/z", v4, 200, 20_050),
            (log::Level::Info, 6, "GET", "/api/users/7?x=1", v4, 42, 999),
            (log::Level::Info, 7, "M-SEARCH", "*", None, 1000, 100),
            (log::Level::Info, 8, "GET", "/a b", v4, 65535, 12),
            (log::Level::Info, 9, "GET", "/a\"b", v4, 200, 12),
            (log::Level::Info, 10, "GET", "/a\\b", v4, 200, 12),
            (log::Level::Info, 11, "GET", "/a\u{7f}", v4, 200, 12),
            (log::Level::Info, 12, "GET", "/a\tb", v4, 200, 12),
            (log::Level::Info, 13, "GET", &LONG[..SHORT_URL], v4, 200, 12),
            (
                log::Level::Info,
                14,
                "GET",
                &LONG[..SHORT_URL + 1],
                v4,
                200,
                12,
            ),
            (log::Level::Info, 15, "GET", "/", v6, 200, 12),
            (log::Level::Info, 16, "GET", "", None, 200, 12),
            (log::Level::Info, 17, "GET", "/", v4, 100, 9_999),
            (log::Level::Info, 18, "GET", "/", v4, 999, 10_000),
            (log::Level::Info, 19, "GET", "/", v4, 200, 9_990),
            (log::Level::Info, 20, "GET", "/", v4, 200, 9_900),
        ];
        let mut short = 0;
        for (level, id, method, url, peer, status, us) in cases {
            let generic = record_line(level, id, method, url, peer, status, us as f64 / 1e3);
            let direct = direct_line(level, id, method, url, peer, status, us);
            assert_eq!(direct, generic);
            serde_json::from_str::<serde_json::Value>(&direct).unwrap();
            if let Some(line) = short_line(level, id, method, url, peer, status, us) {
                assert_eq!(line, generic);
                short += 1;
            }
        }
        // Short: ids 1, 3-8, 13, 16-20; not: escapes, control characters, DEL, non-ASCII,
        // longer than SHORT_URL, IPv6.
        assert_eq!(short, 13);
    }

    const LONG: &str = "/0123456789/0123456789/0123456789/0123456789/0123456789/0123456789";
}

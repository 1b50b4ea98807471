//! The access log on the `log` crate: one record per finished response with pino-http's fields.

use std::borrow::Cow;
use std::cell::RefCell;
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
    /// The installed JSON sink is ours: the request's part of the line, already formatted (it
    /// replaces the copy of the URL the record path keeps); the rest is written at the finish.
    Direct(String),
    /// Another logger, or text lines: a `log` record at the finish.
    Record(Box<RequestPart>),
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
        let direct = match logging::direct_access_max() {
            Some(max) if max >= log::Level::Error => true,
            Some(_) => return None,
            None if log::log_enabled!(target: ACCESS_TARGET, log::Level::Error) => false,
            None => return None,
        };
        let id = req.id;
        let peer = req.http().and_then(|r| r.remote_addr());
        if direct {
            let url = req.url();
            let mut line = spare_line(128 + url.len());
            push_request_fields(&mut line, id, req.method(), url, peer);
            return Some(AccessLine::Direct(line));
        }
        // The standard methods without an allocation; any other as sent.
        let method = match super::metrics::http_stats::method_label(req.method()) {
            "OTHER" => Cow::Owned(req.method().to_string()),
            known => Cow::Borrowed(known),
        };
        Some(AccessLine::Record(Box::new(RequestPart {
            id,
            method,
            url: req.url().to_string(),
            peer,
        })))
    }

    /// Writes the line of a response finished with `status` at `now`, `elapsed` after it
    /// started.
    pub(crate) fn finish(self, status: u16, elapsed: Duration, now: Instant) {
        let us = micros(elapsed);
        match self {
            AccessLine::Direct(line) => {
                logging::write_access_json(level_for(status), now, |out| {
                    out.push_str(&line);
                    push_response_fields(out, status, us);
                });
                give_back_line(line);
            }
            AccessLine::Record(part) => {
                let RequestPart {
                    id,
                    method,
                    url,
                    peer,
                } = *part;
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
        logging::push_json_ip(out, peer.ip());
        out.push_str(",\"remotePort\":");
        out.push_str(itoa::Buffer::new().format(peer.port()));
    }
    out.push_str("},");
}

/// `"res":{"statusCode":S},"responseTime":MS,` (`MS` from `us`, as the record path writes
/// `us as f64 / 1e3`).
fn push_response_fields(out: &mut String, status: u16, us: u64) {
    out.push_str("\"res\":{\"statusCode\":");
    out.push_str(itoa::Buffer::new().format(status));
    out.push_str("},\"responseTime\":");
    logging::push_json_millis(out, us);
    out.push(',');
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
        let mut out = String::new();
        logging::push_json_head(&mut out, level, 1234, &logging::json_bindings(7, "host"));
        push_request_fields(&mut out, id, method, url, peer);
        push_response_fields(&mut out, status, us);
        out.push_str("\"msg\":\"request completed\"}\n");
        out
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
        ];
        for (level, id, method, url, peer, status, us) in cases {
            let generic = record_line(level, id, method, url, peer, status, us as f64 / 1e3);
            let direct = direct_line(level, id, method, url, peer, status, us);
            assert_eq!(direct, generic);
            serde_json::from_str::<serde_json::Value>(&direct).unwrap();
        }
    }
}

//! One connection, served on its own thread with blocking reads and writes.
//!
//! ```text
//!  [Idle] --bytes--> [Head] --head parsed--> [Body] --body read--> handler --> response queued
//!    ^                                                                              |
//!    +------------- keep-alive (flush when no complete request is buffered) --------+
//!  framing error: status + Connection: close, FIN, discard input briefly, close
//! ```
//!
//! Responses are serialized into `out` and written only when the thread is about to block on a
//! read (or close), so a pipelined batch is answered with one `write`, as the loop server does.

use std::io::{self, ErrorKind, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::panic::{self, AssertUnwindSafe};
use std::time::{Duration, Instant, SystemTime};

use bytes::BytesMut;

use super::message::{ThreadedRequest, ThreadedResponse};
use super::Shared;
use crate::http::date::DateCache;
use crate::http::decode::{BodyDecoder, DecodeLimits, Decoded};
use crate::http::encode;
use crate::http::parse::{BodyKind, HeadParser, Limits, Method, RequestHead, Version};
use crate::http::status::reason_phrase;
use crate::http::ParseError;

/// Bytes asked of the kernel per read.
const READ_CHUNK: usize = 16 * 1024;
/// Input discarded after our FIN before giving up on the peer's.
const MAX_DISCARD: usize = 256 * 1024;

/// Why serving stopped before the next request.
enum Stop {
    /// Close now (peer gone, I/O error, or we already answered and closed).
    Close,
    /// The head or body read timed out with bytes pending: answer 408.
    Timeout,
    /// A framing error: answer its status.
    Error(ParseError),
}

/// What one read produced.
enum ReadOutcome {
    Data,
    Eof,
    TimedOut,
    Failed,
}

struct Conn<'a> {
    stream: TcpStream,
    shared: &'a Shared,
    inbuf: BytesMut,
    /// What one read fills; its bytes are appended to `inbuf`.
    scratch: Box<[u8]>,
    out: BytesMut,
    parser: HeadParser,
    date: DateCache,
    /// The read timeout currently set on the socket.
    read_timeout: Option<Duration>,
    served: u64,
}

/// Serves requests on `stream` until the connection closes.
pub(crate) fn serve(stream: TcpStream, shared: &Shared) {
    let _ = stream.set_nodelay(true);
    let mut conn = Conn {
        stream,
        shared,
        inbuf: BytesMut::with_capacity(READ_CHUNK),
        scratch: vec![0; READ_CHUNK].into_boxed_slice(),
        out: BytesMut::with_capacity(READ_CHUNK),
        parser: HeadParser::new(),
        date: DateCache::new(),
        read_timeout: None,
        served: 0,
    };
    let accepted = Instant::now();
    match conn.run(accepted) {
        Stop::Close => {}
        Stop::Timeout => conn.fail(408),
        Stop::Error(e) => {
            log::debug!("threaded: {} ({})", e.status(), e.reason());
            conn.fail(e.status());
        }
    }
}

impl Conn<'_> {
    fn limits(&self) -> Limits {
        let c = &self.shared.config;
        Limits {
            max_head_size: c.max_header_size,
            max_headers: c.max_headers_count,
            max_request_line: c.max_request_line,
            require_host: c.require_host,
        }
    }

    /// The request/response cycle; returns how it ended.
    fn run(&mut self, accepted: Instant) -> Stop {
        let limits = self.limits();
        let decode_limits = DecodeLimits {
            max_body_size: self.shared.config.max_body_size,
            ..DecodeLimits::default()
        };
        // The first head's timeout runs from accept; later ones from their first byte.
        let mut head_start = Some(accepted);
        loop {
            let head = match self.read_head(&limits, &mut head_start) {
                Ok(head) => head,
                Err(stop) => return stop,
            };
            let body = match self.read_body(&head, &decode_limits) {
                Ok(body) => body,
                Err(stop) => return stop,
            };
            if head.method() == Method::Connect {
                // No tunnel handler: close, as the loop server does. Earlier answers go first.
                // Any other `Upgrade` offer is ignored: served as HTTP (RFC 9110 §7.8).
                self.flush();
                return Stop::Close;
            }
            let is_head = head.method() == Method::Head;
            let unsupported_expectation = head.has_unsupported_expectation();
            let mut keep_alive = head.keep_alive() && !self.shared.is_closing();
            let mut res = ThreadedResponse::new();
            if unsupported_expectation {
                res.status(ParseError::ExpectationFailed.status());
            } else {
                let req = ThreadedRequest {
                    head,
                    body,
                    remote: self.stream.peer_addr().ok(),
                };
                let handler = &self.shared.handler;
                let called = panic::catch_unwind(AssertUnwindSafe(|| handler(&req, &mut res)));
                if called.is_err() {
                    log::error!("threaded: handler panicked; answering 500 and closing");
                    res = ThreadedResponse::new();
                    res.status(500);
                    keep_alive = false;
                }
            }
            self.served += 1;
            self.write_response(&res, is_head, &mut keep_alive);
            if !keep_alive {
                self.close_gracefully();
                return Stop::Close;
            }
            head_start = if self.inbuf.is_empty() {
                None
            } else {
                Some(Instant::now())
            };
        }
    }

    /// Parses the next head, reading as needed. `head_start` is when its first byte arrived
    /// (`None` while idle between requests).
    fn read_head(
        &mut self,
        limits: &Limits,
        head_start: &mut Option<Instant>,
    ) -> Result<RequestHead, Stop> {
        loop {
            match self.parser.parse(&mut self.inbuf, limits) {
                Ok(Some(head)) => return Ok(head),
                Ok(None) => {}
                Err(e) => return Err(Stop::Error(e)),
            }
            // About to block: answers owed to earlier (pipelined) requests go out first.
            if !self.flush() {
                return Err(Stop::Close);
            }
            let headers_timeout = self.shared.config.headers_timeout;
            let timeout = match *head_start {
                None => self.shared.config.keep_alive_timeout,
                Some(t) => match headers_timeout.checked_sub(t.elapsed()) {
                    Some(left) if !left.is_zero() => left,
                    _ => return Err(Stop::Timeout),
                },
            };
            match self.read_more(timeout) {
                ReadOutcome::Data => {
                    if head_start.is_none() {
                        *head_start = Some(Instant::now());
                    }
                }
                // Idle (or not one byte yet) when it timed out: close quietly, as Node does.
                ReadOutcome::TimedOut if self.inbuf.is_empty() => return Err(Stop::Close),
                ReadOutcome::TimedOut => return Err(Stop::Timeout),
                ReadOutcome::Eof | ReadOutcome::Failed => return Err(Stop::Close),
            }
        }
    }

    /// Reads the whole body framed by `head` (sending `100 Continue` first when asked).
    fn read_body(&mut self, head: &RequestHead, limits: &DecodeLimits) -> Result<Vec<u8>, Stop> {
        let kind = head.body_kind();
        if let BodyKind::Length(n) = kind {
            if n > limits.max_body_size {
                return Err(Stop::Error(ParseError::BodyTooLarge));
            }
        }
        let mut decoder = BodyDecoder::new(kind);
        if decoder.is_done() {
            return Ok(Vec::new());
        }
        if head.expect_continue() && head.version() == Version::Http11 {
            self.out.extend_from_slice(b"HTTP/1.1 100 Continue\r\n\r\n");
        }
        let mut body = match kind {
            BodyKind::Length(n) => Vec::with_capacity(n.min(1 << 20) as usize),
            _ => Vec::new(),
        };
        loop {
            match decoder.decode(&mut self.inbuf, limits) {
                Ok(Decoded::Data(bytes)) => body.extend_from_slice(&bytes),
                Ok(Decoded::Done) => return Ok(body),
                Ok(Decoded::NeedMore) => {
                    if !self.flush() {
                        return Err(Stop::Close);
                    }
                    match self.read_more(self.shared.config.body_timeout) {
                        ReadOutcome::Data => {}
                        ReadOutcome::TimedOut => return Err(Stop::Timeout),
                        ReadOutcome::Eof | ReadOutcome::Failed => return Err(Stop::Close),
                    }
                }
                Err(e) => return Err(Stop::Error(e)),
            }
        }
    }

    /// Serializes the response as the loop server's `write_head` does: status line, the
    /// user's fields in order, Date, Content-Length, then Connection.
    fn write_response(&mut self, res: &ThreadedResponse, is_head: bool, keep_alive: &mut bool) {
        // HTTP/1.0 requests get an HTTP/1.1 status line too, as from the loop server and Node.
        self.date.update(SystemTime::now());
        let out = &mut self.out;
        let status = res.status;
        encode::write_status_line(out, Version::Http11, status, reason_phrase(status));
        let mut has_date = false;
        let mut has_len = false;
        for (name, value) in &res.headers {
            if name.eq_ignore_ascii_case("connection") {
                if value
                    .split(|&b| b == b',')
                    .any(|t| t.trim_ascii().eq_ignore_ascii_case(b"close"))
                {
                    *keep_alive = false;
                }
                continue;
            }
            if name.eq_ignore_ascii_case("keep-alive")
                || name.eq_ignore_ascii_case("transfer-encoding")
            {
                continue;
            }
            if name.eq_ignore_ascii_case("date") {
                has_date = true;
            } else if name.eq_ignore_ascii_case("content-length") {
                has_len = true;
            }
            encode::write_header(out, name, value);
        }
        if !has_date {
            encode::write_header(out, "Date", self.date.as_bytes());
        }
        let no_body = (100..200).contains(&status) || status == 204 || status == 304;
        if !no_body && !has_len {
            encode::write_content_length(out, res.body.len() as u64);
        }
        if *keep_alive {
            out.extend_from_slice(&self.shared.keep_alive_header);
        } else {
            out.extend_from_slice(b"Connection: close\r\n");
        }
        encode::write_head_end(out);
        if !is_head && !no_body {
            out.extend_from_slice(&res.body);
        }
    }

    /// Answers `status` with no body and `Connection: close`, then closes.
    fn fail(&mut self, status: u16) {
        self.date.update(SystemTime::now());
        let out = &mut self.out;
        encode::write_status_line(out, Version::Http11, status, reason_phrase(status));
        encode::write_header(out, "Date", self.date.as_bytes());
        out.extend_from_slice(b"Connection: close\r\nContent-Length: 0\r\n\r\n");
        self.close_gracefully();
    }

    /// Writes what is owed, sends FIN, and reads (discarding) until the peer's FIN, briefly:
    /// closing with unread input would send an RST that can destroy the response in flight.
    fn close_gracefully(&mut self) {
        if !self.flush() {
            return;
        }
        let _ = self.stream.shutdown(Shutdown::Write);
        let linger = self
            .shared
            .config
            .keep_alive_timeout
            .min(Duration::from_secs(1));
        let deadline = Instant::now() + linger;
        let mut scratch = [0u8; 4096];
        let mut discarded = 0;
        while discarded < MAX_DISCARD {
            let Some(left) = deadline.checked_duration_since(Instant::now()) else {
                break;
            };
            if left.is_zero() || self.stream.set_read_timeout(Some(left)).is_err() {
                break;
            }
            match self.stream.read(&mut scratch) {
                Ok(0) | Err(_) => break,
                Ok(n) => discarded += n,
            }
        }
    }

    /// Writes `out` in full. False when the peer is gone.
    fn flush(&mut self) -> bool {
        if self.out.is_empty() {
            return true;
        }
        let ok = self.stream.write_all(&self.out).is_ok();
        self.out.clear();
        ok
    }

    /// One read into `inbuf`, with `timeout` as the socket's read timeout.
    fn read_more(&mut self, timeout: Duration) -> ReadOutcome {
        if self.read_timeout != Some(timeout) {
            if self.stream.set_read_timeout(Some(timeout)).is_err() {
                return ReadOutcome::Failed;
            }
            self.read_timeout = Some(timeout);
        }
        let result = loop {
            match self.stream.read(&mut self.scratch) {
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                other => break other,
            }
        };
        match result {
            Ok(0) => ReadOutcome::Eof,
            Ok(n) => {
                self.inbuf.extend_from_slice(&self.scratch[..n]);
                ReadOutcome::Data
            }
            Err(e) if is_timeout(&e) => ReadOutcome::TimedOut,
            Err(_) => ReadOutcome::Failed,
        }
    }
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut)
}

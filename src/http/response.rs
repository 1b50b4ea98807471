//! The response (Node's `ServerResponse`): status and headers, then a body written at once
//! (`end`, Content-Length) or in pieces (`write`, chunked).

use std::borrow::Cow;

use oneloop_runtime::{Loop, LoopHandle};

use super::conn::{self, ConnRef, Exchange};
use super::encode;
use super::parse::Version;
use super::status::reason_phrase;

/// A header value: borrowed `'static` bytes cost no allocation.
pub type HeaderValue = Cow<'static, [u8]>;

/// Anything usable as a header value: `&'static str` and `&'static [u8]` (no allocation),
/// `String`, `Vec<u8>`, or a [`HeaderValue`].
pub trait IntoHeaderValue {
    /// The value as bytes.
    fn into_header_value(self) -> HeaderValue;
}

impl IntoHeaderValue for &'static str {
    fn into_header_value(self) -> HeaderValue {
        Cow::Borrowed(self.as_bytes())
    }
}

impl IntoHeaderValue for String {
    fn into_header_value(self) -> HeaderValue {
        Cow::Owned(self.into_bytes())
    }
}

impl IntoHeaderValue for &'static [u8] {
    fn into_header_value(self) -> HeaderValue {
        Cow::Borrowed(self)
    }
}

impl IntoHeaderValue for Vec<u8> {
    fn into_header_value(self) -> HeaderValue {
        Cow::Owned(self)
    }
}

impl IntoHeaderValue for HeaderValue {
    fn into_header_value(self) -> HeaderValue {
        self
    }
}

type DrainCb = Box<dyn FnMut(&mut Loop)>;
pub(crate) type AbortCb = Box<dyn FnOnce(&mut Loop)>;

/// Per-exchange response state, owned by the connection.
pub(crate) struct ResponseState {
    pub(crate) status: u16,
    pub(crate) headers: Vec<(Cow<'static, str>, HeaderValue)>,
    pub(crate) headers_sent: bool,
    pub(crate) chunked: bool,
    /// HTTP/1.0 (or unknown length without chunking): the body ends when the connection closes.
    pub(crate) close_delimited: bool,
    pub(crate) finished: bool,
    pub(crate) on_drain: Option<DrainCb>,
    /// Run if the connection goes before the response finished (see [`Response::on_abort`]).
    pub(crate) on_abort: Vec<AbortCb>,
    trailers: Vec<(String, Vec<u8>)>,
}

impl ResponseState {
    /// A fresh response state reusing `headers` (empty) as its header list.
    pub(crate) fn with_headers(headers: Vec<(Cow<'static, str>, HeaderValue)>) -> ResponseState {
        debug_assert!(headers.is_empty());
        ResponseState {
            status: 200,
            headers,
            headers_sent: false,
            chunked: false,
            close_delimited: false,
            finished: false,
            on_drain: None,
            on_abort: Vec::new(),
            trailers: Vec::new(),
        }
    }

    fn find(&self, name: &str) -> Option<usize> {
        self.headers
            .iter()
            .position(|(n, _)| n.eq_ignore_ascii_case(name))
    }
}

/// Why a header was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeaderError {
    /// The name is not an HTTP token.
    InvalidName,
    /// The value contains CR, LF, NUL or another control character (header injection).
    InvalidValue,
    /// The head was already sent.
    HeadersSent,
}

impl std::fmt::Display for HeaderError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            HeaderError::InvalidName => "invalid header name",
            HeaderError::InvalidValue => "invalid header value",
            HeaderError::HeadersSent => "headers already sent",
        })
    }
}

impl std::error::Error for HeaderError {}

/// The response to one request. Cheap to clone; every clone names the same response.
///
/// It may be finished after the handler returned (from a timer, a thread-pool completion):
/// the connection waits for it. Once the connection is gone every method is a no-op
/// (`write` returns false).
#[derive(Clone)]
pub struct Response {
    conn: ConnRef,
    seq: u64,
    handle: LoopHandle,
}

fn no_body_status(status: u16) -> bool {
    (100..200).contains(&status) || status == 204 || status == 304
}

impl Response {
    pub(crate) fn new(conn: ConnRef, seq: u64, handle: LoopHandle) -> Response {
        Response { conn, seq, handle }
    }

    fn with<R>(&self, f: impl FnOnce(&mut Exchange) -> R) -> Option<R> {
        let mut c = self.conn.borrow_mut();
        c.exchange(self.seq).map(f)
    }

    /// Sets the status code (default 200).
    pub fn status(&self, code: u16) -> &Self {
        self.with(|ex| {
            if !ex.res.headers_sent {
                ex.res.status = code;
            }
        });
        self
    }

    /// The status code that is (or will be) sent.
    pub fn status_code(&self) -> u16 {
        self.with(|ex| ex.res.status).unwrap_or(0)
    }

    /// Sets a header, replacing any of the same name (case-insensitive). An invalid name or
    /// value is refused and logged (see [`Response::try_set_header`] to handle it).
    pub fn set_header(
        &self,
        name: impl Into<Cow<'static, str>>,
        value: impl IntoHeaderValue,
    ) -> &Self {
        if let Err(e) = self.try_set_header(name, value) {
            log::warn!("set_header refused: {e}");
        }
        self
    }

    /// Sets a header, replacing any of the same name.
    ///
    /// # Errors
    /// An invalid name or value (CR/LF injection), or headers already sent.
    pub fn try_set_header(
        &self,
        name: impl Into<Cow<'static, str>>,
        value: impl IntoHeaderValue,
    ) -> Result<(), HeaderError> {
        self.store_header(name.into(), value.into_header_value(), true)
    }

    /// Appends a header without replacing (for repeated fields such as `Set-Cookie`).
    ///
    /// # Errors
    /// As [`Response::try_set_header`].
    pub fn append_header(
        &self,
        name: impl Into<Cow<'static, str>>,
        value: impl IntoHeaderValue,
    ) -> Result<(), HeaderError> {
        self.store_header(name.into(), value.into_header_value(), false)
    }

    /// Validates a header (no CR/LF injection) and stores it, replacing same-named ones when
    /// `replace`.
    fn store_header(
        &self,
        name: Cow<'static, str>,
        value: HeaderValue,
        replace: bool,
    ) -> Result<(), HeaderError> {
        let name_ok = match &name {
            Cow::Borrowed(name) => valid_static(name.as_bytes(), |n| {
                std::str::from_utf8(n).is_ok_and(encode::validate_header_name)
            }),
            Cow::Owned(name) => encode::validate_header_name(name),
        };
        if !name_ok {
            return Err(HeaderError::InvalidName);
        }
        let value_ok = match &value {
            Cow::Borrowed(value) => valid_static(value, encode::validate_header_value),
            Cow::Owned(value) => encode::validate_header_value(value),
        };
        if !value_ok {
            return Err(HeaderError::InvalidValue);
        }
        self.with(|ex| {
            if ex.res.headers_sent {
                return Err(HeaderError::HeadersSent);
            }
            match ex.res.find(&name).filter(|_| replace) {
                Some(i) => ex.res.headers[i] = (name, value),
                None => ex.res.headers.push((name, value)),
            }
            Ok(())
        })
        .unwrap_or(Ok(()))
    }

    /// The first header named `name`, as text (lossy).
    pub fn get_header(&self, name: &str) -> Option<String> {
        self.with(|ex| {
            ex.res
                .find(name)
                .map(|i| String::from_utf8_lossy(&ex.res.headers[i].1).into_owned())
        })
        .flatten()
    }

    /// Whether a header named `name` is set.
    pub fn has_header(&self, name: &str) -> bool {
        self.with(|ex| ex.res.find(name).is_some()).unwrap_or(false)
    }

    /// Removes every header named `name`.
    pub fn remove_header(&self, name: &str) -> &Self {
        self.with(|ex| {
            if !ex.res.headers_sent {
                ex.res
                    .headers
                    .retain(|(n, _)| !n.eq_ignore_ascii_case(name));
            }
        });
        self
    }

    /// Keeps only the headers `keep` accepts (name, value), while the head is unsent: e.g.
    /// one `Set-Cookie` of several removed.
    pub fn retain_headers(&self, mut keep: impl FnMut(&str, &[u8]) -> bool) -> &Self {
        self.with(|ex| {
            if !ex.res.headers_sent {
                ex.res.headers.retain(|(n, v)| keep(n, v));
            }
        });
        self
    }

    /// Sets the status and headers in one call (Node's `writeHead`); they are sent with the
    /// first `write` or `end`.
    pub fn write_head(&self, status: u16, headers: &[(&'static str, &'static str)]) -> &Self {
        self.status(status);
        for (n, v) in headers {
            self.set_header(*n, v.as_bytes());
        }
        self
    }

    /// Whether the head has been sent.
    pub fn headers_sent(&self) -> bool {
        self.with(|ex| ex.res.headers_sent).unwrap_or(true)
    }

    /// Whether `end` was called (or the connection is gone).
    pub fn finished(&self) -> bool {
        self.with(|ex| ex.res.finished).unwrap_or(true)
    }

    /// Sends `100 Continue` now (for a request with `Expect: 100-continue` when the server's
    /// `auto_continue` is off).
    pub fn write_continue(&self) {
        let mut c = self.conn.borrow_mut();
        if c.exchange(self.seq).is_some_and(|ex| !ex.res.headers_sent) {
            c.refill_out();
            c.out.extend_from_slice(b"HTTP/1.1 100 Continue\r\n\r\n");
            drop(c);
            conn::schedule(&self.conn);
        }
    }

    /// Trailer fields sent after a chunked body (ignored when the body is not chunked).
    pub fn add_trailers(&self, trailers: &[(&str, &str)]) {
        self.with(|ex| {
            for (n, v) in trailers {
                if encode::validate_header_name(n) && encode::validate_header_value(v.as_bytes()) {
                    ex.res.trailers.push((n.to_string(), v.as_bytes().to_vec()));
                }
            }
        });
    }

    /// Calls `callback` once if the connection closes (the client went away, a timeout, a
    /// protocol error) before this response finished (Node's `res.on('close')` with
    /// `!res.writableFinished`): the moment to abort upstream work done for it. Several
    /// callbacks run in the order they were added.
    pub fn on_abort(&self, callback: impl FnOnce(&mut Loop) + 'static) {
        self.with(|ex| ex.res.on_abort.push(Box::new(callback)));
    }

    /// Calls `callback` when a `write` that returned false has drained.
    pub fn on_drain(&self, callback: impl FnMut(&mut Loop) + 'static) {
        self.with(|ex| ex.res.on_drain = Some(Box::new(callback)));
    }

    /// Writes a piece of the body, sending the head first (chunked on HTTP/1.1, close-delimited
    /// on HTTP/1.0, unless a Content-Length was set). Returns false when the connection's output
    /// is backed up (wait for [`Response::on_drain`]) or gone.
    pub fn write(&self, chunk: impl AsRef<[u8]>) -> bool {
        let chunk = chunk.as_ref();
        let ok = {
            let mut c = self.conn.borrow_mut();
            let c = &mut *c;
            c.refill_out();
            let date_line = c.shared.date_line();
            let ka_end = &c.shared.keep_alive_end;
            let max_drain = c.shared.config.max_drain_bytes;
            let force_close = c.close_after;
            let Some(ex) = c.ex.as_mut().filter(|e| e.seq == self.seq) else {
                return false;
            };
            if ex.res.finished {
                return false;
            }
            // The body is unread and will not be discarded (or may never come): this
            // response is the connection's last.
            let force_close = force_close || ex.body.unread_ends_connection(max_drain);
            if !ex.res.headers_sent {
                write_head(&mut c.out, ex, None, &date_line, ka_end, force_close);
            }
            write_body_piece(&mut c.out, ex, chunk);
            let ok = !c.write_blocked && c.out.len() < c.shared.config.max_pipeline_buffer;
            if !ok {
                c.need_drain = true;
            }
            ok
        };
        conn::schedule(&self.conn);
        ok
    }

    /// Finishes the response with `body` as the last (or only) piece. Without an earlier
    /// `write`, the body goes out with a Content-Length.
    pub fn end(&self, body: impl AsRef<[u8]>) {
        let body = body.as_ref();
        {
            let mut c = self.conn.borrow_mut();
            let c = &mut *c;
            c.refill_out();
            let date_line = c.shared.date_line();
            let ka_end = &c.shared.keep_alive_end;
            let max_drain = c.shared.config.max_drain_bytes;
            let force_close = c.close_after;
            let Some(ex) = c.ex.as_mut().filter(|e| e.seq == self.seq) else {
                return;
            };
            if ex.res.finished {
                return;
            }
            // The body is unread and will not be discarded (or may never come): this
            // response is the connection's last.
            let force_close = force_close || ex.body.unread_ends_connection(max_drain);
            if !ex.res.headers_sent {
                write_head(
                    &mut c.out,
                    ex,
                    Some(body.len()),
                    &date_line,
                    ka_end,
                    force_close,
                );
            }
            write_body_piece(&mut c.out, ex, body);
            if ex.res.chunked && !ex.is_head {
                let trailers: Vec<(&str, &[u8])> = ex
                    .res
                    .trailers
                    .iter()
                    .map(|(n, v)| (n.as_str(), v.as_slice()))
                    .collect();
                encode::write_last_chunk(&mut c.out, &trailers);
            }
            ex.res.finished = true;
        }
        conn::response_finished(&self.conn);
    }

    /// Destroys the connection (Node's `res.destroy()`), for a response that cannot be
    /// completed once its head went out (the source of its body failed): the client sees the
    /// body cut short instead of waiting for bytes that never come. A no-op once the exchange
    /// is over or the connection gone.
    pub fn destroy(&self) {
        if self.with(|_| ()).is_none() {
            return;
        }
        let conn = self.conn.clone();
        self.handle.next_tick(move |lp| {
            let id = conn.borrow().id;
            let _ = lp.tcp_destroy(id);
        });
    }

    /// The loop handle this response schedules its flushes on.
    pub fn loop_handle(&self) -> &LoopHandle {
        &self.handle
    }
}

/// `'static` bytes that passed a header check on this thread, as (address, length): `'static`
/// data never changes, so a literal such as `"content-type"` is validated once per slot, not
/// on every response. A few slots, replaced in turn.
struct StaticMemo {
    slots: [(usize, usize); 8],
    next: usize,
}

thread_local! {
    static VALIDATED: std::cell::RefCell<StaticMemo> = const {
        std::cell::RefCell::new(StaticMemo { slots: [(0, 0); 8], next: 0 })
    };
}

/// `check(bytes)`, remembered for `'static` bytes that pass (see [`StaticMemo`]).
fn valid_static(bytes: &'static [u8], check: impl FnOnce(&[u8]) -> bool) -> bool {
    let key = (bytes.as_ptr() as usize, bytes.len());
    VALIDATED.with(|memo| {
        let mut memo = memo.borrow_mut();
        if memo.slots.contains(&key) {
            return true;
        }
        if !check(bytes) {
            return false;
        }
        let next = memo.next;
        memo.slots[next] = key;
        memo.next = (next + 1) % memo.slots.len();
        true
    })
}

/// Serializes the status line and header block. `known_len` is the whole body's length when
/// `end` is called before any `write`. `force_close`: the server is closing gracefully, so
/// this is the connection's last response.
fn write_head(
    out: &mut bytes::BytesMut,
    ex: &mut Exchange,
    known_len: Option<usize>,
    date_line: &[u8],
    keep_alive_end: &[u8],
    force_close: bool,
) {
    if force_close {
        ex.keep_alive = false;
    }
    let res = &mut ex.res;
    res.headers_sent = true;
    let status = res.status;
    if status == 200 {
        out.extend_from_slice(b"HTTP/1.1 200 OK\r\n");
    } else {
        encode::write_status_line(out, Version::Http11, status, reason_phrase(status));
    }
    let mut has_date = false;
    let mut has_len = false;
    let mut user_chunked = false;
    for (name, value) in &res.headers {
        // The names handled below are 4, 10, 14 or 17 bytes long: one compare passes others.
        if !matches!(name.len(), 4 | 10 | 14 | 17) {
            encode::write_header(out, name, value);
            continue;
        }
        if name.eq_ignore_ascii_case("connection") {
            if value
                .split(|&b| b == b',')
                .any(|t| t.trim_ascii().eq_ignore_ascii_case(b"close"))
            {
                ex.keep_alive = false;
            }
            continue; // written below, consistent with what we do
        }
        if name.eq_ignore_ascii_case("keep-alive") {
            continue;
        }
        if name.eq_ignore_ascii_case("date") {
            has_date = true;
        } else if name.eq_ignore_ascii_case("content-length") {
            has_len = true;
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            user_chunked = value.windows(7).any(|w| w.eq_ignore_ascii_case(b"chunked"));
        }
        encode::write_header(out, name, value);
    }
    if !has_date {
        out.extend_from_slice(date_line);
    }
    let no_body = no_body_status(status);
    if !no_body && !has_len && !user_chunked {
        match known_len {
            Some(n) => encode::write_content_length(out, n as u64),
            None if ex.version == Version::Http11 => {
                out.extend_from_slice(b"Transfer-Encoding: chunked\r\n");
                res.chunked = true;
            }
            None => {
                res.close_delimited = true;
                ex.keep_alive = false;
            }
        }
    } else if user_chunked && !no_body {
        res.chunked = true;
    }
    // The connection field and the CRLF that ends the head, in one copy.
    if ex.keep_alive {
        out.extend_from_slice(keep_alive_end);
    } else {
        out.extend_from_slice(b"Connection: close\r\n\r\n");
    }
}

fn write_body_piece(out: &mut bytes::BytesMut, ex: &Exchange, piece: &[u8]) {
    if piece.is_empty() || ex.is_head || no_body_status(ex.res.status) {
        return;
    }
    if ex.res.chunked {
        encode::write_chunk(out, piece);
    } else {
        out.extend_from_slice(piece);
    }
}

//! The response (Node's `ServerResponse`): status and headers, then a body written at once
//! (`end`, Content-Length) or in pieces (`write`, chunked).

use std::borrow::Cow;
use std::cell::Cell;

use oneloop_runtime::{Loop, LoopHandle};

use super::conn::{self, ConnRef, Exchange};
use super::encode;
use super::parse::Version;
use super::server::Shared;
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

/// The largest header list a pooled exchange keeps (entries).
const MAX_POOLED_HEADERS: usize = 32;

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

    /// Ready for a new exchange, in place: status 200, nothing set or sent. The header list
    /// keeps its capacity.
    #[inline]
    pub(crate) fn reset(&mut self) {
        self.status = 200;
        self.headers_sent = false;
        self.chunked = false;
        self.close_delimited = false;
        self.finished = false;
        // The lists are usually empty already (the previous exchange recycled them):
        // `clear` on an empty list of values with drop glue still calls the slice drop.
        if !self.headers.is_empty() {
            self.headers.clear();
        }
        if self.on_drain.is_some() {
            self.on_drain = None;
        }
        if !self.on_abort.is_empty() {
            self.on_abort.clear();
        }
        if !self.trailers.is_empty() {
            self.trailers.clear();
        }
    }

    /// Empties the header list for reuse by the next exchange in the same pooled box; a list
    /// grown past [`MAX_POOLED_HEADERS`] entries is freed instead (as the header pools do).
    #[inline]
    pub(crate) fn recycle_headers(&mut self) {
        if self.headers.capacity() > MAX_POOLED_HEADERS {
            self.headers = Vec::new();
        } else {
            self.headers.clear();
        }
        if self.trailers.capacity() > 0 {
            self.trailers = Vec::new();
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

#[inline]
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
        // One borrow of the connection for the check (the memo is the server's) and the store.
        let mut c = self.conn.borrow_mut();
        let c = &mut *c;
        let memo = &c.shared.static_memo;
        let (name_ok, value_ok) = match (&name, &value) {
            (Cow::Borrowed(name), Cow::Borrowed(value)) => memo.valid_field(name, value),
            _ => {
                let name_ok = match &name {
                    Cow::Borrowed(name) => memo.valid(name.as_bytes(), |n| {
                        std::str::from_utf8(n).is_ok_and(encode::validate_header_name)
                    }),
                    Cow::Owned(name) => encode::validate_header_name(name),
                };
                let value_ok = name_ok
                    && match &value {
                        Cow::Borrowed(value) => memo.valid(value, encode::validate_header_value),
                        Cow::Owned(value) => encode::validate_header_value(value),
                    };
                (name_ok, value_ok)
            }
        };
        if !name_ok {
            return Err(HeaderError::InvalidName);
        }
        if !value_ok {
            return Err(HeaderError::InvalidValue);
        }
        let Some(ex) = c.ex.as_deref_mut().filter(|e| e.seq == self.seq) else {
            return Ok(());
        };
        if ex.res.headers_sent {
            return Err(HeaderError::HeadersSent);
        }
        match ex.res.find(&name).filter(|_| replace) {
            Some(i) => ex.res.headers[i] = (name, value),
            None => ex.res.headers.push((name, value)),
        }
        Ok(())
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
            let shared = &*c.shared;
            let max_drain = shared.config.max_drain_bytes;
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
                write_head(&mut c.out, ex, None, shared, force_close);
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
        let needs_tick = {
            let mut c = self.conn.borrow_mut();
            let c = &mut *c;
            c.refill_out();
            let shared = &*c.shared;
            let max_drain = shared.config.max_drain_bytes;
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
                write_head(&mut c.out, ex, Some(body.len()), shared, force_close);
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
            // Decided under this borrow: a handler finishing on its own stack (the usual
            // case) needs no tick, and no second borrow to find that out.
            c.needs_tick()
        };
        if needs_tick {
            conn::response_finished(&self.conn);
        }
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

/// `'static` bytes that passed a header check, as (address, length): `'static` data never
/// changes, so a literal such as `"content-type"` is validated once per slot, not on every
/// response. A few slots, replaced in turn; one per server (in `Shared`: no thread-local
/// look-up per header), in `Cell`s (no borrow flag).
pub(crate) struct StaticMemo {
    slots: [Cell<(usize, usize)>; 8],
    next: Cell<usize>,
}

impl Default for StaticMemo {
    fn default() -> Self {
        StaticMemo {
            slots: std::array::from_fn(|_| Cell::new((0, 0))),
            next: Cell::new(0),
        }
    }
}

impl StaticMemo {
    /// `check(bytes)`, remembered when it passes.
    #[inline]
    fn valid(&self, bytes: &'static [u8], check: impl FnOnce(&[u8]) -> bool) -> bool {
        let key = (bytes.as_ptr() as usize, bytes.len());
        if self.slots.iter().any(|slot| slot.get() == key) {
            return true;
        }
        if !check(bytes) {
            return false;
        }
        let next = self.next.get() % self.slots.len();
        if let Some(slot) = self.slots.get(next) {
            slot.set(key);
        }
        self.next.set((next + 1) % self.slots.len());
        true
    }

    /// Whether a `'static` name and value pass their checks, each remembered as by
    /// [`valid`](Self::valid).
    #[inline]
    fn valid_field(&self, name: &'static str, value: &'static [u8]) -> (bool, bool) {
        let name_ok = self.valid(name.as_bytes(), |n| {
            std::str::from_utf8(n).is_ok_and(encode::validate_header_name)
        });
        (name_ok, self.valid(value, encode::validate_header_value))
    }
}

/// Most fields a head can have to be cached (see [`HeadCache`]).
const CACHED_FIELDS: usize = 4;

/// What a head made of `'static` fields only depends on: the same key, the same bytes.
#[derive(Clone, Copy, PartialEq, Eq)]
struct HeadKey {
    status: u16,
    keep_alive: bool,
    body_len: usize,
    date_secs: Option<u64>,
    /// (address, length) of each name and value, in order; unused slots are zero.
    fields: [(usize, usize, usize, usize); CACHED_FIELDS],
    count: usize,
}

/// The last response head written by `end` whose fields were all `'static` (literals) and
/// none of those `write_head` interprets (Connection, Keep-Alive, Date, Content-Length,
/// Transfer-Encoding): such a head is a pure function of status, fields, body length,
/// keep-alive and the Date second, so the next one with the same key is copied whole instead
/// of assembled piece by piece. `'static` bytes never change, so comparing their addresses is
/// exact. One entry per server; the buffer keeps its capacity (no allocation per request).
#[derive(Default)]
pub(crate) struct HeadCache {
    key: Option<HeadKey>,
    bytes: Vec<u8>,
}

impl HeadKey {
    /// The key of the head `write_head` is about to write, if it may be cached.
    fn of(
        res: &ResponseState,
        body_len: usize,
        keep_alive: bool,
        date_secs: Option<u64>,
    ) -> Option<HeadKey> {
        if res.headers.len() > CACHED_FIELDS {
            return None;
        }
        let mut fields = [(0, 0, 0, 0); CACHED_FIELDS];
        for (slot, (name, value)) in fields.iter_mut().zip(&res.headers) {
            let (Cow::Borrowed(name), Cow::Borrowed(value)) = (name, value) else {
                return None;
            };
            // The names `write_head` interprets are 4, 10, 14 or 17 bytes long.
            if matches!(name.len(), 4 | 10 | 14 | 17) {
                return None;
            }
            *slot = static_field(name, value);
        }
        Some(HeadKey {
            status: res.status,
            keep_alive,
            body_len,
            date_secs,
            fields,
            count: res.headers.len(),
        })
    }
}

/// (address, length) of a `'static` name and value.
fn static_field(name: &'static str, value: &'static [u8]) -> (usize, usize, usize, usize) {
    let name = name.as_bytes();
    (
        name.as_ptr() as usize,
        name.len(),
        value.as_ptr() as usize,
        value.len(),
    )
}

impl HeadCache {
    /// Whether the cached head is the one `write_head` would write now: compared field by
    /// field without building a key (this runs on every response).
    fn hit(
        &self,
        res: &ResponseState,
        body_len: usize,
        keep_alive: bool,
        date_secs: Option<u64>,
    ) -> bool {
        let Some(key) = &self.key else {
            return false;
        };
        key.status == res.status
            && key.body_len == body_len
            && key.keep_alive == keep_alive
            && key.count == res.headers.len()
            && key.date_secs == date_secs
            && res
                .headers
                .iter()
                .zip(&key.fields)
                .all(|(field, cached)| match field {
                    (Cow::Borrowed(name), Cow::Borrowed(value)) => {
                        static_field(name, value) == *cached
                    }
                    _ => false,
                })
    }
}

/// Serializes the status line and header block. `known_len` is the whole body's length when
/// `end` is called before any `write`. `force_close`: the server is closing gracefully, so
/// this is the connection's last response.
fn write_head(
    out: &mut bytes::BytesMut,
    ex: &mut Exchange,
    known_len: Option<usize>,
    shared: &Shared,
    force_close: bool,
) {
    if force_close {
        ex.keep_alive = false;
    }
    let Some(body_len) = known_len else {
        write_head_fields(out, ex, known_len, shared);
        return;
    };
    let Ok(mut cache) = shared.head_cache.try_borrow_mut() else {
        write_head_fields(out, ex, known_len, shared);
        return;
    };
    let date_secs = shared.date_secs();
    if cache.hit(&ex.res, body_len, ex.keep_alive, date_secs) {
        // Nothing in such a head changes the exchange but `headers_sent`.
        ex.res.headers_sent = true;
        out.extend_from_slice(&cache.bytes);
        return;
    }
    let key = HeadKey::of(&ex.res, body_len, ex.keep_alive, date_secs);
    let start = out.len();
    write_head_fields(out, ex, known_len, shared);
    // Kept only if the Date written is the second in the key (without the date timer, the
    // clock may have moved on while the head was written).
    if let Some(key) = key.filter(|_| shared.date_secs() == date_secs) {
        cache.bytes.clear();
        cache
            .bytes
            .extend_from_slice(out.get(start..).unwrap_or(&[]));
        cache.key = Some(key);
    }
}

/// `write_head` without the cache: the status line and each field, one by one.
fn write_head_fields(
    out: &mut bytes::BytesMut,
    ex: &mut Exchange,
    known_len: Option<usize>,
    shared: &Shared,
) {
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
        out.extend_from_slice(&shared.date_line());
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
        out.extend_from_slice(&shared.keep_alive_end);
    } else {
        out.extend_from_slice(b"Connection: close\r\n\r\n");
    }
}

#[inline]
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

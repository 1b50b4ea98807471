//! The request as the handler sees it: the parsed head plus the body as a stream.

use std::net::SocketAddr;

use bytes::{Bytes, BytesMut};
use oneloop_runtime::Loop;

use super::conn::{self, ConnRef};
use super::parse::{Method, RequestHead, Version};

/// Why [`Request::collect`] gave no body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyError {
    /// The body was larger than the limit given to `collect` (answer 413).
    TooLarge,
    /// The connection closed or failed before the body ended.
    Aborted,
}

impl std::fmt::Display for BodyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            BodyError::TooLarge => "request body too large",
            BodyError::Aborted => "request aborted before the body ended",
        })
    }
}

impl std::error::Error for BodyError {}

/// An HTTP request (Node's `IncomingMessage`).
///
/// The head is parsed and owned; the body arrives later through [`Request::on_data`] /
/// [`Request::on_end`] or [`Request::collect`]. Body bytes wait in the connection's buffer (up to
/// `max_pipeline_buffer`) until one of those is called, so a handler may attach them later, from
/// a timer or a thread-pool completion, without losing data.
pub struct Request {
    head: RequestHead,
    conn: ConnRef,
    seq: u64,
    remote: Option<SocketAddr>,
}

impl Request {
    pub(crate) fn new(
        head: RequestHead,
        conn: ConnRef,
        seq: u64,
        remote: Option<SocketAddr>,
    ) -> Request {
        Request {
            head,
            conn,
            seq,
            remote,
        }
    }

    /// The method, e.g. `"GET"`.
    pub fn method(&self) -> &'static str {
        self.head.method().as_str()
    }

    /// The method as an enum.
    pub fn method_kind(&self) -> Method {
        self.head.method()
    }

    /// The request target as sent (origin-form `/a?b`, or absolute-form).
    pub fn target(&self) -> &str {
        self.head.target()
    }

    /// The path without the query (`/p` for `http://host/p?q`).
    pub fn path(&self) -> &str {
        self.head.path()
    }

    /// The query string without `?`, if any.
    pub fn query(&self) -> Option<&str> {
        self.head.query()
    }

    /// HTTP/1.0 or HTTP/1.1.
    pub fn version(&self) -> Version {
        self.head.version()
    }

    /// The first field named `name` (case-insensitive), if it is valid UTF-8.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.head
            .header(name)
            .and_then(|v| std::str::from_utf8(v).ok())
    }

    /// The first field named `name` (case-insensitive) as bytes.
    pub fn header_bytes(&self, name: &str) -> Option<&[u8]> {
        self.head.header(name)
    }

    /// All fields in the order received, names as sent.
    pub fn headers(&self) -> impl Iterator<Item = (&str, &[u8])> + '_ {
        self.head.headers()
    }

    /// The peer's address.
    pub fn remote_addr(&self) -> Option<SocketAddr> {
        self.remote
    }

    /// The parsed head.
    pub fn head(&self) -> &RequestHead {
        &self.head
    }

    /// Calls `callback` with each chunk of the body as it arrives (decoded: no chunk framing).
    pub fn on_data(&self, callback: impl FnMut(&mut Loop, &[u8]) + 'static) {
        let mut c = self.conn.borrow_mut();
        if let Some(ex) = c.exchange(self.seq) {
            ex.body.on_data = Some(Box::new(callback));
            ex.body.consumed = true;
        }
        drop(c);
        conn::schedule(&self.conn);
    }

    /// Calls `callback` once the whole body has arrived (at once for a request without body).
    pub fn on_end(&self, callback: impl FnOnce(&mut Loop) + 'static) {
        let mut c = self.conn.borrow_mut();
        if let Some(ex) = c.exchange(self.seq) {
            if ex.body.done {
                drop(c);
                let handle = self.conn.borrow().handle.clone();
                handle.next_tick(callback);
                return;
            }
            ex.body.on_end = Some(Box::new(callback));
            ex.body.consumed = true;
        }
        drop(c);
        conn::schedule(&self.conn);
    }

    /// Collects the whole body, up to `limit` bytes, and calls `callback` with it. Past the
    /// limit the callback gets `Err(BodyError::TooLarge)` at once and the rest of the body is
    /// discarded.
    pub fn collect(
        &self,
        limit: usize,
        callback: impl FnOnce(&mut Loop, Result<Bytes, BodyError>) + 'static,
    ) {
        let state = std::rc::Rc::new(std::cell::RefCell::new(Some((
            BytesMut::new(),
            Some(Box::new(callback) as Box<dyn FnOnce(&mut Loop, Result<Bytes, BodyError>)>),
        ))));
        let on_data_state = std::rc::Rc::clone(&state);
        self.on_data(move |lp, chunk| {
            let mut guard = on_data_state.borrow_mut();
            let Some((buf, cb)) = guard.as_mut() else {
                return;
            };
            if buf.len() + chunk.len() > limit {
                let cb = cb.take();
                *guard = None;
                drop(guard);
                if let Some(cb) = cb {
                    cb(lp, Err(BodyError::TooLarge));
                }
                return;
            }
            buf.extend_from_slice(chunk);
        });
        self.on_end(move |lp| {
            let taken = state.borrow_mut().take();
            if let Some((buf, Some(cb))) = taken {
                cb(lp, Ok(buf.freeze()));
            }
        });
    }
}

impl Drop for Request {
    /// Hands the head's field list back to the server's pool, so the next head reuses the
    /// allocation (no allocation per keep-alive request). Skipped if the connection is mutably
    /// borrowed at that moment (a request dropped from inside the connection's own code).
    fn drop(&mut self) {
        if let Ok(c) = self.conn.try_borrow() {
            c.shared.request_fields.give(self.head.take_fields());
        }
    }
}

impl std::fmt::Debug for Request {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Request")
            .field("method", &self.method())
            .field("target", &self.target())
            .finish()
    }
}

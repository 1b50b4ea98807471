//! The request as the handler sees it: the parsed head plus the body as a stream.

use std::cell::RefCell;
use std::net::SocketAddr;
use std::rc::Rc;

use bytes::{Bytes, BytesMut};
use oneloop_runtime::Loop;

use super::budget::Reservation;
use super::conn::{self, ConnRef};
use super::parse::{BodyKind, Method, RequestHead, Version};

/// Why [`Request::collect`] gave no body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyError {
    /// The body was larger than the limit given to `collect` (answer 413).
    TooLarge,
    /// The connection closed or failed before the body ended.
    Aborted,
    /// The server's budget for buffered request bodies
    /// ([`ServerConfig::max_buffered_body_bytes`](super::ServerConfig::max_buffered_body_bytes))
    /// has no room for this body (answer 503).
    Overloaded,
}

impl BodyError {
    /// The status to answer with: 413, 400 (aborted: nobody will read it) or 503.
    pub fn status(self) -> u16 {
        match self {
            BodyError::TooLarge => 413,
            BodyError::Aborted => 400,
            BodyError::Overloaded => 503,
        }
    }
}

impl std::fmt::Display for BodyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            BodyError::TooLarge => "request body too large",
            BodyError::Aborted => "request aborted before the body ended",
            BodyError::Overloaded => "server busy: too many request bodies in memory",
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
}

impl Request {
    #[inline]
    pub(crate) fn new(head: RequestHead, conn: ConnRef, seq: u64) -> Request {
        Request { head, conn, seq }
    }

    /// Sets the exchange this request belongs to (known once the exchange is set up).
    #[inline]
    pub(crate) fn set_seq(&mut self, seq: u64) {
        self.seq = seq;
    }

    /// The method, e.g. `"GET"`.
    #[inline]
    pub fn method(&self) -> &'static str {
        self.head.method().as_str()
    }

    /// The method as an enum.
    #[inline]
    pub fn method_kind(&self) -> Method {
        self.head.method()
    }

    /// The request target as sent (origin-form `/a?b`, or absolute-form).
    #[inline]
    pub fn target(&self) -> &str {
        self.head.target()
    }

    /// [`Request::target`] as bytes, without the UTF-8 check (the access log copies it).
    #[inline]
    pub(crate) fn target_bytes(&self) -> &[u8] {
        self.head.target_bytes()
    }

    /// The path without the query (`/p` for `http://host/p?q`).
    #[inline]
    pub fn path(&self) -> &str {
        self.head.path()
    }

    /// The query string without `?`, if any.
    #[inline]
    pub fn query(&self) -> Option<&str> {
        self.head.query()
    }

    /// HTTP/1.0 or HTTP/1.1.
    #[inline]
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

    /// The connection's socket (Node's `req.socket`): e.g. `lp.tls_info(req.socket())` tells
    /// an HTTPS request's TLS version, ALPN and SNI name; `None` from `tls_info` means plain.
    pub fn socket(&self) -> oneloop_runtime::TcpId {
        self.conn.borrow().id
    }

    /// The peer's address.
    pub fn remote_addr(&self) -> Option<SocketAddr> {
        self.conn.borrow().remote()
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
        }
        drop(c);
        conn::want_body(&self.conn, self.seq);
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
        }
        drop(c);
        conn::want_body(&self.conn, self.seq);
        conn::schedule(&self.conn);
    }

    /// Collects the whole body, up to `limit` bytes, and calls `callback` with it, always from
    /// a later loop callback.
    ///
    /// # Errors
    /// - [`BodyError::TooLarge`] when a `Content-Length` over `limit` is declared: at once,
    ///   before any body byte is read (and before `100 Continue`, so a client that expects it
    ///   gets the handler's 413 instead). A chunked body gets it as soon as it passes `limit`.
    /// - [`BodyError::Overloaded`] when the server's budget for buffered bodies
    ///   ([`ServerConfig::max_buffered_body_bytes`](super::ServerConfig::max_buffered_body_bytes))
    ///   cannot hold the declared length, or runs out while the body arrives.
    /// - [`BodyError::Aborted`] is never given here: a body cut short leaves the callback
    ///   uncalled (the connection is gone).
    ///
    /// After an error nothing more is buffered: the rest of the body is unread, discarded after
    /// the response up to `max_drain_bytes` (else the connection closes after the response).
    ///
    /// # Guarantees
    /// Bytes held here count against the server's budget from their arrival until `callback`
    /// gets them (or the exchange ends without it).
    pub fn collect(
        &self,
        limit: usize,
        callback: impl FnOnce(&mut Loop, Result<Bytes, BodyError>) + 'static,
    ) {
        let (budget, handle) = {
            let c = self.conn.borrow();
            (Rc::clone(&c.shared.body_budget), c.handle.clone())
        };
        let refused = match self.head.body_kind() {
            BodyKind::Length(n) if n > limit as u64 => Some(BodyError::TooLarge),
            BodyKind::Length(n) if n > budget.available() => Some(BodyError::Overloaded),
            _ => None,
        };
        if let Some(err) = refused {
            // The body is never asked for: no `100 Continue`, and the connection layer
            // discards or refuses it after the response.
            handle.next_tick(move |lp| callback(lp, Err(err)));
            return;
        }
        let state = Rc::new(RefCell::new(Some(Collecting {
            buf: BytesMut::new(),
            held: Reservation::new(budget),
            callback: Box::new(callback),
        })));
        let on_data_state = Rc::clone(&state);
        let (conn, seq) = (Rc::downgrade(&self.conn), self.seq);
        self.on_data(move |lp, chunk| {
            let mut guard = on_data_state.borrow_mut();
            let Some(c) = guard.as_mut() else {
                return;
            };
            let err = if c.buf.len() + chunk.len() > limit {
                BodyError::TooLarge
            } else if !c.held.grow(chunk.len() as u64) {
                BodyError::Overloaded
            } else {
                c.buf.extend_from_slice(chunk);
                return;
            };
            let taken = guard.take();
            drop(guard);
            if let Some(conn) = conn.upgrade() {
                conn::abandon_body(&conn, seq);
            }
            if let Some(c) = taken {
                drop(c.held); // the buffer goes too
                (c.callback)(lp, Err(err));
            }
        });
        self.on_end(move |lp| {
            let taken = state.borrow_mut().take();
            if let Some(c) = taken {
                let Collecting {
                    buf,
                    held,
                    callback,
                } = c;
                drop(held); // handed over: no longer the server's to account for
                callback(lp, Ok(buf.freeze()));
            }
        });
    }
}

/// The state of one [`Request::collect`].
struct Collecting {
    buf: BytesMut,
    /// `buf.len()` bytes of the server's body budget.
    held: Reservation,
    callback: CollectCb,
}

type CollectCb = Box<dyn FnOnce(&mut Loop, Result<Bytes, BodyError>)>;

impl Drop for Request {
    /// Hands the head's field list back to the connection (or the server's pool), so the next
    /// head reuses the allocation (no allocation per keep-alive request). Skipped if the
    /// connection is borrowed at that moment (a request dropped from inside the connection's
    /// own code).
    fn drop(&mut self) {
        if let Ok(mut c) = self.conn.try_borrow_mut() {
            c.keep_fields(self.head.take_fields());
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

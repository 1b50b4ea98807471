//! One WebSocket connection after the handshake: the [`WebSocket`] handle, reading (frames ->
//! messages, auto-pong, close handshake, protocol failures), writing with backpressure, and the
//! end of the connection.
//!
//! # The handle
//! [`WebSocket`] is an `Rc` around the connection state (cheap to clone, compared by identity)
//! and its methods take `&mut Loop` to write. An id-like `Copy` handle would need a per-loop
//! registry that the loop does not have (it has no user-data slot, and a thread-local one is
//! global state); the `Rc` keeps the state next to the callbacks that own it, as `http`'s
//! `Response` does. Callbacks receive `&WebSocket`, so they need not capture a clone of their
//! own socket; every callback is dropped when the connection closes, which breaks any cycle a
//! captured clone would make.
//!
//! # States
//! `Open` -> (`close()` sent a Close frame) `CloseSent` -> `Closing` (the close handshake is
//! done or failed: the TCP side is ending) -> `Closed` (TCP closed, `on_close` ran). A peer's
//! Close in `Open` is echoed and goes straight to `Closing`.

use std::cell::RefCell;
use std::fmt;
use std::net::SocketAddr;
use std::rc::Rc;

use bytes::{BufMut, Bytes, BytesMut};
use oneloop_runtime::{Loop, TcpId, TimerId};

use super::deflate::Outgoing;
use super::frame::{self, OpCode, CLOSE_NORMAL};
use super::message::{Event, MessageAssembler};
use super::pubsub::Hub;

/// How long a closing connection may take to finish (the peer's Close frame, then its FIN)
/// before it is destroyed.
pub const CLOSE_TIMEOUT_MS: u64 = 5_000;

/// Close code reported when the connection ended without a Close frame (never sent, §7.1.5).
pub const CLOSE_ABNORMAL: u16 = 1006;
/// Close code reported when the peer's Close frame had no payload (never sent, §7.1.5).
pub const CLOSE_NO_STATUS: u16 = 1005;

/// The queued-bytes bound above which reading pauses when `max_backpressure` is 0 (sends
/// unlimited): reading stays bounded whatever the options.
pub const DEFAULT_MAX_BACKPRESSURE: usize = 64 * 1024;

/// Binary payloads at least this large are written as a separate buffer after the header
/// (no copy); smaller ones are copied next to the header so one buffer goes to the kernel.
const ZERO_COPY_MIN: usize = 16 * 1024;

/// A message received or to send.
#[derive(Clone, PartialEq, Eq)]
pub enum Message {
    /// A text message (valid UTF-8 by construction; received text was validated).
    Text(String),
    /// A binary message.
    Binary(Bytes),
}

impl Message {
    /// The payload bytes.
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            Message::Text(s) => s.as_bytes(),
            Message::Binary(b) => b,
        }
    }

    /// The text, for a text message.
    pub fn as_text(&self) -> Option<&str> {
        match self {
            Message::Text(s) => Some(s),
            Message::Binary(_) => None,
        }
    }

    /// Payload length in bytes.
    pub fn len(&self) -> usize {
        self.as_bytes().len()
    }

    /// Whether the payload is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub(crate) fn opcode(&self) -> OpCode {
        match self {
            Message::Text(_) => OpCode::Text,
            Message::Binary(_) => OpCode::Binary,
        }
    }

    /// The whole server-to-client frame (header and payload) in one buffer: encode once, then
    /// write clones of it to any number of sockets.
    pub fn to_frame(&self) -> Bytes {
        let mut out = BytesMut::new();
        frame::encode_frame(&mut out, true, self.opcode(), self.as_bytes());
        out.freeze()
    }
}

impl fmt::Debug for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Message::Text(s) if s.len() <= 64 => write!(f, "Text({s:?})"),
            Message::Text(s) => write!(f, "Text({} bytes)", s.len()),
            Message::Binary(b) => write!(f, "Binary({} bytes)", b.len()),
        }
    }
}

impl From<&str> for Message {
    fn from(s: &str) -> Self {
        Message::Text(s.to_owned())
    }
}

impl From<String> for Message {
    fn from(s: String) -> Self {
        Message::Text(s)
    }
}

impl From<Bytes> for Message {
    fn from(b: Bytes) -> Self {
        Message::Binary(b)
    }
}

impl From<Vec<u8>> for Message {
    fn from(v: Vec<u8>) -> Self {
        Message::Binary(Bytes::from(v))
    }
}

impl From<&[u8]> for Message {
    fn from(v: &[u8]) -> Self {
        Message::Binary(Bytes::copy_from_slice(v))
    }
}

/// What [`WebSocket::send`] did with a message (uWS's `SUCCESS`/`BACKPRESSURE`/`DROPPED`).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum SendStatus {
    /// The kernel took the whole frame.
    Sent,
    /// The frame is queued behind earlier data; `on_drain` runs when the queue empties.
    Backpressured,
    /// Not sent: more than `max_backpressure` bytes were already queued, or the connection is
    /// closing or closed.
    Dropped,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum State {
    Open,
    CloseSent,
    Closing,
    Closed,
}

type MessageCallback = Box<dyn FnMut(&mut Loop, &WebSocket, Message)>;
type CloseCallback = Box<dyn FnOnce(&mut Loop, &WebSocket, u16, &str)>;
type DrainCallback = Box<dyn FnMut(&mut Loop, &WebSocket)>;

pub(crate) struct Conn {
    pub(crate) id: TcpId,
    pub(crate) state: State,
    asm: MessageAssembler,
    inbuf: BytesMut,
    pub(crate) hub: Hub,
    pub(crate) max_backpressure: usize,
    /// permessage-deflate on the sending side (`Plain` when not negotiated).
    pub(crate) outgoing: Outgoing,
    /// Messages shorter than this go uncompressed.
    pub(crate) compress_threshold: usize,
    /// Reading pauses while more than this many bytes are queued for the peer (every frame
    /// counts: replies, pongs, publishes), and resumes when the queue empties.
    read_pause_at: usize,
    read_paused: bool,
    pub(crate) topics: Vec<Rc<str>>,
    /// Corked by the current publish batch of its hub (see [`Hub::begin_batch`]).
    pub(crate) hub_corked: bool,
    /// Loop time of the last bytes received (idle timeout and automatic pings).
    pub(crate) last_recv: u64,
    pub(crate) ping_outstanding: bool,
    /// The code and reason `on_close` reports (see [`WebSocket::on_close`]).
    close_info: Option<(u16, String)>,
    close_timer: Option<TimerId>,
    remote: Option<SocketAddr>,
    on_message: Option<MessageCallback>,
    on_close: Option<CloseCallback>,
    on_drain: Option<DrainCallback>,
}

/// A server-side WebSocket connection. Clones are the same connection.
///
/// ```no_run
/// use oneloop::app::App;
/// use oneloop::ws::{Message, WsOptions};
/// let mut app = App::new();
/// app.ws("/echo", WsOptions::default(), |_lp, ws| {
///     ws.on_message(|lp, ws, msg| {
///         ws.send(lp, msg);
///     });
///     ws.on_close(|_lp, _ws, code, reason| log::info!("closed {code} {reason}"));
/// });
/// # let _ = Message::from("x");
/// ```
#[derive(Clone)]
pub struct WebSocket(pub(crate) Rc<RefCell<Conn>>);

impl PartialEq for WebSocket {
    fn eq(&self, other: &Self) -> bool {
        Rc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for WebSocket {}

impl fmt::Debug for WebSocket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = self.0.borrow();
        f.debug_struct("WebSocket")
            .field("id", &c.id.index())
            .field("state", &c.state)
            .finish()
    }
}

impl WebSocket {
    pub(crate) fn new(
        lp: &Loop,
        id: TcpId,
        max_payload: usize,
        max_backpressure: usize,
        hub: Hub,
        remote: Option<SocketAddr>,
        compression: Option<(Outgoing, bool, usize)>,
    ) -> WebSocket {
        let mut asm = MessageAssembler::new(max_payload, max_payload);
        let (outgoing, compress_threshold) = match compression {
            Some((outgoing, client_no_context_takeover, threshold)) => {
                asm.enable_inflate(client_no_context_takeover);
                (outgoing, threshold)
            }
            None => (Outgoing::Plain, usize::MAX),
        };
        WebSocket(Rc::new(RefCell::new(Conn {
            id,
            state: State::Open,
            asm,
            inbuf: BytesMut::new(),
            hub,
            max_backpressure,
            outgoing,
            compress_threshold,
            read_pause_at: if max_backpressure > 0 {
                max_backpressure
            } else {
                DEFAULT_MAX_BACKPRESSURE
            },
            read_paused: false,
            topics: Vec::new(),
            hub_corked: false,
            last_recv: lp.now(),
            ping_outstanding: false,
            close_info: None,
            close_timer: None,
            remote,
            on_message: None,
            on_close: None,
            on_drain: None,
        })))
    }

    // -- callbacks ------------------------------------------------------------------------------

    /// Calls `callback` for each complete message (fragments reassembled, text validated).
    pub fn on_message(&self, callback: impl FnMut(&mut Loop, &WebSocket, Message) + 'static) {
        self.0.borrow_mut().on_message = Some(Box::new(callback));
    }

    /// Calls `callback(lp, ws, code, reason)` once, after the TCP connection closed. `code` is
    /// the peer's close code if it sent a Close frame (1005 if that frame was empty), else the
    /// code this side sent (`close()` unanswered, or 1002/1007/1009 for a protocol failure),
    /// else 1006 (the connection dropped, or the idle timeout destroyed it).
    pub fn on_close(&self, callback: impl FnOnce(&mut Loop, &WebSocket, u16, &str) + 'static) {
        self.0.borrow_mut().on_close = Some(Box::new(callback));
    }

    /// Calls `callback` each time the write queue empties after a send returned
    /// [`SendStatus::Backpressured`] (uWS's `drain`).
    pub fn on_drain(&self, callback: impl FnMut(&mut Loop, &WebSocket) + 'static) {
        self.0.borrow_mut().on_drain = Some(Box::new(callback));
    }

    // -- writing --------------------------------------------------------------------------------

    /// Sends a message as one frame.
    ///
    /// # Guarantees
    /// `Sent` and `Backpressured` messages are delivered in order (unless the connection fails).
    /// `Dropped` means nothing was written: more than `max_backpressure` bytes were already
    /// queued, or the connection is closing.
    pub fn send(&self, lp: &mut Loop, msg: impl Into<Message>) -> SendStatus {
        let msg = msg.into();
        let (id, max_bp) = {
            let c = self.0.borrow();
            if c.state != State::Open {
                return SendStatus::Dropped;
            }
            (c.id, c.max_backpressure)
        };
        if over_limit(lp, id, max_bp) {
            return SendStatus::Dropped;
        }
        // Compressed after the backpressure check: a dedicated compressor's window must only
        // see what is actually sent.
        let compressed = {
            let mut c = self.0.borrow_mut();
            let threshold = c.compress_threshold;
            c.outgoing.frame(msg.opcode(), msg.as_bytes(), threshold)
        };
        if let Some(f) = compressed {
            return status_of(lp.tcp_write_bytes(id, f));
        }
        let result = match msg {
            Message::Binary(b) if b.len() >= ZERO_COPY_MIN => {
                let mut head = BytesMut::with_capacity(frame::MAX_HEADER_LEN);
                frame::encode_frame_header(&mut head, true, OpCode::Binary, b.len() as u64);
                lp.tcp_write_bytes(id, head.freeze())
                    .and_then(|_| lp.tcp_write_bytes(id, b))
            }
            msg => lp.tcp_write_bytes(id, msg.to_frame()),
        };
        status_of(result)
    }

    /// Sends a ping (payload truncated to 125 bytes). Control frames are never dropped.
    pub fn ping(&self, lp: &mut Loop, payload: &[u8]) {
        let (id, open) = {
            let c = self.0.borrow();
            (c.id, c.state == State::Open)
        };
        if open {
            write_control(lp, id, OpCode::Ping, payload);
        }
    }

    /// Starts the close handshake: sends a Close frame with `code` and `reason` (truncated to
    /// 123 bytes) and waits up to [`CLOSE_TIMEOUT_MS`] for the peer's Close, then ends the
    /// connection. Messages received meanwhile are discarded. A code a server may not send
    /// (below 1000, 1004-1006, 1015-2999, 5000 and up) is replaced by 1000. No-op unless open.
    pub fn close(&self, lp: &mut Loop, code: u16, reason: &str) {
        let code = if is_sendable_close_code(code) {
            code
        } else {
            CLOSE_NORMAL
        };
        let id = {
            let mut c = self.0.borrow_mut();
            if c.state != State::Open {
                return;
            }
            c.state = State::CloseSent;
            c.close_info = Some((code, reason.to_owned()));
            c.id
        };
        let mut out = BytesMut::new();
        frame::encode_close(&mut out, code, reason);
        let _ = lp.tcp_write_bytes(id, out.freeze());
        // The peer's Close must be read even if it never reads ours; nothing read from now on
        // is answered, so reading cannot grow the queue.
        self.resume_reading(lp);
        self.arm_close_timer(lp);
    }

    /// Closes the TCP connection now, without a close handshake (uWS's `close()`, Node ws's
    /// `terminate()`); `on_close` reports 1006.
    pub fn terminate(&self, lp: &mut Loop) {
        let id = self.0.borrow().id;
        let _ = lp.tcp_destroy(id);
    }

    // -- pub/sub --------------------------------------------------------------------------------

    /// Subscribes to `topic` on this socket's [`Hub`]; returns false if already subscribed.
    pub fn subscribe(&self, topic: &str) -> bool {
        let hub = self.0.borrow().hub.clone();
        hub.subscribe(self, topic)
    }

    /// Unsubscribes from `topic`; returns false if not subscribed.
    pub fn unsubscribe(&self, topic: &str) -> bool {
        let hub = self.0.borrow().hub.clone();
        hub.unsubscribe(self, topic)
    }

    /// Whether this socket is subscribed to `topic`.
    pub fn is_subscribed(&self, topic: &str) -> bool {
        self.0.borrow().topics.iter().any(|t| &**t == topic)
    }

    /// The topics this socket is subscribed to.
    pub fn topics(&self) -> Vec<String> {
        self.0
            .borrow()
            .topics
            .iter()
            .map(|t| t.to_string())
            .collect()
    }

    /// Publishes `msg` to every other subscriber of `topic` on this socket's hub (not to this
    /// socket, as uWS's `ws.publish`); returns how many were not dropped. See [`Hub::publish`].
    pub fn publish(&self, lp: &mut Loop, topic: &str, msg: impl Into<Message>) -> usize {
        let (hub, id) = {
            let c = self.0.borrow();
            (c.hub.clone(), c.id)
        };
        hub.publish_except(lp, topic, &msg.into(), Some(id))
    }

    /// The hub this socket subscribes on.
    pub fn hub(&self) -> Hub {
        self.0.borrow().hub.clone()
    }

    // -- state ----------------------------------------------------------------------------------

    /// Bytes queued for the peer and not yet taken by the kernel (uWS's
    /// `getBufferedAmount`).
    pub fn buffered_amount(&self, lp: &Loop) -> usize {
        lp.tcp_queued(self.0.borrow().id).unwrap_or(0)
    }

    /// Whether permessage-deflate was negotiated on this connection.
    pub fn is_compressed(&self) -> bool {
        !matches!(self.0.borrow().outgoing, Outgoing::Plain)
    }

    /// Whether messages can still be sent (no Close frame sent or received yet).
    pub fn is_open(&self) -> bool {
        self.0.borrow().state == State::Open
    }

    /// The underlying socket's id.
    pub fn tcp_id(&self) -> TcpId {
        self.0.borrow().id
    }

    /// The peer's address.
    pub fn remote_addr(&self) -> Option<SocketAddr> {
        self.0.borrow().remote
    }

    // -- internals ------------------------------------------------------------------------------

    fn arm_close_timer(&self, lp: &mut Loop) {
        let id = self.0.borrow().id;
        if self.0.borrow().close_timer.is_some() {
            return;
        }
        let t = lp.set_timeout(CLOSE_TIMEOUT_MS, move |lp| {
            let _ = lp.tcp_destroy(id);
        });
        self.0.borrow_mut().close_timer = Some(t);
    }

    /// Bytes arrived from the peer. Everything the message callbacks send in reply, here and
    /// through the hub, is corked until they have all run: one read that brings many messages
    /// costs one write per socket, not one per message.
    pub(crate) fn on_data(&self, lp: &mut Loop, data: &[u8]) {
        let (id, hub) = {
            let mut c = self.0.borrow_mut();
            if !matches!(c.state, State::Open | State::CloseSent) {
                return;
            }
            c.last_recv = lp.now();
            c.ping_outstanding = false;
            c.inbuf.extend_from_slice(data);
            (c.id, c.hub.clone())
        };
        hub.begin_batch();
        let _ = lp.tcp_cork(id);
        self.process(lp);
        // Stale when a callback destroyed the connection: nothing left to send.
        let _ = lp.tcp_uncork(id);
        hub.end_batch(lp);
        self.pause_if_backed_up(lp);
    }

    /// Backpressure on input: while more than `read_pause_at` bytes wait for the peer, read
    /// nothing more (the kernel buffer fills and TCP pushes back on the peer), so a peer that
    /// sends but never reads (echoes, pings answered with pongs) cannot grow the queue.
    /// Reading resumes when the queue empties (`on_tcp_drain`).
    fn pause_if_backed_up(&self, lp: &mut Loop) {
        let mut c = self.0.borrow_mut();
        if c.read_paused || c.state != State::Open {
            return;
        }
        if lp.tcp_queued(c.id).unwrap_or(0) > c.read_pause_at {
            c.read_paused = true;
            let _ = lp.tcp_pause(c.id);
        }
    }

    fn resume_reading(&self, lp: &mut Loop) {
        let mut c = self.0.borrow_mut();
        if c.read_paused {
            c.read_paused = false;
            let _ = lp.tcp_resume(c.id);
        }
    }

    /// Decodes and dispatches every complete event in the input buffer.
    fn process(&self, lp: &mut Loop) {
        loop {
            let (event, state) = {
                let mut c = self.0.borrow_mut();
                let state = c.state;
                if !matches!(state, State::Open | State::CloseSent) {
                    return;
                }
                let Conn { asm, inbuf, .. } = &mut *c;
                (asm.next_event(inbuf), state)
            };
            match event {
                Ok(None) => return,
                Err(e) => {
                    log::debug!("ws: failing connection: {e}");
                    self.fail(lp, e.code, e.reason);
                    return;
                }
                Ok(Some(Event::Text(b))) if state == State::Open => {
                    let text = String::from_utf8(Vec::from(b))
                        .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
                    self.emit_message(lp, Message::Text(text));
                }
                Ok(Some(Event::Binary(b))) if state == State::Open => {
                    self.emit_message(lp, Message::Binary(b));
                }
                Ok(Some(Event::Ping(p))) if state == State::Open => {
                    let id = self.0.borrow().id;
                    write_control(lp, id, OpCode::Pong, &p);
                }
                Ok(Some(Event::Close(info))) => self.on_peer_close(lp, info),
                // Pongs, and data after this side sent its Close, are dropped.
                Ok(Some(_)) => {}
            }
        }
    }

    fn emit_message(&self, lp: &mut Loop, msg: Message) {
        let cb = self.0.borrow_mut().on_message.take();
        if let Some(mut cb) = cb {
            cb(lp, self, msg);
            let mut c = self.0.borrow_mut();
            if c.on_message.is_none() && c.state != State::Closed {
                c.on_message = Some(cb);
            }
        }
    }

    /// The peer's Close frame: echo its code (in `Open`), then end the TCP side (the server
    /// closes first, §7.1.1).
    fn on_peer_close(&self, lp: &mut Loop, info: Option<(u16, String)>) {
        let (id, echo) = {
            let mut c = self.0.borrow_mut();
            let echo = c.state == State::Open;
            c.state = State::Closing;
            c.close_info = Some(info.clone().unwrap_or((CLOSE_NO_STATUS, String::new())));
            (c.id, echo)
        };
        if echo {
            let mut out = BytesMut::new();
            match info {
                Some((code, _)) => frame::encode_close(&mut out, code, ""),
                None => frame::encode_frame(&mut out, true, OpCode::Close, &[]),
            }
            let _ = lp.tcp_write_bytes(id, out.freeze());
        }
        let _ = lp.tcp_end(id);
        self.arm_close_timer(lp);
    }

    /// Fails the connection (§7.1.7): send a Close with `code`, end the TCP side.
    pub(crate) fn fail(&self, lp: &mut Loop, code: u16, reason: &str) {
        let (id, send) = {
            let mut c = self.0.borrow_mut();
            if matches!(c.state, State::Closing | State::Closed) {
                return;
            }
            let send = c.state == State::Open;
            c.state = State::Closing;
            c.close_info = Some((code, reason.to_owned()));
            (c.id, send)
        };
        if send {
            let mut out = BytesMut::new();
            frame::encode_close(&mut out, code, reason);
            let _ = lp.tcp_write_bytes(id, out.freeze());
        }
        let _ = lp.tcp_end(id);
        self.resume_reading(lp);
        self.arm_close_timer(lp);
    }

    /// Destroys the connection now (idle timeout), reporting `reason` with 1006.
    pub(crate) fn destroy(&self, lp: &mut Loop, reason: &str) {
        let id = {
            let mut c = self.0.borrow_mut();
            if c.close_info.is_none() {
                c.close_info = Some((CLOSE_ABNORMAL, reason.to_owned()));
            }
            c.id
        };
        let _ = lp.tcp_destroy(id);
    }

    /// The peer sent FIN: finish our side too (the socket is half-open, as HTTP set it up).
    pub(crate) fn on_end(&self, lp: &mut Loop) {
        let id = {
            let mut c = self.0.borrow_mut();
            if c.state != State::Closed {
                c.state = State::Closing;
            }
            c.id
        };
        let _ = lp.tcp_end(id);
    }

    pub(crate) fn on_tcp_drain(&self, lp: &mut Loop) {
        self.resume_reading(lp);
        let cb = self.0.borrow_mut().on_drain.take();
        if let Some(mut cb) = cb {
            cb(lp, self);
            let mut c = self.0.borrow_mut();
            if c.on_drain.is_none() && c.state != State::Closed {
                c.on_drain = Some(cb);
            }
        }
    }

    /// The TCP connection closed: leave every topic, run `on_close`, drop all callbacks.
    pub(crate) fn on_tcp_close(&self, lp: &mut Loop) {
        let (hub, timer, on_close, info) = {
            let mut c = self.0.borrow_mut();
            c.state = State::Closed;
            c.on_message = None;
            c.on_drain = None;
            (
                c.hub.clone(),
                c.close_timer.take(),
                c.on_close.take(),
                c.close_info
                    .take()
                    .unwrap_or((CLOSE_ABNORMAL, String::new())),
            )
        };
        if let Some(t) = timer {
            let _ = lp.clear_timeout(t);
        }
        hub.unsubscribe_all(self);
        if let Some(cb) = on_close {
            cb(lp, self, info.0, &info.1);
        }
        hub.sync_redis(lp);
    }
}

/// Whether more than `max_bp` bytes are queued (0: no limit).
pub(crate) fn over_limit(lp: &Loop, id: TcpId, max_bp: usize) -> bool {
    max_bp > 0 && lp.tcp_queued(id).unwrap_or(0) > max_bp
}

/// Maps a write result to a status. The WebSocket sets the socket's high-water mark to 1, so
/// `Ok(false)` means "something is queued".
pub(crate) fn status_of<E>(r: Result<bool, E>) -> SendStatus {
    match r {
        Ok(true) => SendStatus::Sent,
        Ok(false) => SendStatus::Backpressured,
        Err(_) => SendStatus::Dropped,
    }
}

pub(crate) fn write_control(lp: &mut Loop, id: TcpId, op: OpCode, payload: &[u8]) {
    let payload = payload.get(..frame::MAX_CONTROL_PAYLOAD).unwrap_or(payload);
    let mut out = BytesMut::with_capacity(2 + payload.len());
    out.put_u8(0x80 | op.as_u8());
    out.put_u8(payload.len() as u8);
    out.put_slice(payload);
    let _ = lp.tcp_write_bytes(id, out.freeze());
}

/// Codes a server may put in a Close frame: 1000-1003, 1007-1014, 3000-4999.
pub fn is_sendable_close_code(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsendable_close_codes_are_refused() {
        for c in [0, 999, 1004, 1005, 1006, 1015, 2999, 5000] {
            assert!(!is_sendable_close_code(c), "{c}");
        }
        for c in [1000, 1001, 1002, 1003, 1007, 1011, 1014, 3000, 4999] {
            assert!(is_sendable_close_code(c), "{c}");
        }
    }

    #[test]
    fn message_frame_is_encoded_once_with_a_minimal_header() {
        let f = Message::from("hi").to_frame();
        assert_eq!(&f[..], &[0x81, 2, b'h', b'i']);
        let f = Message::from(vec![0u8; 300]).to_frame();
        assert_eq!(&f[..4], &[0x82, 126, 1, 44]);
    }

    #[test]
    fn status_maps_queue_state() {
        assert_eq!(status_of::<()>(Ok(true)), SendStatus::Sent);
        assert_eq!(status_of::<()>(Ok(false)), SendStatus::Backpressured);
        assert_eq!(status_of(Err(())), SendStatus::Dropped);
    }
}

//! One HTTP/1.1 connection: the state machine between the socket and the user's handler.
//!
//! ```text
//!            bytes                 head complete              body done + response finished
//!  [Idle] ---------> [Head] ---------------------> [InFlight] -------------------------------+
//!    ^  keep-alive                                     |  upgrade: socket handed over         |
//!    |  timeout: close                                 +-------------------> (detached)       |
//!    +---------------------------------------------------------------- keep-alive ------------+
//!    any state: framing error / timeout / Connection: close  ->  [Closing]  (FIN sent, input
//!    read and discarded until the peer's FIN or a 1 s linger)
//! ```
//!
//! Requests are handled one at a time: a pipelined request's handler runs once the previous
//! response has finished, so responses leave in request order with no reorder buffer, and input
//! beyond `max_pipeline_buffer` pauses reading (bounded memory). Synchronous handlers still answer
//! a whole pipelined batch with one write: responses are serialized into `out` and flushed once.
//! When the socket backs up, no further head is parsed and reading pauses until it drains.
//! After the peer's FIN the requests already buffered are still answered; then the connection
//! closes. See docs/http.md.

use std::cell::RefCell;
use std::rc::Rc;

use bytes::BytesMut;
use oneloop_runtime::{Loop, LoopHandle, TcpId};

use super::decode::{BodyDecoder, DecodeLimits, Decoded};
use super::error::ParseError;
use super::parse::{BodyKind, HeadParser, HeaderSpan, Method, RequestHead, Version};
use super::request::Request;
use super::response::{Response, ResponseState};
use super::server::Shared;

pub(crate) type ConnRef = Rc<RefCell<Conn>>;

/// The largest field list (entries) a connection keeps for its next head: the bound of the
/// server's field-list pool.
pub(crate) const MAX_KEPT_FIELDS: usize = 32;

/// Where the connection is in its request/response cycle.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Phase {
    /// Between requests (or before the first): nothing buffered.
    Idle,
    /// Some bytes of a request head have arrived.
    Head,
    /// A request was handed to the handler; its body and/or response are in progress.
    InFlight,
    /// We decided to close: an error response or the last response is flushing; input ignored.
    Closing,
    /// The socket was handed to an upgrade handler or closed: nothing here touches it again.
    Detached,
}

/// Which deadline is armed.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Deadline {
    Headers,
    Request,
    KeepAlive,
    Send,
    Closing,
}

type DataCb = Box<dyn FnMut(&mut Loop, &[u8])>;
type EndCb = Box<dyn FnOnce(&mut Loop)>;

/// The request body as the handler sees it.
pub(crate) struct BodyState {
    pub(crate) decoder: BodyDecoder,
    pub(crate) on_data: Option<DataCb>,
    pub(crate) on_end: Option<EndCb>,
    /// Someone registered interest: decode and deliver. Without a consumer the body stays in the
    /// input buffer (bounded), so a handler may attach `on_data` later without losing bytes.
    pub(crate) consumed: bool,
    pub(crate) done: bool,
    pub(crate) received: u64,
    /// `Expect: 100-continue` with `auto_continue`: the interim response is sent when the body
    /// is first asked for, so a handler that refuses the request (413 on its declared length)
    /// answers instead of inviting the body. Still set when the response goes out: the client
    /// may never send the body, so that response closes the connection.
    pub(crate) continue_owed: bool,
}

impl BodyState {
    /// Body bytes still to come according to a `Content-Length` (`None` when chunked).
    fn declared_remaining(&self) -> Option<u64> {
        match self.decoder {
            BodyDecoder::Length { remaining } => Some(remaining),
            _ => None,
        }
    }

    /// Whether a response sent now, with the body unread, must be the connection's last: the
    /// body will not be discarded (more than `max_drain` declared), or may never come (the
    /// client expects `100 Continue` and got none, RFC 9110 §10.1.1).
    pub(crate) fn unread_ends_connection(&self, max_drain: u64) -> bool {
        !self.done
            && !self.consumed
            && (self.continue_owed || self.declared_remaining().is_some_and(|n| n > max_drain))
    }
}

/// One request/response exchange.
pub(crate) struct Exchange {
    pub(crate) seq: u64,
    pub(crate) version: Version,
    pub(crate) is_head: bool,
    pub(crate) keep_alive: bool,
    pub(crate) body: BodyState,
    pub(crate) res: ResponseState,
}

pub(crate) struct Conn {
    pub(crate) id: TcpId,
    /// The peer's address, read once at accept (not a syscall per request).
    remote: Option<std::net::SocketAddr>,
    pub(crate) shared: Rc<Shared>,
    pub(crate) handle: LoopHandle,
    inbuf: BytesMut,
    parser: HeadParser,
    /// The field list the next head is parsed into. A finished request's list comes back
    /// here (`Request`'s drop), so a pipelined batch parses every head into one allocation
    /// without a trip through the server's pool per request; it goes to that pool with the
    /// input buffer when the connection turns idle (an idle connection holds none).
    fields: Vec<HeaderSpan>,
    pub(crate) phase: Phase,
    /// Serialized response bytes not yet handed to the socket.
    pub(crate) out: BytesMut,
    /// Boxed (from the server's pool) so an idle connection holds a pointer, not an exchange.
    pub(crate) ex: Option<Box<Exchange>>,
    /// The last finished exchange's box, kept for the next pipelined request (refilled in
    /// place) instead of a trip through the server's pool per request; it goes to that pool
    /// with the input buffer when the connection turns idle (an idle connection holds none).
    spare_ex: Option<Box<Exchange>>,
    seq: u64,
    served: u32,
    pub(crate) deadline: Option<(u64, Deadline)>,
    /// Armed while the socket's write queue is above its high-water mark: (when, bytes written
    /// by then). Separate from `deadline` so a slow reader never disarms the keep-alive or
    /// headers deadline, and progress (more bytes written) re-arms it.
    pub(crate) send_deadline: Option<(u64, u64)>,
    /// The handler (or a body callback) is running on this connection's stack: flushing and
    /// processing happen when it returns, not from a tick.
    pub(crate) in_dispatch: bool,
    pub(crate) tick_scheduled: bool,
    /// The socket's write queue is above its high-water mark.
    pub(crate) write_blocked: bool,
    /// A `Response::write` returned false: its `on_drain` is owed once the output is flushed,
    /// even if the socket took everything (then the runtime reports no drain of its own).
    pub(crate) need_drain: bool,
    read_paused: bool,
    peer_ended: bool,
    /// Close after the current response (graceful server close): its head says
    /// `Connection: close`.
    pub(crate) close_after: bool,
}

impl Conn {
    pub(crate) fn new(
        id: TcpId,
        remote: Option<std::net::SocketAddr>,
        shared: Rc<Shared>,
        handle: LoopHandle,
        now: u64,
    ) -> Conn {
        let headers_timeout = shared.config.headers_timeout_ms;
        Conn {
            id,
            remote,
            shared,
            handle,
            inbuf: BytesMut::new(),
            parser: HeadParser::new(),
            fields: Vec::new(),
            phase: Phase::Idle,
            out: BytesMut::new(),
            ex: None,
            spare_ex: None,
            seq: 0,
            served: 0,
            // A new connection must send its first head within headers_timeout.
            deadline: Some((now + headers_timeout, Deadline::Headers)),
            send_deadline: None,
            in_dispatch: false,
            tick_scheduled: false,
            write_blocked: false,
            need_drain: false,
            read_paused: false,
            peer_ended: false,
            close_after: false,
        }
    }

    /// Takes an output buffer from the server's pool if this connection handed its own back
    /// while idle; call before writing to `out`.
    #[inline]
    pub(crate) fn refill_out(&mut self) {
        if self.out.capacity() == 0 {
            self.out = self.shared.out_buffers.take();
        }
    }

    /// Idle between requests with nothing buffered: safe to close at any moment.
    pub(crate) fn is_idle(&self) -> bool {
        self.phase == Phase::Idle && self.inbuf.is_empty()
    }

    /// The first bytes of a request head arrived (Idle -> Head): the headers timeout runs from
    /// now, except on a new connection, where it runs from accept.
    fn begin_head(&mut self, now: u64) {
        if self.phase == Phase::Idle {
            self.phase = Phase::Head;
            if self.served > 0 {
                self.deadline = Some((
                    now + self.shared.config.headers_timeout_ms,
                    Deadline::Headers,
                ));
            }
        }
    }

    /// How long a closing connection waits for the peer's FIN after ours before it is
    /// destroyed. Closing at once would turn unread input (a pipelined request after a 400)
    /// into an RST that can destroy the response in flight; waiting longer would hold
    /// `Server::close` up for clients that never close.
    pub(crate) fn linger_ms(&self) -> u64 {
        self.shared.config.keep_alive_timeout_ms.min(1000)
    }

    /// The peer's address, read once at accept.
    pub(crate) fn remote(&self) -> Option<std::net::SocketAddr> {
        self.remote
    }

    /// Takes back a finished request's field list for the next head (see `fields`); a
    /// second one, or one grown past the pool's bound, goes to the server's pool (which
    /// frees what it does not keep).
    #[inline]
    pub(crate) fn keep_fields(&mut self, fields: Vec<HeaderSpan>) {
        if self.fields.capacity() == 0 && fields.capacity() <= MAX_KEPT_FIELDS {
            self.fields = fields;
        } else {
            self.shared.request_fields.give(fields);
        }
    }

    /// Whether `schedule` would queue a tick: no handler or body callback is running on this
    /// connection's stack (it processes on return), none is queued, and the socket is ours.
    #[inline]
    pub(crate) fn needs_tick(&self) -> bool {
        !(self.in_dispatch || self.tick_scheduled || self.phase == Phase::Detached)
    }

    /// The current exchange, if `seq` still names it.
    pub(crate) fn exchange(&mut self, seq: u64) -> Option<&mut Exchange> {
        self.ex.as_deref_mut().filter(|e| e.seq == seq)
    }

    fn limits(&self) -> super::parse::Limits {
        let c = &self.shared.config;
        super::parse::Limits {
            max_head_size: c.max_header_size,
            max_headers: c.max_headers_count,
            max_request_line: c.max_request_line,
            require_host: c.require_host,
        }
    }

    fn decode_limits(&self) -> DecodeLimits {
        DecodeLimits {
            max_body_size: self.shared.config.max_body_size.unwrap_or(u64::MAX),
            ..DecodeLimits::default()
        }
    }
}

/// Bytes arrived on the socket.
pub(crate) fn on_data(lp: &mut Loop, conn: &ConnRef, data: &[u8]) {
    {
        let mut c = conn.borrow_mut();
        if matches!(c.phase, Phase::Closing | Phase::Detached) {
            return;
        }
        c.begin_head(lp.now());
        if c.inbuf.capacity() == 0 {
            c.inbuf = c.shared.in_buffers.take();
        }
        c.inbuf.extend_from_slice(data);
    }
    process(lp, conn);
}

/// The peer sent FIN. Complete requests already buffered are still answered, in order (a
/// client may pipeline, then half-close); the connection closes once no complete request is
/// left (see `process`). A body cut short by the FIN aborts its exchange.
pub(crate) fn on_end(lp: &mut Loop, conn: &ConnRef) {
    {
        let mut c = conn.borrow_mut();
        if matches!(c.phase, Phase::Closing | Phase::Detached) {
            // Our FIN is queued or sent: the socket closes itself once both sides are shut.
            return;
        }
        c.peer_ended = true;
    }
    process(lp, conn);
}

/// The socket's write queue drained.
pub(crate) fn on_drain(lp: &mut Loop, conn: &ConnRef) {
    let cb = {
        let mut c = conn.borrow_mut();
        c.write_blocked = false;
        c.need_drain = false;
        c.send_deadline = None;
        c.ex.as_mut().and_then(|e| e.res.on_drain.take())
    };
    if let Some(mut cb) = cb {
        cb(lp);
        let mut c = conn.borrow_mut();
        if let Some(e) = c.ex.as_mut() {
            if e.res.on_drain.is_none() {
                e.res.on_drain = Some(cb);
            }
        }
    }
    process(lp, conn);
}

/// Runs the state machine as far as the buffered input and the response allow, then flushes.
pub(crate) fn process(lp: &mut Loop, conn: &ConnRef) {
    loop {
        let phase = conn.borrow().phase;
        let progressed = match phase {
            Phase::Idle | Phase::Head => {
                // Backpressure: a client that does not read its responses gets no new ones.
                // Serialized responses are bounded by one pipeline buffer's worth before they
                // go to the socket; once the socket is backed up no further head is parsed
                // (and reading pauses below) until `on_drain`.
                if conn.borrow().out.len() >= conn.borrow().shared.config.max_pipeline_buffer {
                    flush(lp, conn);
                }
                if conn.borrow().write_blocked {
                    break;
                }
                read_head(lp, conn)
            }
            Phase::InFlight => advance_exchange(lp, conn),
            Phase::Closing | Phase::Detached => false,
        };
        if !progressed {
            break;
        }
    }
    let (phase, peer_ended, blocked) = {
        let c = conn.borrow();
        (c.phase, c.peer_ended, c.write_blocked)
    };
    if peer_ended && !blocked && matches!(phase, Phase::Idle | Phase::Head) {
        // The peer half-closed and no complete request is left: answer nothing more.
        close_gracefully(lp, conn);
        return;
    }
    flush(lp, conn);
    update_read_pause(lp, conn);
}

/// Ends the exchange in flight without waiting for its response: the user's Request and
/// Response become inert. Returns the response's `on_abort` callback if it had not finished,
/// for the caller to run once it holds no borrow of the connection.
pub(crate) fn abandon_exchange(c: &mut Conn) -> Option<Aborted> {
    let ex = c.ex.take()?;
    match ex.res.finished || ex.res.on_abort.is_empty() {
        true => None,
        false => Some(Aborted(ex.res.on_abort)),
    }
}

/// The `on_abort` callbacks of an exchange that ended unanswered.
pub(crate) struct Aborted(Vec<super::response::AbortCb>);

impl Aborted {
    /// Runs them, in the order they were added.
    pub(crate) fn run(self, lp: &mut Loop) {
        for cb in self.0 {
            cb(lp);
        }
    }
}

/// Flushes what is owed, sends FIN and ignores further input; the socket closes once the peer
/// has ended too (or the closing deadline passes).
fn close_gracefully(lp: &mut Loop, conn: &ConnRef) {
    let (id, aborted) = {
        let mut c = conn.borrow_mut();
        if matches!(c.phase, Phase::Detached) {
            return;
        }
        c.phase = Phase::Closing;
        let aborted = abandon_exchange(&mut c);
        c.inbuf.clear();
        c.deadline = Some((lp.now() + c.linger_ms(), Deadline::Closing));
        (c.id, aborted)
    };
    if let Some(aborted) = aborted {
        aborted.run(lp);
    }
    flush(lp, conn);
    let _ = lp.tcp_end(id);
    resume_to_discard(lp, conn);
}

/// A closing connection reads and discards input until the peer's FIN, so the kernel never
/// holds unread bytes when the socket closes (which would send an RST).
fn resume_to_discard(lp: &mut Loop, conn: &ConnRef) {
    let mut c = conn.borrow_mut();
    if c.read_paused {
        c.read_paused = false;
        let id = c.id;
        drop(c);
        let _ = lp.tcp_resume(id);
    }
}

/// Parses the next head and dispatches it. Returns whether the machine moved.
fn read_head(lp: &mut Loop, conn: &ConnRef) -> bool {
    let parsed = {
        let mut guard = conn.borrow_mut();
        let c = &mut *guard;
        if c.inbuf.is_empty() {
            return false;
        }
        c.begin_head(lp.now());
        let limits = c.limits();
        // The previous request's field list, else one from the server's pool.
        if c.fields.capacity() == 0 {
            c.fields = c.shared.request_fields.take();
        }
        c.parser.parse_reusing(&mut c.inbuf, &limits, &mut c.fields)
    };
    let head = match parsed {
        Ok(None) => return false,
        Ok(Some(head)) => head,
        Err(e) => {
            fail(lp, conn, e);
            return false;
        }
    };
    let body_kind = head.body_kind();
    let max_body = conn.borrow().shared.config.max_body_size;
    if let (Some(max), BodyKind::Length(n)) = (max_body, body_kind) {
        if n > max {
            fail(lp, conn, ParseError::BodyTooLarge);
            return false;
        }
    }
    // An upgrade nobody takes is served as an ordinary request (RFC 9110 §7.8).
    if head.is_upgrade() && conn.borrow().shared.takes_upgrade(&head) {
        upgrade(lp, conn, head);
        return false;
    }
    dispatch(lp, conn, head, body_kind);
    true
}

/// Answers a request the handler never sees, as an ordinary response: the framing is intact,
/// so the connection stays usable (the body, if any, is discarded). Used for an unsupported
/// `Expect` (417), which Node answers the same way when no `checkExpectation` listener exists.
fn answer_without_handler(res: Response, status: u16) {
    res.status(status).end("");
}

/// Starts an exchange and calls the user's handler.
fn dispatch(lp: &mut Loop, conn: &ConnRef, head: RequestHead, body_kind: BodyKind) {
    let now = lp.now();
    // The head goes into its `Request` first (one move of it); the exchange is set up from
    // there, and the request gets its sequence number below.
    let mut req = Request::new(head, Rc::clone(conn), 0);
    let head = req.head();
    let (seq, shared, handle) = {
        let mut c = conn.borrow_mut();
        c.seq += 1;
        c.served += 1;
        let cfg = &c.shared.config;
        let last = cfg.max_requests_per_socket > 0 && c.served >= cfg.max_requests_per_socket;
        let keep_alive = head.keep_alive() && !last && !c.close_after && !c.shared.is_closing();
        let body_done = matches!(body_kind, BodyKind::Empty | BodyKind::Length(0));
        let continue_owed = head.expect_continue()
            && head.version() == Version::Http11
            && cfg.auto_continue
            && !body_done;
        c.deadline = if body_done {
            None
        } else {
            Some((now + cfg.request_timeout_ms, Deadline::Request))
        };
        let seq = c.seq;
        let decoder = BodyDecoder::new(body_kind);
        // A box from the server's pool, refilled in place: its header list keeps its
        // capacity, so there is no allocation (and no move of a whole `Exchange`) per request.
        let is_head = head.method() == Method::Head;
        let spare = c.spare_ex.take();
        let ex = match spare.or_else(|| c.shared.exchanges.take()) {
            Some(mut ex) => {
                ex.seq = seq;
                ex.version = head.version();
                ex.is_head = is_head;
                ex.keep_alive = keep_alive;
                // Field by field: the pooled box's callbacks are already gone (taken by
                // `finish_exchange`), so there is nothing to drop.
                debug_assert!(ex.body.on_data.is_none() && ex.body.on_end.is_none());
                ex.body.decoder = decoder;
                ex.body.consumed = false;
                ex.body.done = body_done;
                ex.body.received = 0;
                ex.body.continue_owed = continue_owed;
                ex.res.reset();
                ex
            }
            None => Box::new(Exchange {
                seq,
                version: head.version(),
                is_head,
                keep_alive,
                body: BodyState {
                    decoder,
                    on_data: None,
                    on_end: None,
                    consumed: false,
                    done: body_done,
                    received: 0,
                    continue_owed,
                },
                res: ResponseState::with_headers(Vec::new()),
            }),
        };
        c.ex = Some(ex);
        c.phase = Phase::InFlight;
        c.in_dispatch = true;
        (seq, Rc::clone(&c.shared), c.handle.clone())
    };
    let unsupported_expectation = head.has_unsupported_expectation();
    req.set_seq(seq);
    let res = Response::new(Rc::clone(conn), seq, handle);
    if unsupported_expectation {
        answer_without_handler(res, ParseError::ExpectationFailed.status());
    } else {
        shared.call_handler(lp, req, res);
    }
    conn.borrow_mut().in_dispatch = false;
}

/// Moves the in-flight exchange on: delivers body bytes, finishes it when both the body and the
/// response are done. Returns whether the machine moved to a new state.
fn advance_exchange(lp: &mut Loop, conn: &ConnRef) -> bool {
    loop {
        let step = {
            let mut c = conn.borrow_mut();
            let limits = c.decode_limits();
            let max_drain = c.shared.config.max_drain_bytes;
            let c = &mut *c;
            let Some(ex) = c.ex.as_mut() else {
                return false;
            };
            if ex.body.done {
                if ex.res.finished {
                    BodyStep::Finish
                } else {
                    return false;
                }
            } else if ex.body.consumed || ex.res.finished {
                // Unread body after the response: discard up to max_drain_bytes. Give up at
                // once when the declared rest is larger anyway, or when the client was told
                // nothing about sending it (`Expect: 100-continue` never answered).
                let give_up = ex.body.received > max_drain
                    || ex.body.declared_remaining().is_some_and(|n| n > max_drain)
                    || ex.body.continue_owed;
                if ex.res.finished && !ex.body.consumed && give_up {
                    BodyStep::GiveUp
                } else {
                    match ex.body.decoder.decode(&mut c.inbuf, &limits) {
                        Ok(Decoded::Data(bytes)) => {
                            ex.body.received += bytes.len() as u64;
                            match ex.body.on_data.take() {
                                Some(cb) => BodyStep::Deliver(cb, bytes),
                                None => continue, // draining: discard
                            }
                        }
                        Ok(Decoded::NeedMore) if c.peer_ended => BodyStep::Aborted,
                        Ok(Decoded::NeedMore) => return false,
                        Ok(Decoded::Done) => {
                            ex.body.done = true;
                            if c.deadline.is_some_and(|(_, d)| d == Deadline::Request) {
                                c.deadline = None;
                            }
                            match ex.body.on_end.take() {
                                Some(cb) => BodyStep::End(cb),
                                None => continue,
                            }
                        }
                        Err(e) => BodyStep::Error(e),
                    }
                }
            } else {
                return false; // nobody reads the body yet: it waits in inbuf
            }
        };
        match step {
            BodyStep::Deliver(mut cb, bytes) => {
                with_dispatch(conn, || cb(lp, &bytes));
                let mut c = conn.borrow_mut();
                if let Some(ex) = c.ex.as_mut() {
                    // Not if the callback replaced itself or gave up on the body.
                    if ex.body.on_data.is_none() && ex.body.consumed {
                        ex.body.on_data = Some(cb);
                    }
                }
            }
            BodyStep::End(cb) => with_dispatch(conn, || cb(lp)),
            BodyStep::Error(e) => {
                fail(lp, conn, e);
                return false;
            }
            BodyStep::GiveUp => {
                close_gracefully(lp, conn);
                return false;
            }
            BodyStep::Aborted => {
                // The peer ended mid-body. A finished response is still delivered; otherwise
                // there is nobody to answer (Node destroys the socket too).
                let finished = conn.borrow().ex.as_ref().is_some_and(|e| e.res.finished);
                if finished {
                    close_gracefully(lp, conn);
                } else {
                    let id = conn.borrow().id;
                    conn.borrow_mut().phase = Phase::Closing;
                    let _ = lp.tcp_destroy(id);
                }
                return false;
            }
            BodyStep::Finish => return finish_exchange(lp, conn),
        }
    }
}

enum BodyStep {
    Deliver(DataCb, bytes::Bytes),
    End(EndCb),
    Error(ParseError),
    GiveUp,
    Aborted,
    Finish,
}

fn with_dispatch(conn: &ConnRef, f: impl FnOnce()) {
    let was = std::mem::replace(&mut conn.borrow_mut().in_dispatch, true);
    f();
    conn.borrow_mut().in_dispatch = was;
}

/// The handler asks for the body of exchange `seq` (`on_data`, `on_end`, `collect`): decode
/// it from now on, sending the owed `100 Continue` first.
pub(crate) fn want_body(conn: &ConnRef, seq: u64) {
    let mut guard = conn.borrow_mut();
    let c = &mut *guard;
    let Some(ex) = c.ex.as_mut().filter(|e| e.seq == seq) else {
        return;
    };
    ex.body.consumed = true;
    if std::mem::take(&mut ex.body.continue_owed) && !ex.res.headers_sent {
        c.refill_out();
        c.out.extend_from_slice(b"HTTP/1.1 100 Continue\r\n\r\n");
    }
}

/// The handler gave up on the body of exchange `seq` (`collect` past its limit or the
/// server's budget): its callbacks are dropped and the rest is treated as unread (discarded
/// after the response up to `max_drain_bytes`, else the connection closes).
pub(crate) fn abandon_body(conn: &ConnRef, seq: u64) {
    let callbacks = {
        let mut c = conn.borrow_mut();
        let Some(ex) = c.exchange(seq) else {
            return;
        };
        ex.body.consumed = false;
        (ex.body.on_data.take(), ex.body.on_end.take())
    };
    drop(callbacks); // outside the borrow: they may own the user's Response
}

/// Body read and response sent: keep the connection for the next request or close it.
fn finish_exchange(lp: &mut Loop, conn: &ConnRef) -> bool {
    let mut c = conn.borrow_mut();
    let Some(mut ex) = c.ex.take() else {
        return false;
    };
    let keep = ex.keep_alive && !ex.res.close_delimited && !c.close_after;
    // Nothing that can own state (callbacks holding the Response) stays in a pooled box.
    // (Checked first: most exchanges have none, and the tuple's drop is not free.)
    let has_callbacks = ex.body.on_data.is_some()
        || ex.body.on_end.is_some()
        || ex.res.on_drain.is_some()
        || !ex.res.on_abort.is_empty();
    let callbacks = has_callbacks.then(|| {
        (
            ex.body.on_data.take(),
            ex.body.on_end.take(),
            ex.res.on_drain.take(),
            std::mem::take(&mut ex.res.on_abort),
        )
    });
    ex.body.decoder = BodyDecoder::Done;
    // The header list stays in the box for the next exchange (cleared; dropped if large).
    ex.res.recycle_headers();
    if keep && !c.inbuf.is_empty() {
        // More pipelined input: the next request refills this box.
        if let Some(old) = c.spare_ex.replace(ex) {
            c.shared.exchanges.give(old);
        }
    } else {
        c.shared.exchanges.give(ex);
    }
    if keep {
        c.phase = Phase::Idle;
        let t = lp.now() + c.shared.config.keep_alive_timeout_ms;
        c.deadline = Some((t, Deadline::KeepAlive));
        drop(c);
        // Only `Some` goes to the (out-of-line) drop of the tuple: most exchanges have none.
        if let Some(callbacks) = callbacks {
            drop(callbacks);
        }
        true
    } else {
        drop(c);
        drop(callbacks);
        close_gracefully(lp, conn);
        false
    }
}

/// A framing or limit error: answer `err.status()` with `Connection: close` if no response has
/// started, then close. Nothing after the error is parsed.
pub(crate) fn fail(lp: &mut Loop, conn: &ConnRef, err: ParseError) {
    log::debug!("http: {} ({})", err.status(), err.reason());
    send_error_and_close(lp, conn, err.status());
}

/// Answers `status` (no body, `Connection: close`) unless a response already started, then
/// closes the connection after the bytes are sent.
pub(crate) fn send_error_and_close(lp: &mut Loop, conn: &ConnRef, status: u16) {
    let (id, started, finished, aborted) = {
        let mut c = conn.borrow_mut();
        if matches!(c.phase, Phase::Closing | Phase::Detached) {
            return;
        }
        let started = c.ex.as_ref().is_some_and(|e| e.res.headers_sent);
        let finished = c.ex.as_ref().is_some_and(|e| e.res.finished);
        let aborted = abandon_exchange(&mut c);
        c.phase = Phase::Closing;
        c.inbuf.clear();
        c.deadline = Some((lp.now() + c.linger_ms(), Deadline::Closing));
        if !started {
            let date = c.shared.date();
            c.refill_out();
            let out = &mut c.out;
            super::encode::write_status_line(
                out,
                Version::Http11,
                status,
                super::status::reason_phrase(status),
            );
            super::encode::write_header(out, "Date", &date);
            out.extend_from_slice(b"Connection: close\r\nContent-Length: 0\r\n\r\n");
        }
        (c.id, started, finished, aborted)
    };
    if let Some(aborted) = aborted {
        aborted.run(lp);
    }
    if started && !finished {
        // Half a response is on the wire: the only honest signal left is closing at once.
        let _ = lp.tcp_destroy(id);
        return;
    }
    // Either our error response or an already finished response (the request body went bad
    // while it was being discarded) is delivered whole before the FIN.
    flush(lp, conn);
    let _ = lp.tcp_end(id);
    resume_to_discard(lp, conn);
}

/// Hands serialized response bytes to the socket.
pub(crate) fn flush(lp: &mut Loop, conn: &ConnRef) {
    let mut c = conn.borrow_mut();
    if c.out.is_empty() || c.phase == Phase::Detached {
        return;
    }
    let id = c.id;
    match lp.tcp_write(id, &c.out) {
        Ok(true) => {
            if c.need_drain {
                // The socket took it all: no drain event will come, so report it from a tick.
                c.need_drain = false;
                let weak = Rc::downgrade(conn);
                c.handle.next_tick(move |lp| {
                    if let Some(conn) = weak.upgrade() {
                        on_drain(lp, &conn);
                    }
                });
            }
        }
        Ok(false) => {
            c.write_blocked = true;
            if c.send_deadline.is_none() {
                let t = lp.now() + c.shared.config.send_timeout_ms;
                let written = lp.tcp_bytes(id).map_or(0, |(_, w)| w);
                c.send_deadline = Some((t, written));
            }
        }
        Err(e) => log::debug!("http: write failed: {e}"),
    }
    c.out.clear();
    if c.phase == Phase::Idle {
        // Nothing owed and no request in progress: the buffer goes back to the server's pool
        // (an idle connection holds no output buffer; the next response takes one).
        let out = std::mem::take(&mut c.out);
        c.shared.out_buffers.give(out);
        if c.inbuf.is_empty() {
            // So does the input buffer: the next request reads into a pooled buffer that is
            // still in the cache, instead of this connection's own, which with 10,000
            // connections is not (see docs/benchmarks.md, "10,000 connections"). The head
            // split off it is dropped by now, so its room comes back without allocating.
            let mut inbuf = std::mem::take(&mut c.inbuf);
            let _ = inbuf.try_reclaim(1);
            c.shared.in_buffers.give(inbuf);
            let fields = std::mem::take(&mut c.fields);
            c.shared.request_fields.give(fields);
            if let Some(ex) = c.spare_ex.take() {
                c.shared.exchanges.give(ex);
            }
        }
    }
}

/// Reading pauses while the socket's write queue is full or too much pipelined input waits.
fn update_read_pause(lp: &mut Loop, conn: &ConnRef) {
    let mut c = conn.borrow_mut();
    if c.phase == Phase::Detached {
        return;
    }
    let too_much_input = c.phase == Phase::InFlight
        && c.inbuf.len() >= c.shared.config.max_pipeline_buffer
        && !c
            .ex
            .as_ref()
            .is_some_and(|e| e.body.consumed && !e.body.done);
    let pause = c.write_blocked || too_much_input;
    if pause != c.read_paused {
        c.read_paused = pause;
        let id = c.id;
        drop(c);
        let _ = if pause {
            lp.tcp_pause(id)
        } else {
            lp.tcp_resume(id)
        };
    }
}

/// Schedules `process` from a tick, for changes made outside a dispatch (an async response, a
/// body callback attached later).
pub(crate) fn schedule(conn: &ConnRef) {
    let mut c = conn.borrow_mut();
    if !c.needs_tick() {
        return;
    }
    c.tick_scheduled = true;
    let weak = Rc::downgrade(conn);
    c.handle.next_tick(move |lp| {
        if let Some(conn) = weak.upgrade() {
            conn.borrow_mut().tick_scheduled = false;
            process(lp, &conn);
        }
    });
}

/// An upgrade the server takes (see `Shared::takes_upgrade`), or CONNECT: hand the socket and
/// the bytes read past the head to the upgrade handler, or close the connection when there is
/// none (as Node does for CONNECT).
fn upgrade(lp: &mut Loop, conn: &ConnRef, head: RequestHead) {
    // Responses to pipelined requests before this one go out first.
    flush(lp, conn);
    let (id, shared, rest, seq) = {
        let mut c = conn.borrow_mut();
        c.phase = Phase::Detached;
        c.deadline = None;
        c.seq += 1;
        let rest = c.inbuf.split().freeze();
        (c.id, Rc::clone(&c.shared), rest, c.seq)
    };
    shared.forget(id);
    if conn.borrow().read_paused {
        let _ = lp.tcp_resume(id);
    }
    if !shared.has_upgrade_handler() {
        let _ = lp.tcp_destroy(id);
        return;
    }
    let req = Request::new(head, Rc::clone(conn), seq);
    shared.track_upgraded(lp, id);
    shared.call_upgrade(lp, req, id, rest);
}

/// A deadline passed (checked by the server's sweep timer).
pub(crate) fn on_deadline(lp: &mut Loop, conn: &ConnRef, kind: Deadline) {
    let id = conn.borrow().id;
    match kind {
        Deadline::Headers | Deadline::Request => {
            log::debug!("http: request timeout on connection {}", id.index());
            // A connection that never sent a byte is closed quietly (Node does the same).
            let silent = conn.borrow().is_idle();
            if silent {
                conn.borrow_mut().phase = Phase::Closing;
                let _ = lp.tcp_destroy(id);
            } else {
                send_error_and_close(lp, conn, 408);
            }
        }
        Deadline::KeepAlive | Deadline::Send | Deadline::Closing => {
            conn.borrow_mut().phase = Phase::Closing;
            let _ = lp.tcp_destroy(id);
        }
    }
}

/// The response just finished (from `Response::end`): move on now or from a tick.
#[inline]
pub(crate) fn response_finished(conn: &ConnRef) {
    schedule(conn);
}

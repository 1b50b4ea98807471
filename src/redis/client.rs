//! [`Redis`]: one connection's state machine, auto-pipelining, the offline queue, reconnects
//! and events.
//!
//! ```text
//!   connect ─> [Resolving] ─> [Connecting] ─> [Handshake] ─> [Ready]
//!                 │  DNS error     │ refused       │ HELLO/AUTH/SELECT/SETNAME/
//!                 │  or connect    │ or timeout    │ resubscribe, one at a time
//!                 v  timeout       v               v
//!              [Backoff] <──────── lost: FIN, reset, protocol error, connect timeout
//!                 │  delay from Reconnect; None, quit or disconnect ─> [Ended]
//!                 └────> [Resolving] (next attempt)
//! ```
//!
//! # Invariants
//! - `inflight` holds, in the order written, every command whose reply is awaited; replies
//!   are matched to its front (FIFO). Its last `out_cmds` entries are the commands encoded in
//!   `out` and not yet handed to the socket.
//! - `offline` holds commands not yet written, each with its encoded bytes; it is non-empty
//!   only outside `Ready` (it is moved into `out` when the connection becomes ready).
//! - Commands waiting to be written (`offline`, or in `out`) never exceed
//!   `max_queued_commands` / `max_queued_bytes`.
//! - The `RefCell` is never borrowed across a call into user code or a loop call that may run
//!   a callback.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::rc::Rc;

use bytes::{Bytes, BytesMut};
use oneloop_runtime::dns::{self, Family};
use oneloop_runtime::{Loop, SocketOptions, TcpId, TimerId};

use super::options::RedisOptions;
use super::pubsub::{self, Incoming, MessageCallback, Subs};
use super::resp::{encode_command, encoded_len, Parser, Reply};
use super::url::{parse_url, RedisUrl};
use super::RedisError;

pub(super) type ReplyCallback = Box<dyn FnOnce(&mut Loop, Result<Reply, RedisError>)>;
type EventCallback = Box<dyn FnMut(&mut Loop)>;
type ErrorCallback = Box<dyn FnMut(&mut Loop, &RedisError)>;
type DelayCallback = Box<dyn FnMut(&mut Loop, u64)>;

/// Per-command settings for [`Redis::cmd_with`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CmdOptions {
    /// Resend the command on the next connection if the connection drops after it was
    /// written and before its reply (only for commands safe to run twice: reads, `SET` of a
    /// fixed value, ...). Default false: such a command fails with
    /// [`RedisError::ConnectionLost`].
    pub retryable: bool,
    /// This command's timeout in ms, overriding [`RedisOptions::command_timeout_ms`]
    /// (`Some(0)` disables it).
    pub timeout_ms: Option<u64>,
}

/// Counters of one client, for tests and learners.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RedisStats {
    /// Commands issued (helpers and `cmd`), internal handshake commands included.
    pub commands: u64,
    /// Buffers handed to the socket (`tcp_write_bytes` calls): with auto-pipelining, one per
    /// loop turn that issued commands, not one per command.
    pub writes: u64,
    /// Replies parsed.
    pub replies: u64,
    /// Connection attempts (the first one included).
    pub connects: u64,
}

enum State {
    Resolving,
    Connecting(TcpId),
    Handshake(TcpId),
    Ready(TcpId),
    Backoff(TimerId),
    Ended,
}

/// Where one connection attempt goes.
enum Target {
    Tcp(SocketAddr),
    Unix(String),
}

/// One handshake step; each either sends its command or passes to the next.
#[derive(Clone, Copy, Debug)]
enum Step {
    Hello,
    Auth,
    SetName,
    Select,
    Subscribe,
    PSubscribe,
    Ready,
}

pub(super) struct Pending {
    id: u64,
    /// `None` once a timeout has answered it: the reply is still awaited, then dropped.
    on_reply: Option<ReplyCallback>,
    timer: Option<TimerId>,
    retryable: bool,
    /// The encoded command: always while offline, in flight only when retryable.
    bytes: Option<Bytes>,
    len: usize,
    /// Failed reconnect attempts seen while queued.
    attempts: u32,
    /// Replies this entry consumes (one per channel for pub/sub commands), at least 1.
    replies: u32,
    /// A handshake command: fails with its connection, never resent.
    internal: bool,
}

#[derive(Default)]
struct Events {
    ready: Option<EventCallback>,
    error: Option<ErrorCallback>,
    close: Option<EventCallback>,
    reconnecting: Option<DelayCallback>,
    end: Option<EventCallback>,
}

pub(super) struct Conn {
    url: RedisUrl,
    opts: RedisOptions,
    state: State,
    /// Bumped per connection attempt; a DNS answer or timer of an older attempt is ignored.
    generation: u64,
    parser: Parser,
    out: BytesMut,
    out_cmds: usize,
    blocked: bool,
    flush_queued: bool,
    inflight: VecDeque<Pending>,
    offline: VecDeque<Pending>,
    offline_bytes: usize,
    next_id: u64,
    attempt: u32,
    connect_timer: Option<TimerId>,
    closing: bool,
    refed: bool,
    socket_refed: bool,
    resp3: bool,
    events: Events,
    stats: RedisStats,
    pub(super) subs: Option<Subs>,
}

impl Conn {
    fn socket(&self) -> Option<TcpId> {
        match self.state {
            State::Connecting(id) | State::Handshake(id) | State::Ready(id) => Some(id),
            _ => None,
        }
    }

    fn queued_commands(&self) -> usize {
        self.offline.len() + self.out_cmds
    }

    fn queued_bytes(&self) -> usize {
        self.offline_bytes + self.out.len()
    }
}

/// A Redis client: one connection (reconnected when lost), commands pipelined automatically.
/// Cheap to clone (a shared handle); every clone is the same client.
///
/// ```no_run
/// use oneloop::redis::{Redis, RedisOptions, SetOptions};
/// use oneloop::runtime::Loop;
///
/// let mut lp = Loop::new()?;
/// let redis = Redis::connect(&mut lp, "redis://127.0.0.1:6379", RedisOptions::default())?;
/// let r = redis.clone();
/// redis.set(&mut lp, "greeting", "hello", SetOptions::default(), move |lp, res| {
///     res.expect("SET");
///     let r2 = r.clone(); // the callback owns a handle of its own
///     r.get(lp, "greeting", move |lp, value| {
///         assert_eq!(value.expect("GET").as_deref(), Some(&b"hello"[..]));
///         r2.quit(lp, |_lp, _| {});
///     });
/// });
/// lp.run()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Guarantees
/// - Every command's callback runs exactly once, never from inside the call that issued it.
/// - Replies reach callbacks in the order the commands were issued.
/// - Commands issued in one loop turn are written with one `tcp_write` from the check phase
///   (auto-pipelining, ioredis' `enableAutoPipelining`); while the socket is above its
///   high-water mark, commands wait for `drain` (bounded, see [`RedisOptions`]).
///
/// # Pitfalls
/// - A connected client keeps the loop alive, as a Node socket does: call [`Redis::quit`]
///   when done, or [`Redis::unref`] so it only holds the loop while commands are pending.
#[derive(Clone)]
pub struct Redis {
    pub(super) shared: Rc<RefCell<Conn>>,
}

fn fail_later(lp: &mut Loop, cb: ReplyCallback, err: RedisError) {
    lp.set_immediate(move |lp| cb(lp, Err(err)));
}

fn reply_result(reply: Reply) -> Result<Reply, RedisError> {
    match reply {
        Reply::Error(msg) => Err(RedisError::Server(
            String::from_utf8_lossy(&msg).into_owned(),
        )),
        other => Ok(other),
    }
}

impl Redis {
    /// Connects to `url` (`redis://[[user]:password@]host[:port][/db]`, a host name resolved
    /// on the thread pool; or `unix:///path/to/redis.sock[?db=N]`) and returns at once: commands issued before the
    /// connection is ready wait in the offline queue and are sent, in order, once the
    /// handshake (`HELLO 3` or RESP2 fallback, `AUTH`, `CLIENT SETNAME`, `SELECT`) is done.
    ///
    /// # Errors
    /// [`RedisError::InvalidUrl`] only; connection failures go to [`Redis::on_error`] and the
    /// reconnect strategy.
    pub fn connect(lp: &mut Loop, url: &str, opts: RedisOptions) -> Result<Redis, RedisError> {
        Redis::open(lp, url, opts, None)
    }

    pub(super) fn open(
        lp: &mut Loop,
        url: &str,
        opts: RedisOptions,
        subs: Option<Subs>,
    ) -> Result<Redis, RedisError> {
        let url = parse_url(url)?;
        let redis = Redis {
            shared: Rc::new(RefCell::new(Conn {
                url,
                parser: Parser::new(opts.reply_limits),
                opts,
                state: State::Resolving,
                generation: 0,
                out: BytesMut::new(),
                out_cmds: 0,
                blocked: false,
                flush_queued: false,
                inflight: VecDeque::new(),
                offline: VecDeque::new(),
                offline_bytes: 0,
                next_id: 0,
                attempt: 0,
                connect_timer: None,
                closing: false,
                refed: true,
                socket_refed: true,
                resp3: false,
                events: Events::default(),
                stats: RedisStats::default(),
                subs,
            })),
        };
        redis.start_attempt(lp);
        Ok(redis)
    }

    // -- commands -------------------------------------------------------------------------------

    /// Sends a command (`&["SET", "k", "v"]`) and calls `callback` with its reply; an error
    /// reply is `Err(RedisError::Server(..))`.
    pub fn cmd<A: AsRef<[u8]>>(
        &self,
        lp: &mut Loop,
        args: &[A],
        callback: impl FnOnce(&mut Loop, Result<Reply, RedisError>) + 'static,
    ) {
        self.send(lp, args, CmdOptions::default(), 1, Box::new(callback));
    }

    /// [`Redis::cmd`] with per-command options (retryable, timeout).
    pub fn cmd_with<A: AsRef<[u8]>>(
        &self,
        lp: &mut Loop,
        args: &[A],
        options: CmdOptions,
        callback: impl FnOnce(&mut Loop, Result<Reply, RedisError>) + 'static,
    ) {
        self.send(lp, args, options, 1, Box::new(callback));
    }

    pub(super) fn send<A: AsRef<[u8]>>(
        &self,
        lp: &mut Loop,
        args: &[A],
        options: CmdOptions,
        replies: u32,
        callback: ReplyCallback,
    ) {
        let mut guard = self.shared.borrow_mut();
        let c = &mut *guard;
        c.stats.commands += 1;
        let id = c.next_id;
        c.next_id += 1;
        let len = encoded_len(args);
        let timeout = options.timeout_ms.unwrap_or(c.opts.command_timeout_ms);
        let ready = matches!(c.state, State::Ready(_));
        let refusal = if matches!(c.state, State::Ended) {
            Some(RedisError::Closed)
        } else if !ready && !c.opts.enable_offline_queue {
            Some(RedisError::NotConnected)
        } else if c.queued_commands() >= c.opts.max_queued_commands
            || c.queued_bytes() + len > c.opts.max_queued_bytes
        {
            Some(RedisError::QueueFull {
                queued_commands: c.queued_commands(),
                queued_bytes: c.queued_bytes(),
            })
        } else {
            None
        };
        if let Some(err) = refusal {
            drop(guard);
            return fail_later(lp, callback, err);
        }
        let mut pending = Pending {
            id,
            on_reply: Some(callback),
            timer: None,
            retryable: options.retryable,
            bytes: None,
            len,
            attempts: 0,
            replies,
            internal: false,
        };
        let schedule = if ready {
            let start = c.out.len();
            encode_command(&mut c.out, args);
            if options.retryable {
                pending.bytes = Some(Bytes::copy_from_slice(&c.out[start..]));
            }
            c.out_cmds += 1;
            c.inflight.push_back(pending);
            !std::mem::replace(&mut c.flush_queued, true)
        } else {
            let mut b = BytesMut::with_capacity(len);
            encode_command(&mut b, args);
            pending.bytes = Some(b.freeze());
            c.offline_bytes += len;
            c.offline.push_back(pending);
            false
        };
        drop(guard);
        if timeout > 0 {
            let r = self.clone();
            let timer = lp.set_timeout(timeout, move |lp| r.command_timed_out(lp, id));
            let _ = lp.unref(timer); // the socket or the backoff timer holds the loop
            let mut c = self.shared.borrow_mut();
            let slot = match ready {
                true => c.inflight.back_mut(),
                false => c.offline.back_mut(),
            };
            if let Some(p) = slot.filter(|p| p.id == id) {
                p.timer = Some(timer);
            }
        }
        if schedule {
            let r = self.clone();
            lp.set_immediate(move |lp| {
                r.shared.borrow_mut().flush_queued = false;
                r.flush(lp);
            });
        }
        self.update_ref(lp);
    }

    /// A handshake command, written at once on the current socket.
    fn send_internal<A: AsRef<[u8]>>(
        &self,
        lp: &mut Loop,
        args: &[A],
        replies: u32,
        callback: impl FnOnce(&mut Loop, Result<Reply, RedisError>) + 'static,
    ) {
        {
            let mut c = self.shared.borrow_mut();
            c.stats.commands += 1;
            let id = c.next_id;
            c.next_id += 1;
            encode_command(&mut c.out, args);
            c.out_cmds += 1;
            c.inflight.push_back(Pending {
                id,
                on_reply: Some(Box::new(callback)),
                timer: None,
                retryable: false,
                bytes: None,
                len: encoded_len(args),
                attempts: 0,
                replies,
                internal: true,
            });
        }
        self.flush(lp);
    }

    /// Hands `out` to the socket in one write, unless it is above its high-water mark (then
    /// `drain` flushes).
    fn flush(&self, lp: &mut Loop) {
        let (id, chunk) = {
            let mut c = self.shared.borrow_mut();
            let id = match c.state {
                State::Handshake(id) | State::Ready(id) => id,
                _ => return,
            };
            if c.blocked || c.out.is_empty() {
                return;
            }
            c.out_cmds = 0;
            c.stats.writes += 1;
            (id, c.out.split().freeze())
        };
        // Err: the socket is gone; its close callback fails what was in flight.
        if let Ok(false) = lp.tcp_write_bytes(id, chunk) {
            self.shared.borrow_mut().blocked = true;
        }
    }

    fn command_timed_out(&self, lp: &mut Loop, id: u64) {
        let cb = {
            let mut c = self.shared.borrow_mut();
            if let Some(pos) = c.offline.iter().position(|p| p.id == id) {
                let p = c.offline.remove(pos).expect("position is in range");
                c.offline_bytes -= p.len;
                p.on_reply
            } else if let Some(p) = c.inflight.iter_mut().find(|p| p.id == id) {
                p.timer = None;
                p.on_reply.take()
            } else {
                None
            }
        };
        if let Some(cb) = cb {
            cb(lp, Err(RedisError::Timeout));
        }
        self.update_ref(lp);
    }

    // -- connection attempts ----------------------------------------------------------------------

    fn start_attempt(&self, lp: &mut Loop) {
        let (generation, ip, host, port, timeout, path) = {
            let mut c = self.shared.borrow_mut();
            c.generation += 1;
            c.stats.connects += 1;
            c.state = State::Resolving;
            c.parser.reset();
            (
                c.generation,
                c.url.ip,
                c.url.host.clone(),
                c.url.port,
                c.opts.connect_timeout_ms,
                c.url.path.clone(),
            )
        };
        if timeout > 0 {
            let r = self.clone();
            let timer = lp.set_timeout(timeout, move |lp| r.connect_timed_out(lp, generation));
            let _ = lp.unref(timer);
            self.shared.borrow_mut().connect_timer = Some(timer);
        }
        if let Some(path) = path {
            self.open_socket(lp, Target::Unix(path));
            return self.update_ref(lp);
        }
        match ip {
            Some(ip) => self.open_socket(lp, Target::Tcp(SocketAddr::new(ip, port))),
            None => {
                let r = self.clone();
                let answer = move |lp: &mut Loop, result: Result<Vec<_>, dns::DnsError>| {
                    {
                        let c = r.shared.borrow();
                        if c.generation != generation || !matches!(c.state, State::Resolving) {
                            return;
                        }
                    }
                    match result {
                        // As Node's net.connect: the first address the system returns.
                        Ok(ips) => r.open_socket(lp, Target::Tcp(SocketAddr::new(ips[0], port))),
                        Err(e) => r.attempt_failed(lp, None, RedisError::Dns(e.to_string())),
                    }
                };
                if let Err(e) = dns::lookup_all(lp, &host, Family::Any, answer) {
                    self.attempt_failed(lp, None, RedisError::Dns(e.to_string()));
                }
            }
        }
        self.update_ref(lp);
    }

    fn open_socket(&self, lp: &mut Loop, target: Target) {
        let options = SocketOptions {
            no_delay: true, // as ioredis' noDelay default (a no-op on a Unix socket)
            ..SocketOptions::default()
        };
        let r = self.clone();
        let connected = move |lp: &mut Loop, id: TcpId| r.handshake(lp, id);
        let opened = match target {
            Target::Tcp(addr) => lp.tcp_connect(addr, options, connected),
            Target::Unix(path) => lp.pipe_connect(path, options, connected),
        };
        let id = match opened {
            Ok(id) => id,
            Err(e) => {
                let err = RedisError::Connect {
                    kind: e.kind(),
                    message: e.to_string(),
                };
                return self.attempt_failed(lp, None, err);
            }
        };
        {
            let mut c = self.shared.borrow_mut();
            c.state = State::Connecting(id);
            c.socket_refed = true;
            c.blocked = false;
        }
        let r = self.clone();
        let _ = lp.tcp_on_data(id, move |lp, id, data| r.on_data(lp, id, data));
        let r = self.clone();
        let _ = lp.tcp_on_drain(id, move |lp, _id| {
            r.shared.borrow_mut().blocked = false;
            r.flush(lp);
        });
        let r = self.clone();
        let _ = lp.tcp_on_end(id, move |lp, id| {
            let why = RedisError::ConnectionLost("the server closed the connection".into());
            r.lost(lp, id, why);
        });
        let r = self.clone();
        let _ = lp.tcp_on_error(id, move |lp, id, e| {
            let connecting = matches!(r.shared.borrow().state, State::Connecting(_));
            let err = match connecting {
                true => RedisError::Connect {
                    kind: e.kind(),
                    message: e.to_string(),
                },
                false => RedisError::ConnectionLost(e.to_string()),
            };
            r.lost(lp, id, err);
        });
        let r = self.clone();
        let _ = lp.tcp_on_close(id, move |lp, id, _had_error| {
            r.lost(lp, id, RedisError::ConnectionLost("socket closed".into()));
        });
    }

    fn connect_timed_out(&self, lp: &mut Loop, generation: u64) {
        let socket = {
            let mut c = self.shared.borrow_mut();
            if c.generation != generation {
                return;
            }
            c.connect_timer = None;
            match c.state {
                State::Resolving => None,
                State::Connecting(id) | State::Handshake(id) => Some(id),
                _ => return,
            }
        };
        match socket {
            Some(id) => self.lost(lp, id, RedisError::ConnectTimeout),
            None => self.attempt_failed(lp, None, RedisError::ConnectTimeout),
        }
    }

    // -- handshake --------------------------------------------------------------------------------

    fn handshake(&self, lp: &mut Loop, id: TcpId) {
        let first = {
            let mut c = self.shared.borrow_mut();
            if c.socket() != Some(id) {
                return;
            }
            c.state = State::Handshake(id);
            c.resp3 = false;
            match c.opts.resp3 {
                true => Step::Hello,
                false => Step::Auth,
            }
        };
        self.step(lp, id, first);
    }

    /// Runs handshake step `step` on socket `id`: sends its command (the reply runs the next
    /// step) or, when there is nothing to send, goes on to the next step at once.
    fn step(&self, lp: &mut Loop, id: TcpId, step: Step) {
        let (url, name, subs) = {
            let c = self.shared.borrow();
            if c.socket() != Some(id) {
                return;
            }
            let subs = c.subs.as_ref().map(|s| match step {
                Step::Subscribe => s.channel_names(),
                _ => s.pattern_names(),
            });
            (c.url.clone(), c.opts.client_name.clone(), subs)
        };
        let r = self.clone();
        let next = move |lp: &mut Loop, result: Result<Reply, RedisError>, on_ok: Step| {
            if r.shared.borrow().socket() != Some(id) {
                return; // this connection is gone; its loss is handled elsewhere
            }
            match result {
                Ok(_) => r.step(lp, id, on_ok),
                Err(e) => r.lost(lp, id, e),
            }
        };
        let mut args: Vec<Vec<u8>> = Vec::new();
        match step {
            Step::Hello => {
                args.extend([b"HELLO".to_vec(), b"3".to_vec()]);
                if let Some(pass) = &url.password {
                    let user = url.username.as_deref().unwrap_or("default");
                    args.extend([b"AUTH".to_vec(), user.into(), pass.clone().into()]);
                }
                if let Some(name) = &name {
                    args.extend([b"SETNAME".to_vec(), name.clone().into()]);
                }
                let r = self.clone();
                self.send_internal(lp, &args, 1, move |lp, result| match result {
                    Ok(_) => {
                        r.shared.borrow_mut().resp3 = true;
                        next(lp, Ok(Reply::Nil), Step::Select);
                    }
                    // Redis < 6 (unknown command) or a server without RESP3 (NOPROTO).
                    Err(RedisError::Server(msg))
                        if msg.starts_with("NOPROTO") || msg.contains("unknown command") =>
                    {
                        next(lp, Ok(Reply::Nil), Step::Auth)
                    }
                    Err(e) => next(lp, Err(e), Step::Select),
                });
                return;
            }
            Step::Auth => {
                if let Some(pass) = &url.password {
                    args.push(b"AUTH".to_vec());
                    if let Some(user) = &url.username {
                        args.push(user.clone().into());
                    }
                    args.push(pass.clone().into());
                }
            }
            Step::SetName => {
                if let Some(name) = &name {
                    args.extend([b"CLIENT".to_vec(), b"SETNAME".to_vec(), name.clone().into()]);
                }
            }
            Step::Select => {
                if url.db != 0 {
                    args.extend([b"SELECT".to_vec(), url.db.to_string().into()]);
                }
            }
            Step::Subscribe | Step::PSubscribe => {
                if let Some(names) = subs.filter(|n| !n.is_empty()) {
                    let verb: &[u8] = match step {
                        Step::Subscribe => b"SUBSCRIBE",
                        _ => b"PSUBSCRIBE",
                    };
                    args.push(verb.to_vec());
                    args.extend(names.iter().map(|n| n.to_vec()));
                }
            }
            Step::Ready => return self.became_ready(lp, id),
        }
        let following = match step {
            Step::Hello => Step::Select,
            Step::Auth => Step::SetName,
            Step::SetName => Step::Select,
            Step::Select => Step::Subscribe,
            Step::Subscribe => Step::PSubscribe,
            Step::PSubscribe | Step::Ready => Step::Ready,
        };
        if args.is_empty() {
            return self.step(lp, id, following);
        }
        let replies = match step {
            Step::Subscribe | Step::PSubscribe => (args.len() - 1) as u32,
            _ => 1,
        };
        self.send_internal(lp, &args, replies, move |lp, result| {
            next(lp, result, following)
        });
    }

    fn became_ready(&self, lp: &mut Loop, id: TcpId) {
        {
            let mut guard = self.shared.borrow_mut();
            let c = &mut *guard;
            c.state = State::Ready(id);
            c.attempt = 0;
            if let Some(t) = c.connect_timer.take() {
                let _ = lp.clear_timeout(t);
            }
            // The offline queue goes out first, in order, before anything issued from here on.
            c.offline_bytes = 0;
            while let Some(mut p) = c.offline.pop_front() {
                let bytes = p.bytes.take().unwrap_or_default();
                c.out.extend_from_slice(&bytes);
                if p.retryable {
                    p.bytes = Some(bytes);
                }
                c.out_cmds += 1;
                c.inflight.push_back(p);
            }
        }
        self.flush(lp);
        self.emit(lp, |e| &mut e.ready);
        self.update_ref(lp);
    }

    // -- reading ----------------------------------------------------------------------------------

    fn on_data(&self, lp: &mut Loop, id: TcpId, data: &[u8]) {
        {
            let mut c = self.shared.borrow_mut();
            if c.socket() != Some(id) {
                return;
            }
            c.parser.feed(data);
        }
        loop {
            enum Action {
                Reply(Option<ReplyCallback>, Result<Reply, RedisError>),
                Message(MessageCallback, pubsub::Message),
                Lost(RedisError),
            }
            let action = {
                let mut guard = self.shared.borrow_mut();
                let c = &mut *guard;
                if c.socket() != Some(id) {
                    return;
                }
                let reply = match c.parser.next() {
                    Ok(None) => break,
                    Ok(Some(reply)) => reply,
                    Err(e) => {
                        drop(guard);
                        return self.lost(lp, id, RedisError::Protocol(e));
                    }
                };
                c.stats.replies += 1;
                let incoming = match &c.subs {
                    Some(subs) => subs.classify(reply),
                    None => match reply {
                        Reply::Push(_) => {
                            log::debug!("redis: out-of-band push ignored");
                            continue;
                        }
                        other => Incoming::Reply(other),
                    },
                };
                match incoming {
                    Incoming::Message(cb, msg) => Action::Message(cb, msg),
                    Incoming::Ignored => continue,
                    Incoming::Reply(reply) => match c.inflight.front_mut() {
                        None => Action::Lost(RedisError::UnexpectedReply(
                            "a reply arrived with no command waiting".into(),
                        )),
                        Some(front) if front.replies > 1 => {
                            front.replies -= 1;
                            continue;
                        }
                        Some(_) => {
                            let p = c.inflight.pop_front().expect("front exists");
                            if let Some(t) = p.timer {
                                let _ = lp.clear_timeout(t);
                            }
                            Action::Reply(p.on_reply, reply_result(reply))
                        }
                    },
                }
            };
            match action {
                Action::Reply(Some(cb), result) => cb(lp, result),
                Action::Reply(None, _) => {} // timed out earlier: dropped
                Action::Message(cb, msg) => (cb.borrow_mut())(lp, &msg),
                Action::Lost(e) => return self.lost(lp, id, e),
            }
        }
        self.update_ref(lp);
    }

    // -- losing a connection --------------------------------------------------------------------

    /// Socket `id` is gone or must go (`err` says why): fail or requeue what was in flight,
    /// report, then reconnect or end. Does nothing if `id` is no longer the current socket.
    fn lost(&self, lp: &mut Loop, id: TcpId, err: RedisError) {
        if self.shared.borrow().socket() != Some(id) {
            return;
        }
        let _ = lp.tcp_destroy(id);
        self.attempt_failed(lp, Some(id), err);
    }

    /// The current attempt or connection ended with `err`.
    fn attempt_failed(&self, lp: &mut Loop, socket: Option<TcpId>, err: RedisError) {
        let mut failed: Vec<(ReplyCallback, RedisError)> = Vec::new();
        {
            let mut guard = self.shared.borrow_mut();
            let c = &mut *guard;
            c.state = State::Resolving; // placeholder until reconnect/end decides
            if let Some(t) = c.connect_timer.take() {
                let _ = lp.clear_timeout(t);
            }
            c.parser.reset();
            c.blocked = false;
            let lost_msg = match &err {
                RedisError::ConnectionLost(m) => m.clone(),
                other => other.to_string(),
            };
            let unwritten_from = c.inflight.len().saturating_sub(c.out_cmds);
            let mut out = std::mem::take(&mut c.out);
            c.out_cmds = 0;
            let mut requeue = VecDeque::new();
            for (i, mut p) in std::mem::take(&mut c.inflight).into_iter().enumerate() {
                let unwritten = i >= unwritten_from;
                let chunk = unwritten.then(|| out.split_to(p.len.min(out.len())).freeze());
                if p.internal || p.on_reply.is_none() {
                    if let Some(t) = p.timer.take() {
                        let _ = lp.clear_timeout(t);
                    }
                    if let Some(cb) = p.on_reply.take() {
                        failed.push((cb, RedisError::ConnectionLost(lost_msg.clone())));
                    }
                    continue;
                }
                if let Some(chunk) = chunk {
                    p.bytes = Some(chunk);
                } else if !(p.retryable && p.bytes.is_some()) {
                    if let Some(t) = p.timer.take() {
                        let _ = lp.clear_timeout(t);
                    }
                    let cb = p.on_reply.take().expect("checked above");
                    failed.push((cb, RedisError::ConnectionLost(lost_msg.clone())));
                    continue;
                }
                c.offline_bytes += p.len;
                requeue.push_back(p);
            }
            requeue.extend(std::mem::take(&mut c.offline));
            c.offline = requeue;
        }
        for (cb, e) in failed {
            cb(lp, Err(e));
        }
        // A connection that closed is reported by `close`, not as an error (as ioredis).
        let quiet = matches!(&err, RedisError::ConnectionLost(_));
        if !(self.shared.borrow().closing || quiet) {
            self.emit_error(lp, &err);
        }
        if socket.is_some() {
            self.emit(lp, |e| &mut e.close);
        }
        self.schedule_reconnect(lp);
    }

    fn schedule_reconnect(&self, lp: &mut Loop) {
        let (delay, expired) = {
            let mut c = self.shared.borrow_mut();
            if c.closing || matches!(c.state, State::Ended) {
                (None, Vec::new())
            } else {
                c.attempt += 1;
                let delay = c.opts.reconnect.delay_ms(c.attempt);
                // Commands that waited through too many failed attempts give up.
                let mut expired = Vec::new();
                if let (Some(max), Some(_)) = (c.opts.max_retries_per_request, delay) {
                    let mut keep = VecDeque::new();
                    for mut p in std::mem::take(&mut c.offline) {
                        p.attempts += 1;
                        if p.attempts > max {
                            c.offline_bytes -= p.len;
                            if let Some(t) = p.timer.take() {
                                let _ = lp.clear_timeout(t);
                            }
                            if let Some(cb) = p.on_reply.take() {
                                expired.push((cb, RedisError::MaxRetries(max)));
                            }
                        } else {
                            keep.push_back(p);
                        }
                    }
                    c.offline = keep;
                }
                (delay, expired)
            }
        };
        for (cb, e) in expired {
            cb(lp, Err(e));
        }
        let Some(delay) = delay else {
            return self.end(lp);
        };
        let r = self.clone();
        let timer = lp.set_timeout(delay, move |lp| r.start_attempt(lp));
        self.shared.borrow_mut().state = State::Backoff(timer);
        self.update_ref(lp);
        let taken = self.shared.borrow_mut().events.reconnecting.take();
        if let Some(mut cb) = taken {
            cb(lp, delay);
            let mut c = self.shared.borrow_mut();
            if c.events.reconnecting.is_none() {
                c.events.reconnecting = Some(cb);
            }
        }
    }

    /// No more connections: fail everything queued with [`RedisError::Closed`].
    fn end(&self, lp: &mut Loop) {
        let queued: Vec<Pending> = {
            let mut c = self.shared.borrow_mut();
            if matches!(c.state, State::Ended) {
                return;
            }
            if let State::Backoff(t) = c.state {
                let _ = lp.clear_timeout(t);
            }
            c.state = State::Ended;
            c.offline_bytes = 0;
            let mut all: Vec<Pending> = c.inflight.drain(..).collect();
            all.extend(c.offline.drain(..));
            all
        };
        for mut p in queued {
            if let Some(t) = p.timer.take() {
                let _ = lp.clear_timeout(t);
            }
            if let Some(cb) = p.on_reply.take() {
                cb(lp, Err(RedisError::Closed));
            }
        }
        self.emit(lp, |e| &mut e.end);
        // The client is over: drop the user's callbacks, which usually hold clones of this
        // client (an Rc cycle that would otherwise keep it in memory).
        let (events, subs) = {
            let mut c = self.shared.borrow_mut();
            let events = std::mem::take(&mut c.events);
            let subs = c.subs.as_mut().map(std::mem::take);
            (events, subs)
        };
        drop((events, subs));
    }

    // -- closing ----------------------------------------------------------------------------------

    /// Sends `QUIT` after the commands already issued, and does not reconnect; `callback`
    /// runs with its reply. Not connected: ends at once (queued commands fail with
    /// [`RedisError::Closed`]).
    pub fn quit(
        &self,
        lp: &mut Loop,
        callback: impl FnOnce(&mut Loop, Result<Reply, RedisError>) + 'static,
    ) {
        let connected = {
            let mut c = self.shared.borrow_mut();
            c.closing = true;
            matches!(c.state, State::Ready(_))
        };
        if connected {
            self.cmd(lp, &["QUIT"], callback);
        } else {
            self.disconnect(lp);
            let ok = Reply::Simple(Bytes::from_static(b"OK"));
            lp.set_immediate(move |lp| callback(lp, Ok(ok)));
        }
    }

    /// Closes the connection now (ioredis' `disconnect`): commands in flight and queued fail
    /// with [`RedisError::Closed`]; no reconnect.
    pub fn disconnect(&self, lp: &mut Loop) {
        let socket = {
            let mut c = self.shared.borrow_mut();
            c.closing = true;
            c.socket()
        };
        if let Some(id) = socket {
            let _ = lp.tcp_destroy(id);
            self.shared.borrow_mut().state = State::Resolving;
            self.emit(lp, |e| &mut e.close);
        }
        self.end(lp);
    }

    // -- events -----------------------------------------------------------------------------------

    /// Calls `callback` each time a connection becomes ready (after the handshake and
    /// resubscribe, after the offline queue was written).
    pub fn on_ready(&self, callback: impl FnMut(&mut Loop) + 'static) {
        self.shared.borrow_mut().events.ready = Some(Box::new(callback));
    }

    /// Calls `callback` with each connection error (refused, DNS, timeout, protocol error,
    /// reset, a failed `AUTH`). Without it errors are logged at warn level.
    pub fn on_error(&self, callback: impl FnMut(&mut Loop, &RedisError) + 'static) {
        self.shared.borrow_mut().events.error = Some(Box::new(callback));
    }

    /// Calls `callback` each time an established connection closes.
    pub fn on_close(&self, callback: impl FnMut(&mut Loop) + 'static) {
        self.shared.borrow_mut().events.close = Some(Box::new(callback));
    }

    /// Calls `callback(lp, delay_ms)` when a reconnect is scheduled.
    pub fn on_reconnecting(&self, callback: impl FnMut(&mut Loop, u64) + 'static) {
        self.shared.borrow_mut().events.reconnecting = Some(Box::new(callback));
    }

    /// Calls `callback` once the client has ended (quit, disconnect, or the reconnect
    /// strategy gave up).
    pub fn on_end(&self, callback: impl FnMut(&mut Loop) + 'static) {
        self.shared.borrow_mut().events.end = Some(Box::new(callback));
    }

    fn emit(&self, lp: &mut Loop, slot: fn(&mut Events) -> &mut Option<EventCallback>) {
        let cb = slot(&mut self.shared.borrow_mut().events).take();
        if let Some(mut cb) = cb {
            cb(lp);
            let mut c = self.shared.borrow_mut();
            let s = slot(&mut c.events);
            if s.is_none() {
                *s = Some(cb);
            }
        }
    }

    fn emit_error(&self, lp: &mut Loop, err: &RedisError) {
        let cb = self.shared.borrow_mut().events.error.take();
        match cb {
            Some(mut cb) => {
                cb(lp, err);
                let mut c = self.shared.borrow_mut();
                if c.events.error.is_none() {
                    c.events.error = Some(cb);
                }
            }
            None => log::warn!("redis: unhandled connection error: {err}"),
        }
    }

    // -- ref / unref ------------------------------------------------------------------------------

    /// Lets the loop exit while the client is idle (no command in flight or queued); while
    /// commands are pending it still holds the loop. Idempotent.
    pub fn unref(&self, lp: &mut Loop) {
        self.shared.borrow_mut().refed = false;
        self.update_ref(lp);
    }

    /// Makes the client keep the loop alive again (the default). Idempotent.
    pub fn ref_(&self, lp: &mut Loop) {
        self.shared.borrow_mut().refed = true;
        self.update_ref(lp);
    }

    fn update_ref(&self, lp: &mut Loop) {
        let mut c = self.shared.borrow_mut();
        let want = c.refed || !c.inflight.is_empty() || !c.offline.is_empty();
        let handle: oneloop_runtime::Handle = match c.state {
            State::Connecting(id) | State::Handshake(id) | State::Ready(id)
                if c.socket_refed != want =>
            {
                c.socket_refed = want;
                id.into()
            }
            State::Backoff(t) => t.into(),
            _ => return,
        };
        drop(c);
        let _ = match want {
            true => lp.ref_(handle),
            false => lp.unref(handle),
        };
    }

    // -- introspection ----------------------------------------------------------------------------

    /// Whether the connection is ready (handshake done).
    pub fn is_ready(&self) -> bool {
        matches!(self.shared.borrow().state, State::Ready(_))
    }

    /// Whether the client has ended (no more reconnects; commands fail at once).
    pub fn is_ended(&self) -> bool {
        matches!(self.shared.borrow().state, State::Ended)
    }

    /// Whether the current connection speaks RESP3 (`HELLO 3` accepted).
    pub fn is_resp3(&self) -> bool {
        self.shared.borrow().resp3
    }

    /// Commands waiting in the offline queue.
    pub fn offline_len(&self) -> usize {
        self.shared.borrow().offline.len()
    }

    /// Commands written and awaiting their reply.
    pub fn in_flight(&self) -> usize {
        self.shared.borrow().inflight.len()
    }

    /// Counters since the client was created.
    pub fn stats(&self) -> RedisStats {
        self.shared.borrow().stats
    }

    /// The current socket, if connected or connecting.
    pub fn socket(&self) -> Option<TcpId> {
        self.shared.borrow().socket()
    }
}

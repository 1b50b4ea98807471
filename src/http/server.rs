//! The server: listening, the connection registry, the deadline sweep, graceful close.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::rc::Rc;
use std::time::SystemTime;

use bytes::{Bytes, BytesMut};
use oneloop_runtime::{Loop, ServerId, TcpId, TimerId};

use super::budget::BodyBudget;
use super::config::ServerConfig;
use super::conn::{self, Conn, ConnRef, Phase};
use super::date::{DateCache, DATE_LEN};

/// `Date: ` + IMF-fixdate + CRLF.
pub(crate) const DATE_LINE_LEN: usize = DATE_LEN + 8;
use super::conn::Exchange;
use super::parse::{HeaderSpan, Method, RequestHead};
use super::pool::{BoxPool, Pool, VecPool};
use super::request::Request;
use super::response::{HeadCache, Response, StaticMemo};

/// The request handler: `|lp, req, res| ..` (Node's `'request'` listener).
pub type Handler = Box<dyn FnMut(&mut Loop, Request, Response)>;
/// The upgrade handler: the request, the raw socket (now yours) and the bytes already read
/// past the head (Node's `'upgrade'` listener).
pub type UpgradeHandler = Box<dyn FnMut(&mut Loop, Request, TcpId, Bytes)>;
/// Decides whether an upgrade request is handed to the upgrade handler (Node 24's
/// `shouldUpgradeCallback`); `false` serves it as an ordinary request.
type ShouldUpgrade = Box<dyn Fn(&RequestHead) -> bool>;
type ClosingHook = Box<dyn FnMut(&mut Loop)>;

pub(crate) struct Shared {
    pub(crate) config: ServerConfig,
    /// `Connection: keep-alive\r\nKeep-Alive: timeout=N\r\n\r\n` (with the CRLF that ends the
    /// head: one copy per response), formatted once.
    pub(crate) keep_alive_end: Vec<u8>,
    handler: RefCell<Handler>,
    upgrade: RefCell<Option<UpgradeHandler>>,
    should_upgrade: RefCell<Option<ShouldUpgrade>>,
    /// Sockets handed to the upgrade handler (maybe closed since: ids are generation-checked, so
    /// a stale one is skipped); `close_all_connections` destroys the open ones.
    upgraded: RefCell<Vec<TcpId>>,
    closing_hooks: RefCell<Vec<ClosingHook>>,
    conns: RefCell<HashMap<TcpId, ConnRef>>,
    date: RefCell<DateCache>,
    /// `date`'s unix second, copied out by the date timer: read per response without a
    /// borrow (valid while the timer runs; without it `date_secs` refreshes the cache).
    date_second: Cell<Option<u64>>,
    /// The last response head built from `'static` fields only, for the next one like it.
    pub(crate) head_cache: RefCell<HeadCache>,
    /// `'static` header names and values already validated (see `StaticMemo`).
    pub(crate) static_memo: StaticMemo,
    tcp: Cell<Option<ServerId>>,
    local: Cell<Option<SocketAddr>>,
    closing: Cell<bool>,
    sweep: Cell<Option<TimerId>>,
    date_timer: Cell<Option<TimerId>>,
    /// Empty request field lists, reused head after head.
    pub(crate) request_fields: VecPool<HeaderSpan>,
    /// Empty output buffers: a connection hands its buffer back when it goes idle.
    pub(crate) out_buffers: Pool<BytesMut>,
    /// Empty input buffers: likewise, handed back by a connection that goes idle with no
    /// unparsed input.
    pub(crate) in_buffers: Pool<BytesMut>,
    /// Exchange boxes: a connection takes one per request and gives it back when it ends; each
    /// keeps its (emptied) response header list, reused response after response.
    pub(crate) exchanges: BoxPool<Exchange>,
    /// Request body bytes buffered by `Request::collect`, all connections together.
    pub(crate) body_budget: Rc<BodyBudget>,
}

impl Shared {
    pub(crate) fn is_closing(&self) -> bool {
        self.closing.get()
    }

    /// The current IMF-fixdate, re-formatted at most once per second.
    /// The cached IMF-fixdate: no clock read per response. A timer refreshes it at every
    /// second boundary while the server listens (Node's `utcDate` cache does the same); before
    /// `listen` (or after `close`) it is refreshed on use.
    pub(crate) fn date(&self) -> [u8; DATE_LEN] {
        let mut cache = self.date.borrow_mut();
        if self.date_timer.get().is_none() {
            cache.update(SystemTime::now());
        }
        let mut out = [0u8; DATE_LEN];
        out.copy_from_slice(cache.as_bytes());
        out
    }

    /// The unix second of the cached date (refreshed first when no timer does it): a head
    /// cached with the same second has the same `Date` line.
    #[inline]
    pub(crate) fn date_secs(&self) -> Option<u64> {
        if self.date_timer.get().is_some() {
            return self.date_second.get();
        }
        let mut cache = self.date.borrow_mut();
        cache.update(SystemTime::now());
        cache.secs()
    }

    /// `Date: <IMF-fixdate>\r\n` from the same cache: the field line a response copies in one
    /// piece.
    pub(crate) fn date_line(&self) -> [u8; DATE_LINE_LEN] {
        let mut line = [0u8; DATE_LINE_LEN];
        line[..6].copy_from_slice(b"Date: ");
        line[6..6 + DATE_LEN].copy_from_slice(&self.date());
        line[6 + DATE_LEN..].copy_from_slice(b"\r\n");
        line
    }

    pub(crate) fn call_handler(&self, lp: &mut Loop, req: Request, res: Response) {
        // Called in place (nothing replaces the handler): borrowed for the call, not taken out
        // of its cell and put back.
        match self.handler.try_borrow_mut() {
            Ok(mut handler) => handler(lp, req, res),
            Err(_) => {
                let _req = req;
                // Only reachable if a handler re-enters the loop (e.g. calls run_once).
                log::error!("http: handler re-entered; answering 503");
                res.status(503).end("");
            }
        }
    }

    pub(crate) fn has_upgrade_handler(&self) -> bool {
        self.upgrade.borrow().is_some()
    }

    /// Whether this upgrade request leaves HTTP: CONNECT always does (it is never an ordinary
    /// request; without a handler the socket is closed, as Node does). Any other upgrade only
    /// when an upgrade handler is set, the server is not closing and `should_upgrade` (if
    /// set) accepts it; otherwise the `Upgrade` offer is ignored (RFC 9110 §7.8) and the
    /// request is served as ordinary HTTP.
    pub(crate) fn takes_upgrade(&self, head: &RequestHead) -> bool {
        if head.method() == Method::Connect {
            return true;
        }
        self.has_upgrade_handler()
            && !self.is_closing()
            && self
                .should_upgrade
                .borrow()
                .as_ref()
                .is_none_or(|should| should(head))
    }

    /// Records a socket handed to the upgrade handler. Closed ones are pruned whenever the list
    /// doubles, so it stays within twice the number of open upgraded sockets.
    pub(crate) fn track_upgraded(&self, lp: &Loop, id: TcpId) {
        let mut list = self.upgraded.borrow_mut();
        if list.len() >= 64 && list.len() == list.capacity() {
            list.retain(|&id| lp.tcp_is_open(id));
        }
        list.push(id);
    }

    pub(crate) fn call_upgrade(&self, lp: &mut Loop, req: Request, id: TcpId, rest: Bytes) {
        let taken = self.upgrade.borrow_mut().take();
        match taken {
            Some(mut cb) => {
                cb(lp, req, id, rest);
                let mut slot = self.upgrade.borrow_mut();
                if slot.is_none() {
                    *slot = Some(cb);
                }
            }
            None => {
                let _ = lp.tcp_destroy(id);
            }
        }
    }

    /// Stops tracking a connection (closed, or handed to an upgrade handler).
    pub(crate) fn forget(&self, id: TcpId) {
        self.conns.borrow_mut().remove(&id);
    }
}

/// An HTTP/1.1 server on a [`Loop`] (Node's `http.Server`). Cheap to clone.
#[derive(Clone)]
pub struct Server {
    shared: Rc<Shared>,
}

/// Creates a server with Node's defaults (Node's `http.createServer(handler)`).
///
/// ```no_run
/// use oneloop::http;
/// use oneloop::runtime::Loop;
/// let mut lp = Loop::new()?;
/// let server = http::create_server(&mut lp, |_lp, _req, res| {
///     res.set_header("content-type", "text/plain");
///     res.end("Hello, World!");
/// });
/// server.listen(&mut lp, "127.0.0.1:3000", |_lp, addr| println!("listening on {addr}"))?;
/// lp.run()?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn create_server(
    lp: &mut Loop,
    handler: impl FnMut(&mut Loop, Request, Response) + 'static,
) -> Server {
    create_server_with(lp, ServerConfig::default(), handler)
}

/// Creates a server with explicit limits and timeouts.
pub fn create_server_with(
    _lp: &mut Loop,
    mut config: ServerConfig,
    handler: impl FnMut(&mut Loop, Request, Response) + 'static,
) -> Server {
    // The server decides when to end a connection after the peer's FIN (it may still owe a
    // response), as Node's http server does with allowHalfOpen.
    config.listen.socket.allow_half_open = true;
    // As Node: `timeout` in whole seconds, `max` the per-socket limit when one is set.
    let max = match config.max_requests_per_socket {
        0 => String::new(),
        n => format!(", max={n}"),
    };
    let keep_alive_end = format!(
        "Connection: keep-alive\r\nKeep-Alive: timeout={}{max}\r\n\r\n",
        config.keep_alive_timeout_ms / 1000
    )
    .into_bytes();
    let body_budget = Rc::new(BodyBudget::new(config.max_buffered_body_bytes));
    Server {
        shared: Rc::new(Shared {
            body_budget,
            config,
            keep_alive_end,
            handler: RefCell::new(Box::new(handler)),
            upgrade: RefCell::new(None),
            should_upgrade: RefCell::new(None),
            upgraded: RefCell::new(Vec::new()),
            closing_hooks: RefCell::new(Vec::new()),
            conns: RefCell::new(HashMap::new()),
            date: RefCell::new(DateCache::new()),
            date_second: Cell::new(None),
            head_cache: RefCell::new(HeadCache::default()),
            static_memo: StaticMemo::default(),
            tcp: Cell::new(None),
            local: Cell::new(None),
            closing: Cell::new(false),
            sweep: Cell::new(None),
            date_timer: Cell::new(None),
            request_fields: VecPool::new(super::conn::MAX_KEPT_FIELDS),
            out_buffers: Pool::new(8 * 1024),
            in_buffers: Pool::new(16 * 1024),
            exchanges: BoxPool::new(),
        }),
    }
}

impl Server {
    /// Listens on `addr` (e.g. `"127.0.0.1:3000"`, port 0 for any free port). `on_listening`
    /// runs from the next tick with the bound address, which is also returned.
    ///
    /// # Errors
    /// When the address does not resolve or cannot be bound.
    pub fn listen(
        &self,
        lp: &mut Loop,
        addr: impl ToSocketAddrs,
        on_listening: impl FnOnce(&mut Loop, SocketAddr) + 'static,
    ) -> io::Result<SocketAddr> {
        let addr = addr
            .to_socket_addrs()?
            .next()
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no address"))?;
        let shared = Rc::clone(&self.shared);
        let options = self.shared.config.listen.clone();
        let id = lp.tcp_listen(addr, options, move |lp, sock| {
            accept(lp, &shared, sock);
        })?;
        let local = lp.tcp_server_addr(id).map_err(io::Error::other)?;
        self.shared.local.set(Some(local));
        self.serve(lp, id);
        lp.next_tick(move |lp| on_listening(lp, local));
        Ok(local)
    }

    /// Listens on `addr` speaking TLS with `tls` (HTTPS; Node's `https.createServer(options)
    /// .listen(..)`): the same server, limits and upgrade hook (`wss://`) as over plain TCP.
    /// Connections reach the server once their handshake has completed; handshake failures
    /// go to [`Loop::tcp_server_on_tls_error`] (debug-logged unless you register there, via
    /// [`Server::tcp_id`]).
    ///
    /// # Errors
    /// When the address does not resolve or cannot be bound.
    pub fn listen_tls(
        &self,
        lp: &mut Loop,
        addr: impl ToSocketAddrs,
        tls: oneloop_runtime::TlsServerOptions,
        on_listening: impl FnOnce(&mut Loop, SocketAddr) + 'static,
    ) -> io::Result<SocketAddr> {
        let addr = addr
            .to_socket_addrs()?
            .next()
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no address"))?;
        let shared = Rc::clone(&self.shared);
        let mut options = self.shared.config.listen.clone();
        options.tls = Some(tls);
        let id = lp.tcp_listen(addr, options, move |lp, sock| {
            accept(lp, &shared, sock);
        })?;
        let local = lp.tcp_server_addr(id).map_err(io::Error::other)?;
        self.shared.local.set(Some(local));
        self.serve(lp, id);
        lp.next_tick(move |lp| on_listening(lp, local));
        Ok(local)
    }

    /// Listens on the Unix domain socket `path` (Node's `server.listen(path)`): the same
    /// server, connections and limits as over TCP (requests have no `remote_addr`). An
    /// existing file at `path` is `AddrInUse` (remove a stale one yourself, as in Node);
    /// closing the server removes the file. `on_listening` runs from the next tick.
    ///
    /// # Errors
    /// When the socket cannot be bound (see [`Loop::pipe_listen`]).
    pub fn listen_path(
        &self,
        lp: &mut Loop,
        path: impl AsRef<std::path::Path>,
        on_listening: impl FnOnce(&mut Loop) + 'static,
    ) -> io::Result<()> {
        let shared = Rc::clone(&self.shared);
        let options = self.shared.config.listen.clone();
        let id = lp.pipe_listen(path, options, move |lp, sock| {
            accept(lp, &shared, sock);
        })?;
        self.serve(lp, id);
        lp.next_tick(on_listening);
        Ok(())
    }

    /// Starts the per-server timers for a listening server (TCP or pipe).
    fn serve(&self, lp: &mut Loop, id: ServerId) {
        self.shared.tcp.set(Some(id));
        let shared = Rc::clone(&self.shared);
        let sweep = lp.set_interval(self.shared.config.check_interval_ms, move |lp| {
            sweep_deadlines(lp, &shared);
        });
        let _ = lp.unref(sweep);
        self.shared.sweep.set(Some(sweep));
        refresh_date(lp, &self.shared);
    }

    /// Handles upgrade requests (`Connection: upgrade` with an `Upgrade` field) and CONNECT
    /// (Node's `'upgrade'` and `'connect'` listeners): the callback owns the socket from then
    /// on. Without [`Server::should_upgrade`] every upgrade request is handed over (Node 24's
    /// default). Without an upgrade handler an `Upgrade` offer is ignored and the request is
    /// served as ordinary HTTP (RFC 9110 §7.8: a server may ignore it; Node does the same);
    /// CONNECT then closes the connection.
    ///
    /// # Pitfalls
    /// Sockets handed over are no longer the server's connections: `close` does not wait for
    /// an idle moment on them. Register [`Server::on_closing`] to end them on a graceful close
    /// (the WebSocket layer sends 1001); `close_all_connections` destroys them.
    pub fn on_upgrade(&self, callback: impl FnMut(&mut Loop, Request, TcpId, Bytes) + 'static) {
        *self.shared.upgrade.borrow_mut() = Some(Box::new(callback));
    }

    /// Chooses which upgrade requests go to the [`Server::on_upgrade`] handler (Node 24's
    /// `shouldUpgradeCallback`): those for which `predicate` returns false (an `h2c` offer, a
    /// path without a WebSocket route) are served as ordinary requests by the request
    /// handler. CONNECT is not asked about.
    ///
    /// ```no_run
    /// # let mut lp = oneloop::runtime::Loop::new()?;
    /// # let server = oneloop::http::create_server(&mut lp, |_lp, _req, res| res.end(""));
    /// server.should_upgrade(|head| {
    ///     head.path() == "/ws"
    ///         && head.header("upgrade").is_some_and(|v| v.eq_ignore_ascii_case(b"websocket"))
    /// });
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn should_upgrade(&self, predicate: impl Fn(&RequestHead) -> bool + 'static) {
        *self.shared.should_upgrade.borrow_mut() = Some(Box::new(predicate));
    }

    /// Runs `hook` when a graceful [`Server::close`] starts: the place for an upgrade handler
    /// to end the connections it owns (the WebSocket layer closes each with 1001 "going away").
    /// Hooks run in registration order.
    pub fn on_closing(&self, hook: impl FnMut(&mut Loop) + 'static) {
        self.shared.closing_hooks.borrow_mut().push(Box::new(hook));
    }

    /// The bound address, once listening.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.shared.local.get()
    }

    /// The listening socket's id, once listening.
    pub fn tcp_id(&self) -> Option<ServerId> {
        self.shared.tcp.get()
    }

    /// Open connections.
    pub fn connections(&self) -> usize {
        self.shared.conns.borrow().len()
    }

    /// Request body bytes held by [`Request::collect`] right now, all connections together
    /// (bounded by [`ServerConfig::max_buffered_body_bytes`]).
    pub fn buffered_body_bytes(&self) -> u64 {
        self.shared.body_budget.used()
    }

    /// Graceful close (Node's `server.close(cb)`): stop accepting, close idle keep-alive
    /// connections now, let in-flight requests finish with `Connection: close`; `callback` runs
    /// once the last connection has closed.
    pub fn close(&self, lp: &mut Loop, callback: impl FnOnce(&mut Loop) + 'static) {
        self.shared.closing.set(true);
        let shared = Rc::clone(&self.shared);
        let done = move |lp: &mut Loop| {
            if let Some(t) = shared.sweep.take() {
                let _ = lp.clear_interval(t);
            }
            if let Some(t) = shared.date_timer.take() {
                let _ = lp.clear_timeout(t);
            }
            callback(lp);
        };
        match self.shared.tcp.get() {
            Some(id) if lp.tcp_server_is_listening(id) => {
                let _ = lp.tcp_server_close(id, done);
            }
            _ => lp.next_tick(done),
        }
        for c in self.snapshot() {
            c.borrow_mut().close_after = true;
        }
        self.close_idle_connections(lp);
        let mut hooks = std::mem::take(&mut *self.shared.closing_hooks.borrow_mut());
        for hook in &mut hooks {
            hook(lp);
        }
        let mut slot = self.shared.closing_hooks.borrow_mut();
        hooks.append(&mut slot);
        *slot = hooks;
    }

    /// Closes every connection that has no request in progress (Node's
    /// `closeIdleConnections`).
    pub fn close_idle_connections(&self, lp: &mut Loop) {
        for c in self.snapshot() {
            let (idle, id) = {
                let c = c.borrow();
                (c.is_idle(), c.id)
            };
            if idle {
                c.borrow_mut().phase = Phase::Closing;
                let _ = lp.tcp_destroy(id);
            }
        }
    }

    /// Closes every connection now, in-flight or not (Node's `closeAllConnections`), and
    /// every socket handed to the upgrade handler (Node leaves those alone; then a drain
    /// deadline could never end a WebSocket).
    pub fn close_all_connections(&self, lp: &mut Loop) {
        for c in self.snapshot() {
            let id = c.borrow().id;
            c.borrow_mut().phase = Phase::Closing;
            let _ = lp.tcp_destroy(id);
        }
        let upgraded = std::mem::take(&mut *self.shared.upgraded.borrow_mut());
        for id in upgraded {
            // Stale (already closed) ids are refused by the runtime: nothing else is touched.
            let _ = lp.tcp_destroy(id);
        }
    }

    fn snapshot(&self) -> Vec<ConnRef> {
        self.shared.conns.borrow().values().cloned().collect()
    }
}

fn accept(lp: &mut Loop, shared: &Rc<Shared>, id: TcpId) {
    let conn: ConnRef = Rc::new(RefCell::new(Conn::new(
        id,
        lp.tcp_peer_addr(id).ok(),
        Rc::clone(shared),
        lp.handle(),
        lp.now(),
    )));
    shared.conns.borrow_mut().insert(id, Rc::clone(&conn));
    let c = Rc::clone(&conn);
    let _ = lp.tcp_on_data(id, move |lp, _id, data| conn::on_data(lp, &c, data));
    let c = Rc::clone(&conn);
    let _ = lp.tcp_on_end(id, move |lp, _id| conn::on_end(lp, &c));
    let c = Rc::clone(&conn);
    let _ = lp.tcp_on_drain(id, move |lp, _id| conn::on_drain(lp, &c));
    let _ = lp.tcp_on_error(id, |_lp, id, e| {
        log::debug!("http: connection {} error: {e}", id.index());
    });
    let s = Rc::clone(shared);
    let c = conn;
    let _ = lp.tcp_on_close(id, move |lp, id, _had_error| {
        let mut conn = c.borrow_mut();
        conn.phase = Phase::Detached;
        let aborted = conn::abandon_exchange(&mut conn);
        drop(conn);
        s.forget(id);
        if let Some(aborted) = aborted {
            aborted.run(lp);
        }
    });
}

/// Re-formats the cached Date and re-arms itself for the next second boundary (unref'd: it
/// never keeps the loop alive).
fn refresh_date(lp: &mut Loop, shared: &Rc<Shared>) {
    let now = SystemTime::now();
    let mut date = shared.date.borrow_mut();
    date.update(now);
    shared.date_second.set(date.secs());
    drop(date);
    let into_second = now
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_millis() as u64)
        .unwrap_or(0);
    let s = Rc::clone(shared);
    let timer = lp.set_timeout(1000 - into_second, move |lp| refresh_date(lp, &s));
    let _ = lp.unref(timer);
    shared.date_timer.set(Some(timer));
}

/// Checks every connection's deadline (headers, request, keep-alive, closing) and its send
/// deadline. While a connection's output is backed up only the send deadline applies (reading
/// is paused, so no head or body can arrive), and it is re-armed as long as bytes still leave.
fn sweep_deadlines(lp: &mut Loop, shared: &Rc<Shared>) {
    let now = lp.now();
    let send_timeout = shared.config.send_timeout_ms;
    let mut expired: Vec<(ConnRef, conn::Deadline)> = Vec::new();
    for c in shared.conns.borrow().values() {
        let mut cm = c.borrow_mut();
        if cm.write_blocked {
            if let Some((at, written_then)) = cm.send_deadline {
                if at <= now {
                    let written = lp.tcp_bytes(cm.id).map_or(0, |(_, w)| w);
                    if written > written_then {
                        cm.send_deadline = Some((now + send_timeout, written));
                    } else {
                        expired.push((Rc::clone(c), conn::Deadline::Send));
                    }
                }
            }
            continue;
        }
        if let Some((at, kind)) = cm.deadline {
            if at <= now {
                cm.deadline = None;
                expired.push((Rc::clone(c), kind));
            }
        }
    }
    for (c, kind) in expired {
        conn::on_deadline(lp, &c, kind);
    }
}

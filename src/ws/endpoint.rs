//! A WebSocket endpoint: options, the opening handshake on an upgraded HTTP connection, and the
//! sweep that sends automatic pings and enforces the idle timeout.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use oneloop_runtime::{Loop, TcpId, TimerId};

use super::deflate::{self, CompressionMode, Outgoing, SharedDeflaters};
use super::frame::CLOSE_GOING_AWAY;
use super::handshake;
use super::pubsub::Hub;
use super::socket::{Message, WebSocket};
use crate::http;

/// Per-endpoint settings. Defaults are uWS's, except `max_payload` (see docs/ws.md, "Limits").
#[derive(Clone)]
pub struct WsOptions {
    /// Largest message (after reassembly) accepted; bigger ones fail the connection with 1009.
    /// Default 16 MiB ([`DEFAULT_MAX_PAYLOAD`]). Memory follows the bytes that arrive: nothing
    /// is reserved from a frame header's announced length.
    pub max_payload: usize,
    /// Close a connection that has received nothing for this long (`Duration::ZERO`: never).
    /// Default 120 s. Checked by a sweep every `idle_timeout / 8` (10 ms to 1 s).
    pub idle_timeout: Duration,
    /// `send` and `publish` drop messages while more than this many bytes are queued, and
    /// reading pauses until the queue empties (0: sends never dropped; reading still pauses
    /// above 64 KiB). Every frame counts, pongs and Close included. Default 64 KiB.
    pub max_backpressure: usize,
    /// Send a ping once a connection has been silent for half of `idle_timeout`, so a live
    /// peer's pong keeps it open. Default true.
    pub send_pings: bool,
    /// The pub/sub hub the sockets subscribe on. The default is a new hub per endpoint; clone
    /// one hub into several endpoints' options to share topics between them.
    pub hub: Hub,
    /// permessage-deflate (RFC 7692): off (default, as `ws` servers), shared or dedicated
    /// (see [`CompressionMode`] and docs/ws.md "Compression").
    pub compression: CompressionMode,
    /// Messages shorter than this many bytes are sent uncompressed even when compression is
    /// negotiated. Default 1 KiB ([`DEFAULT_COMPRESS_THRESHOLD`]).
    pub compress_threshold: usize,
}

/// Default [`WsOptions::compress_threshold`]: 1 KiB (Node `ws`'s `threshold` is 1 KiB too).
pub const DEFAULT_COMPRESS_THRESHOLD: usize = 1024;

impl Default for WsOptions {
    fn default() -> Self {
        WsOptions {
            max_payload: DEFAULT_MAX_PAYLOAD,
            idle_timeout: Duration::from_secs(120),
            max_backpressure: 64 * 1024,
            send_pings: true,
            hub: Hub::new(),
            compression: CompressionMode::Off,
            compress_threshold: DEFAULT_COMPRESS_THRESHOLD,
        }
    }
}

/// Default [`WsOptions::max_payload`]: 16 MiB, the largest message Autobahn's limits cases
/// (9.*) send, a sixth of Node `ws`'s 100 MiB.
pub const DEFAULT_MAX_PAYLOAD: usize = 16 * 1024 * 1024;

/// The connection handler: called once per accepted WebSocket, before any message.
pub type WsHandler = Rc<dyn Fn(&mut Loop, WebSocket)>;

/// A handler that echoes every message back (the `/ws` route of `examples/hello.rs` and the
/// Autobahn target).
pub fn echo_handler() -> impl Fn(&mut Loop, WebSocket) {
    |_lp, ws| {
        ws.on_message(|lp, ws, msg: Message| {
            ws.send(lp, msg);
        });
    }
}

/// One WebSocket route: its options, handler and live connections.
pub struct Endpoint {
    options: WsOptions,
    handler: WsHandler,
    conns: RefCell<HashMap<TcpId, WebSocket>>,
    sweep: Cell<Option<TimerId>>,
    /// [`Endpoint::going_away`] ran: refuse new upgrades.
    going_away: Cell<bool>,
    /// The compressors every shared-mode connection of this endpoint uses.
    shared_deflaters: SharedDeflaters,
}

impl Endpoint {
    /// An endpoint that hands each accepted socket to `handler`.
    pub fn new(options: WsOptions, handler: impl Fn(&mut Loop, WebSocket) + 'static) -> Rc<Self> {
        Rc::new(Endpoint {
            options,
            handler: Rc::new(handler),
            conns: RefCell::new(HashMap::new()),
            sweep: Cell::new(None),
            going_away: Cell::new(false),
            shared_deflaters: SharedDeflaters::default(),
        })
    }

    /// Open connections.
    pub fn connections(&self) -> usize {
        self.conns.borrow().len()
    }

    /// Server shutdown: closes every open connection with 1001 "going away" (each then has
    /// [`crate::ws::CLOSE_TIMEOUT_MS`] to answer before it is destroyed) and refuses new
    /// upgrades with 503. [`Endpoint::attach`] and `App::ws` call it when the server starts
    /// a graceful close; the drain deadline destroys whatever is still open.
    pub fn going_away(&self, lp: &mut Loop) {
        self.going_away.set(true);
        let open: Vec<WebSocket> = self.conns.borrow().values().cloned().collect();
        log::info!("ws: closing {} connection(s) with 1001", open.len());
        for ws in open {
            ws.close(lp, CLOSE_GOING_AWAY, "going away");
        }
    }

    /// Mounts the endpoint on a bare `http::Server`: upgrade requests for `path` (query
    /// ignored) that offer `websocket` are handed to it, every other request (another
    /// path, another protocol such as `h2c`) is served by the server's request handler as
    /// ordinary HTTP, and a graceful `server.close` runs [`Endpoint::going_away`].
    ///
    /// ```no_run
    /// use oneloop::ws::{echo_handler, Endpoint, WsOptions};
    /// let mut lp = oneloop::runtime::Loop::new()?;
    /// let server = oneloop::http::create_server(&mut lp, |_lp, _req, res| res.end("hi"));
    /// Endpoint::new(WsOptions::default(), echo_handler()).attach(&server, "/ws");
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn attach(self: &Rc<Self>, server: &http::Server, path: &str) {
        let p = path.to_owned();
        server.should_upgrade(move |head| {
            head.path() == p && handshake::offers_protocol(head.header("upgrade"), "websocket")
        });
        let ep = Rc::clone(self);
        server.on_upgrade(move |lp, req, id, rest| ep.upgrade(lp, &req, id, rest));
        let ep = Rc::clone(self);
        server.on_closing(move |lp| ep.going_away(lp));
    }

    /// Runs the opening handshake on an upgraded connection (the arguments of
    /// [`http::Server::on_upgrade`]): answers 400/426 and ends the connection on a bad request,
    /// else writes `101 Switching Protocols`, calls the handler, then feeds `rest` (frames that
    /// came in the same read as the request head) to the new socket.
    pub fn upgrade(self: &Rc<Self>, lp: &mut Loop, req: &http::Request, id: TcpId, rest: Bytes) {
        let mut out = BytesMut::new();
        let line = handshake::RequestLine {
            method: req.method(),
            http_1_1: req.version() != http::Version::Http10,
            key_fields: req
                .headers()
                .filter(|(name, _)| name.eq_ignore_ascii_case("sec-websocket-key"))
                .count(),
        };
        let accept = match handshake::validate_request(line, |n| req.header_bytes(n)) {
            Ok(accept) => accept,
            Err(e) => {
                log::debug!("ws: refusing upgrade of {}: {e}", req.path());
                // The socket is half-open (as HTTP set it up): the refusal makes sure it goes
                // away even if the client keeps its side open.
                http::refuse_upgrade(lp, id, e.status(), e.response_headers(), e.reason());
                return;
            }
        };
        if self.going_away.get() {
            // The server is shutting down: no new WebSocket (another instance will take it).
            http::refuse_upgrade(lp, id, 503, &[], "shutting down");
            return;
        }
        let negotiated = deflate::negotiate(
            req.headers()
                .filter(|(name, _)| name.eq_ignore_ascii_case("sec-websocket-extensions"))
                .map(|(_, v)| v),
            self.options.compression,
        );
        let extensions = negotiated.map(|n| n.response());
        handshake::write_accept_response_with(&mut out, &accept, extensions.as_deref());
        if lp.tcp_write_bytes(id, out.freeze()).is_err() {
            return;
        }
        // `tcp_write` now reports "something is queued", which is what Backpressured means, and
        // on_drain runs whenever the queue empties.
        let _ = lp.tcp_set_high_water_mark(id, 1);
        let ws = WebSocket::new(
            lp,
            id,
            self.options.max_payload,
            self.options.max_backpressure,
            self.options.hub.clone(),
            lp.tcp_peer_addr(id).ok(),
            negotiated.map(|n| {
                let outgoing = match self.options.compression {
                    CompressionMode::Dedicated => Outgoing::Dedicated {
                        deflater: None,
                        window_bits: n.server_max_window_bits,
                        no_context_takeover: n.server_no_context_takeover,
                    },
                    _ => Outgoing::Shared {
                        deflaters: self.shared_deflaters.clone(),
                        window_bits: n.server_max_window_bits,
                    },
                };
                (
                    outgoing,
                    n.client_no_context_takeover,
                    self.options.compress_threshold,
                )
            }),
        );
        let w = ws.clone();
        let _ = lp.tcp_on_data(id, move |lp, _id, data| w.on_data(lp, data));
        let w = ws.clone();
        let _ = lp.tcp_on_end(id, move |lp, _id| w.on_end(lp));
        let w = ws.clone();
        let _ = lp.tcp_on_drain(id, move |lp, _id| w.on_tcp_drain(lp));
        let _ = lp.tcp_on_error(id, |_lp, id, e| {
            log::debug!("ws: connection {} error: {e}", id.index());
        });
        let w = ws.clone();
        let ep = Rc::clone(self);
        let _ = lp.tcp_on_close(id, move |lp, id, _had_error| {
            ep.conns.borrow_mut().remove(&id);
            w.on_tcp_close(lp);
        });
        self.conns.borrow_mut().insert(id, ws.clone());
        self.ensure_sweep(lp);
        (self.handler)(lp, ws.clone());
        self.options.hub.sync_redis(lp);
        if !rest.is_empty() {
            ws.on_data(lp, &rest);
        }
    }

    fn ensure_sweep(self: &Rc<Self>, lp: &mut Loop) {
        let idle = self.options.idle_timeout.as_millis() as u64;
        if idle == 0 || self.sweep.get().is_some() {
            return;
        }
        let every = (idle / 8).clamp(10, 1_000);
        let ep = Rc::clone(self);
        let t = lp.set_interval(every, move |lp| ep.sweep(lp, idle));
        // The sockets keep the loop alive, not the sweep.
        let _ = lp.unref(t);
        self.sweep.set(Some(t));
    }

    /// Pings connections silent for half the idle timeout, destroys those silent for all of it.
    fn sweep(&self, lp: &mut Loop, idle_ms: u64) {
        let now = lp.now();
        let mut ping = Vec::new();
        let mut expired = Vec::new();
        for ws in self.conns.borrow().values() {
            let c = ws.0.borrow();
            let silent = now.saturating_sub(c.last_recv);
            if silent >= idle_ms {
                expired.push(ws.clone());
            } else if self.options.send_pings && !c.ping_outstanding && silent >= idle_ms / 2 {
                ping.push(ws.clone());
            }
        }
        for ws in ping {
            ws.0.borrow_mut().ping_outstanding = true;
            ws.ping(lp, b"");
        }
        for ws in expired {
            log::debug!("ws: idle timeout on connection {}", ws.tcp_id().index());
            ws.destroy(lp, "idle timeout");
        }
    }
}

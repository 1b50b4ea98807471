//! Listening sockets: accept, `max_connections` with `drop`, EMFILE back-off, graceful close.

use std::io;
use std::net::SocketAddr;
use std::panic::Location;
use std::path::PathBuf;

use mio::net::TcpListener;
use mio::Interest;
use socket2::{Domain, Protocol, Socket as RawSocket, Type};

use super::socket::SocketOptions;
use super::stream::{not_ip, Listener, StreamAddr};
use super::{IoEntry, TcpError};
use crate::handle::{ServerId, TcpId, TimerId};
use crate::tls::{TlsClientError, TlsServerOptions};
use crate::trace::CallbackKind;
use crate::Loop;

/// How long a server stops accepting after the process ran out of file descriptors, unless a
/// connection on this loop closes first (which retries at once).
const EMFILE_BACKOFF_MS: u64 = 100;

/// Options for [`Loop::tcp_listen`] (Node's `server.listen(options)` plus `maxConnections`).
#[derive(Clone, Debug)]
pub struct ListenOptions {
    /// Pending-connection queue length (Node's default 511).
    pub backlog: i32,
    /// Set `SO_REUSEPORT` so several loops (threads or processes) can listen on one port and
    /// let the kernel balance connections.
    pub reuse_port: bool,
    /// For an IPv6 address: accept IPv6 only (no IPv4-mapped addresses).
    pub ipv6_only: bool,
    /// Refuse connections beyond this many open ones: they are accepted, closed at once and
    /// reported to the `drop` callback (Node's `server.maxConnections`).
    pub max_connections: Option<usize>,
    /// Options applied to every accepted socket.
    pub socket: SocketOptions,
    /// Speak TLS on every accepted socket (Node's `tls.createServer`): the connection callback
    /// runs once the handshake has completed (Node's `'secureConnection'`); handshake failures
    /// go to [`Loop::tcp_server_on_tls_error`]. See [`crate::tls`].
    pub tls: Option<TlsServerOptions>,
}

impl Default for ListenOptions {
    fn default() -> Self {
        ListenOptions {
            backlog: 511,
            reuse_port: false,
            ipv6_only: false,
            max_connections: None,
            socket: SocketOptions::server_default(),
            tls: None,
        }
    }
}

/// A connection refused because the server was at `max_connections` (Node's `'drop'` event).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DropInfo {
    /// The peer's address (`Unix(None)` for a pipe: connecting Unix sockets are unnamed).
    pub remote: StreamAddr,
    /// The server's address (its path for a pipe server).
    pub local: StreamAddr,
}

type ConnectionCallback = Box<dyn FnMut(&mut Loop, TcpId)>;
type DropCallback = Box<dyn FnMut(&mut Loop, DropInfo)>;
type ServerErrorCallback = Box<dyn FnMut(&mut Loop, &io::Error)>;
type TlsErrorCallback = Box<dyn FnMut(&mut Loop, TlsClientError)>;
type ServerCloseCallback = Box<dyn FnOnce(&mut Loop)>;

pub(crate) struct Server {
    /// `None` once closing: the listening socket is closed at once, connections may linger.
    listener: Option<Listener>,
    local: StreamAddr,
    /// A pipe server's socket file, removed when the server closes (as libuv does).
    unlink_on_close: Option<PathBuf>,
    on_connection: Option<ConnectionCallback>,
    on_drop: Option<DropCallback>,
    on_error: Option<ServerErrorCallback>,
    on_tls_error: Option<TlsErrorCallback>,
    on_close: Option<ServerCloseCallback>,
    options: ListenOptions,
    pub(crate) connections: usize,
    backed_off: bool,
    /// The back-off retry timer, while armed (one per server, however often accept fails).
    backoff_timer: Option<TimerId>,
    pub(crate) refed: bool,
    pub(crate) created_at: &'static Location<'static>,
}

fn bind_listener(addr: SocketAddr, options: &ListenOptions) -> io::Result<TcpListener> {
    let socket = RawSocket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?; // as Node and libuv do on Unix
    if options.reuse_port {
        socket.set_reuse_port(true)?;
    }
    if addr.is_ipv6() {
        socket.set_only_v6(options.ipv6_only)?;
    }
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(options.backlog)?;
    Ok(TcpListener::from_std(socket.into()))
}

impl Server {
    /// "server" (TCP) or "pipe_server", for `active_handles`.
    pub(crate) fn kind(&self) -> &'static str {
        match self.local {
            StreamAddr::Ip(_) => "server",
            StreamAddr::Unix(_) => "pipe_server",
        }
    }
}

fn is_fd_exhaustion(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EMFILE) | Some(libc::ENFILE) | Some(libc::ENOBUFS) | Some(libc::ENOMEM)
    )
}

impl Loop {
    /// Listens on `addr` and calls `on_connection` for each accepted socket (Node's
    /// `net.createServer(listener).listen(..)`). Port 0 picks a free port: read it with
    /// [`Loop::tcp_server_addr`].
    ///
    /// # Errors
    /// When the address cannot be bound (in use, no permission, bad address).
    #[track_caller]
    pub fn tcp_listen(
        &mut self,
        addr: SocketAddr,
        options: ListenOptions,
        on_connection: impl FnMut(&mut Loop, TcpId) + 'static,
    ) -> io::Result<ServerId> {
        let listener = bind_listener(addr, &options)?;
        let local = StreamAddr::Ip(listener.local_addr()?);
        self.server_start(
            Listener::Tcp(listener),
            local,
            None,
            options,
            Box::new(on_connection),
        )
    }

    /// Registers a bound listener as a server of this loop (TCP or pipe).
    #[track_caller]
    pub(crate) fn server_start(
        &mut self,
        mut listener: Listener,
        local: StreamAddr,
        unlink_on_close: Option<PathBuf>,
        options: ListenOptions,
        on_connection: ConnectionCallback,
    ) -> io::Result<ServerId> {
        let key = self.net.entries.insert(IoEntry::Server(Box::new(Server {
            listener: None,
            local,
            unlink_on_close,
            on_connection: Some(on_connection),
            on_drop: None,
            on_error: None,
            on_tls_error: None,
            on_close: None,
            options,
            connections: 0,
            backed_off: false,
            backoff_timer: None,
            refed: true,
            created_at: Location::caller(),
        })));
        if let Err(e) = self.register(&mut listener, Loop::token_of(key), Interest::READABLE) {
            self.net.entries.remove(key);
            return Err(e);
        }
        self.refs += 1;
        let id = ServerId(key);
        if let Some(server) = self.net.server_mut(id) {
            server.listener = Some(listener);
        }
        // Connections may already be queued; edge-triggered polling would not report them.
        self.defer(move |lp| lp.server_accept(id));
        Ok(id)
    }

    /// The address the server is bound to (with the real port when listening on port 0).
    ///
    /// # Errors
    /// [`TcpError::Stale`] if the server is gone; `InvalidInput` for a pipe server (see
    /// [`Loop::server_local_addr`]).
    pub fn tcp_server_addr(&self, id: ServerId) -> Result<SocketAddr, TcpError> {
        let local = self.server_local_addr(id)?;
        local.ip().ok_or_else(|| TcpError::Io(not_ip()))
    }

    /// The address the server is bound to, TCP or Unix (a pipe server's path).
    ///
    /// # Errors
    /// [`TcpError::Stale`] if the server is gone.
    pub fn server_local_addr(&self, id: ServerId) -> Result<StreamAddr, TcpError> {
        self.net
            .server(id)
            .map(|s| s.local.clone())
            .ok_or(TcpError::Stale)
    }

    /// Open connections accepted by this server.
    ///
    /// # Errors
    /// [`TcpError::Stale`] if the server is gone.
    pub fn tcp_server_connections(&self, id: ServerId) -> Result<usize, TcpError> {
        self.net
            .server(id)
            .map(|s| s.connections)
            .ok_or(TcpError::Stale)
    }

    /// Calls `callback` for each connection refused because of `max_connections`.
    ///
    /// # Errors
    /// [`TcpError::Stale`] if the server is gone.
    pub fn tcp_server_on_drop(
        &mut self,
        id: ServerId,
        callback: impl FnMut(&mut Loop, DropInfo) + 'static,
    ) -> Result<(), TcpError> {
        let server = self.net.server_mut(id).ok_or(TcpError::Stale)?;
        server.on_drop = Some(Box::new(callback));
        Ok(())
    }

    /// Calls `callback` when accepting fails for a reason other than running out of file
    /// descriptors (which is handled by backing off) or a connection aborted before accept.
    ///
    /// # Errors
    /// [`TcpError::Stale`] if the server is gone.
    pub fn tcp_server_on_error(
        &mut self,
        id: ServerId,
        callback: impl FnMut(&mut Loop, &io::Error) + 'static,
    ) -> Result<(), TcpError> {
        let server = self.net.server_mut(id).ok_or(TcpError::Stale)?;
        server.on_error = Some(Box::new(callback));
        Ok(())
    }

    /// Changes `max_connections` on a listening server.
    ///
    /// # Errors
    /// [`TcpError::Stale`] if the server is gone.
    pub fn tcp_server_set_max_connections(
        &mut self,
        id: ServerId,
        max: Option<usize>,
    ) -> Result<(), TcpError> {
        let server = self.net.server_mut(id).ok_or(TcpError::Stale)?;
        server.options.max_connections = max;
        Ok(())
    }

    /// Stops accepting at once; calls `callback` (in a close phase) once every connection this
    /// server accepted has closed (Node's `server.close(cb)`). Open connections are not touched:
    /// end or destroy them yourself (the HTTP server closes its idle ones).
    ///
    /// # Errors
    /// [`TcpError::Stale`] if the server is already closed.
    pub fn tcp_server_close(
        &mut self,
        id: ServerId,
        callback: impl FnOnce(&mut Loop) + 'static,
    ) -> Result<(), TcpError> {
        let server = self.net.server_mut(id).ok_or(TcpError::Stale)?;
        if server.listener.is_none() && server.on_close.is_some() {
            return Err(TcpError::Stale); // already closing
        }
        let listener = server.listener.take();
        let unlink = server.unlink_on_close.take();
        server.on_close = Some(Box::new(callback));
        let refed = std::mem::replace(&mut server.refed, false);
        let timer = server.backoff_timer.take();
        if let Some(t) = timer {
            let _ = self.clear_timeout(t);
        }
        if let Some(mut listener) = listener {
            let _ = self.registry().deregister(&mut listener);
        }
        if let Some(path) = unlink {
            // libuv's `uv__pipe_close` unlinks the socket file when the server closes (Node:
            // synchronously, inside `server.close()`), so the next listen on the path works.
            let _ = std::fs::remove_file(path);
        }
        if refed {
            self.refs -= 1;
        }
        self.net.backed_off.retain(|s| *s != id);
        self.server_maybe_finish_close(id);
        Ok(())
    }

    /// Whether the server still accepts connections.
    pub fn tcp_server_is_listening(&self, id: ServerId) -> bool {
        self.net.server(id).is_some_and(|s| s.listener.is_some())
    }

    /// Finishes `close` once the last connection is gone: the server's slot is freed and its
    /// close callback queued for the close phase.
    pub(crate) fn server_maybe_finish_close(&mut self, id: ServerId) {
        let done = self
            .net
            .server(id)
            .is_some_and(|s| s.listener.is_none() && s.on_close.is_some() && s.connections == 0);
        if !done {
            return;
        }
        if let Some(IoEntry::Server(mut server)) = self.net.entries.remove(id.0) {
            if let Some(cb) = server.on_close.take() {
                self.queue_close(cb);
            }
        }
    }

    /// Accepts until `WouldBlock` (mio is edge-triggered: a connection left in the backlog would
    /// never be reported again).
    pub(crate) fn server_accept(&mut self, id: ServerId) {
        loop {
            let Some(server) = self.net.server_mut(id) else {
                return;
            };
            let Some(listener) = server.listener.as_ref() else {
                return;
            };
            match listener.accept() {
                Ok((stream, remote)) => {
                    let local = server.local.clone();
                    let at_cap = server
                        .options
                        .max_connections
                        .is_some_and(|max| server.connections >= max);
                    if at_cap {
                        drop(stream);
                        self.server_report_drop(id, DropInfo { remote, local });
                        continue;
                    }
                    let options = server.options.socket.clone();
                    let tls = server.options.tls.clone();
                    server.connections += 1;
                    match self.socket_adopt(stream, Some(id), options, true) {
                        Ok(conn) => match tls {
                            // The listener hears of it once the handshake completes.
                            Some(tls) => self.tls_accept(conn, &tls),
                            None => self.server_emit_connection(id, conn),
                        },
                        Err(e) => {
                            log::warn!("accepted socket could not be registered: {e}");
                            if let Some(server) = self.net.server_mut(id) {
                                server.connections -= 1;
                            }
                        }
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e)
                    if e.kind() == io::ErrorKind::Interrupted
                        || e.kind() == io::ErrorKind::ConnectionAborted =>
                {
                    continue
                }
                Err(e) if is_fd_exhaustion(&e) => {
                    self.server_back_off(id, &e);
                    return;
                }
                Err(e) => {
                    self.server_report_error(id, &e);
                    return;
                }
            }
        }
    }

    /// Out of file descriptors: stop accepting instead of spinning on a backlog we cannot take.
    /// The pending connections stay in the kernel's backlog; we retry when a connection on this
    /// loop closes (an fd was freed) or after `EMFILE_BACKOFF_MS`, whichever comes first.
    fn server_back_off(&mut self, id: ServerId, e: &io::Error) {
        let Some(server) = self.net.server_mut(id) else {
            return;
        };
        if server.backed_off {
            return;
        }
        server.backed_off = true;
        log::warn!(
            "server {}: accept failed ({e}); pausing accepts",
            server.local
        );
        let timer = server.backoff_timer;
        self.net.backed_off.push(id);
        let armed = timer.is_some_and(|t| self.timer_is_active(t));
        if !armed {
            let timer = self.set_timeout(EMFILE_BACKOFF_MS, move |lp| {
                if let Some(s) = lp.net.server_mut(id) {
                    s.backoff_timer = None;
                }
                lp.server_resume_accept(id);
            });
            let _ = self.unref(timer);
            if let Some(s) = self.net.server_mut(id) {
                s.backoff_timer = Some(timer);
            }
        }
    }

    pub(crate) fn server_resume_accept(&mut self, id: ServerId) {
        let Some(server) = self.net.server_mut(id) else {
            return;
        };
        if !server.backed_off {
            return;
        }
        server.backed_off = false;
        self.net.backed_off.retain(|s| *s != id);
        self.server_accept(id);
    }

    /// A socket closed: one fd is free, so servers that backed off may accept again. The retry
    /// runs from the pending phase, never inside the callback that closed the socket (a
    /// connection callback nested in, say, an `on_data` callback would surprise user code).
    pub(crate) fn servers_retry_after_close(&mut self) {
        if self.net.backed_off.is_empty() || self.net.retry_queued {
            return;
        }
        self.net.retry_queued = true;
        self.defer(|lp| {
            lp.net.retry_queued = false;
            lp.servers_retry_backed_off();
        });
    }

    fn servers_retry_backed_off(&mut self) {
        let ids = std::mem::take(&mut self.net.backed_off);
        for id in ids {
            if let Some(s) = self.net.server_mut(id) {
                s.backed_off = true; // so resume goes through
            }
            self.server_resume_accept(id);
        }
    }

    /// Calls `callback` when a connection to a TLS server fails before its handshake
    /// completed (Node's `'tlsClientError'`): garbage instead of a ClientHello, a protocol
    /// alert, no common version or cipher, the handshake timeout, a disconnect mid-handshake,
    /// plain HTTP sent to the TLS port. The socket is closed already. Without this callback
    /// such failures are logged at debug level.
    ///
    /// # Errors
    /// [`TcpError::Stale`] if the server is gone.
    pub fn tcp_server_on_tls_error(
        &mut self,
        id: ServerId,
        callback: impl FnMut(&mut Loop, TlsClientError) + 'static,
    ) -> Result<(), TcpError> {
        let server = self.net.server_mut(id).ok_or(TcpError::Stale)?;
        server.on_tls_error = Some(Box::new(callback));
        Ok(())
    }

    pub(crate) fn server_report_tls_error(&mut self, id: ServerId, conn: TcpId, e: &io::Error) {
        let remote = self
            .net
            .socket(conn)
            .and_then(|s| s.stream.peer_addr().ok());
        let Some(mut cb) = self.net.server_mut(id).and_then(|s| s.on_tls_error.take()) else {
            log::debug!("tls connection {} failed: {e}", conn.index());
            return;
        };
        let error = TlsClientError::new(remote, e);
        self.trace_callback(CallbackKind::Io);
        self.invoke(CallbackKind::Io, |lp| cb(lp, error));
        if let Some(server) = self.net.server_mut(id) {
            if server.on_tls_error.is_none() {
                server.on_tls_error = Some(cb);
            }
        }
        self.after_callback();
    }

    pub(crate) fn server_emit_connection(&mut self, id: ServerId, conn: TcpId) {
        let Some(mut cb) = self.net.server_mut(id).and_then(|s| s.on_connection.take()) else {
            return;
        };
        self.trace_callback(CallbackKind::Io);
        self.invoke(CallbackKind::Io, |lp| cb(lp, conn));
        if let Some(server) = self.net.server_mut(id) {
            if server.on_connection.is_none() {
                server.on_connection = Some(cb);
            }
        }
        self.after_callback();
    }

    fn server_report_drop(&mut self, id: ServerId, info: DropInfo) {
        let Some(mut cb) = self.net.server_mut(id).and_then(|s| s.on_drop.take()) else {
            log::debug!("connection from {} dropped: max_connections", info.remote);
            return;
        };
        self.trace_callback(CallbackKind::Io);
        self.invoke(CallbackKind::Io, |lp| cb(lp, info));
        if let Some(server) = self.net.server_mut(id) {
            if server.on_drop.is_none() {
                server.on_drop = Some(cb);
            }
        }
        self.after_callback();
    }

    fn server_report_error(&mut self, id: ServerId, e: &io::Error) {
        let Some(mut cb) = self.net.server_mut(id).and_then(|s| s.on_error.take()) else {
            log::warn!("accept failed: {e}");
            return;
        };
        self.trace_callback(CallbackKind::Io);
        self.invoke(CallbackKind::Io, |lp| cb(lp, e));
        if let Some(server) = self.net.server_mut(id) {
            if server.on_error.is_none() {
                server.on_error = Some(cb);
            }
        }
        self.after_callback();
    }
}

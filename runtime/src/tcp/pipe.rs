//! Unix domain sockets (libuv's `uv_pipe_t`, Node's `net` with a path): listen and connect.
//!
//! A pipe server is an ordinary server whose listener is a `UnixListener`, and a pipe socket an
//! ordinary socket whose stream is a `UnixStream` (see `stream.rs`): every `tcp_*` socket
//! operation and every `tcp_server_*` server operation works on them unchanged.
//!
//! The socket file follows Node: `pipe_listen` on a path that exists fails with `EADDRINUSE`
//! (it is never removed for you: a live server may own it), and closing the server removes
//! the file (libuv's `uv__pipe_close` unlinks it).

use std::io;
use std::path::{Path, PathBuf};

use mio::net::{UnixListener, UnixStream};
use socket2::{Domain, SockAddr, Socket as RawSocket, Type};

use super::stream::{Listener, Stream, StreamAddr};
use super::{ListenOptions, SocketOptions};
use crate::handle::{ServerId, TcpId};
use crate::Loop;

/// The errno name Node puts in its messages (`ENOENT`), for the errnos a pipe or a spawn meets.
pub(crate) fn errno_name(e: &io::Error) -> Option<&'static str> {
    Some(match e.raw_os_error()? {
        libc::ENOENT => "ENOENT",
        libc::ECONNREFUSED => "ECONNREFUSED",
        libc::ECONNRESET => "ECONNRESET",
        libc::EPIPE => "EPIPE",
        libc::ETIMEDOUT => "ETIMEDOUT",
        libc::EADDRINUSE => "EADDRINUSE",
        libc::EACCES => "EACCES",
        libc::EPERM => "EPERM",
        libc::EAGAIN => "EAGAIN",
        libc::ENOTDIR => "ENOTDIR",
        libc::ENAMETOOLONG => "ENAMETOOLONG",
        libc::EINVAL => "EINVAL",
        libc::EMFILE => "EMFILE",
        libc::ENFILE => "ENFILE",
        libc::ENOEXEC => "ENOEXEC",
        libc::ETXTBSY => "ETXTBSY",
        _ => return None,
    })
}

/// An error that names the path in Node's words (`listen EADDRINUSE: address already in use
/// /tmp/app.sock`, `connect ENOENT /tmp/app.sock`); the kind is the OS error's.
fn with_path(op: &str, path: &Path, e: io::Error) -> io::Error {
    let msg = match (e.kind(), errno_name(&e)) {
        (io::ErrorKind::AddrInUse, _) => {
            format!("{op} EADDRINUSE: address already in use {}", path.display())
        }
        (_, Some(name)) => format!("{op} {name} {}", path.display()),
        (_, None) => format!("{op} {}: {e}", path.display()),
    };
    io::Error::new(e.kind(), msg)
}

impl Loop {
    /// Listens on the Unix domain socket `path` and calls `on_connection` for each accepted
    /// socket (Node's `net.createServer(listener).listen(path)`). The server is an ordinary
    /// [`ServerId`]: `tcp_server_close`, `tcp_server_connections`, `max_connections`, `drop`,
    /// EMFILE back-off and ref/unref all apply; accepted sockets are ordinary [`TcpId`]s.
    /// Of [`ListenOptions`], `backlog`, `max_connections` and `socket` apply; `reuse_port` and
    /// `ipv6_only` mean nothing for a path and are ignored.
    ///
    /// Closing the server removes the socket file. A path whose first byte is NUL (`"\0name"`)
    /// is a Linux abstract socket name, as in Node and libuv: no file is created or removed.
    ///
    /// ```
    /// use oneloop_runtime::{ListenOptions, Loop, SocketOptions};
    /// let path = std::env::temp_dir().join(format!("doc-pipe-{}.sock", std::process::id()));
    /// let mut lp = Loop::new()?;
    /// let server = lp.pipe_listen(&path, ListenOptions::default(), |lp, conn| {
    ///     lp.tcp_on_data(conn, |lp, id, data| {
    ///         lp.tcp_write(id, data).unwrap();
    ///     })
    ///     .unwrap();
    /// })?;
    /// let client = lp.pipe_connect(&path, SocketOptions::default(), |lp, id| {
    ///     lp.tcp_write(id, b"ping").unwrap();
    /// })?;
    /// lp.tcp_on_data(client, move |lp, id, data| {
    ///     assert_eq!(data, b"ping");
    ///     lp.tcp_destroy(id).unwrap();
    ///     lp.tcp_server_close(server, |_| {}).unwrap(); // removes the socket file
    /// })?;
    /// lp.run()?;
    /// assert!(!path.exists());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// `AddrInUse` ("listen EADDRINUSE: address already in use <path>") if a file exists at
    /// `path`, stale or not (as Node: remove a stale one yourself); `NotFound` or
    /// `PermissionDenied` for the directory; `InvalidInput` for a path longer than the
    /// 107 bytes a socket address holds.
    #[track_caller]
    pub fn pipe_listen(
        &mut self,
        path: impl AsRef<Path>,
        options: ListenOptions,
        on_connection: impl FnMut(&mut Loop, TcpId) + 'static,
    ) -> io::Result<ServerId> {
        let path = path.as_ref();
        let listener =
            bind_unix(path, options.backlog).map_err(|e| with_path("listen", path, e))?;
        let local = StreamAddr::Unix(Some(path.to_path_buf()));
        let abstract_name = path.as_os_str().as_encoded_bytes().first() == Some(&0);
        self.server_start(
            Listener::Unix(listener),
            local,
            (!abstract_name).then(|| path.to_path_buf()),
            options,
            Box::new(on_connection),
        )
    }

    /// Connects to the Unix domain socket `path` (Node's `net.connect(path)`). As
    /// [`Loop::tcp_connect`]: `on_connect` runs once connected; a missing path (`ENOENT`), a
    /// refused connection (`ECONNREFUSED`: a stale socket file nobody listens on) or a full
    /// backlog is reported to the socket's `on_error` and then `on_close`, from a later
    /// callback. The id is an ordinary [`TcpId`]: every `tcp_*` operation applies.
    ///
    /// # Errors
    /// When no socket could be created, or the path is too long for a socket address.
    #[track_caller]
    pub fn pipe_connect(
        &mut self,
        path: impl AsRef<Path>,
        options: SocketOptions,
        on_connect: impl FnMut(&mut Loop, TcpId) + 'static,
    ) -> io::Result<TcpId> {
        let path = path.as_ref();
        let addr = SockAddr::unix(path).map_err(|e| with_path("connect", path, e))?;
        let raw = RawSocket::new(Domain::UNIX, Type::STREAM, None)?;
        raw.set_nonblocking(true)?;
        let failed = match raw.connect(&addr) {
            Ok(()) => None,
            Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => None,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => None,
            Err(e) => Some(with_path("connect", path, e)),
        };
        let stream = UnixStream::from_std(std::os::unix::net::UnixStream::from(raw));
        let id = self.socket_adopt(Stream::Unix(stream), None, options, false)?;
        self.tcp_on_connect_inner(id, Box::new(on_connect));
        if let Some(e) = failed {
            self.defer(move |lp| lp.socket_fail(id, e));
        }
        Ok(id)
    }

    /// Registers one end of a connected Unix socket (a socketpair end, e.g. a child process's
    /// stdio) as a socket of this loop.
    #[track_caller]
    pub(crate) fn pipe_adopt(
        &mut self,
        stream: std::os::unix::net::UnixStream,
        options: SocketOptions,
    ) -> io::Result<TcpId> {
        stream.set_nonblocking(true)?;
        self.socket_adopt(
            Stream::Unix(UnixStream::from_std(stream)),
            None,
            options,
            true,
        )
    }

    /// Marks a socket as a stdio stream of `process` (`None`: no longer).
    pub(crate) fn net_set_process(&mut self, id: TcpId, process: Option<crate::handle::ProcessId>) {
        if let Some(s) = self.net.socket_mut(id) {
            s.process = process;
        }
    }

    /// The path a pipe server listens on.
    ///
    /// # Errors
    /// `Stale` if the server is gone; `InvalidInput` for a TCP server.
    pub fn pipe_server_path(&self, id: ServerId) -> Result<PathBuf, super::TcpError> {
        match self.server_local_addr(id)? {
            StreamAddr::Unix(Some(p)) => Ok(p),
            _ => Err(super::TcpError::Io(io::Error::new(
                io::ErrorKind::InvalidInput,
                "not a pipe server",
            ))),
        }
    }
}

/// Binds and listens, non-blocking and close-on-exec (socket2 sets `SOCK_CLOEXEC`, so a child
/// process does not inherit the listener).
fn bind_unix(path: &Path, backlog: i32) -> io::Result<UnixListener> {
    let socket = RawSocket::new(Domain::UNIX, Type::STREAM, None)?;
    socket.set_nonblocking(true)?;
    socket.bind(&SockAddr::unix(path)?)?;
    socket.listen(backlog)?;
    Ok(UnixListener::from_std(
        std::os::unix::net::UnixListener::from(socket),
    ))
}

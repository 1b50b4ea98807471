//! The byte stream under a socket and the listener under a server: TCP or a Unix domain socket.
//!
//! Node's `net.Socket` is one class over two libuv handle types (`uv_tcp_t` and `uv_pipe_t`);
//! here one [`Stream`] enum sits under the one socket state machine in `socket.rs`, and one
//! [`Listener`] enum under the server in `server.rs`. Everything above these two types (write
//! queue, high-water mark, half-close, pause/resume, timeouts, `max_connections`, EMFILE
//! back-off) is shared: a Unix socket is not a copy of the TCP code.

use std::fmt;
use std::io::{self, IoSlice, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::net::SocketAddr as UnixAddr;
use std::path::PathBuf;

use mio::net::{TcpListener, TcpStream, UnixListener, UnixStream};
use mio::{Interest, Registry, Token};

/// The address of either end of a stream socket (Node's `remoteAddress`/`address()`, which are
/// an IP and port for TCP and the socket path, or nothing, for a pipe).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum StreamAddr {
    /// A TCP socket's IP address and port.
    Ip(SocketAddr),
    /// A Unix domain socket: the path it is bound to (a Linux abstract name as `\0name`, as
    /// Node writes it), or `None` for an unnamed one (the connecting side of a Unix socket,
    /// either end of a socketpair).
    Unix(Option<PathBuf>),
}

impl StreamAddr {
    /// The IP address and port, for a TCP socket.
    pub fn ip(&self) -> Option<SocketAddr> {
        match self {
            StreamAddr::Ip(a) => Some(*a),
            StreamAddr::Unix(_) => None,
        }
    }

    /// The path, for a Unix socket bound to one.
    pub fn path(&self) -> Option<&std::path::Path> {
        match self {
            StreamAddr::Unix(Some(p)) => Some(p),
            _ => None,
        }
    }

    pub(crate) fn from_unix(addr: &UnixAddr) -> StreamAddr {
        if let Some(path) = addr.as_pathname() {
            return StreamAddr::Unix(Some(path.to_path_buf()));
        }
        #[cfg(target_os = "linux")]
        {
            use std::os::linux::net::SocketAddrExt;
            use std::os::unix::ffi::OsStrExt;
            if let Some(name) = addr.as_abstract_name() {
                let mut bytes = vec![0u8];
                bytes.extend_from_slice(name);
                let path = std::ffi::OsStr::from_bytes(&bytes);
                return StreamAddr::Unix(Some(PathBuf::from(path)));
            }
        }
        StreamAddr::Unix(None)
    }
}

impl fmt::Display for StreamAddr {
    /// `127.0.0.1:8080`, `/run/app.sock`, or `(unnamed)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StreamAddr::Ip(a) => write!(f, "{a}"),
            StreamAddr::Unix(Some(p)) => write!(f, "{}", p.display()),
            StreamAddr::Unix(None) => f.write_str("(unnamed)"),
        }
    }
}

impl PartialEq<SocketAddr> for StreamAddr {
    fn eq(&self, other: &SocketAddr) -> bool {
        self.ip() == Some(*other)
    }
}

impl From<SocketAddr> for StreamAddr {
    fn from(a: SocketAddr) -> StreamAddr {
        StreamAddr::Ip(a)
    }
}

/// A connected (or connecting) stream socket.
pub(crate) enum Stream {
    Tcp(TcpStream),
    Unix(UnixStream),
}

/// The error for an IP-only operation asked of a Unix socket.
pub(crate) fn not_ip() -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        "a Unix domain socket has no IP address (use stream_peer_addr / stream_local_addr)",
    )
}

impl Stream {
    /// "tcp" or "pipe" (libuv's handle type names), for `active_handles`.
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Stream::Tcp(_) => "tcp",
            Stream::Unix(_) => "pipe",
        }
    }

    pub(crate) fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.read(buf),
            Stream::Unix(s) => s.read(buf),
        }
    }

    pub(crate) fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.write(buf),
            Stream::Unix(s) => s.write(buf),
        }
    }

    pub(crate) fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.write_vectored(bufs),
            Stream::Unix(s) => s.write_vectored(bufs),
        }
    }

    pub(crate) fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.shutdown(how),
            Stream::Unix(s) => s.shutdown(how),
        }
    }

    pub(crate) fn take_error(&self) -> io::Result<Option<io::Error>> {
        match self {
            Stream::Tcp(s) => s.take_error(),
            Stream::Unix(s) => s.take_error(),
        }
    }

    /// `Ok` once a non-blocking connect has completed (`ENOTCONN` before).
    pub(crate) fn check_connected(&self) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.peer_addr().map(drop),
            Stream::Unix(s) => s.peer_addr().map(drop),
        }
    }

    /// `TCP_NODELAY`; a no-op on a Unix socket (as Node's `setNoDelay` on a pipe).
    pub(crate) fn set_nodelay(&self, on: bool) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.set_nodelay(on),
            Stream::Unix(_) => Ok(()),
        }
    }

    pub(crate) fn peer_addr(&self) -> io::Result<StreamAddr> {
        match self {
            Stream::Tcp(s) => s.peer_addr().map(StreamAddr::Ip),
            Stream::Unix(s) => s.peer_addr().map(|a| StreamAddr::from_unix(&a)),
        }
    }

    pub(crate) fn local_addr(&self) -> io::Result<StreamAddr> {
        match self {
            Stream::Tcp(s) => s.local_addr().map(StreamAddr::Ip),
            Stream::Unix(s) => s.local_addr().map(|a| StreamAddr::from_unix(&a)),
        }
    }
}

impl AsFd for Stream {
    fn as_fd(&self) -> BorrowedFd<'_> {
        match self {
            Stream::Tcp(s) => s.as_fd(),
            Stream::Unix(s) => s.as_fd(),
        }
    }
}

impl mio::event::Source for Stream {
    fn register(&mut self, r: &Registry, token: Token, interest: Interest) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.register(r, token, interest),
            Stream::Unix(s) => s.register(r, token, interest),
        }
    }

    fn reregister(&mut self, r: &Registry, token: Token, interest: Interest) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.reregister(r, token, interest),
            Stream::Unix(s) => s.reregister(r, token, interest),
        }
    }

    fn deregister(&mut self, r: &Registry) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.deregister(r),
            Stream::Unix(s) => s.deregister(r),
        }
    }
}

/// A listening socket.
pub(crate) enum Listener {
    Tcp(TcpListener),
    Unix(UnixListener),
}

impl Listener {
    pub(crate) fn accept(&self) -> io::Result<(Stream, StreamAddr)> {
        match self {
            Listener::Tcp(l) => l.accept().map(|(s, a)| (Stream::Tcp(s), StreamAddr::Ip(a))),
            Listener::Unix(l) => l
                .accept()
                .map(|(s, a)| (Stream::Unix(s), StreamAddr::from_unix(&a))),
        }
    }
}

impl mio::event::Source for Listener {
    fn register(&mut self, r: &Registry, token: Token, interest: Interest) -> io::Result<()> {
        match self {
            Listener::Tcp(l) => l.register(r, token, interest),
            Listener::Unix(l) => l.register(r, token, interest),
        }
    }

    fn reregister(&mut self, r: &Registry, token: Token, interest: Interest) -> io::Result<()> {
        match self {
            Listener::Tcp(l) => l.reregister(r, token, interest),
            Listener::Unix(l) => l.reregister(r, token, interest),
        }
    }

    fn deregister(&mut self, r: &Registry) -> io::Result<()> {
        match self {
            Listener::Tcp(l) => l.deregister(r),
            Listener::Unix(l) => l.deregister(r),
        }
    }
}

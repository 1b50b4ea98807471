//! TCP on the loop, with Node `net` semantics.
//!
//! Servers ([`Loop::tcp_listen`]) and sockets ([`Loop::tcp_connect`], or accepted) share one
//! generational slab; a slot's key (index and generation) is its mio `Token`, so the poll phase
//! maps an event back to its handle in O(1) and a stale event (queued for a handle that closed
//! while the same batch of events was being dispatched, its slot possibly reused since) finds a
//! different generation and is ignored. See docs/tcp.md for how a read travels from epoll to `on_data` and how
//! backpressure works.

mod pipe;
mod server;
pub(crate) mod socket;
mod stream;

use std::fmt;
use std::io;

use crate::event_loop::ActiveHandle;
use crate::handle::{GenSlab, HandleError, Key, ServerId, TcpId};
use crate::Loop;

pub use server::{DropInfo, ListenOptions};
pub use socket::SocketOptions;
pub use stream::StreamAddr;

pub(crate) use pipe::errno_name;
pub(crate) use server::Server;
pub(crate) use socket::Socket;

/// Default write high-water mark: `write` returns false once this many bytes are queued
/// (Node 22's `writableHighWaterMark` for sockets).
pub const DEFAULT_HIGH_WATER_MARK: usize = 64 * 1024;

/// Size of the loop's shared read buffer: every socket reads into it, so an idle connection
/// holds no read buffer of its own.
pub const READ_BUFFER_SIZE: usize = 64 * 1024;

/// Why a TCP operation failed.
#[derive(Debug)]
pub enum TcpError {
    /// The socket or server is gone (closed or destroyed).
    Stale,
    /// `write` after `end` (Node's `ERR_STREAM_WRITE_AFTER_END`).
    WriteAfterEnd,
    /// The operating system refused.
    Io(io::Error),
}

impl fmt::Display for TcpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TcpError::Stale => f.write_str("stale handle: the socket or server is gone"),
            TcpError::WriteAfterEnd => f.write_str("write after end"),
            TcpError::Io(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for TcpError {}

impl From<HandleError> for TcpError {
    fn from(_: HandleError) -> TcpError {
        TcpError::Stale
    }
}

impl From<io::Error> for TcpError {
    fn from(e: io::Error) -> TcpError {
        TcpError::Io(e)
    }
}

pub(crate) enum IoEntry {
    Server(Box<Server>),
    Socket(Box<Socket>),
    Udp(Box<crate::udp::Udp>),
}

/// All TCP state of one loop.
#[derive(Default)]
pub(crate) struct Net {
    pub(crate) entries: GenSlab<IoEntry>,
    /// The shared read buffer; taken out while an `on_data` callback borrows it.
    pub(crate) read_buf: Vec<u8>,
    /// Servers that stopped accepting because the process ran out of file descriptors.
    pub(crate) backed_off: Vec<ServerId>,
    /// A retry of the backed-off servers is queued for the pending phase.
    pub(crate) retry_queued: bool,
    /// TLS: decrypted bytes on their way to `on_data` (shared like `read_buf`).
    pub(crate) tls_plain: Vec<u8>,
    /// TLS: ciphertext on its way from rustls to a socket's write path.
    pub(crate) tls_out: Vec<u8>,
}

impl Net {
    pub(crate) fn socket(&self, id: TcpId) -> Option<&Socket> {
        match self.entries.get(id.0) {
            Some(IoEntry::Socket(s)) => Some(s),
            _ => None,
        }
    }

    pub(crate) fn socket_mut(&mut self, id: TcpId) -> Option<&mut Socket> {
        match self.entries.get_mut(id.0) {
            Some(IoEntry::Socket(s)) => Some(s),
            _ => None,
        }
    }

    pub(crate) fn server(&self, id: ServerId) -> Option<&Server> {
        match self.entries.get(id.0) {
            Some(IoEntry::Server(s)) => Some(s),
            _ => None,
        }
    }

    pub(crate) fn server_mut(&mut self, id: ServerId) -> Option<&mut Server> {
        match self.entries.get_mut(id.0) {
            Some(IoEntry::Server(s)) => Some(s),
            _ => None,
        }
    }

    pub(crate) fn socket_refed(&self, id: TcpId) -> Option<bool> {
        self.socket(id).map(|s| s.refed)
    }

    pub(crate) fn socket_refed_mut(&mut self, id: TcpId) -> Option<&mut bool> {
        self.socket_mut(id).map(|s| &mut s.refed)
    }

    pub(crate) fn server_refed(&self, id: ServerId) -> Option<bool> {
        self.server(id).map(|s| s.refed)
    }

    pub(crate) fn server_refed_mut(&mut self, id: ServerId) -> Option<&mut bool> {
        self.server_mut(id).map(|s| &mut s.refed)
    }

    pub(crate) fn active_handles(&self, out: &mut Vec<ActiveHandle>) {
        for key in self.entries.keys() {
            let (kind, refed, at) = match self.entries.get(key) {
                Some(IoEntry::Server(s)) => (s.kind(), s.refed, s.created_at),
                Some(IoEntry::Socket(s)) => (s.stream.kind(), s.refed, s.created_at),
                Some(IoEntry::Udp(u)) => ("udp", u.refed, u.created_at),
                None => continue,
            };
            if refed {
                out.push(ActiveHandle {
                    kind,
                    created_at: Some(format!("{}:{}", at.file(), at.line())),
                });
            }
        }
    }

    /// Number of open sockets (accepted and connected) on this loop.
    pub(crate) fn socket_count(&self) -> usize {
        self.entries
            .keys()
            .filter(|k| matches!(self.entries.get(*k), Some(IoEntry::Socket(_))))
            .count()
    }
}

impl Loop {
    /// Routes one poller event to the server or socket whose key is the token.
    pub(crate) fn dispatch_io(&mut self, token: usize, event: &mio::event::Event) {
        let Some(key) = Loop::key_of(token, &self.net.entries) else {
            return; // the handle closed after the event was queued
        };
        match self.net.entries.get(key) {
            Some(IoEntry::Server(_)) => self.server_accept(ServerId(key)),
            Some(IoEntry::Socket(_)) => self.socket_event(TcpId(key), event),
            Some(IoEntry::Udp(_)) => self.udp_event(crate::UdpId(key), event),
            None => {}
        }
    }

    /// Open stream sockets on this loop (accepted and connected; TCP and pipes, child process
    /// stdio included).
    pub fn tcp_socket_count(&self) -> usize {
        self.net.socket_count()
    }

    /// The token a handle registers with: its slot index in the low 32 bits and its generation
    /// in the high 32 bits, so an event for a closed handle cannot reach the one that reused the
    /// slot. (On a 32-bit target the token is the index alone.)
    pub(crate) fn token_of(key: Key) -> mio::Token {
        let packed = (u64::from(key.gen) << 32) | u64::from(key.index);
        mio::Token(usize::try_from(packed).unwrap_or(key.index()))
    }

    fn key_of(token: usize, entries: &GenSlab<IoEntry>) -> Option<Key> {
        if usize::BITS < 64 {
            return entries.key_at(token);
        }
        let raw = token as u64;
        let key = Key {
            index: (raw & 0xFFFF_FFFF) as u32,
            gen: (raw >> 32) as u32,
        };
        entries.get(key).map(|_| key)
    }
}

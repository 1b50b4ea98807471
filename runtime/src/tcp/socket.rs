//! Sockets: reading into the loop's shared buffer, a write queue behind a high-water mark,
//! half-close, pause/resume, idle timeouts, connect.

use std::collections::VecDeque;
use std::io::{self, IoSlice};
use std::net::{Shutdown, SocketAddr};
use std::panic::Location;

use bytes::{Buf, Bytes};
use mio::net::TcpStream;
use mio::Interest;
use socket2::{Domain, Protocol, Socket as RawSocket, Type};

use super::stream::{not_ip, Stream, StreamAddr};
use super::{IoEntry, TcpError, DEFAULT_HIGH_WATER_MARK, READ_BUFFER_SIZE};
use crate::handle::{ProcessId, ServerId, TcpId, TimerId};
use crate::tls::TlsLayer;
use crate::trace::CallbackKind;
use crate::Loop;

/// Reads per readiness event before yielding to other sockets (the rest is read in the next
/// iteration's pending phase): 16 x 64 KiB.
const MAX_READS_PER_EVENT: usize = 16;
/// Buffers handed to one `writev`.
const MAX_IOVECS: usize = 64;

/// A corked socket writes through once this many bytes are held back (see [`Loop::tcp_cork`]).
pub const CORK_WRITE_THROUGH: usize = 16 * 1024;

/// Per-socket options (Node's `net.Socket` constructor options and setters).
#[derive(Clone, Debug)]
pub struct SocketOptions {
    /// `write` returns false once at least this many bytes are queued (64 KiB, as Node 22).
    pub high_water_mark: usize,
    /// Keep the writable side open after the peer's FIN (Node's `allowHalfOpen`, default
    /// false: the socket ends itself after `on_end`).
    pub allow_half_open: bool,
    /// Disable Nagle's algorithm (`TCP_NODELAY`).
    pub no_delay: bool,
}

impl SocketOptions {
    /// Defaults for accepted sockets: `no_delay` on, as Node's `http` server sets it.
    pub fn server_default() -> SocketOptions {
        SocketOptions {
            high_water_mark: DEFAULT_HIGH_WATER_MARK,
            allow_half_open: false,
            no_delay: true,
        }
    }
}

impl Default for SocketOptions {
    /// Defaults for client sockets (Node's: Nagle on).
    fn default() -> Self {
        SocketOptions {
            no_delay: false,
            ..SocketOptions::server_default()
        }
    }
}

type DataCallback = Box<dyn FnMut(&mut Loop, TcpId, &[u8])>;
type EventCallback = Box<dyn FnMut(&mut Loop, TcpId)>;
type ErrorCallback = Box<dyn FnMut(&mut Loop, TcpId, &io::Error)>;
type CloseCallback = Box<dyn FnOnce(&mut Loop, TcpId, bool)>;

/// `repr(C)` with `on_data` first: it is the one every read calls, and it then sits in the
/// socket's second cache line with the other hot fields (see `Socket`).
#[derive(Default)]
#[repr(C)]
pub(crate) struct Callbacks {
    on_data: Option<DataCallback>,
    on_end: Option<EventCallback>,
    on_drain: Option<EventCallback>,
    on_timeout: Option<EventCallback>,
    on_connect: Option<EventCallback>,
    on_error: Option<ErrorCallback>,
    on_close: Option<CloseCallback>,
}

/// The writable side.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum WriteSide {
    Open,
    /// `end()` was called: flush the queue, then shut down.
    Ending,
    /// FIN sent.
    Shut,
}

struct IdleTimeout {
    ms: u64,
    timer: Option<TimerId>,
    last_active: u64,
}

/// `repr(C)`, hot fields first: a request on a keep-alive socket (one read, one write) touches
/// only the first two cache lines (`align(64)`): the fields up to `callbacks.on_data`. With
/// 10,000 connections no socket is still in the cache when its next request comes, so every
/// further line touched is a miss (see docs/benchmarks.md, "10,000 connections"). Checked in
/// the release build (`offset_of!`); some other builds lay out a field larger, so no
/// compile-time assertion holds it (yet).
#[repr(C, align(64))]
pub(crate) struct Socket {
    // -- line 1 --
    /// TCP or Unix: the only field that differs between the two.
    pub(crate) stream: Stream,
    pub(crate) connecting: bool,
    pub(crate) paused: bool,
    pub(crate) read_ended: bool,
    pub(crate) write_side: WriteSide,
    pub(crate) need_drain: bool,
    /// `tcp_cork` nesting depth; while above 0, writes are queued without a syscall (on a TLS
    /// socket: plaintext is held back before encryption, see `tls/`).
    pub(crate) corked: u32,
    /// The TLS session when the socket is encrypted: reads are decrypted before `on_data`,
    /// writes encrypted before the queue (see `crate::tls`).
    pub(crate) tls: Option<Box<TlsLayer>>,
    timeout: Option<IdleTimeout>,
    // -- line 2 --
    pub(crate) queue: VecDeque<Bytes>,
    bytes_read: u64,
    bytes_written: u64,
    /// `on_data` first (see `Callbacks`).
    callbacks: Callbacks,
    // -- cold: set once, or read only when the queue is used --
    /// Bytes written and not yet accepted by the kernel: the write queue, plus (on a TLS
    /// socket) plaintext written before the handshake completed.
    pub(crate) queued: usize,
    pub(crate) server: Option<ServerId>,
    /// Bytes queued while corked: not yet offered to the kernel, so they do not count toward
    /// the high-water mark (see [`Loop::tcp_cork`]).
    corked_bytes: usize,
    pub(crate) options: SocketOptions,
    pub(crate) refed: bool,
    pub(crate) created_at: &'static Location<'static>,
    /// The child process this socket is a stdio stream of: told when the socket closes.
    pub(crate) process: Option<ProcessId>,
}

/// Takes a callback out of its slot, runs it with the loop, and puts it back unless the socket
/// closed or the callback installed a replacement. Ticks and microtasks drain afterwards.
macro_rules! emit {
    ($lp:ident, $id:expr, $field:ident, |$cb:ident, $arg:ident| $call:expr) => {{
        let id: TcpId = $id;
        if let Some(mut $cb) = $lp
            .net
            .socket_mut(id)
            .and_then(|s| s.callbacks.$field.take())
        {
            $lp.trace_callback(CallbackKind::Io);
            $lp.invoke(CallbackKind::Io, |$arg| $call);
            if let Some(s) = $lp.net.socket_mut(id) {
                if s.callbacks.$field.is_none() {
                    s.callbacks.$field = Some($cb);
                }
            }
            $lp.after_callback();
            true
        } else {
            false
        }
    }};
}

/// What `tcp_write` was given: a borrowed slice (copied only if it must be queued) or owned
/// bytes (queued without a copy).
pub(crate) enum Chunk<'a> {
    Borrowed(&'a [u8]),
    Owned(Bytes),
}

fn would_block(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::WouldBlock
}

fn interrupted(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::Interrupted
}

impl Loop {
    /// Registers a connected (or connecting) stream as a socket of this loop.
    #[track_caller]
    pub(crate) fn socket_adopt(
        &mut self,
        stream: Stream,
        server: Option<ServerId>,
        options: SocketOptions,
        connected: bool,
    ) -> io::Result<TcpId> {
        if options.no_delay {
            let _ = stream.set_nodelay(true); // a no-op on a Unix socket
        }
        // Registered once for both directions: with edge-triggered polling this costs no
        // syscall per write and no spurious events (EPOLLOUT edges only follow a full buffer).
        let key = self.net.entries.insert(IoEntry::Socket(Box::new(Socket {
            stream,
            server,
            connecting: !connected,
            paused: false,
            read_ended: false,
            write_side: WriteSide::Open,
            queue: VecDeque::new(),
            queued: 0,
            need_drain: false,
            corked: 0,
            corked_bytes: 0,
            options,
            timeout: None,
            callbacks: Callbacks::default(),
            bytes_read: 0,
            bytes_written: 0,
            refed: true,
            created_at: Location::caller(),
            process: None,
            tls: None,
        })));
        let id = TcpId(key);
        let registered = match self.net.entries.get_mut(key) {
            Some(IoEntry::Socket(s)) => self.poll.registry().register(
                &mut s.stream,
                Loop::token_of(key),
                Interest::READABLE | Interest::WRITABLE,
            ),
            _ => Ok(()),
        };
        if let Err(e) = registered {
            self.net.entries.remove(key);
            return Err(e);
        }
        self.refs += 1;
        Ok(id)
    }

    /// Opens a connection to `addr` (Node's `net.connect`). `on_connect` runs once connected;
    /// a refused or failed connection is reported to the socket's `on_error`, then `on_close`
    /// with `had_error = true`, always from a later callback, never from inside this call (even
    /// when the kernel refuses a loopback connect synchronously). Writes before the connection
    /// completes are queued.
    ///
    /// # Errors
    /// Only when no socket could be created (out of file descriptors, bad address family).
    #[track_caller]
    pub fn tcp_connect(
        &mut self,
        addr: SocketAddr,
        options: SocketOptions,
        on_connect: impl FnMut(&mut Loop, TcpId) + 'static,
    ) -> io::Result<TcpId> {
        let raw = RawSocket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
        raw.set_nonblocking(true)?;
        let failed = match raw.connect(&addr.into()) {
            Ok(()) => None,
            Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) || interrupted(&e) => None,
            Err(e) => Some(e),
        };
        let stream = TcpStream::from_std(std::net::TcpStream::from(raw));
        let id = self.socket_adopt(Stream::Tcp(stream), None, options, false)?;
        if let Some(s) = self.net.socket_mut(id) {
            s.callbacks.on_connect = Some(Box::new(on_connect));
        }
        if let Some(e) = failed {
            self.defer(move |lp| lp.socket_fail(id, e));
        }
        Ok(id)
    }

    /// Installs the connect callback of a socket made by a `*_connect`.
    pub(crate) fn tcp_on_connect_inner(&mut self, id: TcpId, cb: EventCallback) {
        if let Some(s) = self.net.socket_mut(id) {
            s.callbacks.on_connect = Some(cb);
        }
    }

    // -- callbacks ------------------------------------------------------------------------------

    /// Calls `callback(lp, id, bytes)` for each chunk read (Node's `'data'`). The slice borrows
    /// the loop's shared read buffer: copy what you keep.
    ///
    /// # Errors
    /// [`TcpError::Stale`] if the socket is gone.
    pub fn tcp_on_data(
        &mut self,
        id: TcpId,
        callback: impl FnMut(&mut Loop, TcpId, &[u8]) + 'static,
    ) -> Result<(), TcpError> {
        self.socket_callbacks(id)?.on_data = Some(Box::new(callback));
        Ok(())
    }

    /// Calls `callback` when the peer ends its side (FIN; Node's `'end'`).
    ///
    /// # Errors
    /// [`TcpError::Stale`] if the socket is gone.
    pub fn tcp_on_end(
        &mut self,
        id: TcpId,
        callback: impl FnMut(&mut Loop, TcpId) + 'static,
    ) -> Result<(), TcpError> {
        self.socket_callbacks(id)?.on_end = Some(Box::new(callback));
        Ok(())
    }

    /// Calls `callback` when the write queue empties after `tcp_write` returned false (Node's
    /// `'drain'`).
    ///
    /// # Errors
    /// [`TcpError::Stale`] if the socket is gone.
    pub fn tcp_on_drain(
        &mut self,
        id: TcpId,
        callback: impl FnMut(&mut Loop, TcpId) + 'static,
    ) -> Result<(), TcpError> {
        self.socket_callbacks(id)?.on_drain = Some(Box::new(callback));
        Ok(())
    }

    /// Calls `callback` when the socket has been idle for the time set with
    /// [`Loop::tcp_set_timeout`] (Node's `'timeout'`); the socket is not closed.
    ///
    /// # Errors
    /// [`TcpError::Stale`] if the socket is gone.
    pub fn tcp_on_timeout(
        &mut self,
        id: TcpId,
        callback: impl FnMut(&mut Loop, TcpId) + 'static,
    ) -> Result<(), TcpError> {
        self.socket_callbacks(id)?.on_timeout = Some(Box::new(callback));
        Ok(())
    }

    /// Calls `callback` on a socket error (reset, refused, broken pipe). `on_close` follows with
    /// `had_error = true`. Without this callback the error is logged at debug level.
    ///
    /// # Errors
    /// [`TcpError::Stale`] if the socket is gone.
    pub fn tcp_on_error(
        &mut self,
        id: TcpId,
        callback: impl FnMut(&mut Loop, TcpId, &io::Error) + 'static,
    ) -> Result<(), TcpError> {
        self.socket_callbacks(id)?.on_error = Some(Box::new(callback));
        Ok(())
    }

    /// Calls `callback(lp, id, had_error)` once, in the close phase after the socket closed
    /// (Node's `'close'`). The id is stale by then.
    ///
    /// # Errors
    /// [`TcpError::Stale`] if the socket is gone.
    pub fn tcp_on_close(
        &mut self,
        id: TcpId,
        callback: impl FnOnce(&mut Loop, TcpId, bool) + 'static,
    ) -> Result<(), TcpError> {
        self.socket_callbacks(id)?.on_close = Some(Box::new(callback));
        Ok(())
    }

    fn socket_callbacks(&mut self, id: TcpId) -> Result<&mut Callbacks, TcpError> {
        self.net
            .socket_mut(id)
            .map(|s| &mut s.callbacks)
            .ok_or(TcpError::Stale)
    }

    // -- writing --------------------------------------------------------------------------------

    /// Writes `data`: straight to the kernel when nothing is queued, the remainder (copied)
    /// queued. Returns `false` once the queue holds at least the high-water mark; `on_drain`
    /// follows when it empties (Node's `socket.write`). Data is never dropped by backpressure.
    ///
    /// # Errors
    /// [`TcpError::Stale`] if the socket is gone, [`TcpError::WriteAfterEnd`] after `tcp_end`.
    pub fn tcp_write(&mut self, id: TcpId, data: &[u8]) -> Result<bool, TcpError> {
        self.tcp_write_inner(id, Chunk::Borrowed(data))
    }

    /// Like [`Loop::tcp_write`] but takes ownership: a remainder is queued without copying.
    ///
    /// # Errors
    /// As [`Loop::tcp_write`].
    pub fn tcp_write_bytes(&mut self, id: TcpId, data: Bytes) -> Result<bool, TcpError> {
        self.tcp_write_inner(id, Chunk::Owned(data))
    }

    fn tcp_write_inner(&mut self, id: TcpId, chunk: Chunk<'_>) -> Result<bool, TcpError> {
        let s = self.net.socket_mut(id).ok_or(TcpError::Stale)?;
        if s.write_side != WriteSide::Open {
            return Err(TcpError::WriteAfterEnd);
        }
        if s.tls.is_some() {
            let data: &[u8] = match &chunk {
                Chunk::Borrowed(d) => d,
                Chunk::Owned(b) => b,
            };
            return Ok(self.tls_write(id, data));
        }
        self.socket_send(id, chunk)
    }

    /// Sends bytes as they are (ciphertext, on a TLS socket): straight to the kernel when
    /// nothing is queued, the rest queued. Returns whether the queue is below the high-water
    /// mark. Does not check the write side: `tcp_end` sends TLS's close_notify through here.
    pub(crate) fn socket_send(&mut self, id: TcpId, chunk: Chunk<'_>) -> Result<bool, TcpError> {
        let data: &[u8] = match &chunk {
            Chunk::Borrowed(d) => d,
            Chunk::Owned(b) => b,
        };
        let now = self.now();
        let s = self.net.socket_mut(id).ok_or(TcpError::Stale)?;
        if data.is_empty() {
            return Ok(s.queued < s.options.high_water_mark);
        }
        s.touch(now);
        if s.holds_back() {
            s.corked_bytes += data.len();
            s.queued += data.len();
            s.queue.push_back(match chunk {
                Chunk::Owned(b) => b,
                Chunk::Borrowed(d) => Bytes::copy_from_slice(d),
            });
            if s.corked_bytes < CORK_WRITE_THROUGH {
                return Ok(s.queued - s.corked_bytes < s.options.high_water_mark);
            }
            // Enough held back: write it now (still corked), so a large burst streams and the
            // return value reports what the kernel refused.
            self.socket_flush_corked(id);
            return Ok(self
                .net
                .socket(id)
                .is_some_and(|s| s.queued < s.options.high_water_mark));
        }
        let mut written = 0;
        if s.queue.is_empty() && !s.connecting {
            loop {
                match s.stream.write(&data[written..]) {
                    Ok(n) => {
                        written += n;
                        s.bytes_written += n as u64;
                        if written == data.len() {
                            return Ok(true);
                        }
                    }
                    Err(e) if would_block(&e) => break,
                    Err(e) if interrupted(&e) => continue,
                    Err(e) => {
                        // Report asynchronously, like Node: the caller is mid-callback.
                        self.defer(move |lp| lp.socket_fail(id, e));
                        return Ok(false);
                    }
                }
            }
        }
        let rest = match chunk {
            Chunk::Owned(mut b) => {
                b.advance(written);
                b
            }
            Chunk::Borrowed(d) => Bytes::copy_from_slice(&d[written..]),
        };
        s.queued += rest.len();
        s.queue.push_back(rest);
        let below = s.queued < s.options.high_water_mark;
        if !below {
            s.need_drain = true;
        }
        Ok(below)
    }

    /// Holds back writes until the matching [`Loop::tcp_uncork`] (Node's `socket.cork()`):
    /// they are queued without a syscall, and the uncork sends them together (one `writev` of
    /// up to 64 buffers per syscall). Calls nest; the outermost uncork flushes. Use it around a
    /// burst of small writes made in one callback, e.g. every reply to one read.
    ///
    /// Two differences from Node: corked bytes do not count toward the high-water mark until
    /// they have been offered to the kernel (`tcp_write` returns `false` while corked only for
    /// bytes the kernel refused), and a corked socket writes through once
    /// [`CORK_WRITE_THROUGH`] (16 KiB) are held back, so a large burst streams instead of
    /// piling up. What the kernel refuses stays queued; `on_drain` follows when it empties if
    /// the queue reached the high-water mark.
    ///
    /// # Errors
    /// [`TcpError::Stale`] if the socket is gone.
    pub fn tcp_cork(&mut self, id: TcpId) -> Result<(), TcpError> {
        let s = self.net.socket_mut(id).ok_or(TcpError::Stale)?;
        s.corked += 1;
        Ok(())
    }

    /// Ends one [`Loop::tcp_cork`]; the outermost one writes what was held back. Uncorking a
    /// socket that is not corked does nothing.
    ///
    /// # Errors
    /// [`TcpError::Stale`] if the socket is gone.
    pub fn tcp_uncork(&mut self, id: TcpId) -> Result<(), TcpError> {
        let s = self.net.socket_mut(id).ok_or(TcpError::Stale)?;
        if s.corked == 0 {
            return Ok(());
        }
        s.corked -= 1;
        if s.corked > 0 {
            return Ok(());
        }
        if s.tls.is_some() {
            self.tls_seal_corked(id);
            return Ok(());
        }
        self.socket_flush_corked(id);
        Ok(())
    }

    /// Writes what a corked socket holds back (and a FIN `tcp_end` held back once the queue
    /// empties), without running `on_drain`: the caller is mid-callback, so a drain that falls
    /// due runs from the pending phase instead. What the kernel refuses stays queued, and
    /// counts toward the high-water mark from now on (`on_drain` follows if it reaches it).
    /// The socket's cork depth is unchanged.
    fn socket_flush_corked(&mut self, id: TcpId) {
        let Some(s) = self.net.socket_mut(id) else {
            return;
        };
        let corked = std::mem::replace(&mut s.corked, 0);
        s.corked_bytes = 0;
        let drain_due = std::mem::replace(&mut s.need_drain, false);
        self.socket_flush(id);
        let Some(s) = self.net.socket_mut(id) else {
            return;
        };
        s.corked = corked;
        if !s.queue.is_empty() {
            s.need_drain = drain_due || s.queued >= s.options.high_water_mark;
        } else if drain_due {
            self.defer(move |lp| {
                emit!(lp, id, on_drain, |cb, lp| cb(lp, id));
            });
        }
    }

    /// Whether writes are being held back by [`Loop::tcp_cork`].
    pub fn tcp_is_corked(&self, id: TcpId) -> bool {
        self.net.socket(id).is_some_and(|s| s.corked > 0)
    }

    /// Bytes queued and not yet accepted by the kernel (Node's `writableLength`).
    ///
    /// # Errors
    /// [`TcpError::Stale`] if the socket is gone.
    pub fn tcp_queued(&self, id: TcpId) -> Result<usize, TcpError> {
        self.net.socket(id).map(|s| s.queued).ok_or(TcpError::Stale)
    }

    /// Changes the high-water mark that `tcp_write` compares the queue against (Node's
    /// `writableHighWaterMark`, which Node fixes at construction). With `1`, `tcp_write`
    /// returns `false` whenever anything stays queued and `on_drain` follows every time the
    /// queue empties (the WebSocket layer relies on this for its `Backpressured` status).
    ///
    /// # Errors
    /// [`TcpError::Stale`] if the socket is gone.
    pub fn tcp_set_high_water_mark(&mut self, id: TcpId, bytes: usize) -> Result<(), TcpError> {
        let s = self.net.socket_mut(id).ok_or(TcpError::Stale)?;
        s.options.high_water_mark = bytes.max(1);
        Ok(())
    }

    /// Flushes the queue, then sends FIN (Node's `socket.end()`). If the peer already ended,
    /// the socket closes once the FIN is sent.
    ///
    /// # Errors
    /// [`TcpError::Stale`] if the socket is gone.
    pub fn tcp_end(&mut self, id: TcpId) -> Result<(), TcpError> {
        let s = self.net.socket_mut(id).ok_or(TcpError::Stale)?;
        if s.write_side != WriteSide::Open {
            return Ok(());
        }
        if s.tls.is_some() {
            // Held-back plaintext, then close_notify, go out before the FIN.
            self.tls_end(id);
        }
        let Some(s) = self.net.socket_mut(id) else {
            return Ok(());
        };
        s.write_side = WriteSide::Ending;
        if s.queue.is_empty() && !s.connecting && !s.holds_back() && !s.tls_handshaking() {
            self.socket_shutdown_write(id);
        }
        Ok(())
    }

    /// Closes the socket now, dropping queued data (Node's `socket.destroy()`). `on_close` runs
    /// in the close phase with `had_error = false`.
    ///
    /// # Errors
    /// [`TcpError::Stale`] if the socket is already gone.
    pub fn tcp_destroy(&mut self, id: TcpId) -> Result<(), TcpError> {
        if self.net.socket(id).is_none() {
            return Err(TcpError::Stale);
        }
        self.socket_close(id, false);
        Ok(())
    }

    fn socket_flush(&mut self, id: TcpId) {
        let Some(s) = self.net.socket_mut(id) else {
            return;
        };
        if s.connecting || s.holds_back() {
            return;
        }
        while !s.queue.is_empty() {
            let mut slices = [IoSlice::new(&[]); MAX_IOVECS];
            let n_slices = s.queue.len().min(MAX_IOVECS);
            for (slot, buf) in slices.iter_mut().zip(s.queue.iter()) {
                *slot = IoSlice::new(buf);
            }
            match s.stream.write_vectored(&slices[..n_slices]) {
                Ok(0) => {
                    // The queue holds no empty buffers, so the kernel took nothing it was offered.
                    let e = io::Error::from(io::ErrorKind::WriteZero);
                    self.socket_fail(id, e);
                    return;
                }
                Ok(mut n) => {
                    s.queued -= n;
                    s.bytes_written += n as u64;
                    while n > 0 {
                        let front = s.queue.front_mut().expect("n <= queued");
                        if front.len() <= n {
                            n -= front.len();
                            s.queue.pop_front();
                        } else {
                            front.advance(n);
                            n = 0;
                        }
                    }
                }
                Err(e) if would_block(&e) => return,
                Err(e) if interrupted(&e) => continue,
                Err(e) => {
                    self.socket_fail(id, e);
                    return;
                }
            }
        }
        // Queue empty.
        if s.tls_handshaking() {
            // Handshake messages went out; `write`s made meanwhile wait for the handshake,
            // and so do `end` and `drain`.
            return;
        }
        let need_drain = std::mem::replace(&mut s.need_drain, false);
        let ending = s.write_side == WriteSide::Ending;
        if ending {
            self.socket_shutdown_write(id);
        }
        if need_drain {
            emit!(self, id, on_drain, |cb, lp| cb(lp, id));
        }
    }

    pub(crate) fn socket_shutdown_write(&mut self, id: TcpId) {
        let Some(s) = self.net.socket_mut(id) else {
            return;
        };
        s.write_side = WriteSide::Shut;
        let _ = s.stream.shutdown(Shutdown::Write);
        if s.read_ended {
            self.socket_close(id, false);
        }
    }

    // -- reading --------------------------------------------------------------------------------

    /// Stops reading (Node's `socket.pause()`): the kernel buffer fills and TCP flow control
    /// pushes back on the peer.
    ///
    /// # Errors
    /// [`TcpError::Stale`] if the socket is gone.
    pub fn tcp_pause(&mut self, id: TcpId) -> Result<(), TcpError> {
        self.net.socket_mut(id).ok_or(TcpError::Stale)?.paused = true;
        Ok(())
    }

    /// Resumes reading (Node's `socket.resume()`). Data that arrived while paused is delivered
    /// from the next pending phase (no new readiness event would report it). That read goes on
    /// until the kernel buffer is empty: a FIN that arrived while paused was reported by an
    /// event we ignored, so a short read proves nothing.
    ///
    /// # Errors
    /// [`TcpError::Stale`] if the socket is gone.
    pub fn tcp_resume(&mut self, id: TcpId) -> Result<(), TcpError> {
        let s = self.net.socket_mut(id).ok_or(TcpError::Stale)?;
        if s.paused {
            s.paused = false;
            self.defer(move |lp| lp.socket_read(id, true));
        }
        Ok(())
    }

    /// Whether reading is paused.
    pub fn tcp_is_paused(&self, id: TcpId) -> bool {
        self.net.socket(id).is_some_and(|s| s.paused)
    }

    /// Reads until the kernel buffer is empty, the socket pauses or closes, or the fairness cap.
    /// `drain` (the event reported read-closed, or no event will follow because we stopped
    /// early) disables the short-read rule: read until `WouldBlock` or EOF.
    fn socket_read(&mut self, id: TcpId, drain: bool) {
        let mut buf = std::mem::take(&mut self.net.read_buf);
        if buf.len() < READ_BUFFER_SIZE {
            buf.resize(READ_BUFFER_SIZE, 0);
        }
        let mut reads = 0;
        if self.net.socket(id).is_some_and(|s| s.tls.is_some()) && !self.tls_receive_stashed(id) {
            self.net.read_buf = buf;
            return;
        }
        while let Some(s) = self.net.socket_mut(id) {
            if s.paused || s.read_ended || s.connecting {
                break;
            }
            if reads == MAX_READS_PER_EVENT {
                // Fairness: let other sockets run; continue next iteration.
                self.defer(move |lp| lp.socket_read(id, true));
                break;
            }
            reads += 1;
            match s.stream.read(&mut buf) {
                Ok(0) => {
                    s.read_ended = true;
                    if s.tls_handshaking() {
                        self.tls_closed_during_handshake(id);
                        break;
                    }
                    self.socket_on_eof(id);
                    break;
                }
                Ok(n) => {
                    let now = self.now();
                    let s = self.net.socket_mut(id).expect("checked above");
                    s.bytes_read += n as u64;
                    s.touch(now);
                    let short = n < buf.len();
                    if s.tls.is_some() {
                        if !self.tls_receive(id, &buf[..n]) {
                            break;
                        }
                    } else {
                        emit!(self, id, on_data, |cb, lp| cb(lp, id, &buf[..n]));
                    }
                    // A short read drained the kernel buffer: a new edge will report new data or
                    // the FIN, unless the FIN was already reported with this event.
                    if short && !drain {
                        break;
                    }
                }
                Err(e) if would_block(&e) => break,
                Err(e) if interrupted(&e) => continue,
                Err(e) => {
                    self.socket_fail(id, e);
                    break;
                }
            }
        }
        self.net.read_buf = buf;
    }

    /// Emits `on_data` (a TLS socket's decrypted bytes).
    pub(crate) fn socket_emit_data(&mut self, id: TcpId, data: &[u8]) {
        emit!(self, id, on_data, |cb, lp| cb(lp, id, data));
    }

    /// Emits `on_connect` (a TLS client's, once its handshake completed).
    pub(crate) fn socket_emit_connect(&mut self, id: TcpId) {
        emit!(self, id, on_connect, |cb, lp| cb(lp, id));
    }

    /// Emits `on_drain` from the pending phase (the caller is mid-callback).
    pub(crate) fn socket_defer_drain(&mut self, id: TcpId) {
        self.defer(move |lp| {
            emit!(lp, id, on_drain, |cb, lp| cb(lp, id));
        });
    }

    pub(crate) fn socket_on_eof(&mut self, id: TcpId) {
        emit!(self, id, on_end, |cb, lp| cb(lp, id));
        let Some(s) = self.net.socket_mut(id) else {
            return;
        };
        match s.write_side {
            WriteSide::Shut => self.socket_close(id, false),
            _ if !s.options.allow_half_open => {
                let _ = self.tcp_end(id);
            }
            _ => {}
        }
    }

    // -- events ---------------------------------------------------------------------------------

    pub(crate) fn socket_event(&mut self, id: TcpId, event: &mio::event::Event) {
        let Some(s) = self.net.socket_mut(id) else {
            return;
        };
        if s.connecting {
            if !(event.is_writable() || event.is_error() || event.is_write_closed()) {
                return;
            }
            match s.stream.take_error() {
                Ok(Some(e)) | Err(e) => return self.socket_fail(id, e),
                Ok(None) => {}
            }
            match s.stream.check_connected() {
                Ok(()) => {
                    s.connecting = false;
                    // A TLS client is connected once its handshake completes: the ClientHello
                    // is already queued and goes out with the flush below.
                    if s.tls.is_none() {
                        emit!(self, id, on_connect, |cb, lp| cb(lp, id));
                    }
                    // Writes queued while connecting, then the FIN if `end` was called.
                    self.socket_flush(id);
                }
                // Not connected yet and no error: a spurious event (mio allows them); the
                // connect's own event follows. Only a hang-up or error flag means it failed.
                Err(e) if e.kind() == io::ErrorKind::NotConnected => {
                    if !(event.is_error() || event.is_write_closed()) {
                        return;
                    }
                    let e = s.stream.take_error().ok().flatten().unwrap_or(e);
                    return self.socket_fail(id, e);
                }
                Err(e) => return self.socket_fail(id, e),
            }
        }
        if event.is_readable() || event.is_read_closed() {
            self.socket_read(id, event.is_read_closed());
        }
        if event.is_writable() {
            let has_queue = self.net.socket(id).is_some_and(|s| !s.queue.is_empty());
            if has_queue {
                self.socket_flush(id);
            }
        }
        if event.is_error() {
            if let Some(s) = self.net.socket_mut(id) {
                if let Ok(Some(e)) = s.stream.take_error() {
                    self.socket_fail(id, e);
                }
            }
        }
    }

    /// An I/O error: report it to `on_error`, then close with `had_error = true`.
    pub(crate) fn socket_fail(&mut self, id: TcpId, e: io::Error) {
        if self.net.socket(id).is_none() {
            return;
        }
        if !emit!(self, id, on_error, |cb, lp| cb(lp, id, &e)) {
            let server = self
                .net
                .socket(id)
                .filter(|s| s.tls_handshaking())
                .and_then(|s| s.server);
            match server {
                // A TLS connection the server's listener has not seen yet (Node's
                // `tlsClientError`).
                Some(server) => self.server_report_tls_error(server, id, &e),
                None => log::debug!("socket {} error: {e}", id.index()),
            }
        }
        self.socket_close(id, true);
    }

    /// Closes the fd now and queues `on_close` for the close phase. The id is stale afterwards.
    pub(crate) fn socket_close(&mut self, id: TcpId, had_error: bool) {
        let Some(IoEntry::Socket(mut s)) = self.net.entries.remove(id.0) else {
            return;
        };
        let _ = self.registry().deregister(&mut s.stream);
        if s.refed {
            self.refs -= 1;
        }
        if let Some(t) = s.timeout.as_ref().and_then(|t| t.timer) {
            let _ = self.clear_timeout(t);
        }
        if let Some(t) = s.tls.as_ref().and_then(|t| t.handshake_timer()) {
            let _ = self.clear_timeout(t);
        }
        drop(s.stream);
        // The socket's close callback goes first: a closing server's callback (queued by
        // `server_maybe_finish_close`) runs after its last connection's, as in Node.
        if let Some(cb) = s.callbacks.on_close.take() {
            self.queue_close(move |lp| cb(lp, id, had_error));
        }
        if let Some(process) = s.process {
            self.process_stdio_closed(process, id);
        }
        if let Some(server) = s.server {
            if let Some(srv) = self.net.server_mut(server) {
                srv.connections -= 1;
            }
            self.server_maybe_finish_close(server);
        }
        self.servers_retry_after_close();
    }

    // -- options --------------------------------------------------------------------------------

    /// Emits `on_timeout` after `ms` of inactivity (no read, no write); 0 disables (Node's
    /// `socket.setTimeout`). The socket is not closed.
    ///
    /// Activity costs no timer work: the socket stamps the loop time, and when the timer fires
    /// early relative to the stamp it re-arms for the remainder (Node's unrefActive idea).
    ///
    /// # Errors
    /// [`TcpError::Stale`] if the socket is gone.
    pub fn tcp_set_timeout(&mut self, id: TcpId, ms: u64) -> Result<(), TcpError> {
        let now = self.now();
        let s = self.net.socket_mut(id).ok_or(TcpError::Stale)?;
        let old = s.timeout.take().and_then(|t| t.timer);
        if let Some(t) = old {
            let _ = self.clear_timeout(t);
        }
        if ms == 0 {
            return Ok(());
        }
        let s = self.net.socket_mut(id).expect("checked above");
        s.timeout = Some(IdleTimeout {
            ms,
            timer: None,
            last_active: now,
        });
        self.socket_arm_idle_timer(id, ms);
        Ok(())
    }

    fn socket_arm_idle_timer(&mut self, id: TcpId, after_ms: u64) {
        let timer = self.set_timeout(after_ms, move |lp| lp.socket_idle_timer_fired(id));
        // The socket keeps the loop alive, not its timer.
        let _ = self.unref(timer);
        match self.net.socket_mut(id).and_then(|s| s.timeout.as_mut()) {
            Some(t) => t.timer = Some(timer),
            None => {
                let _ = self.clear_timeout(timer);
            }
        }
    }

    fn socket_idle_timer_fired(&mut self, id: TcpId) {
        let now = self.now();
        let Some(t) = self.net.socket_mut(id).and_then(|s| s.timeout.as_mut()) else {
            return;
        };
        t.timer = None;
        let idle_for = now.saturating_sub(t.last_active);
        if idle_for < t.ms {
            let remaining = t.ms - idle_for;
            self.socket_arm_idle_timer(id, remaining);
            return;
        }
        let ms = t.ms;
        t.last_active = now;
        emit!(self, id, on_timeout, |cb, lp| cb(lp, id));
        // Keep watching: the next idle period emits again (Node re-arms on activity; emitting
        // once per idle period is the observable behaviour).
        let still = self
            .net
            .socket(id)
            .is_some_and(|s| s.timeout.as_ref().is_some_and(|t| t.timer.is_none()));
        if still {
            self.socket_arm_idle_timer(id, ms);
        }
    }

    /// Enables or disables Nagle's algorithm (`TCP_NODELAY`, Node's `setNoDelay`). On a Unix
    /// socket it does nothing and returns `Ok`, as Node's `setNoDelay` on a pipe.
    ///
    /// # Errors
    /// [`TcpError::Stale`] or the OS error.
    pub fn tcp_set_nodelay(&mut self, id: TcpId, on: bool) -> Result<(), TcpError> {
        let s = self.net.socket(id).ok_or(TcpError::Stale)?;
        s.stream.set_nodelay(on)?;
        Ok(())
    }

    /// Enables TCP keep-alive probes after `idle` (Node's `setKeepAlive(true, delay)`), or
    /// disables them with `None`. On a Unix socket it does nothing and returns `Ok`, as Node's
    /// `setKeepAlive` on a pipe.
    ///
    /// # Errors
    /// [`TcpError::Stale`] or the OS error.
    pub fn tcp_set_keepalive(
        &mut self,
        id: TcpId,
        idle: Option<std::time::Duration>,
    ) -> Result<(), TcpError> {
        let s = self.net.socket(id).ok_or(TcpError::Stale)?;
        if matches!(s.stream, Stream::Unix(_)) {
            return Ok(());
        }
        let sock = socket2::SockRef::from(&s.stream);
        match idle {
            Some(d) => sock.set_tcp_keepalive(&socket2::TcpKeepalive::new().with_time(d))?,
            None => sock.set_keepalive(false)?,
        }
        Ok(())
    }

    /// The peer's IP address and port.
    ///
    /// # Errors
    /// [`TcpError::Stale`], the OS error (not connected), or `InvalidInput` for a Unix socket
    /// (see [`Loop::stream_peer_addr`]).
    pub fn tcp_peer_addr(&self, id: TcpId) -> Result<SocketAddr, TcpError> {
        let addr = self.stream_peer_addr(id)?;
        addr.ip().ok_or_else(|| TcpError::Io(not_ip()))
    }

    /// The local IP address and port.
    ///
    /// # Errors
    /// [`TcpError::Stale`], the OS error, or `InvalidInput` for a Unix socket (see
    /// [`Loop::stream_local_addr`]).
    pub fn tcp_local_addr(&self, id: TcpId) -> Result<SocketAddr, TcpError> {
        let addr = self.stream_local_addr(id)?;
        addr.ip().ok_or_else(|| TcpError::Io(not_ip()))
    }

    /// The peer's address, TCP or Unix (for a Unix socket: the server's path as seen by a
    /// client, `Unix(None)` as seen by the server, since connecting sockets are unnamed).
    ///
    /// # Errors
    /// [`TcpError::Stale`] or the OS error (not connected).
    pub fn stream_peer_addr(&self, id: TcpId) -> Result<StreamAddr, TcpError> {
        let s = self.net.socket(id).ok_or(TcpError::Stale)?;
        Ok(s.stream.peer_addr()?)
    }

    /// The local address, TCP or Unix.
    ///
    /// # Errors
    /// [`TcpError::Stale`] or the OS error.
    pub fn stream_local_addr(&self, id: TcpId) -> Result<StreamAddr, TcpError> {
        let s = self.net.socket(id).ok_or(TcpError::Stale)?;
        Ok(s.stream.local_addr()?)
    }

    /// Whether the socket is a Unix domain socket (a pipe: from [`Loop::pipe_connect`], a pipe
    /// server, or a child process's stdio) rather than TCP.
    pub fn stream_is_pipe(&self, id: TcpId) -> bool {
        self.net
            .socket(id)
            .is_some_and(|s| matches!(s.stream, Stream::Unix(_)))
    }

    /// `(bytes_read, bytes_written)` so far.
    ///
    /// # Errors
    /// [`TcpError::Stale`] if the socket is gone.
    pub fn tcp_bytes(&self, id: TcpId) -> Result<(u64, u64), TcpError> {
        let s = self.net.socket(id).ok_or(TcpError::Stale)?;
        Ok((s.bytes_read, s.bytes_written))
    }

    /// Whether the socket is still open (its id is not stale).
    pub fn tcp_is_open(&self, id: TcpId) -> bool {
        self.net.socket(id).is_some()
    }

    /// Whether the peer has ended its side (FIN received).
    pub fn tcp_read_ended(&self, id: TcpId) -> bool {
        self.net.socket(id).is_some_and(|s| s.read_ended)
    }
}

impl Socket {
    /// Writes wait in the queue without a syscall: a plaintext socket under `tcp_cork` (a TLS
    /// socket holds back plaintext instead, before encryption).
    pub(crate) fn holds_back(&self) -> bool {
        self.corked > 0 && self.tls.is_none()
    }

    /// A TLS socket whose handshake has not completed.
    pub(crate) fn tls_handshaking(&self) -> bool {
        self.tls.as_ref().is_some_and(|t| t.is_handshaking())
    }

    fn touch(&mut self, now: u64) {
        if let Some(t) = self.timeout.as_mut() {
            t.last_active = now;
        }
    }
}

//! TCP as futures: [`tcp_connect`] to a [`TcpStream`], then [`TcpStream::read`],
//! [`TcpStream::write`], [`TcpStream::end`], and [`TcpListener::accept`], over the loop's callback sockets
//! ([`Loop::tcp_connect`] and friends), as `await`ing Node's `net.Socket` through
//! `events.once`/`stream.promises` does.
//!
//! # Reading and its bound
//! The socket reads whether or not a task is awaiting [`TcpStream::read`] (Node's flowing
//! socket): each chunk is copied out of the loop's shared read buffer into the stream's read
//! queue. Once the queue holds at least the stream's read high-water mark
//! ([`READ_HIGH_WATER_MARK`], 64 KiB by default, Node 22's `readableHighWaterMark`), reading is
//! paused ([`Loop::tcp_pause`]) and the kernel's buffer, then TCP flow control, push back on the
//! peer; a `read` that takes the queue back under the mark resumes it. One read syscall is at
//! most [`READ_BUFFER_SIZE`](crate::tcp::READ_BUFFER_SIZE) (64 KiB), so the queue never holds
//! more than `high water mark - 1 + 64 KiB` bytes. Nothing is dropped.
//!
//! # Writing
//! [`TcpStream::write`] completes once every byte queued on the socket so far has been handed to
//! the kernel (Node's `write(data, cb)` callback): straight away when the kernel took it all,
//! else at the socket's next drain. Awaiting each write therefore bounds what the stream holds
//! to one write. Dropping a pending write does not recall bytes already queued (Node cannot
//! either); dropping it before its task's poll returned writes nothing.
//!
//! # Cancellation and lifetime
//! A [`TcpStream`] owns its socket: dropping it destroys the socket (queued writes are dropped,
//! as `socket.destroy()`; call [`TcpStream::end`] and await the writes for a graceful close).
//! Dropping a pending [`Connect`] (or the task awaiting it, or that task's `JoinHandle`)
//! destroys the half-open socket. Either way the socket's callbacks are dropped with it: none
//! runs afterwards, and nothing is left ref'd. An open socket is ref'd: it keeps the loop alive,
//! as in Node.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use bytes::Bytes;

use crate::handle::{ServerId, TcpId};
use crate::task::jobs::{self, Jobs};
use crate::tcp::{errno_name, ListenOptions, SocketOptions, TcpError};
use crate::Loop;

/// Default read high-water mark of a [`TcpStream`]: reading pauses once this many bytes wait
/// in its read queue (Node 22's `readableHighWaterMark` for sockets; Node 20's is 16 KiB).
pub const READ_HIGH_WATER_MARK: usize = 64 * 1024;

/// Where the socket is in its life.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Phase {
    /// `tcp_connect` not called yet (the future was not polled, or its task's poll has not
    /// returned).
    NotStarted,
    Connecting,
    Open,
    /// Closed (by the peer's FIN and ours, an error, or a destroy).
    Closed,
}

/// An error kept for every future that asks (io::Error is not `Clone`).
#[derive(Clone, Debug)]
struct StoredError {
    kind: io::ErrorKind,
    message: String,
}

impl StoredError {
    fn to_io(&self) -> io::Error {
        io::Error::new(self.kind, self.message.clone())
    }
}

/// What a stream's futures share with its socket callbacks.
struct Shared {
    jobs: Rc<Jobs>,
    id: Cell<Option<TcpId>>,
    phase: Cell<Phase>,
    /// The owner (the `Connect`, then the `TcpStream`) is gone: a start not yet run must not
    /// run, and the socket is destroyed.
    dropped: Cell<bool>,
    error: RefCell<Option<StoredError>>,
    /// Chunks read and not yet taken by `read`; `buffered` is their total length.
    chunks: RefCell<VecDeque<Bytes>>,
    buffered: Cell<usize>,
    /// Most bytes the read queue ever held (for tests and tuning).
    max_buffered: Cell<usize>,
    high_water_mark: Cell<usize>,
    /// Reading is paused because the read queue reached the high-water mark.
    read_paused: Cell<bool>,
    /// The peer's FIN arrived.
    eof: Cell<bool>,
    /// Drains seen: a write that left bytes queued completes once this passes its ticket.
    drains: Cell<u64>,
    connect_waker: RefCell<Option<Waker>>,
    read_waker: RefCell<Option<Waker>>,
    write_wakers: RefCell<Vec<Waker>>,
}

impl Shared {
    fn new(jobs: Rc<Jobs>) -> Rc<Shared> {
        Rc::new(Shared {
            jobs,
            id: Cell::new(None),
            phase: Cell::new(Phase::NotStarted),
            dropped: Cell::new(false),
            error: RefCell::new(None),
            chunks: RefCell::new(VecDeque::new()),
            buffered: Cell::new(0),
            max_buffered: Cell::new(0),
            high_water_mark: Cell::new(READ_HIGH_WATER_MARK),
            read_paused: Cell::new(false),
            eof: Cell::new(false),
            drains: Cell::new(0),
            connect_waker: RefCell::new(None),
            read_waker: RefCell::new(None),
            write_wakers: RefCell::new(Vec::new()),
        })
    }

    fn wake_all(&self) {
        for slot in [&self.connect_waker, &self.read_waker] {
            if let Some(w) = slot.borrow_mut().take() {
                w.wake();
            }
        }
        self.wake_writers();
    }

    fn wake_writers(&self) {
        for w in std::mem::take(&mut *self.write_wakers.borrow_mut()) {
            w.wake();
        }
    }

    fn fail(&self, error: StoredError) {
        let mut slot = self.error.borrow_mut();
        if slot.is_none() {
            *slot = Some(error);
        }
        drop(slot);
        self.wake_all();
    }

    /// Destroys the socket (from the owner's drop), through the loop's deferred operations.
    fn destroy(&self) {
        self.dropped.set(true);
        if let Some(id) = self.id.get() {
            if self.phase.get() != Phase::Closed {
                self.jobs.defer(move |lp| {
                    let _ = lp.tcp_destroy(id);
                });
            }
        }
    }

    fn store_waker(slot: &RefCell<Option<Waker>>, cx: &Context<'_>) {
        let mut slot = slot.borrow_mut();
        match &*slot {
            Some(w) if w.will_wake(cx.waker()) => {}
            _ => *slot = Some(cx.waker().clone()),
        }
    }
}

/// Node's error message shape: `connect ECONNREFUSED 127.0.0.1:9`, `read ECONNRESET`.
fn describe(syscall: &str, e: &io::Error, addr: Option<SocketAddr>) -> StoredError {
    let code = errno_name(e).map_or_else(|| e.to_string(), str::to_string);
    let message = match addr {
        Some(a) => format!("{syscall} {code} {a}"),
        None => format!("{syscall} {code}"),
    };
    StoredError {
        kind: e.kind(),
        message,
    }
}

/// Installs the callbacks that feed `shared` on socket `id`. The write high-water mark becomes
/// 1 byte, so every write that leaves bytes queued is followed by a drain (the write's
/// completion); the socket's own backpressure is the awaiting of writes.
fn install(lp: &mut Loop, id: TcpId, shared: &Rc<Shared>, peer: Option<SocketAddr>) {
    let _ = lp.tcp_set_high_water_mark(id, 1);
    let s = Rc::clone(shared);
    let _ = lp.tcp_on_data(id, move |lp, id, data| {
        s.chunks
            .borrow_mut()
            .push_back(Bytes::copy_from_slice(data));
        let buffered = s.buffered.get() + data.len();
        s.buffered.set(buffered);
        s.max_buffered.set(s.max_buffered.get().max(buffered));
        if buffered >= s.high_water_mark.get() && !s.read_paused.get() {
            s.read_paused.set(true);
            let _ = lp.tcp_pause(id);
        }
        if let Some(w) = s.read_waker.borrow_mut().take() {
            w.wake();
        }
    });
    let s = Rc::clone(shared);
    let _ = lp.tcp_on_end(id, move |_, _| {
        s.eof.set(true);
        if let Some(w) = s.read_waker.borrow_mut().take() {
            w.wake();
        }
    });
    let s = Rc::clone(shared);
    let _ = lp.tcp_on_drain(id, move |_, _| {
        s.drains.set(s.drains.get() + 1);
        s.wake_writers();
    });
    let s = Rc::clone(shared);
    let _ = lp.tcp_on_error(id, move |_, _, e| {
        let error = match s.phase.get() {
            Phase::Connecting => describe("connect", e, peer),
            _ if e.raw_os_error() == Some(libc::EPIPE) => describe("write", e, None),
            _ => describe("read", e, None),
        };
        s.fail(error);
    });
    let s = Rc::clone(shared);
    let _ = lp.tcp_on_close(id, move |_, _, _| {
        s.phase.set(Phase::Closed);
        s.wake_all();
    });
}

/// Connects to `addr` (`await new Promise((res, rej) => net.connect(port, host).once('connect',
/// res).once('error', rej))`), with Node's client defaults ([`SocketOptions::default`]: Nagle on,
/// `allowHalfOpen` false). The connect starts when the future is first polled. A refused
/// connection is an error of kind [`io::ErrorKind::ConnectionRefused`] reading
/// `connect ECONNREFUSED 127.0.0.1:port`, as Node's. Dropping the future before it completed
/// destroys the connecting socket.
pub fn tcp_connect(addr: SocketAddr) -> Connect {
    Connect {
        addr,
        shared: None,
        done: false,
    }
}

/// The future of [`tcp_connect`].
pub struct Connect {
    addr: SocketAddr,
    shared: Option<Rc<Shared>>,
    /// The stream was handed out: it owns the socket now.
    done: bool,
}

impl Connect {
    /// The socket's id once the connect started (after the first poll's task poll returned).
    pub fn socket(&self) -> Option<TcpId> {
        self.shared.as_ref().and_then(|s| s.id.get())
    }
}

impl Future for Connect {
    type Output = io::Result<TcpStream>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        if self.done {
            return Poll::Ready(Err(io::Error::other(
                "connect future polled after completion",
            )));
        }
        let addr = self.addr;
        let shared = match &self.shared {
            Some(s) => Rc::clone(s),
            None => {
                let jobs = jobs::current();
                let shared = Shared::new(Rc::clone(&jobs));
                self.shared = Some(Rc::clone(&shared));
                let start = Rc::clone(&shared);
                jobs.defer(move |lp| start_connect(lp, addr, &start));
                shared
            }
        };
        if let Some(e) = shared.error.borrow().as_ref() {
            self.done = true;
            return Poll::Ready(Err(e.to_io()));
        }
        match shared.phase.get() {
            Phase::Open => {
                self.done = true;
                Poll::Ready(Ok(TcpStream { shared }))
            }
            Phase::Closed => {
                self.done = true;
                Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::NotConnected,
                    format!("connect: socket closed before connecting to {addr}"),
                )))
            }
            Phase::NotStarted | Phase::Connecting => {
                Shared::store_waker(&shared.connect_waker, cx);
                Poll::Pending
            }
        }
    }
}

fn start_connect(lp: &mut Loop, addr: SocketAddr, shared: &Rc<Shared>) {
    if shared.dropped.get() {
        return;
    }
    let s = Rc::clone(shared);
    let connected = lp.tcp_connect(addr, SocketOptions::default(), move |_, _| {
        s.phase.set(Phase::Open);
        if let Some(w) = s.connect_waker.borrow_mut().take() {
            w.wake();
        }
    });
    match connected {
        Ok(id) => {
            shared.id.set(Some(id));
            shared.phase.set(Phase::Connecting);
            install(lp, id, shared, Some(addr));
        }
        Err(e) => shared.fail(describe("connect", &e, Some(addr))),
    }
}

impl Drop for Connect {
    fn drop(&mut self) {
        if !self.done {
            if let Some(shared) = &self.shared {
                shared.destroy();
            }
        }
    }
}

/// A connected socket driven by `await`: see the [module documentation](self). Dropping it
/// destroys the socket.
pub struct TcpStream {
    shared: Rc<Shared>,
}

impl TcpStream {
    /// Takes over an open socket of this loop (say, one a [`Loop::tcp_listen`] callback
    /// accepted): its data, end, drain, error and close callbacks are replaced, and the stream
    /// owns it from now on.
    ///
    /// # Errors
    /// [`TcpError::Stale`] if the socket is gone.
    pub fn adopt(lp: &mut Loop, id: TcpId) -> Result<TcpStream, TcpError> {
        if !lp.tcp_is_open(id) {
            return Err(TcpError::Stale);
        }
        let shared = Shared::new(jobs::current());
        shared.id.set(Some(id));
        shared.phase.set(Phase::Open);
        install(lp, id, &shared, None);
        Ok(TcpStream { shared })
    }

    /// The socket's id, for the callback API ([`Loop::tcp_set_nodelay`], addresses...). Do not
    /// replace its callbacks.
    pub fn id(&self) -> TcpId {
        self.shared.id.get().expect("a TcpStream has a socket")
    }

    /// The next chunk read (`Ok(Some(bytes))`, in order), `Ok(None)` at the end of the stream
    /// (the peer's FIN, or the socket closed), or the socket's error. Chunks already read are
    /// returned before an error or the end. Dropping the future loses nothing.
    pub fn read(&self) -> Read<'_> {
        Read { stream: self }
    }

    /// Writes `data` and completes once it, and everything written before it, is in the
    /// kernel's hands (Node's write callback). Errors: write after [`TcpStream::end`]
    /// (`ERR_STREAM_WRITE_AFTER_END`), a socket error, or a socket closed before the bytes went
    /// out.
    pub fn write(&self, data: impl Into<Bytes>) -> Write<'_> {
        Write {
            stream: self,
            data: Some(data.into()),
            op: None,
        }
    }

    /// Ends the writable side (Node's `socket.end()`): queued bytes go out, then the FIN.
    /// Reading goes on until the peer ends too (with Node's `allowHalfOpen` false, the socket
    /// ends itself when the peer's FIN arrives). Applied when the task's poll returns.
    pub fn end(&self) {
        if let Some(id) = self.shared.id.get() {
            self.shared.jobs.defer(move |lp| {
                let _ = lp.tcp_end(id);
            });
        }
    }

    /// Bytes read and not yet taken by [`TcpStream::read`].
    pub fn buffered(&self) -> usize {
        self.shared.buffered.get()
    }

    /// The most bytes the read queue ever held (at most `high water mark - 1 + 64 KiB`).
    pub fn max_buffered(&self) -> usize {
        self.shared.max_buffered.get()
    }

    /// Whether reading is paused because the read queue reached the high-water mark.
    pub fn is_read_paused(&self) -> bool {
        self.shared.read_paused.get()
    }

    /// Sets the read high-water mark (default [`READ_HIGH_WATER_MARK`]; at least 1). Takes
    /// effect at the next chunk read or taken.
    pub fn set_read_high_water_mark(&self, bytes: usize) {
        self.shared.high_water_mark.set(bytes.max(1));
    }
}

impl Drop for TcpStream {
    fn drop(&mut self) {
        self.shared.destroy();
    }
}

/// The future of [`TcpStream::read`].
pub struct Read<'a> {
    stream: &'a TcpStream,
}

impl Future for Read<'_> {
    type Output = io::Result<Option<Bytes>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let s = &self.stream.shared;
        let chunk = s.chunks.borrow_mut().pop_front();
        if let Some(chunk) = chunk {
            let buffered = s.buffered.get() - chunk.len();
            s.buffered.set(buffered);
            if s.read_paused.get() && buffered < s.high_water_mark.get() {
                s.read_paused.set(false);
                if let Some(id) = s.id.get() {
                    s.jobs.defer(move |lp| {
                        let _ = lp.tcp_resume(id);
                    });
                }
            }
            return Poll::Ready(Ok(Some(chunk)));
        }
        if let Some(e) = s.error.borrow().as_ref() {
            return Poll::Ready(Err(e.to_io()));
        }
        if s.eof.get() || s.phase.get() == Phase::Closed {
            return Poll::Ready(Ok(None));
        }
        Shared::store_waker(&s.read_waker, cx);
        Poll::Pending
    }
}

/// What a write's deferred start reports to its future.
#[derive(Default)]
struct WriteOp {
    /// The write was applied; `Some(ticket)` if bytes stayed queued (done once `drains` passes
    /// the ticket), `None` if the kernel took them all.
    started: Cell<Option<Option<u64>>>,
    failed: RefCell<Option<io::Error>>,
    dropped: Cell<bool>,
}

/// The future of [`TcpStream::write`].
pub struct Write<'a> {
    stream: &'a TcpStream,
    data: Option<Bytes>,
    op: Option<Rc<WriteOp>>,
}

impl Future for Write<'_> {
    type Output = io::Result<()>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let shared = Rc::clone(&self.stream.shared);
        if let Some(data) = self.data.take() {
            let op = Rc::new(WriteOp::default());
            self.op = Some(Rc::clone(&op));
            let id = shared.id.get();
            let s = Rc::clone(&shared);
            shared.jobs.defer(move |lp| {
                if op.dropped.get() {
                    return;
                }
                let result = match id {
                    Some(id) => lp.tcp_write_bytes(id, data),
                    None => Err(TcpError::Stale),
                };
                match result {
                    Ok(true) => op.started.set(Some(None)),
                    Ok(false) => op.started.set(Some(Some(s.drains.get()))),
                    Err(e) => {
                        *op.failed.borrow_mut() = Some(match e {
                            TcpError::WriteAfterEnd => io::Error::new(
                                io::ErrorKind::BrokenPipe,
                                "write after end (ERR_STREAM_WRITE_AFTER_END)",
                            ),
                            TcpError::Stale => io::Error::new(
                                io::ErrorKind::NotConnected,
                                "write: the socket is closed",
                            ),
                            TcpError::Io(e) => e,
                        });
                    }
                }
                s.wake_writers();
            });
        }
        let Some(op) = self.op.clone() else {
            return Poll::Ready(Err(io::Error::other(
                "write future polled after completion",
            )));
        };
        if let Some(e) = op.failed.borrow_mut().take() {
            self.op = None;
            return Poll::Ready(Err(e));
        }
        match op.started.get() {
            Some(None) => {
                self.op = None;
                return Poll::Ready(Ok(()));
            }
            Some(Some(ticket)) if shared.drains.get() > ticket => {
                self.op = None;
                return Poll::Ready(Ok(()));
            }
            _ => {}
        }
        if let Some(e) = shared.error.borrow().as_ref() {
            self.op = None;
            return Poll::Ready(Err(e.to_io()));
        }
        if shared.phase.get() == Phase::Closed {
            self.op = None;
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::NotConnected,
                "write: the socket closed before the bytes went out",
            )));
        }
        let mut wakers = shared.write_wakers.borrow_mut();
        if !wakers.iter().any(|w| w.will_wake(cx.waker())) {
            wakers.push(cx.waker().clone());
        }
        Poll::Pending
    }
}

impl Drop for Write<'_> {
    fn drop(&mut self) {
        if let Some(op) = &self.op {
            op.dropped.set(true);
        }
    }
}

/// Default bound of a [`TcpListener`]'s queue of accepted connections nobody awaited yet.
pub const ACCEPT_QUEUE_BOUND: usize = 128;

/// What a listener's futures share with its server callbacks.
struct ListenerShared {
    jobs: Rc<Jobs>,
    id: ServerId,
    addr: SocketAddr,
    /// Accepted, not yet taken by `accept` (each already reading into its bounded queue).
    queue: RefCell<VecDeque<TcpStream>>,
    bound: Cell<usize>,
    /// Connections destroyed because the queue was full.
    refused: Cell<u64>,
    error: RefCell<Option<io::Error>>,
    waker: RefCell<Option<Waker>>,
}

/// A listening socket whose connections are awaited ([`TcpListener::accept`]), as `for await
/// (const [socket] of on(server, 'connection'))`. Connections that arrive while no task awaits
/// are accepted and queued, up to [`ACCEPT_QUEUE_BOUND`] (128, Node's default `listen`
/// backlog is 511 in the kernel; this queue sits after it); beyond, a new connection is
/// destroyed at once and counted in [`TcpListener::refused`] (as Node's `maxConnections`
/// drops). Dropping the listener stops listening and destroys the queued connections; streams
/// already handed out live on.
pub struct TcpListener {
    shared: Rc<ListenerShared>,
}

impl TcpListener {
    /// Listens on `addr` (port 0 picks a free port: see [`TcpListener::local_addr`]) with
    /// [`ListenOptions::default`].
    ///
    /// # Errors
    /// When the address cannot be bound (in use, no permission, bad address).
    pub fn bind(lp: &mut Loop, addr: SocketAddr) -> io::Result<TcpListener> {
        let pending: Rc<RefCell<Option<Rc<ListenerShared>>>> = Rc::new(RefCell::new(None));
        let slot = Rc::clone(&pending);
        let id = lp.tcp_listen(addr, ListenOptions::default(), move |lp, conn| {
            let Some(shared) = slot.borrow().clone() else {
                let _ = lp.tcp_destroy(conn);
                return;
            };
            if shared.queue.borrow().len() >= shared.bound.get() {
                shared.refused.set(shared.refused.get() + 1);
                let _ = lp.tcp_destroy(conn);
                return;
            }
            if let Ok(stream) = TcpStream::adopt(lp, conn) {
                shared.queue.borrow_mut().push_back(stream);
            }
            let waker = shared.waker.borrow_mut().take();
            if let Some(w) = waker {
                w.wake();
            }
        })?;
        let slot = Rc::clone(&pending);
        let _ = lp.tcp_server_on_error(id, move |_, e| {
            if let Some(shared) = slot.borrow().as_ref() {
                *shared.error.borrow_mut() = Some(io::Error::new(e.kind(), format!("accept: {e}")));
                if let Some(w) = shared.waker.borrow_mut().take() {
                    w.wake();
                }
            }
        });
        let local = lp.tcp_server_addr(id).map_err(io::Error::other)?;
        let shared = Rc::new(ListenerShared {
            jobs: jobs::current(),
            id,
            addr: local,
            queue: RefCell::new(VecDeque::new()),
            bound: Cell::new(ACCEPT_QUEUE_BOUND),
            refused: Cell::new(0),
            error: RefCell::new(None),
            waker: RefCell::new(None),
        });
        *pending.borrow_mut() = Some(Rc::clone(&shared));
        Ok(TcpListener { shared })
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.shared.addr
    }

    /// The server's id, for the callback API (`tcp_server_set_max_connections`...). Do not
    /// replace its callbacks.
    pub fn id(&self) -> ServerId {
        self.shared.id
    }

    /// The next connection, in arrival order, or an accept error (running out of file
    /// descriptors is not one: the server backs off and retries, see docs/tcp.md).
    pub fn accept(&self) -> Accept<'_> {
        Accept { listener: self }
    }

    /// Connections destroyed because the accept queue was full.
    pub fn refused(&self) -> u64 {
        self.shared.refused.get()
    }

    /// Sets the accept queue's bound (default [`ACCEPT_QUEUE_BOUND`]; at least 1).
    pub fn set_accept_queue_bound(&self, connections: usize) {
        self.shared.bound.set(connections.max(1));
    }
}

impl Drop for TcpListener {
    fn drop(&mut self) {
        let id = self.shared.id;
        let queued = std::mem::take(&mut *self.shared.queue.borrow_mut());
        drop(queued); // destroys them
        self.shared.jobs.defer(move |lp| {
            let _ = lp.tcp_server_close(id, |_| {});
        });
    }
}

/// The future of [`TcpListener::accept`]. Dropping it loses nothing: connections stay queued.
pub struct Accept<'a> {
    listener: &'a TcpListener,
}

impl Future for Accept<'_> {
    type Output = io::Result<TcpStream>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let s = &self.listener.shared;
        if let Some(stream) = s.queue.borrow_mut().pop_front() {
            return Poll::Ready(Ok(stream));
        }
        if let Some(e) = s.error.borrow_mut().take() {
            return Poll::Ready(Err(e));
        }
        Shared::store_waker(&s.waker, cx);
        Poll::Pending
    }
}

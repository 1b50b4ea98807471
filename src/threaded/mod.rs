//! A thread-per-connection HTTP/1.1 server: the baseline oneloop is benchmarked against.
//!
//! Blocking `std::net` sockets, one OS thread per accepted connection (optionally capped), and
//! the *same* protocol code as the event-loop server: heads are parsed by
//! [`HeadParser`](crate::http::parse::HeadParser) into a
//! [`RequestHead`](crate::http::parse::RequestHead), bodies decoded by
//! [`BodyDecoder`](crate::http::decode::BodyDecoder), responses written with
//! [`encode`](crate::http::encode) and dated by [`DateCache`](crate::http::date::DateCache).
//! The bytes on the wire are the ones [`http::create_server`](crate::http::create_server) sends
//! for the same handler logic, so a benchmark of the two measures the execution model and
//! nothing else.
//!
//! ```text
//! mod.rs      config, create_server, listen (the accept thread), connection cap
//! conn.rs     one connection on its own thread: read, parse, call the handler, write
//! message.rs  ThreadedRequest (head + whole body), ThreadedResponse (status, headers, body)
//! ```
//!
//! # The handler shape, and why it differs from the loop's
//!
//! The event-loop handler is `FnMut(&mut Loop, Request, Response) + 'static`: it runs on the
//! loop's one thread, may finish the response later (after a timer or thread-pool work) and
//! reads the body as a stream of callbacks. A thread-per-connection server has no loop to hand
//! out, runs the handler on many threads at once, and can simply block. So the honest shape is
//!
//! ```text
//! Fn(&ThreadedRequest, &mut ThreadedResponse) + Send + Sync + 'static
//! ```
//!
//! shared by every connection thread through an `Arc`. The request body has been read in full
//! (up to [`ThreadedConfig::max_body_size`], 413 above) before the handler runs, and the
//! response is sent when the handler returns, always with `Content-Length` (the contract
//! routes never stream). A handler written against the loop's `Request`/`Response` ports by
//! replacing `req.collect(..)` with `req.body()` and `res.end(b)` with `res.end(b)`:
//! `examples/threaded_hello.rs` serves `examples/hello.rs`'s routes byte for byte.
//!
//! # Guarantees (the same as the loop server's)
//!
//! - Parser strictness: every [`ParseError`](crate::http::ParseError) is answered with its
//!   status (400, 413, 414, 431, 501, 505) plus `Date`, `Connection: close` and
//!   `Content-Length: 0`, then the connection is closed.
//! - Keep-alive by default on HTTP/1.1 (`Connection: keep-alive` + `Keep-Alive: timeout=N`),
//!   close on HTTP/1.0 unless it asks for keep-alive, close when either side says `close`.
//! - Pipelined requests are answered in order; the responses to one batch of input leave in
//!   one `write`.
//! - `Expect: 100-continue` is answered with `100 Continue` before the body is read; another
//!   expectation gets 417.
//! - The headers timeout is a socket read timeout: a head not complete within
//!   [`ThreadedConfig::headers_timeout`] of its first byte (of accept, for the first request)
//!   gets 408 and a close; an idle keep-alive connection is closed quietly after
//!   [`ThreadedConfig::keep_alive_timeout`].
//!
//! # Pitfalls
//!
//! - An `Upgrade` offer is ignored and the request served as ordinary HTTP (RFC 9110 §7.8),
//!   as the loop server does when no upgrade handler takes it; CONNECT is closed without an
//!   answer.
//! - Each connection costs a thread and its stack ([`ThreadedConfig::stack_size`]). With
//!   [`ThreadedConfig::max_connections`] set, the accept thread waits for a free slot, so
//!   extra clients queue in the kernel's backlog instead of being refused.
//!
//! ```no_run
//! use oneloop::threaded::{self, ThreadedConfig};
//!
//! let server = threaded::create_server(ThreadedConfig::default(), |req, res| {
//!     res.set_header("content-type", "text/plain");
//!     res.end(format!("you asked for {}", req.path()));
//! });
//! let listening = server.listen("127.0.0.1:3000")?;
//! println!("listening on {}", listening.local_addr());
//! listening.join();
//! # Ok::<(), std::io::Error>(())
//! ```

mod conn;
mod message;

use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::{self, JoinHandle};
use std::time::Duration;

pub use message::{ThreadedRequest, ThreadedResponse};

/// The handler every connection thread calls, once per request.
pub type ThreadedHandler = dyn Fn(&ThreadedRequest, &mut ThreadedResponse) + Send + Sync;

/// Settings fixed when the server is created. Defaults follow the loop server's
/// [`ServerConfig`](crate::http::ServerConfig) (and so Node's).
#[derive(Clone, Debug)]
pub struct ThreadedConfig {
    /// Largest request head in bytes; larger answers 431 (16 KiB).
    pub max_header_size: usize,
    /// Most header fields; more answers 431 (2000).
    pub max_headers_count: usize,
    /// Longest request line; longer answers 414 (8 KiB).
    pub max_request_line: usize,
    /// Largest request body read before the handler runs; larger answers 413 (16 MiB, the
    /// limit `examples/hello.rs` gives `/echo`).
    pub max_body_size: u64,
    /// Time to receive a request head, from its first byte (from accept for the first request
    /// on a connection); 408 after (60 s).
    pub headers_timeout: Duration,
    /// Time allowed between reads of a request body; 408 after (300 s, Node's request
    /// timeout).
    pub body_timeout: Duration,
    /// How long an idle keep-alive connection is kept, advertised as `Keep-Alive: timeout=N`
    /// (5 s).
    pub keep_alive_timeout: Duration,
    /// Answer 400 to HTTP/1.1 requests without Host (true).
    pub require_host: bool,
    /// Most connections served at once; the accept thread waits for a free slot (`None`:
    /// no cap).
    pub max_connections: Option<usize>,
    /// Stack size of each connection thread (256 KiB).
    pub stack_size: usize,
    /// Length of the kernel's accept queue (511, as the loop server's
    /// [`ListenOptions`](oneloop_runtime::ListenOptions) and Node; Rust's
    /// `TcpListener::bind` would use 128, and a burst of connections past it is reset).
    pub backlog: i32,
}

impl Default for ThreadedConfig {
    fn default() -> Self {
        ThreadedConfig {
            max_header_size: 16 * 1024,
            max_headers_count: 2000,
            max_request_line: 8 * 1024,
            max_body_size: 16 * 1024 * 1024,
            headers_timeout: Duration::from_secs(60),
            body_timeout: Duration::from_secs(300),
            keep_alive_timeout: Duration::from_secs(5),
            require_host: true,
            max_connections: None,
            stack_size: 256 * 1024,
            backlog: 511,
        }
    }
}

/// A server that is configured but not yet listening.
pub struct ThreadedServer {
    config: ThreadedConfig,
    handler: Arc<ThreadedHandler>,
}

/// Creates a thread-per-connection server that calls `handler` for every request.
pub fn create_server(
    config: ThreadedConfig,
    handler: impl Fn(&ThreadedRequest, &mut ThreadedResponse) + Send + Sync + 'static,
) -> ThreadedServer {
    ThreadedServer {
        config,
        handler: Arc::new(handler),
    }
}

/// State shared by the accept thread and every connection thread.
pub(crate) struct Shared {
    pub(crate) config: ThreadedConfig,
    pub(crate) handler: Arc<ThreadedHandler>,
    /// `Connection: keep-alive\r\nKeep-Alive: timeout=N\r\n`, formatted once.
    pub(crate) keep_alive_header: Vec<u8>,
    closing: AtomicBool,
    /// Live connection threads, and a condvar signalled whenever one ends.
    active: Mutex<usize>,
    slot_freed: Condvar,
}

impl Shared {
    pub(crate) fn is_closing(&self) -> bool {
        self.closing.load(Ordering::Relaxed)
    }

    /// Called by a connection thread as it ends.
    fn release_slot(&self) {
        let mut n = self.active.lock().unwrap_or_else(|e| e.into_inner());
        *n = n.saturating_sub(1);
        self.slot_freed.notify_all();
    }
}

impl ThreadedServer {
    /// Binds `addr` and starts the accept thread.
    ///
    /// # Errors
    /// When the address does not resolve or cannot be bound.
    pub fn listen(self, addr: impl ToSocketAddrs) -> io::Result<Listening> {
        let listener = bind_listener(addr, self.config.backlog)?;
        let local = listener.local_addr()?;
        let keep_alive_header = format!(
            "Connection: keep-alive\r\nKeep-Alive: timeout={}\r\n",
            self.config.keep_alive_timeout.as_secs()
        )
        .into_bytes();
        let shared = Arc::new(Shared {
            config: self.config,
            handler: self.handler,
            keep_alive_header,
            closing: AtomicBool::new(false),
            active: Mutex::new(0),
            slot_freed: Condvar::new(),
        });
        let acceptor = {
            let shared = Arc::clone(&shared);
            thread::Builder::new()
                .name("threaded-accept".into())
                .spawn(move || accept_loop(&listener, &shared))?
        };
        Ok(Listening {
            addr: local,
            shared,
            acceptor: Some(acceptor),
        })
    }
}

/// Binds the first address of `addr` that works, with `SO_REUSEADDR` (as std and the loop
/// server do) and a listen queue of `backlog`.
fn bind_listener(addr: impl ToSocketAddrs, backlog: i32) -> io::Result<TcpListener> {
    let mut last = io::Error::new(io::ErrorKind::InvalidInput, "no address to bind");
    for addr in addr.to_socket_addrs()? {
        let bound = (|| {
            let socket = socket2::Socket::new(
                socket2::Domain::for_address(addr),
                socket2::Type::STREAM,
                Some(socket2::Protocol::TCP),
            )?;
            socket.set_reuse_address(true)?;
            socket.bind(&addr.into())?;
            socket.listen(backlog)?;
            Ok::<_, io::Error>(TcpListener::from(socket))
        })();
        match bound {
            Ok(listener) => return Ok(listener),
            Err(e) => last = e,
        }
    }
    Err(last)
}

/// A listening server: its address, and the handles to wait for it or close it.
pub struct Listening {
    addr: SocketAddr,
    shared: Arc<Shared>,
    acceptor: Option<JoinHandle<()>>,
}

impl Listening {
    /// The bound address (with the real port when `:0` was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Connection threads alive now.
    pub fn connections(&self) -> usize {
        *self.shared.active.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Blocks the calling thread until the accept thread ends (that is, until [`close`]
    /// is called from elsewhere, or forever).
    ///
    /// [`close`]: Listening::close
    pub fn join(mut self) {
        if let Some(t) = self.acceptor.take() {
            let _ = t.join();
        }
    }

    /// Stops accepting. Connections already accepted finish their current exchange and close
    /// at their next idle moment.
    pub fn close(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        self.shared.closing.store(true, Ordering::SeqCst);
        self.shared.slot_freed.notify_all();
        // Wake the blocking accept with a connection of our own.
        let _ = TcpStream::connect_timeout(&wake_addr(self.addr), Duration::from_secs(1));
        if let Some(t) = self.acceptor.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Listening {
    fn drop(&mut self) {
        if self.acceptor.is_some() {
            self.stop();
        }
    }
}

/// The address to connect to for waking the accept thread: a wildcard bind is reached on
/// loopback.
fn wake_addr(addr: SocketAddr) -> SocketAddr {
    let mut a = addr;
    if a.ip().is_unspecified() {
        a.set_ip(match a {
            SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
            SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
        });
    }
    a
}

fn accept_loop(listener: &TcpListener, shared: &Arc<Shared>) {
    loop {
        if !wait_for_slot(shared) {
            return;
        }
        let stream = match listener.accept() {
            Ok((stream, _)) => stream,
            Err(e) => {
                log::debug!("threaded: accept failed: {e}");
                // EMFILE and friends: back off instead of spinning.
                shared.release_slot();
                thread::sleep(Duration::from_millis(10));
                continue;
            }
        };
        if shared.closing.load(Ordering::SeqCst) {
            shared.release_slot();
            return;
        }
        let conn_shared = Arc::clone(shared);
        let spawned = thread::Builder::new()
            .name("threaded-conn".into())
            .stack_size(shared.config.stack_size)
            .spawn(move || {
                conn::serve(stream, &conn_shared);
                conn_shared.release_slot();
            });
        if let Err(e) = spawned {
            log::warn!("threaded: cannot spawn a connection thread: {e}");
            shared.release_slot();
        }
    }
}

/// Takes a connection slot, waiting while the cap is reached. False once the server closes.
fn wait_for_slot(shared: &Shared) -> bool {
    let mut n = shared.active.lock().unwrap_or_else(|e| e.into_inner());
    loop {
        if shared.closing.load(Ordering::SeqCst) {
            return false;
        }
        match shared.config.max_connections {
            Some(cap) if *n >= cap => {
                n = shared.slot_freed.wait(n).unwrap_or_else(|e| e.into_inner());
            }
            _ => {
                *n += 1;
                return true;
            }
        }
    }
}

//! A bare mio responder, the ceiling for the pipelining comparison in docs/benchmarks.md:
//! `cargo run --release --example bare_mio` (then `curl localhost:3001/`).
//!
//! It does no HTTP parsing at all. Every `\r\n\r\n` it reads ends one request, and each one gets
//! the same fixed response (the bytes `examples/hello.rs` sends for `/plaintext`, with a frozen
//! Date). One thread, one `mio::Poll`, edge-triggered, no timers, no keep-alive timeout, no
//! limits: it is the cost of the syscalls and nothing else, so oneloop can be measured as a
//! fraction of it. It is not a server to use (request bodies would be misread as requests).
//!
//! Listens on `PORT` (default 3001) on `HOST` (default 127.0.0.1); `--port N` and `--host H`
//! override. `--backlog N` sets the listen backlog (default 1024, mio's).
mod common;

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::SocketAddr;

use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};

/// Same length and header set as hello's `/plaintext` answer; the Date is frozen.
const RESPONSE: &[u8] = b"HTTP/1.1 200 OK\r\n\
content-type: text/plain\r\n\
Date: Thu, 01 Jan 2026 00:00:00 GMT\r\n\
Content-Length: 13\r\n\
Connection: keep-alive\r\n\
Keep-Alive: timeout=5\r\n\
\r\n\
Hello, World!";

const LISTENER: Token = Token(usize::MAX);
/// Stop reading a connection whose unsent output is this large until it drains.
const MAX_PENDING: usize = 1 << 20;

struct Conn {
    stream: TcpStream,
    /// How many bytes of the last `\r\n\r\n` have been seen at the end of the previous read (0..=3).
    matched: usize,
    out: Vec<u8>,
    /// Bytes of `out` already written.
    sent: usize,
}

impl Conn {
    /// Counts the request ends in `data`, carrying a partial `\r\n\r\n` across reads.
    fn count_requests(&mut self, data: &[u8]) -> usize {
        const END: &[u8; 4] = b"\r\n\r\n";
        let mut n = 0;
        for &b in data {
            if b == END[self.matched] {
                self.matched += 1;
                if self.matched == 4 {
                    n += 1;
                    self.matched = 0;
                }
            } else {
                self.matched = usize::from(b == b'\r');
            }
        }
        n
    }

    /// Reads until WouldBlock (or until enough output is queued), queues one response per request
    /// end, writes what it can. Returns false when the connection is finished.
    fn service(&mut self, buf: &mut [u8]) -> bool {
        loop {
            if self.out.len() - self.sent >= MAX_PENDING {
                break;
            }
            match self.stream.read(buf) {
                Ok(0) => return false,
                Ok(n) => {
                    let requests = self.count_requests(&buf[..n]);
                    for _ in 0..requests {
                        self.out.extend_from_slice(RESPONSE);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => return false,
            }
        }
        self.flush()
    }

    fn flush(&mut self) -> bool {
        while self.sent < self.out.len() {
            match self.stream.write(&self.out[self.sent..]) {
                Ok(0) => return false,
                Ok(n) => self.sent += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return true,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => return false,
            }
        }
        self.out.clear();
        self.sent = 0;
        true
    }
}

/// A non-blocking listener on `addr` with `backlog` (what `TcpListener::bind` does, with 1024).
fn listen(addr: SocketAddr, backlog: i32) -> io::Result<TcpListener> {
    let socket = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::STREAM,
        None,
    )?;
    socket.set_reuse_address(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(backlog)?;
    Ok(TcpListener::from_std(socket.into()))
}

fn main() -> io::Result<()> {
    let args = common::Args::from_env();
    let port = args.port(3001);
    let host = args.host();
    let addr: SocketAddr = format!("{host}:{port}")
        .parse()
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;

    let mut poll = Poll::new()?;
    let backlog = args.backlog()?.unwrap_or(1024);
    let mut listener = listen(addr, backlog)?;
    poll.registry()
        .register(&mut listener, LISTENER, Interest::READABLE)?;
    println!("bare_mio: listening on http://{}", listener.local_addr()?);

    let mut events = Events::with_capacity(1024);
    let mut conns: HashMap<usize, Conn> = HashMap::new();
    let mut next_token = 0usize;
    let mut buf = vec![0u8; 64 * 1024];

    loop {
        if let Err(e) = poll.poll(&mut events, None) {
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        for event in events.iter() {
            if event.token() == LISTENER {
                loop {
                    match listener.accept() {
                        Ok((mut stream, _)) => {
                            stream.set_nodelay(true)?;
                            let token = next_token;
                            next_token = next_token.wrapping_add(1) % (usize::MAX - 1);
                            poll.registry().register(
                                &mut stream,
                                Token(token),
                                Interest::READABLE | Interest::WRITABLE,
                            )?;
                            conns.insert(
                                token,
                                Conn {
                                    stream,
                                    matched: 0,
                                    out: Vec::new(),
                                    sent: 0,
                                },
                            );
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                        // EMFILE and friends: leave the rest in the backlog until a slot frees.
                        Err(e) => {
                            eprintln!("bare_mio: accept: {e}");
                            break;
                        }
                    }
                }
                continue;
            }
            let token = event.token().0;
            let alive = match conns.get_mut(&token) {
                Some(conn) => conn.service(&mut buf),
                None => continue,
            };
            if !alive {
                if let Some(mut conn) = conns.remove(&token) {
                    let _ = poll.registry().deregister(&mut conn.stream);
                }
            }
        }
    }
}

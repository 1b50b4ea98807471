//! HTTP/1.1 client on the loop (Node's `http.request` / `http.get`): one connection per
//! request, or kept-alive connections shared through an opt-in [`Agent`].
//!
//! A request is one-shot: [`request`] connects (or takes an idle connection from its agent),
//! writes the whole request, reads one response and calls its callback exactly once with the
//! collected response or a [`ClientError`]; then the socket is gone, or idle in the agent and
//! unref'd: either way it no longer keeps the loop alive.
//!
//! ```text
//! mod.rs     ClientError, ClientRequest, request/get, one exchange on a socket
//! url.rs     http:// URLs: IP literals or host names; the Origin an agent pools by
//! reader.rs  ResponseReader (no I/O, RFC 9112 framing) and ClientResponse
//! agent.rs   Agent: free lists, the per-host cap and queue, the stale-connection resend
//! ```
//!
//! ```
//! use oneloop::http::{self, ClientResponse};
//! use oneloop::runtime::Loop;
//! use std::{cell::RefCell, rc::Rc};
//!
//! let mut lp = Loop::new()?;
//! let server = http::create_server(&mut lp, |_lp, _req, res| res.end("hi"));
//! let got: Rc<RefCell<Option<ClientResponse>>> = Rc::default();
//! let (slot, srv) = (Rc::clone(&got), server.clone());
//! server.listen(&mut lp, "127.0.0.1:0", move |lp, addr| {
//!     http::get(lp, &format!("http://{addr}/"), move |lp, result| {
//!         *slot.borrow_mut() = result.ok();
//!         srv.close(lp, |_lp| {}); // the server keeps the loop alive, not the client
//!     })
//!     .expect("a valid URL");
//! })?;
//! lp.run()?;
//! let res = got.borrow_mut().take().expect("a response");
//! assert_eq!((res.status(), &res.body()[..]), (200, &b"hi"[..]));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! The general form, with every setting (values shown are examples; see docs/http.md "Client"
//! for the defaults):
//!
//! ```no_run
//! use oneloop::http::{self, ClientRequest};
//! # let mut lp = oneloop::runtime::Loop::new()?;
//! let req = ClientRequest::new("POST", "http://127.0.0.1:3000/echo")?
//!     .header("content-type", "text/plain")
//!     .body("hello")
//!     .timeout_ms(5_000)
//!     .max_body_size(8 << 20)
//!     .max_head_size(16 * 1024);
//! http::request(&mut lp, req, |_lp, result| match result {
//!     Ok(res) => println!("{} {:?}", res.status(), res.body()),
//!     Err(e) => eprintln!("request failed: {e}"),
//! })?;
//! lp.run()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Framing (RFC 9112 §6.3)
//! Responses to HEAD and 204/304 responses have no body whatever their fields say; 1xx interim
//! responses are skipped (101 is an error: no upgrade support). Otherwise a
//! `Transfer-Encoding` ending in `chunked` is decoded by
//! [`BodyDecoder`](crate::http::decode::BodyDecoder) and wins over
//! `Content-Length`; any other `Transfer-Encoding` and a response with neither field are read
//! until the server closes. Only in that last case does EOF end the body successfully.
//!
//! # Pitfalls
//! - A host name is resolved on the thread pool for each new connection (Node's `dns.lookup`,
//!   `getaddrinfo`: `/etc/hosts` then DNS; no cache, as Node), through
//!   [`ClientRequest::lookup`]'s [`Resolver`] (the system's by default). The addresses are tried
//!   in the order the system returns them, the next one after a connect that fails (refused,
//!   unreachable), as Node 20's `autoSelectFamily` does, but one at a time: there is no 250 ms
//!   per-attempt timer, so an address that silently drops SYNs holds the request until
//!   `timeout_ms` or `deadline_ms`. An IP literal connects at once, with no lookup.
//! - Without [`ClientRequest::agent`] every request opens its own connection and sends
//!   `Connection: close` (Node's default agent keeps connections alive); with an [`Agent`]
//!   connections are kept alive and reused (see its docs).
//! - The body is collected in memory (up to `max_body_size`), not streamed.

mod agent;
mod awaitable;
mod reader;
mod url;

use std::cell::RefCell;
use std::fmt;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::rc::Rc;

use bytes::{BufMut, Bytes, BytesMut};
use oneloop_runtime::dns::{Family, Resolver};
use oneloop_runtime::{Loop, SocketOptions, TcpId, TimerId};

use super::encode::{self, validate_header_name, validate_header_value};
use super::parse::is_tchar;
use reader::ResponseReader;
use url::{parse_url, Origin, Target};

pub use agent::{Agent, AgentOptions};
pub use awaitable::{request_async, ResponseFuture};
pub use reader::ClientResponse;

/// Default [`ClientRequest::max_head_size`]: 16 KiB, Node's `maxHeaderSize`.
pub const DEFAULT_MAX_HEAD_SIZE: usize = 16 * 1024;

/// Default [`ClientRequest::max_body_size`]: 64 MiB.
pub const DEFAULT_MAX_BODY_SIZE: u64 = 64 << 20;

/// Why a request failed. Every failure of a started request reaches the callback as one of
/// these; `InvalidUrl`, `InvalidMethod` and `InvalidHeader` are returned by the builder or by
/// [`request`] before anything starts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClientError {
    /// The URL is not `http://<IP literal or host name>[:port][/path][?query]`.
    InvalidUrl(&'static str),
    /// The method is not a token, or is CONNECT (no tunnel support).
    InvalidMethod,
    /// A header name is not a token, its value has CR, LF or another CTL, or it is one the
    /// client sets itself (`Content-Length`, `Transfer-Encoding`, `Connection`).
    InvalidHeader {
        /// The name as given.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The host name did not resolve (Node's `getaddrinfo ENOTFOUND inventory`).
    Dns {
        /// Node's error code: `ENOTFOUND`, `EAI_AGAIN`, `EAI_FAIL`.
        code: &'static str,
        /// Node's message, e.g. `getaddrinfo ENOTFOUND inventory`.
        message: String,
    },
    /// The connection could not be made (refused, unreachable, or no socket could be created).
    Connect {
        /// The OS error's kind, e.g. `ConnectionRefused`.
        kind: io::ErrorKind,
        /// The OS error's message, or the TLS failure's (with Node's code in parentheses).
        message: String,
        /// Node's `err.code` for a refused certificate (`CERT_HAS_EXPIRED`,
        /// `DEPTH_ZERO_SELF_SIGNED_CERT`, `ERR_TLS_CERT_ALTNAME_INVALID`...; see
        /// [`TlsError::node_code`](crate::tls::TlsError::node_code)), else `None`.
        code: Option<&'static str>,
    },
    /// No byte was read or written for `timeout_ms`, or the response was not complete
    /// `deadline_ms` after [`request`] was called (waiting in an agent's queue included); the
    /// connection, if there was one, was destroyed.
    Timeout,
    /// The server closed (FIN, reset, or any socket error after connecting) before the
    /// response was complete.
    Closed,
    /// The response broke HTTP/1.1 framing or syntax; the connection was destroyed.
    BadResponse(&'static str),
    /// A response head (or the trailer section) exceeded `max_head_size`.
    HeadTooLarge,
    /// The body exceeded `max_body_size`; the connection was destroyed.
    BodyTooLarge,
    /// The request's agent already had `max_queued_per_host` requests waiting for a
    /// connection to this host; nothing was sent.
    QueueFull,
    /// [`RequestHandle::abort`] was called before the response was complete; the connection,
    /// if there was one, was destroyed.
    Aborted,
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientError::InvalidUrl(why) => write!(f, "invalid URL: {why}"),
            ClientError::InvalidMethod => f.write_str("invalid or unsupported method"),
            ClientError::InvalidHeader { name, reason } => {
                write!(f, "invalid header {name:?}: {reason}")
            }
            ClientError::Dns { message, .. } => f.write_str(message),
            ClientError::Connect { message, .. } => write!(f, "connect failed: {message}"),
            ClientError::Timeout => f.write_str("timed out"),
            ClientError::Closed => {
                f.write_str("server closed the connection before the response was complete")
            }
            ClientError::BadResponse(why) => write!(f, "bad response: {why}"),
            ClientError::HeadTooLarge => f.write_str("response head too large"),
            ClientError::BodyTooLarge => f.write_str("response body too large"),
            ClientError::QueueFull => f.write_str("too many requests waiting for a connection"),
            ClientError::Aborted => f.write_str("request aborted"),
        }
    }
}

impl std::error::Error for ClientError {}

/// Headers the client writes itself; `ClientRequest::header` refuses them.
const RESERVED_HEADERS: [&str; 3] = ["content-length", "transfer-encoding", "connection"];

/// A request to send with [`request`] (Node's `http.request` options). Built once, consumed
/// by [`request`].
///
/// `A` says where its connection comes from: [`NoAgent`] (the default: a new connection per
/// request; the request is `Send`) or an [`Agent`] after [`ClientRequest::agent`] (kept-alive
/// connections; not `Send`, as the agent belongs to one loop).
///
/// Invariant: `method` is a token other than CONNECT and every header passed the server's
/// validators, or `invalid` holds the first error (returned by [`request`]).
#[derive(Clone, Debug)]
pub struct ClientRequest<A = NoAgent> {
    method: String,
    target: Target,
    headers: Vec<(String, Vec<u8>)>,
    body: Option<Bytes>,
    timeout_ms: u64,
    deadline_ms: u64,
    max_head_size: usize,
    max_body_size: u64,
    resolver: Resolver,
    family: Family,
    /// Connect to this Unix domain socket instead of the URL's host:port (Node's `socketPath`).
    socket_path: Option<PathBuf>,
    /// Trust settings for `https://` (None: Mozilla's roots, built when connecting).
    tls: Option<crate::tls::ClientTls>,
    agent: A,
    invalid: Option<ClientError>,
}

/// The default connection of a [`ClientRequest`]: its own, closed after the response.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NoAgent;

impl From<NoAgent> for Option<Agent> {
    fn from(_: NoAgent) -> Option<Agent> {
        None
    }
}

impl ClientRequest {
    /// A request for `method` (case-sensitive, as sent) to `url`, with the defaults: no
    /// timeout, 16 KiB head limit, 64 MiB body limit, no body.
    ///
    /// # Errors
    /// [`ClientError::InvalidUrl`] unless `url` is `http://` with an IPv4 literal, a bracketed
    /// IPv6 literal or `localhost` as host; [`ClientError::InvalidMethod`] unless `method` is a
    /// token other than `CONNECT`.
    pub fn new(method: &str, url: &str) -> Result<ClientRequest, ClientError> {
        if method.is_empty() || !method.bytes().all(is_tchar) || method == "CONNECT" {
            return Err(ClientError::InvalidMethod);
        }
        Ok(ClientRequest {
            method: method.to_owned(),
            target: parse_url(url)?,
            headers: Vec::new(),
            body: None,
            timeout_ms: 0,
            deadline_ms: 0,
            max_head_size: DEFAULT_MAX_HEAD_SIZE,
            max_body_size: DEFAULT_MAX_BODY_SIZE,
            resolver: Resolver::system(),
            family: Family::Any,
            socket_path: None,
            tls: None,
            agent: NoAgent,
            invalid: None,
        })
    }

    /// Sends the request through `agent`, which reuses kept-alive connections to the same
    /// host:port and limits how many are open at once (Node's `agent` option with
    /// `keepAlive: true`). The request then says `Connection: keep-alive`; see [`Agent`] for
    /// when the connection is reused. Without it the request gets its own connection and says
    /// `Connection: close`.
    pub fn agent(self, agent: &Agent) -> ClientRequest<Agent> {
        ClientRequest {
            method: self.method,
            target: self.target,
            headers: self.headers,
            body: self.body,
            timeout_ms: self.timeout_ms,
            deadline_ms: self.deadline_ms,
            max_head_size: self.max_head_size,
            max_body_size: self.max_body_size,
            resolver: self.resolver,
            family: self.family,
            socket_path: self.socket_path,
            tls: self.tls,
            agent: agent.clone(),
            invalid: self.invalid,
        }
    }
}

impl<A> ClientRequest<A> {
    /// Adds a header, sent in call order with the name's case kept. An invalid name or value,
    /// or a header the client sets itself, is remembered and makes [`request`] return
    /// [`ClientError::InvalidHeader`]; it never reaches the wire. `Host` replaces the default.
    pub fn header(mut self, name: &str, value: impl AsRef<[u8]>) -> ClientRequest<A> {
        let value = value.as_ref();
        let reason = if !validate_header_name(name) {
            Some("name is not a token")
        } else if !validate_header_value(value) {
            Some("value has a control character (CR, LF, NUL, ...)")
        } else if RESERVED_HEADERS
            .iter()
            .any(|r| r.eq_ignore_ascii_case(name))
        {
            Some("set by the client (Content-Length from body(), Connection: close or keep-alive)")
        } else {
            None
        };
        match reason {
            Some(reason) if self.invalid.is_none() => {
                self.invalid = Some(ClientError::InvalidHeader {
                    name: name.to_owned(),
                    reason,
                });
            }
            Some(_) => {}
            None => self.headers.push((name.to_owned(), value.to_vec())),
        }
        self
    }

    /// Sets the body, sent with a `Content-Length` (never chunked).
    pub fn body(mut self, body: impl Into<Bytes>) -> ClientRequest<A> {
        self.body = Some(body.into());
        self
    }

    /// Resolves the URL's host name with `resolver` instead of the system's alone (Node's
    /// `lookup` option): e.g. `Resolver::system().with_host("inventory", [ip])` in a test.
    pub fn lookup(mut self, resolver: Resolver) -> ClientRequest<A> {
        self.resolver = resolver;
        self
    }

    /// Connects only to addresses of `family` (Node's `family: 4 | 6`); [`Family::Any`], the
    /// default, takes what the resolver returns, in its order.
    pub fn family(mut self, family: Family) -> ClientRequest<A> {
        self.family = family;
        self
    }

    /// Fails with [`ClientError::Timeout`] after `ms` without reading or writing a byte
    /// (connecting included); 0, the default, means never.
    pub fn timeout_ms(mut self, ms: u64) -> ClientRequest<A> {
        self.timeout_ms = ms;
        self
    }

    /// Fails with [`ClientError::Timeout`] unless the whole response is in `ms` after
    /// [`request`] is called: a deadline from arrival, time spent waiting in an [`Agent`]'s
    /// queue and connecting included (unlike `timeout_ms`, which counts silence on the
    /// connection once the request has one). 0, the default, means none.
    pub fn deadline_ms(mut self, ms: u64) -> ClientRequest<A> {
        self.deadline_ms = ms;
        self
    }

    /// Most response body bytes (after chunked decoding); more is
    /// [`ClientError::BodyTooLarge`]. Default 64 MiB.
    pub fn max_body_size(mut self, bytes: u64) -> ClientRequest<A> {
        self.max_body_size = bytes;
        self
    }

    /// Most bytes in one response head (status line to the final CRLF CRLF), and in the
    /// trailer section; more is [`ClientError::HeadTooLarge`]. Default 16 KiB.
    pub fn max_head_size(mut self, bytes: usize) -> ClientRequest<A> {
        self.max_head_size = bytes;
        self
    }

    /// Connects to the Unix domain socket at `path` instead of the URL's host and port (Node's
    /// `socketPath` request option; no name lookup): the URL still gives the `Host` header and
    /// the path, e.g. `http://localhost/containers/json` with `/var/run/docker.sock`. Not
    /// combinable with an [`Agent`] (whose pool is keyed by host and port): [`request`] then
    /// fails with [`ClientError::InvalidUrl`].
    pub fn socket_path(mut self, path: impl Into<PathBuf>) -> ClientRequest<A> {
        self.socket_path = Some(path.into());
        self
    }

    /// Whom an `https://` request trusts (Node's `ca` / `rejectUnauthorized` options):
    /// by default Mozilla's roots, as Node's bundled store ([`ClientTls::new`]); a custom CA
    /// with [`ClientTls::with_ca_pem`]; no verification only with
    /// [`ClientTls::danger_accept_invalid_certs`]. A certificate that fails (expired,
    /// self-signed, another host's) fails the request with [`ClientError::Connect`] whose
    /// message is rustls' reason and whose `code` is Node's (e.g. `tls: invalid peer
    /// certificate: self-signed certificate (not issued by a trusted CA)
    /// (DEPTH_ZERO_SELF_SIGNED_CERT)`).
    ///
    /// [`ClientTls::new`]: crate::tls::ClientTls::new
    /// [`ClientTls::with_ca_pem`]: crate::tls::ClientTls::with_ca_pem
    /// [`ClientTls::danger_accept_invalid_certs`]: crate::tls::ClientTls::danger_accept_invalid_certs
    pub fn tls(mut self, tls: crate::tls::ClientTls) -> ClientRequest<A> {
        self.tls = Some(tls);
        self
    }

    /// Whether resending the request is safe if it may already have been received
    /// (RFC 9110 §9.2.2): GET, HEAD, OPTIONS, PUT, DELETE and TRACE.
    fn is_idempotent(&self) -> bool {
        matches!(
            self.method.as_str(),
            "GET" | "HEAD" | "OPTIONS" | "PUT" | "DELETE" | "TRACE"
        )
    }

    /// The request bytes: request line, `Host` (unless set), the headers, `Connection: close`
    /// (`keep-alive` through an agent), `Content-Length` when there is a body or the method
    /// usually has one, then the body.
    fn encode(&self, keep_alive: bool) -> Bytes {
        let body = self.body.as_deref().unwrap_or(&[]);
        let mut out = BytesMut::with_capacity(256 + body.len());
        out.put_slice(self.method.as_bytes());
        out.put_u8(b' ');
        out.put_slice(self.target.path.as_bytes());
        out.put_slice(b" HTTP/1.1\r\n");
        if !self
            .headers
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case("host"))
        {
            encode::write_header(&mut out, "Host", self.target.host.as_bytes());
        }
        for (name, value) in &self.headers {
            encode::write_header(&mut out, name, value);
        }
        let connection: &[u8] = match keep_alive {
            true => b"keep-alive",
            false => b"close",
        };
        encode::write_header(&mut out, "Connection", connection);
        // As Node: methods that usually carry a body announce an empty one.
        let bodiless = matches!(
            self.method.as_str(),
            "GET" | "HEAD" | "DELETE" | "OPTIONS" | "TRACE"
        );
        if self.body.is_some() || !bodiless {
            encode::write_content_length(&mut out, body.len() as u64);
        }
        encode::write_head_end(&mut out);
        out.put_slice(body);
        out.freeze()
    }
}

/// The callback of one request.
type OnResponse = Box<dyn FnOnce(&mut Loop, Result<ClientResponse, ClientError>)>;

/// What sending and reading one request needs, on any connection. Cheap to clone (the bytes
/// are shared), so a request can be resent.
#[derive(Clone)]
struct Spec {
    origin: Origin,
    /// Connect here instead of the origin ([`ClientRequest::socket_path`]).
    socket_path: Option<PathBuf>,
    /// Trust for an `https://` origin ([`ClientRequest::tls`]; Mozilla's roots by default).
    tls: Option<crate::tls::ClientTls>,
    resolver: Resolver,
    family: Family,
    /// The host's addresses once resolved, and the one to connect to next.
    resolved: Option<(Rc<[IpAddr]>, usize)>,
    bytes: Bytes,
    head_request: bool,
    idempotent: bool,
    timeout_ms: u64,
    /// When the whole exchange must be over (loop time, ms), from `deadline_ms`.
    deadline: Option<u64>,
    max_head_size: usize,
    max_body_size: u64,
    /// Shared with the caller's [`RequestHandle`].
    cancel: Rc<Cancel>,
}

/// What [`RequestHandle::abort`] needs: the flag a request that has no connection yet checks
/// when it would start, and the exchange in flight once there is one.
#[derive(Default)]
struct Cancel {
    aborted: std::cell::Cell<bool>,
    running: RefCell<Option<(TcpId, std::rc::Weak<RefCell<Exchange>>)>>,
}

/// The marker error a request that was aborted before it had a connection fails with.
#[derive(Debug)]
struct AbortedBeforeStart;

impl fmt::Display for AbortedBeforeStart {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("request aborted")
    }
}

impl std::error::Error for AbortedBeforeStart {}

/// A request in progress, returned by [`request`] (Node's `ClientRequest`, for `abort`).
/// Dropping it changes nothing.
#[derive(Clone)]
pub struct RequestHandle(Rc<Cancel>);

impl RequestHandle {
    /// Aborts the request (Node's `req.destroy()` / an `AbortSignal`): its callback gets
    /// [`ClientError::Aborted`] now (from a later callback) if it is on a connection, which is
    /// destroyed; a request still waiting for a name lookup or for an agent's connection fails
    /// with it when its turn would come, or at its deadline. After the response arrived it
    /// does nothing.
    pub fn abort(&self, lp: &mut Loop) {
        self.0.aborted.set(true);
        let running = self.0.running.borrow_mut().take();
        if let Some((id, ex)) = running {
            if let Some(ex) = ex.upgrade() {
                lp.set_immediate(move |lp| finish(lp, id, &ex, Err(ClientError::Aborted)));
            }
        }
    }
}

/// A request waiting for a connection.
struct Job {
    spec: Spec,
    /// The resend of a request whose reused connection was stale: it needs a new connection,
    /// and is not resent again.
    fresh_only: bool,
    on_response: OnResponse,
    /// Fails the job when its deadline passes while it waits in an agent's queue (armed by
    /// the agent, cleared when the job leaves the queue).
    queue_timer: Option<TimerId>,
}

/// The connection a job starts on.
enum Conn {
    /// A new connection to the job's address.
    Fresh,
    /// An idle kept-alive connection handed over by the agent.
    Reused(TcpId),
}

/// One request in flight, shared by its socket's callbacks.
///
/// Invariant: `on_response` is taken exactly once, by [`finish`], which also destroys the
/// socket or hands it back to the agent.
struct Exchange {
    reader: ResponseReader,
    origin: Origin,
    connected: bool,
    /// A response byte arrived: the server saw the request, so it is never resent.
    received: bool,
    on_response: Option<OnResponse>,
    /// The agent the connection goes back to when the exchange ends.
    agent: Option<Agent>,
    /// The request, kept to resend it once on a new connection if this reused one fails
    /// before any response byte. Only for idempotent requests on reused connections.
    resend: Option<Spec>,
    /// The request with the host's next address, kept to try it if this new connection fails
    /// to connect. Only while untried addresses remain.
    next_address: Option<Spec>,
    /// Fails the exchange at the request's deadline; cleared by [`finish`].
    deadline_timer: Option<TimerId>,
}

/// Starts `job` on `conn` (a new connection, or an idle one the agent handed over) and routes
/// every outcome to [`finish`].
///
/// # Errors
/// No socket could be created for a new connection; the callback comes back uncalled with the
/// OS error.
fn start(
    lp: &mut Loop,
    job: Job,
    conn: Conn,
    agent: Option<&Agent>,
) -> Result<(), (OnResponse, io::Error)> {
    if job.spec.cancel.aborted.get() {
        let err = io::Error::new(io::ErrorKind::Interrupted, AbortedBeforeStart);
        return Err((job.on_response, err));
    }
    let needs_lookup = job.spec.origin.ip.is_none() && job.spec.resolved.is_none();
    if matches!(conn, Conn::Fresh) && needs_lookup && job.spec.socket_path.is_none() {
        resolve(lp, job, agent.cloned());
        return Ok(());
    }
    let Job {
        spec, on_response, ..
    } = job;
    let reused = matches!(conn, Conn::Reused(_));
    let ex = Rc::new(RefCell::new(Exchange {
        reader: ResponseReader::new(spec.head_request, spec.max_head_size, spec.max_body_size),
        origin: spec.origin.clone(),
        connected: reused,
        received: false,
        on_response: None,
        agent: agent.cloned(),
        resend: None,
        next_address: None,
        deadline_timer: None,
    }));
    let id = match conn {
        Conn::Reused(id) => {
            // Back from the free list: it keeps the loop alive again, and the request's
            // timeout (or none) replaces the idle timeout.
            let _ = lp.ref_(id);
            let _ = lp.tcp_set_timeout(id, spec.timeout_ms);
            id
        }
        Conn::Fresh => {
            let e = Rc::clone(&ex);
            let connected = move |_lp: &mut Loop, _id| e.borrow_mut().connected = true;
            let sock = match &spec.socket_path {
                Some(path) => lp.pipe_connect(path, SocketOptions::default(), connected),
                None => {
                    let ip = match &spec.resolved {
                        Some((ips, next)) => ips[*next],
                        None => spec.origin.ip.expect("start resolves a name first"),
                    };
                    let addr = SocketAddr::new(ip, spec.origin.port);
                    match spec.origin.tls {
                        true => tls_connect(lp, addr, &spec, connected),
                        false => lp.tcp_connect(addr, SocketOptions::default(), connected),
                    }
                }
            };
            match sock {
                Ok(id) => id,
                Err(err) => return Err((on_response, err)),
            }
        }
    };
    {
        let mut e = ex.borrow_mut();
        e.on_response = Some(on_response);
        *spec.cancel.running.borrow_mut() = Some((id, Rc::downgrade(&ex)));
        e.resend = (reused && spec.idempotent).then(|| spec.clone());
        e.next_address = match &spec.resolved {
            Some((ips, next)) if !reused && next + 1 < ips.len() => Some(Spec {
                resolved: Some((Rc::clone(ips), next + 1)),
                ..spec.clone()
            }),
            _ => None,
        };
    }
    if spec.timeout_ms > 0 && !reused {
        let _ = lp.tcp_set_timeout(id, spec.timeout_ms);
    }
    if let Some(deadline) = spec.deadline {
        let left = deadline.saturating_sub(lp.now());
        let e = Rc::clone(&ex);
        let timer = lp.set_timeout(left, move |lp| {
            e.borrow_mut().deadline_timer = None;
            finish(lp, id, &e, Err(ClientError::Timeout));
        });
        ex.borrow_mut().deadline_timer = Some(timer);
    }
    // Installed even without a timeout: it replaces a reused connection's idle callback.
    let e = Rc::clone(&ex);
    let _ = lp.tcp_on_timeout(id, move |lp, id| {
        finish(lp, id, &e, Err(ClientError::Timeout));
    });
    let e = Rc::clone(&ex);
    let _ = lp.tcp_on_data(id, move |lp, id, data| {
        let result = {
            let mut e = e.borrow_mut();
            e.received = true;
            e.reader.feed(data)
        };
        match result {
            Ok(None) => {}
            Ok(Some(res)) => finish(lp, id, &e, Ok(res)),
            Err(err) => finish(lp, id, &e, Err(err)),
        }
    });
    let e = Rc::clone(&ex);
    let _ = lp.tcp_on_end(id, move |lp, id| {
        let result = e.borrow_mut().reader.eof();
        finish(lp, id, &e, result);
    });
    let e = Rc::clone(&ex);
    let _ = lp.tcp_on_error(id, move |lp, id, err| {
        let (connected, next) = {
            let mut e = e.borrow_mut();
            (e.connected, e.next_address.take())
        };
        let result = match (connected, next) {
            (true, _) => {
                log::debug!("http client: socket error after connect: {err}");
                ClientError::Closed
            }
            (false, Some(spec)) => {
                log::debug!(
                    "http client: connect to {} failed ({err}); next address",
                    e.borrow().origin
                );
                return try_next_address(lp, id, &e, spec);
            }
            (false, None) => connect_error(err),
        };
        finish(lp, id, &e, Err(result));
    });
    let e = Rc::clone(&ex);
    let _ = lp.tcp_on_close(id, move |lp, id, _had_error| {
        finish(lp, id, &e, Err(ClientError::Closed));
    });
    // A new connection queues the bytes until it completes. A write error is reported later,
    // to on_error; only a reused connection that already ended (or vanished) refuses them.
    if lp.tcp_write_bytes(id, spec.bytes).is_err() {
        lp.set_immediate(move |lp| finish(lp, id, &ex, Err(ClientError::Closed)));
    }
    Ok(())
}

/// Ends the exchange, once: the connection goes back to the agent (which keeps or destroys
/// it) or is destroyed, then the callback runs. Through an agent, a reused connection that
/// failed before any response byte (the server closed it while idle) instead resends an
/// idempotent request once, on a new connection.
fn finish(
    lp: &mut Loop,
    id: TcpId,
    ex: &Rc<RefCell<Exchange>>,
    result: Result<ClientResponse, ClientError>,
) {
    let (on_response, agent, resend, clean, origin) = {
        let mut e = ex.borrow_mut();
        let Some(on_response) = e.on_response.take() else {
            return;
        };
        if let Some(timer) = e.deadline_timer.take() {
            let _ = lp.clear_timeout(timer);
        }
        let stale = !e.received && matches!(result, Err(ClientError::Closed));
        let resend = e.resend.take().filter(|_| stale);
        (
            on_response,
            e.agent.take(),
            resend,
            e.reader.ended_cleanly(),
            e.origin.clone(),
        )
    };
    let Some(agent) = agent else {
        let _ = lp.tcp_destroy(id);
        on_response(lp, result);
        return;
    };
    if let Some(spec) = resend {
        log::debug!("http client: kept-alive connection to {origin} was stale; resending");
        let _ = lp.tcp_destroy(id);
        let job = Job {
            spec,
            fresh_only: true,
            on_response,
            queue_timer: None,
        };
        agent.resend(lp, job);
        return;
    }
    // Reusable only at a message boundary, with the whole request written and the read side
    // open, and if the server allows it.
    let keep = clean
        && result.as_ref().is_ok_and(agent::keeps_alive)
        && lp.tcp_queued(id).is_ok_and(|n| n == 0)
        && !lp.tcp_read_ended(id);
    // First the connection, then the callback: a request made from the callback finds it free.
    agent.release(lp, id, &origin, keep);
    on_response(lp, result);
}

/// The new connection `id` failed to connect and the host has more addresses: the exchange
/// moves to a new connection to the next one, `spec`, with its callback, agent slot and
/// deadline (Node's `autoSelectFamily`, one attempt at a time).
fn try_next_address(lp: &mut Loop, id: TcpId, ex: &Rc<RefCell<Exchange>>, spec: Spec) {
    let (on_response, agent) = {
        let mut e = ex.borrow_mut();
        let Some(on_response) = e.on_response.take() else {
            return;
        };
        if let Some(timer) = e.deadline_timer.take() {
            let _ = lp.clear_timeout(timer);
        }
        (on_response, e.agent.take())
    };
    let _ = lp.tcp_destroy(id);
    let origin = spec.origin.clone();
    let job = Job {
        spec,
        fresh_only: true,
        on_response,
        queue_timer: None,
    };
    if let Err((on_response, err)) = start(lp, job, Conn::Fresh, agent.as_ref()) {
        give_up(
            lp,
            on_response,
            agent.as_ref(),
            &origin,
            connect_error(&err),
        );
    }
}

/// Looks up the job's host name on the thread pool, then starts the job on a new connection
/// to the first address (the others wait in [`Exchange::next_address`]). The request's
/// deadline runs during the lookup: whichever comes first, answer or deadline, takes the job.
fn resolve(lp: &mut Loop, job: Job, agent: Option<Agent>) {
    let origin = job.spec.origin.clone();
    let (resolver, family, deadline) = (
        job.spec.resolver.clone(),
        job.spec.family,
        job.spec.deadline,
    );
    let slot = Rc::new(RefCell::new(Some(job)));
    let deadline_timer = deadline.map(|at| {
        let (slot, agent, origin) = (Rc::clone(&slot), agent.clone(), origin.clone());
        let left = at.saturating_sub(lp.now());
        lp.set_timeout(left, move |lp| {
            if let Some(job) = slot.borrow_mut().take() {
                give_up(
                    lp,
                    job.on_response,
                    agent.as_ref(),
                    &origin,
                    ClientError::Timeout,
                );
            }
        })
    });
    let answer = {
        let (slot, agent, origin) = (Rc::clone(&slot), agent.clone(), origin.clone());
        move |lp: &mut Loop, result: Result<Vec<IpAddr>, oneloop_runtime::dns::DnsError>| {
            let Some(mut job) = slot.borrow_mut().take() else {
                return; // the deadline came first
            };
            if let Some(timer) = deadline_timer {
                let _ = lp.clear_timeout(timer);
            }
            match result {
                Ok(ips) => {
                    job.spec.resolved = Some((ips.into(), 0));
                    if let Err((on_response, err)) = start(lp, job, Conn::Fresh, agent.as_ref()) {
                        give_up(
                            lp,
                            on_response,
                            agent.as_ref(),
                            &origin,
                            connect_error(&err),
                        );
                    }
                }
                Err(e) => {
                    let err = ClientError::Dns {
                        code: e.code(),
                        message: e.to_string(),
                    };
                    give_up(lp, job.on_response, agent.as_ref(), &origin, err);
                }
            }
        }
    };
    if let Err(err) = resolver.lookup_all(lp, &origin.name, family, answer) {
        if let Some(job) = slot.borrow_mut().take() {
            give_up(
                lp,
                job.on_response,
                agent.as_ref(),
                &origin,
                connect_error(&err),
            );
        }
    }
}

/// A request that never got a connection fails with `err` (from the check phase): its place in
/// the agent, if any, goes to the next waiting request.
fn give_up(
    lp: &mut Loop,
    on_response: OnResponse,
    agent: Option<&Agent>,
    origin: &Origin,
    err: ClientError,
) {
    if let Some(agent) = agent {
        agent.gave_up(lp, origin);
    }
    fail_later(lp, on_response, err);
}

/// Calls `on_response` with `err` from the check phase: never from inside the caller.
fn fail_later(lp: &mut Loop, on_response: OnResponse, err: ClientError) {
    lp.set_immediate(move |lp| on_response(lp, Err(err)));
}

/// Sends `req` and calls `on_response` exactly once, from a later loop callback (never from
/// inside this call), with the whole response or why there is none (Node's `http.request`,
/// with the body collected). The request gets its own connection, or, with
/// [`ClientRequest::agent`], a kept-alive one from the agent (possibly after waiting for it).
///
/// # Errors
/// The error `req` recorded while it was built ([`ClientError::InvalidHeader`]); then nothing
/// is sent and `on_response` is dropped uncalled. Every other failure, including a socket that
/// cannot be created, goes to `on_response`.
pub fn request<A: Into<Option<Agent>> + Clone>(
    lp: &mut Loop,
    mut req: ClientRequest<A>,
    on_response: impl FnOnce(&mut Loop, Result<ClientResponse, ClientError>) + 'static,
) -> Result<RequestHandle, ClientError> {
    if let Some(e) = req.invalid.take() {
        return Err(e);
    }
    let agent: Option<Agent> = req.agent.clone().into();
    if agent.is_some() && req.socket_path.is_some() {
        return Err(ClientError::InvalidUrl(
            "socket_path with an agent is not supported",
        ));
    }
    let cancel = Rc::new(Cancel::default());
    let job = Job {
        spec: Spec {
            origin: req.target.origin.clone(),
            socket_path: req.socket_path.take(),
            tls: req.tls.take(),
            resolver: req.resolver.clone(),
            family: req.family,
            resolved: None,
            bytes: req.encode(agent.is_some()),
            head_request: req.method == "HEAD",
            idempotent: req.is_idempotent(),
            timeout_ms: req.timeout_ms,
            deadline: (req.deadline_ms > 0).then(|| lp.now() + req.deadline_ms),
            max_head_size: req.max_head_size,
            max_body_size: req.max_body_size,
            cancel: Rc::clone(&cancel),
        },
        fresh_only: false,
        on_response: Box::new(on_response),
        queue_timer: None,
    };
    match agent {
        Some(agent) => agent.enqueue(lp, job),
        None => {
            if let Err((on_response, err)) = start(lp, job, Conn::Fresh, None) {
                fail_later(lp, on_response, connect_error(&err));
            }
        }
    }
    Ok(RequestHandle(cancel))
}

/// `GET url` with the defaults (Node's `http.get`).
///
/// # Errors
/// As [`ClientRequest::new`]; then `on_response` is dropped uncalled.
pub fn get(
    lp: &mut Loop,
    url: &str,
    on_response: impl FnOnce(&mut Loop, Result<ClientResponse, ClientError>) + 'static,
) -> Result<RequestHandle, ClientError> {
    request(lp, ClientRequest::new("GET", url)?, on_response)
}

/// Connects to an `https://` origin: the certificate must be valid for the URL's host (also
/// sent as SNI when it is a name). The exchange counts as connected once the handshake has
/// completed, so a refused certificate is a [`ClientError::Connect`].
fn tls_connect(
    lp: &mut Loop,
    addr: SocketAddr,
    spec: &Spec,
    connected: impl FnMut(&mut Loop, TcpId) + 'static,
) -> io::Result<TcpId> {
    let tls = spec.tls.clone().unwrap_or_default();
    let name = crate::tls::ServerName::try_from(spec.origin.name.to_string())
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    let options = crate::tls::TlsConnectOptions {
        config: tls.config(),
        server_name: name,
        handshake_timeout_ms: crate::tls::DEFAULT_HANDSHAKE_TIMEOUT_MS,
    };
    lp.tls_connect(addr, options, SocketOptions::default(), connected)
}

fn connect_error(e: &io::Error) -> ClientError {
    if e.get_ref()
        .is_some_and(|inner| inner.is::<AbortedBeforeStart>())
    {
        return ClientError::Aborted;
    }
    ClientError::Connect {
        kind: e.kind(),
        message: e.to_string(),
        code: crate::tls::tls_error(e).and_then(crate::tls::TlsError::node_code),
    }
}
#[cfg(test)]
mod tests {
    use super::*;

    const BAD: fn(&'static str) -> ClientError = ClientError::BadResponse;

    #[test]
    fn encodes_connection_keep_alive_through_an_agent_and_knows_idempotent_methods() {
        let agent = Agent::new(AgentOptions::default());
        let req = ClientRequest::new("GET", "http://127.0.0.1:8/")
            .unwrap()
            .agent(&agent)
            .header("X", "1");
        assert_eq!(
            &req.encode(true)[..],
            b"GET / HTTP/1.1\r\nHost: 127.0.0.1:8\r\nX: 1\r\nConnection: keep-alive\r\n\r\n"
        );
        for (method, idempotent) in [
            ("GET", true),
            ("HEAD", true),
            ("OPTIONS", true),
            ("PUT", true),
            ("DELETE", true),
            ("TRACE", true),
            ("POST", false),
            ("PATCH", false),
            ("get", false),
        ] {
            let req = ClientRequest::new(method, "http://127.0.0.1/").unwrap();
            assert_eq!(req.is_idempotent(), idempotent, "{method}");
        }
    }

    #[test]
    fn encodes_host_headers_connection_close_and_content_length() {
        let req = ClientRequest::new("POST", "http://127.0.0.1:3000/echo?x")
            .unwrap()
            .header("X-Custom", "a b")
            .body("hello");
        assert_eq!(
            &req.encode(false)[..],
            b"POST /echo?x HTTP/1.1\r\nHost: 127.0.0.1:3000\r\nX-Custom: a b\r\n\
              Connection: close\r\nContent-Length: 5\r\n\r\nhello"
        );
        let get = ClientRequest::new("GET", "http://[::1]/").unwrap();
        assert_eq!(
            &get.encode(false)[..],
            b"GET / HTTP/1.1\r\nHost: [::1]\r\nConnection: close\r\n\r\n"
        );
        let put = ClientRequest::new("PUT", "http://127.0.0.1/")
            .unwrap()
            .header("host", "example.com");
        assert_eq!(
            &put.encode(false)[..],
            b"PUT / HTTP/1.1\r\nhost: example.com\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
        );
    }

    #[test]
    fn refuses_bad_methods_and_headers_without_panicking() {
        for method in ["", "GE T", "G\r\nET", "CONNECT"] {
            assert_eq!(
                ClientRequest::new(method, "http://127.0.0.1/").unwrap_err(),
                ClientError::InvalidMethod
            );
        }
        let base = || ClientRequest::new("GET", "http://127.0.0.1/").unwrap();
        for (name, value) in [
            ("Bad Name", "v"),
            ("", "v"),
            ("X", "a\r\nInjected: 1"),
            ("X", "a\0"),
            ("Content-Length", "5"),
            ("transfer-encoding", "chunked"),
            ("Connection", "keep-alive"),
        ] {
            let req = base().header(name, value).header("Later", "ok");
            assert!(
                matches!(&req.invalid, Some(ClientError::InvalidHeader { name: n, .. }) if n == name),
                "{name:?}: {value:?}"
            );
            let mut lp = Loop::new().unwrap();
            let called = request(&mut lp, req, |_lp, _r| panic!("must not be called"));
            assert!(matches!(called, Err(ClientError::InvalidHeader { .. })));
        }
    }

    #[test]
    fn displays_every_error() {
        let e = ClientError::Connect {
            kind: io::ErrorKind::ConnectionRefused,
            message: "refused".into(),
            code: None,
        };
        assert_eq!(e.to_string(), "connect failed: refused");
        assert_eq!(BAD("bare CR").to_string(), "bad response: bare CR");
        let _: &dyn std::error::Error = &ClientError::Timeout;
    }
}

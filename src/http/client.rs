//! HTTP/1.1 client on the loop (Node's `http.request` / `http.get`), one connection per request.
//!
//! A request is one-shot: [`request`] connects, writes the whole request, reads one response and
//! calls its callback exactly once with the collected response or a [`ClientError`], then the
//! socket is gone and no longer keeps the loop alive.
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
//! `Transfer-Encoding` ending in `chunked` is decoded by [`BodyDecoder`] and wins over
//! `Content-Length`; any other `Transfer-Encoding` and a response with neither field are read
//! until the server closes. Only in that last case does EOF end the body successfully.
//!
//! # Pitfalls
//! - Hosts are IP literals or `localhost` only: name resolution (`ToSocketAddrs`) blocks, and
//!   nothing may block the loop. `localhost` is 127.0.0.1.
//! - There is no keep-alive agent: every request opens its own connection and sends
//!   `Connection: close` (Node's default agent keeps connections alive).
//! - The body is collected in memory (up to `max_body_size`), not streamed.

use std::cell::RefCell;
use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::ops::Range;
use std::rc::Rc;

use bytes::{BufMut, Bytes, BytesMut};
use oneloop_runtime::{Loop, SocketOptions, TcpId};

use super::decode::{BodyDecoder, DecodeLimits, Decoded, Trailers};
use super::encode::{self, validate_header_name, validate_header_value};
use super::error::ParseError;
use super::parse::{is_tchar, BodyKind, Version};

/// Default [`ClientRequest::max_head_size`]: 16 KiB, Node's `maxHeaderSize`.
pub const DEFAULT_MAX_HEAD_SIZE: usize = 16 * 1024;

/// Default [`ClientRequest::max_body_size`]: 64 MiB.
pub const DEFAULT_MAX_BODY_SIZE: u64 = 64 << 20;

/// Why a request failed. Every failure of a started request reaches the callback as one of
/// these; `InvalidUrl`, `InvalidMethod` and `InvalidHeader` are returned by the builder or by
/// [`request`] before anything starts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClientError {
    /// The URL is not `http://<IP literal or localhost>[:port][/path][?query]`.
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
    /// The connection could not be made (refused, unreachable, or no socket could be created).
    Connect {
        /// The OS error's kind, e.g. `ConnectionRefused`.
        kind: io::ErrorKind,
        /// The OS error's message.
        message: String,
    },
    /// No byte was read or written for `timeout_ms`; the connection was destroyed.
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
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientError::InvalidUrl(why) => write!(f, "invalid URL: {why}"),
            ClientError::InvalidMethod => f.write_str("invalid or unsupported method"),
            ClientError::InvalidHeader { name, reason } => {
                write!(f, "invalid header {name:?}: {reason}")
            }
            ClientError::Connect { message, .. } => write!(f, "connect failed: {message}"),
            ClientError::Timeout => f.write_str("timed out"),
            ClientError::Closed => {
                f.write_str("server closed the connection before the response was complete")
            }
            ClientError::BadResponse(why) => write!(f, "bad response: {why}"),
            ClientError::HeadTooLarge => f.write_str("response head too large"),
            ClientError::BodyTooLarge => f.write_str("response body too large"),
        }
    }
}

impl std::error::Error for ClientError {}

/// Where a request goes: the address to connect to, the `Host` value and the request-target.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Target {
    addr: SocketAddr,
    host: String,
    path: String,
}

/// Parses `http://host[:port][/path][?query][#fragment]`, where host is an IPv4 literal, a
/// bracketed IPv6 literal or `localhost`. The fragment is dropped; an empty path is `/`.
fn parse_url(url: &str) -> Result<Target, ClientError> {
    let bad = ClientError::InvalidUrl;
    let rest = match url.get(..7) {
        Some(scheme) if scheme.eq_ignore_ascii_case("http://") => &url[7..],
        _ => return Err(bad("only http:// URLs are supported")),
    };
    let auth_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(auth_end);
    if authority.contains('@') {
        return Err(bad("userinfo is not supported"));
    }
    // `host_name` is the host as written (brackets kept), `port` the text after its `:`.
    let (ip, host_name, port) = if authority.starts_with('[') {
        let close = authority.find(']').ok_or(bad("unclosed [ in host"))?;
        let ip: Ipv6Addr = authority[1..close]
            .parse()
            .map_err(|_| bad("bad IPv6 literal"))?;
        let port = match &authority[close + 1..] {
            "" => None,
            after => Some(
                after
                    .strip_prefix(':')
                    .ok_or(bad("junk after the IPv6 literal"))?,
            ),
        };
        (IpAddr::V6(ip), &authority[..=close], port)
    } else {
        let (name, port) = match authority.split_once(':') {
            Some((name, port)) => (name, Some(port)),
            None => (authority, None),
        };
        let ip = if name.eq_ignore_ascii_case("localhost") {
            Ipv4Addr::LOCALHOST
        } else {
            name.parse()
                .map_err(|_| bad("host must be an IP literal or localhost (no DNS)"))?
        };
        (IpAddr::V4(ip), name, port)
    };
    let port = match port {
        None | Some("") => 80,
        Some(p) if p.bytes().all(|b| b.is_ascii_digit()) => match p.parse::<u16>() {
            Ok(n) if n > 0 => n,
            _ => return Err(bad("port out of range")),
        },
        Some(_) => return Err(bad("bad port")),
    };
    let tail = tail.split('#').next().unwrap_or("");
    let path = match tail.as_bytes().first() {
        None => "/".to_owned(),
        Some(b'?') => format!("/{tail}"),
        Some(_) => tail.to_owned(),
    };
    if !path.bytes().all(|b| (0x21..=0x7e).contains(&b)) {
        return Err(bad(
            "path has a space, control or non-ASCII byte: percent-encode it",
        ));
    }
    let host = match port {
        80 => host_name.to_owned(),
        p => format!("{host_name}:{p}"),
    };
    Ok(Target {
        addr: SocketAddr::new(ip, port),
        host,
        path,
    })
}

/// Headers the client writes itself; `ClientRequest::header` refuses them.
const RESERVED_HEADERS: [&str; 3] = ["content-length", "transfer-encoding", "connection"];

/// A request to send with [`request`] (Node's `http.request` options). Built once, consumed
/// by [`request`].
///
/// Invariant: `method` is a token other than CONNECT and every header passed the server's
/// validators, or `invalid` holds the first error (returned by [`request`]).
#[derive(Clone, Debug)]
pub struct ClientRequest {
    method: String,
    target: Target,
    headers: Vec<(String, Vec<u8>)>,
    body: Option<Bytes>,
    timeout_ms: u64,
    max_head_size: usize,
    max_body_size: u64,
    invalid: Option<ClientError>,
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
            max_head_size: DEFAULT_MAX_HEAD_SIZE,
            max_body_size: DEFAULT_MAX_BODY_SIZE,
            invalid: None,
        })
    }

    /// Adds a header, sent in call order with the name's case kept. An invalid name or value,
    /// or a header the client sets itself, is remembered and makes [`request`] return
    /// [`ClientError::InvalidHeader`]; it never reaches the wire. `Host` replaces the default.
    pub fn header(mut self, name: &str, value: impl AsRef<[u8]>) -> ClientRequest {
        let value = value.as_ref();
        let reason = if !validate_header_name(name) {
            Some("name is not a token")
        } else if !validate_header_value(value) {
            Some("value has a control character (CR, LF, NUL, ...)")
        } else if RESERVED_HEADERS
            .iter()
            .any(|r| r.eq_ignore_ascii_case(name))
        {
            Some("set by the client (Content-Length from body(), Connection: close)")
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
    pub fn body(mut self, body: impl Into<Bytes>) -> ClientRequest {
        self.body = Some(body.into());
        self
    }

    /// Fails with [`ClientError::Timeout`] after `ms` without reading or writing a byte
    /// (connecting included); 0, the default, means never.
    pub fn timeout_ms(mut self, ms: u64) -> ClientRequest {
        self.timeout_ms = ms;
        self
    }

    /// Most response body bytes (after chunked decoding); more is
    /// [`ClientError::BodyTooLarge`]. Default 64 MiB.
    pub fn max_body_size(mut self, bytes: u64) -> ClientRequest {
        self.max_body_size = bytes;
        self
    }

    /// Most bytes in one response head (status line to the final CRLF CRLF), and in the
    /// trailer section; more is [`ClientError::HeadTooLarge`]. Default 16 KiB.
    pub fn max_head_size(mut self, bytes: usize) -> ClientRequest {
        self.max_head_size = bytes;
        self
    }

    /// The request bytes: request line, `Host` (unless set), the headers, `Connection: close`,
    /// `Content-Length` when there is a body or the method usually has one, then the body.
    fn encode(&self) -> Bytes {
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
        encode::write_header(&mut out, "Connection", b"close");
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

/// A parsed response head: the bytes, and the status line and fields as ranges into them.
///
/// Invariant: every name is a token, every value has no CTL but HTAB, lines end in CRLF.
#[derive(Clone, Debug)]
struct ResponseHead {
    bytes: Bytes,
    version: Version,
    status: u16,
    reason: Range<usize>,
    headers: Vec<(Range<usize>, Range<usize>)>,
}

impl ResponseHead {
    fn fields(&self) -> impl Iterator<Item = (&[u8], &[u8])> + '_ {
        self.headers
            .iter()
            .map(|(n, v)| (&self.bytes[n.clone()], &self.bytes[v.clone()]))
    }
}

/// A complete response: head, collected body and trailers (Node's `IncomingMessage`, read to
/// the end).
#[derive(Clone, Debug)]
pub struct ClientResponse {
    head: ResponseHead,
    body: Bytes,
    trailers: Trailers,
}

impl ClientResponse {
    /// The status code (200..=999; 1xx interim responses are never returned).
    pub fn status(&self) -> u16 {
        self.head.status
    }

    /// The reason phrase, or `""` when it is not UTF-8.
    pub fn reason(&self) -> &str {
        std::str::from_utf8(&self.head.bytes[self.head.reason.clone()]).unwrap_or("")
    }

    /// The response's HTTP version.
    pub fn version(&self) -> Version {
        self.head.version
    }

    /// All fields as `(name, value)` in the order received, names with their original case.
    pub fn headers(&self) -> impl Iterator<Item = (&str, &[u8])> + '_ {
        // Names are tokens (ASCII), checked by httparse.
        self.head
            .fields()
            .map(|(n, v)| (std::str::from_utf8(n).unwrap_or(""), v))
    }

    /// The first field named `name` (ASCII case-insensitive) as bytes.
    pub fn header_bytes(&self, name: &str) -> Option<&[u8]> {
        self.head
            .fields()
            .find(|(n, _)| n.eq_ignore_ascii_case(name.as_bytes()))
            .map(|(_, v)| v)
    }

    /// The first field named `name` (ASCII case-insensitive), if it is valid UTF-8.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.header_bytes(name)
            .and_then(|v| std::str::from_utf8(v).ok())
    }

    /// The whole body, decoded (no chunk framing). Empty for HEAD, 204 and 304.
    pub fn body(&self) -> &Bytes {
        &self.body
    }

    /// Takes the body out of the response.
    pub fn into_body(self) -> Bytes {
        self.body
    }

    /// Trailer fields of a chunked body as `(name, value)`, in order; empty otherwise.
    pub fn trailers(&self) -> &[(String, Vec<u8>)] {
        &self.trailers
    }
}

/// How a response body is delimited (RFC 9112 §6.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Framing {
    /// The head is the whole response.
    None,
    /// Exactly this many bytes (never 0).
    Length(u64),
    /// `Transfer-Encoding` ending in `chunked`.
    Chunked,
    /// Until the server closes.
    UntilClose,
}

/// Decides the framing of a final (non-1xx) response, RFC 9112 §6.3 in order: HEAD, 204 and
/// 304 have no body; `Transfer-Encoding` wins over `Content-Length` and is chunked only when
/// `chunked` is its last coding (any other is read until close); `Content-Length` values must
/// be `1*DIGIT` and agree; with neither, until close.
fn framing<'a>(
    head_request: bool,
    version: Version,
    status: u16,
    fields: impl Iterator<Item = (&'a [u8], &'a [u8])>,
) -> Result<Framing, ClientError> {
    let bad = ClientError::BadResponse;
    if head_request || status == 204 || status == 304 {
        return Ok(Framing::None);
    }
    let mut length: Option<u64> = None;
    let (mut te, mut chunked_last, mut chunked_seen) = (false, false, false);
    for (name, value) in fields {
        if name.eq_ignore_ascii_case(b"transfer-encoding") {
            te = true;
            for coding in list_elements(value) {
                let token = coding
                    .split(|&b| b == b';')
                    .next()
                    .unwrap_or(&[])
                    .trim_ascii();
                if token.is_empty() || !token.iter().all(|&b| is_tchar(b)) {
                    return Err(bad("invalid Transfer-Encoding"));
                }
                let is_chunked = token.eq_ignore_ascii_case(b"chunked");
                if is_chunked && chunked_seen {
                    return Err(bad("chunked applied twice"));
                }
                chunked_seen |= is_chunked;
                chunked_last = is_chunked;
            }
        } else if name.eq_ignore_ascii_case(b"content-length") {
            let mut any = false;
            for element in list_elements(value) {
                any = true;
                let n = parse_decimal(element).ok_or(bad("invalid Content-Length"))?;
                if length.is_some_and(|prev| prev != n) {
                    return Err(bad("differing Content-Length values"));
                }
                length = Some(n);
            }
            if !any {
                return Err(bad("invalid Content-Length"));
            }
        }
    }
    if te {
        // RFC 9112 §6.1: Transfer-Encoding in an HTTP/1.0 message means faulty framing.
        if version == Version::Http10 {
            return Err(bad("Transfer-Encoding on HTTP/1.0"));
        }
        return Ok(if chunked_last {
            Framing::Chunked
        } else {
            Framing::UntilClose
        });
    }
    Ok(match length {
        Some(0) => Framing::None,
        Some(n) => Framing::Length(n),
        None => Framing::UntilClose,
    })
}

/// The elements of a comma-separated list, OWS trimmed. An empty element (`1,,1`, `,1`) is
/// yielded as empty so the caller can refuse it.
fn list_elements(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value.split(|&b| b == b',').map(<[u8]>::trim_ascii)
}

/// `1*DIGIT` as a `u64`; `None` on anything else or overflow.
fn parse_decimal(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() {
        return None;
    }
    digits.iter().try_fold(0u64, |n, &b| {
        b.is_ascii_digit()
            .then_some(())
            .and_then(|()| n.checked_mul(10)?.checked_add(u64::from(b - b'0')))
    })
}

/// Outcome of scanning for the end of a head.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Scan {
    /// The head ends just before this offset (after CRLF CRLF).
    Complete(usize),
    /// Not yet; resume scanning at this offset.
    Partial(usize),
}

/// Finds the end of a response head in `buf`, resuming at `from` (a previous `Partial`).
/// Refuses what httparse tolerates: a bare LF, a bare CR and empty lines before the status
/// line.
fn scan_head(buf: &[u8], from: usize) -> Result<Scan, ClientError> {
    if matches!(buf.first(), Some(b'\r' | b'\n')) {
        return Err(ClientError::BadResponse(
            "empty line before the status line",
        ));
    }
    let mut at = from;
    loop {
        let Some(off) = memchr::memchr2(b'\r', b'\n', buf.get(at..).unwrap_or(&[])) else {
            return Ok(Scan::Partial(buf.len()));
        };
        let p = at + off;
        if buf[p] == b'\n' {
            return Err(ClientError::BadResponse("bare LF line ending"));
        }
        match buf.get(p + 1) {
            None => return Ok(Scan::Partial(p)),
            Some(b'\n') => {}
            Some(_) => return Err(ClientError::BadResponse("bare CR")),
        }
        if p >= 2 && &buf[p - 2..p] == b"\r\n" {
            return Ok(Scan::Complete(p + 2));
        }
        at = p + 2;
    }
}

/// Parses a complete head (status line through CRLF CRLF, as found by [`scan_head`]) with
/// httparse.
fn parse_head(bytes: Bytes) -> Result<ResponseHead, ClientError> {
    let bad = ClientError::BadResponse;
    // Every line but the status line and the final empty one is a field line.
    let lines = memchr::memchr_iter(b'\n', &bytes).count();
    let mut fields = vec![httparse::EMPTY_HEADER; lines.saturating_sub(2)];
    let mut res = httparse::Response::new(&mut fields);
    match res.parse(&bytes) {
        Ok(httparse::Status::Complete(n)) if n == bytes.len() => {}
        Ok(_) => return Err(bad("malformed head")),
        Err(e) => {
            return Err(bad(match e {
                httparse::Error::Version => "invalid HTTP version",
                httparse::Error::Status => "invalid status line",
                httparse::Error::HeaderName => "invalid header name",
                httparse::Error::HeaderValue => "invalid header value",
                httparse::Error::NewLine => "invalid line ending",
                _ => "malformed head",
            }))
        }
    }
    let version = match res.version {
        Some(0) => Version::Http10,
        _ => Version::Http11,
    };
    let status = res.code.unwrap_or(0);
    if status < 100 {
        return Err(bad("invalid status line"));
    }
    // httparse checked `HTTP/1.x SP 3DIGIT` then SP reason or CRLF: the reason starts at 13.
    let line_end = memchr::memchr(b'\r', &bytes).unwrap_or(0);
    let reason = 13.min(line_end)..line_end;
    let base = bytes.as_ptr() as usize;
    let span = |s: &[u8]| {
        let start = s.as_ptr() as usize - base;
        start..start + s.len()
    };
    let headers = res
        .headers
        .iter()
        .map(|h| (span(h.name.as_bytes()), span(h.value)))
        .collect();
    Ok(ResponseHead {
        bytes,
        version,
        status,
        reason,
        headers,
    })
}

/// Where the reader is in the response.
enum Reading {
    /// Before or inside a head (1xx heads are read and dropped here).
    Head { scanned: usize },
    /// A body framed by Content-Length or chunked.
    Body {
        head: ResponseHead,
        decoder: BodyDecoder,
        body: BytesMut,
    },
    /// A body that ends when the server closes.
    UntilClose { head: ResponseHead, body: BytesMut },
    /// The response was returned (or failed); nothing more is read.
    Done,
}

/// Reads one response from bytes fed in any pieces; no I/O, so the framing rules are tested
/// without sockets.
///
/// Invariant: a response or an error is returned at most once; afterwards the reader is
/// `Done` and ignores input.
struct ResponseReader {
    head_request: bool,
    max_head_size: usize,
    limits: DecodeLimits,
    buf: BytesMut,
    state: Reading,
}

impl ResponseReader {
    fn new(head_request: bool, max_head_size: usize, max_body_size: u64) -> ResponseReader {
        ResponseReader {
            head_request,
            max_head_size,
            limits: DecodeLimits {
                max_trailer_size: max_head_size,
                max_body_size,
                ..DecodeLimits::default()
            },
            buf: BytesMut::new(),
            state: Reading::Head { scanned: 0 },
        }
    }

    /// Takes `data`; `Ok(Some)` once the response is complete.
    fn feed(&mut self, data: &[u8]) -> Result<Option<ClientResponse>, ClientError> {
        match &mut self.state {
            Reading::Done => return Ok(None),
            Reading::UntilClose { body, .. } => {
                if body.len() as u64 + data.len() as u64 > self.limits.max_body_size {
                    self.state = Reading::Done;
                    return Err(ClientError::BodyTooLarge);
                }
                body.extend_from_slice(data);
                return Ok(None);
            }
            _ => self.buf.extend_from_slice(data),
        }
        let result = self.advance();
        if !matches!(result, Ok(None)) {
            self.state = Reading::Done;
        }
        result
    }

    /// The server closed: the end of an until-close body, otherwise [`ClientError::Closed`].
    fn eof(&mut self) -> Result<ClientResponse, ClientError> {
        match std::mem::replace(&mut self.state, Reading::Done) {
            Reading::UntilClose { head, body } => Ok(ClientResponse {
                head,
                body: body.freeze(),
                trailers: Vec::new(),
            }),
            _ => Err(ClientError::Closed),
        }
    }

    fn advance(&mut self) -> Result<Option<ClientResponse>, ClientError> {
        loop {
            match &mut self.state {
                Reading::Head { scanned } => {
                    let window = self.buf.len().min(self.max_head_size);
                    let end = match scan_head(&self.buf[..window], *scanned)? {
                        Scan::Complete(end) => end,
                        Scan::Partial(_) if self.buf.len() > self.max_head_size => {
                            return Err(ClientError::HeadTooLarge)
                        }
                        Scan::Partial(at) => {
                            *scanned = at;
                            return Ok(None);
                        }
                    };
                    let head = parse_head(self.buf.split_to(end).freeze())?;
                    self.state = self.after_head(head)?;
                }
                Reading::Body { decoder, body, .. } => {
                    match decoder.decode(&mut self.buf, &self.limits) {
                        Ok(Decoded::Data(data)) => body.extend_from_slice(&data),
                        Ok(Decoded::NeedMore) => return Ok(None),
                        Ok(Decoded::Done) => {
                            let trailers = decoder.take_trailers();
                            let Reading::Body { head, body, .. } =
                                std::mem::replace(&mut self.state, Reading::Done)
                            else {
                                unreachable!("matched above");
                            };
                            return Ok(Some(ClientResponse {
                                head,
                                body: body.freeze(),
                                trailers,
                            }));
                        }
                        Err(e) => return Err(body_error(e)),
                    }
                }
                Reading::UntilClose { .. } | Reading::Done => return Ok(None),
            }
        }
    }

    /// The state after a head: another head after a 1xx, else the body its framing says.
    fn after_head(&mut self, head: ResponseHead) -> Result<Reading, ClientError> {
        match head.status {
            101 => Err(ClientError::BadResponse(
                "101 Switching Protocols: upgrades are not supported",
            )),
            100..=199 => Ok(Reading::Head { scanned: 0 }),
            status => {
                let kind = match framing(self.head_request, head.version, status, head.fields())? {
                    Framing::None => BodyKind::Empty,
                    Framing::Length(n) => BodyKind::Length(n),
                    Framing::Chunked => BodyKind::Chunked,
                    Framing::UntilClose => {
                        let body = self.buf.split();
                        if body.len() as u64 > self.limits.max_body_size {
                            return Err(ClientError::BodyTooLarge);
                        }
                        return Ok(Reading::UntilClose { head, body });
                    }
                };
                Ok(Reading::Body {
                    head,
                    decoder: BodyDecoder::new(kind),
                    body: BytesMut::new(),
                })
            }
        }
    }
}

/// The client's error for a body decoding error.
fn body_error(e: ParseError) -> ClientError {
    match e {
        ParseError::BodyTooLarge => ClientError::BodyTooLarge,
        ParseError::TrailersTooLarge => ClientError::HeadTooLarge,
        e => ClientError::BadResponse(e.reason()),
    }
}

/// The callback of one request.
type OnResponse = Box<dyn FnOnce(&mut Loop, Result<ClientResponse, ClientError>)>;

/// One request in flight, shared by its socket's callbacks.
///
/// Invariant: `on_response` is taken exactly once, by [`finish`], which also destroys the
/// socket.
struct Exchange {
    reader: ResponseReader,
    connected: bool,
    on_response: Option<OnResponse>,
}

/// Ends the exchange: destroys the socket (if still open) and calls the callback, once.
fn finish(
    lp: &mut Loop,
    id: TcpId,
    ex: &Rc<RefCell<Exchange>>,
    result: Result<ClientResponse, ClientError>,
) {
    let Some(on_response) = ex.borrow_mut().on_response.take() else {
        return;
    };
    let _ = lp.tcp_destroy(id);
    on_response(lp, result);
}

/// Sends `req` on a new connection and calls `on_response` exactly once, from a later loop
/// callback (never from inside this call), with the whole response or why there is none
/// (Node's `http.request`, with the body collected).
///
/// # Errors
/// The error `req` recorded while it was built ([`ClientError::InvalidHeader`]); then nothing
/// is sent and `on_response` is dropped uncalled. Every other failure, including a socket that
/// cannot be created, goes to `on_response`.
pub fn request(
    lp: &mut Loop,
    req: ClientRequest,
    on_response: impl FnOnce(&mut Loop, Result<ClientResponse, ClientError>) + 'static,
) -> Result<(), ClientError> {
    if let Some(e) = req.invalid {
        return Err(e);
    }
    let bytes = req.encode();
    let ex = Rc::new(RefCell::new(Exchange {
        reader: ResponseReader::new(req.method == "HEAD", req.max_head_size, req.max_body_size),
        connected: false,
        on_response: Some(Box::new(on_response)),
    }));
    let e = Rc::clone(&ex);
    let connected = move |_lp: &mut Loop, _id| e.borrow_mut().connected = true;
    let id = match lp.tcp_connect(req.target.addr, SocketOptions::default(), connected) {
        Ok(id) => id,
        Err(err) => {
            let on_response = ex.borrow_mut().on_response.take();
            lp.set_immediate(move |lp| {
                if let Some(cb) = on_response {
                    cb(lp, Err(connect_error(&err)));
                }
            });
            return Ok(());
        }
    };
    // Queued until the connection completes; a fresh socket cannot be stale.
    let _ = lp.tcp_write_bytes(id, bytes);
    if req.timeout_ms > 0 {
        let _ = lp.tcp_set_timeout(id, req.timeout_ms);
        let e = Rc::clone(&ex);
        let _ = lp.tcp_on_timeout(id, move |lp, id| {
            finish(lp, id, &e, Err(ClientError::Timeout));
        });
    }
    let e = Rc::clone(&ex);
    let _ = lp.tcp_on_data(id, move |lp, id, data| {
        let result = e.borrow_mut().reader.feed(data);
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
        let result = if e.borrow().connected {
            log::debug!("http client: socket error after connect: {err}");
            ClientError::Closed
        } else {
            connect_error(err)
        };
        finish(lp, id, &e, Err(result));
    });
    let _ = lp.tcp_on_close(id, move |lp, id, _had_error| {
        finish(lp, id, &ex, Err(ClientError::Closed));
    });
    Ok(())
}

/// `GET url` with the defaults (Node's `http.get`).
///
/// # Errors
/// As [`ClientRequest::new`]; then `on_response` is dropped uncalled.
pub fn get(
    lp: &mut Loop,
    url: &str,
    on_response: impl FnOnce(&mut Loop, Result<ClientResponse, ClientError>) + 'static,
) -> Result<(), ClientError> {
    request(lp, ClientRequest::new("GET", url)?, on_response)
}

fn connect_error(e: &io::Error) -> ClientError {
    ClientError::Connect {
        kind: e.kind(),
        message: e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BAD: fn(&'static str) -> ClientError = ClientError::BadResponse;

    #[test]
    fn parses_ip_literal_and_localhost_urls() {
        let table: &[(&str, &str, &str, &str)] = &[
            (
                "http://127.0.0.1:3000/json",
                "127.0.0.1:3000",
                "127.0.0.1:3000",
                "/json",
            ),
            ("HTTP://10.0.0.1", "10.0.0.1:80", "10.0.0.1", "/"),
            (
                "http://10.0.0.1:80?x=1#frag",
                "10.0.0.1:80",
                "10.0.0.1",
                "/?x=1",
            ),
            (
                "http://[::1]:8080/a/b?c",
                "[::1]:8080",
                "[::1]:8080",
                "/a/b?c",
            ),
            ("http://[::1]", "[::1]:80", "[::1]", "/"),
            ("http://localhost:9/p#x", "127.0.0.1:9", "localhost:9", "/p"),
            ("http://127.0.0.1:/", "127.0.0.1:80", "127.0.0.1", "/"),
        ];
        for &(url, addr, host, path) in table {
            let t = parse_url(url).unwrap_or_else(|e| panic!("{url}: {e}"));
            assert_eq!(t.addr, addr.parse::<SocketAddr>().unwrap(), "{url}");
            assert_eq!((t.host.as_str(), t.path.as_str()), (host, path), "{url}");
        }
    }

    #[test]
    fn refuses_urls_it_cannot_serve_without_blocking() {
        for url in [
            "https://127.0.0.1/",
            "127.0.0.1:80/",
            "http://example.com/",
            "http://u:p@127.0.0.1/",
            "http://::1/",
            "http://[::1/",
            "http://[::1]x/",
            "http://[zz]/",
            "http://127.0.0.1:0/",
            "http://127.0.0.1:65536/",
            "http://127.0.0.1:8a/",
            "http:///",
            "http://127.0.0.1/a b",
            "http://127.0.0.1/caf\u{e9}",
        ] {
            assert!(
                matches!(parse_url(url), Err(ClientError::InvalidUrl(_))),
                "{url}"
            );
        }
    }

    #[test]
    fn encodes_host_headers_connection_close_and_content_length() {
        let req = ClientRequest::new("POST", "http://127.0.0.1:3000/echo?x")
            .unwrap()
            .header("X-Custom", "a b")
            .body("hello");
        assert_eq!(
            &req.encode()[..],
            b"POST /echo?x HTTP/1.1\r\nHost: 127.0.0.1:3000\r\nX-Custom: a b\r\n\
              Connection: close\r\nContent-Length: 5\r\n\r\nhello"
        );
        let get = ClientRequest::new("GET", "http://[::1]/").unwrap();
        assert_eq!(
            &get.encode()[..],
            b"GET / HTTP/1.1\r\nHost: [::1]\r\nConnection: close\r\n\r\n"
        );
        let put = ClientRequest::new("PUT", "http://127.0.0.1/")
            .unwrap()
            .header("host", "example.com");
        assert_eq!(
            &put.encode()[..],
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

    fn framing_of(head_request: bool, raw: &str) -> Result<Framing, ClientError> {
        let head = parse_head(Bytes::copy_from_slice(raw.as_bytes()))?;
        framing(head_request, head.version, head.status, head.fields())
    }

    #[test]
    fn decides_framing_as_rfc_9112_section_6_3() {
        use Framing::*;
        let h11 = |fields: &str| format!("HTTP/1.1 200 OK\r\n{fields}\r\n");
        let table: Vec<(bool, String, Result<Framing, ClientError>)> = vec![
            (false, h11("Content-Length: 5\r\n"), Ok(Length(5))),
            (false, h11("Content-Length: 0\r\n"), Ok(None)),
            (
                false,
                h11("content-length: 5, 5\r\nContent-Length: 5\r\n"),
                Ok(Length(5)),
            ),
            (false, h11(""), Ok(UntilClose)),
            (false, h11("Transfer-Encoding: chunked\r\n"), Ok(Chunked)),
            (
                false,
                h11("Transfer-Encoding: gzip, CHUNKED\r\n"),
                Ok(Chunked),
            ),
            (
                false,
                h11("Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n"),
                Ok(Chunked),
            ),
            (
                false,
                h11("Transfer-Encoding: chunked, gzip\r\n"),
                Ok(UntilClose),
            ),
            (false, h11("Transfer-Encoding: gzip\r\n"), Ok(UntilClose)),
            // Transfer-Encoding wins over Content-Length.
            (
                false,
                h11("Content-Length: 3\r\nTransfer-Encoding: chunked\r\n"),
                Ok(Chunked),
            ),
            // No body for HEAD, 204 and 304, whatever the fields say.
            (true, h11("Content-Length: 5\r\n"), Ok(None)),
            (true, h11("Transfer-Encoding: chunked\r\n"), Ok(None)),
            (
                false,
                "HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n".into(),
                Ok(None),
            ),
            (
                false,
                "HTTP/1.1 304 Not Modified\r\nContent-Length: x\r\n\r\n".into(),
                Ok(None),
            ),
            (false, "HTTP/1.0 200 OK\r\n\r\n".into(), Ok(UntilClose)),
            (
                false,
                "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\n".into(),
                Ok(Length(2)),
            ),
            (
                false,
                h11("Content-Length: 1\r\nContent-Length: 2\r\n"),
                Err(BAD("differing Content-Length values")),
            ),
            (
                false,
                h11("Content-Length: 1, 2\r\n"),
                Err(BAD("differing Content-Length values")),
            ),
            (
                false,
                h11("Content-Length: +1\r\n"),
                Err(BAD("invalid Content-Length")),
            ),
            (
                false,
                h11("Content-Length: -1\r\n"),
                Err(BAD("invalid Content-Length")),
            ),
            (
                false,
                h11("Content-Length: 1,\r\n"),
                Err(BAD("invalid Content-Length")),
            ),
            (
                false,
                h11("Content-Length:\r\n"),
                Err(BAD("invalid Content-Length")),
            ),
            (
                false,
                h11("Content-Length: 99999999999999999999\r\n"),
                Err(BAD("invalid Content-Length")),
            ),
            (
                false,
                h11("Transfer-Encoding: chunked, chunked\r\n"),
                Err(BAD("chunked applied twice")),
            ),
            (
                false,
                h11("Transfer-Encoding: \r\n"),
                Err(BAD("invalid Transfer-Encoding")),
            ),
            (
                false,
                h11("Transfer-Encoding: a b\r\n"),
                Err(BAD("invalid Transfer-Encoding")),
            ),
            (
                false,
                "HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".into(),
                Err(BAD("Transfer-Encoding on HTTP/1.0")),
            ),
        ];
        for (head_request, raw, expected) in table {
            assert_eq!(framing_of(head_request, &raw), expected, "{raw:?}");
        }
    }

    /// Feeds `input` to a fresh reader in pieces ending at `cuts`, then EOF if it is still
    /// waiting. Returns (status, body, trailers) or the error.
    fn read(
        head_request: bool,
        input: &[u8],
        cuts: &[usize],
    ) -> Result<(u16, Vec<u8>, Trailers), ClientError> {
        let mut reader = ResponseReader::new(head_request, 64, 16);
        let mut from = 0;
        for &cut in cuts.iter().chain(std::iter::once(&input.len())) {
            if let Some(res) = reader.feed(&input[from..cut])? {
                return Ok((res.status(), res.body().to_vec(), res.trailers().to_vec()));
            }
            from = cut;
        }
        let res = reader.eof()?;
        Ok((res.status(), res.body().to_vec(), res.trailers().to_vec()))
    }

    #[test]
    fn reads_responses_and_names_every_failure() {
        type Case = (&'static [u8], Result<(u16, &'static [u8]), ClientError>);
        let table: &[Case] = &[
            (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi", Ok((200, b"hi"))),
            (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhiEXTRA", Ok((200, b"hi"))),
            (b"HTTP/1.1 200 OK\r\n\r\nuntil close", Ok((200, b"until close"))),
            (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n1\r\nc\r\n0\r\n\r\n", Ok((200, b"abc"))),
            (b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early\r\nLink: x\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 1\r\n\r\nx", Ok((201, b"x"))),
            (b"HTTP/1.1 204 No Content\r\nContent-Length: 3\r\n\r\n", Ok((204, b""))),
            (b"HTTP/1.1 404 \r\nContent-Length: 0\r\n\r\n", Ok((404, b""))),
            (b"HTTP/1.1 101 Switching Protocols\r\n\r\n", Err(BAD("101 Switching Protocols: upgrades are not supported"))),
            (b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhi", Err(ClientError::Closed)),
            (b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n", Err(ClientError::Closed)),
            (b"", Err(ClientError::Closed)),
            (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n", Err(ClientError::Closed)),
            (b"HTTP/1.1 200 OK\nContent-Length: 0\n\n", Err(BAD("bare LF line ending"))),
            (b"HTTP/1.1 200 OK\r\nA: b\rC: d\r\n\r\n", Err(BAD("bare CR"))),
            (b"\r\nHTTP/1.1 200 OK\r\n\r\n", Err(BAD("empty line before the status line"))),
            (b"HTTP/1.1 200 OK\r\nA: b\r\n c\r\n\r\n", Err(BAD("invalid header name"))),
            (b"HTTP/1.1 200 OK\r\nA : b\r\n\r\n", Err(BAD("invalid header name"))),
            (b"HTTP/1.1 200 OK\r\nA: b\x7f\r\n\r\n", Err(BAD("invalid header value"))),
            (b"HTTP/2.0 200 OK\r\n\r\n", Err(BAD("invalid HTTP version"))),
            (b"HTTP/1.1 20 OK\r\n\r\n", Err(BAD("invalid status line"))),
            (b"HTTP/1.1 099 Low\r\n\r\n", Err(BAD("invalid status line"))),
            (b"ICY 200 OK\r\n\r\n", Err(BAD("invalid HTTP version"))),
            (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", Err(BAD("invalid chunk size"))),
            // A head of exactly max_head_size (64 here) passes; one byte more fails.
            (b"HTTP/1.1 200 OK\r\nX: 0123456789012345678901234567890123456789\r\n\r\n", Ok((200, b""))),
            (b"HTTP/1.1 200 OK\r\nX: 0123456789012345678901234567890123456789a\r\n\r\n", Err(ClientError::HeadTooLarge)),
            (b"HTTP/1.1 200 OK\r\nX: 01234567890123456789012345678901234567890123456789", Err(ClientError::HeadTooLarge)),
            (b"HTTP/1.1 200 OK\r\nContent-Length: 17\r\n\r\n", Err(ClientError::BodyTooLarge)),
            (b"HTTP/1.1 200 OK\r\n\r\n0123456789abcdefg", Err(ClientError::BodyTooLarge)),
            (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n11\r\n", Err(ClientError::BodyTooLarge)),
        ];
        for &(input, ref expected) in table {
            let whole = read(false, input, &[]);
            let got = whole.clone().map(|(s, b, _)| (s, b));
            assert_eq!(
                got,
                expected.clone().map(|(s, b)| (s, b.to_vec())),
                "{:?}",
                String::from_utf8_lossy(input)
            );
            // The same outcome however the bytes arrive.
            for cut in 0..=input.len() {
                assert_eq!(read(false, input, &[cut]), whole, "{input:?} cut at {cut}");
            }
            let every: Vec<usize> = (1..input.len()).collect();
            assert_eq!(read(false, input, &every), whole, "{input:?} bytewise");
        }
    }

    /// Valid responses to mutate: each framing the reader knows.
    const SEEDS: &[&[u8]] = &[
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2;x=y\r\nab\r\n0\r\nT: 1\r\n\r\n",
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.0 200 OK\r\nA: b\r\n\r\nuntil close",
        b"HTTP/1.1 304 Not Modified\r\nContent-Length: 9\r\n\r\n",
    ];

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig {
            cases: 3000, ..proptest::prelude::ProptestConfig::default()
        })]

        /// No input panics the reader, and the outcome does not depend on how it is split.
        #[test]
        fn any_bytes_read_the_same_whole_or_split_and_never_panic(
            input in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300),
            cuts in proptest::collection::vec(proptest::prelude::any::<usize>(), 0..4),
            head_request in proptest::prelude::any::<bool>(),
        ) {
            let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (input.len() + 1)).collect();
            cuts.sort_unstable();
            proptest::prop_assert_eq!(
                read(head_request, &input, &cuts),
                read(head_request, &input, &[])
            );
        }

        /// Near-valid responses (a seed with bytes replaced, inserted or removed): the same.
        #[test]
        fn mutated_responses_read_the_same_whole_or_split_and_never_panic(
            seed in 0..SEEDS.len(),
            edits in proptest::collection::vec(
                (proptest::prelude::any::<usize>(), proptest::prelude::any::<u8>(), 0..3u8),
                1..4,
            ),
            cut in proptest::prelude::any::<usize>(),
        ) {
            let mut input = SEEDS[seed].to_vec();
            for &(at, byte, op) in &edits {
                let at = at % (input.len() + 1);
                match op {
                    0 if at < input.len() => input[at] = byte,
                    1 => input.insert(at, byte),
                    _ if at < input.len() => {
                        input.remove(at);
                    }
                    _ => {}
                }
            }
            let cut = cut % (input.len() + 1);
            let every: Vec<usize> = (1..input.len()).collect();
            let whole = read(false, &input, &[]);
            proptest::prop_assert_eq!(read(false, &input, &[cut]), whole.clone());
            proptest::prop_assert_eq!(read(false, &input, &every), whole);
        }
    }

    #[test]
    fn reads_no_body_after_a_head_request_and_keeps_trailers() {
        let head = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n";
        assert_eq!(read(true, head, &[]), Ok((200, vec![], vec![])));
        let chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\n0\r\nX-T: 1\r\nY: 2\r\n\r\n";
        let trailers = vec![("X-T".into(), b"1".to_vec()), ("Y".into(), b"2".to_vec())];
        assert_eq!(
            read(false, chunked, &[]),
            Ok((200, b"a".to_vec(), trailers))
        );
        let big_trailer = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX: 0123456789012345678901234567890123456789012345678901234567890123456789\r\n\r\n";
        assert_eq!(
            read(false, big_trailer, &[]),
            Err(ClientError::HeadTooLarge)
        );
    }

    #[test]
    fn exposes_the_head_in_order_with_original_case() {
        let mut reader = ResponseReader::new(false, 1024, 1024);
        let res = reader
            .feed(b"HTTP/1.0 418 I'm a teapot\r\nX-B: 2\r\nx-a: 1\r\nX-A: 3\r\nContent-Length: 0\r\n\r\n")
            .unwrap()
            .expect("complete");
        assert_eq!(
            (res.status(), res.reason(), res.version()),
            (418, "I'm a teapot", Version::Http10)
        );
        let names: Vec<&str> = res.headers().map(|(n, _)| n).collect();
        assert_eq!(names, ["X-B", "x-a", "X-A", "Content-Length"]);
        assert_eq!(res.header("X-a"), Some("1"));
        assert_eq!(res.header_bytes("missing"), None);
        // After a response the reader ignores input and EOF.
        assert_eq!(reader.feed(b"junk").map(|r| r.is_some()), Ok(false));
        assert!(reader.eof().is_err());
    }

    #[test]
    fn displays_every_error() {
        let e = ClientError::Connect {
            kind: io::ErrorKind::ConnectionRefused,
            message: "refused".into(),
        };
        assert_eq!(e.to_string(), "connect failed: refused");
        assert_eq!(BAD("bare CR").to_string(), "bad response: bare CR");
        let _: &dyn std::error::Error = &ClientError::Timeout;
    }
}

//! Request-head parsing with llhttp's strictness on top of httparse.
//!
//! A head is parsed in two steps:
//!
//! 1. **Scan.** [`HeadParser`] walks the new bytes once with `memchr2` for CR
//!    and LF. This finds the end of the head (`CRLF CRLF`) without running
//!    httparse on every partial read (httparse's docs warn about that cost),
//!    and it rejects the line endings httparse accepts: a bare LF
//!    (httparse's `test_request_newlines`) or a bare CR. The request line is
//!    checked as soon as its CRLF arrives, so garbage is refused early.
//! 2. **Parse.** Once the head is complete, the request line is parsed here
//!    and the field lines by `httparse::parse_headers` into a stack array of
//!    [`STACK_HEADERS`] entries. Then the framing rules of RFC 9112 §6 are
//!    applied in order (Transfer-Encoding, Content-Length, Host), which
//!    httparse does not do at all.
//!
//! Errors are reported in byte order, so feeding a request in any number of
//! pieces gives the same result as feeding it whole.
//!
//! **Fast path.** When a head starts at the front of the buffer and is
//! already complete there (the usual case, and every pipelined request after
//! the first), [`parse_complete_simple`] does both steps in one pass over its
//! bytes: request line, then field lines checked byte by byte (name `tchar`,
//! value HTAB or visible ASCII, CRLF), recording the spans directly. It
//! accepts only heads that the two steps would accept with the same fields,
//! and gives up (no error, nothing consumed) on anything else: a partial head,
//! any byte it does not know to be valid (obs-text, a bare CR or LF, a space
//! before a colon, an unknown method, ...), or a limit. The two steps then run
//! as before, so every error and every edge case keeps its one definition
//! there. The framing rules ([`apply_framing_rules`]) are shared.

use bytes::{Buf, Bytes, BytesMut};

use super::error::ParseError;

/// Field lines parsed without a heap allocation; more fall back to a `Vec`.
pub const STACK_HEADERS: usize = 32;

/// Size limits for one request head, fixed when the server is created.
///
/// Defaults follow Node: 16 KiB head, 2000 fields, an 8 KiB request line and
/// a required `Host` on HTTP/1.1.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Most bytes in a head, request line and final CRLF CRLF included;
    /// more is [`ParseError::HeadTooLarge`] (431).
    pub max_head_size: usize,
    /// Most field lines; more is [`ParseError::TooManyHeaders`] (431).
    pub max_headers: usize,
    /// Most bytes in the request line before its CRLF; more is
    /// [`ParseError::UriTooLong`] (414).
    pub max_request_line: usize,
    /// Whether an HTTP/1.1 request without `Host` is
    /// [`ParseError::MissingHost`] (Node's `requireHostHeader`).
    pub require_host: bool,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_head_size: 16 * 1024,
            max_headers: 2000,
            max_request_line: 8 * 1024,
            require_host: true,
        }
    }
}

macro_rules! methods {
    ($($variant:ident => $text:literal,)*) => {
        /// A request method known to llhttp (the list of Node's
        /// `http.METHODS`). Methods are case-sensitive: `get` is not `GET`.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum Method {
            $(
                #[doc = concat!("`", $text, "`")]
                $variant,
            )*
        }

        impl Method {
            /// Every method, in the order of Node's `http.METHODS`.
            pub const ALL: &'static [Method] = &[$(Method::$variant,)*];

            /// The method as it appears on the wire, e.g. `"M-SEARCH"`.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Method::$variant => $text,)*
                }
            }

            /// The method spelled exactly `bytes`, or `None`.
            pub fn from_bytes(bytes: &[u8]) -> Option<Method> {
                match bytes {
                    $(b if b == $text.as_bytes() => Some(Method::$variant),)*
                    _ => None,
                }
            }
        }
    };
}

methods! {
    Acl => "ACL",
    Bind => "BIND",
    Checkout => "CHECKOUT",
    Connect => "CONNECT",
    Copy => "COPY",
    Delete => "DELETE",
    Get => "GET",
    Head => "HEAD",
    Link => "LINK",
    Lock => "LOCK",
    MSearch => "M-SEARCH",
    Merge => "MERGE",
    Mkactivity => "MKACTIVITY",
    Mkcalendar => "MKCALENDAR",
    Mkcol => "MKCOL",
    Move => "MOVE",
    Notify => "NOTIFY",
    Options => "OPTIONS",
    Patch => "PATCH",
    Post => "POST",
    Propfind => "PROPFIND",
    Proppatch => "PROPPATCH",
    Purge => "PURGE",
    Put => "PUT",
    Query => "QUERY",
    Rebind => "REBIND",
    Report => "REPORT",
    Search => "SEARCH",
    Source => "SOURCE",
    Subscribe => "SUBSCRIBE",
    Trace => "TRACE",
    Unbind => "UNBIND",
    Unlink => "UNLINK",
    Unlock => "UNLOCK",
    Unsubscribe => "UNSUBSCRIBE",
}

/// The HTTP version of a request; only 1.0 and 1.1 are accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Version {
    /// `HTTP/1.0`
    Http10,
    /// `HTTP/1.1`
    Http11,
}

/// How the request body is framed (RFC 9112 §6.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyKind {
    /// No body: no `Transfer-Encoding` and no `Content-Length`, or
    /// `Content-Length: 0`.
    Empty,
    /// Exactly this many bytes (never 0).
    Length(u64),
    /// `Transfer-Encoding` ending in `chunked`.
    Chunked,
}

/// `tchar` from RFC 9110 §5.6.2:
/// `"!" / "#" / "$" / "%" / "&" / "'" / "*" / "+" / "-" / "." / "^" / "_" /
/// "`" / "|" / "~" / DIGIT / ALPHA`.
#[inline]
pub fn is_tchar(b: u8) -> bool {
    TCHAR[usize::from(b)]
}

/// [`is_tchar`] for every byte, so the check is one load (it runs on every
/// method, field name and response header name).
static TCHAR: [bool; 256] = {
    let mut table = [false; 256];
    let mut i = 0;
    while i < 256 {
        #[rustfmt::skip]
        let tchar = matches!(i as u8,
            b'!' | b'#' | b'$' | b'%' | b'&' | b'\'' | b'*' | b'+' | b'-' | b'.' |
            b'^' | b'_' | b'`' | b'|' | b'~' | b'0'..=b'9' | b'a'..=b'z' | b'A'..=b'Z');
        table[i] = tchar;
        i += 1;
    }
    table
};

/// The largest head a [`Span`] can address: 4 GiB - 1 (a larger one is 431, whatever
/// `max_head_size` says).
const MAX_SPAN_HEAD: usize = u32::MAX as usize;

/// A byte range into the head. `u32` offsets keep a [`RequestHead`] (and the `Request` that
/// holds it) small enough to move without a `memcpy` call; heads are at most
/// [`MAX_SPAN_HEAD`] bytes (`parse_reusing` refuses longer ones).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Span {
    start: u32,
    end: u32,
}

impl Span {
    fn new(start: usize, end: usize) -> Span {
        // Lossless: offsets are within a head, and no head is longer than MAX_SPAN_HEAD
        // (u32::MAX) bytes.
        debug_assert!(start <= end && end <= MAX_SPAN_HEAD);
        Span {
            start: start as u32,
            end: end as u32,
        }
    }

    fn start(self) -> usize {
        self.start as usize
    }

    fn end(self) -> usize {
        self.end as usize
    }

    #[inline]
    fn of(self, bytes: &[u8]) -> &[u8] {
        bytes.get(self.start()..self.end()).unwrap_or(&[])
    }

    #[inline]
    fn str_of(self, bytes: &[u8]) -> &str {
        // Spans given to `str_of` cover ASCII only (validated when parsed).
        std::str::from_utf8(self.of(bytes)).unwrap_or("")
    }
}

/// One field line of a head, as ranges into its bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct HeaderSpan {
    name: Span,
    value: Span,
}

/// A parsed request head. Owns the head bytes (shared with the read buffer,
/// not copied) and keeps the request line and fields as ranges into them.
///
/// Invariants, checked by the parser: the method is known; the target is
/// 1+ visible ASCII bytes in the form the method allows; every field name is
/// a token and every value has no CTL but HTAB; line endings are CRLF; the
/// framing is unambiguous (see [`BodyKind`]); HTTP/1.1 has exactly one valid
/// `Host` when `Limits::require_host`, and no request has two.
#[derive(Clone, Debug)]
pub struct RequestHead {
    bytes: Bytes,
    method: Method,
    version: Version,
    target: Span,
    /// `None` means the path is `/` (absolute-form with an empty path).
    path: Option<Span>,
    query: Option<Span>,
    headers: Vec<HeaderSpan>,
    body_kind: BodyKind,
    keep_alive: bool,
    expect_continue: bool,
    unsupported_expectation: bool,
    upgrade: bool,
}

impl RequestHead {
    /// Takes the field list out (for reuse by the next head); the head has no fields after.
    pub(crate) fn take_fields(&mut self) -> Vec<HeaderSpan> {
        std::mem::take(&mut self.headers)
    }

    /// The request method.
    #[inline]
    pub fn method(&self) -> Method {
        self.method
    }

    /// The request-target exactly as sent (Node's `req.url`).
    #[inline]
    pub fn target(&self) -> &str {
        self.target.str_of(&self.bytes)
    }

    /// [`RequestHead::target`] as bytes, without the UTF-8 check.
    #[inline]
    pub(crate) fn target_bytes(&self) -> &[u8] {
        self.target.of(&self.bytes)
    }

    /// The path: the target up to `?` or `#`. For absolute-form
    /// (`http://h/p?q`) it is the path part (`/p`, or `/` when empty); for
    /// asterisk-form it is `*`; for authority-form (CONNECT) the whole
    /// `host:port`.
    #[inline]
    pub fn path(&self) -> &str {
        match self.path {
            Some(span) => span.str_of(&self.bytes),
            None => "/",
        }
    }

    /// The query after `?` (without it, and without any `#fragment`), or
    /// `None` when the target has no `?`.
    pub fn query(&self) -> Option<&str> {
        self.query.map(|span| span.str_of(&self.bytes))
    }

    /// The HTTP version.
    pub fn version(&self) -> Version {
        self.version
    }

    /// How the body that follows the head is framed.
    pub fn body_kind(&self) -> BodyKind {
        self.body_kind
    }

    /// Whether the connection may stay open after this request: on 1.1
    /// unless `Connection` has a `close` token; on 1.0 only when it has
    /// `keep-alive` and no `close`.
    pub fn keep_alive(&self) -> bool {
        self.keep_alive
    }

    /// Whether an HTTP/1.1 request sent `Expect: 100-continue` (Node ignores
    /// `Expect` on 1.0).
    pub fn expect_continue(&self) -> bool {
        self.expect_continue
    }

    /// Whether an HTTP/1.1 request sent an `Expect` other than
    /// `100-continue`; with no handler the server answers
    /// [`ParseError::ExpectationFailed`] (417), as Node does.
    pub fn has_unsupported_expectation(&self) -> bool {
        self.unsupported_expectation
    }

    /// Whether the request asks to leave HTTP: `Connection` has an `upgrade`
    /// token and an `Upgrade` field is present, or the method is CONNECT.
    pub fn is_upgrade(&self) -> bool {
        self.upgrade
    }

    /// The value of the first field named `name` (ASCII case-insensitive),
    /// with surrounding whitespace removed.
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|h| h.name.of(&self.bytes).eq_ignore_ascii_case(name.as_bytes()))
            .map(|h| h.value.of(&self.bytes))
    }

    /// All fields as `(name, value)` in the order they were sent, names with
    /// their original case.
    pub fn headers(&self) -> impl Iterator<Item = (&str, &[u8])> + '_ {
        self.headers
            .iter()
            .map(|h| (h.name.str_of(&self.bytes), h.value.of(&self.bytes)))
    }

    /// The number of field lines.
    pub fn header_count(&self) -> usize {
        self.headers.len()
    }

    /// The raw head bytes, request line through the final CRLF CRLF.
    pub fn as_bytes(&self) -> &Bytes {
        &self.bytes
    }
}

/// Incremental head scanner: remembers how far the buffer was searched so
/// each byte is looked at once across partial reads.
///
/// Invariant: between calls the caller only appends to the buffer (or
/// calls [`reset`](Self::reset)); a buffer that shrank resets the scanner.
/// After `Ok(Some(_))` the scanner is reset, ready for the next request.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HeadParser {
    /// Bytes of the buffer already scanned without finding the head's end.
    scanned: usize,
    /// Offset of the CR ending the request line, and the line parsed, once seen and valid
    /// (parsed once: the complete head reuses it).
    line: Option<(usize, RequestLine)>,
    /// The last `Host` value this connection sent that passed the check (kept across heads).
    host: HostMemo,
}

/// Outcome of one scan over the buffer.
enum Scan {
    /// The head ends (after CRLF CRLF) at this offset.
    Complete(usize),
    /// Not yet; the byte at `scanned - 1` may be a CR awaiting its LF when
    /// `pending_cr` is true.
    Partial { pending_cr: bool },
}

impl HeadParser {
    /// A scanner at the start of a request.
    pub fn new() -> Self {
        HeadParser::default()
    }

    /// Forgets the scan position (call when the buffer is replaced).
    pub fn reset(&mut self) {
        *self = HeadParser {
            host: self.host,
            ..HeadParser::default()
        };
    }

    /// Tries to parse one request head from the front of `buf`.
    ///
    /// On success the head's bytes are split off the front of `buf`
    /// (`split_to(n).freeze()`, no copy) and returned; body bytes and any
    /// pipelined requests stay in `buf`. Empty lines (CRLF) before a request
    /// line are discarded, as RFC 9112 §2.2 allows.
    ///
    /// `Ok(None)` means more bytes are needed, except that a request line
    /// with no CRLF within `max_request_line` bytes is
    /// [`ParseError::UriTooLong`] and a head with no end within
    /// `max_head_size` bytes is [`ParseError::HeadTooLarge`].
    ///
    /// On `Err` nothing is consumed (beyond discarded empty lines) and the
    /// same call returns the same error again; the connection should answer
    /// [`ParseError::status`] and close.
    pub fn parse(
        &mut self,
        buf: &mut BytesMut,
        limits: &Limits,
    ) -> Result<Option<RequestHead>, ParseError> {
        self.parse_reusing(buf, limits, &mut Vec::new())
    }

    /// [`parse`](Self::parse), building the head's field list in `spare` (taken on success,
    /// its allocation reused): a connection hands back each finished request's list, so a
    /// keep-alive request allocates nothing.
    pub(crate) fn parse_reusing(
        &mut self,
        buf: &mut BytesMut,
        limits: &Limits,
        spare: &mut Vec<HeaderSpan>,
    ) -> Result<Option<RequestHead>, ParseError> {
        if self.scanned > buf.len() || self.line.is_some_and(|(e, _)| e + 2 > buf.len()) {
            self.reset();
        }
        if self.scanned == 0 {
            while buf.starts_with(b"\r\n") {
                buf.advance(2);
            }
            // `scanned == 0` means no earlier call saw part of this head (and `line` is
            // unset): try the one-pass parse of a complete, plain head.
            if let Some((end, parts)) = parse_complete_simple(buf, limits, spare, &mut self.host) {
                let parts = parts?;
                let bytes = buf.split_to(end).freeze();
                return Ok(Some(parts.into_head(bytes)));
            }
        }
        match self.scan(buf, limits)? {
            Scan::Partial { pending_cr } => {
                if self.line.is_none() {
                    check_method_prefix(buf.get(..self.scanned).unwrap_or(&[]))?;
                    if !pending_cr && buf.len() > limits.max_request_line {
                        return Err(ParseError::UriTooLong);
                    }
                }
                if buf.len() > limits.max_head_size {
                    return Err(ParseError::HeadTooLarge);
                }
                Ok(None)
            }
            Scan::Complete(end) => {
                if end > limits.max_head_size || end > MAX_SPAN_HEAD {
                    return Err(ParseError::HeadTooLarge);
                }
                // `scan` completes a head only after it parsed the request line.
                let (line_end, line) = self.line.ok_or(ParseError::BadRequestLine)?;
                let head = build_head(
                    buf.get(..end).unwrap_or(&[]),
                    line_end,
                    line,
                    limits,
                    std::mem::take(spare),
                    &mut self.host,
                )?;
                self.reset();
                let bytes = buf.split_to(end).freeze();
                Ok(Some(head.into_head(bytes)))
            }
        }
    }

    /// Scans new bytes for CR and LF. Updates `scanned`/`line` only
    /// when it returns `Ok`, so an error repeats on the next call.
    fn scan(&mut self, buf: &[u8], limits: &Limits) -> Result<Scan, ParseError> {
        let mut scanned = self.scanned;
        let mut line = self.line;
        let result = loop {
            // While the request line is open only `max_request_line + 1`
            // bytes are searched, so an over-long line is reported the same
            // however the bytes arrive.
            let limit = match line {
                None => limits.max_request_line.saturating_add(1),
                Some(_) => usize::MAX,
            };
            let limit = buf.len().min(limits.max_head_size).min(limit);
            let hay = buf.get(scanned..limit).unwrap_or(&[]);
            let Some(off) = memchr::memchr2(b'\r', b'\n', hay) else {
                scanned = scanned.max(limit);
                break Scan::Partial { pending_cr: false };
            };
            let p = scanned + off;
            let bad_ending = match (buf.get(p), buf.get(p + 1)) {
                (Some(b'\n'), _) => Some(ParseError::BareLf),
                (_, None) => {
                    scanned = p;
                    break Scan::Partial { pending_cr: true };
                }
                (_, Some(b'\n')) => None,
                (_, Some(_)) => Some(ParseError::BareCr),
            };
            if line.is_none() {
                // A bad method byte comes before the line ending.
                check_method_prefix(buf.get(..p).unwrap_or(&[]))?;
            }
            if let Some(err) = bad_ending {
                return Err(err);
            }
            match line {
                None => {
                    if p > limits.max_request_line {
                        return Err(ParseError::UriTooLong);
                    }
                    line = Some((p, parse_request_line(buf.get(..p).unwrap_or(&[]))?));
                }
                Some(_) if buf.get(p.wrapping_sub(2)..p) == Some(b"\r\n") => {
                    break Scan::Complete(p + 2);
                }
                Some(_) => {}
            }
            scanned = p + 2;
        };
        self.scanned = scanned;
        self.line = line;
        Ok(result)
    }
}

/// ` HTTP/1.`, the first 8 bytes of the version part of a request line (with its SP).
const V_HEAD: u64 = u64::from_le_bytes(*b" HTTP/1.");
/// `TP/1.1\r\n`: the last 8 bytes of ` HTTP/1.1\r\n`.
const V11_TAIL: u64 = u64::from_le_bytes(*b"TP/1.1\r\n");
/// `TP/1.0\r\n`: the last 8 bytes of ` HTTP/1.0\r\n`.
const V10_TAIL: u64 = u64::from_le_bytes(*b"TP/1.0\r\n");

/// Tries to parse one request head from the front of `buf`, scanning from
/// the start. Same contract as [`HeadParser::parse`]; keep a `HeadParser`
/// per connection instead to avoid re-scanning partial heads.
pub fn parse_request(
    buf: &mut BytesMut,
    limits: &Limits,
) -> Result<Option<RequestHead>, ParseError> {
    HeadParser::new().parse(buf, limits)
}

/// Checks the method of a request line that may still be incomplete:
/// everything before the first SP must be `tchar`, and the method must not
/// be empty. Gives the same answer as the first step of
/// [`parse_request_line`], so errors do not depend on how input is split.
fn check_method_prefix(prefix: &[u8]) -> Result<(), ParseError> {
    let (method, has_sp) = match memchr::memchr(b' ', prefix) {
        Some(i) => (&prefix[..i], true),
        None => (prefix, false),
    };
    if (has_sp && method.is_empty()) || !method.iter().all(|&b| is_tchar(b)) {
        return Err(ParseError::BadRequestLine);
    }
    Ok(())
}

/// The request line, parsed: ranges are relative to the line start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct RequestLine {
    method: Method,
    version: Version,
    target: Span,
    path: Option<Span>,
    query: Option<Span>,
}

/// Parses `method SP request-target SP HTTP-version` (RFC 9112 §3), with no
/// CRLF. Checks syntax first (400), then the version (505), then whether the
/// method is known (501), then the target form for the method (400).
fn parse_request_line(line: &[u8]) -> Result<RequestLine, ParseError> {
    let bad = ParseError::BadRequestLine;
    let sp1 = memchr::memchr(b' ', line).ok_or(bad)?;
    let method = &line[..sp1];
    if method.is_empty() || !method.iter().all(|&b| is_tchar(b)) {
        return Err(bad);
    }
    let t_start = sp1 + 1;
    let rest = &line[t_start..];
    let sp2 = memchr::memchr(b' ', rest).ok_or(bad)?;
    let target = &rest[..sp2];
    if target.is_empty() || !target.iter().all(|&b| (0x21..=0x7e).contains(&b)) {
        return Err(bad);
    }
    let version = &rest[sp2 + 1..];
    if version.contains(&b' ') {
        return Err(bad);
    }
    let version = match version {
        b"HTTP/1.1" => Version::Http11,
        b"HTTP/1.0" => Version::Http10,
        [b'H', b'T', b'T', b'P', b'/', major, b'.', minor]
            if major.is_ascii_digit() && minor.is_ascii_digit() =>
        {
            if *major == b'1' {
                return Err(ParseError::BadVersion);
            }
            return Err(ParseError::UnsupportedVersion);
        }
        _ => return Err(ParseError::BadVersion),
    };
    let method = Method::from_bytes(method).ok_or(ParseError::UnknownMethod)?;
    let t_end = t_start + sp2;
    let (path, query) = split_target(method, target).ok_or(bad)?;
    let shift = |s: Span| Span::new(s.start() + t_start, s.end() + t_start);
    Ok(RequestLine {
        method,
        version,
        target: Span::new(t_start, t_end),
        path: path.map(shift),
        query: query.map(shift),
    })
}

/// Checks the target form for `method` (RFC 9112 §3.2) and splits off the
/// path and query, as spans relative to the target. A path of `None` means
/// `/`. Returns `None` when the form is not allowed.
fn split_target(method: Method, target: &[u8]) -> Option<(Option<Span>, Option<Span>)> {
    let whole = Span::new(0, target.len());
    if method == Method::Connect {
        // authority-form only: uri-host ":" port.
        return is_authority_form(target).then_some((Some(whole), None));
    }
    if target == b"*" {
        return (method == Method::Options).then_some((Some(whole), None));
    }
    let path_start = if target.first() == Some(&b'/') {
        0
    } else {
        // absolute-form: scheme "://" authority path-abempty [ "?" query ]
        let colon = memchr::memchr(b':', target)?;
        let scheme = &target[..colon];
        let scheme_ok = scheme.first().is_some_and(u8::is_ascii_alphabetic)
            && scheme
                .iter()
                .all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'));
        if !scheme_ok || !target[colon..].starts_with(b"://") {
            return None;
        }
        let auth_start = colon + 3;
        auth_start
            + target[auth_start..]
                .iter()
                .position(|&b| matches!(b, b'/' | b'?' | b'#'))
                .unwrap_or(target.len() - auth_start)
    };
    let path_end = path_start
        + target[path_start..]
            .iter()
            .position(|&b| b == b'?' || b == b'#')
            .unwrap_or(target.len() - path_start);
    let path = (path_end > path_start).then(|| Span::new(path_start, path_end));
    let query = (target.get(path_end) == Some(&b'?')).then(|| {
        let q_end =
            memchr::memchr(b'#', &target[path_end..]).map_or(target.len(), |i| path_end + i);
        Span::new(path_end + 1, q_end)
    });
    Some((path, query))
}

/// `uri-host ":" port` with a non-empty host and port.
fn is_authority_form(target: &[u8]) -> bool {
    match memchr::memrchr(b':', target) {
        Some(i) => {
            let (host, port) = (&target[..i], &target[i + 1..]);
            !host.is_empty()
                && !port.is_empty()
                && port.iter().all(u8::is_ascii_digit)
                && is_valid_host(target)
        }
        None => false,
    }
}

/// `0x01` in every byte of a word.
const ONES: u64 = u64::from_ne_bytes([1; 8]);

/// The high bit of each byte of `x` (little-endian) below `n` (`n <= 0x80`; bytes of 0x80
/// and up are not marked). The classic word-at-a-time test: a borrow can only mark bytes
/// above a truly marked one, so the LOWEST mark is exact (and "any mark" is exact).
fn word_less(x: u64, n: u8) -> u64 {
    x.wrapping_sub(ONES * u64::from(n)) & !x & (ONES << 7)
}

/// The high bit of each byte of `x` equal to `b` (lowest mark exact, as [`word_less`]).
fn word_eq(x: u64, b: u8) -> u64 {
    word_less(x ^ (ONES * u64::from(b)), 1)
}

/// Marks the bytes of `x` not in [`TARGET_PATH`]: below 0x21, DEL, non-ASCII, `?` and `#`
/// (lowest mark exact: each term's lowest mark is a true one).
fn target_path_flags(x: u64) -> u64 {
    (x & (ONES << 7)) | word_less(x, 0x21) | word_eq(x, 0x7f) | word_eq(x, b'?') | word_eq(x, b'#')
}

/// Marks the bytes of `x` not in [`FIELD_VALUE`], and HTAB (which it takes: the byte-by-byte
/// tail of [`scan_words`] decides it): CTLs, DEL and non-ASCII (lowest mark exact).
fn field_value_flags(x: u64) -> u64 {
    (x & (ONES << 7)) | word_less(x, 0x20) | word_eq(x, 0x7f)
}

/// The index of the first byte `table` rejects (`bytes.iter().position(|&c| !table[c])`),
/// eight bytes per step until `flags` marks a byte, then one at a time from the first marked
/// byte (usually the one rejected: one step). `flags(x)` must mark (high bit of the byte) a
/// superset of the bytes `table` rejects, its lowest mark exact.
#[inline(always)]
fn scan_words(bytes: &[u8], table: &[bool; 256], flags: fn(u64) -> u64) -> Option<usize> {
    let mut i = 0;
    while let Some(Ok(chunk)) = bytes.get(i..i + 8).map(<[u8; 8]>::try_from) {
        let marks = flags(u64::from_le_bytes(chunk));
        if marks != 0 {
            // Lossless: a bit index below 64, divided by 8.
            i += (marks.trailing_zeros() / 8) as usize;
            break;
        }
        i += 8;
    }
    let rest = bytes.get(i..)?;
    rest.iter()
        .position(|&c| !table[usize::from(c)])
        .map(|j| i + j)
}

/// Target bytes that cannot end an origin-form path: visible ASCII but `?` and `#`.
static TARGET_PATH: [bool; 256] = {
    let mut table = [false; 256];
    let mut i = 0x21;
    while i <= 0x7e {
        table[i] = i != b'?' as usize && i != b'#' as usize;
        i += 1;
    }
    table
};

/// Field value bytes the fast path takes: HTAB, SP and visible ASCII.
static FIELD_VALUE: [bool; 256] = {
    let mut table = [false; 256];
    let mut i = 0x20;
    while i <= 0x7e {
        table[i] = true;
        i += 1;
    }
    table[b'\t' as usize] = true;
    table
};

/// `Host = uri-host [ ":" port ]` (RFC 9110 §7.2), empty allowed (as Node
/// does). `uri-host` is an IP-literal in brackets or a reg-name of
/// unreserved, pct-encoded and sub-delims bytes; `port = *DIGIT`.
fn is_valid_host(value: &[u8]) -> bool {
    if value.first() == Some(&b'[') {
        let Some(close) = memchr::memchr(b']', value) else {
            return false;
        };
        let literal = &value[1..close];
        if literal.is_empty()
            || !literal
                .iter()
                .all(|&b| b.is_ascii_alphanumeric() || matches!(b, b':' | b'.'))
        {
            return false;
        }
        return match &value[close + 1..] {
            [] => true,
            [b':', port @ ..] => port.iter().all(u8::is_ascii_digit),
            _ => false,
        };
    }
    // reg-name up to the first ':', then the port: one pass, one table load per byte.
    match value.iter().position(|&b| !REG_NAME[usize::from(b)]) {
        None => true,
        Some(i) => value[i] == b':' && value[i + 1..].iter().all(u8::is_ascii_digit),
    }
}

/// The longest `Host` value a [`HostMemo`] remembers.
const HOST_MEMO_LEN: usize = 32;

/// The last `Host` value that passed [`is_valid_host`] on a connection (its parser's): a
/// client sends the same `Host` request after request, and byte-equal input has the same
/// verdict, so a repeated value costs one compare (a few words, no `memcmp` call) instead of
/// a check per byte. Inline, no allocation: 33 bytes per connection. The default is the
/// empty value, which is valid.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct HostMemo {
    len: u8,
    bytes: [u8; HOST_MEMO_LEN],
}

impl HostMemo {
    /// [`is_valid_host`]`(value)`, remembering the value when it passes.
    #[inline(always)]
    fn valid(&mut self, value: &[u8]) -> bool {
        if usize::from(self.len) == value.len()
            && self
                .bytes
                .get(..value.len())
                .is_some_and(|m| bytes_eq(m, value))
        {
            return true;
        }
        if !is_valid_host(value) {
            return false;
        }
        if let Some(slot) = self.bytes.get_mut(..value.len()) {
            slot.copy_from_slice(value);
            // Lossless: at most HOST_MEMO_LEN (32).
            self.len = value.len() as u8;
        }
        true
    }
}

/// `a == b` for two slices of the same length, eight bytes per compare (the last word
/// overlaps the one before it), without a call: the `Host` memo compares a dozen or two
/// bytes per request.
#[inline]
fn bytes_eq(a: &[u8], b: &[u8]) -> bool {
    let n = a.len();
    if n != b.len() {
        return false;
    }
    if n < 8 {
        return a.iter().zip(b).all(|(x, y)| x == y);
    }
    let word = |s: &[u8], i: usize| {
        s.get(i..i + 8)
            .and_then(|w| <[u8; 8]>::try_from(w).ok())
            .map(u64::from_le_bytes)
    };
    let mut i = 0;
    while i + 8 < n {
        if word(a, i) != word(b, i) {
            return false;
        }
        i += 8;
    }
    word(a, n - 8) == word(b, n - 8)
}

/// The bytes of a `reg-name` (RFC 3986 §3.2.2): unreserved, `%` (of pct-encoded) and
/// sub-delims.
static REG_NAME: [bool; 256] = {
    let mut table = [false; 256];
    let mut i = 0;
    while i < 256 {
        #[rustfmt::skip]
        let ok = matches!(i as u8,
            b'0'..=b'9' | b'a'..=b'z' | b'A'..=b'Z' | b'-' | b'.' | b'_' | b'~' | b'%' |
            b'!' | b'$' | b'&' | b'\'' | b'(' | b')' | b'*' | b'+' | b',' | b';' | b'=');
        table[i] = ok;
        i += 1;
    }
    table
};

/// Splits a field line (without CRLF) into name and value ranges, with
/// llhttp's strictness: no leading whitespace (obs-fold), no whitespace
/// before the colon, a non-empty `tchar` name, and a value (OWS trimmed)
/// without CTLs other than HTAB, or DEL. Used for trailers, and to name the
/// precise error when httparse rejects a head.
pub(super) fn parse_field_line(
    line: &[u8],
) -> Result<(std::ops::Range<usize>, std::ops::Range<usize>), ParseError> {
    if matches!(line.first(), Some(b' ' | b'\t')) {
        return Err(ParseError::ObsFold);
    }
    let colon = memchr::memchr(b':', line).ok_or(ParseError::BadHeaderName)?;
    let name = &line[..colon];
    if matches!(name.last(), Some(b' ' | b'\t')) {
        return Err(ParseError::SpaceBeforeColon);
    }
    if name.is_empty() || !name.iter().all(|&b| is_tchar(b)) {
        return Err(ParseError::BadHeaderName);
    }
    let is_ows = |b: &u8| *b == b' ' || *b == b'\t';
    let start = colon + 1 + line[colon + 1..].iter().take_while(|b| is_ows(b)).count();
    let end = line.len() - line[start..].iter().rev().take_while(|b| is_ows(b)).count();
    let value = &line[start..end];
    if value.iter().any(|&b| (b < 0x20 && b != b'\t') || b == 0x7f) {
        return Err(ParseError::BadHeaderValue);
    }
    Ok((0..colon, start..end))
}

/// Finds the first field line of `fields` (CRLF-terminated lines) that
/// [`parse_field_line`] rejects.
fn diagnose_fields(fields: &[u8], fallback: ParseError) -> ParseError {
    fields
        .split(|&b| b == b'\n')
        .map(|line| line.strip_suffix(b"\r").unwrap_or(line))
        .take_while(|line| !line.is_empty())
        .find_map(|line| parse_field_line(line).err())
        .unwrap_or(fallback)
}

/// Everything of a [`RequestHead`] but its bytes.
struct HeadParts {
    line: RequestLine,
    headers: Vec<HeaderSpan>,
    body_kind: BodyKind,
    keep_alive: bool,
    expect_continue: bool,
    unsupported_expectation: bool,
    upgrade: bool,
}

impl HeadParts {
    fn into_head(self, bytes: Bytes) -> RequestHead {
        RequestHead {
            bytes,
            method: self.line.method,
            version: self.line.version,
            target: self.line.target,
            path: self.line.path,
            query: self.line.query,
            headers: self.headers,
            body_kind: self.body_kind,
            keep_alive: self.keep_alive,
            expect_continue: self.expect_continue,
            unsupported_expectation: self.unsupported_expectation,
            upgrade: self.upgrade,
        }
    }
}

/// Calls `f` with each non-empty element of a comma-separated list, OWS
/// trimmed (RFC 9110 §5.6.1: empty elements are ignored).
fn for_each_element(
    value: &[u8],
    mut f: impl FnMut(&[u8]) -> Result<(), ParseError>,
) -> Result<(), ParseError> {
    for element in value.split(|&b| b == b',') {
        let element = element.trim_ascii();
        if !element.is_empty() {
            f(element)?;
        }
    }
    Ok(())
}

/// Parses the fields of a complete head whose request line (ending with the
/// CR at `line_end`) `scan` already parsed into `line`, and applies the
/// framing rules.
fn build_head(
    head: &[u8],
    line_end: usize,
    line: RequestLine,
    limits: &Limits,
    spans: Vec<HeaderSpan>,
    host: &mut HostMemo,
) -> Result<HeadParts, ParseError> {
    let fields_start = line_end + 2;
    let fields = head.get(fields_start..).unwrap_or(&[]);

    let mut stack = [httparse::EMPTY_HEADER; STACK_HEADERS];
    let parsed: &[httparse::Header<'_>] = match httparse::parse_headers(
        fields,
        &mut stack[..limits.max_headers.min(STACK_HEADERS)],
    ) {
        Ok(httparse::Status::Complete((_, parsed))) => parsed,
        Err(httparse::Error::TooManyHeaders) if limits.max_headers > STACK_HEADERS => {
            // Each field line takes at least 4 bytes ("a:\r\n").
            let cap = limits.max_headers.min(fields.len() / 4 + 1);
            let mut heap = vec![httparse::EMPTY_HEADER; cap];
            match httparse::parse_headers(fields, &mut heap) {
                Ok(httparse::Status::Complete((_, parsed))) => {
                    return finish_head(head, line, parsed, limits, spans, host);
                }
                Err(httparse::Error::TooManyHeaders) => return Err(ParseError::TooManyHeaders),
                Err(e) => return Err(diagnose_fields(fields, map_httparse(e))),
                Ok(httparse::Status::Partial) => {
                    return Err(diagnose_fields(fields, ParseError::BadHeaderName))
                }
            }
        }
        Err(httparse::Error::TooManyHeaders) => return Err(ParseError::TooManyHeaders),
        Err(e) => return Err(diagnose_fields(fields, map_httparse(e))),
        Ok(httparse::Status::Partial) => {
            return Err(diagnose_fields(fields, ParseError::BadHeaderName))
        }
    };
    finish_head(head, line, parsed, limits, spans, host)
}

fn map_httparse(e: httparse::Error) -> ParseError {
    match e {
        httparse::Error::HeaderValue => ParseError::BadHeaderValue,
        httparse::Error::TooManyHeaders => ParseError::TooManyHeaders,
        _ => ParseError::BadHeaderName,
    }
}

/// Records the fields as spans, then applies the framing rules.
fn finish_head(
    head: &[u8],
    line: RequestLine,
    parsed: &[httparse::Header<'_>],
    limits: &Limits,
    mut headers: Vec<HeaderSpan>,
    host: &mut HostMemo,
) -> Result<HeadParts, ParseError> {
    // httparse checked names against tchar and values against CTLs; the
    // scan already refused bare CR and LF.
    let base = head.as_ptr() as usize;
    let span_of = |s: &[u8]| {
        let start = (s.as_ptr() as usize).saturating_sub(base);
        Span::new(start, start + s.len())
    };
    headers.clear();
    headers.reserve_exact(parsed.len()); // exact: a pooled list keeps this capacity
    headers.extend(parsed.iter().map(|h| HeaderSpan {
        name: span_of(h.name.as_bytes()),
        value: span_of(h.value),
    }));
    apply_framing_rules(head, line, headers, limits, host)
}

/// The one-pass parse of a complete, plain head at the front of `buf` (see
/// the module docs). `Some((end, result))` when this pass decides: the head
/// ends at `end`, and `result` is what the two-step parse gives for it
/// (framing rules included). `None` leaves the head to the two-step parse
/// and says nothing about it. Fills `spare` (left empty on `None`).
fn parse_complete_simple(
    buf: &[u8],
    limits: &Limits,
    spare: &mut Vec<HeaderSpan>,
    host: &mut HostMemo,
) -> Option<(usize, Result<HeadParts, ParseError>)> {
    // Past the head limit the two-step parse answers (431); within it, every byte the head
    // needs must be here, or the head is partial.
    let b = buf.get(..buf.len().min(limits.max_head_size).min(MAX_SPAN_HEAD))?;
    // Request line: method SP request-target SP HTTP-version CRLF, each part as
    // `parse_request_line` accepts it. Loops are `position` over tables: no bounds checks.
    let (sp1, method) = if b.starts_with(b"GET ") {
        (3, Method::Get) // the common case: one 4-byte compare
    } else {
        let sp1 = b.iter().position(|&c| !is_tchar(c))?;
        if sp1 == 0 || b[sp1] != b' ' {
            return None;
        }
        (sp1, Method::from_bytes(&b[..sp1])?)
    };
    let t_start = sp1 + 1;
    // Visible ASCII up to the first `?` or `#` (where an origin-form path ends), then up to SP.
    let rest = &b[t_start..];
    let plain = scan_words(rest, &TARGET_PATH, target_path_flags)?;
    let (path_end, t_len) = match rest[plain] {
        b' ' => (None, plain),
        b'?' | b'#' => {
            let more = rest[plain..]
                .iter()
                .position(|&c| !(0x21..=0x7e).contains(&c))?;
            (Some(plain), plain + more)
        }
        _ => return None,
    };
    let t_end = t_start + t_len;
    // ` HTTP/1.x\r\n` as two word compares (8 bytes, then the last 8, overlapping).
    let word = |at: usize| {
        b.get(at..at + 8)
            .and_then(|w| <[u8; 8]>::try_from(w).ok())
            .map(u64::from_le_bytes)
    };
    let version = match (word(t_end)?, word(t_end + 3)?) {
        (V_HEAD, V11_TAIL) => Version::Http11,
        (V_HEAD, V10_TAIL) => Version::Http10,
        _ => return None,
    };
    let line_end = t_end + 9; // the CR
    if t_len == 0 || line_end > limits.max_request_line {
        return None;
    }
    let target = &b[t_start..t_end];
    let (path, query) = if target[0] == b'/' && method != Method::Connect {
        // origin-form, as `split_target` splits it (the path is never empty: it has the '/').
        match path_end {
            None => (Some(Span::new(0, target.len())), None),
            Some(q) => {
                let query = (target[q] == b'?').then(|| {
                    let end = memchr::memchr(b'#', &target[q..]).map_or(target.len(), |j| q + j);
                    Span::new(q + 1, end)
                });
                (Some(Span::new(0, q)), query)
            }
        }
    } else {
        split_target(method, target)?
    };
    let shift = |s: Span| Span::new(s.start() + t_start, s.end() + t_start);
    let line = RequestLine {
        method,
        version,
        target: Span::new(t_start, t_end),
        path: path.map(shift),
        query: query.map(shift),
    };

    // Field lines: token ":" OWS value OWS CRLF, value bytes HTAB, SP or visible ASCII
    // (httparse also takes obs-text and the two-step parse answers for it); then CRLF.
    spare.clear();
    let mut p = line_end + 2;
    let end = loop {
        let line = b.get(p..)?;
        if line.first() == Some(&b'\r') {
            if line.get(1) != Some(&b'\n') {
                spare.clear();
                return None;
            }
            break p + 2;
        }
        let colon = if line.starts_with(b"Host:") {
            4 // the field every request has, as clients spell it: one 5-byte compare
        } else {
            line.iter().position(|&c| !is_tchar(c))?
        };
        if colon == 0 || line[colon] != b':' || spare.len() == limits.max_headers {
            spare.clear();
            return None;
        }
        let after = &line[colon + 1..];
        let is_ows = |c: u8| c == b' ' || c == b'\t';
        let ows = match after {
            [b' ', c, ..] if !is_ows(*c) => 1, // `name: value`, the usual spelling
            _ => after.iter().position(|&c| !is_ows(c))?,
        };
        let value = &after[ows..];
        let cr = scan_words(value, &FIELD_VALUE, field_value_flags)?;
        if value[cr] != b'\r' || value.get(cr + 1)? != &b'\n' {
            spare.clear();
            return None;
        }
        let trimmed = match cr.checked_sub(1).map(|last| value[last]) {
            Some(last) if !is_ows(last) => cr, // no trailing OWS, the usual case
            _ => value[..cr]
                .iter()
                .rposition(|&c| !is_ows(c))
                .map_or(0, |i| i + 1),
        };
        let value_start = p + colon + 1 + ows;
        spare.push(HeaderSpan {
            name: Span::new(p, p + colon),
            value: Span::new(value_start, value_start + trimmed),
        });
        p = value_start + cr + 2;
    };
    let head = &b[..end];
    Some((
        end,
        apply_framing_rules(head, line, std::mem::take(spare), limits, host),
    ))
}

/// `name.eq_ignore_ascii_case(lower)` for a `lower` made of lowercase letters and `-`:
/// OR-ing in 0x20 maps exactly a letter's two cases onto the lowercase one, and `-` is
/// compared as is. One OR and one compare per byte instead of two case conversions.
#[inline]
fn name_is(name: &[u8], lower: &[u8]) -> bool {
    debug_assert!(lower.iter().all(|&b| b.is_ascii_lowercase() || b == b'-'));
    name.len() == lower.len()
        && name
            .iter()
            .zip(lower)
            .all(|(&a, &b)| if b == b'-' { a == b } else { a | 0x20 == b })
}

/// Applies RFC 9112 §6.3 in order to the fields of a syntactically valid head.
///
/// Inlined into both parses; only the `Host` check and the usual outcome (no framing field,
/// no `Connection`) stay in line. The other five names and the Transfer-Encoding decision are
/// out of line ([`Framing::field`], [`Framing::body_kind`]): code a pipelined `GET` never
/// runs, kept out of its instruction-cache lines.
#[inline(always)]
fn apply_framing_rules(
    head: &[u8],
    line: RequestLine,
    headers: Vec<HeaderSpan>,
    limits: &Limits,
    host: &mut HostMemo,
) -> Result<HeadParts, ParseError> {
    let mut hosts = 0usize;
    let mut framing = Framing::default();
    let mut other_fields = false;

    for h in &headers {
        let name = h.name.of(head);
        if name.is_empty() {
            return Err(ParseError::BadHeaderName);
        }
        // Most fields are none of these: one length compare rules out all but one name.
        if !matches!(name.len(), 4 | 6 | 7 | 10 | 14 | 17) {
            continue;
        }
        let value = h.value.of(head);
        if name_is(name, b"host") {
            hosts += 1;
            if hosts > 1 {
                return Err(ParseError::DuplicateHost);
            }
            if !host.valid(value) {
                return Err(ParseError::BadHost);
            }
        } else {
            other_fields = true;
            framing.field(name, value, line.version)?;
        }
    }

    let body_kind = if other_fields {
        framing.body_kind(line.version)?
    } else {
        BodyKind::Empty
    };
    if hosts == 0 && line.version == Version::Http11 && limits.require_host {
        return Err(ParseError::MissingHost);
    }
    let keep_alive = match line.version {
        Version::Http11 => !framing.close,
        Version::Http10 => framing.keep_alive_token && !framing.close,
    };
    let upgrade =
        line.method == Method::Connect || (framing.upgrade_token && framing.upgrade_header);
    Ok(HeadParts {
        line,
        headers,
        body_kind,
        keep_alive,
        expect_continue: framing.expect_continue,
        unsupported_expectation: framing.unsupported_expectation,
        upgrade,
    })
}

/// What the framing fields other than `Host` said, gathered by [`apply_framing_rules`].
#[derive(Default)]
struct Framing {
    content_length: Option<u64>,
    te_seen: bool,
    te_codings: usize,
    chunked_last: bool,
    chunked_seen: bool,
    close: bool,
    keep_alive_token: bool,
    upgrade_token: bool,
    upgrade_header: bool,
    expect_continue: bool,
    unsupported_expectation: bool,
}

impl Framing {
    /// One field whose name has the length of a framing field but is not `Host`.
    #[inline(never)]
    fn field(&mut self, name: &[u8], value: &[u8], version: Version) -> Result<(), ParseError> {
        let is = |wanted: &[u8]| name_is(name, wanted);
        if is(b"content-length") {
            // RFC 9110 §8.6: a list of identical values may be taken as one.
            let mut any = false;
            let content_length = &mut self.content_length;
            for_each_element(value, |element| {
                any = true;
                let n = parse_decimal(element).ok_or(ParseError::BadContentLength)?;
                match *content_length {
                    Some(prev) if prev != n => Err(ParseError::DuplicateContentLength),
                    _ => {
                        *content_length = Some(n);
                        Ok(())
                    }
                }
            })?;
            if !any || value.ends_with(b",") || value.starts_with(b",") {
                return Err(ParseError::BadContentLength);
            }
        } else if is(b"transfer-encoding") {
            self.te_seen = true;
            for_each_element(value, |element| {
                let coding = transfer_coding(element).ok_or(ParseError::BadTransferEncoding)?;
                let is_chunked = coding.eq_ignore_ascii_case(b"chunked");
                if is_chunked && (self.chunked_seen || coding.len() != element.len()) {
                    // chunked twice, or chunked with parameters.
                    return Err(ParseError::BadTransferEncoding);
                }
                self.chunked_seen |= is_chunked;
                self.chunked_last = is_chunked;
                self.te_codings += 1;
                Ok(())
            })?;
        } else if is(b"connection") {
            for_each_element(value, |token| {
                self.close |= token.eq_ignore_ascii_case(b"close");
                self.keep_alive_token |= token.eq_ignore_ascii_case(b"keep-alive");
                self.upgrade_token |= token.eq_ignore_ascii_case(b"upgrade");
                Ok(())
            })?;
        } else if is(b"upgrade") {
            self.upgrade_header = true;
        } else if is(b"expect") && version == Version::Http11 {
            if value.eq_ignore_ascii_case(b"100-continue") {
                self.expect_continue = true;
            } else {
                self.unsupported_expectation = true;
            }
        }
        Ok(())
    }

    /// RFC 9112 §6.3, for requests: Transfer-Encoding overrides, but with Content-Length it
    /// is a smuggling risk and is refused (as Node does).
    #[inline(never)]
    fn body_kind(&self, version: Version) -> Result<BodyKind, ParseError> {
        if self.te_seen {
            if self.content_length.is_some() {
                return Err(ParseError::TransferEncodingWithContentLength);
            }
            if version == Version::Http10 {
                return Err(ParseError::ChunkedOnHttp10);
            }
            if self.te_codings == 0 || !self.chunked_last {
                return Err(ParseError::BadTransferEncoding);
            }
            // RFC 9112 §6.1: a coding we do not implement (gzip, deflate, compress, ...)
            // before the final chunked is 501; passing its coded bytes on as the body would
            // be wrong.
            if self.te_codings > 1 {
                return Err(ParseError::UnsupportedTransferCoding);
            }
            return Ok(BodyKind::Chunked);
        }
        Ok(match self.content_length {
            Some(0) | None => BodyKind::Empty,
            Some(n) => BodyKind::Length(n),
        })
    }
}

/// The coding name of one `Transfer-Encoding` list element (before any `;` parameters, OWS
/// trimmed), or `None` if it is not a token.
pub(crate) fn transfer_coding(element: &[u8]) -> Option<&[u8]> {
    let coding = element.split(|&b| b == b';').next()?.trim_ascii();
    (!coding.is_empty() && coding.iter().all(|&b| is_tchar(b))).then_some(coding)
}

/// `1*DIGIT` as a `u64`, `None` on anything else or overflow (Content-Length, for requests
/// here and for responses in the client).
pub(crate) fn parse_decimal(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() {
        return None;
    }
    digits.iter().try_fold(0u64, |n, &b| {
        if !b.is_ascii_digit() {
            return None;
        }
        n.checked_mul(10)?.checked_add(u64::from(b - b'0'))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_is_agrees_with_eq_ignore_ascii_case() {
        let names: [&[u8]; 6] = [
            b"host",
            b"content-length",
            b"transfer-encoding",
            b"connection",
            b"upgrade",
            b"expect",
        ];
        for lower in names {
            for pos in 0..lower.len() {
                for b in 0..=255u8 {
                    let mut name = lower.to_vec();
                    name[pos] = b;
                    assert_eq!(
                        name_is(&name, lower),
                        name.eq_ignore_ascii_case(lower),
                        "{name:?}"
                    );
                }
            }
            assert!(!name_is(&lower[1..], lower));
        }
    }

    #[test]
    fn word_scans_agree_with_a_byte_by_byte_position() {
        type Scan = (&'static [bool; 256], fn(u64) -> u64);
        let scans: [Scan; 2] = [
            (&TARGET_PATH, target_path_flags),
            (&FIELD_VALUE, field_value_flags),
        ];
        // Two odd bytes at any two positions of two words: a borrow from the first must not
        // hide or move the first rejected byte.
        let odd = [
            0u8, 0x01, 0x09, 0x0d, 0x1f, 0x20, 0x21, 0x22, 0x23, 0x3f, 0x40, 0x7e, 0x7f, 0x80,
            0xa1, 0xff,
        ];
        for p in 0..16 {
            for q in p + 1..16 {
                for a in 0..=255u8 {
                    for b in odd {
                        let mut bytes = [b'a'; 16];
                        bytes[p] = a;
                        bytes[q] = b;
                        for (table, word) in scans {
                            let naive = bytes.iter().position(|&c| !table[usize::from(c)]);
                            assert_eq!(scan_words(&bytes, table, word), naive, "{bytes:?}");
                            bytes.swap(p, q);
                            let naive = bytes.iter().position(|&c| !table[usize::from(c)]);
                            assert_eq!(scan_words(&bytes, table, word), naive, "{bytes:?}");
                            bytes.swap(p, q);
                        }
                    }
                }
            }
        }
        // Every byte value at every position of a run of accepted bytes, at many lengths.
        for len in 0..24 {
            for pos in 0..len {
                for bad in 0..=255u8 {
                    let mut bytes = vec![b'a'; len];
                    bytes[pos] = bad;
                    for (table, word) in scans {
                        let naive = bytes.iter().position(|&c| !table[usize::from(c)]);
                        assert_eq!(scan_words(&bytes, table, word), naive, "{bytes:?}");
                    }
                }
            }
        }
        // Two odd bytes in one word, in either order.
        for a in 0..=255u8 {
            for b in [0u8, 0x09, 0x1f, 0x20, 0x23, 0x3f, 0x7e, 0x7f, 0x80, 0xff] {
                for bytes in [[b'a', a, b'a', b, b'a', b'a', b'a', b'a', b'a'], [b; 9]] {
                    let mut bytes = bytes;
                    bytes[8] = a;
                    for (table, word) in scans {
                        let naive = bytes.iter().position(|&c| !table[usize::from(c)]);
                        assert_eq!(scan_words(&bytes, table, word), naive, "{bytes:?}");
                    }
                }
            }
        }
    }
    use ParseError::*;

    fn parse(input: &[u8]) -> Result<Option<RequestHead>, ParseError> {
        parse_request(&mut BytesMut::from(input), &Limits::default())
    }

    fn parse_err(input: &[u8]) -> ParseError {
        match parse(input) {
            Err(e) => e,
            Ok(Some(head)) => panic!("{:?} parsed as {head:?}", String::from_utf8_lossy(input)),
            Ok(None) => panic!("{:?} is incomplete", String::from_utf8_lossy(input)),
        }
    }

    fn parse_ok(input: &[u8]) -> RequestHead {
        match parse(input) {
            Ok(Some(head)) => head,
            other => panic!("{:?}: {other:?}", String::from_utf8_lossy(input)),
        }
    }

    /// `req!(name, bytes, |head| { assertions })`, as in httparse.
    macro_rules! req {
        ($name:ident, $buf:expr, |$head:ident| $body:expr) => {
            #[test]
            fn $name() {
                let $head = parse_ok($buf);
                $body
            }
        };
        ($name:ident, $buf:expr, Err($err:expr)) => {
            #[test]
            fn $name() {
                assert_eq!(parse_err($buf), $err);
            }
        };
    }

    req!(
        parses_a_simple_get,
        b"GET /a/b?x=1&y HTTP/1.1\r\nHost: example.com\r\n\r\n",
        |head| {
            assert_eq!(head.method(), Method::Get);
            assert_eq!(head.target(), "/a/b?x=1&y");
            assert_eq!(head.path(), "/a/b");
            assert_eq!(head.query(), Some("x=1&y"));
            assert_eq!(head.version(), Version::Http11);
            assert_eq!(head.body_kind(), BodyKind::Empty);
            assert!(head.keep_alive());
            assert!(!head.expect_continue());
            assert!(!head.is_upgrade());
            assert_eq!(head.header("HOST"), Some(&b"example.com"[..]));
            assert_eq!(head.header_count(), 1);
        }
    );

    req!(keeps_header_order_and_case, b"POST / HTTP/1.1\r\nHost: h\r\nX-A:  1 \r\nx-b:\t2\r\nX-A: 3\r\nEmpty:\r\nContent-Length: 0\r\n\r\n", |head| {
        let all: Vec<_> = head.headers().collect();
        assert_eq!(all, vec![
            ("Host", &b"h"[..]),
            ("X-A", &b"1"[..]),
            ("x-b", &b"2"[..]),
            ("X-A", &b"3"[..]),
            ("Empty", &b""[..]),
            ("Content-Length", &b"0"[..]),
        ]);
        assert_eq!(head.header("x-a"), Some(&b"1"[..]));
        assert_eq!(head.header("missing"), None);
        assert_eq!(head.body_kind(), BodyKind::Empty);
    });

    req!(
        accepts_absolute_form,
        b"GET http://example.com:8080/p/q?b#f HTTP/1.1\r\nHost: example.com\r\n\r\n",
        |head| {
            assert_eq!(head.target(), "http://example.com:8080/p/q?b#f");
            assert_eq!(head.path(), "/p/q");
            assert_eq!(head.query(), Some("b"));
        }
    );

    req!(
        gives_slash_for_absolute_form_without_path,
        b"GET http://example.com?x HTTP/1.1\r\nHost: example.com\r\n\r\n",
        |head| {
            assert_eq!(head.path(), "/");
            assert_eq!(head.query(), Some("x"));
        }
    );

    req!(
        accepts_asterisk_form_for_options,
        b"OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n",
        |head| {
            assert_eq!(head.method(), Method::Options);
            assert_eq!(head.path(), "*");
            assert_eq!(head.query(), None);
        }
    );

    req!(
        accepts_authority_form_for_connect,
        b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n",
        |head| {
            assert_eq!(head.path(), "example.com:443");
            assert!(head.is_upgrade());
        }
    );

    req!(
        skips_empty_lines_before_the_request_line,
        b"\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n",
        |head| {
            assert_eq!(head.target(), "/");
        }
    );

    req!(
        allows_http10_without_host,
        b"GET / HTTP/1.0\r\n\r\n",
        |head| {
            assert_eq!(head.version(), Version::Http10);
            assert!(!head.keep_alive());
        }
    );

    req!(
        allows_empty_host,
        b"GET / HTTP/1.1\r\nHost:\r\n\r\n",
        |head| {
            assert_eq!(head.header("host"), Some(&b""[..]));
        }
    );

    req!(
        allows_identical_content_lengths,
        b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n",
        |head| {
            assert_eq!(head.body_kind(), BodyKind::Length(5));
        }
    );

    req!(
        allows_an_identical_content_length_list,
        b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5, 5\r\n\r\n",
        |head| {
            assert_eq!(head.body_kind(), BodyKind::Length(5));
        }
    );

    req!(
        parses_chunked_in_any_case,
        b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: CHUNKED\r\n\r\n",
        |head| {
            assert_eq!(head.body_kind(), BodyKind::Chunked);
        }
    );

    req!(
        sees_expect_continue,
        b"PUT /x HTTP/1.1\r\nHost: h\r\nExpect: 100-Continue\r\nContent-Length: 3\r\n\r\n",
        |head| {
            assert!(head.expect_continue());
            assert!(!head.has_unsupported_expectation());
        }
    );

    req!(
        flags_unsupported_expectations,
        b"PUT /x HTTP/1.1\r\nHost: h\r\nExpect: teapot\r\n\r\n",
        |head| {
            assert!(!head.expect_continue());
            assert!(head.has_unsupported_expectation());
        }
    );

    req!(sees_websocket_upgrade, b"GET /ws HTTP/1.1\r\nHost: h\r\nConnection: keep-alive, Upgrade\r\nUpgrade: websocket\r\n\r\n", |head| {
        assert!(head.is_upgrade());
        assert!(head.keep_alive());
    });

    req!(
        accepts_obs_text_in_values,
        b"GET / HTTP/1.1\r\nHost: h\r\nX: caf\xc3\xa9\r\n\r\n",
        |head| {
            assert_eq!(head.header("x"), Some("café".as_bytes()));
        }
    );

    #[test]
    fn parses_every_known_method() {
        for &method in Method::ALL {
            let target = match method {
                Method::Connect => "h:1",
                _ => "/",
            };
            let raw = format!("{} {target} HTTP/1.1\r\nHost: h\r\n\r\n", method.as_str());
            assert_eq!(parse_ok(raw.as_bytes()).method(), method);
        }
        assert_eq!(Method::ALL.len(), 35);
    }

    #[test]
    fn decides_keep_alive_from_version_and_connection() {
        let table: &[(&str, &str, bool)] = &[
            ("1.1", "", true),
            ("1.1", "Connection: close\r\n", false),
            ("1.1", "Connection: Keep-Alive, CLOSE\r\n", false),
            ("1.1", "Connection: x\r\nConnection: close\r\n", false),
            ("1.1", "Connection: closed\r\n", true),
            ("1.0", "", false),
            ("1.0", "Connection: keep-alive\r\n", true),
            ("1.0", "Connection: keep-alive, close\r\n", false),
        ];
        for &(version, fields, expected) in table {
            let raw = format!("GET / HTTP/{version}\r\nHost: h\r\n{fields}\r\n");
            assert_eq!(parse_ok(raw.as_bytes()).keep_alive(), expected, "{raw:?}");
        }
    }

    #[test]
    fn needs_more_bytes_for_a_partial_head() {
        for input in [
            &b""[..],
            b"\r\n",
            b"\r",
            b"G",
            b"GET / HTTP/1.1\r",
            b"GET / HTTP/1.1\r\nHost: h\r\n\r",
        ] {
            assert_eq!(parse(input).map(|h| h.is_some()), Ok(false), "{input:?}");
        }
    }

    #[test]
    fn leaves_the_body_in_the_buffer() {
        let mut buf =
            BytesMut::from(&b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\n\r\nbody"[..]);
        let head = parse_request(&mut buf, &Limits::default())
            .unwrap()
            .unwrap();
        assert_eq!(head.body_kind(), BodyKind::Length(4));
        assert_eq!(&buf[..], b"body");
        assert!(head.as_bytes().ends_with(b"\r\n\r\n"));
    }

    #[test]
    fn rejects_malformed_heads() {
        let table: &[(&[u8], ParseError)] = &[
            // Line endings httparse would accept.
            (b"GET / HTTP/1.1\nHost: h\r\n\r\n", BareLf),
            (b"GET / HTTP/1.1\r\nHost: h\n\r\n", BareLf),
            (b"GET / HTTP/1.1\r\nHost: h\r\n\n", BareLf),
            (b"\nGET / HTTP/1.1\r\nHost: h\r\n\r\n", BareLf),
            (b"GET / HTTP/1.1\rHost: h\r\n\r\n", BareCr),
            (b"GET / HTTP/1.1\r\nHost: h\rX: y\r\n\r\n", BareCr),
            (b"GET / HTTP/1.1\r\nHost: h\r\n\r\r\n", BareCr),
            // Request line.
            (b"GET  / HTTP/1.1\r\nHost: h\r\n\r\n", BadRequestLine),
            (b" GET / HTTP/1.1\r\nHost: h\r\n\r\n", BadRequestLine),
            (b"GET /a b HTTP/1.1\r\nHost: h\r\n\r\n", BadRequestLine),
            (b"GET /a\tb HTTP/1.1\r\nHost: h\r\n\r\n", BadRequestLine),
            (b"GET /a\x01 HTTP/1.1\r\nHost: h\r\n\r\n", BadRequestLine),
            (b"GET /\x7f HTTP/1.1\r\nHost: h\r\n\r\n", BadRequestLine),
            (b"GET /caf\xc3\xa9 HTTP/1.1\r\nHost: h\r\n\r\n", BadRequestLine),
            (b"GET / HTTP/1.1 \r\nHost: h\r\n\r\n", BadRequestLine),
            (b"GET /\r\nHost: h\r\n\r\n", BadRequestLine),
            (b"G@T / HTTP/1.1\r\nHost: h\r\n\r\n", BadRequestLine),
            (b"GET\x00 / HTTP/1.1\r\nHost: h\r\n\r\n", BadRequestLine),
            (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", BadRequestLine),
            (b"GET * HTTP/1.1\r\nHost: h\r\n\r\n", BadRequestLine),
            (b"OPTIONS *x HTTP/1.1\r\nHost: h\r\n\r\n", BadRequestLine),
            (b"GET example.com:80 HTTP/1.1\r\nHost: h\r\n\r\n", BadRequestLine),
            (b"GET a/b HTTP/1.1\r\nHost: h\r\n\r\n", BadRequestLine),
            (b"GET 1http://x/ HTTP/1.1\r\nHost: h\r\n\r\n", BadRequestLine),
            (b"CONNECT / HTTP/1.1\r\nHost: h\r\n\r\n", BadRequestLine),
            (b"CONNECT example.com HTTP/1.1\r\nHost: h\r\n\r\n", BadRequestLine),
            (b"CONNECT example.com: HTTP/1.1\r\nHost: h\r\n\r\n", BadRequestLine),
            (b"CONNECT a/b:1 HTTP/1.1\r\nHost: h\r\n\r\n", BadRequestLine),
            // Versions.
            (b"GET / HTTP/1.7\r\nHost: h\r\n\r\n", BadVersion),
            (b"GET / HTTP/1.2\r\nHost: h\r\n\r\n", BadVersion),
            (b"GET / HTTP/1\r\nHost: h\r\n\r\n", BadVersion),
            (b"GET / HTTP/11.1\r\nHost: h\r\n\r\n", BadVersion),
            (b"GET / http/1.1\r\nHost: h\r\n\r\n", BadVersion),
            (b"GET / HTTPS/1.1\r\nHost: h\r\n\r\n", BadVersion),
            (b"GET / HTTP/1.x\r\nHost: h\r\n\r\n", BadVersion),
            (b"GET / HTTP/2.0\r\nHost: h\r\n\r\n", UnsupportedVersion),
            (b"GET / HTTP/3.0\r\nHost: h\r\n\r\n", UnsupportedVersion),
            (b"GET / HTTP/0.9\r\nHost: h\r\n\r\n", UnsupportedVersion),
            (b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", UnsupportedVersion),
            // Methods.
            (b"get / HTTP/1.1\r\nHost: h\r\n\r\n", UnknownMethod),
            (b"FOO / HTTP/1.1\r\nHost: h\r\n\r\n", UnknownMethod),
            (b"DESCRIBE / HTTP/1.1\r\nHost: h\r\n\r\n", UnknownMethod),
            // Field lines.
            (b"GET / HTTP/1.1\r\nHost: h\r\n folded\r\n\r\n", ObsFold),
            (b"GET / HTTP/1.1\r\nHost: h\r\nX: a\r\n\tb\r\n\r\n", ObsFold),
            (b"GET / HTTP/1.1\r\n Host: h\r\n\r\n", ObsFold),
            (b"GET / HTTP/1.1\r\nHost : h\r\n\r\n", SpaceBeforeColon),
            (b"GET / HTTP/1.1\r\nHost: h\r\nX\t: y\r\n\r\n", SpaceBeforeColon),
            (b"GET / HTTP/1.1\r\nHost: h\r\n: y\r\n\r\n", BadHeaderName),
            (b"GET / HTTP/1.1\r\nHost: h\r\nNoColon\r\n\r\n", BadHeaderName),
            (b"GET / HTTP/1.1\r\nHost: h\r\nX(y): z\r\n\r\n", BadHeaderName),
            (b"GET / HTTP/1.1\r\nHost: h\r\nX\"y: z\r\n\r\n", BadHeaderName),
            (b"GET / HTTP/1.1\r\nHost: h\r\nX\x00: z\r\n\r\n", BadHeaderName),
            (b"GET / HTTP/1.1\r\nHost: h\r\nX: a\x00b\r\n\r\n", BadHeaderValue),
            (b"GET / HTTP/1.1\r\nHost: h\r\nX: a\x01\r\n\r\n", BadHeaderValue),
            (b"GET / HTTP/1.1\r\nHost: h\r\nX: a\x7fb\r\n\r\n", BadHeaderValue),
            (b"GET / HTTP/1.1\r\nHost: h\r\nX: \x1b[31m\r\n\r\n", BadHeaderValue),
            // Host.
            (b"GET / HTTP/1.1\r\n\r\n", MissingHost),
            (b"GET / HTTP/1.1\r\nX: y\r\n\r\n", MissingHost),
            (b"GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n", DuplicateHost),
            (b"GET / HTTP/1.0\r\nHost: a\r\nhost: b\r\n\r\n", DuplicateHost),
            (b"GET / HTTP/1.1\r\nHost: a b\r\n\r\n", BadHost),
            (b"GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", BadHost),
            (b"GET / HTTP/1.1\r\nHost: u@a\r\n\r\n", BadHost),
            (b"GET / HTTP/1.1\r\nHost: a:8x\r\n\r\n", BadHost),
            (b"GET / HTTP/1.1\r\nHost: a:1:2\r\n\r\n", BadHost),
            (b"GET / HTTP/1.1\r\nHost: [::1\r\n\r\n", BadHost),
            (b"GET / HTTP/1.1\r\nHost: [::1]x\r\n\r\n", BadHost),
            (b"GET / HTTP/1.1\r\nHost: a?b\r\n\r\n", BadHost),
            (b"GET / HTTP/1.1\r\nHost: a\\b\r\n\r\n", BadHost),
            // Content-Length.
            (b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: -1\r\n\r\n", BadContentLength),
            (b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: +1\r\n\r\n", BadContentLength),
            (b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1 2\r\n\r\n", BadContentLength),
            (b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0x10\r\n\r\n", BadContentLength),
            (b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1.0\r\n\r\n", BadContentLength),
            (b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length:\r\n\r\n", BadContentLength),
            (b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5,\r\n\r\n", BadContentLength),
            (b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: ,5\r\n\r\n", BadContentLength),
            (b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 18446744073709551616\r\n\r\n", BadContentLength),
            (b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", DuplicateContentLength),
            (b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5, 6\r\n\r\n", DuplicateContentLength),
            // Transfer-Encoding.
            (b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n", TransferEncodingWithContentLength),
            (b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", TransferEncodingWithContentLength),
            (b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", BadTransferEncoding),
            (b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\n\r\n", BadTransferEncoding),
            (b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", UnsupportedTransferCoding),
            (b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: CHUNKED\r\n\r\n", UnsupportedTransferCoding),
            (b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, chunked\r\n\r\n", BadTransferEncoding),
            (b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", BadTransferEncoding),
            (b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked;x=1\r\n\r\n", BadTransferEncoding),
            (b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding:\r\n\r\n", BadTransferEncoding),
            (b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunk ed\r\n\r\n", BadTransferEncoding),
            (b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: \"chunked\"\r\n\r\n", BadTransferEncoding),
            (b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", ChunkedOnHttp10),
        ];
        for &(input, expected) in table {
            assert_eq!(
                parse(input).map(|_| ()),
                Err(expected),
                "{:?}",
                String::from_utf8_lossy(input)
            );
        }
    }

    #[test]
    fn enforces_size_limits() {
        let limits = Limits::default();
        let long_target = format!("GET /{} HTTP/1.1\r\nHost: h\r\n\r\n", "a".repeat(9000));
        assert_eq!(parse_err(long_target.as_bytes()), UriTooLong);
        // Without a CRLF yet, the line limit is still enforced.
        assert_eq!(parse_err(&long_target.as_bytes()[..8200]), UriTooLong);
        // A line of exactly the limit is fine.
        let exact = format!("GET /{} HTTP/1.1", "a".repeat(limits.max_request_line - 14));
        assert_eq!(exact.len(), limits.max_request_line);
        assert!(
            parse_ok(format!("{exact}\r\nHost: h\r\n\r\n").as_bytes())
                .target()
                .len()
                > 8000
        );

        let big = format!(
            "GET / HTTP/1.1\r\nHost: h\r\nX: {}\r\n\r\n",
            "v".repeat(17 * 1024)
        );
        assert_eq!(parse_err(big.as_bytes()), HeadTooLarge);
        assert_eq!(parse_err(&big.as_bytes()[..16 * 1024 + 1]), HeadTooLarge);
        assert_eq!(
            parse(&big.as_bytes()[..16 * 1024]).map(|h| h.is_some()),
            Ok(false)
        );

        // A head of exactly max_head_size bytes passes; one more byte fails.
        let prefix = "GET / HTTP/1.1\r\nHost: h\r\nX: ";
        let fill = limits.max_head_size - prefix.len() - 4;
        let exact = format!("{prefix}{}\r\n\r\n", "v".repeat(fill));
        assert_eq!(exact.len(), limits.max_head_size);
        assert!(parse(exact.as_bytes()).unwrap().is_some());
        let over = format!("{prefix}{}\r\n\r\n", "v".repeat(fill + 1));
        assert_eq!(parse_err(over.as_bytes()), HeadTooLarge);
    }

    #[test]
    fn counts_headers_past_the_stack_array() {
        let mut raw = String::from("GET / HTTP/1.1\r\nHost: h\r\n");
        for i in 0..199 {
            raw.push_str(&format!("X-{i}: {i}\r\n"));
        }
        raw.push_str("\r\n");
        let head = parse_ok(raw.as_bytes());
        assert_eq!(head.header_count(), 200);
        assert_eq!(head.header("x-198"), Some(&b"198"[..]));
        let small = Limits {
            max_headers: 199,
            ..Limits::default()
        };
        assert_eq!(
            parse_request(&mut BytesMut::from(raw.as_bytes()), &small).map(|_| ()),
            Err(TooManyHeaders)
        );
        let tiny = Limits {
            max_headers: 1,
            ..Limits::default()
        };
        assert_eq!(
            parse_request(&mut BytesMut::from(raw.as_bytes()), &tiny).map(|_| ()),
            Err(TooManyHeaders)
        );
        // Errors after the stack array overflows are still precise.
        let bad = raw.replace("X-150: 150", "X-150 : 150");
        assert_eq!(parse_err(bad.as_bytes()), SpaceBeforeColon);
    }

    #[test]
    fn can_skip_the_host_requirement() {
        let limits = Limits {
            require_host: false,
            ..Limits::default()
        };
        let mut buf = BytesMut::from(&b"GET / HTTP/1.1\r\n\r\n"[..]);
        assert!(parse_request(&mut buf, &limits).unwrap().is_some());
    }

    #[test]
    fn rejects_garbage_before_its_line_ends() {
        // Invalid method bytes are refused without waiting for CRLF.
        for input in [&b"\x00"[..], b"GE\x01", b" ", b"{\"json\": 1}", b"GET\t/"] {
            assert_eq!(parse(input).map(|_| ()), Err(BadRequestLine), "{input:?}");
        }
    }

    #[test]
    fn repeats_the_same_error_without_consuming() {
        let mut buf = BytesMut::from(&b"GET / HTTP/1.1\r\nHost : h\r\n\r\n"[..]);
        let mut parser = HeadParser::new();
        let limits = Limits::default();
        assert_eq!(
            parser.parse(&mut buf, &limits).map(|_| ()),
            Err(SpaceBeforeColon)
        );
        assert_eq!(
            parser.parse(&mut buf, &limits).map(|_| ()),
            Err(SpaceBeforeColon)
        );
        assert_eq!(&buf[..], b"GET / HTTP/1.1\r\nHost : h\r\n\r\n");
    }

    /// Feeds `input` through one `HeadParser` in the given pieces.
    fn feed_in_pieces(input: &[u8], cuts: &[usize]) -> Result<Option<(String, usize)>, ParseError> {
        let mut parser = HeadParser::new();
        let limits = Limits::default();
        let mut buf = BytesMut::new();
        let mut from = 0;
        for &cut in cuts.iter().chain(std::iter::once(&input.len())) {
            buf.extend_from_slice(&input[from..cut]);
            from = cut;
            if let Some(head) = parser.parse(&mut buf, &limits)? {
                return Ok(Some((
                    head.target().to_owned(),
                    buf.len() + input.len() - from,
                )));
            }
        }
        Ok(None)
    }

    #[test]
    fn gives_the_same_result_at_every_split_point() {
        let inputs: &[&[u8]] = &[
            b"GET /x?y HTTP/1.1\r\nHost: h\r\nA: b\r\n\r\nrest",
            b"\r\n\r\nPOST /p HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\nab",
            b"GET / HTTP/1.1\r\nHost: h\nA: b\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: h\r\nA: b\r\r\n\r\n",
            b"G\x00T / HTTP/1.1\n",
            b"GET / HTTP/1.1\r\nHost : h\r\n\r\n",
            b"GET / HTTP/2.0\r\nHost: h\r\n\r\n",
            b"GET / HTTP/1.1\r\n\r\n",
        ];
        for input in inputs {
            let whole = feed_in_pieces(input, &[]);
            for cut in 0..=input.len() {
                assert_eq!(
                    feed_in_pieces(input, &[cut]),
                    whole,
                    "{input:?} cut at {cut}"
                );
            }
            // And one byte at a time.
            let every: Vec<usize> = (1..input.len()).collect();
            assert_eq!(feed_in_pieces(input, &every), whole, "{input:?} bytewise");
        }
    }

    /// Everything a head exposes, or the error.
    fn observed(r: Result<Option<RequestHead>, ParseError>) -> String {
        match r {
            Ok(Some(h)) => format!(
                "{:?} {:?} {:?} {:?} {:?} {:?} {:?} {} {} {} {} {:?}",
                h.method(),
                h.target(),
                h.path(),
                h.query(),
                h.version(),
                h.headers().collect::<Vec<_>>(),
                h.body_kind(),
                h.keep_alive(),
                h.expect_continue(),
                h.has_unsupported_expectation(),
                h.is_upgrade(),
                h.as_bytes(),
            ),
            other => format!("{other:?}"),
        }
    }

    #[test]
    fn the_one_pass_parse_agrees_with_the_two_step_parse() {
        let inputs: &[&[u8]] = &[
            b"GET /plaintext HTTP/1.1\r\nHost: 127.0.0.1:3000\r\n\r\nGET",
            b"GET /a?b=c#d HTTP/1.1\r\nHost: h\r\nX:  v  \t\r\nY:\r\nZ: \t \r\n\r\n",
            b"GET /a#b?c HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
            b"POST /p HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello",
            b"POST /p HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n",
            b"POST /p HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nContent-Length: 1\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: h\r\nHost: h\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: a b\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: [::1]:80\r\nExpect: 100-continue\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: h\r\nExpect: other\r\nConnection: Upgrade, close\r\nUpgrade: x\r\n\r\n",
            b"GET http://h/p?q HTTP/1.1\r\nHost: h\r\n\r\n",
            b"OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n",
            b"CONNECT h:443 HTTP/1.1\r\nHost: h:443\r\n\r\n",
            b"M-SEARCH * HTTP/1.1\r\nHost: h\r\n\r\n",
            b"GET / HTTP/1.1\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: h\r\nX: caf\xc3\xa9\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: h\r\nX: a\x7f\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: h\r\nX : a\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: h\r\n folded\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: h\r\n:a\r\n\r\n",
            b"GET  / HTTP/1.1\r\nHost: h\r\n\r\n",
            b"get / HTTP/1.1\r\nHost: h\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: h\r\nA: b\r\r\n\r\n",
            // The usual spellings' shortcuts ("GET ", "Host:", one SP, no trailing OWS)
            // next to what they must not take.
            b"GET / HTTP/1.1\r\nHost:h\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost:  h\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: \th \t\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: h \r\n\r\n",
            b"GET / HTTP/1.1\r\nHost:\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: \r\n\r\n",
            b"GET / HTTP/1.1\r\nHost : h\r\n\r\n",
            b"GET / HTTP/1.1\r\nHostname: h\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost:: h\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: a\x01b\r\n\r\n",
            b"GET / HTTP/1.1\r\nhost: h\r\n\r\n",
            b"GET / HTTP/1.2\r\nHost: h\r\n\r\n",
            b"GET / HTTP/2.0\r\nHost: h\r\n\r\n",
            b"GET / HTTP/1.1 \r\nHost: h\r\n\r\n",
            b"GET / http/1.1\r\nHost: h\r\n\r\n",
            b"GET /aaaaaaa?bbbbbbbbb#cccccccc HTTP/1.1\r\nHost: h\r\n\r\n",
            b"GET /aaaaaaaaaaaaaaa\x7fb HTTP/1.1\r\nHost: h\r\n\r\n",
            b"GET /aaaaaaaaaaaaaaa\x80b HTTP/1.1\r\nHost: h\r\n\r\n",
            b"GET /aaaaaaa\tb HTTP/1.1\r\nHost: h\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: h\r\nX: aaaaaaaaaaaaaaaaa\tbbbbbbbbbbbbb\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: h\r\nX: aaaaaaaaaaaaaaaaa\nbbbbbbbbbbbbb\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: h\r\nX: aaaaaaaaaaaaaaaaa\x00bbbbbbbbbbbbb\r\n\r\n",
            b"GET\t/ HTTP/1.1\r\nHost: h\r\n\r\n",
            b"GETX / HTTP/1.1\r\nHost: h\r\n\r\n",
        ];
        for input in inputs {
            // Whole: the one-pass parse; the first byte alone first: the two-step parse.
            let fast = parse(input);
            let mut buf = BytesMut::from(&input[..1]);
            let mut parser = HeadParser::new();
            let first = parser.parse(&mut buf, &Limits::default());
            let slow = match first {
                Ok(None) => {
                    buf.extend_from_slice(&input[1..]);
                    parser.parse(&mut buf, &Limits::default())
                }
                other => other,
            };
            assert_eq!(observed(fast), observed(slow), "{input:?}");
        }
    }

    #[test]
    fn validates_field_lines_like_the_head_parser() {
        type Case<'a> = (&'a [u8], Result<(&'a [u8], &'a [u8]), ParseError>);
        let table: &[Case<'_>] = &[
            (b"Name: value", Ok((b"Name", b"value"))),
            (b"Name:value \t", Ok((b"Name", b"value"))),
            (b"Name:", Ok((b"Name", b""))),
            (b" Name: v", Err(ObsFold)),
            (b"Name : v", Err(SpaceBeforeColon)),
            (b": v", Err(BadHeaderName)),
            (b"Name", Err(BadHeaderName)),
            (b"Na/me: v", Err(BadHeaderName)),
            (b"Name: a\x00", Err(BadHeaderValue)),
            (b"Name: a\x7f", Err(BadHeaderValue)),
        ];
        for &(line, expected) in table {
            let got = parse_field_line(line).map(|(n, v)| (&line[n], &line[v]));
            assert_eq!(got, expected, "{line:?}");
        }
    }
}

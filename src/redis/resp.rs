//! RESP2 and RESP3: replies as a [`Reply`] enum, an incremental [`Parser`] and the command
//! encoder ([`encode_command`]).
//!
//! No I/O here: the client feeds the bytes it reads and takes replies out. Bulk strings are
//! zero-copy: a complete reply is split off the read buffer (`BytesMut::split_to(..).freeze()`)
//! and every [`Reply::Bulk`] is a slice of it, so holding one pins that chunk of the read
//! buffer (copy it with `Bytes::copy_from_slice` to keep a small value for long).
//!
//! # Bounds
//! Every size a server controls is bounded by [`ReplyLimits`]; a violation is a
//! [`ProtocolError`], never a panic or an unbounded allocation:
//!
//! | limit | default | why |
//! |---|---|---|
//! | `max_bulk_len` | 512 MiB | Redis' own `proto-max-bulk-len` |
//! | `max_reply_size` | 1 GiB | bytes of one reply buffered before it is complete: the read buffer's bound |
//! | `max_elements` | 16 Mi | values (scalars and aggregates) in one reply: memory per value is ~40 bytes |
//! | `max_depth` | 64 | nested aggregates; the reply builder recurses, so this bounds its stack |
//!
//! An aggregate's announced length is never used to preallocate more than 1,024 slots, so a
//! `*2000000000` header costs nothing until the elements arrive.
//!
//! # Parsing is resumable
//! [`Parser::next`] scans the buffered bytes once, element by element, and remembers where it
//! stopped (`pos` and the open aggregates' remaining counts), so a reply that arrives in many
//! reads is scanned once in total, not once per read. Only when the scan reaches the end of a
//! reply is it built (a second, allocation-only pass over bytes known to be valid).
//!
//! Not supported (a [`ProtocolError::Unsupported`]): RESP3 streamed strings and aggregates
//! (`$?`, `*?`), which Redis never sends. RESP3 attributes (`|`) are parsed and dropped: the
//! reply they annotate is returned.

use std::fmt;

use bytes::{BufMut, Bytes, BytesMut};

/// Default [`ReplyLimits::max_bulk_len`]: 512 MiB, Redis' `proto-max-bulk-len`.
pub const DEFAULT_MAX_BULK_LEN: usize = 512 << 20;
/// Default [`ReplyLimits::max_reply_size`]: 1 GiB.
pub const DEFAULT_MAX_REPLY_SIZE: usize = 1 << 30;
/// Default [`ReplyLimits::max_elements`]: 16 Mi values in one reply.
pub const DEFAULT_MAX_ELEMENTS: usize = 1 << 24;
/// Default [`ReplyLimits::max_depth`]: 64 nested aggregates.
pub const DEFAULT_MAX_DEPTH: usize = 64;

/// Aggregates never preallocate more slots than this, whatever length they announce.
const MAX_PREALLOC: usize = 1024;

/// One reply from the server.
#[derive(Clone, Debug, PartialEq)]
pub enum Reply {
    /// `+OK` (RESP2 and RESP3 simple string).
    Simple(Bytes),
    /// `-ERR message` or RESP3 `!` blob error: the whole line, code first (`WRONGTYPE ...`).
    Error(Bytes),
    /// `:42`.
    Int(i64),
    /// `$3\r\nfoo`: a slice of the read buffer.
    Bulk(Bytes),
    /// `$-1`, `*-1` (RESP2) or `_` (RESP3).
    Nil,
    /// `*n`.
    Array(Vec<Reply>),
    /// RESP3 `%n`: key/value pairs in the order sent.
    Map(Vec<(Reply, Reply)>),
    /// RESP3 `~n`.
    Set(Vec<Reply>),
    /// RESP3 `,1.5` (also `inf`, `-inf`, `nan`).
    Double(f64),
    /// RESP3 `#t` / `#f`.
    Bool(bool),
    /// RESP3 `(3492890328409238509324850943850943825024385`: the digits as sent.
    BigNumber(Bytes),
    /// RESP3 `=15\r\ntxt:Some string`: the three-letter format and the text.
    Verbatim {
        /// `txt` or `mkd`.
        format: Bytes,
        /// The text after `format:`.
        text: Bytes,
    },
    /// RESP3 `>n`: out-of-band data (pub/sub messages, client-side caching invalidations).
    Push(Vec<Reply>),
}

impl Reply {
    /// The bytes of a bulk, simple or verbatim string; `None` for any other kind.
    pub fn as_bytes(&self) -> Option<&Bytes> {
        match self {
            Reply::Bulk(b) | Reply::Simple(b) => Some(b),
            Reply::Verbatim { text, .. } => Some(text),
            _ => None,
        }
    }

    /// Whether this is `+OK`.
    pub fn is_ok(&self) -> bool {
        matches!(self, Reply::Simple(s) if &s[..] == b"OK")
    }

    /// The elements of an array, set or push; `None` for any other kind.
    pub fn as_slice(&self) -> Option<&[Reply]> {
        match self {
            Reply::Array(v) | Reply::Set(v) | Reply::Push(v) => Some(v),
            _ => None,
        }
    }
}

/// Why the bytes from the server are not RESP (or break a [`ReplyLimits`] bound). The
/// connection cannot be resynchronised after one: the client closes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProtocolError {
    /// The first byte of a value is not a RESP2/RESP3 type byte.
    BadType(u8),
    /// A line does not end in CRLF, or a bulk payload is not followed by CRLF.
    BadLineEnding,
    /// An integer or length is not a decimal i64 (or is negative where it must not be).
    BadInteger,
    /// A RESP3 double is not a number, `inf`, `-inf` or `nan`.
    BadDouble,
    /// A RESP3 boolean is not `t` or `f`, or a null (`_`) carries data.
    BadScalar,
    /// A bulk string is longer than `max_bulk_len`.
    BulkTooLong,
    /// The reply has more than `max_elements` values.
    TooManyElements,
    /// Aggregates are nested deeper than `max_depth`.
    TooDeep,
    /// The reply is larger than `max_reply_size` bytes.
    ReplyTooLarge,
    /// A RESP3 streamed string or aggregate (`$?`, `*?`).
    Unsupported,
}

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProtocolError::BadType(b) => write!(f, "unknown RESP type byte 0x{b:02x}"),
            ProtocolError::BadLineEnding => f.write_str("missing CRLF"),
            ProtocolError::BadInteger => f.write_str("bad integer or length"),
            ProtocolError::BadDouble => f.write_str("bad double"),
            ProtocolError::BadScalar => f.write_str("bad boolean or null"),
            ProtocolError::BulkTooLong => f.write_str("bulk string longer than max_bulk_len"),
            ProtocolError::TooManyElements => {
                f.write_str("reply has more than max_elements values")
            }
            ProtocolError::TooDeep => f.write_str("aggregates nested deeper than max_depth"),
            ProtocolError::ReplyTooLarge => f.write_str("reply larger than max_reply_size"),
            ProtocolError::Unsupported => f.write_str("RESP3 streamed types are not supported"),
        }
    }
}

impl std::error::Error for ProtocolError {}

/// Bounds on one reply; see the module docs for the defaults and why.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReplyLimits {
    /// Longest bulk string, blob error or verbatim string.
    pub max_bulk_len: usize,
    /// Most bytes of one reply, buffered while it is incomplete.
    pub max_reply_size: usize,
    /// Most values in one reply, counting every scalar and aggregate.
    pub max_elements: usize,
    /// Deepest nesting of aggregates (a flat array is depth 1).
    pub max_depth: usize,
}

impl Default for ReplyLimits {
    fn default() -> ReplyLimits {
        ReplyLimits {
            max_bulk_len: DEFAULT_MAX_BULK_LEN,
            max_reply_size: DEFAULT_MAX_REPLY_SIZE,
            max_elements: DEFAULT_MAX_ELEMENTS,
            max_depth: DEFAULT_MAX_DEPTH,
        }
    }
}

/// What one value's header says.
#[derive(Clone, Copy, Debug)]
enum Head {
    /// A scalar, complete; `start..end` is its payload within the scanned slice.
    Scalar { kind: u8, start: usize, end: usize },
    /// A nil (`$-1`, `*-1`, `_`).
    Nil,
    /// An aggregate of `children` values follow (a map announces 2n, an attribute 2n+1).
    Aggregate { kind: u8, children: usize },
}

/// Reads one value's header (and a bulk payload) at the start of `buf`. `Ok(None)`: more
/// bytes needed. On success: the header and the bytes consumed.
/// `room` is how many bytes the value may take before the reply exceeds `max_reply_size`.
fn read_head(
    buf: &[u8],
    limits: &ReplyLimits,
    room: usize,
) -> Result<Option<(Head, usize)>, ProtocolError> {
    let Some(&kind) = buf.first() else {
        return Ok(None);
    };
    if !matches!(
        kind,
        b'+' | b'-'
            | b':'
            | b'$'
            | b'*'
            | b'_'
            | b','
            | b'#'
            | b'('
            | b'!'
            | b'='
            | b'%'
            | b'~'
            | b'>'
            | b'|'
    ) {
        return Err(ProtocolError::BadType(kind));
    }
    let Some(cr) = memchr::memchr(b'\r', &buf[1..]).map(|i| i + 1) else {
        // No CR yet; a LF alone would be a broken line ending.
        if memchr::memchr(b'\n', &buf[1..]).is_some() {
            return Err(ProtocolError::BadLineEnding);
        }
        return Ok(None);
    };
    let Some(&lf) = buf.get(cr + 1) else {
        return Ok(None);
    };
    if lf != b'\n' {
        return Err(ProtocolError::BadLineEnding);
    }
    let line = &buf[1..cr];
    let after_line = cr + 2;
    let head = match kind {
        b'+' | b'-' | b'(' => Head::Scalar {
            kind,
            start: 1,
            end: cr,
        },
        b':' => {
            parse_i64(line)?;
            Head::Scalar {
                kind,
                start: 1,
                end: cr,
            }
        }
        b',' => {
            parse_double(line)?;
            Head::Scalar {
                kind,
                start: 1,
                end: cr,
            }
        }
        b'#' => {
            if line != b"t" && line != b"f" {
                return Err(ProtocolError::BadScalar);
            }
            Head::Scalar {
                kind,
                start: 1,
                end: cr,
            }
        }
        b'_' => {
            if !line.is_empty() {
                return Err(ProtocolError::BadScalar);
            }
            Head::Nil
        }
        b'$' | b'!' | b'=' => {
            if line == b"?" {
                return Err(ProtocolError::Unsupported);
            }
            let len = parse_i64(line)?;
            if len == -1 && kind == b'$' {
                return Ok(Some((Head::Nil, after_line)));
            }
            let len = usize::try_from(len).map_err(|_| ProtocolError::BadInteger)?;
            if len > limits.max_bulk_len {
                return Err(ProtocolError::BulkTooLong);
            }
            if after_line.saturating_add(len).saturating_add(2) > room {
                return Err(ProtocolError::ReplyTooLarge);
            }
            let end = after_line + len;
            if buf.len() < end + 2 {
                return Ok(None);
            }
            if &buf[end..end + 2] != b"\r\n" {
                return Err(ProtocolError::BadLineEnding);
            }
            if kind == b'=' && (len < 4 || buf[after_line + 3] != b':') {
                return Err(ProtocolError::BadScalar);
            }
            return Ok(Some((
                Head::Scalar {
                    kind,
                    start: after_line,
                    end,
                },
                end + 2,
            )));
        }
        _ => {
            // '*' '%' '~' '>' '|'
            if line == b"?" {
                return Err(ProtocolError::Unsupported);
            }
            let n = parse_i64(line)?;
            if n == -1 && kind == b'*' {
                return Ok(Some((Head::Nil, after_line)));
            }
            let n = usize::try_from(n).map_err(|_| ProtocolError::BadInteger)?;
            if n > limits.max_elements {
                return Err(ProtocolError::TooManyElements);
            }
            let children = match kind {
                b'%' => n * 2,
                b'|' => n * 2 + 1,
                _ => n,
            };
            Head::Aggregate { kind, children }
        }
    };
    Ok(Some((head, after_line)))
}

/// A strict decimal i64: optional `-`, at least one digit, nothing else.
fn parse_i64(s: &[u8]) -> Result<i64, ProtocolError> {
    let (neg, digits) = match s.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, s),
    };
    if digits.is_empty() || digits.len() > 19 {
        return Err(ProtocolError::BadInteger);
    }
    let mut v: i64 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return Err(ProtocolError::BadInteger);
        }
        v = v
            .checked_mul(10)
            .and_then(|v| {
                let d = i64::from(d - b'0');
                if neg {
                    v.checked_sub(d)
                } else {
                    v.checked_add(d)
                }
            })
            .ok_or(ProtocolError::BadInteger)?;
    }
    Ok(v)
}

fn parse_double(s: &[u8]) -> Result<f64, ProtocolError> {
    match s {
        b"inf" => return Ok(f64::INFINITY),
        b"-inf" => return Ok(f64::NEG_INFINITY),
        b"nan" | b"-nan" => return Ok(f64::NAN),
        _ => {}
    }
    let ok = !s.is_empty()
        && s.iter()
            .all(|c| c.is_ascii_digit() || matches!(c, b'-' | b'+' | b'.' | b'e' | b'E'));
    if !ok {
        return Err(ProtocolError::BadDouble);
    }
    std::str::from_utf8(s)
        .ok()
        .and_then(|t| t.parse::<f64>().ok())
        .ok_or(ProtocolError::BadDouble)
}

/// An incremental reply parser over its own read buffer. Feed bytes with [`Parser::feed`] and
/// take complete replies with [`Parser::next`] until it returns `Ok(None)`.
///
/// # Guarantees
/// - Splitting a valid stream at any points yields the same replies.
/// - Bytes of an incomplete reply held at any time are at most `max_reply_size` (plus what
///   the last `feed` added: the caller should call `next` after every `feed`).
/// - After an `Err`, the parser stays failed (every later `next` returns the same error).
#[derive(Debug)]
pub struct Parser {
    buf: BytesMut,
    limits: ReplyLimits,
    /// Scan position within `buf` (the start of the next value's header).
    pos: usize,
    /// Remaining children of each open aggregate, innermost last.
    open: Vec<usize>,
    /// Values scanned in the current reply.
    values: usize,
    failed: Option<ProtocolError>,
}

impl Parser {
    /// A parser with the given bounds.
    pub fn new(limits: ReplyLimits) -> Parser {
        Parser {
            buf: BytesMut::new(),
            limits,
            pos: 0,
            open: Vec::new(),
            values: 0,
            failed: None,
        }
    }

    /// The bounds in force.
    pub fn limits(&self) -> &ReplyLimits {
        &self.limits
    }

    /// Appends bytes read from the server (dropped once the parser has failed).
    pub fn feed(&mut self, data: &[u8]) {
        if self.failed.is_none() {
            self.buf.extend_from_slice(data);
        }
    }

    /// Bytes buffered and not yet returned as replies.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Forgets everything buffered and any error (a new connection starts clean).
    pub fn reset(&mut self) {
        self.buf.clear();
        self.pos = 0;
        self.open.clear();
        self.values = 0;
        self.failed = None;
    }

    /// The next complete reply, `Ok(None)` if more bytes are needed.
    ///
    /// # Errors
    /// A [`ProtocolError`] if the bytes are not RESP or break a bound.
    #[allow(clippy::should_implement_trait)] // fallible and resumable: not an Iterator
    pub fn next(&mut self) -> Result<Option<Reply>, ProtocolError> {
        if let Some(e) = self.failed {
            return Err(e);
        }
        let result = self.next_unchecked();
        if let Err(e) = result {
            self.failed = Some(e);
            self.buf = BytesMut::new(); // nothing more will be parsed: free the buffer
        }
        result
    }

    fn next_unchecked(&mut self) -> Result<Option<Reply>, ProtocolError> {
        match self.scan() {
            Ok(Some(len)) => {
                let frame = self.buf.split_to(len).freeze();
                self.pos = 0;
                self.values = 0;
                let mut at = 0;
                build(&frame, &mut at, &self.limits, 0).map(Some)
            }
            Ok(None) if self.buf.len() > self.limits.max_reply_size => {
                Err(ProtocolError::ReplyTooLarge)
            }
            other => other.map(|_| None),
        }
    }

    /// Scans from `pos`; `Ok(Some(len))` when the reply at the start of `buf` is `len` bytes.
    fn scan(&mut self) -> Result<Option<usize>, ProtocolError> {
        loop {
            let room = self.limits.max_reply_size.saturating_sub(self.pos);
            let Some((head, used)) = read_head(&self.buf[self.pos..], &self.limits, room)? else {
                if let Some(need) = self.bulk_needs() {
                    // A large bulk string: make room once instead of growing read by read.
                    self.buf.reserve(need.saturating_sub(self.buf.len()));
                }
                return Ok(None);
            };
            self.pos += used;
            self.values += 1;
            if self.values > self.limits.max_elements {
                return Err(ProtocolError::TooManyElements);
            }
            if self.pos > self.limits.max_reply_size {
                return Err(ProtocolError::ReplyTooLarge);
            }
            match head {
                Head::Aggregate { children, .. } if children > 0 => {
                    if self.open.len() >= self.limits.max_depth {
                        return Err(ProtocolError::TooDeep);
                    }
                    self.open.push(children);
                }
                _ => {
                    // One value complete: close every aggregate it completes.
                    loop {
                        let Some(left) = self.open.last_mut() else {
                            return Ok(Some(self.pos));
                        };
                        *left -= 1;
                        if *left > 0 {
                            break;
                        }
                        self.open.pop();
                    }
                }
            }
        }
    }

    /// If the scan stopped inside a bulk payload whose length is known, the bytes the whole
    /// buffer needs to hold it.
    fn bulk_needs(&self) -> Option<usize> {
        let rest = &self.buf[self.pos..];
        if !matches!(rest.first(), Some(b'$' | b'!' | b'=')) {
            return None;
        }
        let cr = memchr::memchr(b'\r', rest)?;
        let len = usize::try_from(parse_i64(&rest[1..cr]).ok()?).ok()?;
        Some(self.pos + cr + 2 + len.min(self.limits.max_bulk_len) + 2)
    }
}

/// Builds the value at `*at` in a frame the scanner validated. Errors are still returned, not
/// assumed away, so a scanner bug cannot become a panic.
fn build(
    frame: &Bytes,
    at: &mut usize,
    limits: &ReplyLimits,
    depth: usize,
) -> Result<Reply, ProtocolError> {
    let Some((head, used)) = read_head(&frame[*at..], limits, usize::MAX)? else {
        return Err(ProtocolError::BadLineEnding);
    };
    let base = *at;
    *at += used;
    Ok(match head {
        Head::Nil => Reply::Nil,
        Head::Scalar { kind, start, end } => {
            let payload = frame.slice(base + start..base + end);
            match kind {
                b'+' => Reply::Simple(payload),
                b'-' | b'!' => Reply::Error(payload),
                b':' => Reply::Int(parse_i64(&payload)?),
                b',' => Reply::Double(parse_double(&payload)?),
                b'#' => Reply::Bool(&payload[..] == b"t"),
                b'(' => Reply::BigNumber(payload),
                b'=' => Reply::Verbatim {
                    format: payload.slice(..3),
                    text: payload.slice(4..),
                },
                _ => Reply::Bulk(payload),
            }
        }
        Head::Aggregate { kind, children } => {
            if depth >= limits.max_depth {
                return Err(ProtocolError::TooDeep);
            }
            let mut items = Vec::with_capacity(children.min(MAX_PREALLOC));
            for _ in 0..children {
                items.push(build(frame, at, limits, depth + 1)?);
            }
            match kind {
                b'%' => {
                    let mut pairs = Vec::with_capacity(items.len() / 2);
                    let mut it = items.into_iter();
                    while let (Some(k), Some(v)) = (it.next(), it.next()) {
                        pairs.push((k, v));
                    }
                    Reply::Map(pairs)
                }
                b'~' => Reply::Set(items),
                b'>' => Reply::Push(items),
                b'|' => items.pop().unwrap_or(Reply::Nil), // the annotated value; attributes dropped
                _ => Reply::Array(items),
            }
        }
    })
}

/// Appends `args` as a RESP array of bulk strings (the only form Redis accepts for commands)
/// to `out`, without intermediate allocation.
pub fn encode_command<A: AsRef<[u8]>>(out: &mut BytesMut, args: &[A]) {
    let total: usize = args.iter().map(|a| a.as_ref().len() + 16).sum();
    out.reserve(total + 16);
    out.put_u8(b'*');
    put_decimal(out, args.len());
    out.put_slice(b"\r\n");
    for arg in args {
        let arg = arg.as_ref();
        out.put_u8(b'$');
        put_decimal(out, arg.len());
        out.put_slice(b"\r\n");
        out.put_slice(arg);
        out.put_slice(b"\r\n");
    }
}

/// The encoded length of `args` (what [`encode_command`] appends).
pub fn encoded_len<A: AsRef<[u8]>>(args: &[A]) -> usize {
    let digits = |n: usize| n.checked_ilog10().unwrap_or(0) as usize + 1;
    let mut n = 1 + digits(args.len()) + 2;
    for arg in args {
        let len = arg.as_ref().len();
        n += 1 + digits(len) + 2 + len + 2;
    }
    n
}

fn put_decimal(out: &mut BytesMut, mut n: usize) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.put_slice(&digits[i..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_all(input: &[u8], limits: ReplyLimits) -> Result<Vec<Reply>, ProtocolError> {
        let mut p = Parser::new(limits);
        p.feed(input);
        let mut out = Vec::new();
        while let Some(r) = p.next()? {
            out.push(r);
        }
        Ok(out)
    }

    fn one(input: &[u8]) -> Reply {
        let mut v = parse_all(input, ReplyLimits::default()).expect("valid");
        assert_eq!(v.len(), 1, "one reply in {input:?}");
        v.pop().expect("one")
    }

    fn bulk(s: &str) -> Reply {
        Reply::Bulk(Bytes::copy_from_slice(s.as_bytes()))
    }

    #[test]
    fn parses_every_resp2_and_resp3_type() {
        let cases: Vec<(&[u8], Reply)> = vec![
            (b"+OK\r\n", Reply::Simple(Bytes::from_static(b"OK"))),
            (
                b"-ERR bad\r\n",
                Reply::Error(Bytes::from_static(b"ERR bad")),
            ),
            (b":-42\r\n", Reply::Int(-42)),
            (b"$3\r\nfoo\r\n", bulk("foo")),
            (b"$0\r\n\r\n", bulk("")),
            (b"$-1\r\n", Reply::Nil),
            (b"*-1\r\n", Reply::Nil),
            (b"_\r\n", Reply::Nil),
            (b"*0\r\n", Reply::Array(vec![])),
            (
                b"*2\r\n$1\r\na\r\n:1\r\n",
                Reply::Array(vec![bulk("a"), Reply::Int(1)]),
            ),
            (
                b"%1\r\n+k\r\n#t\r\n",
                Reply::Map(vec![(
                    Reply::Simple(Bytes::from_static(b"k")),
                    Reply::Bool(true),
                )]),
            ),
            (b"~1\r\n#f\r\n", Reply::Set(vec![Reply::Bool(false)])),
            (b",1.5\r\n", Reply::Double(1.5)),
            (b",-inf\r\n", Reply::Double(f64::NEG_INFINITY)),
            (
                b"(123456789012345678901234567890\r\n",
                Reply::BigNumber(Bytes::from_static(b"123456789012345678901234567890")),
            ),
            (
                b"!9\r\nERR oops!\r\n",
                Reply::Error(Bytes::from_static(b"ERR oops!")),
            ),
            (
                b"=7\r\ntxt:abc\r\n",
                Reply::Verbatim {
                    format: Bytes::from_static(b"txt"),
                    text: Bytes::from_static(b"abc"),
                },
            ),
            (
                b">2\r\n$7\r\nmessage\r\n$1\r\nx\r\n",
                Reply::Push(vec![bulk("message"), bulk("x")]),
            ),
            // An attribute is dropped; the value it annotates is returned.
            (b"|1\r\n+ttl\r\n:3\r\n$2\r\nhi\r\n", bulk("hi")),
            (
                b"*2\r\n*1\r\n:1\r\n*0\r\n",
                Reply::Array(vec![
                    Reply::Array(vec![Reply::Int(1)]),
                    Reply::Array(vec![]),
                ]),
            ),
        ];
        for (input, want) in cases {
            assert_eq!(one(input), want, "{:?}", String::from_utf8_lossy(input));
        }
    }

    #[test]
    fn bulk_strings_are_slices_of_the_read_buffer() {
        let mut p = Parser::new(ReplyLimits::default());
        p.feed(b"*2\r\n$5\r\nhello\r\n$5\r\nworld\r\n");
        let Some(Reply::Array(items)) = p.next().expect("valid") else {
            panic!("an array");
        };
        let (Reply::Bulk(a), Reply::Bulk(b)) = (&items[0], &items[1]) else {
            panic!("bulks");
        };
        // Same allocation: b starts 6 bytes (`\r\n$5\r\n`) after a ends.
        assert_eq!(b.as_ptr() as usize - a.as_ptr() as usize, 5 + 6);
    }

    #[test]
    fn partial_input_needs_more_and_then_completes() {
        let input = b"*3\r\n$3\r\nfoo\r\n:7\r\n+OK\r\n";
        for cut in 0..input.len() {
            let mut p = Parser::new(ReplyLimits::default());
            p.feed(&input[..cut]);
            assert_eq!(p.next(), Ok(None), "cut at {cut}");
            p.feed(&input[cut..]);
            assert!(
                matches!(p.next(), Ok(Some(Reply::Array(_)))),
                "cut at {cut}"
            );
            assert_eq!(p.buffered(), 0);
        }
    }

    #[test]
    fn garbage_is_a_protocol_error() {
        let limits = ReplyLimits::default();
        let cases: Vec<(&[u8], ProtocolError)> = vec![
            (b"hello\r\n", ProtocolError::BadType(b'h')),
            (b":12a\r\n", ProtocolError::BadInteger),
            (b":\r\n", ProtocolError::BadInteger),
            (b":99999999999999999999\r\n", ProtocolError::BadInteger),
            (b"$-2\r\n", ProtocolError::BadInteger),
            (b"$3\r\nfooXY", ProtocolError::BadLineEnding),
            (b"+OK\rX", ProtocolError::BadLineEnding),
            (b"+OK\n", ProtocolError::BadLineEnding),
            (b"#x\r\n", ProtocolError::BadScalar),
            (b"_x\r\n", ProtocolError::BadScalar),
            (b",abc\r\n", ProtocolError::BadDouble),
            (b"$?\r\n", ProtocolError::Unsupported),
            (b"*?\r\n", ProtocolError::Unsupported),
            (b"%-1\r\n", ProtocolError::BadInteger),
            (b"=2\r\nab\r\n", ProtocolError::BadScalar),
        ];
        for (input, want) in cases {
            assert_eq!(
                parse_all(input, limits),
                Err(want),
                "{:?}",
                String::from_utf8_lossy(input)
            );
        }
    }

    #[test]
    fn bounds_are_protocol_errors() {
        let small = ReplyLimits {
            max_bulk_len: 10,
            max_reply_size: 64,
            max_elements: 5,
            max_depth: 3,
        };
        assert_eq!(
            parse_all(b"$11\r\n", small),
            Err(ProtocolError::BulkTooLong)
        );
        assert_eq!(
            parse_all(b"*5\r\n:1\r\n:2\r\n:3\r\n:4\r\n:5\r\n", small),
            Err(ProtocolError::TooManyElements)
        );
        assert_eq!(
            parse_all(b"*1\r\n*1\r\n*1\r\n*1\r\n:1\r\n", small),
            Err(ProtocolError::TooDeep)
        );
        assert_eq!(
            parse_all(
                b"*3\r\n*1\r\n*1\r\n:1\r\n:2\r\n:3\r\n",
                ReplyLimits {
                    max_depth: 3,
                    ..ReplyLimits::default()
                }
            )
            .map(|v| v.len()),
            Ok(1),
            "depth 3 is allowed"
        );
        // A simple string that never ends: bounded by max_reply_size.
        let mut p = Parser::new(small);
        p.feed(b"+");
        p.feed(&[b'a'; 100]);
        assert_eq!(p.next(), Err(ProtocolError::ReplyTooLarge));
        assert_eq!(p.next(), Err(ProtocolError::ReplyTooLarge), "stays failed");
        // An array announcing 2^40 elements is refused before anything is allocated.
        assert_eq!(
            parse_all(b"*1099511627776\r\n", ReplyLimits::default()),
            Err(ProtocolError::TooManyElements)
        );
        // The whole reply, not only each bulk, is bounded.
        let limits = ReplyLimits {
            max_bulk_len: 40,
            max_reply_size: 64,
            ..ReplyLimits::default()
        };
        let mut input = b"*2\r\n$40\r\n".to_vec();
        input.extend_from_slice(&[b'x'; 40]);
        input.extend_from_slice(b"\r\n$40\r\n");
        input.extend_from_slice(&[b'y'; 40]);
        input.extend_from_slice(b"\r\n");
        assert_eq!(parse_all(&input, limits), Err(ProtocolError::ReplyTooLarge));
    }

    #[test]
    fn encodes_commands_as_arrays_of_bulk_strings() {
        let mut out = BytesMut::new();
        encode_command(&mut out, &["SET", "key", ""]);
        assert_eq!(&out[..], b"*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$0\r\n\r\n");
        assert_eq!(encoded_len(&["SET", "key", ""]), out.len());
        let big = vec![b'z'; 12345];
        let mut out = BytesMut::new();
        encode_command(&mut out, &[&b"x"[..], &big[..]]);
        assert_eq!(encoded_len(&[&b"x"[..], &big[..]]), out.len());
        assert!(out.starts_with(b"*2\r\n$1\r\nx\r\n$12345\r\nzzz"));
    }

    mod props {
        use super::*;
        use proptest::prelude::*;

        /// Encodes a reply the way a server would (RESP3 for the RESP3-only kinds).
        fn encode_reply(r: &Reply, out: &mut Vec<u8>) {
            match r {
                Reply::Simple(s) => {
                    out.push(b'+');
                    out.extend_from_slice(s);
                    out.extend_from_slice(b"\r\n");
                }
                Reply::Error(s) => {
                    out.push(b'-');
                    out.extend_from_slice(s);
                    out.extend_from_slice(b"\r\n");
                }
                Reply::Int(i) => out.extend_from_slice(format!(":{i}\r\n").as_bytes()),
                Reply::Bulk(b) => {
                    out.extend_from_slice(format!("${}\r\n", b.len()).as_bytes());
                    out.extend_from_slice(b);
                    out.extend_from_slice(b"\r\n");
                }
                Reply::Nil => out.extend_from_slice(b"_\r\n"),
                Reply::Array(v) | Reply::Set(v) | Reply::Push(v) => {
                    let t = match r {
                        Reply::Array(_) => '*',
                        Reply::Set(_) => '~',
                        _ => '>',
                    };
                    out.extend_from_slice(format!("{t}{}\r\n", v.len()).as_bytes());
                    for x in v {
                        encode_reply(x, out);
                    }
                }
                Reply::Map(kv) => {
                    out.extend_from_slice(format!("%{}\r\n", kv.len()).as_bytes());
                    for (k, v) in kv {
                        encode_reply(k, out);
                        encode_reply(v, out);
                    }
                }
                Reply::Double(d) => out.extend_from_slice(format!(",{d:?}\r\n").as_bytes()),
                Reply::Bool(b) => out.extend_from_slice(if *b { b"#t\r\n" } else { b"#f\r\n" }),
                Reply::BigNumber(n) => {
                    out.push(b'(');
                    out.extend_from_slice(n);
                    out.extend_from_slice(b"\r\n");
                }
                Reply::Verbatim { format, text } => {
                    out.extend_from_slice(format!("={}\r\n", text.len() + 4).as_bytes());
                    out.extend_from_slice(format);
                    out.push(b':');
                    out.extend_from_slice(text);
                    out.extend_from_slice(b"\r\n");
                }
            }
        }

        fn line() -> impl Strategy<Value = Bytes> {
            "[a-zA-Z0-9 ]{0,12}".prop_map(|s| Bytes::from(s.into_bytes()))
        }

        fn reply() -> impl Strategy<Value = Reply> {
            let leaf = prop_oneof![
                line().prop_map(Reply::Simple),
                line().prop_map(Reply::Error),
                any::<i64>().prop_map(Reply::Int),
                proptest::collection::vec(any::<u8>(), 0..40)
                    .prop_map(|v| Reply::Bulk(Bytes::from(v))),
                Just(Reply::Nil),
                (-1e9f64..1e9).prop_map(Reply::Double),
                any::<bool>().prop_map(Reply::Bool),
                "[1-9][0-9]{0,30}".prop_map(|s| Reply::BigNumber(Bytes::from(s.into_bytes()))),
                line().prop_map(|t| Reply::Verbatim {
                    format: Bytes::from_static(b"txt"),
                    text: t
                }),
            ];
            leaf.prop_recursive(4, 48, 6, |inner| {
                prop_oneof![
                    proptest::collection::vec(inner.clone(), 0..6).prop_map(Reply::Array),
                    proptest::collection::vec(inner.clone(), 0..6).prop_map(Reply::Set),
                    proptest::collection::vec(inner.clone(), 0..6).prop_map(Reply::Push),
                    proptest::collection::vec((inner.clone(), inner), 0..4).prop_map(Reply::Map),
                ]
            })
        }

        proptest! {
            #[test]
            fn random_splits_of_a_valid_stream_parse_identically(
                replies in proptest::collection::vec(reply(), 1..8),
                cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..12),
            ) {
                let mut stream = Vec::new();
                for r in &replies {
                    encode_reply(r, &mut stream);
                }
                let mut points: Vec<usize> = cuts.iter().map(|c| c.index(stream.len() + 1)).collect();
                points.push(0);
                points.push(stream.len());
                points.sort_unstable();
                let mut p = Parser::new(ReplyLimits::default());
                let mut got = Vec::new();
                for w in points.windows(2) {
                    p.feed(&stream[w[0]..w[1]]);
                    while let Some(r) = p.next().expect("valid stream") {
                        got.push(r);
                    }
                }
                prop_assert_eq!(got, replies);
                prop_assert_eq!(p.buffered(), 0);
            }

            #[test]
            fn garbage_never_panics(
                data in proptest::collection::vec(any::<u8>(), 0..200),
                chunk in 1usize..17,
            ) {
                let limits = ReplyLimits { max_bulk_len: 64, max_reply_size: 128, max_elements: 32, max_depth: 4 };
                let mut p = Parser::new(limits);
                for part in data.chunks(chunk) {
                    p.feed(part);
                    while let Ok(Some(_)) = p.next() {}
                    prop_assert!(p.buffered() <= limits.max_reply_size + chunk);
                }
            }

            #[test]
            fn mutated_valid_streams_never_panic(
                r in reply(),
                flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
            ) {
                let mut stream = Vec::new();
                encode_reply(&r, &mut stream);
                for (at, byte) in flips {
                    let i = at.index(stream.len());
                    stream[i] = byte;
                }
                let mut p = Parser::new(ReplyLimits::default());
                p.feed(&stream);
                while let Ok(Some(_)) = p.next() {}
            }
        }
    }
}

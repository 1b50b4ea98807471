//! Reading one response from bytes fed in any pieces (RFC 9112 framing); no I/O.

use std::ops::Range;

use bytes::{Bytes, BytesMut};

use super::ClientError;
use crate::http::decode::{BodyDecoder, DecodeLimits, Decoded, Trailers};
use crate::http::error::ParseError;
use crate::http::parse::{parse_decimal, transfer_coding, BodyKind, Version};

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
                let token = transfer_coding(coding).ok_or(bad("invalid Transfer-Encoding"))?;
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
pub(super) struct ResponseReader {
    head_request: bool,
    max_head_size: usize,
    limits: DecodeLimits,
    buf: BytesMut,
    state: Reading,
    /// The response was completed by `feed` (so its framing was not until-close) and no byte
    /// followed it: the connection is at a message boundary and may carry another exchange.
    clean_end: bool,
}

impl ResponseReader {
    pub(super) fn new(
        head_request: bool,
        max_head_size: usize,
        max_body_size: u64,
    ) -> ResponseReader {
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
            clean_end: false,
        }
    }

    /// Takes `data`; `Ok(Some)` once the response is complete.
    pub(super) fn feed(&mut self, data: &[u8]) -> Result<Option<ClientResponse>, ClientError> {
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
            self.clean_end = matches!(result, Ok(Some(_))) && self.buf.is_empty();
        }
        result
    }

    /// Whether the response ended at a message boundary: completed by [`ResponseReader::feed`]
    /// (not read until close, not failed) with no byte after it. Only then may the connection
    /// carry another request.
    pub(super) fn ended_cleanly(&self) -> bool {
        self.clean_end
    }

    /// The server closed: the end of an until-close body, otherwise [`ClientError::Closed`].
    pub(super) fn eof(&mut self) -> Result<ClientResponse, ClientError> {
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
                            // The state is `Body` (matched above): take its head and body out.
                            let done = std::mem::replace(&mut self.state, Reading::Done);
                            return Ok(match done {
                                Reading::Body { head, body, .. } => Some(ClientResponse {
                                    head,
                                    body: body.freeze(),
                                    trailers,
                                }),
                                _ => None,
                            });
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
                let mut head = head;
                // RFC 9112 §6.3: with Transfer-Encoding, Content-Length does not frame the body
                // and must be removed; exposing it would let a caller (a proxy) forward a
                // length that does not match the decoded body.
                if head
                    .fields()
                    .any(|(n, _)| n.eq_ignore_ascii_case(b"transfer-encoding"))
                {
                    let bytes = head.bytes.clone();
                    head.headers
                        .retain(|(n, _)| !bytes[n.clone()].eq_ignore_ascii_case(b"content-length"));
                }
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

#[cfg(test)]
mod tests {
    use super::*;

    const BAD: fn(&'static str) -> ClientError = ClientError::BadResponse;

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
    fn ends_cleanly_only_at_a_message_boundary() {
        let table: &[(&[u8], bool)] = &[
            (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi", true),
            (b"HTTP/1.1 204 No Content\r\n\r\n", true),
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\n0\r\n\r\n",
                true,
            ),
            (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhiX", false),
            (b"HTTP/1.1 204 No Content\r\n\r\nHTTP/1.1 200 OK\r\n", false),
            (b"HTTP/1.1 200 OK\r\n\r\nuntil close", false),
            (b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhi", false),
            (b"HTTP/1.1 2x0 OK\r\n\r\n", false),
        ];
        for &(input, clean) in table {
            let mut reader = ResponseReader::new(false, 1024, 1024);
            let _ = reader.feed(input);
            assert_eq!(
                reader.ended_cleanly(),
                clean,
                "{}",
                String::from_utf8_lossy(input)
            );
        }
        // An until-close body completed by EOF is complete, but not at a boundary.
        let mut reader = ResponseReader::new(false, 1024, 1024);
        let _ = reader.feed(b"HTTP/1.1 200 OK\r\n\r\nbody");
        assert!(reader.eof().is_ok());
        assert!(!reader.ended_cleanly());
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
}

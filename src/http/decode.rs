//! Body decoding: `Content-Length` and strict `chunked`, for request bodies (the server) and
//! response bodies (the client, `client/reader.rs`).
//!
//! The chunked decoder is a byte-at-a-time state machine for the framing
//! (size line, extensions, CRLFs) and hands out chunk data as zero-copy
//! `Bytes` split off the read buffer, as soon as any of it is there. It
//! follows llhttp with every leniency off: no spaces after the chunk size,
//! no bare LF, extensions that keep to the RFC 9112 §7.1.1 grammar, and
//! trailer fields checked like header fields.
//!
//! Because the state lives in the decoder and not in the buffer, feeding a
//! body in any number of pieces yields the same data and the same outcome.

use bytes::{Buf, Bytes, BytesMut};

use super::error::ParseError;
use super::parse::{is_tchar, parse_field_line, BodyKind};

/// Limits for one request body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DecodeLimits {
    /// Most bytes of chunk extensions on one size line (from the first `;`
    /// to the CR); more is [`ParseError::BadChunkExtension`].
    pub max_chunk_ext: usize,
    /// Most bytes of trailer fields, not counting the final CRLF; more is
    /// [`ParseError::TrailersTooLarge`].
    pub max_trailer_size: usize,
    /// Most body bytes; more is [`ParseError::BodyTooLarge`] (413). Node has
    /// no such limit, so the default is `u64::MAX`.
    pub max_body_size: u64,
}

impl Default for DecodeLimits {
    fn default() -> Self {
        DecodeLimits {
            max_chunk_ext: 1024,
            max_trailer_size: 16 * 1024,
            max_body_size: u64::MAX,
        }
    }
}

/// Trailer fields as `(name, value)` in the order received.
pub type Trailers = Vec<(String, Vec<u8>)>;

/// One step of decoding.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decoded {
    /// Body bytes, split off the front of the buffer (never empty).
    Data(Bytes),
    /// The buffer holds no more of the body; call again after reading.
    NeedMore,
    /// The body is complete; trailers (if chunked) are available from
    /// [`BodyDecoder::take_trailers`]. Bytes after the body stay in the
    /// buffer.
    Done,
}

/// Where the chunked decoder is inside the framing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Step {
    /// In `chunk-size`; `digits` hex digits seen so far.
    Size { digits: u32 },
    /// In a `chunk-ext-name`; `empty` until its first byte.
    ExtName { empty: bool },
    /// Right after `=`.
    ExtValueStart,
    /// In a token `chunk-ext-val`.
    ExtToken,
    /// Inside a quoted-string `chunk-ext-val`.
    ExtQuoted,
    /// After a backslash inside a quoted-string.
    ExtQuotedEscape,
    /// After the closing quote.
    ExtQuotedEnd,
    /// After the CR of the size line.
    SizeLf,
    /// In chunk data, this many bytes left.
    Data { remaining: u64 },
    /// Expecting the CR after chunk data.
    DataCr,
    /// Expecting the LF after chunk data.
    DataLf,
    /// After `0 CRLF`: trailer section, `scanned` bytes searched so far.
    Trailers { scanned: usize },
    /// Body complete.
    Done,
    /// Failed; every later call returns the same error.
    Failed(ParseError),
}

/// State of a chunked body (opaque).
///
/// Invariant: once [`BodyDecoder::decode`] returned an error, it returns
/// that error again and consumes nothing more.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChunkedState {
    step: Step,
    /// Size of the chunk whose size line is being read.
    size: u64,
    /// Extension bytes on the current size line.
    ext_len: usize,
    /// Body bytes announced so far.
    total: u64,
    trailers: Trailers,
}

/// Decoder for one request body.
///
/// Invariant: [`decode`](Self::decode) never consumes bytes past the end of
/// the body, so a pipelined request after it stays in the buffer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BodyDecoder {
    /// `Content-Length`: this many bytes are still to come.
    Length {
        /// Bytes left in the body.
        remaining: u64,
    },
    /// `Transfer-Encoding: chunked`.
    Chunked(ChunkedState),
    /// Nothing left to decode.
    Done,
}

impl BodyDecoder {
    /// A decoder for a body framed as `kind`.
    pub fn new(kind: BodyKind) -> Self {
        match kind {
            BodyKind::Empty | BodyKind::Length(0) => BodyDecoder::Done,
            BodyKind::Length(n) => BodyDecoder::Length { remaining: n },
            BodyKind::Chunked => BodyDecoder::Chunked(ChunkedState {
                step: Step::Size { digits: 0 },
                size: 0,
                ext_len: 0,
                total: 0,
                trailers: Vec::new(),
            }),
        }
    }

    /// Decodes from the front of `buf`: consumes framing bytes and splits
    /// off data (no copy). Returns after at most one `Data`.
    pub fn decode(
        &mut self,
        buf: &mut BytesMut,
        limits: &DecodeLimits,
    ) -> Result<Decoded, ParseError> {
        match self {
            BodyDecoder::Done => Ok(Decoded::Done),
            BodyDecoder::Length { remaining } => {
                if *remaining == 0 {
                    *self = BodyDecoder::Done;
                    return Ok(Decoded::Done);
                }
                if *remaining > limits.max_body_size {
                    return Err(ParseError::BodyTooLarge);
                }
                if buf.is_empty() {
                    return Ok(Decoded::NeedMore);
                }
                let n = (*remaining).min(buf.len() as u64);
                *remaining -= n;
                Ok(Decoded::Data(buf.split_to(n as usize).freeze()))
            }
            BodyDecoder::Chunked(state) => {
                if let Step::Failed(e) = state.step {
                    return Err(e);
                }
                state
                    .run(buf, limits)
                    .inspect_err(|&e| state.step = Step::Failed(e))
            }
        }
    }

    /// Whether the whole body has been decoded (`decode` would return
    /// `Done`).
    pub fn is_done(&self) -> bool {
        match self {
            BodyDecoder::Done => true,
            BodyDecoder::Length { remaining } => *remaining == 0,
            BodyDecoder::Chunked(state) => state.step == Step::Done,
        }
    }

    /// Takes the trailer fields of a finished chunked body as
    /// `(name, value)`, in order; empty when there were none or the body is
    /// not chunked. Names are tokens and values have no CTL but HTAB.
    pub fn take_trailers(&mut self) -> Trailers {
        match self {
            BodyDecoder::Chunked(state) => std::mem::take(&mut state.trailers),
            _ => Vec::new(),
        }
    }
}

fn hex_value(b: u8) -> Option<u64> {
    match b {
        b'0'..=b'9' => Some(u64::from(b - b'0')),
        b'a'..=b'f' => Some(u64::from(b - b'a' + 10)),
        b'A'..=b'F' => Some(u64::from(b - b'A' + 10)),
        _ => None,
    }
}

/// `qdtext = HTAB / SP / %x21 / %x23-5B / %x5D-7E / obs-text`
fn is_qdtext(b: u8) -> bool {
    matches!(b, b'\t' | b' ' | 0x21 | 0x23..=0x5b | 0x5d..=0x7e | 0x80..=0xff)
}

/// `quoted-pair = "\" ( HTAB / SP / VCHAR / obs-text )`
fn is_quotable(b: u8) -> bool {
    matches!(b, b'\t' | b' ' | 0x21..=0x7e | 0x80..=0xff)
}

impl ChunkedState {
    /// Runs the state machine until data, a need for bytes, the end, or an
    /// error. Framing bytes are consumed only on `Ok`.
    fn run(&mut self, buf: &mut BytesMut, limits: &DecodeLimits) -> Result<Decoded, ParseError> {
        let mut i = 0;
        loop {
            match self.step {
                Step::Data { remaining } => {
                    buf.advance(i);
                    if buf.is_empty() {
                        return Ok(Decoded::NeedMore);
                    }
                    let n = remaining.min(buf.len() as u64);
                    self.step = match remaining - n {
                        0 => Step::DataCr,
                        left => Step::Data { remaining: left },
                    };
                    return Ok(Decoded::Data(buf.split_to(n as usize).freeze()));
                }
                Step::Trailers { scanned } => {
                    buf.advance(i);
                    return self.trailers(buf, scanned, limits);
                }
                Step::Done => {
                    buf.advance(i);
                    return Ok(Decoded::Done);
                }
                Step::Failed(e) => return Err(e),
                _ => {}
            }
            let Some(&b) = buf.get(i) else {
                buf.advance(i);
                return Ok(Decoded::NeedMore);
            };
            i += 1;
            self.step = self.next_step(b, limits)?;
        }
    }

    /// The framing transition for one byte.
    fn next_step(&mut self, b: u8, limits: &DecodeLimits) -> Result<Step, ParseError> {
        let ext = ParseError::BadChunkExtension;
        if matches!(
            self.step,
            Step::ExtName { .. }
                | Step::ExtValueStart
                | Step::ExtToken
                | Step::ExtQuoted
                | Step::ExtQuotedEscape
                | Step::ExtQuotedEnd
        ) && b != b'\r'
        {
            self.ext_len += 1;
            if self.ext_len > limits.max_chunk_ext {
                return Err(ext);
            }
        }
        let next = match (self.step, b) {
            (Step::Size { digits }, _) => match (hex_value(b), b) {
                (Some(v), _) => {
                    if self.size > u64::MAX >> 4 {
                        return Err(ParseError::BadChunkSize);
                    }
                    self.size = self.size << 4 | v;
                    Step::Size {
                        digits: digits.saturating_add(1),
                    }
                }
                (None, _) if digits == 0 => return Err(ParseError::BadChunkSize),
                (None, b';') => {
                    self.ext_len = 1;
                    if self.ext_len > limits.max_chunk_ext {
                        return Err(ext);
                    }
                    Step::ExtName { empty: true }
                }
                (None, b'\r') => Step::SizeLf,
                (None, b'\n') => return Err(ParseError::MissingChunkCrlf),
                (None, _) => return Err(ParseError::BadChunkSize),
            },
            (Step::ExtName { .. }, b) if is_tchar(b) => Step::ExtName { empty: false },
            (Step::ExtName { empty: false }, b'=') => Step::ExtValueStart,
            (Step::ExtName { empty: false }, b';') => Step::ExtName { empty: true },
            (Step::ExtName { empty: false }, b'\r') => Step::SizeLf,
            (Step::ExtName { .. }, _) => return Err(ext),
            (Step::ExtValueStart, b'"') => Step::ExtQuoted,
            (Step::ExtValueStart, b) if is_tchar(b) => Step::ExtToken,
            (Step::ExtValueStart, _) => return Err(ext),
            (Step::ExtToken, b) if is_tchar(b) => Step::ExtToken,
            (Step::ExtToken | Step::ExtQuotedEnd, b';') => Step::ExtName { empty: true },
            (Step::ExtToken | Step::ExtQuotedEnd, b'\r') => Step::SizeLf,
            (Step::ExtToken | Step::ExtQuotedEnd, _) => return Err(ext),
            (Step::ExtQuoted, b'"') => Step::ExtQuotedEnd,
            (Step::ExtQuoted, b'\\') => Step::ExtQuotedEscape,
            (Step::ExtQuoted, b) if is_qdtext(b) => Step::ExtQuoted,
            (Step::ExtQuoted, _) => return Err(ext),
            (Step::ExtQuotedEscape, b) if is_quotable(b) => Step::ExtQuoted,
            (Step::ExtQuotedEscape, _) => return Err(ext),
            (Step::SizeLf, b'\n') => {
                let size = std::mem::take(&mut self.size);
                self.ext_len = 0;
                if size == 0 {
                    Step::Trailers { scanned: 0 }
                } else {
                    self.total = self.total.saturating_add(size);
                    if self.total > limits.max_body_size {
                        return Err(ParseError::BodyTooLarge);
                    }
                    Step::Data { remaining: size }
                }
            }
            (Step::DataCr, b'\r') => Step::DataLf,
            (Step::DataLf, b'\n') => Step::Size { digits: 0 },
            (Step::SizeLf | Step::DataCr | Step::DataLf, _) => {
                return Err(ParseError::MissingChunkCrlf)
            }
            // Handled in `run` before any byte is read.
            (Step::Data { .. } | Step::Trailers { .. } | Step::Done | Step::Failed(_), _) => {
                self.step
            }
        };
        Ok(next)
    }

    /// Reads the trailer section: field lines, then an empty line. Like the
    /// head scan, it searches only new bytes and rejects bare CR and LF in
    /// byte order; the fields are checked once the section is complete.
    fn trailers(
        &mut self,
        buf: &mut BytesMut,
        mut scanned: usize,
        limits: &DecodeLimits,
    ) -> Result<Decoded, ParseError> {
        // The final CRLF is not counted against the limit.
        let limit = buf.len().min(limits.max_trailer_size.saturating_add(2));
        let end = loop {
            let hay = buf.get(scanned..limit).unwrap_or(&[]);
            let Some(off) = memchr::memchr2(b'\r', b'\n', hay) else {
                scanned = scanned.max(limit);
                break None;
            };
            let p = scanned + off;
            match (buf.get(p), buf.get(p + 1)) {
                (Some(b'\n'), _) => return Err(ParseError::BareLf),
                (_, None) => {
                    scanned = p;
                    break None;
                }
                (_, Some(b'\n')) => {}
                (_, Some(_)) => return Err(ParseError::BareCr),
            }
            if p == 0 || buf.get(p.wrapping_sub(2)..p) == Some(b"\r\n") {
                break Some(p + 2);
            }
            scanned = p + 2;
        };
        let Some(end) = end else {
            if buf.len() > limit {
                return Err(ParseError::TrailersTooLarge);
            }
            self.step = Step::Trailers { scanned };
            return Ok(Decoded::NeedMore);
        };
        if end > limits.max_trailer_size.saturating_add(2) {
            return Err(ParseError::TrailersTooLarge);
        }
        let section = buf.get(..end - 2).unwrap_or(&[]);
        let mut trailers = Vec::new();
        for line in section.split(|&b| b == b'\n') {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if line.is_empty() {
                continue;
            }
            let (name, value) = parse_field_line(line)?;
            let name = String::from_utf8_lossy(&line[name]).into_owned();
            trailers.push((name, line[value].to_vec()));
        }
        buf.advance(end);
        self.trailers = trailers;
        self.step = Step::Done;
        Ok(Decoded::Done)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ParseError::*;

    /// Body, trailers and the bytes after the body, or the error.
    type Outcome = Result<(Vec<u8>, Trailers, Vec<u8>), ParseError>;

    /// Decodes `input` fed in the given pieces; returns the body, the
    /// trailers and the bytes left after it, or the error.
    fn decode_pieces(
        kind: BodyKind,
        input: &[u8],
        cuts: &[usize],
        limits: &DecodeLimits,
    ) -> Outcome {
        let mut decoder = BodyDecoder::new(kind);
        let mut buf = BytesMut::new();
        let mut body = Vec::new();
        let mut from = 0;
        for &cut in cuts.iter().chain(std::iter::once(&input.len())) {
            buf.extend_from_slice(&input[from..cut]);
            from = cut;
            loop {
                match decoder.decode(&mut buf, limits)? {
                    Decoded::Data(data) => {
                        assert!(!data.is_empty());
                        body.extend_from_slice(&data);
                    }
                    Decoded::NeedMore => break,
                    Decoded::Done => {
                        assert!(decoder.is_done());
                        // Remaining input is appended so "left" is complete.
                        buf.extend_from_slice(&input[from..]);
                        return Ok((body, decoder.take_trailers(), buf.to_vec()));
                    }
                }
            }
        }
        Ok((body, vec![], b"<incomplete>".to_vec()))
    }

    fn chunked(input: &[u8]) -> Outcome {
        decode_pieces(BodyKind::Chunked, input, &[], &DecodeLimits::default())
    }

    #[test]
    fn decodes_valid_chunked_bodies() {
        type Case<'a> = (&'a [u8], &'a [u8], &'a [(&'a str, &'a [u8])], &'a [u8]);
        let table: &[Case<'_>] = &[
            (b"0\r\n\r\n", b"", &[], b""),
            (b"5\r\nhello\r\n0\r\n\r\n", b"hello", &[], b""),
            (
                b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\nGET",
                b"hello world",
                &[],
                b"GET",
            ),
            (b"A\r\n0123456789\r\n0\r\n\r\n", b"0123456789", &[], b""),
            (b"a\r\n0123456789\r\n00\r\n\r\n", b"0123456789", &[], b""),
            (b"0001\r\nx\r\n0\r\n\r\n", b"x", &[], b""),
            (b"1;a\r\nx\r\n0\r\n\r\n", b"x", &[], b""),
            (b"1;a=b;c\r\nx\r\n0;d=\"q\\\"t\"\r\n\r\n", b"x", &[], b""),
            (b"1;a=\"\"\r\nx\r\n0\r\n\r\n", b"x", &[], b""),
            (b"1\r\n\r\r\n0\r\n\r\n", b"\r", &[], b""),
            (
                b"0\r\nDigest: abc\r\nX-T:\t1 \r\n\r\nnext",
                b"",
                &[("Digest", b"abc"), ("X-T", b"1")],
                b"next",
            ),
            (b"2\r\n\r\n\r\n0\r\n\r\n", b"\r\n", &[], b""),
        ];
        for &(input, body, trailers, left) in table {
            let (got_body, got_trailers, got_left) =
                chunked(input).unwrap_or_else(|e| panic!("{input:?}: {e:?}"));
            assert_eq!(got_body, body, "{input:?}");
            let got: Vec<(&str, &[u8])> = got_trailers
                .iter()
                .map(|(n, v)| (n.as_str(), v.as_slice()))
                .collect();
            assert_eq!(got, trailers, "{input:?}");
            assert_eq!(got_left, left, "{input:?}");
        }
    }

    #[test]
    fn rejects_malformed_chunked_bodies() {
        let table: &[(&[u8], ParseError)] = &[
            (b"\r\n", BadChunkSize),
            (b"x\r\n", BadChunkSize),
            (b";a\r\n", BadChunkSize),
            (b"-1\r\n", BadChunkSize),
            (b"+1\r\n", BadChunkSize),
            (b" 1\r\n", BadChunkSize),
            (b"1 \r\nx\r\n0\r\n\r\n", BadChunkSize),
            (b"1\t\r\nx\r\n0\r\n\r\n", BadChunkSize),
            (b"0x1\r\n", BadChunkSize),
            (b"10000000000000000\r\n", BadChunkSize),
            (b"ffffffffffffffff0\r\n", BadChunkSize),
            (b"1\nx\r\n0\r\n\r\n", MissingChunkCrlf),
            (b"1\r\rx", MissingChunkCrlf),
            (b"1\r\nxy\r\n", MissingChunkCrlf),
            (b"1\r\nx\n0\r\n\r\n", MissingChunkCrlf),
            (b"1\r\nx\r0\r\n\r\n", MissingChunkCrlf),
            (b"1\r\nx0\r\n\r\n", MissingChunkCrlf),
            (b"1;\r\nx\r\n", BadChunkExtension),
            (b"1; a\r\nx\r\n", BadChunkExtension),
            (b"1 ;a\r\nx\r\n", BadChunkSize),
            (b"1;a =b\r\nx\r\n", BadChunkExtension),
            (b"1;a=\r\nx\r\n", BadChunkExtension),
            (b"1;a=b c\r\nx\r\n", BadChunkExtension),
            (b"1;a=\"b\r\nx\r\n", BadChunkExtension),
            (b"1;a=\"b\"c\r\nx\r\n", BadChunkExtension),
            (b"1;a=\"\x01\"\r\nx\r\n", BadChunkExtension),
            (b"1;a\x00\r\nx\r\n", BadChunkExtension),
            (b"1;=b\r\nx\r\n", BadChunkExtension),
            (b"1;a;;b\r\nx\r\n", BadChunkExtension),
            (b"0\r\nX: y\n\r\n", BareLf),
            (b"0\r\n\n", BareLf),
            (b"0\r\nX: y\r\r\n\r\n", BareCr),
            (b"0\r\n\r\r", BareCr),
            (b"0\r\n folded: x\r\n\r\n", ObsFold),
            (b"0\r\nX : y\r\n\r\n", SpaceBeforeColon),
            (b"0\r\nNoColon\r\n\r\n", BadHeaderName),
            (b"0\r\nX: a\x00b\r\n\r\n", BadHeaderValue),
            (b"0\r\nX: a\x7f\r\n\r\n", BadHeaderValue),
        ];
        for &(input, expected) in table {
            assert_eq!(
                chunked(input).map(|_| ()),
                Err(expected),
                "{:?}",
                String::from_utf8_lossy(input)
            );
        }
    }

    #[test]
    fn bounds_extensions_trailers_and_body() {
        let limits = DecodeLimits {
            max_chunk_ext: 8,
            max_trailer_size: 16,
            max_body_size: 10,
        };
        let run = |input: &[u8]| decode_pieces(BodyKind::Chunked, input, &[], &limits).map(|r| r.0);
        assert_eq!(run(b"1;abcdefg\r\nx\r\n0\r\n\r\n"), Ok(b"x".to_vec()));
        assert_eq!(run(b"1;abcdefgh\r\nx\r\n0\r\n\r\n"), Err(BadChunkExtension));
        assert_eq!(run(b"1;a;b;c;de\r\n"), Err(BadChunkExtension));
        assert_eq!(run(b"0\r\nX: 0123456789a\r\n\r\n"), Ok(vec![]));
        assert_eq!(run(b"0\r\nX: 0123456789ab\r\n\r\n"), Err(TrailersTooLarge));
        assert_eq!(
            run(b"0\r\nX: 0123456789abcdefghijklmnop"),
            Err(TrailersTooLarge)
        );
        assert_eq!(
            run(b"a\r\n0123456789\r\n0\r\n\r\n"),
            Ok(b"0123456789".to_vec())
        );
        assert_eq!(run(b"a\r\n0123456789\r\n1\r\n"), Err(BodyTooLarge));
        assert_eq!(
            decode_pieces(BodyKind::Length(11), b"01234567890", &[], &limits).map(|r| r.0),
            Err(BodyTooLarge)
        );
    }

    #[test]
    fn emits_partial_chunk_data_without_waiting() {
        let mut decoder = BodyDecoder::new(BodyKind::Chunked);
        let limits = DecodeLimits::default();
        let mut buf = BytesMut::from(&b"a\r\n012"[..]);
        assert_eq!(
            decoder.decode(&mut buf, &limits),
            Ok(Decoded::Data(Bytes::from_static(b"012")))
        );
        assert_eq!(decoder.decode(&mut buf, &limits), Ok(Decoded::NeedMore));
        buf.extend_from_slice(b"3456789\r\n0\r\n\r\nPOST");
        assert_eq!(
            decoder.decode(&mut buf, &limits),
            Ok(Decoded::Data(Bytes::from_static(b"3456789")))
        );
        assert!(!decoder.is_done());
        assert_eq!(decoder.decode(&mut buf, &limits), Ok(Decoded::Done));
        assert!(decoder.is_done());
        assert_eq!(&buf[..], b"POST");
        assert_eq!(decoder.decode(&mut buf, &limits), Ok(Decoded::Done));
        assert_eq!(&buf[..], b"POST");
    }

    #[test]
    fn decodes_content_length_bodies_without_overrunning() {
        let limits = DecodeLimits::default();
        let mut decoder = BodyDecoder::new(BodyKind::Length(5));
        let mut buf = BytesMut::from(&b"hel"[..]);
        assert_eq!(
            decoder.decode(&mut buf, &limits),
            Ok(Decoded::Data(Bytes::from_static(b"hel")))
        );
        assert_eq!(decoder.decode(&mut buf, &limits), Ok(Decoded::NeedMore));
        buf.extend_from_slice(b"loGET /");
        assert_eq!(
            decoder.decode(&mut buf, &limits),
            Ok(Decoded::Data(Bytes::from_static(b"lo")))
        );
        assert!(decoder.is_done());
        assert_eq!(decoder.decode(&mut buf, &limits), Ok(Decoded::Done));
        assert_eq!(&buf[..], b"GET /");
        for kind in [BodyKind::Empty, BodyKind::Length(0)] {
            let mut decoder = BodyDecoder::new(kind);
            assert!(decoder.is_done());
            assert_eq!(decoder.decode(&mut buf, &limits), Ok(Decoded::Done));
            assert!(decoder.take_trailers().is_empty());
        }
    }

    #[test]
    fn repeats_a_chunked_error() {
        let limits = DecodeLimits::default();
        let mut decoder = BodyDecoder::new(BodyKind::Chunked);
        let mut buf = BytesMut::from(&b"1 \r\n"[..]);
        assert_eq!(decoder.decode(&mut buf, &limits), Err(BadChunkSize));
        buf.extend_from_slice(b"x\r\n0\r\n\r\n");
        assert_eq!(decoder.decode(&mut buf, &limits), Err(BadChunkSize));
    }

    #[test]
    fn gives_the_same_result_at_every_split_point() {
        let inputs: &[&[u8]] = &[
            b"5\r\nhello\r\n6;ext=\"a\\\"b\"\r\n world\r\n0\r\nT: v\r\nU: w\r\n\r\nNEXT",
            b"1f\r\n0123456789abcdef0123456789abcde\r\n0\r\n\r\n",
            b"3\r\nabc\r\n0\r\n\r\n",
            b"3\r\nabc\n0\r\n\r\n",
            b"3;a=b c\r\nabc\r\n0\r\n\r\n",
            b"0\r\nT: v\r\nbad\r\n\r\n",
            b"0\r\nT: v\r\r\n",
            b"0\r\nT: v\n",
        ];
        let limits = DecodeLimits::default();
        for input in inputs {
            let whole = decode_pieces(BodyKind::Chunked, input, &[], &limits);
            for a in 0..=input.len() {
                assert_eq!(
                    decode_pieces(BodyKind::Chunked, input, &[a], &limits),
                    whole,
                    "{input:?} at {a}"
                );
                for b in a..=input.len() {
                    assert_eq!(
                        decode_pieces(BodyKind::Chunked, input, &[a, b], &limits),
                        whole,
                        "{input:?} at {a},{b}"
                    );
                }
            }
            let every: Vec<usize> = (1..input.len()).collect();
            assert_eq!(
                decode_pieces(BodyKind::Chunked, input, &every, &limits),
                whole
            );
        }
    }

    /// Cross-module tests: heads and bodies read from one buffer.
    mod stream {
        use super::super::super::parse::{HeadParser, Limits};
        use super::*;
        use proptest::prelude::*;

        #[derive(Debug, PartialEq, Eq)]
        enum Ev {
            Head(String, BodyKind),
            Data(Vec<u8>),
            End(Vec<(String, Vec<u8>)>),
            Upgrade(Vec<u8>),
            Err(ParseError),
        }

        /// Reads requests and bodies from `input` delivered in pieces ending
        /// at `cuts`, the way a connection would, until an error or upgrade.
        fn drive(input: &[u8], cuts: &[usize]) -> Vec<Ev> {
            let (limits, body_limits) = (Limits::default(), DecodeLimits::default());
            let mut parser = HeadParser::new();
            let mut decoder: Option<BodyDecoder> = None;
            let mut buf = BytesMut::new();
            let mut events = Vec::new();
            let mut from = 0;
            for &cut in cuts.iter().chain(std::iter::once(&input.len())) {
                let cut = cut.clamp(from, input.len());
                buf.extend_from_slice(&input[from..cut]);
                from = cut;
                for _ in 0..10_000 {
                    if let Some(d) = decoder.as_mut() {
                        match d.decode(&mut buf, &body_limits) {
                            Ok(Decoded::Data(data)) => match events.last_mut() {
                                Some(Ev::Data(prev)) => prev.extend_from_slice(&data),
                                _ => events.push(Ev::Data(data.to_vec())),
                            },
                            Ok(Decoded::NeedMore) => break,
                            Ok(Decoded::Done) => {
                                events.push(Ev::End(d.take_trailers()));
                                decoder = None;
                            }
                            Err(e) => {
                                // Errors stick: nothing more is decoded.
                                assert_eq!(d.decode(&mut buf, &body_limits), Err(e));
                                events.push(Ev::Err(e));
                                return events;
                            }
                        }
                    } else {
                        match parser.parse(&mut buf, &limits) {
                            Ok(Some(head)) => {
                                let name = format!("{} {}", head.method().as_str(), head.target());
                                events.push(Ev::Head(name, head.body_kind()));
                                if head.is_upgrade() {
                                    buf.extend_from_slice(&input[from..]);
                                    events.push(Ev::Upgrade(buf.to_vec()));
                                    return events;
                                }
                                decoder = Some(BodyDecoder::new(head.body_kind()));
                            }
                            Ok(None) => break,
                            Err(e) => {
                                // Errors stick: no request is parsed after.
                                let len = buf.len();
                                assert_eq!(parser.parse(&mut buf, &limits).map(|_| ()), Err(e));
                                assert_eq!(buf.len(), len);
                                events.push(Ev::Err(e));
                                return events;
                            }
                        }
                    }
                }
            }
            events
        }

        const PIPELINE: &[u8] = b"POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello\
            PUT /b?c=1 HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n\
            3;x=y\r\nabc\r\n2\r\nde\r\n0\r\nT: 1\r\n\r\n\
            \r\nGET /c HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n";

        #[test]
        fn parses_pipelined_requests_in_order_with_body_boundaries() {
            let expected = vec![
                Ev::Head("POST /a".into(), BodyKind::Length(5)),
                Ev::Data(b"hello".to_vec()),
                Ev::End(vec![]),
                Ev::Head("PUT /b?c=1".into(), BodyKind::Chunked),
                Ev::Data(b"abcde".to_vec()),
                Ev::End(vec![("T".into(), b"1".to_vec())]),
                Ev::Head("GET /c".into(), BodyKind::Empty),
                Ev::End(vec![]),
            ];
            assert_eq!(drive(PIPELINE, &[]), expected);
            for cut in 0..=PIPELINE.len() {
                assert_eq!(drive(PIPELINE, &[cut]), expected, "cut at {cut}");
            }
            let every: Vec<usize> = (1..PIPELINE.len()).collect();
            assert_eq!(drive(PIPELINE, &every), expected);
        }

        #[test]
        fn hands_over_the_bytes_after_an_upgrade() {
            let input = b"GET /ws HTTP/1.1\r\nHost: h\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n\x81\x05hello";
            assert_eq!(
                drive(input, &[]),
                vec![
                    Ev::Head("GET /ws".into(), BodyKind::Empty),
                    Ev::Upgrade(b"\x81\x05hello".to_vec())
                ]
            );
        }

        const SEEDS: &[&[u8]] = &[
            PIPELINE,
            b"GET / HTTP/1.1\r\nHost: h\r\n\r\nGET /2 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
            b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n1;a=\"b\"\r\nx\r\n0\r\n\r\n",
            b"OPTIONS * HTTP/1.1\r\nHost: [::1]:80\r\nContent-Length: 3\r\n\r\nabcGET http://h/p HTTP/1.1\r\nHost: h\r\n\r\n",
        ];

        /// Bytes that matter to the grammar, to make mutations interesting.
        const SPECIAL: &[u8] = b"\r\n \t:;=\",0aF\x00\x7f\x80/?*";

        fn mutate(seed: &[u8], ops: &[(u8, usize, u8)]) -> Vec<u8> {
            let mut out = seed.to_vec();
            for &(op, at, byte) in ops {
                let at = if out.is_empty() {
                    0
                } else {
                    at % (out.len() + 1)
                };
                let byte = if byte < 128 {
                    SPECIAL[byte as usize % SPECIAL.len()]
                } else {
                    byte
                };
                match op % 4 {
                    0 if at < out.len() => out[at] = byte,
                    1 => out.insert(at, byte),
                    2 if at < out.len() => {
                        out.remove(at);
                    }
                    3 => {
                        let end = (at + usize::from(byte % 16)).min(out.len());
                        let copy = out[at..end].to_vec();
                        out.splice(at..at, copy);
                    }
                    _ => {}
                }
            }
            out
        }

        proptest! {
            #![proptest_config(ProptestConfig { cases: 4000, ..ProptestConfig::default() })]

            #[test]
            fn arbitrary_bytes_never_panic_and_split_consistently(
                input in proptest::collection::vec(any::<u8>(), 0..400),
                cut in any::<usize>(),
                cut2 in any::<usize>(),
            ) {
                let whole = drive(&input, &[]);
                let cut = cut % (input.len() + 1);
                let cut2 = cut + cut2 % (input.len() - cut + 1);
                prop_assert_eq!(drive(&input, &[cut, cut2]), whole);
            }

            #[test]
            fn mutated_requests_never_panic_and_split_consistently(
                seed in 0..SEEDS.len(),
                ops in proptest::collection::vec((any::<u8>(), any::<usize>(), any::<u8>()), 1..5),
                cut in any::<usize>(),
            ) {
                let input = mutate(SEEDS[seed], &ops);
                let whole = drive(&input, &[]);
                let cut = cut % (input.len() + 1);
                prop_assert_eq!(drive(&input, &[cut]), whole);
            }
        }
    }
}

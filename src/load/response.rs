//! A small, fast HTTP/1.1 response parser for the load generator.
//!
//! It only frames responses: status code, where the head ends, `Content-Length` or `chunked`
//! body length, and whether the server will close. Header values other than those three are
//! never looked at, and body bytes are skipped without being copied. The caller keeps the
//! bytes it has not consumed (a partial head or chunk-size line, a few hundred bytes at most)
//! and feeds them again with the next read.

/// Largest response head accepted; more is [`ResponseError::HeadTooLarge`].
pub const MAX_HEAD: usize = 64 * 1024;
/// Longest chunk-size or trailer line accepted.
const MAX_LINE: usize = 4 * 1024;

/// Why a response could not be framed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResponseError {
    /// The status line is not `HTTP/1.x NNN ...`.
    StatusLine,
    /// A `Content-Length` that is not a decimal number.
    ContentLength,
    /// A chunk-size line that is not hex, or chunk data not followed by CRLF.
    Chunk,
    /// The head (or a chunk line) is longer than the limit.
    HeadTooLarge,
}

/// One complete response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Completed {
    /// The status code.
    pub status: u16,
    /// The server will close the connection after it (`Connection: close`, an HTTP/1.0
    /// response without keep-alive, or a body delimited by the close).
    pub close: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Head,
    Length { remaining: u64 },
    ChunkSize,
    ChunkData { remaining: u64 },
    ChunkCrlf,
    Trailer,
    UntilClose,
}

/// Incremental response framer; one per connection.
#[derive(Clone, Debug)]
pub struct ResponseParser {
    state: State,
    /// The status and close flag of the response whose body is being read.
    current: Completed,
    /// Responses answer HEAD requests: no body whatever the head says.
    head_request: bool,
}

impl ResponseParser {
    /// A parser for responses to requests with method `HEAD` (`head_request`) or another.
    pub fn new(head_request: bool) -> ResponseParser {
        ResponseParser {
            state: State::Head,
            current: Completed {
                status: 0,
                close: false,
            },
            head_request,
        }
    }

    /// Whether the parser is between responses.
    pub fn is_idle(&self) -> bool {
        self.state == State::Head
    }

    /// Frames the next response from the front of `input`.
    ///
    /// Returns how many bytes were consumed and the response when one completed. `None`
    /// means every byte that could be used was used: the unconsumed rest (a partial head or
    /// line) must be passed again with more bytes after it. Interim `1xx` responses are
    /// skipped.
    ///
    /// # Errors
    /// A response that cannot be framed; the connection is unusable after it.
    pub fn parse(&mut self, input: &[u8]) -> Result<(usize, Option<Completed>), ResponseError> {
        let mut off = 0;
        loop {
            let rest = &input[off..];
            match self.state {
                State::Head => {
                    let Some((len, done)) = self.parse_head(rest)? else {
                        return Ok((off, None));
                    };
                    off += len;
                    if let Some(c) = done {
                        return Ok((off, Some(c)));
                    }
                }
                State::Length { remaining } => {
                    let n = remaining.min(rest.len() as u64);
                    off += n as usize;
                    if n == remaining {
                        return Ok((off, Some(self.finish())));
                    }
                    self.state = State::Length {
                        remaining: remaining - n,
                    };
                    return Ok((off, None));
                }
                State::ChunkSize => {
                    let Some(line) = take_line(rest)? else {
                        return Ok((off, None));
                    };
                    off += line;
                    let size = parse_chunk_size(&rest[..line - 2])?;
                    self.state = if size == 0 {
                        State::Trailer
                    } else {
                        State::ChunkData { remaining: size }
                    };
                }
                State::ChunkData { remaining } => {
                    let n = remaining.min(rest.len() as u64);
                    off += n as usize;
                    if n < remaining {
                        self.state = State::ChunkData {
                            remaining: remaining - n,
                        };
                        return Ok((off, None));
                    }
                    self.state = State::ChunkCrlf;
                }
                State::ChunkCrlf => {
                    if rest.len() < 2 {
                        return Ok((off, None));
                    }
                    if &rest[..2] != b"\r\n" {
                        return Err(ResponseError::Chunk);
                    }
                    off += 2;
                    self.state = State::ChunkSize;
                }
                State::Trailer => {
                    let Some(line) = take_line(rest)? else {
                        return Ok((off, None));
                    };
                    off += line;
                    if line == 2 {
                        return Ok((off, Some(self.finish())));
                    }
                }
                State::UntilClose => return Ok((input.len(), None)),
            }
        }
    }

    /// The peer closed: a body delimited by the close is complete now.
    pub fn eof(&mut self) -> Option<Completed> {
        (self.state == State::UntilClose).then(|| self.finish())
    }

    fn finish(&mut self) -> Completed {
        self.state = State::Head;
        self.current
    }

    /// Parses a whole head at the front of `input`. `None`: not all of it is there yet.
    /// Otherwise the head's length and, when the response has no body, the response.
    #[allow(clippy::type_complexity)]
    fn parse_head(
        &mut self,
        input: &[u8],
    ) -> Result<Option<(usize, Option<Completed>)>, ResponseError> {
        // Status line: "HTTP/1.x NNN".
        let Some(first) = memchr::memchr(b'\n', input) else {
            return if input.len() > MAX_HEAD {
                Err(ResponseError::HeadTooLarge)
            } else {
                Ok(None)
            };
        };
        if first < 12 || !input.starts_with(b"HTTP/1.") || input[8] != b' ' {
            return Err(ResponseError::StatusLine);
        }
        let http10 = input[7] == b'0';
        let digits = &input[9..12];
        if !digits.iter().all(u8::is_ascii_digit) {
            return Err(ResponseError::StatusLine);
        }
        let status = digits
            .iter()
            .fold(0u16, |n, d| n * 10 + u16::from(d - b'0'));
        let mut length: Option<u64> = None;
        let mut chunked = false;
        let mut close = http10;
        let mut pos = first + 1;
        loop {
            let Some(nl) = memchr::memchr(b'\n', &input[pos..]) else {
                return if input.len() > MAX_HEAD {
                    Err(ResponseError::HeadTooLarge)
                } else {
                    Ok(None)
                };
            };
            let line = &input[pos..pos + nl];
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            pos += nl + 1;
            if line.is_empty() {
                break;
            }
            let Some(colon) = memchr::memchr(b':', line) else {
                continue;
            };
            let name = &line[..colon];
            let value = line[colon + 1..].trim_ascii();
            match name.len() {
                14 if name.eq_ignore_ascii_case(b"content-length") => {
                    length = Some(parse_decimal(value)?);
                }
                17 if name.eq_ignore_ascii_case(b"transfer-encoding") => {
                    chunked = value
                        .rsplit(|&b| b == b',')
                        .next()
                        .is_some_and(|t| t.trim_ascii().eq_ignore_ascii_case(b"chunked"));
                }
                10 if name.eq_ignore_ascii_case(b"connection") => {
                    for token in value.split(|&b| b == b',') {
                        let token = token.trim_ascii();
                        if token.eq_ignore_ascii_case(b"close") {
                            close = true;
                        } else if token.eq_ignore_ascii_case(b"keep-alive") && http10 {
                            close = false;
                        }
                    }
                }
                _ => {}
            }
        }
        if (100..200).contains(&status) && status != 101 {
            // Interim response: the real one follows.
            return Ok(Some((pos, None)));
        }
        self.current = Completed { status, close };
        let no_body = self.head_request || status == 204 || status == 304 || status == 101;
        self.state = if no_body {
            State::Head
        } else if chunked {
            State::ChunkSize
        } else {
            match length {
                Some(0) => State::Head,
                Some(n) => State::Length { remaining: n },
                None => {
                    self.current.close = true;
                    State::UntilClose
                }
            }
        };
        if self.state == State::Head {
            Ok(Some((pos, Some(self.current))))
        } else {
            Ok(Some((pos, None)))
        }
    }
}

/// The length of the CRLF-terminated line at the front of `input`, CRLF included.
fn take_line(input: &[u8]) -> Result<Option<usize>, ResponseError> {
    match memchr::memchr(b'\n', input) {
        Some(nl) if nl >= 1 && input[nl - 1] == b'\r' => Ok(Some(nl + 1)),
        Some(_) => Err(ResponseError::Chunk),
        None if input.len() > MAX_LINE => Err(ResponseError::HeadTooLarge),
        None => Ok(None),
    }
}

fn parse_decimal(value: &[u8]) -> Result<u64, ResponseError> {
    if value.is_empty() || value.len() > 19 || !value.iter().all(u8::is_ascii_digit) {
        return Err(ResponseError::ContentLength);
    }
    Ok(value.iter().fold(0u64, |n, d| n * 10 + u64::from(d - b'0')))
}

/// `1*HEXDIG [ ";" ext ]` without the CRLF.
fn parse_chunk_size(line: &[u8]) -> Result<u64, ResponseError> {
    let end = memchr::memchr(b';', line).unwrap_or(line.len());
    let hex = line[..end].trim_ascii();
    if hex.is_empty() || hex.len() > 15 {
        return Err(ResponseError::Chunk);
    }
    let mut n = 0u64;
    for &b in hex {
        let d = match b {
            b'0'..=b'9' => b - b'0',
            b'a'..=b'f' => b - b'a' + 10,
            b'A'..=b'F' => b - b'A' + 10,
            _ => return Err(ResponseError::Chunk),
        };
        n = n * 16 + u64::from(d);
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `input` in pieces of `step` bytes the way a connection does (keeping the
    /// unconsumed rest), returning the responses.
    fn feed(input: &[u8], step: usize, head: bool) -> Result<Vec<Completed>, ResponseError> {
        let mut p = ResponseParser::new(head);
        let mut pending = Vec::new();
        let mut out = Vec::new();
        for piece in input.chunks(step.max(1)) {
            pending.extend_from_slice(piece);
            let mut off = 0;
            loop {
                let (n, done) = p.parse(&pending[off..])?;
                off += n;
                match done {
                    Some(c) => out.push(c),
                    None => break,
                }
            }
            pending.drain(..off);
        }
        out.extend(p.eof());
        Ok(out)
    }

    const OK: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nDate: x\r\n\r\nhello";
    const CHUNKED: &[u8] =
        b"HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n5;a=b\r\nhello\r\n1\r\n!\r\n0\r\nX: y\r\n\r\n";

    #[test]
    fn frames_pipelined_responses_split_at_every_byte() {
        let mut input = Vec::new();
        input.extend_from_slice(OK);
        input.extend_from_slice(CHUNKED);
        input.extend_from_slice(b"HTTP/1.1 100 Continue\r\n\r\n");
        input.extend_from_slice(b"HTTP/1.1 204 No Content\r\nContent-Length: 9\r\n\r\n");
        input.extend_from_slice(
            b"HTTP/1.1 500 Oops\r\nConnection: close\r\ncontent-length: 0\r\n\r\n",
        );
        for step in 1..=input.len() {
            let got = feed(&input, step, false).unwrap();
            let statuses: Vec<u16> = got.iter().map(|c| c.status).collect();
            assert_eq!(statuses, [200, 201, 204, 500], "step {step}");
            assert!(got[3].close && !got[0].close, "step {step}");
        }
    }

    #[test]
    fn reads_a_close_delimited_body_until_eof() {
        let got = feed(b"HTTP/1.0 200 OK\r\n\r\nsome body", 4, false).unwrap();
        assert_eq!(
            got,
            [Completed {
                status: 200,
                close: true
            }]
        );
    }

    #[test]
    fn skips_the_body_of_a_head_response() {
        let got = feed(b"HTTP/1.1 200 OK\r\nContent-Length: 13\r\n\r\n", 7, true).unwrap();
        assert_eq!(
            got,
            [Completed {
                status: 200,
                close: false
            }]
        );
    }

    #[test]
    fn rejects_what_it_cannot_frame() {
        assert_eq!(
            feed(b"HTTX/1.1 200 OK\r\n\r\n", 100, false),
            Err(ResponseError::StatusLine)
        );
        assert_eq!(
            feed(b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n", 100, false),
            Err(ResponseError::ContentLength)
        );
        assert_eq!(
            feed(
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
                100,
                false
            ),
            Err(ResponseError::Chunk)
        );
    }
}

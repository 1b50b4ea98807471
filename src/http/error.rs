//! The one error type of the protocol layer.
//!
//! Every way a request can be malformed has its own variant, so the server
//! can pick the response status with [`ParseError::status`] without looking
//! at text. All variants are `Copy` and carry no data.

use std::fmt;

/// Why a request head, chunked body or trailer section was rejected.
///
/// Invariant: [`ParseError::status`] is always a 4xx or 5xx code that the
/// server may send as-is (with `Connection: close`) before closing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParseError {
    /// The request line is not `method SP request-target SP HTTP-version`,
    /// the method is not a token, or the target has invalid bytes or the
    /// wrong form for the method (400).
    BadRequestLine,
    /// The HTTP-version is malformed or is `HTTP/1.x` with `x` other than
    /// 0 or 1 (400, as Node answers `HTTP/1.7`).
    BadVersion,
    /// The HTTP-version has a major version other than 1, e.g. `HTTP/2.0`
    /// (505).
    UnsupportedVersion,
    /// The method is a valid token but not one of the methods llhttp knows
    /// (501).
    UnknownMethod,
    /// The request line is longer than `Limits::max_request_line` (414).
    UriTooLong,
    /// The head is longer than `Limits::max_head_size` (431).
    HeadTooLarge,
    /// The head has more than `Limits::max_headers` fields (431).
    TooManyHeaders,
    /// A line ends in LF without a preceding CR (400).
    BareLf,
    /// A CR is not followed by LF (400).
    BareCr,
    /// A field line starts with SP or HTAB (obsolete line folding) (400).
    ObsFold,
    /// Whitespace between a field name and its colon (400).
    SpaceBeforeColon,
    /// A field name is empty, has a non-`tchar` byte, or the line has no
    /// colon (400).
    BadHeaderName,
    /// A field value has a control byte other than HTAB, or DEL (400).
    BadHeaderValue,
    /// An HTTP/1.1 request has no `Host` field (400).
    MissingHost,
    /// More than one `Host` field (400).
    DuplicateHost,
    /// The `Host` value is not `uri-host [":" port]` (400).
    BadHost,
    /// A `Content-Length` value is not `1*DIGIT` (or a list of them), or
    /// overflows `u64` (400).
    BadContentLength,
    /// `Content-Length` values that differ (400).
    DuplicateContentLength,
    /// Both `Transfer-Encoding` and `Content-Length` are present (400).
    TransferEncodingWithContentLength,
    /// `Transfer-Encoding` is empty, malformed, lists `chunked` twice or
    /// does not end with `chunked` (400).
    BadTransferEncoding,
    /// `Transfer-Encoding` on an HTTP/1.0 request (400).
    ChunkedOnHttp10,
    /// `Transfer-Encoding` lists a coding other than `chunked` before the final `chunked`
    /// (`gzip, chunked`): one the server does not implement (501, RFC 9112 §6.1).
    UnsupportedTransferCoding,
    /// A chunk size is not `1*HEXDIG`, has trailing bytes, or overflows
    /// `u64` (400).
    BadChunkSize,
    /// A chunk extension breaks the `;name[=token|quoted-string]` grammar or
    /// is longer than `DecodeLimits::max_chunk_ext` (400).
    BadChunkExtension,
    /// A chunk-size line or chunk data is not followed by CRLF (400).
    MissingChunkCrlf,
    /// The trailer section is longer than `DecodeLimits::max_trailer_size`
    /// (431).
    TrailersTooLarge,
    /// The body is longer than `DecodeLimits::max_body_size` (413).
    BodyTooLarge,
    /// The request carries an `Expect` the server does not support (417).
    /// Not returned by the parser; the server uses it for
    /// `RequestHead::has_unsupported_expectation`.
    ExpectationFailed,
}

impl ParseError {
    /// The response status code for this error: 400 unless the variant
    /// documents another.
    pub fn status(self) -> u16 {
        match self {
            ParseError::UnsupportedVersion => 505,
            ParseError::UnknownMethod | ParseError::UnsupportedTransferCoding => 501,
            ParseError::UriTooLong => 414,
            ParseError::HeadTooLarge
            | ParseError::TooManyHeaders
            | ParseError::TrailersTooLarge => 431,
            ParseError::BodyTooLarge => 413,
            ParseError::ExpectationFailed => 417,
            _ => 400,
        }
    }

    /// A short fixed description, as used by `Display`.
    pub fn reason(self) -> &'static str {
        match self {
            ParseError::BadRequestLine => "invalid request line",
            ParseError::BadVersion => "invalid HTTP version",
            ParseError::UnsupportedVersion => "unsupported HTTP version",
            ParseError::UnknownMethod => "unknown method",
            ParseError::UriTooLong => "request line too long",
            ParseError::HeadTooLarge => "request head too large",
            ParseError::TooManyHeaders => "too many headers",
            ParseError::BareLf => "bare LF line ending",
            ParseError::BareCr => "bare CR",
            ParseError::ObsFold => "obsolete line folding",
            ParseError::SpaceBeforeColon => "whitespace before colon",
            ParseError::BadHeaderName => "invalid header name",
            ParseError::BadHeaderValue => "invalid header value",
            ParseError::MissingHost => "missing Host header",
            ParseError::DuplicateHost => "duplicate Host header",
            ParseError::BadHost => "invalid Host header",
            ParseError::BadContentLength => "invalid Content-Length",
            ParseError::DuplicateContentLength => "conflicting Content-Length",
            ParseError::TransferEncodingWithContentLength => {
                "Transfer-Encoding with Content-Length"
            }
            ParseError::BadTransferEncoding => "invalid Transfer-Encoding",
            ParseError::ChunkedOnHttp10 => "Transfer-Encoding on HTTP/1.0",
            ParseError::UnsupportedTransferCoding => "unsupported transfer coding",
            ParseError::BadChunkSize => "invalid chunk size",
            ParseError::BadChunkExtension => "invalid chunk extension",
            ParseError::MissingChunkCrlf => "missing CRLF in chunked body",
            ParseError::TrailersTooLarge => "trailers too large",
            ParseError::BodyTooLarge => "body too large",
            ParseError::ExpectationFailed => "expectation failed",
        }
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.reason())
    }
}

impl std::error::Error for ParseError {}

#[cfg(test)]
mod tests {
    use super::ParseError::*;

    #[test]
    fn maps_each_error_to_its_status() {
        let table = [
            (BadRequestLine, 400),
            (BadVersion, 400),
            (UnsupportedVersion, 505),
            (UnknownMethod, 501),
            (UnsupportedTransferCoding, 501),
            (UriTooLong, 414),
            (HeadTooLarge, 431),
            (TooManyHeaders, 431),
            (BareLf, 400),
            (MissingHost, 400),
            (TransferEncodingWithContentLength, 400),
            (TrailersTooLarge, 431),
            (BodyTooLarge, 413),
            (ExpectationFailed, 417),
        ];
        for (err, status) in table {
            assert_eq!(err.status(), status, "{err:?}");
        }
    }

    #[test]
    fn displays_the_fixed_reason() {
        assert_eq!(BareLf.to_string(), "bare LF line ending");
        assert_eq!(UriTooLong.to_string(), UriTooLong.reason());
    }
}

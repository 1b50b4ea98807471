//! Server side of the opening handshake (RFC 6455 §4.2).
//!
//! HTTP parsing is the caller's job: [`validate_request`] only needs the
//! method and a (case-insensitive) header lookup.

use bytes::{BufMut, BytesMut};

/// GUID appended to `Sec-WebSocket-Key` before hashing (§1.3).
pub const WS_GUID: &[u8] = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 (with padding) of exactly 20 bytes (a SHA-1 digest).
fn base64_20(input: &[u8; 20]) -> [u8; 28] {
    let mut out = [b'='; 28];
    let mut o = 0;
    for chunk in input.chunks(3) {
        let b = [
            chunk.first().copied().unwrap_or(0),
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        let sextets = [(n >> 18) & 63, (n >> 12) & 63, (n >> 6) & 63, n & 63];
        // 3 bytes -> 4 chars, 2 bytes -> 3 chars + '='.
        for &s in sextets.iter().take(chunk.len() + 1) {
            if let Some(slot) = out.get_mut(o) {
                *slot = B64[s as usize];
            }
            o += 1;
        }
        o += 3 - chunk.len();
    }
    out
}

fn b64_value(c: u8) -> Option<u8> {
    match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    }
}

/// `true` if `key` is standard base64 of exactly 16 bytes: 22 alphabet
/// characters followed by `==`. (Non-zero trailing bits are tolerated.)
fn is_valid_key(key: &[u8]) -> bool {
    key.len() == 24
        && key.ends_with(b"==")
        && key
            .get(..22)
            .is_some_and(|k| k.iter().all(|&c| b64_value(c).is_some()))
}

/// Computes `Sec-WebSocket-Accept`: base64(SHA-1(key ++ GUID)).
pub fn accept_key(sec_websocket_key: &[u8]) -> [u8; 28] {
    let mut h = sha1_smol::Sha1::new();
    h.update(sec_websocket_key);
    h.update(WS_GUID);
    base64_20(&h.digest().bytes())
}

/// Why an upgrade request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HandshakeError {
    /// Method is not `GET`.
    NotGet,
    /// `Upgrade` header missing or without the `websocket` token.
    MissingUpgrade,
    /// `Connection` header missing or without the `upgrade` token.
    MissingConnectionUpgrade,
    /// `Sec-WebSocket-Version` missing or not `13` (answer 426 with
    /// `Sec-WebSocket-Version: 13`).
    UnsupportedVersion,
    /// `Sec-WebSocket-Key` missing.
    MissingKey,
    /// `Sec-WebSocket-Key` does not base64-decode to 16 bytes.
    BadKey,
    /// `Sec-WebSocket-Key` sent more than once (§4.2.1: exactly once).
    DuplicateKey,
    /// The request is HTTP/1.0 (§4.1: HTTP/1.1 or higher).
    OldHttpVersion,
}

impl HandshakeError {
    /// HTTP status code to answer with (400, or 426 for a bad version).
    pub fn status(&self) -> u16 {
        match self {
            HandshakeError::UnsupportedVersion => 426,
            _ => 400,
        }
    }

    /// Short description, usable as a response body.
    pub fn reason(&self) -> &'static str {
        match self {
            HandshakeError::NotGet => "WebSocket upgrade requires GET",
            HandshakeError::MissingUpgrade => "missing Upgrade: websocket",
            HandshakeError::MissingConnectionUpgrade => "missing Connection: upgrade",
            HandshakeError::UnsupportedVersion => "unsupported Sec-WebSocket-Version",
            HandshakeError::MissingKey => "missing Sec-WebSocket-Key",
            HandshakeError::BadKey => "invalid Sec-WebSocket-Key",
            HandshakeError::DuplicateKey => "Sec-WebSocket-Key sent more than once",
            HandshakeError::OldHttpVersion => "WebSocket upgrade requires HTTP/1.1",
        }
    }
}

impl std::fmt::Display for HandshakeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.reason())
    }
}

impl std::error::Error for HandshakeError {}

fn trim(v: &[u8]) -> &[u8] {
    v.trim_ascii()
}

/// `true` if the comma separated header value has a token equal to `token`
/// (ASCII case-insensitive, surrounding whitespace ignored).
fn has_token(value: &[u8], token: &[u8]) -> bool {
    value
        .split(|&b| b == b',')
        .any(|t| trim(t).eq_ignore_ascii_case(token))
}

/// Whether an `Upgrade` field value offers `protocol`: a comma list with a
/// token equal to it (ASCII case-insensitive; a `/version` suffix is not
/// matched, `websocket` has none).
pub fn offers_protocol(upgrade: Option<&[u8]>, protocol: &str) -> bool {
    upgrade.is_some_and(|v| has_token(v, protocol.as_bytes()))
}

/// What [`validate_request`] needs to know about the HTTP request besides
/// single header values.
#[derive(Clone, Copy, Debug)]
pub struct RequestLine<'a> {
    /// The method, e.g. `"GET"`.
    pub method: &'a str,
    /// HTTP/1.1 or later (§4.1 refuses HTTP/1.0).
    pub http_1_1: bool,
    /// How many `Sec-WebSocket-Key` fields the request carries (§4.2.1:
    /// exactly one).
    pub key_fields: usize,
}

/// Validates an upgrade request and returns the `Sec-WebSocket-Accept` value.
///
/// `header(name)` must look headers up case-insensitively (names are passed
/// in canonical case, e.g. `"Sec-WebSocket-Key"`). The method must be `GET`
/// on HTTP/1.1 or later, `Upgrade` must contain the token `websocket` and
/// `Connection` the token `upgrade` (comma lists, case-insensitive);
/// `Sec-WebSocket-Version` must be exactly `13` and `Sec-WebSocket-Key` sent
/// exactly once. Values are trimmed of surrounding whitespace. `Host` and
/// `Origin` are not checked.
///
/// The returned slices carry their own lifetime `'h` (the request buffer);
/// with the elided form `Fn(&str) -> Option<&[u8]>` they would have to
/// borrow from the *name* argument, i.e. effectively be `'static`.
pub fn validate_request<'h>(
    line: RequestLine<'_>,
    header: impl Fn(&str) -> Option<&'h [u8]>,
) -> Result<[u8; 28], HandshakeError> {
    if line.method != "GET" {
        return Err(HandshakeError::NotGet);
    }
    if !line.http_1_1 {
        return Err(HandshakeError::OldHttpVersion);
    }
    if !header("Upgrade").is_some_and(|v| has_token(v, b"websocket")) {
        return Err(HandshakeError::MissingUpgrade);
    }
    if !header("Connection").is_some_and(|v| has_token(v, b"upgrade")) {
        return Err(HandshakeError::MissingConnectionUpgrade);
    }
    if header("Sec-WebSocket-Version").map(trim) != Some(&b"13"[..]) {
        return Err(HandshakeError::UnsupportedVersion);
    }
    if line.key_fields > 1 {
        return Err(HandshakeError::DuplicateKey);
    }
    let key = header("Sec-WebSocket-Key")
        .map(trim)
        .ok_or(HandshakeError::MissingKey)?;
    if !is_valid_key(key) {
        return Err(HandshakeError::BadKey);
    }
    Ok(accept_key(key))
}

/// Writes the `101 Switching Protocols` response.
pub fn write_accept_response(out: &mut BytesMut, accept: &[u8; 28]) {
    write_accept_response_with(out, accept, None);
}

/// Writes the `101 Switching Protocols` response, with a `Sec-WebSocket-Extensions` field when
/// an extension was accepted.
pub fn write_accept_response_with(out: &mut BytesMut, accept: &[u8; 28], extensions: Option<&str>) {
    out.put_slice(
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ",
    );
    out.put_slice(accept);
    if let Some(ext) = extensions {
        out.put_slice(b"\r\nSec-WebSocket-Extensions: ");
        out.put_slice(ext.as_bytes());
    }
    out.put_slice(b"\r\n\r\n");
}

impl HandshakeError {
    /// Header fields the refusal carries besides the usual ones:
    /// `Sec-WebSocket-Version: 13` for a 426 (§4.4).
    pub fn response_headers(&self) -> &'static [(&'static str, &'static str)] {
        match self {
            HandshakeError::UnsupportedVersion => &[("Sec-WebSocket-Version", "13")],
            _ => &[],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &[u8] = b"dGhlIHNhbXBsZSBub25jZQ==";

    fn lookup<'a>(headers: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<&'a [u8]> + 'a {
        move |name: &str| {
            headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_bytes())
        }
    }

    fn good() -> Vec<(&'static str, &'static str)> {
        vec![
            ("host", "server.example.com"),
            ("upgrade", "websocket"),
            ("connection", "Upgrade"),
            ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
            ("sec-websocket-version", "13"),
        ]
    }

    fn with(name: &'static str, value: Option<&'static str>) -> Vec<(&'static str, &'static str)> {
        let mut h: Vec<_> = good().into_iter().filter(|(k, _)| *k != name).collect();
        if let Some(v) = value {
            h.push((name, v));
        }
        h
    }

    fn line(method: &str, http_1_1: bool, key_fields: usize) -> RequestLine<'_> {
        RequestLine {
            method,
            http_1_1,
            key_fields,
        }
    }

    fn check(h: &[(&str, &str)]) -> Result<[u8; 28], HandshakeError> {
        let f = lookup(h);
        let keys = h
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case("sec-websocket-key"))
            .count();
        validate_request(line("GET", true, keys), |n| f(n))
    }

    /// RFC 6455 §1.3 gives `s3pPLMBiTxaQ9kYGzzhZRbK+xOo=` (cross-checked
    /// with Python's hashlib/base64).
    #[test]
    fn accept_key_matches_the_rfc_example() {
        assert_eq!(&accept_key(KEY), b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    }

    #[test]
    fn base64_encoder_matches_known_vectors() {
        // SHA-1("") = da39a3ee5e6b4b0d3255bfef95601890afd80709
        let d = sha1_smol::Sha1::from("").digest().bytes();
        assert_eq!(&base64_20(&d), b"2jmj7l5rSw0yVb/vlWAYkK/YBwk=");
        assert_eq!(&base64_20(&[0xff; 20]), b"//////////////////////////8=");
        assert_eq!(&base64_20(&[0; 20]), b"AAAAAAAAAAAAAAAAAAAAAAAAAAA=");
    }

    #[test]
    fn valid_request_yields_the_accept_key_and_response() {
        let acc = check(&good()).unwrap();
        assert_eq!(&acc, b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
        let mut out = BytesMut::new();
        write_accept_response(&mut out, &acc);
        assert_eq!(
            &out[..],
            &b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n"[..]
        );
    }

    #[test]
    fn header_tokens_are_case_insensitive_comma_lists() {
        assert!(check(&with("connection", Some("keep-alive, Upgrade"))).is_ok());
        assert!(check(&with("connection", Some("UPGRADE"))).is_ok());
        assert!(check(&with("upgrade", Some("WebSocket"))).is_ok());
        assert!(check(&with("upgrade", Some("h2c, websocket"))).is_ok());
        assert!(check(&with("sec-websocket-version", Some(" 13 "))).is_ok());
    }

    #[test]
    fn each_handshake_violation_maps_to_its_error_and_status() {
        let f = lookup(&[]);
        assert_eq!(
            validate_request(line("POST", true, 0), |n| f(n)),
            Err(HandshakeError::NotGet)
        );
        let g = good();
        let f = lookup(&g);
        assert_eq!(
            validate_request(line("GET", false, 1), |n| f(n)),
            Err(HandshakeError::OldHttpVersion)
        );
        use HandshakeError::*;
        let cases = [
            (with("upgrade", None), MissingUpgrade),
            (with("upgrade", Some("http/2")), MissingUpgrade),
            (with("upgrade", Some("notwebsocket")), MissingUpgrade),
            (with("connection", None), MissingConnectionUpgrade),
            (
                with("connection", Some("keep-alive")),
                MissingConnectionUpgrade,
            ),
            (with("sec-websocket-version", None), UnsupportedVersion),
            (with("sec-websocket-version", Some("8")), UnsupportedVersion),
            (
                with("sec-websocket-version", Some("13, 8")),
                UnsupportedVersion,
            ),
            (with("sec-websocket-key", None), MissingKey),
            (with("sec-websocket-key", Some("")), BadKey),
            (
                with("sec-websocket-key", Some("dGhlIHNhbXBsZSBub25jZQ")),
                BadKey,
            ),
            (
                with("sec-websocket-key", Some("dGhlIHNhbXBsZSBub25jZQ=")),
                BadKey,
            ),
            (
                with("sec-websocket-key", Some("dGhlIHNhbXBsZSBub25j*Q==")),
                BadKey,
            ),
            (
                with("sec-websocket-key", Some("dGhlIHNhbXBsZSBub25jZQ==AAAA")),
                BadKey,
            ),
            (
                with("sec-websocket-key", Some("dGhlIHNhbXBsZSBub25jZQA=")),
                BadKey,
            ),
            (
                [
                    good(),
                    vec![("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")],
                ]
                .concat(),
                DuplicateKey,
            ),
        ];
        for (h, e) in cases {
            assert_eq!(check(&h), Err(e), "{h:?}");
        }
        assert_eq!(UnsupportedVersion.status(), 426);
        assert_eq!(BadKey.status(), 400);
        assert_eq!(NotGet.status(), 400);
    }

    #[test]
    fn version_error_response_advertises_version_13() {
        assert_eq!(
            HandshakeError::UnsupportedVersion.response_headers(),
            &[("Sec-WebSocket-Version", "13")]
        );
        assert!(HandshakeError::BadKey.response_headers().is_empty());
    }

    #[test]
    fn upgrade_offers_are_matched_as_tokens() {
        assert!(offers_protocol(Some(b"h2c, WebSocket"), "websocket"));
        assert!(!offers_protocol(Some(b"h2c"), "websocket"));
        assert!(!offers_protocol(None, "websocket"));
    }
}

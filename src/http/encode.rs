//! Response writers: status line, fields and chunked framing, appended to a
//! `BytesMut`.
//!
//! The writers never fail and never validate: the server must check
//! user-supplied names and values with [`validate_header_name`] and
//! [`validate_header_value`] when they are set (as Node does in
//! `setHeader`), so that no CR or LF from user data can reach the wire.

use bytes::{BufMut, BytesMut};

use super::parse::{is_tchar, Version};

/// Appends `n` in decimal.
fn put_decimal(out: &mut BytesMut, n: u64) {
    let mut digits = [0u8; 20];
    let start = decimal_before(&mut digits, 20, n);
    out.put_slice(&digits[start..]);
}

/// Writes `n` in decimal into `buf`, ending just before `end`; returns where the digits
/// start. The caller leaves 20 bytes before `end` (the length of `u64::MAX`).
fn decimal_before(buf: &mut [u8], end: usize, n: u64) -> usize {
    let mut i = end;
    let mut n = n;
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            return i;
        }
    }
}

/// Appends `n` in lower-case hexadecimal without leading zeros.
fn put_hex(out: &mut BytesMut, n: u64) {
    let mut digits = [0u8; 16];
    let mut i = digits.len();
    let mut n = n;
    loop {
        i -= 1;
        digits[i] = b"0123456789abcdef"[(n & 0xf) as usize];
        n >>= 4;
        if n == 0 {
            break;
        }
    }
    out.put_slice(&digits[i..]);
}

/// Appends `HTTP/1.x SP status SP reason CRLF`.
///
/// `status` is written in decimal as given; the caller keeps it in
/// 100..=999 (Node throws `ERR_HTTP_INVALID_STATUS_CODE` otherwise).
/// `reason` must pass [`validate_header_value`].
pub fn write_status_line(out: &mut BytesMut, version: Version, status: u16, reason: &str) {
    let version: &[u8; 9] = match version {
        Version::Http10 => b"HTTP/1.0 ",
        Version::Http11 => b"HTTP/1.1 ",
    };
    out.reserve(13 + reason.len() + 2);
    if (100..=999).contains(&status) {
        // The usual three-digit code: one fixed-size copy instead of three small ones.
        let mut start = [b' '; 13];
        start[..9].copy_from_slice(version);
        start[9] = b'0' + (status / 100) as u8;
        start[10] = b'0' + (status / 10 % 10) as u8;
        start[11] = b'0' + (status % 10) as u8;
        out.put_slice(&start);
    } else {
        out.put_slice(version);
        put_decimal(out, u64::from(status));
        out.put_u8(b' ');
    }
    out.put_slice(reason.as_bytes());
    out.put_slice(b"\r\n");
}

/// Appends `name: value CRLF`. `name` must pass [`validate_header_name`]
/// and `value` [`validate_header_value`].
pub fn write_header(out: &mut BytesMut, name: &str, value: &[u8]) {
    out.reserve(name.len() + value.len() + 4);
    out.put_slice(name.as_bytes());
    out.put_slice(b": ");
    out.put_slice(value);
    out.put_slice(b"\r\n");
}

/// Appends `Content-Length: n CRLF`.
pub fn write_content_length(out: &mut BytesMut, n: u64) {
    // Built right to left in one buffer: one copy into `out` (this runs on every response).
    const PREFIX: &[u8] = b"Content-Length: ";
    let mut line = [0u8; 16 + 20 + 2];
    let crlf = line.len() - 2;
    line[crlf..].copy_from_slice(b"\r\n");
    let start = decimal_before(&mut line, crlf, n) - PREFIX.len();
    line[start..start + PREFIX.len()].copy_from_slice(PREFIX);
    out.put_slice(&line[start..]);
}

/// Appends the CRLF that ends a head.
pub fn write_head_end(out: &mut BytesMut) {
    out.put_slice(b"\r\n");
}

/// Appends one chunk: `hex-size CRLF data CRLF`. Empty `data` writes
/// nothing, since a zero-size chunk would end the body.
pub fn write_chunk(out: &mut BytesMut, data: &[u8]) {
    if data.is_empty() {
        return;
    }
    out.reserve(data.len() + 20);
    put_hex(out, data.len() as u64);
    out.put_slice(b"\r\n");
    out.put_slice(data);
    out.put_slice(b"\r\n");
}

/// Appends the last chunk `0 CRLF`, the trailer fields, and the final
/// CRLF. Trailer names and values must pass the validators.
pub fn write_last_chunk(out: &mut BytesMut, trailers: &[(&str, &[u8])]) {
    out.put_slice(b"0\r\n");
    for (name, value) in trailers {
        write_header(out, name, value);
    }
    out.put_slice(b"\r\n");
}

/// True when `name` is a non-empty `token` (RFC 9110 §5.1), so it can be
/// written as a field name.
pub fn validate_header_name(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(is_tchar)
}

/// True when `value` holds only HTAB, SP, visible ASCII and obs-text
/// (0x80..=0xFF): Node's `checkInvalidHeaderChar` rule. This rejects CR, LF
/// and NUL, so a value cannot inject a field or end the head.
pub fn validate_header_value(value: &[u8]) -> bool {
    value.iter().all(|&b| FIELD_VALUE_BYTE[usize::from(b)])
}

/// [`validate_header_value`]'s rule for every byte: one load per byte.
static FIELD_VALUE_BYTE: [bool; 256] = {
    let mut table = [false; 256];
    let mut i = 0;
    while i < 256 {
        table[i] = i == b'\t' as usize || (i >= 0x20 && i != 0x7f);
        i += 1;
    }
    table
};

#[cfg(test)]
mod tests {
    use super::*;

    fn written(f: impl FnOnce(&mut BytesMut)) -> Vec<u8> {
        let mut out = BytesMut::new();
        f(&mut out);
        out.to_vec()
    }

    #[test]
    fn writes_status_lines() {
        let table: &[(Version, u16, &str, &[u8])] = &[
            (Version::Http11, 200, "OK", b"HTTP/1.1 200 OK\r\n"),
            (
                Version::Http10,
                404,
                "Not Found",
                b"HTTP/1.0 404 Not Found\r\n",
            ),
            (
                Version::Http11,
                100,
                "Continue",
                b"HTTP/1.1 100 Continue\r\n",
            ),
            (Version::Http11, 599, "", b"HTTP/1.1 599 \r\n"),
            (Version::Http11, 99, "X", b"HTTP/1.1 99 X\r\n"), // outside the 3-digit path
            (Version::Http10, 1000, "Y", b"HTTP/1.0 1000 Y\r\n"),
        ];
        for &(version, status, reason, expected) in table {
            assert_eq!(
                written(|o| write_status_line(o, version, status, reason)),
                expected
            );
        }
    }

    #[test]
    fn writes_headers_and_content_length() {
        let out = written(|o| {
            write_header(o, "Content-Type", b"text/plain");
            write_content_length(o, 0);
            write_content_length(o, u64::MAX);
            write_head_end(o);
        });
        assert_eq!(
            out,
            b"Content-Type: text/plain\r\nContent-Length: 0\r\n\
              Content-Length: 18446744073709551615\r\n\r\n"
        );
    }

    #[test]
    fn writes_chunks_in_hex_and_skips_empty_ones() {
        let table: &[(&[u8], &[u8])] = &[
            (b"", b""),
            (b"a", b"1\r\na\r\n"),
            (&[b'x'; 26], b"1a\r\nxxxxxxxxxxxxxxxxxxxxxxxxxx\r\n"),
        ];
        for &(data, expected) in table {
            assert_eq!(written(|o| write_chunk(o, data)), expected);
        }
        let big = written(|o| write_chunk(o, &[0; 4096]));
        assert!(big.starts_with(b"1000\r\n"));
        assert_eq!(big.len(), 6 + 4096 + 2);
    }

    #[test]
    fn writes_last_chunk_with_and_without_trailers() {
        assert_eq!(written(|o| write_last_chunk(o, &[])), b"0\r\n\r\n");
        assert_eq!(
            written(|o| write_last_chunk(o, &[("Digest", b"x"), ("A", b"")])),
            b"0\r\nDigest: x\r\nA: \r\n\r\n"
        );
    }

    #[test]
    fn validates_header_names() {
        let table = [
            ("Content-Type", true),
            ("x-custom_1!#$%&'*+.^`|~", true),
            ("", false),
            ("Bad Name", false),
            ("Bad:Name", false),
            ("Bad\r\nName", false),
            ("Bad\0", false),
            ("\u{e9}", false),
            ("(x)", false),
        ];
        for (name, ok) in table {
            assert_eq!(validate_header_name(name), ok, "{name:?}");
        }
    }

    #[test]
    fn rejects_header_values_that_could_inject() {
        let table: &[(&[u8], bool)] = &[
            (b"", true),
            (b"text/html; charset=utf-8", true),
            (b"a\tb", true),
            (b"caf\xc3\xa9", true),
            (b"a\r\nSet-Cookie: x", false),
            (b"a\nb", false),
            (b"a\rb", false),
            (b"a\0b", false),
            (b"a\x7fb", false),
            (b"a\x01b", false),
        ];
        for &(value, ok) in table {
            assert_eq!(validate_header_value(value), ok, "{value:?}");
        }
    }
}

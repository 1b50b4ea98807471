//! Percent-decoding of URL path pieces and parsing of query strings.
//!
//! * [`percent_decode`] is strict: it is used for route parameters, where an
//!   invalid escape or a non-UTF-8 result means the request is bad (Express
//!   answers 400). `+` is *not* a space in a path.
//! * [`parse_query`] is lenient, like Node's `querystring` (Express's
//!   `simple` query parser): `+` is a space, invalid escapes are kept
//!   literally and invalid UTF-8 becomes U+FFFD. It never fails.
//! * [`split_target`] splits a request target into path and query.

use std::borrow::Cow;

/// Value of one ASCII hex digit, or `None`.
fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Decodes `%XX` escapes in `s` strictly.
///
/// Returns `None` when an escape is malformed (`%`, `%4`, `%zz`) or when the
/// decoded bytes are not valid UTF-8. `+` is left as is. When `s` contains no
/// `%`, the input is returned borrowed without allocating.
///
/// ```text
/// "a%20b" -> "a b",  "a%2Fb" -> "a/b",  "%E2%82%AC" -> "€",  "%zz" -> None,  "%FF" -> None
/// ```
pub fn percent_decode(s: &str) -> Option<Cow<'_, str>> {
    if !s.as_bytes().contains(&b'%') {
        return Some(Cow::Borrowed(s));
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'%' {
            let hi = hex_val(*bytes.get(i + 1)?)?;
            let lo = hex_val(*bytes.get(i + 2)?)?;
            out.push(hi << 4 | lo);
            i += 3;
        } else {
            out.push(b);
            i += 1;
        }
    }
    String::from_utf8(out).ok().map(Cow::Owned)
}

/// Lenient decoding of one query-string component: `+` becomes a space when
/// `plus_as_space`, valid `%XX` escapes are decoded, anything else is kept
/// literally, and invalid UTF-8 is replaced by U+FFFD. Never fails; borrows
/// when there is nothing to decode.
pub fn decode_component_lossy(s: &str, plus_as_space: bool) -> Cow<'_, str> {
    let bytes = s.as_bytes();
    if !bytes
        .iter()
        .any(|&b| b == b'%' || (plus_as_space && b == b'+'))
    {
        return Cow::Borrowed(s);
    }
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'%' {
            let hi = bytes.get(i + 1).copied().and_then(hex_val);
            let lo = bytes.get(i + 2).copied().and_then(hex_val);
            if let (Some(hi), Some(lo)) = (hi, lo) {
                out.push(hi << 4 | lo);
                i += 3;
                continue;
            }
            out.push(b'%');
        } else if plus_as_space && b == b'+' {
            out.push(b' ');
        } else {
            out.push(b);
        }
        i += 1;
    }
    match String::from_utf8(out) {
        Ok(s) => Cow::Owned(s),
        Err(e) => Cow::Owned(String::from_utf8_lossy(e.as_bytes()).into_owned()),
    }
}

/// Parses a query string (the part after `?`, without the `?`) into
/// key/value pairs, in order, keeping repeated keys.
///
/// Pairs are separated by `&`; empty pieces are skipped; a piece without `=`
/// has an empty value; only the first `=` splits. Keys and values are decoded
/// with [`decode_component_lossy`] (`+` is a space, invalid escapes kept).
///
/// ```text
/// "a=1&a=3&b=x+y&c" -> [("a","1"), ("a","3"), ("b","x y"), ("c","")]
/// ```
pub fn parse_query(q: &str) -> Vec<(String, String)> {
    q.split('&')
        .filter(|piece| !piece.is_empty())
        .map(|piece| {
            let (k, v) = piece.split_once('=').unwrap_or((piece, ""));
            (
                decode_component_lossy(k, true).into_owned(),
                decode_component_lossy(v, true).into_owned(),
            )
        })
        .collect()
}

/// Splits a request target (`/a/b?x=1`) into the path and the query string
/// (without the `?`). The query is `None` when there is no `?`. A `#`
/// fragment, which clients should not send, is cut off. An empty path is
/// returned as `"/"`.
pub fn split_target(target: &str) -> (&str, Option<&str>) {
    let target = target.split_once('#').map_or(target, |(t, _)| t);
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (target, None),
    };
    (if path.is_empty() { "/" } else { path }, query)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_decode_handles_valid_and_invalid_input() {
        let cases: &[(&str, Option<&str>)] = &[
            ("plain", Some("plain")),
            ("", Some("")),
            ("a%20b", Some("a b")),
            ("a%2Fb", Some("a/b")),
            ("a%2fb", Some("a/b")),
            ("a+b", Some("a+b")),
            ("%E2%82%AC", Some("€")),
            ("caf%C3%A9", Some("café")),
            ("%", None),
            ("%4", None),
            ("abc%", None),
            ("%zz", None),
            ("%4g", None),
            ("%FF", None),
            ("%C3", None),
            ("%00", Some("\0")),
        ];
        for (input, want) in cases {
            assert_eq!(percent_decode(input).as_deref(), *want, "input {input:?}");
        }
    }

    #[test]
    fn percent_decode_borrows_when_there_is_nothing_to_decode() {
        assert!(matches!(percent_decode("abc"), Some(Cow::Borrowed("abc"))));
    }

    #[test]
    fn parse_query_matches_the_simple_express_parser() {
        type Pairs = &'static [(&'static str, &'static str)];
        let cases: &[(&str, Pairs)] = &[
            (
                "a=1&a=3&b=x+y&c",
                &[("a", "1"), ("a", "3"), ("b", "x y"), ("c", "")],
            ),
            ("", &[]),
            ("&&", &[]),
            ("a=1&&b=2", &[("a", "1"), ("b", "2")]),
            ("=x", &[("", "x")]),
            ("a=b=c", &[("a", "b=c")]),
            ("k%20y=v%2Bw", &[("k y", "v+w")]),
            ("bad=%zz%4", &[("bad", "%zz%4")]),
            ("pct=100%", &[("pct", "100%")]),
            ("u=%E2%82%AC", &[("u", "€")]),
            ("ff=%FF", &[("ff", "\u{FFFD}")]),
            ("a=", &[("a", "")]),
        ];
        for (input, want) in cases {
            let got = parse_query(input);
            let want: Vec<(String, String)> = want
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            assert_eq!(got, want, "input {input:?}");
        }
    }

    #[test]
    fn split_target_separates_path_and_query() {
        assert_eq!(split_target("/a?x=1"), ("/a", Some("x=1")));
        assert_eq!(split_target("/a"), ("/a", None));
        assert_eq!(split_target("?x"), ("/", Some("x")));
        assert_eq!(split_target(""), ("/", None));
        assert_eq!(split_target("/a?"), ("/a", Some("")));
        assert_eq!(split_target("/a#f"), ("/a", None));
        assert_eq!(split_target("/a?b?c"), ("/a", Some("b?c")));
    }

    #[test]
    fn decoders_never_panic_on_random_bytes() {
        let mut seed = 0x9E37_79B9_7F4A_7C15_u64;
        let alphabet = b"%%%+&=aZ09/\xC3\xA9fF";
        for _ in 0..2000 {
            let mut s = String::new();
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let len = (seed % 24) as usize;
            for _ in 0..len {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                let b = alphabet[(seed % alphabet.len() as u64) as usize];
                s.push(if b.is_ascii() { b as char } else { 'é' });
            }
            let _ = percent_decode(&s);
            let _ = parse_query(&s);
            let _ = split_target(&s);
        }
    }
}

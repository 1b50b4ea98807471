//! One log record as one line: pino's JSON shape, or a text line for development.
//!
//! JSON: `{"level":30,"time":<epoch ms>,"pid":..,"hostname":..,<fields>,"msg":".."}` with
//! pino's numeric levels (trace 10, debug 20, info 30, warn 40, error 50; the `log` crate has no
//! fatal, 60). Structured fields come from the record's key-values (`log`'s `kv`): a dotted key
//! `req.method` becomes a member of a nested object `"req":{"method":..}` (consecutive keys with
//! the same prefix share one object), which is how the access log writes pino-http's `req` and
//! `res`. Integers and floats stay JSON numbers, booleans booleans, everything else a string.

use std::fmt::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

use log::kv::{self, Key, Value, VisitSource};
use log::{Level, Record};

use super::writer::MAX_FIELD_BYTES;

/// pino's number for a `log` level.
pub fn pino_level(level: Level) -> u8 {
    match level {
        Level::Trace => 10,
        Level::Debug => 20,
        Level::Info => 30,
        Level::Warn => 40,
        Level::Error => 50,
    }
}

/// `s` cut at [`MAX_FIELD_BYTES`] on a character boundary.
fn capped(s: &str) -> &str {
    if s.len() <= MAX_FIELD_BYTES {
        return s;
    }
    let mut end = MAX_FIELD_BYTES;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// Appends `s` (capped) as a JSON string: `"`, `\\`, and control characters escaped.
fn push_json_str(out: &mut String, s: &str) {
    let s = capped(s);
    out.push('"');
    // The common case, checked in one pass the compiler vectorizes: nothing to escape.
    if s.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
        out.push_str(s);
        out.push('"');
        return;
    }
    let mut start = 0;
    for (i, b) in s.bytes().enumerate() {
        let esc = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0..=0x1f => "",
            _ => continue,
        };
        out.push_str(&s[start..i]);
        if esc.is_empty() {
            let _ = write!(out, "\\u{:04x}", b);
        } else {
            out.push_str(esc);
        }
        start = i + 1;
    }
    out.push_str(&s[start..]);
    out.push('"');
}

/// A key-value as JSON: numbers and booleans as such, the rest as a string.
fn push_json_value(out: &mut String, v: &Value<'_>) {
    if let Some(n) = v.to_u64() {
        out.push_str(itoa::Buffer::new().format(n));
    } else if let Some(n) = v.to_i64() {
        out.push_str(itoa::Buffer::new().format(n));
    } else if let Some(f) = v.to_f64().filter(|f| f.is_finite()) {
        out.push_str(ryu::Buffer::new().format_finite(f));
    } else if let Some(b) = v.to_bool() {
        out.push_str(if b { "true" } else { "false" });
    } else if let Some(s) = v.to_borrowed_str() {
        push_json_str(out, s);
    } else {
        // Display values (addresses, errors) formatted straight into the line, escaped.
        out.push('"');
        let _ = write!(Escaped(out), "{v}");
        out.push('"');
    }
}

/// Escapes what is written through it as the inside of a JSON string (no length cap: for
/// values whose Display is short, such as addresses).
struct Escaped<'a>(&'a mut String);

impl std::fmt::Write for Escaped<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let start = self.0.len();
        push_json_str(self.0, s);
        // Drop the quotes push_json_str added around this piece.
        self.0.remove(start);
        self.0.pop();
        Ok(())
    }
}

/// Writes the record's key-values as JSON members, grouping `a.b` keys into objects.
struct JsonFields<'a> {
    out: &'a mut String,
    /// The prefix whose object is open (`req` while writing `req.*` keys).
    open: Option<String>,
}

impl<'kvs> VisitSource<'kvs> for JsonFields<'_> {
    fn visit_pair(&mut self, key: Key<'kvs>, value: Value<'kvs>) -> Result<(), kv::Error> {
        let key = key.as_str();
        let (group, member) = match key.split_once('.') {
            Some((g, m)) => (Some(g), m),
            None => (None, key),
        };
        if self.open.as_deref() != group {
            if self.open.take().is_some() {
                self.out.push_str("},");
            }
            if let Some(g) = group {
                push_json_str(self.out, g);
                self.out.push_str(":{");
                self.open = Some(g.to_string());
            }
        } else if group.is_some() {
            self.out.push(',');
        }
        push_json_str(self.out, member);
        self.out.push(':');
        push_json_value(self.out, &value);
        if group.is_none() {
            self.out.push(',');
        }
        Ok(())
    }
}

/// The part of every JSON line that never changes: `,"pid":N,"hostname":"h",`.
pub fn json_bindings(pid: u32, hostname: &str) -> String {
    let mut s = format!(",\"pid\":{pid},\"hostname\":");
    push_json_str(&mut s, hostname);
    s.push(',');
    s
}

/// Milliseconds since the Unix epoch (pino's `time`).
pub fn epoch_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// The record as one pino JSON line, ending in `\n`.
#[cfg(test)]
pub fn json_line(record: &Record<'_>, time_ms: u64, bindings: &str) -> String {
    let mut out = String::new();
    push_json_line(&mut out, record, time_ms, bindings);
    out
}

/// Appends the record as one pino JSON line, ending in `\n`, to `out`.
pub fn push_json_line(out: &mut String, record: &Record<'_>, time_ms: u64, bindings: &str) {
    push_json_head(out, record.level(), time_ms, bindings);
    let mut fields = JsonFields {
        out: &mut *out,
        open: None,
    };
    let _ = record.key_values().visit(&mut fields);
    if fields.open.is_some() {
        out.push_str("},");
    }
    out.push_str("\"msg\":");
    match record.args().as_str() {
        Some(s) => push_json_str(out, s),
        None => push_json_str(out, &record.args().to_string()),
    }
    out.push_str("}\n");
}

/// `{"level":N,"time":T` and the bindings (`,"pid":..,"hostname":..,`): every line's start.
pub(crate) fn push_json_head(out: &mut String, level: Level, time_ms: u64, bindings: &str) {
    out.push_str("{\"level\":");
    out.push_str(itoa::Buffer::new().format(pino_level(level)));
    out.push_str(",\"time\":");
    out.push_str(itoa::Buffer::new().format(time_ms));
    out.push_str(bindings);
}

/// A JSON string member value, escaped and capped as every other field.
pub(crate) fn push_json_string(out: &mut String, s: &str) {
    push_json_str(out, s);
}

/// A JSON number as the generic path writes an `f64` key-value.
pub(crate) fn push_json_f64(out: &mut String, f: f64) {
    push_json_value(out, &Value::from(f));
}

/// `micros / 1000` as a JSON number, the same bytes as [`push_json_f64`] of `micros as f64 /
/// 1e3` (the access log's `responseTime`) without `ryu`'s general algorithm: the integer part,
/// a point, the thousandths without trailing zeros (`0.21`, `1.0`, `12345.678`). Below 10^15
/// the exact decimal is also the shortest that round-trips (a double carries 15.9 digits), so
/// it is what `ryu` prints; larger values take `ryu`.
pub(crate) fn push_json_millis(out: &mut Vec<u8>, micros: u64) {
    if micros >= 1_000_000_000_000_000 {
        return push_json_f64_cold(out, micros as f64 / 1e3);
    }
    let whole = micros / 1000;
    let frac = (micros % 1000) as u32;
    // A digit (the whole milliseconds when under 10, the common case), the point, the
    // thousandths: copied as one piece.
    let mut piece = [
        b'0' + (whole % 10) as u8,
        b'.',
        b'0' + (frac / 100) as u8,
        b'0' + (frac / 10 % 10) as u8,
        b'0' + (frac % 10) as u8,
    ];
    let len = if frac.is_multiple_of(100) {
        3
    } else if frac.is_multiple_of(10) {
        4
    } else {
        5
    };
    if whole < 10 {
        out.extend_from_slice(&piece[..len]);
    } else {
        out.extend_from_slice(itoa::Buffer::new().format(whole).as_bytes());
        piece[0] = b'.';
        piece.copy_within(2..5, 1);
        out.extend_from_slice(&piece[..len - 1]);
    }
}

#[cold]
#[inline(never)]
fn push_json_f64_cold(out: &mut Vec<u8>, f: f64) {
    let mut s = String::new();
    push_json_f64(&mut s, f);
    out.extend_from_slice(s.as_bytes());
}

/// An IPv4 address as a JSON string (what `Display` writes, quoted, without its formatter
/// machinery), built on the stack: the bytes and how many of them are used (at most 17).
pub(crate) fn ipv4_json(ip: std::net::Ipv4Addr) -> ([u8; 17], usize) {
    let mut buf = [b'"'; 17];
    let mut len = 1;
    for (i, octet) in ip.octets().into_iter().enumerate() {
        if i > 0 {
            buf[len] = b'.';
            len += 1;
        }
        if octet >= 100 {
            buf[len] = b'0' + octet / 100;
            len += 1;
        }
        if octet >= 10 {
            buf[len] = b'0' + octet / 10 % 10;
            len += 1;
        }
        buf[len] = b'0' + octet % 10;
        len += 1;
    }
    // buf[len] is still the closing quote (at most 1 + 15 bytes were written).
    (buf, len + 1)
}

struct TextFields<'a>(&'a mut String);

impl<'kvs> VisitSource<'kvs> for TextFields<'_> {
    fn visit_pair(&mut self, key: Key<'kvs>, value: Value<'kvs>) -> Result<(), kv::Error> {
        let _ = write!(self.0, " {key}={value}");
        Ok(())
    }
}

/// Appends the record as a text line for development: `INFO  target: message key=value ...`.
pub fn push_text_line(out: &mut String, record: &Record<'_>) {
    let _ = write!(
        out,
        "{:<5} {}: {}",
        record.level(),
        record.target(),
        capped(&record.args().to_string())
    );
    let _ = record.key_values().visit(&mut TextFields(out));
    out.push('\n');
}

#[cfg(test)]
mod tests {
    use super::*;
    use log::kv::ToValue;

    #[test]
    fn json_line_nests_dotted_keys_keeps_types_and_escapes() {
        let kvs: [(&str, &dyn ToValue); 5] = [
            ("reqId", &7u64),
            ("req.method", &"GET"),
            ("req.url", &"/a\"b"),
            ("res.statusCode", &404u16),
            ("responseTime", &0.25f64),
        ];
        let record = Record::builder()
            .level(Level::Warn)
            .args(format_args!("caf\u{e9} \"quoted\"\n\u{1}\\"))
            .key_values(&kvs)
            .build();
        let line = json_line(&record, 1234, &json_bindings(42, "host"));
        assert!(line.ends_with("}\n"));
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"level": 40, "time": 1234, "pid": 42, "hostname": "host",
                "reqId": 7, "req": {"method": "GET", "url": "/a\"b"},
                "res": {"statusCode": 404}, "responseTime": 0.25,
                "msg": "caf\u{e9} \"quoted\"\n\u{1}\\"})
        );
    }

    #[test]
    fn millis_are_written_as_ryu_writes_the_float() {
        let check = |micros: u64| {
            let (mut fast, mut slow) = (Vec::new(), String::new());
            push_json_millis(&mut fast, micros);
            push_json_f64(&mut slow, micros as f64 / 1e3);
            assert_eq!(fast, slow.as_bytes(), "{micros}");
        };
        (0..2_000_000).for_each(check);
        let mut x = 0x9e37_79b9_7f4a_7c15_u64;
        for _ in 0..200_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            check(x % 1_000_000_000_000_000);
            check(x % 10_000_000_000);
        }
        for micros in [999_999_999_999_999, 1_000_000_000_000_000, u64::MAX] {
            check(micros);
        }
    }

    #[test]
    fn ipv4_is_written_as_display_writes_it() {
        for ip in [
            "0.0.0.0",
            "127.0.0.1",
            "10.99.100.255",
            "192.168.1.9",
            "255.255.255.255",
        ] {
            let ip: std::net::Ipv4Addr = ip.parse().unwrap();
            let (json, len) = ipv4_json(ip);
            assert_eq!(&json[..len], format!("\"{ip}\"").as_bytes());
        }
    }

    #[test]
    fn long_fields_are_cut_on_a_char_boundary() {
        let long = "\u{e9}".repeat(MAX_FIELD_BYTES);
        let line = json_line(
            &Record::builder().args(format_args!("{long}")).build(),
            0,
            ",",
        );
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["msg"].as_str().unwrap().len(), MAX_FIELD_BYTES);
    }
}

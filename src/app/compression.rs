//! Response compression, as the `compression` npm package (1.8) does it: br, gzip or deflate
//! chosen from `Accept-Encoding`, for compressible types over 1 KiB, built on the body hook
//! ([`Res::on_body`]).
//!
//! ```no_run
//! use oneloop::app::{compression, App};
//! let mut app = App::new();
//! app.use_mw(compression::compression()); // the package's defaults
//! app.get("/big", |_req, res| res.send_text("x".repeat(10_000)));
//! ```
//!
//! A response is compressed unless (checked in the package's order, when the head is about to
//! go out): its status has no body (1xx, 204, 304); the filter refuses it (by default: its
//! `Content-Type` is not [`compressible`]); `Cache-Control` has `no-transform`; then
//! `Vary: Accept-Encoding` is added, and it is still left alone if its `Content-Length` (or
//! its buffered body) is under the threshold, it already has a `Content-Encoding`, the request
//! is HEAD, or no encoding is acceptable ([`negotiate`]). A compressed response loses its
//! `Content-Length` header and gets `Content-Encoding`.
//!
//! Streamed bodies ([`Res::write`], [`Res::send_file`] of a large file) are compressed piece
//! by piece on the loop thread, each piece flushed (a sync flush) so the client gets it at
//! once; the output is chunked. A buffered body (`send`, `json`, `send_bytes`) of at least
//! [`CompressionOptions::pool_threshold`] bytes (64 KiB) is copied to the thread pool and
//! compressed there, so the loop keeps answering other requests meanwhile (Node's zlib does
//! its async work on the pool too); smaller ones are compressed on the loop thread. A
//! compressed buffered body goes out with the `Content-Length` of the compressed bytes (the
//! package sends it chunked).

use std::cmp::Ordering;
use std::io::{self, Write};
use std::rc::Rc;

use super::{BodyHook, BodySink, Middleware, Next, Req, Res};

/// A content coding this middleware produces.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    /// Brotli (`br`).
    Br,
    /// gzip.
    Gzip,
    /// zlib-wrapped deflate (`deflate`, as Node's `zlib.createDeflate`).
    Deflate,
}

impl Encoding {
    /// The `Content-Encoding` token.
    pub fn name(self) -> &'static str {
        match self {
            Encoding::Br => "br",
            Encoding::Gzip => "gzip",
            Encoding::Deflate => "deflate",
        }
    }
}

/// A predicate on the response (see [`CompressionOptions::filter`]).
pub type ResFilter = Rc<dyn Fn(&Res) -> bool>;
/// A predicate on the request (see [`CompressionOptions::skip`]).
pub type ReqFilter = Rc<dyn Fn(&Req) -> bool>;

/// Options of [`compression_with`]. `Default` is the package's defaults.
#[derive(Clone)]
pub struct CompressionOptions {
    /// Bodies shorter than this many bytes are sent as they are (`threshold`, default 1024).
    pub threshold: usize,
    /// gzip/deflate level 0..=9 (`level`, default 6: zlib's default). Larger values are
    /// clamped to 9.
    pub level: u32,
    /// Brotli quality 0..=11 (`brotli.params[BROTLI_PARAM_QUALITY]`, default 4, as the package
    /// sets it). Larger values are clamped to 11.
    pub brotli_quality: u32,
    /// Buffered bodies of at least this many bytes are compressed on the thread pool (default
    /// 64 KiB); smaller ones on the loop thread. `usize::MAX` keeps all on the loop.
    pub pool_threshold: usize,
    /// Decides from the response (its headers are set) whether to compress (`filter`); `None`
    /// is [`should_compress`]. Call [`should_compress`] from your own to extend it.
    pub filter: Option<ResFilter>,
    /// Decides from the request, when the middleware runs, to leave the response alone (the
    /// package's filter gets `req` too, e.g. for an `x-no-compression` header).
    pub skip: Option<ReqFilter>,
}

impl Default for CompressionOptions {
    fn default() -> CompressionOptions {
        CompressionOptions {
            threshold: 1024,
            level: 6,
            brotli_quality: 4,
            pool_threshold: 64 * 1024,
            filter: None,
            skip: None,
        }
    }
}

/// The compression middleware with the package's defaults.
pub fn compression() -> Middleware {
    compression_with(CompressionOptions::default())
}

/// The compression middleware with `options`.
pub fn compression_with(mut options: CompressionOptions) -> Middleware {
    options.level = options.level.min(9);
    options.brotli_quality = options.brotli_quality.min(11);
    let options = Rc::new(options);
    Rc::new(move |req: &mut Req, res: &mut Res, next: Next| {
        if options.skip.as_ref().is_some_and(|skip| skip(req)) {
            next.call();
            return;
        }
        res.on_body(CompressHook {
            options: Rc::clone(&options),
            accepted: negotiate(req.header("accept-encoding")),
            is_head: req.method() == "HEAD",
            chosen: None,
            streaming: None,
        });
        next.call();
    })
}

/// The default filter: the response's `Content-Type` is [`compressible`].
pub fn should_compress(res: &Res) -> bool {
    res.get("content-type").is_some_and(|t| compressible(&t))
}

/// Types mime-db (1.54) marks compressible that the rule below does not already cover.
const COMPRESSIBLE_TYPES: &[&str] = &[
    "application/dart",
    "application/ecmascript",
    "application/javascript",
    "application/json",
    "application/octet-stream",
    "application/postscript",
    "application/raml+yaml",
    "application/rtf",
    "application/tar",
    "application/toml",
    "application/vnd.dart",
    "application/vnd.ms-fontobject",
    "application/vnd.ms-opentype",
    "application/wasm",
    "application/x-httpd-php",
    "application/x-javascript",
    "application/x-ns-proxy-autoconfig",
    "application/x-sh",
    "application/x-tar",
    "application/x-virtualbox-hdd",
    "application/x-virtualbox-ova",
    "application/x-virtualbox-ovf",
    "application/x-virtualbox-vbox",
    "application/x-virtualbox-vdi",
    "application/x-virtualbox-vhd",
    "application/x-virtualbox-vmdk",
    "application/x-www-form-urlencoded",
    "application/xml",
    "application/xml-dtd",
    "font/otf",
    "font/ttf",
    "image/bmp",
    "image/vnd.adobe.photoshop",
    "image/vnd.microsoft.icon",
    "image/vnd.ms-dds",
    "image/x-icon",
    "image/x-ms-bmp",
    "message/rfc822",
    "model/gltf-binary",
    "x-shader/x-fragment",
    "x-shader/x-vertex",
];

/// Whether a `Content-Type` is worth compressing (the `compressible` package's rule): its
/// type (parameters dropped, lowercased) is in mime-db's compressible list, or is `text/*`,
/// or ends in `+json`, `+text` or `+xml`. No type in mime-db that this rule matches is marked
/// incompressible, so the table only lists the additions.
pub fn compressible(content_type: &str) -> bool {
    let t = content_type.trim_start();
    let end = t
        .find(|c: char| c == ';' || c.is_whitespace())
        .unwrap_or(t.len());
    let t = t[..end].to_ascii_lowercase();
    COMPRESSIBLE_TYPES.contains(&t.as_str())
        || t.starts_with("text/")
        || t.ends_with("+json")
        || t.ends_with("+text")
        || t.ends_with("+xml")
}

/// JavaScript's `parseFloat`: the longest decimal prefix after leading whitespace, NaN if none.
fn parse_float(s: &str) -> f64 {
    let s = s.trim_start();
    let b = s.as_bytes();
    let mut i = 0;
    if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
        i += 1;
    }
    if s[i..].starts_with("Infinity") {
        return if b.first() == Some(&b'-') {
            f64::NEG_INFINITY
        } else {
            f64::INFINITY
        };
    }
    let digits = |i: &mut usize| {
        let from = *i;
        while *i < b.len() && b[*i].is_ascii_digit() {
            *i += 1;
        }
        *i - from
    };
    let mut n = digits(&mut i);
    if i < b.len() && b[i] == b'.' {
        let mut j = i + 1;
        let frac = digits(&mut j);
        if n + frac > 0 {
            i = j;
            n += frac;
        }
    }
    if n == 0 {
        return f64::NAN;
    }
    if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
        let mut j = i + 1;
        if j < b.len() && (b[j] == b'+' || b[j] == b'-') {
            j += 1;
        }
        if digits(&mut j) > 0 {
            i = j;
        }
    }
    s[..i].parse().unwrap_or(f64::NAN)
}

/// JavaScript's `a || b` on numbers (0 and NaN are falsy).
fn js_or(a: f64, b: f64) -> f64 {
    if a == 0.0 || a.is_nan() {
        b
    } else {
        a
    }
}

/// One `Accept-Encoding` entry: its coding, `q`, and position among the comma-separated items.
struct Accepted<'a> {
    coding: &'a str,
    q: f64,
    index: usize,
}

/// negotiator's `parseEncoding`: `coding [; params]`, q from the first `q=` parameter
/// (`parseFloat`, so `q=abc` is NaN and never acceptable).
fn parse_entry(item: &str, index: usize) -> Option<Accepted<'_>> {
    let item = item.trim();
    let end = item
        .find(|c: char| c == ';' || c.is_whitespace())
        .unwrap_or(item.len());
    if end == 0 {
        return None;
    }
    let coding = &item[..end];
    let rest = item[end..].trim_start();
    let mut q = 1.0;
    if !rest.is_empty() {
        let params = rest.strip_prefix(';')?;
        for p in params.split(';') {
            let mut kv = p.trim().split('=');
            if kv.next() == Some("q") {
                q = kv.next().map_or(f64::NAN, parse_float);
                break;
            }
        }
    }
    Some(Accepted { coding, q, index })
}

/// An offered coding's best match among the accepted ones (negotiator's `getEncodingPriority`).
#[derive(Clone, Copy)]
struct Priority {
    /// Index in [`OFFERED`].
    offered: usize,
    /// Position of the matching entry (-1: none).
    order: f64,
    q: f64,
    /// 1 for an exact match, 0 for `*`.
    specificity: f64,
}

/// What the middleware can send, in negotiator's `provided` order; `None` is identity.
const OFFERED: [(&str, Option<Encoding>); 4] = [
    ("br", Some(Encoding::Br)),
    ("gzip", Some(Encoding::Gzip)),
    ("deflate", Some(Encoding::Deflate)),
    ("identity", None),
];

/// The package's preference among equally weighted codings.
const PREFERRED: [&str; 2] = ["br", "gzip"];

/// The coding to send for an `Accept-Encoding` value, exactly as compression 1.8 picks it
/// (negotiator 0.6's q-value rules, ties broken by the preference br, gzip): `None` means
/// identity (no header, an empty one, only `identity`, or nothing acceptable such as
/// `*;q=0` or `gzip;q=abc`). Never fails; the work is linear in the header's length, which the
/// HTTP layer bounds.
pub fn negotiate(accept_encoding: Option<&str>) -> Option<Encoding> {
    let header = accept_encoding.filter(|h| !h.is_empty())?;
    let entries = || {
        header
            .split(',')
            .enumerate()
            .filter_map(|(i, item)| parse_entry(item, i))
    };
    // identity is acceptable with the lowest q listed, unless listed (or `*` is).
    let mut has_identity = false;
    let mut min_q: f64 = 1.0;
    for e in entries() {
        has_identity |= e.coding.eq_ignore_ascii_case("identity") || e.coding == "*";
        min_q = min_q.min(js_or(e.q, 1.0));
    }
    let implicit_identity = (!has_identity).then(|| Accepted {
        coding: "identity",
        q: min_q,
        index: header.split(',').count(),
    });
    let mut best: Option<Priority> = None;
    for (offered, (name, _)) in OFFERED.iter().enumerate() {
        let mut p = Priority {
            offered,
            order: -1.0,
            q: 0.0,
            specificity: 0.0,
        };
        for e in entries().chain(implicit_identity.as_ref().map(|a| Accepted {
            coding: a.coding,
            q: a.q,
            index: a.index,
        })) {
            let specificity = if e.coding.eq_ignore_ascii_case(name) {
                1.0
            } else if e.coding == "*" {
                0.0
            } else {
                continue;
            };
            let order = e.index as f64;
            let diff = js_or(
                js_or(p.specificity - specificity, p.q - e.q),
                p.order - order,
            );
            if diff < 0.0 {
                p = Priority {
                    offered,
                    order,
                    q: e.q,
                    specificity,
                };
            }
        }
        // Acceptable only with q > 0 (NaN is not).
        if p.q > 0.0 && !matches!(best, Some(b) if compare(&p, &b) != Ordering::Less) {
            best = Some(p);
        }
    }
    best.and_then(|p| OFFERED[p.offered].1)
}

/// negotiator's comparator with a preferred list: higher q first, then preferred codings (in
/// their order), then specificity, position and offer order.
fn compare(a: &Priority, b: &Priority) -> Ordering {
    let sign = |x: f64| {
        if x < 0.0 {
            Ordering::Less
        } else if x > 0.0 {
            Ordering::Greater
        } else {
            Ordering::Equal
        }
    };
    if a.q != b.q {
        return sign(b.q - a.q);
    }
    let pref = |p: &Priority| PREFERRED.iter().position(|n| *n == OFFERED[p.offered].0);
    match (pref(a), pref(b)) {
        (None, None) => sign(js_or(
            js_or(b.specificity - a.specificity, a.order - b.order),
            a.offered as f64 - b.offered as f64,
        )),
        (Some(x), Some(y)) => x.cmp(&y),
        (None, Some(_)) => Ordering::Greater,
        (Some(_), None) => Ordering::Less,
    }
}

/// Whether `Cache-Control` carries `no-transform` (the package's regular expression: the
/// directive between commas, surrounding whitespace allowed, any case).
fn no_transform(cache_control: &str) -> bool {
    cache_control
        .split(',')
        .any(|d| d.trim().eq_ignore_ascii_case("no-transform"))
}

/// Adds `Accept-Encoding` to `Vary` (the `vary` package: kept if already listed or `*`).
fn vary_accept_encoding(res: &Res) {
    match res.get("vary") {
        None => {
            res.set_static("vary", "Accept-Encoding");
        }
        Some(v) => {
            let listed = v
                .split(',')
                .map(str::trim)
                .any(|f| f == "*" || f.eq_ignore_ascii_case("accept-encoding"));
            if !listed {
                let joined = if v.trim().is_empty() {
                    "Accept-Encoding".to_owned()
                } else {
                    format!("{v}, Accept-Encoding")
                };
                res.set("vary", &joined);
            }
        }
    }
}

/// JavaScript's `Number(s)` for a header value (empty is 0, garbage NaN).
fn js_number(s: &str) -> f64 {
    let s = s.trim();
    if s.is_empty() {
        return 0.0;
    }
    s.parse().unwrap_or(f64::NAN)
}

/// The levels an encoder is made with.
#[derive(Clone, Copy)]
struct Levels {
    level: u32,
    brotli_quality: u32,
}

/// Brotli's window (`BROTLI_DEFAULT_WINDOW`, Node's default): 4 MiB.
const BROTLI_WINDOW: u32 = 22;
/// Brotli's internal buffer size.
const BROTLI_BUFFER: usize = 4096;

/// A compressor writing into a `Vec` whose bytes are taken out as they come.
enum Encoder {
    Gzip(flate2::write::GzEncoder<Vec<u8>>),
    Deflate(flate2::write::ZlibEncoder<Vec<u8>>),
    Br(Box<brotli::CompressorWriter<Vec<u8>>>),
}

impl Encoder {
    fn new(encoding: Encoding, levels: Levels, capacity: usize) -> Encoder {
        let out = Vec::with_capacity(capacity);
        let level = flate2::Compression::new(levels.level);
        match encoding {
            Encoding::Gzip => Encoder::Gzip(flate2::write::GzEncoder::new(out, level)),
            Encoding::Deflate => Encoder::Deflate(flate2::write::ZlibEncoder::new(out, level)),
            Encoding::Br => Encoder::Br(Box::new(brotli::CompressorWriter::new(
                out,
                BROTLI_BUFFER,
                levels.brotli_quality,
                BROTLI_WINDOW,
            ))),
        }
    }

    fn writer(&mut self) -> &mut dyn Write {
        match self {
            Encoder::Gzip(e) => e,
            Encoder::Deflate(e) => e,
            Encoder::Br(e) => e.as_mut(),
        }
    }

    /// Compresses `data` and flushes, so everything written so far can be decoded.
    fn write_flushed(&mut self, data: &[u8]) -> io::Result<Vec<u8>> {
        let w = self.writer();
        w.write_all(data)?;
        w.flush()?;
        Ok(std::mem::take(match self {
            Encoder::Gzip(e) => e.get_mut(),
            Encoder::Deflate(e) => e.get_mut(),
            Encoder::Br(e) => e.get_mut(),
        }))
    }

    /// Compresses `data` and ends the stream; returns the remaining output.
    fn finish(mut self, data: &[u8]) -> io::Result<Vec<u8>> {
        self.writer().write_all(data)?;
        match self {
            Encoder::Gzip(e) => e.finish(),
            Encoder::Deflate(e) => e.finish(),
            Encoder::Br(e) => Ok(e.into_inner()),
        }
    }
}

/// Compresses a whole body.
fn compress_all(encoding: Encoding, levels: Levels, body: &[u8]) -> io::Result<Vec<u8>> {
    Encoder::new(encoding, levels, body.len() / 4 + 64).finish(body)
}

/// The body hook one request gets.
struct CompressHook {
    options: Rc<CompressionOptions>,
    /// What the request accepts ([`negotiate`]).
    accepted: Option<Encoding>,
    is_head: bool,
    /// The coding being applied (set by `start`).
    chosen: Option<Encoding>,
    /// The encoder of a streamed body.
    streaming: Option<Encoder>,
}

impl CompressHook {
    fn levels(&self) -> Levels {
        Levels {
            level: self.options.level,
            brotli_quality: self.options.brotli_quality,
        }
    }
}

impl BodyHook for CompressHook {
    fn start(&mut self, res: &Res, buffered_len: Option<usize>) -> bool {
        let status = res.status_code();
        if (100..200).contains(&status) || status == 204 || status == 304 {
            return false; // no body (Express drops the Content-Type of 204/304 too)
        }
        let wanted = match &self.options.filter {
            Some(filter) => filter(res),
            None => should_compress(res),
        };
        if !wanted || res.get("cache-control").is_some_and(|cc| no_transform(&cc)) {
            return false;
        }
        vary_accept_encoding(res);
        let threshold = self.options.threshold as f64;
        let below = match res.get("content-length") {
            Some(len) => js_number(&len) < threshold,
            None => buffered_len.is_some_and(|len| (len as f64) < threshold),
        };
        if below {
            return false;
        }
        let encoded = res
            .get("content-encoding")
            .is_some_and(|e| !e.is_empty() && e != "identity");
        if encoded || self.is_head {
            return false;
        }
        let Some(encoding) = self.accepted else {
            return false;
        };
        res.set_static("content-encoding", encoding.name());
        res.remove("content-length");
        self.chosen = Some(encoding);
        if buffered_len.is_none() {
            self.streaming = Some(Encoder::new(encoding, self.levels(), 0));
        }
        true
    }

    fn write(&mut self, chunk: &[u8], down: &BodySink) -> bool {
        let Some(encoder) = self.streaming.as_mut() else {
            return down.write(chunk);
        };
        if chunk.is_empty() {
            return down.write(chunk);
        }
        match encoder.write_flushed(chunk) {
            Ok(out) => down.write(&out),
            Err(e) => {
                log::error!("compression: {e}");
                false
            }
        }
    }

    fn end(&mut self, last: &[u8], down: BodySink) {
        let levels = self.levels();
        if let Some(encoder) = self.streaming.take() {
            match encoder.finish(last) {
                Ok(tail) => down.end(&tail),
                Err(e) => {
                    log::error!("compression: {e}");
                    down.abort();
                }
            }
            return;
        }
        let Some(encoding) = self.chosen else {
            down.end(last);
            return;
        };
        if last.len() < self.options.pool_threshold {
            match compress_all(encoding, levels, last) {
                Ok(out) => down.end(&out),
                Err(e) => {
                    log::error!("compression: {e}");
                    down.abort();
                }
            }
            return;
        }
        // A large body: compressed on the thread pool while the loop goes on.
        let body = last.to_vec();
        let handle = down.res().loop_handle().clone();
        handle.queue_work(
            move || compress_all(encoding, levels, &body),
            move |_lp, done| match done {
                Ok(Ok(out)) => down.end(&out),
                Ok(Err(e)) => {
                    log::error!("compression: {e}");
                    down.abort();
                }
                Err(e) => {
                    log::error!("compression on the thread pool failed: {e:?}");
                    down.abort();
                }
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiation_follows_negotiator() {
        use Encoding::*;
        let cases: &[(Option<&str>, Option<Encoding>)] = &[
            (None, None),
            (Some(""), None),
            (Some("gzip"), Some(Gzip)),
            (Some("gzip, deflate, br"), Some(Br)),
            (Some("deflate, gzip"), Some(Gzip)),
            (Some("deflate"), Some(Deflate)),
            (Some("*"), Some(Br)),
            (Some("*;q=0"), None),
            (Some("gzip;q=abc"), None),
            (Some("gzip;q=abc, deflate"), Some(Deflate)),
            (Some("br;q=0.5, gzip;q=0.8"), Some(Gzip)),
            (Some("identity"), None),
            (Some("identity;q=1, gzip;q=0.5"), None),
            (Some("gzip;q=0.5"), Some(Gzip)),
            (Some("deflate;q=0.5"), Some(Deflate)),
            (Some("GZIP"), Some(Gzip)),
            (Some("gzip;q=0"), None),
            (Some(",,;;==,"), None),
            (Some("compress, x-gzip"), None),
            (Some("br;q=1e-3"), Some(Br)),
        ];
        for (header, want) in cases {
            assert_eq!(negotiate(*header), *want, "{header:?}");
        }
    }

    #[test]
    fn parse_float_is_javascripts() {
        assert_eq!(parse_float("0.5"), 0.5);
        assert_eq!(parse_float(" 1abc"), 1.0);
        assert_eq!(parse_float(".5"), 0.5);
        assert_eq!(parse_float("5."), 5.0);
        assert_eq!(parse_float("1e2x"), 100.0);
        assert_eq!(parse_float("1e"), 1.0);
        assert!(parse_float("abc").is_nan());
        assert!(parse_float(".").is_nan());
        assert!(parse_float("").is_nan());
        assert_eq!(parse_float("-Infinity"), f64::NEG_INFINITY);
    }

    #[test]
    fn compressible_types() {
        for t in [
            "text/html; charset=utf-8",
            "application/json",
            "application/octet-stream",
            "image/svg+xml",
            "application/ld+json",
            " TEXT/PLAIN",
        ] {
            assert!(compressible(t), "{t}");
        }
        for t in ["image/png", "application/zip", "video/mp4", "", ";"] {
            assert!(!compressible(t), "{t}");
        }
    }

    #[test]
    fn no_transform_directive() {
        assert!(no_transform("no-transform"));
        assert!(no_transform("public, No-Transform , max-age=1"));
        assert!(!no_transform("no-transforms"));
        assert!(!no_transform("public"));
    }
}

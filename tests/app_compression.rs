//! The compression middleware and the body hook through the public API over real sockets:
//! each coding decodes back to what the handler sent, the cases the package leaves alone,
//! streamed bodies (a large file, a handler writing pieces that reach the client one by one),
//! a large body compressed on the thread pool while the loop answers another client, and
//! `Accept-Encoding` garbage.

mod express_twin;

use std::cell::{Cell, RefCell};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::rc::Rc;
use std::time::{Duration, Instant};

use express_twin::{exchange, serve_oneloop, Reply};
use oneloop::app::compression::{compression, compression_with, CompressionOptions};
use oneloop::app::{App, BodyHook, BodySink, Res};

/// A text body of `len` bytes that compresses (but not to nothing).
fn text(len: usize) -> String {
    let mut s = String::with_capacity(len + 32);
    let mut i = 0u64;
    while s.len() < len {
        s.push_str(&format!(
            "line {i} value {} ",
            i.wrapping_mul(2654435761) % 9973
        ));
        i += 1;
    }
    s.truncate(len);
    s
}

/// The body of a chunked reply, de-chunked.
fn dechunk(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut rest = body;
    loop {
        let line_end = rest
            .windows(2)
            .position(|w| w == b"\r\n")
            .expect("a chunk size line");
        let size = usize::from_str_radix(std::str::from_utf8(&rest[..line_end]).unwrap(), 16)
            .expect("a hex chunk size");
        rest = &rest[line_end + 2..];
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&rest[..size]);
        rest = &rest[size + 2..];
    }
}

fn header<'a>(r: &'a Reply, name: &str) -> Option<&'a str> {
    r.all(name).first().copied()
}

/// The payload: de-chunked if chunked.
fn payload(r: &Reply) -> Vec<u8> {
    if header(r, "transfer-encoding") == Some("chunked") {
        dechunk(&r.body)
    } else {
        r.body.clone()
    }
}

fn decode(coding: &str, data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    match coding {
        "gzip" => flate2::read::GzDecoder::new(data)
            .read_to_end(&mut out)
            .unwrap(),
        "deflate" => flate2::read::ZlibDecoder::new(data)
            .read_to_end(&mut out)
            .unwrap(),
        "br" => brotli::Decompressor::new(data, 4096)
            .read_to_end(&mut out)
            .unwrap(),
        other => panic!("unexpected coding {other}"),
    };
    out
}

/// The decoded payload of a reply.
fn decoded(r: &Reply) -> Vec<u8> {
    let p = payload(r);
    match header(r, "content-encoding") {
        Some(c) => decode(c, &p),
        None => p,
    }
}

const TEXT_LEN: usize = 5000;

fn app() -> App {
    let mut app = App::new();
    app.use_mw(compression());
    app.get("/text", |_req, res| res.send_text(text(TEXT_LEN)));
    app.get("/json", |_req, res| {
        let items: Vec<String> = (0..300).map(|i| format!("item-{i}")).collect();
        res.json(&items)
    });
    app.get("/small", |_req, res| res.send_text(text(1023)));
    app.get("/exact", |_req, res| res.send_text(text(1024)));
    app.get("/no-transform", |_req, res| {
        res.set("cache-control", "public, no-transform");
        res.send_text(text(TEXT_LEN))
    });
    app.get("/encoded", |_req, res| {
        res.set("content-encoding", "x-custom");
        res.send_text(text(TEXT_LEN))
    });
    app.get("/png", |_req, res| {
        res.type_("png");
        res.send_bytes(text(TEXT_LEN).as_bytes())
    });
    app.get("/vary", |_req, res| {
        res.set("vary", "Origin");
        res.send_text(text(TEXT_LEN))
    });
    app.get("/no-content", |_req, res| {
        res.status(204);
        res.end()
    });
    app
}

#[test]
fn each_coding_decodes_back_to_the_body() {
    let addr = serve_oneloop(app);
    for (accept, want) in [
        ("gzip", "gzip"),
        ("deflate", "deflate"),
        ("br", "br"),
        ("gzip, deflate, br", "br"),
        ("deflate, gzip", "gzip"),
        ("br;q=0.5, gzip;q=0.8", "gzip"),
        ("*", "br"),
    ] {
        for path in ["/text", "/json", "/exact"] {
            let r = exchange(addr, "GET", path, &[("Accept-Encoding", accept)]);
            assert_eq!(r.status, 200);
            assert_eq!(
                header(&r, "content-encoding"),
                Some(want),
                "{accept} {path}"
            );
            assert_eq!(header(&r, "vary"), Some("Accept-Encoding"));
            // A buffered body goes out with the compressed length.
            let len: usize = header(&r, "content-length").unwrap().parse().unwrap();
            assert_eq!(len, r.body.len());
            let plain = exchange(addr, "GET", path, &[]);
            assert!(len < plain.body.len(), "{path}: compressed {len}");
            assert_eq!(decoded(&r), plain.body, "{accept} {path}");
        }
    }
}

#[test]
fn responses_the_package_leaves_alone() {
    let addr = serve_oneloop(app);
    let gz = [("Accept-Encoding", "gzip")];
    let check = |r: &Reply, vary: Option<&str>, len: usize| {
        assert_eq!(header(r, "content-encoding"), None);
        assert_eq!(header(r, "vary"), vary);
        assert_eq!(header(r, "content-length"), Some(len.to_string().as_str()));
    };
    // Below the threshold: untouched, but Vary is added (the package checks size after Vary).
    let r = exchange(addr, "GET", "/small", &gz);
    check(&r, Some("Accept-Encoding"), 1023);
    assert_eq!(r.body, text(1023).as_bytes());
    // no-transform, incompressible type: no Vary either.
    check(&exchange(addr, "GET", "/no-transform", &gz), None, TEXT_LEN);
    check(&exchange(addr, "GET", "/png", &gz), None, TEXT_LEN);
    // Already encoded.
    let r = exchange(addr, "GET", "/encoded", &gz);
    assert_eq!(header(&r, "content-encoding"), Some("x-custom"));
    assert_eq!(header(&r, "vary"), Some("Accept-Encoding"));
    assert_eq!(r.body, text(TEXT_LEN).as_bytes());
    // HEAD: no body, the uncompressed length.
    let r = exchange(addr, "HEAD", "/text", &gz);
    check(&r, Some("Accept-Encoding"), TEXT_LEN);
    assert!(r.body.is_empty());
    // No Accept-Encoding.
    let r = exchange(addr, "GET", "/text", &[]);
    check(&r, Some("Accept-Encoding"), TEXT_LEN);
    // 204: nothing to compress.
    let r = exchange(addr, "GET", "/no-content", &gz);
    assert_eq!(r.status, 204);
    assert_eq!(header(&r, "content-encoding"), None);
    // An existing Vary is extended.
    let r = exchange(addr, "GET", "/vary", &gz);
    assert_eq!(header(&r, "vary"), Some("Origin, Accept-Encoding"));
    assert_eq!(header(&r, "content-encoding"), Some("gzip"));
}

#[test]
fn etag_is_of_the_uncompressed_body_and_304_still_works() {
    let addr = serve_oneloop(app);
    let plain = exchange(addr, "GET", "/text", &[]);
    let gz = exchange(addr, "GET", "/text", &[("Accept-Encoding", "gzip")]);
    let tag = header(&plain, "etag").expect("an etag").to_owned();
    assert_eq!(header(&gz, "etag"), Some(tag.as_str()));
    let r = exchange(
        addr,
        "GET",
        "/text",
        &[("Accept-Encoding", "gzip"), ("If-None-Match", &tag)],
    );
    assert_eq!(r.status, 304);
    assert_eq!(header(&r, "content-encoding"), None);
    assert!(r.body.is_empty());
}

#[test]
fn accept_encoding_garbage_gets_a_clear_answer() {
    let addr = serve_oneloop(app);
    let long = "x-unknown;q=0.5, ".repeat(600);
    let long_then_gzip = format!("{long}gzip");
    for (accept, want) in [
        ("gzip;q=abc", None),
        ("*;q=0", None),
        ("", None),
        ("gzip;q=0", None),
        (",,;;==,", None),
        ("identity", None),
        ("gzip;q=abc, deflate", Some("deflate")),
        ("gzip;;;q=1;;", Some("gzip")),
        ("GZIP", Some("gzip")),
        ("br;q=-1, gzip;q=2", Some("gzip")),
        (long.as_str(), None),
        (long_then_gzip.as_str(), Some("gzip")),
    ] {
        let r = exchange(addr, "GET", "/text", &[("Accept-Encoding", accept)]);
        assert_eq!(r.status, 200, "{accept:?}");
        assert_eq!(header(&r, "content-encoding"), want, "{accept:?}");
        assert_eq!(decoded(&r), text(TEXT_LEN).as_bytes(), "{accept:?}");
    }
    // A control character is refused by the HTTP parser before any middleware runs.
    let r = exchange(addr, "GET", "/text", &[("Accept-Encoding", "\u{7f}gzip")]);
    assert_eq!(r.status, 400);
}

#[test]
fn a_large_file_streams_compressed() {
    let dir = std::env::temp_dir().join(format!("oneloop-compress-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("big.txt");
    let content = text(300 * 1024);
    std::fs::write(&file, &content).unwrap();
    let served = file.clone();
    let addr = serve_oneloop(move || {
        let mut app = App::new();
        app.use_mw(compression());
        app.get("/file", move |req, res| res.send_file(req, &served));
        app
    });
    for coding in ["gzip", "br", "deflate"] {
        let r = exchange(addr, "GET", "/file", &[("Accept-Encoding", coding)]);
        assert_eq!(r.status, 200);
        assert_eq!(header(&r, "content-encoding"), Some(coding));
        assert_eq!(header(&r, "transfer-encoding"), Some("chunked"));
        assert_eq!(header(&r, "content-length"), None);
        assert!(header(&r, "etag").is_some());
        let wire = payload(&r);
        assert!(wire.len() < content.len());
        assert_eq!(decode(coding, &wire), content.as_bytes());
    }
    // Without Accept-Encoding the file goes out as it is, with its length.
    let r = exchange(addr, "GET", "/file", &[]);
    assert_eq!(header(&r, "content-length"), Some("307200"));
    assert_eq!(r.body, content.as_bytes());
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The first piece a handler writes reaches the client, decodable, before the handler writes
/// the rest: each write is flushed through the compressor.
#[test]
fn written_pieces_reach_the_client_one_by_one() {
    let addr = serve_oneloop(|| {
        let held: Rc<RefCell<Option<Res>>> = Rc::new(RefCell::new(None));
        let mut app = App::new();
        app.use_mw(compression());
        let h = Rc::clone(&held);
        app.get("/hold", move |_req, res| {
            res.type_("text");
            res.write(b"first piece;");
            *h.borrow_mut() = Some(res.clone());
        });
        app.get("/release", move |_req, res| {
            if let Some(held) = held.borrow_mut().take() {
                held.write(b"second piece;");
                held.write(&[]);
                held.end();
            }
            res.send_text("released")
        });
        app
    });
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(
        b"GET /hold HTTP/1.1\r\nHost: t\r\nAccept-Encoding: gzip\r\nConnection: close\r\n\r\n",
    )
    .unwrap();
    // Read until the first piece decodes (a streaming decoder over what came so far).
    let mut got = Vec::new();
    let mut decoder = flate2::write::GzDecoder::new(Vec::new());
    let mut fed = 0;
    let deadline = Instant::now() + Duration::from_secs(10);
    while !decoder.get_ref().ends_with(b"first piece;") {
        assert!(Instant::now() < deadline, "the first piece never came");
        let mut buf = [0u8; 4096];
        let n = s
            .read(&mut buf)
            .unwrap_or_else(|e| panic!("{e}: got {:?}", String::from_utf8_lossy(&got)));
        assert!(n > 0, "closed early");
        got.extend_from_slice(&buf[..n]);
        if let Some(split) = got.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&got[..split]).to_ascii_lowercase();
            assert!(head.contains("content-encoding: gzip"), "{head}");
            // Feed the complete chunks received so far.
            let body = &got[split + 4..];
            let mut rest = body;
            let mut data = Vec::new();
            while let Some(le) = rest.windows(2).position(|w| w == b"\r\n") {
                let size =
                    usize::from_str_radix(std::str::from_utf8(&rest[..le]).unwrap(), 16).unwrap();
                if rest.len() < le + 2 + size + 2 {
                    break;
                }
                data.extend_from_slice(&rest[le + 2..le + 2 + size]);
                rest = &rest[le + 2 + size + 2..];
            }
            decoder.write_all(&data[fed..]).unwrap();
            decoder.flush().unwrap();
            fed = data.len();
        }
    }
    let r = exchange(addr, "GET", "/release", &[]);
    assert_eq!(r.body, b"released");
    s.read_to_end(&mut got).unwrap();
    let split = got.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    assert_eq!(
        decode("gzip", &dechunk(&got[split + 4..])),
        b"first piece;second piece;"
    );
}

/// A 20 MiB body is compressed on the thread pool: a second client's cheap request, sent
/// after the big one's handler ran, is answered while the big response has not started.
#[test]
fn a_large_body_compresses_on_the_pool_while_the_loop_answers() {
    let addr = serve_oneloop(|| {
        let big_started = Rc::new(Cell::new(false));
        let mut app = App::new();
        app.use_mw(compression());
        let started = Rc::clone(&big_started);
        app.get("/big", move |_req, res| {
            started.set(true);
            res.send_text(text(20 * 1024 * 1024))
        });
        app.get("/cheap", move |_req, res| {
            res.send_text(if big_started.get() {
                "big started"
            } else {
                "too early"
            })
        });
        app
    });
    let mut big = TcpStream::connect(addr).unwrap();
    big.write_all(
        b"GET /big HTTP/1.1\r\nHost: t\r\nAccept-Encoding: gzip\r\nConnection: close\r\n\r\n",
    )
    .unwrap();
    // Ask until the big handler has run (its request may not have been read yet).
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let r = exchange(addr, "GET", "/cheap", &[]);
        assert!(Instant::now() < deadline, "the big handler never ran");
        if r.body == b"big started" {
            break;
        }
    }
    // The cheap answer came while the big body was still being compressed.
    big.set_nonblocking(true).unwrap();
    let mut one = [0u8; 1];
    let nothing_yet =
        matches!(big.peek(&mut one), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock);
    assert!(nothing_yet, "the big response arrived before the cheap one");
    big.set_nonblocking(false).unwrap();
    big.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let mut got = Vec::new();
    big.read_to_end(&mut got).unwrap();
    let split = got.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&got[..split]).to_ascii_lowercase();
    assert!(head.contains("content-encoding: gzip"), "{head}");
    assert_eq!(
        decode("gzip", &got[split + 4..]),
        text(20 * 1024 * 1024).as_bytes()
    );
}

/// Records what passes a point of the hook stack.
struct Observe {
    seen: usize,
}

impl BodyHook for Observe {
    fn start(&mut self, _res: &Res, _buffered_len: Option<usize>) -> bool {
        true
    }

    fn write(&mut self, chunk: &[u8], down: &BodySink) -> bool {
        self.seen += chunk.len();
        down.write(chunk)
    }

    fn end(&mut self, last: &[u8], down: BodySink) {
        self.seen += last.len();
        down.res().set("x-seen", &self.seen.to_string());
        down.end(last)
    }
}

/// Hooks stack: the last installed sees the handler's body first. An observer installed after
/// compression sees the plain body; one installed before it sees the compressed bytes (and
/// the delayed end of a pool compression). Options: threshold and the filter.
#[test]
fn hooks_stack_last_installed_first() {
    let addr = serve_oneloop(|| {
        let mut app = App::new();
        let observer = |_req: &mut oneloop::app::Req, res: &mut Res, next: oneloop::app::Next| {
            res.on_body(Observe { seen: 0 });
            next.call();
        };
        app.use_(observer);
        app.use_mw(compression_with(CompressionOptions {
            threshold: 10,
            pool_threshold: 4096,
            filter: Some(Rc::new(|res: &Res| res.get("x-no-compress").is_none())),
            ..CompressionOptions::default()
        }));
        app.use_(observer);
        app.get("/text", |_req, res| res.send_text(text(TEXT_LEN)));
        app.get("/tiny", |_req, res| res.send_text(text(20)));
        app.get("/png", |_req, res| {
            res.type_("png").set("x-no-compress", "1");
            res.send_bytes(text(TEXT_LEN).as_bytes())
        });
        app
    });
    // The inner observer sets x-seen first (the plain length); the outer one overwrites it
    // with what reached it: the compressed length, sent as Content-Length.
    let r = exchange(addr, "GET", "/text", &[("Accept-Encoding", "gzip")]);
    assert_eq!(header(&r, "content-encoding"), Some("gzip"));
    let wire = r.body.len();
    assert!(wire < TEXT_LEN);
    assert_eq!(header(&r, "x-seen"), Some(wire.to_string().as_str()));
    assert_eq!(decoded(&r), text(TEXT_LEN).as_bytes());
    // threshold 10: a 20-byte body is compressed.
    let r = exchange(addr, "GET", "/tiny", &[("Accept-Encoding", "br")]);
    assert_eq!(header(&r, "content-encoding"), Some("br"));
    assert_eq!(decoded(&r), text(20).as_bytes());
    // The filter replaced the type rule: png is compressible here, unless x-no-compress.
    let r = exchange(addr, "GET", "/png", &[("Accept-Encoding", "gzip")]);
    assert_eq!(header(&r, "content-encoding"), None);
    assert_eq!(header(&r, "x-seen"), Some(TEXT_LEN.to_string().as_str()));
}

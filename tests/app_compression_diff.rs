//! compression against Express 5 + the real `compression` package (1.8.2, pinned in
//! tests/node/package.json; twin: tests/node/compression_app.js): the same requests (routes ×
//! `Accept-Encoding` values, garbage included, GET and HEAD) must give the same status,
//! `Content-Encoding`, `Vary` and decoded body, and the same framing, except one documented
//! difference: a compressed *buffered* body goes out with its `Content-Length` here, chunked
//! from the package.

mod express_twin;

use std::io::Read;

use express_twin::{exchange, serve_express, serve_oneloop, Reply};
use oneloop::app::compression::compression;
use oneloop::app::App;

/// The same text as `text` in tests/node/compression_app.js.
fn text(len: usize) -> String {
    let mut s = String::new();
    let mut i = 0u64;
    while s.len() < len {
        s.push_str(&format!("line {i} value {} ", (i * 2654435761) % 9973));
        i += 1;
    }
    s.truncate(len);
    s
}

fn oneloop_app(file: std::path::PathBuf) -> App {
    let mut app = App::new();
    app.use_mw(compression());
    app.get("/text", |_req, res| res.send_text(text(5000)));
    app.get("/json", |_req, res| {
        let items: Vec<String> = (0..300).map(|i| format!("item-{i}")).collect();
        res.json(&items)
    });
    app.get("/small", |_req, res| res.send_text(text(1023)));
    app.get("/exact", |_req, res| res.send_text(text(1024)));
    app.get("/html", |_req, res| res.send(text(3000)));
    app.get("/no-transform", |_req, res| {
        res.set("cache-control", "public, no-transform");
        res.send_text(text(5000))
    });
    app.get("/encoded", |_req, res| {
        res.set("content-encoding", "x-custom");
        res.send_text(text(5000))
    });
    app.get("/png", |_req, res| {
        res.type_("png");
        res.send_bytes(text(5000).as_bytes())
    });
    app.get("/bytes", |_req, res| res.send_bytes(text(5000).as_bytes()));
    app.get("/vary", |_req, res| {
        res.set("vary", "Origin");
        res.send_text(text(5000))
    });
    app.get("/no-content", |_req, res| {
        res.status(204);
        res.end()
    });
    app.get("/stream", |_req, res| {
        res.type_("text");
        let t = text(50000);
        for piece in t.as_bytes().chunks(4096) {
            res.write(piece);
        }
        res.end()
    });
    app.get("/stream-small", |_req, res| {
        res.type_("text");
        res.write(b"tiny");
        res.end()
    });
    app.get("/file", move |req, res| res.send_file(req, &file));
    app
}

fn header<'a>(r: &'a Reply, name: &str) -> Option<&'a str> {
    r.all(name).first().copied()
}

fn dechunk(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut rest = body;
    loop {
        let le = rest.windows(2).position(|w| w == b"\r\n").unwrap();
        let size = usize::from_str_radix(std::str::from_utf8(&rest[..le]).unwrap(), 16).unwrap();
        rest = &rest[le + 2..];
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&rest[..size]);
        rest = &rest[size + 2..];
    }
}

/// The body as the handler sent it: de-chunked and decoded.
fn decoded(r: &Reply) -> Vec<u8> {
    if r.body.is_empty() {
        return Vec::new(); // HEAD
    }
    let wire = if header(r, "transfer-encoding") == Some("chunked") {
        dechunk(&r.body)
    } else {
        r.body.clone()
    };
    let mut out = Vec::new();
    match header(r, "content-encoding") {
        Some("gzip") => {
            flate2::read::GzDecoder::new(&wire[..])
                .read_to_end(&mut out)
                .unwrap();
        }
        Some("deflate") => {
            flate2::read::ZlibDecoder::new(&wire[..])
                .read_to_end(&mut out)
                .unwrap();
        }
        Some("br") => {
            brotli::Decompressor::new(&wire[..], 4096)
                .read_to_end(&mut out)
                .unwrap();
        }
        _ => out = wire,
    }
    out
}

const ROUTES: [&str; 15] = [
    "/text",
    "/json",
    "/small",
    "/exact",
    "/html",
    "/no-transform",
    "/encoded",
    "/png",
    "/bytes",
    "/vary",
    "/no-content",
    "/stream",
    "/stream-small",
    "/file",
    "/missing",
];

/// Routes whose body is sent buffered (`send`/`json`; small files too, but /file is large).
const BUFFERED: [&str; 9] = [
    "/text",
    "/json",
    "/small",
    "/exact",
    "/html",
    "/no-transform",
    "/encoded",
    "/bytes",
    "/vary",
];

const ACCEPTS: [Option<&str>; 14] = [
    None,
    Some("gzip"),
    Some("deflate"),
    Some("br"),
    Some("gzip, deflate, br"),
    Some("deflate, gzip"),
    Some("br;q=0.5, gzip;q=0.8"),
    Some("*"),
    Some("identity"),
    Some(""),
    Some("gzip;q=abc"),
    Some("*;q=0"),
    Some("gzip;q=abc, deflate;q=0.2"),
    Some("x-unknown;q=0.5, compress"),
];

#[test]
fn compression_matches_the_package() {
    let (_twin, express) = serve_express("compression_app.js", &["express", "compression"]);
    let dir = std::env::temp_dir().join(format!("oneloop-compression-diff-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("big.txt");
    std::fs::write(&file, text(200 * 1024)).unwrap();
    let served = file.clone();
    let oneloop = serve_oneloop(move || oneloop_app(served));
    let mut compared = 0;
    for path in ROUTES {
        for accept in ACCEPTS {
            for method in ["GET", "HEAD"] {
                let headers: Vec<(&str, &str)> =
                    accept.map(|a| ("Accept-Encoding", a)).into_iter().collect();
                let a = exchange(oneloop, method, path, &headers);
                let b = exchange(express, method, path, &headers);
                let what = format!("{method} {path} Accept-Encoding: {accept:?}");
                assert_eq!(a.status, b.status, "{what}");
                for h in ["content-encoding", "vary", "transfer-encoding"] {
                    let (ha, hb) = (header(&a, h), header(&b, h));
                    let buffered_compressed = BUFFERED.contains(&path)
                        && header(&b, "content-encoding").is_some_and(|e| e != "x-custom");
                    if h == "transfer-encoding" && buffered_compressed {
                        // The documented difference: Content-Length here, chunked there.
                        assert_eq!(hb, Some("chunked"), "{what}");
                        assert_eq!(ha, None, "{what}");
                        continue;
                    }
                    if h == "transfer-encoding" && method == "HEAD" && !BUFFERED.contains(&path) {
                        // The HTTP layer (not compression) says `chunked` on a streamed HEAD
                        // response, which Node leaves out: both are allowed (RFC 9110 9.3.2).
                        continue;
                    }
                    assert_eq!(ha, hb, "{what}: {h}");
                }
                let buffered_compressed = BUFFERED.contains(&path)
                    && method == "GET"
                    && header(&a, "content-encoding").is_some_and(|e| e != "x-custom");
                if buffered_compressed {
                    let len: usize = header(&a, "content-length").unwrap().parse().unwrap();
                    assert_eq!(len, a.body.len(), "{what}");
                    assert_eq!(header(&b, "content-length"), None, "{what}");
                } else if path != "/missing" {
                    assert_eq!(
                        header(&a, "content-length"),
                        header(&b, "content-length"),
                        "{what}: content-length"
                    );
                }
                if path != "/missing" {
                    assert_eq!(decoded(&a), decoded(&b), "{what}: body");
                }
                compared += 1;
            }
        }
    }
    assert_eq!(compared, ROUTES.len() * ACCEPTS.len() * 2);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `negotiate` against the negotiator the package runs (0.6.4, nested under compression in
/// tests/node), called as the package calls it, on 3,000 generated `Accept-Encoding` values
/// built from codings, `*`, odd `q` values and stray separators.
#[test]
fn negotiation_matches_the_package_on_generated_headers() {
    use oneloop::app::compression::negotiate;
    use std::process::{Command, Stdio};

    const PIECES: [&str; 26] = [
        "gzip", "br", "deflate", "identity", "*", "GZIP", "x-gzip", "compress", ";q=0", ";q=1",
        ";q=0.5", ";q=abc", ";q=", ";q=1e-3", ";q=-1", ";q=.9", "; q=0.2", ";level=1", ",", ", ",
        " ", ";", "=", ";q=2", ";q", "q=0.7",
    ];
    let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let headers: Vec<String> = (0..3000)
        .map(|_| {
            let n = (next() % 8) as usize;
            (0..n)
                .map(|_| PIECES[(next() % PIECES.len() as u64) as usize])
                .collect()
        })
        .collect();
    let script = r#"
        const Negotiator = require('./node_modules/compression/node_modules/negotiator');
        let input = '';
        process.stdin.on('data', (d) => { input += d; });
        process.stdin.on('end', () => {
          const out = JSON.parse(input).map((h) => {
            const req = { headers: { 'accept-encoding': h } };
            let m = new Negotiator(req).encoding(['br', 'gzip', 'deflate', 'identity'], ['br', 'gzip']);
            if (!h) m = 'identity';
            return m === undefined || m === 'identity' ? null : m;
          });
          console.log(JSON.stringify(out));
        });
    "#;
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/node");
    assert!(
        dir.join("node_modules/compression/node_modules/negotiator")
            .is_dir(),
        "run ./test.sh (npm ci --prefix tests/node)"
    );
    let mut child = Command::new("node")
        .args(["-e", script])
        .current_dir(&dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("node (v20) must be installed");
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        stdin
            .write_all(serde_json::to_string(&headers).unwrap().as_bytes())
            .unwrap();
    }
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let want: Vec<Option<String>> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(want.len(), headers.len());
    let mut compressed = 0;
    for (h, want) in headers.iter().zip(&want) {
        let got = negotiate(Some(h)).map(|e| e.name().to_owned());
        assert_eq!(&got, want, "Accept-Encoding: {h:?}");
        compressed += usize::from(got.is_some());
    }
    // The generator must exercise both outcomes.
    assert!(compressed > 300 && compressed < 2700, "{compressed}");
}

//! `cors` and `helmet` against the real npm packages: the same requests go to a oneloop app and
//! to its Express 5 twin (tests/node/security_app.js, run by `node` with the packages from
//! tests/node/package.json, installed by ./test.sh), and the status and every CORS and security
//! header must match.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use oneloop::app::cors::{cors, AllowOrigin, CorsOptions};
use oneloop::app::helmet::{self, Csp, FrameOptions, HelmetOptions, Hsts};
use oneloop::app::App;
use oneloop::http::ServerConfig;
use oneloop::runtime::Loop;

/// The headers compared; any other (Date, Content-Length, Connection...) may differ.
const COMPARED: [&str; 22] = [
    "access-control-allow-origin",
    "access-control-allow-credentials",
    "access-control-allow-methods",
    "access-control-allow-headers",
    "access-control-expose-headers",
    "access-control-max-age",
    "vary",
    "content-security-policy",
    "content-security-policy-report-only",
    "cross-origin-embedder-policy",
    "cross-origin-opener-policy",
    "cross-origin-resource-policy",
    "origin-agent-cluster",
    "referrer-policy",
    "strict-transport-security",
    "x-content-type-options",
    "x-dns-prefetch-control",
    "x-download-options",
    "x-frame-options",
    "x-permitted-cross-domain-policies",
    "x-xss-protection",
    "x-powered-by",
];

/// A request: method, path, extra headers.
type Case<'a> = (&'a str, &'a str, Vec<(&'a str, &'a str)>);

fn oneloop_app() -> App {
    let mut app = App::new();
    app.set_etag(false);
    app.use_mw_at("/any", cors(CorsOptions::default()));
    app.use_mw_at(
        "/list",
        cors(CorsOptions {
            origin: AllowOrigin::list(["https://a.example", "https://b.example"]),
            credentials: true,
            max_age: Some(600),
            exposed_headers: vec!["X-Total".into(), "X-Page".into()],
            allowed_headers: Some(vec!["Content-Type".into(), "Authorization".into()]),
            ..CorsOptions::default()
        }),
    );
    app.use_mw_at(
        "/fixed",
        cors(CorsOptions {
            origin: AllowOrigin::Fixed("https://fixed.example".into()),
            methods: vec!["GET".into(), "POST".into()],
            ..CorsOptions::default()
        }),
    );
    app.use_mw_at(
        "/reflect",
        cors(CorsOptions {
            origin: AllowOrigin::Reflect,
            credentials: true,
            ..CorsOptions::default()
        }),
    );
    app.use_mw_at(
        "/pattern",
        cors(CorsOptions {
            origin: AllowOrigin::predicate(|o| o.ends_with(".trusted.example")),
            ..CorsOptions::default()
        }),
    );
    app.use_mw_at(
        "/cont",
        cors(CorsOptions {
            preflight_continue: true,
            options_success_status: 200,
            ..CorsOptions::default()
        }),
    );
    app.use_mw_at("/helmet", helmet::helmet());
    let custom = HelmetOptions {
        content_security_policy: Some(
            Csp::default()
                .directive("script-src", ["'self'", "https://cdn.example"])
                .without("upgrade-insecure-requests"),
        ),
        cross_origin_embedder_policy: Some("require-corp".into()),
        x_frame_options: Some(FrameOptions::Deny),
        strict_transport_security: Some(Hsts {
            max_age: 100,
            preload: true,
            ..Hsts::default()
        }),
        referrer_policy: Some(vec!["origin".into(), "unsafe-url".into()]),
        x_dns_prefetch_control: Some(true),
        x_xss_protection: false,
        ..HelmetOptions::default()
    };
    app.use_mw_at("/helmet2", helmet::helmet_with(custom).expect("valid"));
    for p in [
        "any", "list", "fixed", "reflect", "pattern", "cont", "helmet", "helmet2",
    ] {
        app.all(&format!("/{p}/x"), |_req, res| {
            res.type_("text/plain").send("ok");
        });
    }
    app
}

fn serve_oneloop() -> SocketAddr {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let app = oneloop_app();
        let mut lp = Loop::new().unwrap();
        let server = app
            .listen_on(&mut lp, "127.0.0.1:0", ServerConfig::default(), |_, _| {})
            .unwrap();
        tx.send(server.local_addr().unwrap()).unwrap();
        lp.set_timeout(30_000, |lp| lp.stop()); // bounded
        lp.run().unwrap();
    });
    rx.recv_timeout(Duration::from_secs(5)).unwrap()
}

/// The Express twin; killed on drop.
struct Node(Child);

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn serve_express() -> (Node, SocketAddr) {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/node");
    assert!(
        std::path::Path::new(dir).join("node_modules/cors").is_dir()
            && std::path::Path::new(dir).join("node_modules/helmet").is_dir(),
        "tests/node/node_modules is missing cors/helmet: run ./test.sh (it runs `npm ci --prefix tests/node`)"
    );
    let mut child = Command::new("node")
        .arg("security_app.js")
        .current_dir(dir)
        .stdout(Stdio::piped())
        .spawn()
        .expect("node (v20) must be installed");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let port: u16 = line.trim().parse().expect("the twin prints its port");
    (Node(child), SocketAddr::from(([127, 0, 0, 1], port)))
}

/// Sends `method path` with `headers`; returns the status and the compared headers, lower-cased
/// names, sorted.
fn exchange(addr: SocketAddr, method: &str, path: &str, headers: &[(&str, &str)]) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n");
    for (n, v) in headers {
        req.push_str(&format!("{n}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).unwrap();
    let text = String::from_utf8_lossy(&buf);
    let head = text.split("\r\n\r\n").next().unwrap_or("");
    let mut lines = head.lines();
    let status = lines
        .next()
        .unwrap_or("")
        .get(9..12)
        .unwrap_or("")
        .to_owned();
    let mut kept: Vec<String> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .filter(|(n, _)| COMPARED.contains(&n.as_str()))
        .map(|(n, v)| format!("{n}: {v}"))
        .collect();
    kept.sort();
    format!("{status}\n{}", kept.join("\n"))
}

#[test]
fn cors_and_helmet_headers_match_the_npm_packages_under_express() {
    let (_node, express) = serve_express();
    let oneloop = serve_oneloop();
    let a = ("Origin", "https://a.example");
    let preflight = [
        ("Origin", "https://a.example"),
        ("Access-Control-Request-Method", "PUT"),
        ("Access-Control-Request-Headers", "X-Custom, Content-Type"),
    ];
    let cases: Vec<Case> = vec![
        ("GET", "/any/x", vec![a]),
        ("GET", "/any/x", vec![]),
        ("OPTIONS", "/any/x", preflight.to_vec()),
        ("OPTIONS", "/any/x", vec![a]),
        ("GET", "/list/x", vec![a]),
        ("GET", "/list/x", vec![("Origin", "https://evil.example")]),
        ("GET", "/list/x", vec![]),
        ("OPTIONS", "/list/x", vec![("Origin", "https://b.example")]),
        ("OPTIONS", "/list/x", preflight.to_vec()),
        ("GET", "/fixed/x", vec![("Origin", "https://other.example")]),
        ("OPTIONS", "/fixed/x", preflight.to_vec()),
        ("GET", "/reflect/x", vec![("Origin", "https://r.example")]),
        ("GET", "/reflect/x", vec![]),
        ("OPTIONS", "/reflect/x", preflight.to_vec()),
        (
            "GET",
            "/pattern/x",
            vec![("Origin", "https://app.trusted.example")],
        ),
        (
            "GET",
            "/pattern/x",
            vec![("Origin", "https://trusted.example.evil")],
        ),
        ("OPTIONS", "/cont/x", preflight.to_vec()),
        ("POST", "/cont/x", vec![a]),
        ("GET", "/helmet/x", vec![]),
        ("GET", "/helmet2/x", vec![]),
    ];
    let mut differences = Vec::new();
    for (method, path, headers) in &cases {
        let theirs = exchange(express, method, path, headers);
        let ours = exchange(oneloop, method, path, headers);
        if theirs != ours {
            differences.push(format!(
                "{method} {path} {headers:?}\n--- express:\n{theirs}\n--- oneloop:\n{ours}\n"
            ));
        }
    }
    assert!(
        differences.is_empty(),
        "{} of {} cases differ:\n{}",
        differences.len(),
        cases.len(),
        differences.join("\n")
    );
}

//! `cors` and `helmet` against the real npm packages: the same requests go to a oneloop app and
//! to its Express 5 twin (tests/node/security_app.js, run by `node` with the packages from
//! tests/node/package.json, installed by ./test.sh), and the status and every CORS and security
//! header must match.

mod express_twin;

use std::net::SocketAddr;

use express_twin::{exchange, serve_express, serve_oneloop};
use oneloop::app::cors::{cors, AllowOrigin, CorsOptions};
use oneloop::app::helmet::{self, Csp, FrameOptions, HelmetOptions, Hsts};
use oneloop::app::App;

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

/// The status and the compared headers of one exchange, sorted, as text.
fn compared(addr: SocketAddr, method: &str, path: &str, headers: &[(&str, &str)]) -> String {
    let reply = exchange(addr, method, path, headers);
    let mut kept: Vec<String> = reply
        .headers
        .iter()
        .filter(|(n, _)| COMPARED.contains(&n.as_str()))
        .map(|(n, v)| format!("{n}: {v}"))
        .collect();
    kept.sort();
    format!("{}\n{}", reply.status, kept.join("\n"))
}

#[test]
fn cors_and_helmet_headers_match_the_npm_packages_under_express() {
    let (_twin, express) = serve_express("security_app.js", &["cors", "helmet", "express"]);
    let oneloop = serve_oneloop(oneloop_app);
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
        let theirs = compared(express, method, path, headers);
        let ours = compared(oneloop, method, path, headers);
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

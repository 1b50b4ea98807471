//! Cookies against Express 5 + cookie-parser 1.4.7: the same `Cookie` headers (plain, quoted,
//! percent-encoded, malformed, JSON, signed by the real cookie-signature with the current or
//! the previous secret, tampered) give the same `req.cookies` / `req.signedCookies`, and
//! `res.cookie` writes the same `Set-Cookie` fields.

mod express_twin;

use std::net::SocketAddr;

use express_twin::{exchange, serve_express, serve_oneloop};
use oneloop::app::cookies::{CookieOptions, CookieSecrets, SameSite};
use oneloop::app::App;
use serde_json::json;

fn secrets() -> CookieSecrets {
    CookieSecrets::new(["new secret", "old secret"])
}

fn oneloop_app() -> App {
    let mut app = App::new();
    app.set_etag(false);
    app.get("/nosecret/read", |req, res| {
        res.json(&json!({"cookies": req.cookies().to_json(), "signed": {}}));
    });
    let s = secrets();
    app.get("/read", move |req, res| {
        res.json(&json!({
            "cookies": s.unsigned_cookies(req).to_json(),
            "signed": s.signed_cookies(req).to_json(),
        }));
    });
    let s = secrets();
    app.get("/set", move |_req, res| {
        res.cookie_with("plain", "v w;x\u{20ac}", &CookieOptions::default());
        let signed = CookieOptions {
            signed: Some(s.clone()),
            http_only: true,
            secure: true,
            same_site: Some(SameSite::Lax),
            max_age_ms: Some(60_000),
            domain: Some("example.com".into()),
            path: "/app".into(),
            partitioned: true,
            ..CookieOptions::default()
        };
        res.cookie_with("s", "ada", &signed);
        let expires = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_893_553_445);
        let strict = CookieOptions {
            same_site: Some(SameSite::Strict),
            expires: Some(expires), // 2030-01-02T03:04:05Z
            ..CookieOptions::default()
        };
        res.cookie_with("strict", "x", &strict);
        let none = CookieOptions {
            same_site: Some(SameSite::None),
            secure: true,
            ..CookieOptions::default()
        };
        res.cookie_with("none", "y", &none);
        res.type_("text/plain").send("ok");
    });
    app
}

/// A value signed by the real cookie-signature (through the twin's `/sign`).
fn signed_by_node(express: SocketAddr, value: &str, secret: &str) -> String {
    let secret = secret.replace(' ', "%20");
    let reply = exchange(
        express,
        "GET",
        &format!("/sign?v={value}&secret={secret}"),
        &[],
    );
    String::from_utf8(reply.body).unwrap()
}

fn body_json(addr: SocketAddr, path: &str, cookie: &str) -> serde_json::Value {
    let reply = exchange(addr, "GET", path, &[("Cookie", cookie)]);
    assert_eq!(reply.status, 200, "{path} with {cookie:?}");
    serde_json::from_slice(&reply.body).expect("a JSON body")
}

#[test]
fn cookies_and_signed_cookies_read_as_cookie_parser_reads_them() {
    let (_twin, express) = serve_express("cookies_app.js", &["cookie-parser", "express"]);
    let oneloop = serve_oneloop(oneloop_app);
    let current = signed_by_node(express, "ada", "new secret");
    let previous = signed_by_node(express, "bob", "old secret");
    let unknown = signed_by_node(express, "eve", "someone else");
    let mut tampered = current.clone();
    tampered.pop();
    tampered.push(if current.ends_with('A') { 'B' } else { 'A' });
    let json_signed = signed_by_node(express, "j:%7B%22n%22:1%7D", "new secret");
    let headers = [
        "a=1; b=2".to_owned(),
        "a=1; a=2".to_owned(),
        r#" a = "quoted" ;b=%E2%82%AC"#.to_owned(),
        "bad=%E0%A4%A; ok=%41".to_owned(),
        "novalue; c=3".to_owned(),
        "=nokey; d=4".to_owned(),
        r#"j=j:{"x":[1,2]}; z=j:0; n=j:null; f=j:false; e=j:"""#.to_owned(),
        "broken=j:{nope".to_owned(),
        "x".to_owned(),
        String::new(),
        format!("cur={current}; prev={previous}"),
        format!("unk={unknown}; tam={tampered}; plain=1"),
        "nodot=s:abc; empty=s:".to_owned(),
        format!("js={json_signed}"),
        format!("dup={current}; dup={unknown}"),
    ];
    let mut differences = Vec::new();
    for cookie in &headers {
        for path in ["/read", "/nosecret/read"] {
            let theirs = body_json(express, path, cookie);
            let ours = body_json(oneloop, path, cookie);
            if theirs != ours {
                differences.push(format!(
                    "{path} {cookie:?}\n  express {theirs}\n  oneloop {ours}"
                ));
            }
        }
    }
    assert!(
        differences.is_empty(),
        "{} cases differ:\n{}",
        differences.len(),
        differences.join("\n")
    );
    // The fixtures did what they claim: verified with the current and the previous secret,
    // refused otherwise.
    let read = body_json(oneloop, "/read", &headers[10]);
    assert_eq!(read["signed"], json!({"cur": "ada", "prev": "bob"}));
    let read = body_json(oneloop, "/read", &headers[11]);
    assert_eq!(read["signed"], json!({"unk": false, "tam": false}));
}

/// `Set-Cookie` fields without the `Expires` of cookies whose expiry is computed from now (it
/// may tick over a second between the two servers); those must carry one.
fn set_cookies(addr: SocketAddr) -> Vec<String> {
    let reply = exchange(addr, "GET", "/set", &[]);
    reply
        .all("set-cookie")
        .into_iter()
        .map(|v| {
            if v.contains("Max-Age=") {
                let kept: Vec<&str> = v
                    .split("; ")
                    .filter(|a| !a.starts_with("Expires="))
                    .collect();
                assert!(v.contains("; Expires="), "Max-Age comes with Expires: {v}");
                kept.join("; ")
            } else {
                v.to_owned()
            }
        })
        .collect()
}

#[test]
fn res_cookie_writes_the_set_cookie_fields_express_writes() {
    let (_twin, express) = serve_express("cookies_app.js", &["cookie-parser", "express"]);
    let oneloop = serve_oneloop(oneloop_app);
    assert_eq!(set_cookies(oneloop), set_cookies(express));
}

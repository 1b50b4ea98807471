//! Sessions against Express 5 + express-session 1.18.2 (tests/node/session_app.js): the same
//! scenario, a browser-like cookie jar on each side, must see the same bodies and the same
//! `Set-Cookie` decisions (when a cookie is sent, its name and attributes) at every step:
//! nothing set for an untouched session, set when a new session is written, not again for an
//! existing one, a new id at login, the old id forgotten, logout, a tampered cookie, and
//! rolling expiry with a max-age.

mod express_twin;

use std::collections::BTreeMap;
use std::net::SocketAddr;

use express_twin::{exchange, serve_express, serve_oneloop};
use oneloop::app::cookies::{CookieSecrets, SameSite};
use oneloop::app::session::{session, SessionOptions};
use oneloop::app::{App, AppError, Req};

fn text_of(req: &Req) -> Result<oneloop::app::session::Session, AppError> {
    req.session().ok_or(AppError::internal("no session"))
}

fn oneloop_app() -> App {
    let mut app = App::new();
    app.set_etag(false);
    let secrets = CookieSecrets::new(["keyboard cat", "old cat"]);
    let mut rolling = SessionOptions::new(secrets.clone());
    rolling.name = "r.sid".into();
    rolling.rolling = true;
    rolling.cookie.max_age_ms = Some(60_000);
    rolling.cookie.same_site = Some(SameSite::Lax);
    app.use_mw_at("/r", session(rolling));
    app.use_mw(session(SessionOptions::new(secrets)));
    for base in ["", "/r"] {
        app.get(&format!("{base}/peek"), |req, res| {
            res.type_("text/plain")
                .send(text_of(req)?.get::<u64>("views").unwrap_or(0).to_string());
            Ok(())
        });
        app.get(&format!("{base}/inc"), |req, res| {
            let s = text_of(req)?;
            let views = s.get::<u64>("views").unwrap_or(0) + 1;
            s.set("views", views);
            res.type_("text/plain").send(views.to_string());
            Ok(())
        });
        app.post(&format!("{base}/login"), |req, res| {
            let s = text_of(req)?;
            s.regenerate();
            s.set("user", "ada");
            res.type_("text/plain").send("ok");
            Ok(())
        });
        app.post(&format!("{base}/logout"), |req, res| {
            text_of(req)?.destroy();
            res.type_("text/plain").send("bye");
            Ok(())
        });
        app.get(&format!("{base}/me"), |req, res| {
            let user = text_of(req)?
                .get::<String>("user")
                .unwrap_or_else(|| "anon".into());
            res.type_("text/plain").send(user);
            Ok(())
        });
    }
    app
}

/// Runs the scenario against `addr`; returns one line per step: status, body, and each
/// `Set-Cookie` as its name and attribute names (values differ: random ids, dates).
fn scenario(addr: SocketAddr, base: &str) -> Vec<String> {
    let mut jar: BTreeMap<String, String> = BTreeMap::new();
    let mut log = Vec::new();
    let mut saved_old = String::new();
    let steps: &[(&str, &str, &str)] = &[
        ("GET", "/peek", "fresh client, untouched session"),
        ("GET", "/inc", "new session written"),
        ("GET", "/inc", "existing session"),
        ("GET", "/peek", "existing, read only"),
        ("POST", "/login", "regenerate"),
        ("GET", "/me", "after login"),
        ("OLD", "/inc", "the pre-login cookie"),
        ("POST", "/logout", "destroy"),
        ("GET", "/me", "after logout"),
        ("TAMPER", "/peek", "tampered cookie"),
    ];
    for (i, (method, path, why)) in steps.iter().enumerate() {
        let mut cookie_header = jar
            .iter()
            .map(|(n, v)| format!("{n}={v}"))
            .collect::<Vec<_>>()
            .join("; ");
        let method = match *method {
            "OLD" => {
                cookie_header = saved_old.clone();
                "GET"
            }
            "TAMPER" => {
                cookie_header = cookie_header.replace("s%3A", "s%3AX");
                "GET"
            }
            m => m,
        };
        if *path == "/login" {
            saved_old = cookie_header.clone();
        }
        let headers: Vec<(&str, &str)> = match cookie_header.is_empty() {
            true => vec![],
            false => vec![("Cookie", cookie_header.as_str())],
        };
        let reply = exchange(addr, method, &format!("{base}{path}"), &headers);
        let mut cookies = Vec::new();
        for set in reply.all("set-cookie") {
            let mut parts = set.split("; ");
            let (name, value) = parts.next().unwrap().split_once('=').unwrap();
            if !["OLD", "TAMPER"].contains(&steps[i].0) {
                jar.insert(name.to_owned(), value.to_owned());
            }
            let mut attrs: Vec<String> = parts
                .map(|a| a.split('=').next().unwrap().to_owned())
                .collect();
            attrs.sort();
            cookies.push(format!("{name} [{}]", attrs.join(",")));
        }
        log.push(format!(
            "{i} {why}: {} {:?} set-cookie: {cookies:?}",
            reply.status,
            String::from_utf8_lossy(&reply.body)
        ));
    }
    log
}

#[test]
fn sessions_behave_as_express_session_step_by_step() {
    let (_twin, express) = serve_express("session_app.js", &["express-session", "express"]);
    let oneloop = serve_oneloop(oneloop_app);
    for base in ["", "/r"] {
        let theirs = scenario(express, base);
        let ours = scenario(oneloop, base);
        assert_eq!(
            ours, theirs,
            "under {base:?}: oneloop (left) vs express-session (right)"
        );
    }
}

//! `RedisSessionStore` against a real redis-server: sessions shared by two apps on two loops,
//! connect-redis' key and JSON (`sess:<id>`, express-session's `cookie` object), the TTL as
//! `PX`, touch, destroy, Redis down answered 500 within the store's timeout, and an Express
//! app with express-session + connect-redis on the same server reading and writing the same
//! sessions (tests/node_redis/session_app.js).

mod express_twin;
mod redis_common;
mod stores_common;

use std::net::SocketAddr;
use std::rc::Rc;

use express_twin::exchange;
use oneloop::app::cookies::CookieSecrets;
use oneloop::app::session::{session, SessionOptions};
use oneloop::app::{App, AppError};
use oneloop::redis::stores::RedisSessionStore;
use oneloop::redis::Redis;
use oneloop::runtime::Loop;
use redis_common::RedisServer;
use stores_common::{eventually, get, int, serve_node, serve_with_redis, session_id};

/// The counter app of session_app.js, its sessions in Redis (`max_age_ms` for the cookie).
fn counter_app(lp: &mut Loop, redis: Redis, max_age_ms: Option<u64>, timeout_ms: u64) -> App {
    let mut app = App::new();
    app.set_etag(false);
    let mut options = SessionOptions::new(CookieSecrets::new(["keyboard cat"]));
    options.cookie.max_age_ms = max_age_ms;
    options.store = Rc::new(RedisSessionStore::new(lp, redis).timeout_ms(timeout_ms));
    app.use_mw(session(options));
    app.get("/peek", |req, res| {
        let s = req.session().ok_or(AppError::internal("no session"))?;
        res.type_("text/plain")
            .send(s.get::<u64>("views").unwrap_or(0).to_string());
        Ok(())
    });
    app.get("/inc", |req, res| {
        let s = req.session().ok_or(AppError::internal("no session"))?;
        let views = s.get::<u64>("views").unwrap_or(0) + 1;
        s.set("views", views);
        res.type_("text/plain").send(views.to_string());
        Ok(())
    });
    app.post("/logout", |req, res| {
        req.session()
            .ok_or(AppError::internal("no session"))?
            .destroy();
        res.type_("text/plain").send("bye");
        Ok(())
    });
    app
}

fn serve(server: &RedisServer, max_age_ms: Option<u64>) -> SocketAddr {
    serve_with_redis(&server.url(), move |lp, redis| {
        counter_app(lp, redis, max_age_ms, 2_000)
    })
}

/// `name=value` of the response's `connect.sid` cookie.
fn cookie_of(r: &express_twin::Reply) -> String {
    let set = r.all("set-cookie");
    let c = set
        .iter()
        .find(|c| c.starts_with("connect.sid="))
        .expect("a session cookie");
    c.split(';').next().unwrap().to_owned()
}

fn body(r: &express_twin::Reply) -> String {
    String::from_utf8_lossy(&r.body).into_owned()
}

#[test]
fn a_session_written_through_one_app_is_read_by_another_loop_on_the_same_server() {
    let server = RedisServer::start();
    let (a, b) = (serve(&server, None), serve(&server, None));
    let first = exchange(a, "GET", "/inc", &[]);
    assert_eq!(body(&first), "1");
    let cookie = cookie_of(&first);
    let key = format!("sess:{}", session_id(&cookie));
    eventually("the session saved", || get(server.port, &key).is_some());
    let second = exchange(b, "GET", "/inc", &[("cookie", &cookie)]);
    assert_eq!(body(&second), "2", "app B reads app A's session");
    eventually("B's save", || {
        get(server.port, &key).is_some_and(|j| j.contains("\"views\":2"))
    });
    assert_eq!(
        body(&exchange(a, "GET", "/peek", &[("cookie", &cookie)])),
        "2"
    );
}

#[test]
fn the_stored_session_is_express_session_json_under_sess_with_its_ttl_as_px() {
    let server = RedisServer::start();
    let browser_session = serve(&server, None);
    let cookie = cookie_of(&exchange(browser_session, "GET", "/inc", &[]));
    let key = format!("sess:{}", session_id(&cookie));
    eventually("the session saved", || get(server.port, &key).is_some());
    let json: serde_json::Value = serde_json::from_str(&get(server.port, &key).unwrap()).unwrap();
    assert_eq!(
        json,
        serde_json::json!({
            "cookie": {"originalMaxAge": null, "expires": null, "httpOnly": true, "path": "/"},
            "views": 1
        })
    );
    // No max-age: connect-redis' default TTL, one day.
    let pttl = int(server.port, &["PTTL", &key]);
    assert!(pttl > 86_000_000 && pttl <= 86_400_000, "PTTL {pttl}");

    let one_minute = serve(&server, Some(60_000));
    let cookie = cookie_of(&exchange(one_minute, "GET", "/inc", &[]));
    let key = format!("sess:{}", session_id(&cookie));
    eventually("the session saved", || get(server.port, &key).is_some());
    let json: serde_json::Value = serde_json::from_str(&get(server.port, &key).unwrap()).unwrap();
    assert_eq!(json["cookie"]["originalMaxAge"], 60_000);
    let expires = json["cookie"]["expires"].as_str().expect("an ISO date");
    assert!(expires.ends_with('Z') && expires.len() == 24, "{expires}");
    let pttl = int(server.port, &["PTTL", &key]);
    assert!(pttl > 50_000 && pttl <= 60_000, "a PX TTL in ms: {pttl}");
}

#[test]
fn an_unmodified_session_is_touched_and_a_destroyed_one_deleted() {
    let server = RedisServer::start();
    let app = serve(&server, Some(60_000));
    let cookie = cookie_of(&exchange(app, "GET", "/inc", &[]));
    let key = format!("sess:{}", session_id(&cookie));
    eventually("the session saved", || get(server.port, &key).is_some());
    redis_common::RedisServer::raw_to(server.port, &["PEXPIRE", &key, "5000"]);
    assert!(int(server.port, &["PTTL", &key]) <= 5_000);
    let peek = exchange(app, "GET", "/peek", &[("cookie", &cookie)]);
    assert_eq!(body(&peek), "1");
    eventually("the expiry pushed back to a minute", || {
        int(server.port, &["PTTL", &key]) > 50_000
    });
    assert!(
        get(server.port, &key).unwrap().contains("\"views\":1"),
        "a touch does not rewrite the data"
    );
    let bye = exchange(app, "POST", "/logout", &[("cookie", &cookie)]);
    assert_eq!(body(&bye), "bye");
    eventually("the key deleted", || get(server.port, &key).is_none());
    assert_eq!(
        body(&exchange(app, "GET", "/peek", &[("cookie", &cookie)])),
        "0"
    );
}

#[test]
fn redis_down_answers_500_through_the_error_middleware_within_the_store_timeout() {
    let mut server = RedisServer::start();
    let app = serve_with_redis(&server.url(), |lp, redis| {
        let mut app = counter_app(lp, redis, None, 300);
        app.use_error(|err, _req, res, _next| {
            res.status(err.status).send_text(&err.message);
        });
        app
    });
    let cookie = cookie_of(&exchange(app, "GET", "/inc", &[]));
    let key = format!("sess:{}", session_id(&cookie));
    eventually("the session saved", || get(server.port, &key).is_some());
    server.kill();
    // exchange() reads with a 5 s timeout: a hang would fail it.
    let r = exchange(app, "GET", "/peek", &[("cookie", &cookie)]);
    assert_eq!(r.status, 500);
    assert_eq!(body(&r), "session store: redis: command timed out");
    // A request without a session cookie does not need the store.
    assert_eq!(exchange(app, "GET", "/peek", &[]).status, 200);
}

#[test]
fn express_session_with_connect_redis_and_oneloop_share_sessions_both_ways() {
    let server = RedisServer::start();
    let ours = serve(&server, Some(60_000));
    let url = server.url();
    let (_node, express) = serve_node("session_app.js", &[&url]);
    // Express writes, oneloop reads and writes, Express reads.
    let first = exchange(express, "GET", "/inc", &[]);
    assert_eq!(body(&first), "1");
    let cookie = cookie_of(&first);
    let key = format!("sess:{}", session_id(&cookie));
    let theirs: serde_json::Value =
        serde_json::from_str(&get(server.port, &key).expect("connect-redis saved it")).unwrap();
    assert_eq!(
        body(&exchange(ours, "GET", "/inc", &[("cookie", &cookie)])),
        "2"
    );
    eventually("our save", || {
        get(server.port, &key).is_some_and(|j| j.contains("\"views\":2"))
    });
    let mine: serde_json::Value = serde_json::from_str(&get(server.port, &key).unwrap()).unwrap();
    // The same JSON shape: the cookie object's keys in the same order, the data beside it.
    let keys = |v: &serde_json::Value| -> Vec<String> {
        v["cookie"].as_object().unwrap().keys().cloned().collect()
    };
    assert_eq!(keys(&mine), keys(&theirs));
    assert_eq!(
        mine["cookie"]["originalMaxAge"],
        theirs["cookie"]["originalMaxAge"]
    );
    assert_eq!(
        body(&exchange(express, "GET", "/peek", &[("cookie", &cookie)])),
        "2"
    );

    // oneloop writes a new session, Express reads it, oneloop sees Express's logout.
    let mine_first = exchange(ours, "GET", "/inc", &[]);
    let cookie = cookie_of(&mine_first);
    let key = format!("sess:{}", session_id(&cookie));
    eventually("our save", || get(server.port, &key).is_some());
    assert_eq!(
        body(&exchange(express, "GET", "/inc", &[("cookie", &cookie)])),
        "2"
    );
    assert_eq!(
        body(&exchange(ours, "GET", "/peek", &[("cookie", &cookie)])),
        "2"
    );
    assert_eq!(
        body(&exchange(
            express,
            "POST",
            "/logout",
            &[("cookie", &cookie)]
        )),
        "bye"
    );
    assert!(get(server.port, &key).is_none());
    assert_eq!(
        body(&exchange(ours, "GET", "/peek", &[("cookie", &cookie)])),
        "0"
    );
}

//! examples/shop.rs as a client sees it, over real sockets: the front-end and its security
//! headers, login by session cookie and by bearer token, validation (400), auth (401), an image
//! upload with real curl, orders, the rate-limited login (429) and a CORS preflight. The same
//! scenarios run against its Express and Fastify twins (benches/compare/shop_express and
//! shop_fastify, real packages), so the
//! three apps are known to do the same thing when their sizes and speeds are compared.

mod examples_common;
mod express_twin;

use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

use examples_common::{example_binary, free_port, start_and_read_line, Running};
use express_twin::{exchange, exchange_with_body, Reply};
use serde_json::{json, Value};

fn start_oneloop() -> (Running, SocketAddr) {
    start(Command::new(example_binary("shop")))
}

fn start_express() -> (Running, SocketAddr) {
    start_twin("shop_express")
}

fn start_fastify() -> (Running, SocketAddr) {
    start_twin("shop_fastify")
}

/// A twin in benches/compare/<name> (its packages installed by ./test.sh: npm ci there).
fn start_twin(name: &str) -> (Running, SocketAddr) {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("benches/compare")
        .join(name);
    assert!(
        dir.join("node_modules").is_dir(),
        "benches/compare/{name}/node_modules is missing: run ./test.sh (npm ci there)"
    );
    let mut cmd = Command::new("node");
    cmd.arg("app.js").current_dir(dir);
    start(cmd)
}

fn start(mut cmd: Command) -> (Running, SocketAddr) {
    let port = free_port();
    cmd.env("PORT", port.to_string())
        .env("HOST", "127.0.0.1")
        .env(
            "SHOP_PUBLIC",
            concat!(env!("CARGO_MANIFEST_DIR"), "/examples/shop_public"),
        );
    let (shop, line) = start_and_read_line(cmd, Duration::from_secs(30));
    assert!(line.contains("listening"), "{line}");
    (shop, SocketAddr::from(([127, 0, 0, 1], port)))
}

/// A POST with a JSON body and extra headers.
fn post(addr: SocketAddr, path: &str, body: &Value, headers: &[(&str, &str)]) -> Reply {
    let mut all = vec![("Content-Type", "application/json")];
    all.extend_from_slice(headers);
    exchange_with_body(addr, "POST", path, &all, body.to_string().as_bytes())
}

fn json_of(r: &Reply) -> Value {
    serde_json::from_slice(&r.body).unwrap_or(Value::Null)
}

#[test]
fn the_shop_serves_its_front_end_logs_in_validates_uploads_and_takes_orders() {
    let (_shop, addr) = start_oneloop();
    shop_scenario(addr);
}

#[test]
fn the_express_twin_passes_the_same_scenario() {
    let (_shop, addr) = start_express();
    shop_scenario(addr);
}

#[test]
fn the_fastify_twin_passes_the_same_scenario() {
    let (_shop, addr) = start_fastify();
    shop_scenario(addr);
}

fn shop_scenario(addr: SocketAddr) {
    let page = exchange(addr, "GET", "/", &[]);
    assert_eq!(page.status, 200);
    assert!(String::from_utf8_lossy(&page.body).contains("oneloop shop"));
    assert!(page.all("content-security-policy")[0].starts_with("default-src 'self'"));

    let anon = post(
        addr,
        "/api/products",
        &json!({"name": "mug", "price": 3}),
        &[],
    );
    assert_eq!(
        (anon.status, json_of(&anon)),
        (401, json!({"error": "log in first"}))
    );

    let bad = post(
        addr,
        "/api/login",
        &json!({"user": "ada", "password": "x"}),
        &[],
    );
    assert_eq!(bad.status, 401);
    let ok = post(
        addr,
        "/api/login",
        &json!({"user": "ada", "password": "lovelace"}),
        &[],
    );
    assert_eq!(ok.status, 200);
    assert_eq!(json_of(&ok)["token"], "tok-ada");
    let cookie = ok.all("set-cookie")[0]
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    assert!(cookie.starts_with("connect.sid="), "{cookie}");

    let by_cookie = [("Cookie", cookie.as_str())];
    let invalid = post(
        addr,
        "/api/products",
        &json!({"name": "", "price": -1}),
        &by_cookie,
    );
    assert_eq!(invalid.status, 400);
    let wrong_shape = post(addr, "/api/products", &json!({"name": 5}), &by_cookie);
    assert_eq!(wrong_shape.status, 400);
    let mug = post(
        addr,
        "/api/products",
        &json!({"name": "mug", "price": 12.5}),
        &by_cookie,
    );
    assert_eq!(mug.status, 201);
    let mug_id = json_of(&mug)["id"].as_u64().unwrap();
    let by_token = [("Authorization", "Bearer tok-alan")];
    let lamp = post(
        addr,
        "/api/products",
        &json!({"name": "lamp", "price": 30}),
        &by_token,
    );
    assert_eq!(lamp.status, 201);

    let image = std::env::temp_dir().join(format!("shop-mug-{}.png", std::process::id()));
    std::fs::write(&image, b"\x89PNG not really").unwrap();
    let out = Command::new("curl")
        .args([
            "-s",
            "-b",
            &cookie,
            "-F",
            &format!("image=@{}", image.display()),
        ])
        .arg(format!("http://{addr}/api/images/{mug_id}"))
        .output()
        .expect("curl must be installed (./test.sh installs it)");
    let uploaded: Value = serde_json::from_slice(&out.stdout).expect("JSON from the upload");
    let stored = uploaded["image"].as_str().expect("an image path");
    assert_eq!(std::fs::read(stored).unwrap(), b"\x89PNG not really");
    let _ = std::fs::remove_file(&image);

    let items = json!({"items": [{"product_id": mug_id, "quantity": 2}]});
    let order = post(addr, "/api/orders", &items, &by_cookie);
    assert_eq!(order.status, 201);
    assert_eq!(json_of(&order)["total"].as_f64(), Some(25.0));
    let unknown = post(
        addr,
        "/api/orders",
        &json!({"items": [{"product_id": 999, "quantity": 1}]}),
        &by_cookie,
    );
    assert_eq!(unknown.status, 400);
    let mine = exchange(addr, "GET", "/api/orders", &[("Cookie", &cookie)]);
    assert_eq!(json_of(&mine).as_array().map(Vec::len), Some(1));
    let list = exchange(addr, "GET", "/api/products", &[]);
    assert_eq!(json_of(&list).as_array().map(Vec::len), Some(2));

    let preflight = exchange(
        addr,
        "OPTIONS",
        "/api/products",
        &[
            ("Origin", "http://localhost:5173"),
            ("Access-Control-Request-Method", "POST"),
        ],
    );
    assert_eq!(preflight.status, 204);
    assert_eq!(
        preflight.all("access-control-allow-origin"),
        ["http://localhost:5173"]
    );
    assert_eq!(preflight.all("access-control-allow-credentials"), ["true"]);
}

#[test]
fn the_login_is_rate_limited_to_five_attempts() {
    let (_shop, addr) = start_oneloop();
    login_limit_scenario(addr);
}

#[test]
fn the_express_twin_limits_its_login_the_same_way() {
    let (_shop, addr) = start_express();
    login_limit_scenario(addr);
}

#[test]
fn the_fastify_twin_limits_its_login_the_same_way() {
    let (_shop, addr) = start_fastify();
    login_limit_scenario(addr);
}

fn login_limit_scenario(addr: SocketAddr) {
    let statuses: Vec<u16> = (0..7)
        .map(|_| {
            post(
                addr,
                "/api/login",
                &json!({"user": "ada", "password": "guess"}),
                &[],
            )
            .status
        })
        .collect();
    assert_eq!(statuses, [401, 401, 401, 401, 401, 429, 429]);
    let limited = post(
        addr,
        "/api/login",
        &json!({"user": "ada", "password": "lovelace"}),
        &[],
    );
    assert_eq!(limited.status, 429, "even the right password waits");
    assert!(json_of(&limited)["error"]
        .as_str()
        .unwrap()
        .starts_with("Too many requests"));
}

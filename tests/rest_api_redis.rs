//! `examples/rest_api --redis URL` against a real redis-server: two rest_api processes see
//! the same products, GETs are cached (X-Cache) in Redis, writes invalidate the entries they
//! make stale, and Redis down answers 503 instead of hanging.

mod examples_common;
mod express_twin;
mod redis_common;
mod stores_common;

use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::time::{Duration, Instant};

use examples_common::{example_binary, free_port, Running};
use express_twin::{exchange, exchange_with_body, Reply};
use redis_common::RedisServer;
use stores_common::{eventually, get};

fn rest_api(redis_url: &str) -> (Running, SocketAddr) {
    let port = free_port();
    let child = Command::new(example_binary("rest_api"))
        .args(["--redis", redis_url, "--port", &port.to_string()])
        .env("LOG_LEVEL", "silent")
        .spawn()
        .expect("start rest_api");
    let running = Running(child);
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(addr).is_err() {
        assert!(Instant::now() < deadline, "rest_api did not listen");
        std::thread::sleep(Duration::from_millis(20));
    }
    (running, addr)
}

fn json(r: &Reply) -> serde_json::Value {
    serde_json::from_slice(&r.body).expect("a JSON body")
}

fn x_cache(r: &Reply) -> &str {
    r.all("x-cache").first().copied().unwrap_or("none")
}

fn send(addr: SocketAddr, method: &str, path: &str, body: &str) -> Reply {
    let headers = [("content-type", "application/json")];
    exchange_with_body(addr, method, path, &headers, body.as_bytes())
}

#[test]
fn two_rest_api_processes_share_products_and_cached_responses_through_redis() {
    let server = RedisServer::start();
    let url = server.url();
    let (_a, a) = rest_api(&url);
    let (_b, b) = rest_api(&url);
    let created = send(
        a,
        "POST",
        "/api/products",
        r#"{"name":"lamp","price":12.5}"#,
    );
    assert_eq!(created.status, 201);
    assert_eq!(
        json(&created),
        serde_json::json!({"id": 1, "name": "lamp", "price": 12.5})
    );
    assert!(get(server.port, "product:1").is_some());

    let from_b = exchange(b, "GET", "/api/products/1", &[]);
    assert_eq!((from_b.status, x_cache(&from_b)), (200, "MISS"));
    assert_eq!(json(&from_b)["name"], "lamp");
    eventually("the entry cached", || {
        get(server.port, "cache:GET /api/products/1").is_some()
    });
    let from_a = exchange(a, "GET", "/api/products/1", &[]);
    assert_eq!(
        (from_a.status, x_cache(&from_a)),
        (200, "HIT"),
        "A answers from B's entry"
    );
    assert_eq!(from_a.body, from_b.body);

    let list = exchange(b, "GET", "/api/products", &[]);
    assert_eq!(json(&list)["products"].as_array().unwrap().len(), 1);
    eventually("the list cached", || {
        get(server.port, "cache:GET /api/products").is_some()
    });

    // A write through B deletes the entries it makes stale: A sees the change at once.
    let second = send(b, "POST", "/api/products", r#"{"name":"desk","price":80}"#);
    assert_eq!(json(&second)["id"], 2);
    let list = exchange(a, "GET", "/api/products", &[]);
    assert_eq!(x_cache(&list), "MISS");
    let listed = json(&list);
    let names: Vec<&str> = listed["products"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["lamp", "desk"]);
    let put = send(
        b,
        "PUT",
        "/api/products/1",
        r#"{"name":"big lamp","price":20}"#,
    );
    assert_eq!(put.status, 200);
    assert_eq!(
        json(&exchange(a, "GET", "/api/products/1", &[]))["name"],
        "big lamp"
    );
    assert_eq!(send(a, "DELETE", "/api/products/1", "").status, 204);
    assert_eq!(exchange(b, "GET", "/api/products/1", &[]).status, 404);
    assert_eq!(
        send(b, "PUT", "/api/products/9", r#"{"name":"x","price":1}"#).status,
        404
    );
    assert_eq!(send(b, "DELETE", "/api/products/9", "").status, 404);
}

#[test]
fn rest_api_on_redis_answers_503_while_redis_is_down() {
    let mut server = RedisServer::start();
    let (_a, a) = rest_api(&server.url());
    assert_eq!(exchange(a, "GET", "/api/products", &[]).status, 200);
    server.kill();
    // exchange() reads with a 5 s timeout: the cache lookup (500 ms) then the store (1 s).
    let r = exchange(a, "GET", "/api/products/1", &[]);
    assert_eq!(r.status, 503);
    assert_eq!(json(&r)["message"], "storage unavailable");
}

//! An in-memory products API: `cargo run --release --example rest_api`, then e.g.
//! `curl -X POST localhost:3000/api/products -H 'content-type: application/json' -d '{"name":"lamp","price":12.5}'`.
//!
//! Routes: `GET/POST /api/products`, `GET/PUT/DELETE /api/products/:id`, and
//! `GET /api/products/:id/digest?rounds=N`, which hashes the product N times on the thread pool
//! so the loop keeps answering other requests meanwhile (compare `?inline=1`, which blocks the
//! loop). Listens on `PORT` (3000) / `HOST` (127.0.0.1), or `--port N`. `--workers N` runs N
//! loops on N threads sharing the port (0 = one per core); each worker has its own in-memory
//! store (workers share no mutable state), so run one worker when you want one consistent store.
//! SIGTERM/SIGINT drain gracefully.
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

use oneloop::app::{body, logger, App, AppError, Body, Req, Res};
use oneloop::cluster::{self, ClusterOptions};
use oneloop::http::ServerConfig;
use oneloop::shutdown::{graceful_shutdown, ShutdownOptions};
use serde::{Deserialize, Serialize};
use serde_json::json;

#[derive(Clone, Serialize)]
struct Product {
    id: u64,
    name: String,
    price: f64,
}

/// What a client may send: validated before it becomes a `Product`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ProductInput {
    name: String,
    price: f64,
}

#[derive(Default)]
struct Store {
    next_id: u64,
    products: BTreeMap<u64, Product>,
}

type Db = Rc<RefCell<Store>>;

/// Parses and validates the JSON body; `Err` is the 400 message.
fn input(req: &Req) -> Result<ProductInput, String> {
    let Body::Json(value) = &req.body else {
        return Err("expected a JSON body (content-type: application/json)".into());
    };
    let p: ProductInput =
        serde_json::from_value(value.clone()).map_err(|e| format!("invalid product: {e}"))?;
    if p.name.trim().is_empty() {
        return Err("name must not be empty".into());
    }
    if !(p.price.is_finite() && p.price >= 0.0) {
        return Err("price must be a non-negative number".into());
    }
    Ok(p)
}

fn bad_request(res: &Res, message: String) {
    res.status(400)
        .json(&json!({"statusCode": 400, "error": "Bad Request", "message": message}));
}

fn not_found(res: &Res) {
    res.status(404)
        .json(&json!({"statusCode": 404, "error": "Not Found", "message": "no such product"}));
}

fn id_of(req: &Req) -> Option<u64> {
    req.param("id").and_then(|s| s.parse().ok())
}

/// A deliberately CPU-heavy digest (FNV-1a, `rounds` times over the product's JSON).
fn digest(data: &[u8], rounds: u32) -> u64 {
    let mut h: u64 = 0xcbf29ce484222325;
    for _ in 0..rounds {
        for &b in data {
            h ^= b as u64;
            h = h.wrapping_mul(0x100000001b3);
        }
    }
    h
}

fn build(db: Db) -> App {
    let mut app = App::new();
    app.use_(|req, res, next| logger::logger()(req, res, next));
    let json_body = body::json();
    app.use_(move |req, res, next| json_body(req, res, next));

    let d = db.clone();
    app.get("/api/products", move |_req, res| {
        let products: Vec<Product> = d.borrow().products.values().cloned().collect();
        res.json(&json!({ "products": products }))
    });
    let d = db.clone();
    app.post("/api/products", move |req, res| match input(req) {
        Ok(p) => {
            let mut store = d.borrow_mut();
            store.next_id += 1;
            let product = Product {
                id: store.next_id,
                name: p.name,
                price: p.price,
            };
            store.products.insert(product.id, product.clone());
            res.status(201).json(&product);
        }
        Err(msg) => bad_request(res, msg),
    });
    let d = db.clone();
    app.get("/api/products/:id", move |req, res| {
        match id_of(req).and_then(|id| d.borrow().products.get(&id).cloned()) {
            Some(p) => res.json(&p),
            None => not_found(res),
        }
    });
    let d = db.clone();
    app.put("/api/products/:id", move |req, res| {
        let Some(id) = id_of(req).filter(|id| d.borrow().products.contains_key(id)) else {
            return not_found(res);
        };
        match input(req) {
            Ok(p) => {
                let product = Product {
                    id,
                    name: p.name,
                    price: p.price,
                };
                d.borrow_mut().products.insert(id, product.clone());
                res.json(&product);
            }
            Err(msg) => bad_request(res, msg),
        }
    });
    let d = db.clone();
    app.delete("/api/products/:id", move |req, res| {
        match id_of(req).and_then(|id| d.borrow_mut().products.remove(&id)) {
            Some(_) => res.status(204).end(),
            None => not_found(res),
        }
    });
    let d = db;
    app.get("/api/products/:id/digest", move |req, res| {
        let Some(product) = id_of(req).and_then(|id| d.borrow().products.get(&id).cloned()) else {
            return not_found(res);
        };
        let rounds: u32 = req
            .query("rounds")
            .and_then(|r| r.parse().ok())
            .unwrap_or(100_000)
            .min(10_000_000);
        let inline = req.query("inline").is_some();
        let data = serde_json::to_vec(&product).unwrap_or_default();
        if inline {
            // Blocks the loop: every other connection waits (the point of the comparison).
            res.json(&json!({"id": product.id, "digest": digest(&data, rounds), "pool": false}));
            return;
        }
        let res = res.clone();
        res.loop_handle().clone().queue_work(
            move || digest(&data, rounds),
            move |_lp, result| match result {
                Ok(h) => res.json(&json!({"id": product.id, "digest": h, "pool": true})),
                Err(e) => res.status(500).json(&json!({"error": e.to_string()})),
            },
        );
    });
    app.use_error(|err: &AppError, _req, res, next| {
        if err.status == 400 {
            bad_request(res, err.message.clone());
        } else {
            next.call();
        }
    });
    app
}

fn main() -> std::io::Result<()> {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let args: Vec<String> = std::env::args().collect();
    let port: u16 = args
        .iter()
        .position(|a| a == "--port")
        .and_then(|i| args.get(i + 1).cloned())
        .or_else(|| std::env::var("PORT").ok())
        .and_then(|p| p.parse().ok())
        .unwrap_or(3000);
    let workers: usize = args
        .iter()
        .position(|a| a == "--workers")
        .and_then(|i| args.get(i + 1))
        .and_then(|w| w.parse().ok())
        .unwrap_or(1);
    let host = std::env::var("HOST").unwrap_or_else(|_| "127.0.0.1".into());
    let many = cluster::worker_count(workers) > 1;
    let options = ClusterOptions {
        workers,
        ..ClusterOptions::default()
    };
    cluster::run(options, move |lp, worker| {
        let app = build(Rc::new(RefCell::new(Store::default())));
        let mut config = ServerConfig::default();
        config.listen.reuse_port = many;
        let server = app.listen_on(lp, (host.as_str(), port), config, move |_lp, addr| {
            if worker == 0 {
                println!("rest_api: listening on http://{addr}");
            }
        })?;
        graceful_shutdown(lp, vec![server], ShutdownOptions::default(), |_lp| {})
    })
}

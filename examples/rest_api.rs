//! An in-memory products API: `cargo run --release --example rest_api`, then e.g.
//! `curl -X POST localhost:3000/api/products -H 'content-type: application/json' -d '{"name":"lamp","price":12.5}'`.
//!
//! Routes: `GET/POST /api/products`, `GET/PUT/DELETE /api/products/:id`, and
//! `GET /api/products/:id/digest?rounds=N`, which hashes the product N times on the thread pool
//! so the loop keeps answering other requests meanwhile (compare `?inline=1`, which blocks the
//! loop; `GET /api/products/:id/digest-async` is the same route written with async/await). Listens on `PORT` (3000) / `HOST` (127.0.0.1), or `--port N`. `--workers N` runs N
//! loops on N threads sharing the port (0 = one per core); each worker has its own in-memory
//! store (workers share no mutable state), so run one worker when you want one consistent store.
//! SIGTERM/SIGINT drain gracefully.
//!
//! `--redis URL` (e.g. `redis://127.0.0.1:6379`) keeps the products in Redis instead, shared by
//! every worker and every process started with the same URL: `product:<id>` holds a product's
//! JSON, the sorted set `products` its id, `product:next_id` the last id. GET responses under
//! `/api/products` go through the cache middleware with a Redis store (`cache:GET <url>`,
//! 5 s); a write deletes the entries of the list and of the product it changed (other query
//! strings age out within the 5 s). While Redis is down, requests answer 503 within 1 s.
//! Without `--redis` nothing but this binary is needed.
//!
//! Observability: pino-shaped JSON logs on stdout, an access line per request (`LOG_LEVEL`
//! with pino's level names or `RUST_LOG`; `LOG_FORMAT=text` for text lines); `GET /metrics`
//! (Prometheus/OpenMetrics text, every worker in one scrape, labelled `worker`; the loop
//! figures cover `--metrics-period-ms N`, default 1000); `GET /healthz` and `GET /readyz`
//! (503 until listening and from the first SIGTERM on; `--unready-delay-ms N` keeps serving
//! that long, unready, before the listener closes, so a load balancer stops sending first).
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

use std::time::Duration;

use oneloop::app::cache::{cache, CacheOptions};
use oneloop::app::metrics::{Metrics, WorkerMetrics};
use oneloop::app::{body, health, logger, App, AppError, Body, Req, Res};
use oneloop::cluster::{self, ClusterOptions};
use oneloop::health::Readiness;
use oneloop::http::ServerConfig;
use oneloop::redis::stores::RedisCacheStore;
use oneloop::redis::{CmdOptions, Redis, RedisError, RedisOptions, Reply};
use oneloop::runtime::task;
use oneloop::runtime::Loop;
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

/// The app's common part: metrics, health, access log, JSON bodies.
fn base(metrics: &WorkerMetrics, ready: &Readiness) -> App {
    let mut app = App::new();
    metrics.install(&mut app);
    health::install(&mut app, ready);
    let access_log = logger::logger();
    app.use_(move |req, res, next| access_log(req, res, next));
    let json_body = body::json();
    app.use_(move |req, res, next| json_body(req, res, next));
    app
}

/// 400 errors (a body that is not JSON) in the API's shape.
fn api_errors(app: &mut App) {
    app.use_error(|err: &AppError, _req, res, next| {
        if err.status == 400 {
            bad_request(res, err.message.clone());
        } else if err.status == 404 {
            not_found(res);
        } else {
            next.call();
        }
    });
}

/// Each Redis command's timeout: a request fails with 503 within it while Redis is down.
const REDIS_TIMEOUT: CmdOptions = CmdOptions {
    retryable: false,
    timeout_ms: Some(1_000),
};

/// Runs `words` on `redis` from the request's loop; `done` gets the reply.
fn redis_cmd(
    req: &Req,
    redis: &Redis,
    words: Vec<String>,
    done: impl FnOnce(Result<Reply, RedisError>) + 'static,
) {
    let redis = redis.clone();
    req.with_loop(move |lp| {
        redis.cmd_with(lp, &words, REDIS_TIMEOUT, move |_lp, r| done(r));
    });
}

fn unavailable(res: &Res, e: RedisError) {
    log::error!("rest_api: redis: {e}");
    res.status(503).json(
        &json!({"statusCode": 503, "error": "Service Unavailable", "message": "storage unavailable"}),
    );
}

/// The cache entries a write to product `id` makes stale (the list, the product).
fn stale_keys(id: Option<u64>) -> Vec<String> {
    let mut words = vec!["DEL".to_string()];
    for method in ["GET", "HEAD"] {
        words.push(format!("cache:{method} /api/products"));
        if let Some(id) = id {
            words.push(format!("cache:{method} /api/products/{id}"));
        }
    }
    words
}

/// The products API on Redis (see the module docs for the keys).
fn build_redis(lp: &mut Loop, redis: Redis, metrics: &WorkerMetrics, ready: &Readiness) -> App {
    let mut app = base(metrics, ready);
    let store = RedisCacheStore::new(lp, redis.clone());
    app.use_mw_at(
        "/api/products",
        cache(CacheOptions {
            store: Rc::new(store),
            ..CacheOptions::ttl(Duration::from_secs(5))
        }),
    );
    let r = redis.clone();
    app.get("/api/products", move |req, res| {
        let (r2, res) = (r.clone(), res.clone());
        let words = ["ZRANGE", "products", "0", "-1"].map(String::from).to_vec();
        let handle = res.loop_handle().clone();
        redis_cmd(req, &r, words, move |ids| {
            let ids: Vec<String> = match ids {
                Ok(reply) => reply
                    .as_slice()
                    .unwrap_or(&[])
                    .iter()
                    .filter_map(|id| id.as_bytes())
                    .map(|id| format!("product:{}", String::from_utf8_lossy(id)))
                    .collect(),
                Err(e) => return unavailable(&res, e),
            };
            if ids.is_empty() {
                return res.json(&json!({ "products": [] }));
            }
            handle.next_tick(move |lp| {
                r2.mget(lp, &ids, move |_lp, values| match values {
                    Ok(values) => {
                        let products: Vec<serde_json::Value> = values
                            .iter()
                            .flatten()
                            .filter_map(|v| serde_json::from_slice(v).ok())
                            .collect();
                        res.json(&json!({ "products": products }));
                    }
                    Err(e) => unavailable(&res, e),
                });
            });
        });
    });
    let r = redis.clone();
    app.post("/api/products", move |req, res| {
        let p = match input(req) {
            Ok(p) => p,
            Err(msg) => return bad_request(res, msg),
        };
        let (r2, res) = (r.clone(), res.clone());
        let handle = res.loop_handle().clone();
        redis_cmd(
            req,
            &r,
            vec!["INCR".into(), "product:next_id".into()],
            move |id| {
                let id = match id {
                    Ok(Reply::Int(id)) => id as u64,
                    Ok(other) => {
                        return unavailable(&res, RedisError::UnexpectedReply(format!("{other:?}")))
                    }
                    Err(e) => return unavailable(&res, e),
                };
                let product = Product {
                    id,
                    name: p.name,
                    price: p.price,
                };
                let json = serde_json::to_string(&product).unwrap_or_default();
                handle.next_tick(move |lp| {
                    let key = format!("product:{id}");
                    r2.cmd_with(lp, &["SET", &key, &json], REDIS_TIMEOUT, |_, _| {});
                    let ids = id.to_string();
                    r2.cmd_with(
                        lp,
                        &["ZADD", "products", &ids, &ids],
                        REDIS_TIMEOUT,
                        |_, _| {},
                    );
                    // Replies come in order: this one's means the two before were answered.
                    r2.cmd_with(
                        lp,
                        &stale_keys(None),
                        REDIS_TIMEOUT,
                        move |_lp, done| match done {
                            Ok(_) => res.status(201).json(&product),
                            Err(e) => unavailable(&res, e),
                        },
                    );
                });
            },
        );
    });
    let r = redis.clone();
    app.get("/api/products/:id", move |req, res| {
        let Some(id) = id_of(req) else {
            return not_found(res);
        };
        let res = res.clone();
        redis_cmd(
            req,
            &r,
            vec!["GET".into(), format!("product:{id}")],
            move |v| match v {
                Ok(Reply::Bulk(json)) => {
                    res.set_static("content-type", "application/json; charset=utf-8");
                    res.send_bytes(&json);
                }
                Ok(_) => not_found(&res),
                Err(e) => unavailable(&res, e),
            },
        );
    });
    let r = redis.clone();
    app.put("/api/products/:id", move |req, res| {
        let Some(id) = id_of(req) else {
            return not_found(res);
        };
        let p = match input(req) {
            Ok(p) => p,
            Err(msg) => return bad_request(res, msg),
        };
        let product = Product {
            id,
            name: p.name,
            price: p.price,
        };
        let json = serde_json::to_string(&product).unwrap_or_default();
        let (r2, res) = (r.clone(), res.clone());
        let handle = res.loop_handle().clone();
        // XX: only an existing product is replaced.
        let words = vec!["SET".into(), format!("product:{id}"), json, "XX".into()];
        redis_cmd(req, &r, words, move |set| match set {
            Ok(Reply::Nil) => not_found(&res),
            Ok(_) => handle.next_tick(move |lp| {
                r2.cmd_with(
                    lp,
                    &stale_keys(Some(id)),
                    REDIS_TIMEOUT,
                    move |_lp, done| match done {
                        Ok(_) => res.json(&product),
                        Err(e) => unavailable(&res, e),
                    },
                );
            }),
            Err(e) => unavailable(&res, e),
        });
    });
    let r = redis;
    app.delete("/api/products/:id", move |req, res| {
        let Some(id) = id_of(req) else {
            return not_found(res);
        };
        let (r2, res) = (r.clone(), res.clone());
        let handle = res.loop_handle().clone();
        redis_cmd(
            req,
            &r,
            vec!["DEL".into(), format!("product:{id}")],
            move |del| match del {
                Ok(Reply::Int(0)) => not_found(&res),
                Ok(_) => handle.next_tick(move |lp| {
                    let ids = id.to_string();
                    r2.cmd_with(lp, &["ZREM", "products", &ids], REDIS_TIMEOUT, |_, _| {});
                    r2.cmd_with(
                        lp,
                        &stale_keys(Some(id)),
                        REDIS_TIMEOUT,
                        move |_lp, done| match done {
                            Ok(_) => res.status(204).end(),
                            Err(e) => unavailable(&res, e),
                        },
                    );
                }),
                Err(e) => unavailable(&res, e),
            },
        );
    });
    api_errors(&mut app);
    app
}

fn build(db: Db, metrics: &WorkerMetrics, ready: &Readiness) -> App {
    let mut app = base(metrics, ready);

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
    let d = db.clone();
    // The same route with async/await: the thread-pool job is awaited, an error is returned as
    // `Err` (the error middleware answers it, as Express 5 does for a rejected promise).
    app.get_async("/api/products/:id/digest-async", move |req, res| {
        let product = id_of(req).and_then(|id| d.borrow().products.get(&id).cloned());
        let rounds: u32 = req
            .query("rounds")
            .and_then(|r| r.parse().ok())
            .unwrap_or(100_000)
            .min(10_000_000);
        async move {
            let Some(product) = product else {
                return Err(AppError::new(404, "product not found"));
            };
            let data = serde_json::to_vec(&product).unwrap_or_default();
            let h = task::work(move || digest(&data, rounds))
                .await
                .map_err(|e| AppError::internal(e.to_string()))?;
            res.json(&json!({"id": product.id, "digest": h, "pool": true}));
            Ok(())
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
    api_errors(&mut app);
    app
}

/// The number after `--name`, if given.
fn ms_arg(args: &[String], name: &str) -> Option<Duration> {
    let i = args.iter().position(|a| a == name)?;
    match args.get(i + 1).and_then(|v| v.parse().ok()) {
        Some(ms) => Some(Duration::from_millis(ms)),
        None => {
            eprintln!("usage: rest_api {name} MILLISECONDS");
            std::process::exit(2);
        }
    }
}

fn main() -> std::io::Result<()> {
    let logs = oneloop::logging::init_from_env()?;
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
    let period = ms_arg(&args, "--metrics-period-ms").unwrap_or(Duration::from_secs(1));
    let unready_delay = ms_arg(&args, "--unready-delay-ms").unwrap_or(Duration::ZERO);
    let metrics = Metrics::with_publish_period(period);
    metrics.watch_log(&logs);
    let ready = Readiness::new();
    let options = ClusterOptions {
        workers,
        ..ClusterOptions::default()
    };
    let redis_url = args
        .iter()
        .position(|a| a == "--redis")
        .map(|i| match args.get(i + 1) {
            Some(url) => url.clone(),
            None => {
                eprintln!("usage: rest_api --redis redis://HOST:PORT");
                std::process::exit(2);
            }
        });
    let result = cluster::run(options, move |lp, worker| {
        let worker_metrics = metrics.worker(lp, worker);
        let mut client = None;
        let app = match &redis_url {
            Some(url) => {
                let redis = Redis::connect(lp, url, RedisOptions::default())
                    .map_err(|e| std::io::Error::other(format!("--redis {url}: {e}")))?;
                client = Some(redis.clone());
                build_redis(lp, redis, &worker_metrics, &ready)
            }
            None => build(
                Rc::new(RefCell::new(Store::default())),
                &worker_metrics,
                &ready,
            ),
        };
        let mut config = ServerConfig::default();
        config.listen.reuse_port = many;
        let r = ready.clone();
        let server = app.listen_on(lp, (host.as_str(), port), config, move |_lp, addr| {
            r.set_ready();
            if worker == 0 {
                log::info!(workers = cluster::worker_count(workers); "rest_api: listening on http://{addr}");
            }
        })?;
        worker_metrics.track_server(&server);
        let shutdown = ShutdownOptions {
            readiness: Some(ready.clone()),
            unready_delay,
            ..ShutdownOptions::default()
        };
        // Once drained, close the Redis connection too (it holds the loop, as a socket does).
        graceful_shutdown(lp, vec![server], shutdown, move |lp| {
            if let Some(redis) = client {
                redis.quit(lp, |_lp, _| {});
            }
        })
    });
    logs.flush();
    result
}

//! The contract routes through the app layer: `cargo run --release --example hello_app`.
//!
//! The app-layer row of the benchmarks (docs/benchmarks.md): the same bytes as `hello`, but
//! every request goes through the router (a table of 20 REST routes plus the contract routes)
//! and one middleware, as `benches/compare/express_app.js` and `fastify_app.js` do. Listens on
//! `PORT` (3000) / `HOST` (127.0.0.1).
use oneloop::app::App;
use serde_json::json;

fn main() -> std::io::Result<()> {
    env_logger::init();
    let mut app = App::new();
    // The one middleware: tag every response.
    app.use_(|_req, res, next| {
        res.set_static("x-app", "oneloop");
        next.call();
    });
    for resource in ["users", "products", "orders", "carts", "reviews"] {
        app.get(&format!("/api/{resource}"), |_req, res| {
            res.json(&json!([]))
        });
        app.post(&format!("/api/{resource}"), |_req, res| {
            res.status(201).end()
        });
        app.get(&format!("/api/{resource}/:id"), |req, res| {
            res.json(&json!({ "id": req.param("id") }))
        });
        app.delete(&format!("/api/{resource}/:id"), |_req, res| {
            res.status(204).end()
        });
    }
    app.get("/", |_req, res| {
        res.set_static("content-type", "text/plain");
        res.send_bytes(b"Hello, World!");
    });
    app.get("/plaintext", |_req, res| {
        res.set_static("content-type", "text/plain");
        res.send_bytes(b"Hello, World!");
    });
    app.get("/json", |_req, res| {
        res.json(&json!({ "message": "Hello, World!" }))
    });
    let port = std::env::var("PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(3000);
    app.listen(port, move || {
        println!("hello_app: listening on port {port}")
    })
}

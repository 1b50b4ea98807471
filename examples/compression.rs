//! The compression middleware under load: `cargo run --release --example compression`.
//!
//! Routes (docs/benchmarks.md, "Compression"):
//! - `/c/json`: a 10 KiB JSON list (176 products) through `compression()`; `/p/json`: the same, uncompressed.
//! - `/c/big`: a 2 MiB text body through `compression()` (compressed on the thread pool);
//!   `/l/big`: the same with `pool_threshold: usize::MAX` (compressed on the loop thread).
//! - `/cheap`: a 13-byte text answer, to measure beside the big ones.
//!
//! Listens on `PORT` (3000) / `HOST` (127.0.0.1).
use oneloop::app::compression::{compression, compression_with, CompressionOptions};
use oneloop::app::App;
use serde_json::json;

fn main() -> std::io::Result<()> {
    env_logger::init();
    let items: Vec<serde_json::Value> = (0..176)
        .map(|i| json!({ "id": i, "name": format!("product {i}"), "price": i * 7 % 100, "tags": ["a", "b"] }))
        .collect();
    let list = std::rc::Rc::new(json!({ "products": items }));
    let big = std::rc::Rc::new(
        (0..2 * 1024 * 1024 / 32)
            .map(|i| format!("{i:08} the quick brown fox {:05}\n", i % 9973))
            .collect::<String>(),
    );
    let mut app = App::new();
    app.use_mw_at("/c", compression());
    app.use_mw_at(
        "/l",
        compression_with(CompressionOptions {
            pool_threshold: usize::MAX,
            ..CompressionOptions::default()
        }),
    );
    for prefix in ["/c", "/p"] {
        let list = std::rc::Rc::clone(&list);
        app.get(&format!("{prefix}/json"), move |_req, res| res.json(&*list));
    }
    for prefix in ["/c", "/l"] {
        let big = std::rc::Rc::clone(&big);
        app.get(&format!("{prefix}/big"), move |_req, res| {
            res.send_text(&*big)
        });
    }
    app.get("/cheap", |_req, res| res.send_text("Hello, World!"));
    let port = std::env::var("PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(3000);
    app.listen(port, move || {
        println!("compression: listening on port {port}")
    })
}

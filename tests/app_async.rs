//! Async route handlers over real loopback sockets: an answer after awaited timers and
//! thread-pool work, an `Err` returned after an await reaching the error middleware (Express 5's
//! rejected promise), an `Err` before the first await, and requests served while one awaits.

mod express_twin;

use oneloop::app::{App, AppError};
use oneloop::runtime::task;
use serde_json::json;

use express_twin::{exchange, serve_oneloop};

fn app() -> App {
    let mut app = App::new();
    app.get_async("/slow/:n", |req, res| {
        let n: u64 = req.param("n").and_then(|n| n.parse().ok()).unwrap_or(0);
        async move {
            task::sleep(5).await;
            let square = task::work(move || n * n)
                .await
                .map_err(|e| AppError::internal(e.to_string()))?;
            res.json(&json!({"n": n, "square": square}));
            Ok(())
        }
    });
    app.get_async("/fail-later", |_req, _res| async move {
        task::sleep(1).await;
        Err(AppError::new(409, "conflict after await"))
    });
    app.get_async("/fail-now", |_req, _res| async move {
        Err(AppError::new(422, "rejected before any await"))
    });
    app.get("/sync", |_req, res| res.send("sync"));
    app.use_error(|err: &AppError, _req, res, _next| {
        res.status(err.status)
            .json(&json!({"error": err.message, "via": "error middleware"}));
    });
    app
}

#[test]
fn an_async_handler_answers_after_awaiting_a_timer_and_thread_pool_work() {
    let addr = serve_oneloop(app);
    let r = exchange(addr, "GET", "/slow/12", &[]);
    assert_eq!(r.status, 200);
    let body: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(body, json!({"n": 12, "square": 144}));
}

#[test]
fn an_err_returned_after_an_await_goes_to_the_error_middleware() {
    let addr = serve_oneloop(app);
    let r = exchange(addr, "GET", "/fail-later", &[]);
    assert_eq!(r.status, 409);
    let body: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(
        body,
        json!({"error": "conflict after await", "via": "error middleware"})
    );
}

#[test]
fn an_err_returned_before_any_await_goes_to_the_error_middleware() {
    let addr = serve_oneloop(app);
    let r = exchange(addr, "GET", "/fail-now", &[]);
    assert_eq!(r.status, 422);
    assert!(String::from_utf8_lossy(&r.body).contains("rejected before any await"));
}

#[test]
fn requests_are_served_while_an_async_handler_awaits() {
    let addr = serve_oneloop(app);
    let slow = std::thread::spawn(move || exchange(addr, "GET", "/slow/3", &[]));
    for _ in 0..5 {
        let r = exchange(addr, "GET", "/sync", &[]);
        assert_eq!((r.status, r.body.as_slice()), (200, &b"sync"[..]));
    }
    assert_eq!(slow.join().unwrap().status, 200);
}

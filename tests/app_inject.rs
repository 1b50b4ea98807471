//! The app layer through `App::inject` (no socket): routing, middleware, errors, bodies, ETags.

use std::cell::RefCell;
use std::rc::Rc;

use oneloop::app::{body, mw, App, AppError, Body, InjectRequest, Router};
use oneloop::runtime::Loop;
use serde_json::json;

fn get(app: &App, url: &str) -> oneloop::app::InjectResponse {
    let mut lp = Loop::new().unwrap();
    app.inject(&mut lp, InjectRequest::new("GET", url)).unwrap()
}

fn send(app: &App, req: InjectRequest) -> oneloop::app::InjectResponse {
    let mut lp = Loop::new().unwrap();
    app.inject(&mut lp, req).unwrap()
}

#[test]
fn seed_example_answers_an_empty_product_list() {
    let mut app = App::new();
    app.get("/api/products", |_req, res| {
        res.json(&json!({"products": []}))
    });
    let r = get(&app, "/api/products");
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("content-type"),
        Some("application/json; charset=utf-8")
    );
    assert_eq!(r.json().unwrap(), json!({"products": []}));
}

#[test]
fn params_are_percent_decoded_and_query_keeps_repeated_keys() {
    let mut app = App::new();
    app.get("/users/:id/files/*path", |req, res| {
        let q: Vec<_> = req.query_all().to_vec();
        res.json(&json!({
            "id": req.param("id"),
            "path": req.param("path"),
            "q": q,
        }))
    });
    let r = get(&app, "/users/a%20b/files/x/y.txt?a=1&a=3&b=x+y");
    assert_eq!(r.status, 200);
    assert_eq!(
        r.json().unwrap(),
        json!({"id": "a b", "path": "x/y.txt", "q": [["a","1"],["a","3"],["b","x y"]]})
    );
}

#[test]
fn static_route_beats_param_route_whatever_the_order() {
    let mut app = App::new();
    app.get("/u/:id", |_req, res| res.send_text("param"));
    app.get("/u/me", |_req, res| res.send_text("static"));
    assert_eq!(get(&app, "/u/me").text(), "static");
    assert_eq!(get(&app, "/u/42").text(), "param");
}

#[test]
fn unknown_path_is_404_with_cannot_get_body() {
    let app = App::new();
    let r = get(&app, "/nope");
    assert_eq!(r.status, 404);
    assert!(
        r.text().contains("<pre>Cannot GET /nope</pre>"),
        "{}",
        r.text()
    );
    assert_eq!(
        r.header("content-security-policy"),
        Some("default-src 'none'")
    );
}

#[test]
fn wrong_method_is_405_with_allow_and_options_is_automatic() {
    let mut app = App::new();
    app.get("/thing", |_req, res| res.send_text("x"));
    app.post("/thing", |_req, res| res.send_text("y"));
    let r = send(&app, InjectRequest::new("DELETE", "/thing"));
    assert_eq!(r.status, 405);
    assert_eq!(r.header("allow"), Some("GET, HEAD, POST"));
    let r = send(&app, InjectRequest::new("OPTIONS", "/thing"));
    assert_eq!(r.status, 200);
    assert_eq!(r.header("allow"), Some("GET, HEAD, POST"));
    assert_eq!(r.text(), "GET, HEAD, POST");
}

#[test]
fn get_route_answers_head_without_a_body() {
    let mut app = App::new();
    app.get("/h", |_req, res| res.send_text("hello"));
    let r = send(&app, InjectRequest::new("HEAD", "/h"));
    assert_eq!(r.status, 200);
    assert!(r.body.is_empty());
}

#[test]
fn middleware_runs_in_order_and_next_may_be_called_later() {
    let log = Rc::new(RefCell::new(Vec::new()));
    let mut app = App::new();
    let l = log.clone();
    app.use_(move |_req, _res, next| {
        l.borrow_mut().push("a");
        next.call();
    });
    let l = log.clone();
    app.use_(move |req, _res, next| {
        l.borrow_mut().push("b-start");
        let l = l.clone();
        // Continue from a timer: the chain waits for it.
        req.loop_handle().set_timeout(5, move |_lp| {
            l.borrow_mut().push("b-timer");
            next.call();
        });
    });
    let l = log.clone();
    app.route(
        "GET",
        "/x",
        vec![mw(move |_req, _res, next| {
            l.borrow_mut().push("route-mw");
            next.call();
        })],
        {
            let l = log.clone();
            move |_req, res| {
                l.borrow_mut().push("handler");
                res.send_text("done");
            }
        },
    );
    let r = get(&app, "/x");
    assert_eq!(r.text(), "done");
    assert_eq!(
        *log.borrow(),
        ["a", "b-start", "b-timer", "route-mw", "handler"]
    );
}

#[test]
fn next_error_skips_to_error_middleware() {
    let mut app = App::new();
    app.use_(|_req, _res, next| next.error(AppError::new(418, "teapot")));
    app.get("/x", |_req, res| res.send_text("never"));
    app.use_error(|err, _req, res, _next| {
        res.status(err.status);
        res.json(&json!({"caught": err.message}));
    });
    let r = get(&app, "/x");
    assert_eq!(r.status, 418);
    assert_eq!(r.json().unwrap(), json!({"caught": "teapot"}));
}

#[test]
fn server_errors_do_not_leak_their_message() {
    let mut app = App::new();
    app.get("/x", |_req, _res| {});
    app.use_(|_req, _res, next| next.error(AppError::internal("db password is hunter2")));
    let r = get(&app, "/x");
    assert_eq!(r.status, 500);
    assert!(!r.text().contains("hunter2"));
    assert!(r.text().contains("Internal Server Error"));
}

#[test]
fn a_panicking_handler_is_answered_500_and_the_app_keeps_serving() {
    let mut app = App::new();
    app.get("/boom", |_req, _res| -> () { panic!("kaboom") });
    app.get("/ok", |_req, res| res.send_text("fine"));
    let r = get(&app, "/boom");
    assert_eq!(r.status, 500);
    assert!(!r.text().contains("kaboom"));
    assert_eq!(get(&app, "/ok").text(), "fine");
}

#[test]
fn json_body_parser_parses_and_rejects_malformed_with_json_400() {
    let mut app = App::new();
    app.use_(|req, res, next| body::json()(req, res, next));
    app.post("/p", |req, res| match &req.body {
        Body::Json(v) => res.json(&json!({"got": v})),
        other => res.status(500).send_text(format!("{other:?}")),
    });
    let r = send(
        &app,
        InjectRequest::new("POST", "/p").json(&json!({"a": 1})),
    );
    assert_eq!(r.json().unwrap(), json!({"got": {"a": 1}}));
    let bad = InjectRequest::new("POST", "/p")
        .header("content-type", "application/json")
        .header("content-length", "5")
        .body("{nope");
    let r = send(&app, bad);
    assert_eq!(r.status, 400);
    let v = r.json().expect("a JSON error body");
    assert_eq!(v["statusCode"], 400);
}

#[test]
fn body_over_the_limit_is_413_and_wrong_type_is_415_when_required() {
    let mut app = App::new();
    let parser = body::json_with(body::BodyOptions {
        limit: 10,
        require_type: true,
    });
    app.use_(move |req, res, next| parser(req, res, next));
    app.post("/p", |_req, res| res.send_text("ok"));
    let big = InjectRequest::new("POST", "/p")
        .header("content-type", "application/json")
        .header("content-length", "20")
        .body("[1,2,3,4,5,6,7,8,9,0]");
    assert_eq!(send(&app, big).status, 413);
    let wrong = InjectRequest::new("POST", "/p")
        .header("content-type", "text/plain")
        .header("content-length", "2")
        .body("hi");
    assert_eq!(send(&app, wrong).status, 415);
}

#[test]
fn send_sets_a_weak_etag_and_if_none_match_gets_304() {
    let mut app = App::new();
    app.get("/e", |_req, res| res.send_text("same body"));
    let first = get(&app, "/e");
    let tag = first.header("etag").expect("etag").to_string();
    assert!(tag.starts_with("W/\""));
    let r = send(
        &app,
        InjectRequest::new("GET", "/e").header("if-none-match", &tag),
    );
    assert_eq!(r.status, 304);
    assert!(r.body.is_empty());
}

#[test]
fn redirect_cookie_and_send_status_match_express() {
    let mut app = App::new();
    app.get("/r", |_req, res| res.redirect("/there"));
    app.get("/c", |_req, res| {
        res.cookie("sid", "abc", &["HttpOnly"]).clear_cookie("old");
        res.send_status(201);
    });
    let r = get(&app, "/r");
    assert_eq!(r.status, 302);
    assert_eq!(r.header("location"), Some("/there"));
    assert_eq!(r.text(), "Found. Redirecting to /there");
    let r = get(&app, "/c");
    assert_eq!(r.status, 201);
    assert_eq!(r.text(), "Created");
    let cookies: Vec<_> = r
        .headers
        .iter()
        .filter(|(n, _)| n == "set-cookie")
        .collect();
    assert_eq!(cookies.len(), 2);
    assert_eq!(cookies[0].1, "sid=abc; Path=/; HttpOnly");
    assert!(cookies[1]
        .1
        .starts_with("old=; Path=/; Expires=Thu, 01 Jan 1970"));
}

#[test]
fn mounted_router_serves_under_its_prefix_with_its_middleware() {
    let mut api = Router::new();
    api.use_(|_req, res, next| {
        res.set("x-api", "1");
        next.call();
    });
    api.get("/items/:id", |req, res| {
        let id = req.param("id").unwrap_or("").to_string();
        res.send_text(id)
    });
    let mut app = App::new();
    app.get("/items/:id", |_req, res| res.send_text("root"));
    app.mount("/api", api);
    let r = get(&app, "/api/items/7");
    assert_eq!(r.text(), "7");
    assert_eq!(r.header("x-api"), Some("1"));
    let r = get(&app, "/items/7");
    assert_eq!(r.text(), "root");
    assert_eq!(r.header("x-api"), None);
}

#[test]
fn bare_star_route_is_refused_at_registration() {
    let mut app = App::new();
    app.get("*", |_req, res| res.send_text("x"));
    assert_eq!(app.route_errors().len(), 1);
}

#[test]
fn work_on_the_thread_pool_finishes_the_response_later() {
    let mut app = App::new();
    app.get("/fib", |_req, res| {
        let res2 = res.clone();
        res.loop_handle().queue_work(
            || (1..=20u64).product::<u64>(),
            move |_lp, n| res2.json(&json!({"n": n.unwrap()})),
        );
    });
    let r = get(&app, "/fib");
    assert_eq!(r.json().unwrap(), json!({"n": 2432902008176640000u64}));
}

#[test]
fn a_handler_returning_an_error_reaches_the_error_middleware() {
    let mut app = App::new();
    app.get("/items/:id", |req, res| {
        let id: u32 = req
            .param("id")
            .unwrap_or("")
            .parse()
            .map_err(|_| AppError::new(400, "id must be a number"))?;
        let extra: serde_json::Value = serde_json::from_str(req.query("extra").unwrap_or("{}"))?;
        res.json(&json!({ "id": id, "extra": extra }));
        Ok(())
    });
    let seen: Rc<RefCell<Vec<u16>>> = Rc::default();
    let s = Rc::clone(&seen);
    app.use_error(move |err, _req, res, _next| {
        s.borrow_mut().push(err.status);
        res.status(err.status)
            .json(&json!({ "error": err.message }));
    });
    let ok = get(&app, "/items/7?extra=%7B%22a%22%3A1%7D");
    assert_eq!(
        (ok.status, ok.json().unwrap()),
        (200, json!({"id": 7, "extra": {"a": 1}}))
    );
    let bad = get(&app, "/items/seven");
    assert_eq!(
        (bad.status, bad.json().unwrap()),
        (400, json!({"error": "id must be a number"}))
    );
    // A serde_json error converts with `?` (400, as body parsing errors).
    let bad_json = get(&app, "/items/7?extra=%7Bnope");
    assert_eq!(bad_json.status, 400);
    assert_eq!(*seen.borrow(), [400, 400]);
}

#[test]
fn unmatched_paths_and_methods_go_through_the_error_middleware_keeping_allow() {
    let mut app = App::new();
    app.get("/only-get", |_req, res| res.send_text("got"));
    app.use_error(|err, _req, res, _next| {
        res.status(err.status)
            .json(&json!({ "status": err.status, "message": err.message }));
    });
    let missing = get(&app, "/nowhere");
    assert_eq!(
        (missing.status, missing.json().unwrap()),
        (
            404,
            json!({"status": 404, "message": "Cannot GET /nowhere"})
        )
    );
    let wrong = send(&app, InjectRequest::new("POST", "/only-get"));
    assert_eq!(wrong.status, 405);
    assert_eq!(wrong.header("allow"), Some("GET, HEAD"));
    assert_eq!(wrong.json().unwrap()["message"], "Method Not Allowed");
    // OPTIONS is still answered automatically.
    let options = send(&app, InjectRequest::new("OPTIONS", "/only-get"));
    assert_eq!(
        (options.status, options.header("allow")),
        (200, Some("GET, HEAD"))
    );
}

#[test]
fn not_found_replaces_the_404_and_may_fail_too() {
    let mut app = App::new();
    app.get("/", |_req, res| res.send_text("home"));
    app.not_found(|req, res| {
        if req.path().starts_with("/api/") {
            return Err(AppError::new(404, "no such API"));
        }
        res.status(404).send_text("try the home page");
        Ok(())
    });
    let page = get(&app, "/elsewhere");
    assert_eq!(
        (page.status, page.text()),
        (404, "try the home page".to_owned())
    );
    let api = get(&app, "/api/x");
    assert_eq!(api.status, 404);
    assert!(api.text().contains("no such API"), "{}", api.text());
}

#[derive(Debug, PartialEq)]
struct User(String);

#[test]
fn locals_carry_typed_values_from_middleware_to_the_handler() {
    let mut app = App::new();
    app.use_(|req, _res, next| {
        if let Some(token) = req.header("authorization") {
            let name = token.trim_start_matches("Bearer ").to_owned();
            req.locals.insert(User(name));
        }
        req.locals.insert(42u32);
        next.call();
    });
    app.get("/me", |req, res| {
        let who = req
            .locals
            .get::<User>()
            .map_or("anonymous", |u| u.0.as_str());
        let n = req.locals.get::<u32>().copied();
        res.json(&json!({ "user": who, "n": n }));
    });
    let anon = get(&app, "/me");
    assert_eq!(anon.json().unwrap(), json!({"user": "anonymous", "n": 42}));
    let ada = send(
        &app,
        InjectRequest::new("GET", "/me").header("authorization", "Bearer ada"),
    );
    assert_eq!(ada.json().unwrap(), json!({"user": "ada", "n": 42}));
}

#[test]
fn request_ids_are_unique_across_apps_and_taken_from_a_sane_incoming_header() {
    let make = || {
        let mut app = App::new();
        app.get("/id", |req, res| res.send_text(req.request_id()));
        app
    };
    // Two apps: two workers (or two starts of one).
    let (a, b) = (make(), make());
    let ids: Vec<String> = [&a, &a, &b]
        .iter()
        .map(|app| get(app, "/id").text())
        .collect();
    assert_eq!(ids.len(), 3);
    assert_ne!(ids[0], ids[1], "one app never repeats an id");
    let prefix = |id: &str| id.rsplit_once('-').unwrap().0.to_owned();
    assert_eq!(prefix(&ids[0]), prefix(&ids[1]));
    assert_ne!(
        prefix(&ids[0]),
        prefix(&ids[2]),
        "another app has another prefix"
    );
    assert_eq!(prefix(&ids[0]).len(), 12);
    let with = |v: &str| {
        send(
            &a,
            InjectRequest::new("GET", "/id").header("x-request-id", v),
        )
        .text()
    };
    assert_eq!(with("7f3c9a2e-trace:1/x"), "7f3c9a2e-trace:1/x");
    for bad in ["", "has space", "a\"quote", &"x".repeat(129), "é"] {
        let id = with(bad);
        assert_ne!(id, bad);
        assert_eq!(
            prefix(&id),
            prefix(&ids[0]),
            "{bad:?} replaced by a generated id"
        );
    }
}

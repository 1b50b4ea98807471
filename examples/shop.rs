//! A shop backend with everything an Express app installs in week one: products and orders
//! over JSON, a static front-end, cookie login with a session (or a bearer token), validation
//! with 400s, product image uploads, a rate-limited login, CORS and security headers.
//! Its Express 5 twin, line for line, is benches/compare/shop_express/app.js.
//!
//!     cargo run --release --example shop            # http://127.0.0.1:3000, user ada / lovelace
//!     curl -c jar -H 'content-type: application/json' -d '{"user":"ada","password":"lovelace"}' localhost:3000/api/login
//!     curl -b jar -H 'content-type: application/json' -d '{"name":"mug","price":12.5}' localhost:3000/api/products
//!
//! `PORT`/`HOST` (or `--port`/`--host`) choose where it listens; `SHOP_PUBLIC` the front-end's
//! directory (default examples/shop_public). Tested by tests/shop_example.rs.
//!
//! `--observe` (or `OBSERVE=1`) adds production observability (docs/app.md section 9): pino-shaped
//! JSON logs on stdout with an access line per request (`LOG_LEVEL`, `LOG_FORMAT=text`),
//! `GET /metrics` (Prometheus), `GET /healthz` and `GET /readyz`.
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::Duration;

use oneloop::app::cookies::{CookieSecrets, SameSite};
use oneloop::app::metrics::Metrics;
use oneloop::app::multipart::{multipart, Multipart, MultipartLimits, MultipartOptions};
use oneloop::app::rate_limit::{limiter, RateLimit};
use oneloop::app::session::{session, SessionOptions};
use oneloop::app::{body, cors, files, health, helmet, logger, mw, App, AppError, Req};
use oneloop::health::Readiness;
use serde::{Deserialize, Serialize};
use serde_json::json;

const USERS: [(&str, &str, &str); 2] = [
    ("ada", "lovelace", "tok-ada"),
    ("alan", "turing", "tok-alan"),
];

#[derive(Clone, Serialize)]
struct Product {
    id: u64,
    name: String,
    price: f64,
    image: Option<String>,
}

#[derive(Deserialize)]
struct NewProduct {
    name: String,
    price: f64,
}

#[derive(Deserialize)]
struct Item {
    product_id: u64,
    quantity: u32,
}

#[derive(Deserialize)]
struct NewOrder {
    items: Vec<Item>,
}

#[derive(Default)]
struct Db {
    products: BTreeMap<u64, Product>,
    orders: Vec<serde_json::Value>,
    next_id: u64,
}

/// The signed-in user: the session's, or the bearer token's.
struct User(String);

fn user(req: &Req) -> Result<&str, AppError> {
    req.locals
        .get::<User>()
        .map(|u| u.0.as_str())
        .ok_or(AppError::new(401, "log in first"))
}

fn main() -> std::io::Result<()> {
    let observe = std::env::args().any(|a| a == "--observe")
        || std::env::var("OBSERVE").is_ok_and(|v| v == "1");
    let logs = if observe {
        Some(oneloop::logging::init_from_env()?)
    } else {
        env_logger::init();
        None
    };
    let db = Rc::new(RefCell::new(Db::default()));
    let public = std::env::var("SHOP_PUBLIC").unwrap_or_else(|_| "examples/shop_public".into());
    let mut lp = oneloop::runtime::Loop::new()?;
    let mut app = App::new();
    let ready = Readiness::new();
    let mut observed = None;
    if let Some(logs) = &logs {
        // First, so the request durations cover every other middleware.
        let metrics = Metrics::new();
        metrics.watch_log(logs);
        let worker = metrics.worker(&mut lp, 0);
        worker.install(&mut app);
        app.use_mw(logger::logger());
        health::install(&mut app, &ready);
        observed = Some(worker);
    }
    app.use_mw(helmet::helmet());
    app.use_mw(cors::cors(cors::CorsOptions {
        origin: cors::AllowOrigin::list(["http://localhost:5173"]),
        credentials: true,
        ..cors::CorsOptions::default()
    }));
    app.use_mw(body::json());
    let mut sessions = SessionOptions::new(CookieSecrets::new(["shop secret"]));
    sessions.cookie.same_site = Some(SameSite::Lax);
    app.use_mw(session(sessions));
    app.use_mw(files::static_files(public));
    app.use_(|req, _res, next| {
        let token = req
            .header("authorization")
            .and_then(|h| h.strip_prefix("Bearer "));
        let by_token = USERS
            .iter()
            .find(|u| Some(u.2) == token)
            .map(|u| u.0.to_owned());
        let by_session = req.session().and_then(|s| s.get::<String>("user"));
        if let Some(name) = by_session.or(by_token) {
            req.locals.insert(User(name));
        }
        next.call();
    });

    let login_limit = limiter(RateLimit {
        window: Duration::from_secs(15 * 60),
        limit: 5,
        ..RateLimit::default()
    });
    app.route("POST", "/api/login", vec![login_limit], |req, res| {
        #[derive(Deserialize)]
        struct Login {
            user: String,
            password: String,
        }
        let login: Login = req.json()?;
        let Some(u) = USERS
            .iter()
            .find(|u| u.0 == login.user && u.1 == login.password)
        else {
            return Err(AppError::new(401, "bad credentials"));
        };
        let s = req.session().ok_or(AppError::internal("no session"))?;
        s.regenerate();
        s.set("user", u.0);
        res.json(&json!({ "user": u.0, "token": u.2 }));
        Ok(())
    });
    app.post("/api/logout", |req, res| {
        if let Some(s) = req.session() {
            s.destroy();
        }
        res.send_status(204);
    });

    let d = Rc::clone(&db);
    app.get("/api/products", move |_req, res| {
        res.json(&d.borrow().products.values().collect::<Vec<_>>());
    });
    let d = Rc::clone(&db);
    app.get("/api/products/:id", move |req, res| {
        let id = req.param("id").and_then(|i| i.parse().ok()).unwrap_or(0);
        let db = d.borrow();
        let p = db
            .products
            .get(&id)
            .ok_or(AppError::new(404, "no such product"))?;
        res.json(p);
        Ok(())
    });
    let d = Rc::clone(&db);
    app.post("/api/products", move |req, res| {
        user(req)?;
        let p: NewProduct = req.json()?;
        if p.name.is_empty() || p.name.len() > 100 || !p.price.is_finite() || p.price < 0.0 {
            return Err(AppError::new(
                400,
                "name (1-100 chars) and price (>= 0) are required",
            ));
        }
        let mut db = d.borrow_mut();
        db.next_id += 1;
        let product = Product {
            id: db.next_id,
            name: p.name,
            price: p.price,
            image: None,
        };
        db.products.insert(product.id, product.clone());
        res.status(201).json(&product);
        Ok(())
    });
    let d = Rc::clone(&db);
    let limits = MultipartLimits {
        file_size: 5 << 20,
        files: 1,
        ..MultipartLimits::default()
    };
    let dest = std::env::temp_dir().join("shop-uploads");
    let upload = multipart(MultipartOptions { dest, limits });
    app.route(
        "POST",
        "/api/products/:id/image",
        vec![
            mw(|req, _res, next| match user(req) {
                Ok(_) => next.call(),
                Err(e) => next.error(e),
            }),
            upload,
        ],
        move |req, res| {
            let id = req.param("id").and_then(|i| i.parse().ok()).unwrap_or(0);
            let form = req
                .locals
                .get::<Multipart>()
                .ok_or(AppError::new(400, "a form is expected"))?;
            let image = form
                .file("image")
                .ok_or(AppError::new(400, "the form has no image"))?;
            let mut db = d.borrow_mut();
            let p = db
                .products
                .get_mut(&id)
                .ok_or(AppError::new(404, "no such product"))?;
            p.image = Some(image.path.display().to_string());
            res.json(p);
            Ok(())
        },
    );

    let d = Rc::clone(&db);
    app.post("/api/orders", move |req, res| {
        let who = user(req)?.to_owned();
        let order: NewOrder = req.json()?;
        let mut db = d.borrow_mut();
        let mut total = 0.0;
        for item in &order.items {
            let p = db
                .products
                .get(&item.product_id)
                .ok_or(AppError::new(400, "unknown product"))?;
            if item.quantity == 0 {
                return Err(AppError::new(400, "quantity must be at least 1"));
            }
            total += p.price * f64::from(item.quantity);
        }
        if order.items.is_empty() {
            return Err(AppError::new(400, "an order needs items"));
        }
        db.next_id += 1;
        let o =
            json!({ "id": db.next_id, "user": who, "total": total, "items": order.items.len() });
        db.orders.push(o.clone());
        res.status(201).json(&o);
        Ok(())
    });
    let d = Rc::clone(&db);
    app.get("/api/orders", move |req, res| {
        let who = user(req)?;
        let db = d.borrow();
        res.json(
            &db.orders
                .iter()
                .filter(|o| o["user"] == who)
                .collect::<Vec<_>>(),
        );
        Ok(())
    });
    app.use_error(|err, _req, res, _next| {
        let message = if err.expose {
            err.message.as_str()
        } else {
            "internal error"
        };
        res.status(err.status).json(&json!({ "error": message }));
    });

    let args: Vec<String> = std::env::args().collect();
    let arg = |name: &str, var: &str| {
        let i = args.iter().position(|a| a == name);
        i.and_then(|i| args.get(i + 1).cloned())
            .or_else(|| std::env::var(var).ok())
    };
    let port: u16 = arg("--port", "PORT")
        .and_then(|p| p.parse().ok())
        .unwrap_or(3000);
    let host = arg("--host", "HOST").unwrap_or_else(|| "127.0.0.1".into());
    let r = ready.clone();
    let server = app.listen_on(
        &mut lp,
        (host.as_str(), port),
        Default::default(),
        move |_lp, addr| {
            r.set_ready();
            if observe {
                log::info!("shop listening on http://{addr}");
            } else {
                println!("shop listening on http://{addr}");
            }
        },
    )?;
    if let Some(worker) = &observed {
        worker.track_server(&server);
    }
    let result = lp.run();
    if let Some(logs) = logs {
        logs.flush();
    }
    result
}

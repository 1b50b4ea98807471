//! A shop backend with everything an Express app installs in week one: products and orders
//! over JSON, a static front-end, cookie login with a session (or a bearer token), validation
//! with 400s, product image uploads, a rate-limited login, CORS and security headers.
//! Its Express 5 twin is benches/compare/shop_express/app.js; tests/shop_example.rs runs the
//! same scenario against both, and benches/compare/count_lines.sh counts their code lines.
//!
//!     cargo run --release --example shop            # http://127.0.0.1:3000, user ada / lovelace
//!     curl -c jar -H 'content-type: application/json' -d '{"user":"ada","password":"lovelace"}' localhost:3000/api/login
//!     curl -b jar -H 'content-type: application/json' -d '{"name":"mug","price":12.5}' localhost:3000/api/products
//!
//! `PORT`/`HOST` choose where it listens; `SHOP_PUBLIC` the front-end's directory (default
//! examples/shop_public).
use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use oneloop::app::cookies::{CookieSecrets, SameSite};
use oneloop::app::cors::{cors, CorsOptions};
use oneloop::app::multipart::{multipart, Multipart, MultipartOptions};
use oneloop::app::rate_limit::{limiter, RateLimit};
use oneloop::app::session::{session, SessionOptions};
use oneloop::app::{body, files, helmet, App, AppError, Next, Req, Res};
use serde::Deserialize;
use serde_json::{json, Value};

static USERS: [[&str; 3]; 2] = [
    ["ada", "lovelace", "tok-ada"],
    ["alan", "turing", "tok-alan"],
];

#[derive(Deserialize)]
struct Item {
    product_id: u64,
    quantity: u32,
}

/// The store: module-level state as in the Express app (one per loop thread).
#[derive(Default)]
struct Db {
    products: BTreeMap<u64, Value>,
    orders: Vec<Value>,
}

thread_local!(static DB: RefCell<Db> = RefCell::default());

fn fail(status: u16, message: &str) -> AppError {
    AppError::new(status, message)
}

/// The signed-in user (set by the middleware in `main`): the session's or the bearer token's.
struct User(String);

fn user(req: &Req) -> Result<String, AppError> {
    let user = req.locals.get::<User>();
    user.map(|u| u.0.clone()).ok_or(fail(401, "log in first"))
}

/// The `:id` route parameter as a number (0 when it is not one).
fn id(req: &Req) -> u64 {
    req.param("id").and_then(|i| i.parse().ok()).unwrap_or(0)
}

fn require_user(req: &mut Req, _res: &mut Res, next: Next) {
    match user(req) {
        Ok(_) => next.call(),
        Err(e) => next.error(e),
    }
}

fn main() -> std::io::Result<()> {
    let public = std::env::var("SHOP_PUBLIC").unwrap_or("examples/shop_public".into());
    let mut app = App::new();
    app.use_mw(helmet::helmet());
    let origins = CorsOptions::origins(["http://localhost:5173"]);
    app.use_mw(cors(origins.with_credentials()));
    app.use_mw(body::json());
    let mut sessions = SessionOptions::new(CookieSecrets::new(["shop secret"]));
    sessions.cookie.same_site = Some(SameSite::Lax);
    app.use_mw(session(sessions));
    app.use_mw(files::static_files(public));
    app.use_(|req, _res, next| {
        let auth = req.header("authorization").unwrap_or("");
        let token = auth.trim_start_matches("Bearer ");
        let by_token = USERS
            .iter()
            .find(|u| u[2] == token)
            .map(|u| u[0].to_owned());
        let by_session = req.session().and_then(|s| s.get::<String>("user"));
        if let Some(name) = by_session.or(by_token) {
            req.locals.insert(User(name));
        }
        next.call();
    });
    app.use_at("/api/orders", require_user);
    app.use_at("/api/images", require_user);

    let login_limit = RateLimit::per(Duration::from_secs(15 * 60), 5);
    app.use_mw_at("/api/login", limiter(login_limit));
    app.post("/api/login", |req, res| {
        let login: HashMap<String, String> = req.json()?;
        let (name, password) = (login.get("user"), login.get("password"));
        let found = USERS.iter().find(|u| name.is_some_and(|n| n == u[0]));
        let u = found.filter(|u| password.is_some_and(|p| p == u[1]));
        let u = u.ok_or(fail(401, "bad credentials"))?;
        let s = req.session().ok_or(fail(500, "no session"))?;
        s.regenerate();
        s.set("user", u[0]);
        res.json(&json!({ "user": u[0], "token": u[2] }));
        Ok(())
    });
    app.post("/api/logout", |req, res| {
        req.session().inspect(|s| s.destroy());
        res.send_status(204);
    });

    app.get("/api/products", |_req, res| {
        res.json(&DB.with_borrow(|db| db.products.values().cloned().collect::<Vec<_>>()));
    });
    app.get("/api/products/:id", |req, res| {
        let product = DB.with_borrow(|db| db.products.get(&id(req)).cloned());
        res.json(&product.ok_or(fail(404, "no such product"))?);
        Ok(())
    });
    app.post("/api/products", |req, res| {
        user(req)?;
        let p: HashMap<String, Value> = req.json()?;
        let name = p.get("name").and_then(Value::as_str).unwrap_or("");
        let price = p.get("price").and_then(Value::as_f64).unwrap_or(-1.0);
        if name.is_empty() || name.len() > 100 || price < 0.0 {
            return Err(fail(
                400,
                "name (1-100 chars) and price (>= 0) are required",
            ));
        }
        DB.with_borrow_mut(|db| {
            let id = db.products.len() as u64 + 1;
            let product = json!({ "id": id, "name": name, "price": price, "image": null });
            res.status(201)
                .json(db.products.entry(id).or_insert(product));
        });
        Ok(())
    });
    let mut upload = MultipartOptions::default();
    (upload.limits.file_size, upload.limits.files) = (5 << 20, 1);
    upload.dest = std::env::temp_dir().join("shop-uploads");
    app.use_mw_at("/api/images", multipart(upload));
    app.post("/api/images/:id", |req, res| {
        let form = req.locals.get::<Multipart>();
        let image = form
            .and_then(|f| f.file("image"))
            .ok_or(fail(400, "no image"))?;
        let mut db = DB.with_borrow(|db| db.products.get(&id(req)).cloned());
        let product = db.as_mut().ok_or(fail(404, "no such product"))?;
        product["image"] = json!(image.path);
        DB.with_borrow_mut(|db| db.products.insert(id(req), product.clone()));
        res.json(product);
        Ok(())
    });

    app.post("/api/orders", |req, res| {
        let mut order: HashMap<String, Vec<Item>> = req.json()?;
        let items = order.remove("items").unwrap_or_default();
        let mut total = 0.0;
        for i in &items {
            let product = DB.with_borrow(|db| db.products.get(&i.product_id).cloned());
            let price = product.ok_or(fail(400, "unknown product"))?["price"].as_f64();
            total += price.unwrap_or(0.0) * f64::from(i.quantity);
        }
        if items.is_empty() || items.iter().any(|i| i.quantity == 0) {
            return Err(fail(
                400,
                "items, each with a quantity of at least 1, are required",
            ));
        }
        let n = DB.with_borrow(|db| db.orders.len()) + 1;
        let order = json!({ "id": n, "user": user(req)?, "total": total, "items": items.len() });
        DB.with_borrow_mut(|db| db.orders.push(order.clone()));
        res.status(201).json(&order);
        Ok(())
    });
    app.get("/api/orders", |req, res| {
        let who = Value::from(user(req)?);
        let all = DB.with_borrow(|db| db.orders.clone());
        res.json(
            &all.into_iter()
                .filter(|o| o["user"] == who)
                .collect::<Vec<_>>(),
        );
        Ok(())
    });
    app.use_error(|err, _req, res, _next| {
        let message = err.expose.then_some(err.message.as_str());
        res.status(err.status)
            .json(&json!({ "error": message.unwrap_or("internal error") }));
    });

    let port = std::env::var("PORT").map_or(3000, |p| p.parse().unwrap_or(3000));
    app.listen(port, move || println!("shop listening on port {port}"))
}

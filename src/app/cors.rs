//! CORS, as the `cors` npm package (2.8) does it: the same options, defaults and headers.
//!
//! ```no_run
//! use oneloop::app::{cors, App};
//! let mut app = App::new();
//! app.use_mw(cors::cors(cors::CorsOptions {
//!     origin: cors::AllowOrigin::list(["https://shop.example"]),
//!     credentials: true,
//!     max_age: Some(600),
//!     ..cors::CorsOptions::default()
//! }));
//! ```
//!
//! Every request gets `Access-Control-Allow-Origin` (per [`AllowOrigin`]), then
//! `Access-Control-Allow-Credentials: true` with `credentials`, and
//! `Access-Control-Expose-Headers` when `exposed_headers` is set; then it goes on. An `OPTIONS`
//! request (any, as the package treats every OPTIONS as a preflight) also gets
//! `Access-Control-Allow-Methods`, `Access-Control-Allow-Headers` (the configured list, or the
//! request's `Access-Control-Request-Headers` reflected, with `Vary:
//! Access-Control-Request-Headers`) and `Access-Control-Max-Age`, and is answered
//! `options_success_status` (204) with an empty body unless `preflight_continue`.
//!
//! Differences from the package: an origin pattern is a predicate (`AllowOrigin::predicate`)
//! rather than a `RegExp`; the options are fixed when the middleware is made (the package's
//! per-request options callback is a closure over `Req` in `AllowOrigin::predicate`, or a
//! middleware of your own); `origin: false` (CORS off) is simply not installing it.
//! tests/app_security_diff.rs checks the headers against the real package under Express 5.

use std::rc::Rc;

use super::{Middleware, Next, Req, Res};

/// Which origins may read responses (`Access-Control-Allow-Origin`).
#[derive(Clone)]
pub enum AllowOrigin {
    /// `*` (the package's default, `origin: '*'`): any origin, no credentials (browsers refuse
    /// `*` with credentials).
    Any,
    /// Always this origin, with `Vary: Origin` (`origin: 'https://a.example'`).
    Fixed(String),
    /// The request's `Origin` when it is one of these, with `Vary: Origin` (`origin: [..]`).
    List(Vec<String>),
    /// The request's `Origin`, whatever it is, with `Vary: Origin` (`origin: true`).
    Reflect,
    /// The request's `Origin` when the predicate accepts it, with `Vary: Origin` (the
    /// package's `RegExp` or `origin(origin, cb)` function).
    Predicate(Rc<dyn Fn(&str) -> bool>),
}

impl AllowOrigin {
    /// The origins in `list` (exact, case-sensitive matches as the package's).
    pub fn list<S: Into<String>>(list: impl IntoIterator<Item = S>) -> AllowOrigin {
        AllowOrigin::List(list.into_iter().map(Into::into).collect())
    }

    /// Origins `accept` returns true for.
    pub fn predicate(accept: impl Fn(&str) -> bool + 'static) -> AllowOrigin {
        AllowOrigin::Predicate(Rc::new(accept))
    }
}

/// The `cors` package's options; [`Default`] is its defaults.
#[derive(Clone)]
pub struct CorsOptions {
    /// Default [`AllowOrigin::Any`].
    pub origin: AllowOrigin,
    /// `Access-Control-Allow-Methods` on preflights. Default `GET,HEAD,PUT,PATCH,POST,DELETE`.
    pub methods: Vec<String>,
    /// `Access-Control-Allow-Headers` on preflights; `None` (default) reflects the request's
    /// `Access-Control-Request-Headers`.
    pub allowed_headers: Option<Vec<String>>,
    /// `Access-Control-Expose-Headers`; empty (default) sends none.
    pub exposed_headers: Vec<String>,
    /// `Access-Control-Allow-Credentials: true`. Default false.
    pub credentials: bool,
    /// `Access-Control-Max-Age` in seconds on preflights. Default none.
    pub max_age: Option<u64>,
    /// Pass preflights on to the next middleware instead of answering them. Default false.
    pub preflight_continue: bool,
    /// The status of an answered preflight. Default 204.
    pub options_success_status: u16,
}

impl Default for CorsOptions {
    fn default() -> CorsOptions {
        CorsOptions {
            origin: AllowOrigin::Any,
            methods: ["GET", "HEAD", "PUT", "PATCH", "POST", "DELETE"]
                .map(String::from)
                .to_vec(),
            allowed_headers: None,
            exposed_headers: Vec::new(),
            credentials: false,
            max_age: None,
            preflight_continue: false,
            options_success_status: 204,
        }
    }
}

impl CorsOptions {
    /// The defaults, for the listed origins only (`cors({ origin: [..] })`).
    pub fn origins<S: Into<String>>(list: impl IntoIterator<Item = S>) -> CorsOptions {
        CorsOptions {
            origin: AllowOrigin::list(list),
            ..CorsOptions::default()
        }
    }

    /// With `Access-Control-Allow-Credentials: true` (`credentials: true`).
    pub fn with_credentials(mut self) -> CorsOptions {
        self.credentials = true;
        self
    }
}

/// The CORS middleware with `options` (the package's `cors(options)`); joined header values
/// are computed once here, not per request.
pub fn cors(options: CorsOptions) -> Middleware {
    let methods = options.methods.join(",");
    let allowed_headers = options.allowed_headers.as_ref().map(|h| h.join(","));
    let exposed = options.exposed_headers.join(",");
    let max_age = options.max_age.map(|s| s.to_string());
    Rc::new(move |req: &mut Req, res: &mut Res, next: Next| {
        allow_origin(&options.origin, req, res);
        if options.credentials {
            res.set("access-control-allow-credentials", "true");
        }
        let preflight = req.method().eq_ignore_ascii_case("OPTIONS");
        if preflight {
            res.set("access-control-allow-methods", &methods);
            match &allowed_headers {
                Some(list) => set_nonempty(res, "access-control-allow-headers", list),
                None => {
                    vary(res, "Access-Control-Request-Headers");
                    if let Some(asked) = req.header("access-control-request-headers") {
                        set_nonempty(res, "access-control-allow-headers", asked);
                    }
                }
            }
            if let Some(secs) = &max_age {
                res.set("access-control-max-age", secs);
            }
        }
        set_nonempty(res, "access-control-expose-headers", &exposed);
        if preflight && !options.preflight_continue {
            res.set("content-length", "0");
            res.status(options.options_success_status).end();
        } else {
            next.call();
        }
    })
}

fn set_nonempty(res: &Res, name: &str, value: &str) {
    if !value.is_empty() {
        res.set(name, value);
    }
}

fn allow_origin(origin: &AllowOrigin, req: &Req, res: &Res) {
    let asked = req.header("origin");
    let allowed = match origin {
        AllowOrigin::Any => {
            res.set("access-control-allow-origin", "*");
            return;
        }
        AllowOrigin::Fixed(fixed) => Some(fixed.as_str()),
        AllowOrigin::List(list) => asked.filter(|o| list.iter().any(|a| a == o)),
        AllowOrigin::Reflect => asked,
        AllowOrigin::Predicate(accept) => asked.filter(|o| accept(o)),
    };
    if let Some(value) = allowed {
        res.set("access-control-allow-origin", value);
    }
    vary(res, "Origin");
}

/// Adds `field` to the response's `Vary` unless it is there already or `Vary` is `*` (the
/// `vary` package's rule, which `cors` uses).
pub(crate) fn vary(res: &Res, field: &str) {
    match res.get("vary") {
        None => {
            res.set("vary", field);
        }
        Some(current) => {
            let present = current
                .split(',')
                .map(str::trim)
                .any(|f| f == "*" || f.eq_ignore_ascii_case(field));
            if !present {
                res.set("vary", &format!("{current}, {field}"));
            }
        }
    }
}

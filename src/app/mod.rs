//! The Express-shaped application layer.
//!
//! ```no_run
//! use oneloop::app::App;
//! use serde_json::json;
//! let mut app = App::new();
//! app.get("/api/products", |_req, res| res.json(&json!({"products": []})));
//! app.listen(3000, || println!("API running on port 3000"))?;
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! A request runs through: global middleware (`use_`, in registration order, optionally under a
//! path prefix) -> the matched route's own middleware -> the route handler. `next.call()` moves
//! on (now or later, from a timer or a thread-pool completion); `next.error(e)` skips to error
//! middleware and then the final handler. Routing is a segment trie (see [`router`]): static
//! beats `:param` beats `*wildcard` whatever the registration order. Defaults: 404 `Cannot GET
//! /x`, 405 with `Allow`, automatic OPTIONS and HEAD, 500 without internals (logged), a panic in
//! a handler answered 500. See docs/app.md.

mod async_handler;
pub mod body;
pub mod cache;
mod chain;
pub mod compression;
pub mod cookies;
pub mod cors;
pub mod error;
pub mod files;
pub mod health;
pub mod helmet;
pub mod logger;
pub mod metrics;
pub mod multipart;
pub mod overload;
pub mod path;
pub mod rate_limit;
mod req;
mod res;
pub mod router;
pub mod session;
mod ws;

use std::cell::{Cell, RefCell};
use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::rc::Rc;

use bytes::Bytes;
use oneloop_runtime::{Loop, TcpId};

pub use async_handler::async_handler;
pub use chain::Next;
pub use error::AppError;
pub use req::{Body, InjectRequest, Locals, Req};
pub use res::{mime_for, BodyHook, BodySink, InjectResponse, Res};

use crate::http;
use router::Router as Trie;

/// A route handler as stored: `|req, res| ..` (terminal: it answers or arranges to answer
/// later); an `Err` goes to the error middleware.
pub type Handler = Rc<dyn Fn(&mut Req, &mut Res) -> Result<(), AppError>>;

/// What a route handler may return: nothing, or `Result<(), AppError>` so that `?` works and
/// an error goes to the error middleware (as a rejected promise does in Express 5). Every
/// error type with `From` for [`AppError`] converts with `?` (io, JSON, ...).
pub trait HandlerOutput {
    /// The outcome as a result.
    fn into_result(self) -> Result<(), AppError>;
}

impl HandlerOutput for () {
    fn into_result(self) -> Result<(), AppError> {
        Ok(())
    }
}

impl HandlerOutput for Result<(), AppError> {
    fn into_result(self) -> Result<(), AppError> {
        self
    }
}

/// Stores a user handler, returning whatever it returns as a result.
fn handler<R: HandlerOutput>(h: impl Fn(&mut Req, &mut Res) -> R + 'static) -> Handler {
    Rc::new(move |req, res| h(req, res).into_result())
}
/// A middleware: `|req, res, next| ..`; call `next.call()` to go on, `next.error(e)` to fail.
pub type Middleware = Rc<dyn Fn(&mut Req, &mut Res, Next)>;
/// An error middleware: `|err, req, res, next| ..`; `next.call()` passes the error on.
pub type ErrorMiddleware = Rc<dyn Fn(&AppError, &mut Req, &mut Res, Next)>;
/// An upgrade route: gets the upgrade request, the raw socket (now its own) and the bytes read
/// past the head (see [`App::upgrade_route`]).
pub type UpgradeRoute = Rc<dyn Fn(&mut Loop, http::Request, TcpId, Bytes)>;

/// Wraps a closure as a [`Middleware`] (for per-route middleware lists).
pub fn mw(f: impl Fn(&mut Req, &mut Res, Next) + 'static) -> Middleware {
    Rc::new(f)
}

pub(crate) struct Layer {
    prefix: String,
    mw: Middleware,
}

pub(crate) struct ErrLayer {
    prefix: String,
    mw: ErrorMiddleware,
}

pub(crate) struct Route {
    /// The pattern as registered (with any mount prefix), for [`Req::route`].
    pattern: Rc<str>,
    middleware: Vec<Middleware>,
    handler: Handler,
}

pub(crate) struct AppInner {
    trie: Trie<usize>,
    routes: Vec<Route>,
    layers: Vec<Layer>,
    err_layers: Vec<ErrLayer>,
    /// Answers requests no route matches, instead of the 404 error (see [`App::not_found`]).
    not_found: Option<Handler>,
    etag: bool,
    next_id: Cell<u64>,
    /// Random per app (so per worker and per start): makes request ids unique across workers
    /// and restarts (see [`Req::request_id`]).
    id_prefix: Rc<str>,
    /// Route parameter names seen so far, shared by every request's params.
    param_names: RefCell<Vec<Rc<str>>>,
    /// The scratch buffer `Res::json` serializes into, shared by this app's responses (taken
    /// out while in use), so a JSON response allocates no buffer of its own.
    pub(crate) json_scratch: Rc<Cell<Vec<u8>>>,
}

impl AppInner {
    /// The shared copy of parameter name `name`.
    fn param_name(&self, name: &str) -> Rc<str> {
        let mut names = self.param_names.borrow_mut();
        if let Some(n) = names.iter().find(|n| ***n == *name) {
            return Rc::clone(n);
        }
        let n: Rc<str> = Rc::from(name);
        names.push(Rc::clone(&n));
        n
    }
}

fn normalize_prefix(prefix: &str) -> String {
    let p = prefix.trim_end_matches('/');
    if p.is_empty() {
        String::new()
    } else if p.starts_with('/') {
        p.to_string()
    } else {
        format!("/{p}")
    }
}

/// Whether `path` is `prefix` or below it (segment-wise: `/api` covers `/api/x`, not `/apix`).
pub(crate) fn under_prefix(path: &str, prefix: &str) -> bool {
    prefix.is_empty()
        || path == prefix
        || (path.starts_with(prefix) && path.as_bytes().get(prefix.len()) == Some(&b'/'))
}

/// Routes and middleware to mount under a prefix (Express's `express.Router()`).
#[derive(Default)]
pub struct Router {
    routes: Vec<(String, String, Vec<Middleware>, Handler)>,
    layers: Vec<(String, Middleware)>,
}

macro_rules! async_method_fns {
    ($($name:ident => $method:literal),*) => {$(
        #[doc = concat!("Adds a `", $method, "` route whose handler is async (see [`async_handler`]): ")]
        #[doc = "an `Err` it returns goes to the error middleware, as a rejected promise does in Express 5."]
        pub fn $name<F, Fut>(&mut self, path: &str, handler: F) -> &mut Self
        where
            F: Fn(&mut Req, Res) -> Fut + 'static,
            Fut: std::future::Future<Output = Result<(), AppError>> + 'static,
        {
            // The async middleware ends the chain itself (it never calls `next.call()`).
            self.route($method, path, vec![async_handler(handler)], |_req, _res| {})
        }
    )*};
}

macro_rules! method_fns {
    ($($name:ident => $method:literal),*) => {$(
        #[doc = concat!("Adds a `", $method, "` route.")]
        pub fn $name<R: HandlerOutput>(
            &mut self,
            path: &str,
            handler: impl Fn(&mut Req, &mut Res) -> R + 'static,
        ) -> &mut Self {
            self.route($method, path, Vec::new(), handler)
        }
    )*};
}

impl Router {
    /// An empty router.
    pub fn new() -> Router {
        Router::default()
    }

    method_fns!(get => "GET", post => "POST", put => "PUT", patch => "PATCH",
        delete => "DELETE", head => "HEAD", options => "OPTIONS", all => "*");
    async_method_fns!(get_async => "GET", post_async => "POST", put_async => "PUT",
        patch_async => "PATCH", delete_async => "DELETE", all_async => "*");

    /// Adds a route for `method` (`"*"` for all) with its own middleware.
    pub fn route<R: HandlerOutput>(
        &mut self,
        method: &str,
        path: &str,
        middleware: Vec<Middleware>,
        handler: impl Fn(&mut Req, &mut Res) -> R + 'static,
    ) -> &mut Self {
        self.routes.push((
            method.to_string(),
            path.to_string(),
            middleware,
            self::handler(handler),
        ));
        self
    }

    /// Adds middleware that runs for every request under this router's mount point.
    pub fn use_(&mut self, f: impl Fn(&mut Req, &mut Res, Next) + 'static) -> &mut Self {
        self.layers.push((String::new(), Rc::new(f)));
        self
    }

    /// Adds a ready-made [`Middleware`] for every request under this router's mount point.
    pub fn use_mw(&mut self, mw: Middleware) -> &mut Self {
        self.layers.push((String::new(), mw));
        self
    }
}

/// An application: routes, middleware and settings, served by oneloop's HTTP server.
pub struct App {
    inner: Rc<RefCell<AppInner>>,
    errors: Vec<String>,
    upgrades: Rc<RefCell<Vec<UpgradeEntry>>>,
    closing: Rc<RefCell<Vec<ClosingHook>>>,
}

/// One registered upgrade: exact path, protocol token (`Upgrade: <protocol>`), handler.
struct UpgradeEntry {
    path: String,
    protocol: String,
    handler: UpgradeRoute,
}

type ClosingHook = Rc<dyn Fn(&mut Loop)>;

/// The route for an upgrade request: its path is registered and its `Upgrade` field offers
/// that route's protocol.
fn find_upgrade(
    upgrades: &[UpgradeEntry],
    head: &http::parse::RequestHead,
) -> Option<UpgradeRoute> {
    let offered = head.header("upgrade");
    upgrades
        .iter()
        .find(|u| {
            u.path == head.path() && crate::ws::handshake::offers_protocol(offered, &u.protocol)
        })
        .map(|u| Rc::clone(&u.handler))
}

impl Default for App {
    fn default() -> Self {
        App::new()
    }
}

impl App {
    /// An empty app: weak ETags on, no middleware.
    pub fn new() -> App {
        App {
            inner: Rc::new(RefCell::new(AppInner {
                trie: Trie::new(),
                routes: Vec::new(),
                layers: Vec::new(),
                err_layers: Vec::new(),
                not_found: None,
                etag: true,
                next_id: Cell::new(0),
                id_prefix: req::random_id_prefix().into(),
                param_names: RefCell::new(Vec::new()),
                json_scratch: Rc::default(),
            })),
            errors: Vec::new(),
            upgrades: Rc::new(RefCell::new(Vec::new())),
            closing: Rc::new(RefCell::new(Vec::new())),
        }
    }

    /// Hands upgrade requests for exactly `path` (query ignored) whose `Upgrade` field offers
    /// `protocol` (a case-insensitive token, e.g. `"websocket"`) to `handler`, which takes
    /// over the socket (the WebSocket layer's `app.ws` builds on this). Any other upgrade
    /// request (another path, or only other protocols, such as `h2c`) is served by the app's
    /// ordinary routes, as if it offered nothing (RFC 9110 §7.8).
    pub fn upgrade_route(
        &mut self,
        path: &str,
        protocol: &str,
        handler: impl Fn(&mut Loop, http::Request, TcpId, Bytes) + 'static,
    ) -> &mut Self {
        self.upgrades.borrow_mut().push(UpgradeEntry {
            path: path.to_string(),
            protocol: protocol.to_string(),
            handler: Rc::new(handler),
        });
        self
    }

    /// Runs `hook` when a graceful close of the app's server starts (see
    /// [`http::Server::on_closing`]): upgrade routes end the sockets they own there.
    pub fn on_closing(&mut self, hook: impl Fn(&mut Loop) + 'static) -> &mut Self {
        self.closing.borrow_mut().push(Rc::new(hook));
        self
    }

    method_fns!(get => "GET", post => "POST", put => "PUT", patch => "PATCH",
        delete => "DELETE", head => "HEAD", options => "OPTIONS", all => "*");
    async_method_fns!(get_async => "GET", post_async => "POST", put_async => "PUT",
        patch_async => "PATCH", delete_async => "DELETE", all_async => "*");

    /// Adds a route for `method` (`"*"` for all) with per-route middleware, which runs after
    /// the global middleware and before `handler`.
    ///
    /// A bad pattern (e.g. a bare `*`) or a duplicate route is logged and recorded; see
    /// [`App::route_errors`]; `listen` refuses to start while any exists.
    pub fn route<R: HandlerOutput>(
        &mut self,
        method: &str,
        path: &str,
        middleware: Vec<Middleware>,
        handler: impl Fn(&mut Req, &mut Res) -> R + 'static,
    ) -> &mut Self {
        self.add_route(method, path, middleware, self::handler(handler));
        self
    }

    fn add_route(&mut self, method: &str, path: &str, middleware: Vec<Middleware>, h: Handler) {
        let mut inner = self.inner.borrow_mut();
        let index = inner.routes.len();
        match inner.trie.insert(method, path, index) {
            Ok(()) => inner.routes.push(Route {
                pattern: Rc::from(path),
                middleware,
                handler: h,
            }),
            Err(e) => {
                let msg = format!("route {method} {path}: {e}");
                log::error!("{msg}");
                self.errors.push(msg);
            }
        }
    }

    /// Route registration errors so far (bad patterns, duplicates).
    pub fn route_errors(&self) -> &[String] {
        &self.errors
    }

    /// Adds middleware for every request (Express's `app.use(fn)`; `use` is a Rust keyword).
    pub fn use_(&mut self, f: impl Fn(&mut Req, &mut Res, Next) + 'static) -> &mut Self {
        self.use_at("", f)
    }

    /// Adds middleware for requests under `prefix` (Express's `app.use("/api", fn)`).
    pub fn use_at(
        &mut self,
        prefix: &str,
        f: impl Fn(&mut Req, &mut Res, Next) + 'static,
    ) -> &mut Self {
        self.inner.borrow_mut().layers.push(Layer {
            prefix: normalize_prefix(prefix),
            mw: Rc::new(f),
        });
        self
    }

    /// Adds a ready-made [`Middleware`] for every request: `app.use_mw(cors::cors(..))`
    /// (Express's `app.use(cors())`). A closure goes to [`App::use_`].
    pub fn use_mw(&mut self, mw: Middleware) -> &mut Self {
        self.use_mw_at("", mw)
    }

    /// Adds a ready-made [`Middleware`] for requests under `prefix`.
    pub fn use_mw_at(&mut self, prefix: &str, mw: Middleware) -> &mut Self {
        self.inner.borrow_mut().layers.push(Layer {
            prefix: normalize_prefix(prefix),
            mw,
        });
        self
    }

    /// Answers requests that no route matches (Fastify's `setNotFoundHandler`), after the
    /// global middleware. Without it such a request becomes a 404 error (`Cannot GET /x`)
    /// that goes through the error middleware, as a wrong method becomes a 405 error with
    /// its `Allow` header already set.
    pub fn not_found<R: HandlerOutput>(
        &mut self,
        handler: impl Fn(&mut Req, &mut Res) -> R + 'static,
    ) -> &mut Self {
        self.inner.borrow_mut().not_found = Some(self::handler(handler));
        self
    }

    /// Adds error middleware (Express's 4-argument middleware).
    pub fn use_error(
        &mut self,
        f: impl Fn(&AppError, &mut Req, &mut Res, Next) + 'static,
    ) -> &mut Self {
        self.inner.borrow_mut().err_layers.push(ErrLayer {
            prefix: String::new(),
            mw: Rc::new(f),
        });
        self
    }

    /// Mounts `router` at `prefix` (Express's `app.use("/api", router)`): its routes are added
    /// as `prefix + path`, its middleware runs for requests under `prefix`.
    pub fn mount(&mut self, prefix: &str, router: Router) -> &mut Self {
        let prefix = normalize_prefix(prefix);
        for (p, mw) in router.layers {
            let at = format!("{prefix}{}", normalize_prefix(&p));
            self.inner
                .borrow_mut()
                .layers
                .push(Layer { prefix: at, mw });
        }
        for (method, path, middleware, handler) in router.routes {
            let full = if path == "/" {
                if prefix.is_empty() {
                    "/".to_string()
                } else {
                    prefix.clone()
                }
            } else {
                format!("{prefix}{path}")
            };
            self.add_route(&method, &full, middleware, handler);
        }
        self
    }

    /// Turns weak ETags (and 304 on `If-None-Match`) on or off (default on, as Express).
    pub fn set_etag(&mut self, on: bool) -> &mut Self {
        self.inner.borrow_mut().etag = on;
        self
    }

    /// Serves the app on `lp` at `addr` with the given server config; returns the HTTP server
    /// (for its address and graceful close).
    ///
    /// # Errors
    /// Bad routes were registered, or the address cannot be bound.
    pub fn listen_on(
        &self,
        lp: &mut Loop,
        addr: impl ToSocketAddrs,
        config: http::ServerConfig,
        on_listening: impl FnOnce(&mut Loop, SocketAddr) + 'static,
    ) -> io::Result<http::Server> {
        if let Some(e) = self.errors.first() {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, e.clone()));
        }
        let inner = Rc::clone(&self.inner);
        let server = http::create_server_with(lp, config, move |lp, req, res| {
            chain::start_http(lp, &inner, req, res);
        });
        if !self.upgrades.borrow().is_empty() {
            let upgrades = Rc::clone(&self.upgrades);
            server.should_upgrade(move |head| find_upgrade(&upgrades.borrow(), head).is_some());
            let upgrades = Rc::clone(&self.upgrades);
            server.on_upgrade(move |lp, req, socket, rest| {
                let route = find_upgrade(&upgrades.borrow(), req.head());
                match route {
                    Some(h) => h(lp, req, socket, rest),
                    // CONNECT (never asked about): no route takes it.
                    None => http::refuse_upgrade(lp, socket, 404, &[], ""),
                }
            });
        }
        for hook in self.closing.borrow().iter() {
            let hook = Rc::clone(hook);
            server.on_closing(move |lp| hook(lp));
        }
        server.listen(lp, addr, on_listening)?;
        Ok(server)
    }

    /// Creates a loop, listens on `port` (on `HOST`, default 127.0.0.1), calls `on_listening`
    /// and runs the loop until the process ends (Express's `app.listen(port, cb)`).
    ///
    /// # Errors
    /// Bad routes, the port cannot be bound, or the loop fails.
    pub fn listen(&self, port: u16, on_listening: impl FnOnce() + 'static) -> io::Result<()> {
        let host = std::env::var("HOST").unwrap_or_else(|_| "127.0.0.1".into());
        let mut lp = Loop::new()?;
        self.listen_on(
            &mut lp,
            (host.as_str(), port),
            http::ServerConfig::default(),
            move |_lp, _addr| on_listening(),
        )?;
        lp.run()
    }

    /// Runs `request` through the whole app in-process, without a socket (Fastify's
    /// `inject`), driving `lp` until the response finishes or the loop runs out of work.
    ///
    /// # Errors
    /// Only if the loop fails.
    pub fn inject(&self, lp: &mut Loop, request: InjectRequest) -> io::Result<InjectResponse> {
        let out = chain::start_inject(lp, &self.inner, request);
        while !out.borrow().finished {
            if !lp.run_once()? && !out.borrow().finished {
                break;
            }
        }
        let response = out.borrow().clone();
        Ok(response)
    }
}

/// The guide (docs/app.md); its code blocks run as doctests.
#[doc = include_str!("../../docs/app.md")]
pub mod guide {}
